"""Fitted machine-learning models, kept per pipeline, model name and the run that trained them.

    <lakehouse home>/ml_models/<pipeline>/<name>/<run id>/model.joblib   the fitted object
                                                      .../metadata.json  features, labels, metrics
    <lakehouse home>/ml_models/<pipeline>/<name>/current.json            {"run_id": ...}

A training step saves; an inference step loads the model a given run trained (or the current one), so
a segment assigned tomorrow comes from the same fitted model as today's, and says which. Files are
written to a temporary name and renamed: a reader sees a whole model or the previous one. joblib
files are pickles: load only what this store wrote (it lives in the lakehouse home, never a download).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .identifiers import validate_identifier


class ModelNotFound(LookupError):
    pass


def _folder(pipeline: str, name: str) -> Path:
    from .settings import load_settings

    validate_identifier(pipeline, "pipeline name")
    validate_identifier(name, "model name")
    return load_settings().home / "ml_models" / pipeline / name


def _run_folder(pipeline: str, name: str, run_id: str) -> Path:
    # A run id is Airflow's (manual__2026-11-03T00:00:00+00:00): keep it readable, make it a file name.
    safe = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in str(run_id))
    if not safe.strip("._"):
        raise ValueError(f"run id {run_id!r} cannot name a model")
    return _folder(pipeline, name) / safe


def _write_atomically(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def save(pipeline: str, name: str, run_id: str, model: Any, metadata: dict[str, Any]) -> Path:
    """Keep ``model`` as the one ``run_id`` trained, and make it the current one."""
    import joblib

    folder = _run_folder(pipeline, name, run_id)
    _write_atomically(folder / "model.joblib", lambda path: joblib.dump(model, path))
    text = json.dumps({**metadata, "run_id": run_id}, indent=2, sort_keys=True, default=str)
    _write_atomically(folder / "metadata.json", lambda path: Path(path).write_text(text))
    pointer = json.dumps({"run_id": run_id, "folder": folder.name})
    _write_atomically(_folder(pipeline, name) / "current.json", lambda path: Path(path).write_text(pointer))
    return folder


def current_run_id(pipeline: str, name: str) -> str | None:
    pointer = _folder(pipeline, name) / "current.json"
    return json.loads(pointer.read_text())["run_id"] if pointer.exists() else None


def load(pipeline: str, name: str, run_id: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(fitted model, metadata) of ``run_id``, or of the current model."""
    import joblib

    run_id = run_id or current_run_id(pipeline, name)
    if run_id is None:
        raise ModelNotFound(f"no {name} model of pipeline {pipeline} has been trained yet")
    folder = _run_folder(pipeline, name, run_id)
    if not (folder / "model.joblib").exists():
        raise ModelNotFound(f"no {name} model of pipeline {pipeline} was trained by run {run_id!r} ({folder})")
    return joblib.load(folder / "model.joblib"), json.loads((folder / "metadata.json").read_text())
