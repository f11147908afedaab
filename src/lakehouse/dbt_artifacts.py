"""dbt's artifacts, read in one place: where a run leaves them, the manifest, and what its nodes are.

- ``run_dir(pipeline, run_id)``: where every dbt task of one DAG run leaves its results
  (<home>/dbt/<pipeline>/<run id>/<task id>/), and the run's manifest at its top;
- ``load_manifest(pipeline)``: the pipeline's parsed manifest as lakehouse.dbt_prepare left it;
- ``node_table(node)``: the lakehouse table of a model, seed, snapshot or source ('<schema>.<alias>');
- ``tested_node_id(node)``: the node a test (or unit test, or freshness check) is about;
- ``built_tables(manifest)``: the tables a project builds;
- ``load_run_artifacts(run_dir)``: every result file under a run dir, with the manifests beside them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .identifiers import InvalidIdentifier, split_table_name
from .settings import load_settings

# dbt writes run_results.json for run/seed/test/build and sources.json for `source freshness`.
RESULT_FILES = ("run_results.json", "sources.json")
STORED = ("model", "seed", "snapshot", "source")
_manifests: dict[str, tuple[int, dict]] = {}


def run_dir(pipeline_name: str, run_id: str) -> Path:
    """Where every dbt task of one DAG run leaves its artifacts: <dbt target dir>/<pipeline>/<run id>/<task id>/."""
    safe_run_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return load_settings().dbt_target_dir / pipeline_name / safe_run_id


def manifest_path(pipeline_name: str) -> Path:
    return load_settings().manifest_dir(pipeline_name) / "manifest.json"


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a dbt artifact: expected a JSON object")
    return data


def load_manifest(pipeline_name: str) -> dict:
    """The pipeline's parsed manifest (empty before dbt has parsed it), cached by modification time."""
    path = manifest_path(pipeline_name)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return {}
    cached = _manifests.get(str(path))
    if cached and cached[0] == mtime:
        return cached[1]
    manifest = read_json(path)
    _manifests[str(path)] = (mtime, manifest)
    return manifest


def node(manifest: dict, unique_id: str | None) -> dict | None:
    if not unique_id:
        return None
    for section in ("nodes", "sources", "unit_tests"):
        found = (manifest.get(section) or {}).get(unique_id)
        if found is not None:
            return found
    return None


def node_table(node_: dict, strict: bool = True) -> str | None:
    """'<schema>.<alias>' of a model, seed, snapshot or source: the table it is in the lakehouse.

    ``strict``: None when that is not a lakehouse table name; otherwise the name as dbt has it."""
    name = node_.get("alias") or node_.get("identifier") or node_.get("name")
    try:
        return ".".join(split_table_name(f"{node_.get('schema')}.{name}"))
    except InvalidIdentifier:
        if strict:
            return None
        return f"{node_['schema']}.{name}" if node_.get("schema") and name else str(node_.get("name") or "")


def tested_node_id(node_: dict | None) -> str | None:
    """What a check is about: a freshness check's own source; a test's (or unit test's) attached node,
    else its first model/seed/snapshot/source parent."""
    if not node_:
        return None
    if node_.get("resource_type") == "source":
        return node_.get("unique_id")
    if node_.get("resource_type") not in ("test", "unit_test"):
        return None
    candidates = [node_.get("attached_node"), *((node_.get("depends_on") or {}).get("nodes") or [])]
    return next((c for c in candidates if c and c.split(".")[0] in STORED), None)


def tested_table(node_: dict | None, manifest: dict) -> str | None:
    """The table a check is about ('<schema>.<alias>'); the node's name when the manifest lacks it."""
    if node_ and node_.get("resource_type") == "source":
        return node_table(node_, strict=False)
    unique_id = tested_node_id(node_)
    if unique_id is None:
        return None
    found = node(manifest, unique_id)
    return node_table(found, strict=False) if found else unique_id.split(".")[-1]


def built_tables(manifest: dict) -> list[str]:
    """The tables a project's models, seeds and snapshots build (views and ephemerals build none)."""
    names = set()
    for node_ in (manifest.get("nodes") or {}).values():
        materialized = (node_.get("config") or {}).get("materialized")
        if node_.get("resource_type") not in ("model", "seed", "snapshot") or materialized in ("view", "ephemeral"):
            continue
        table = node_table(node_)
        if table:  # else not a lakehouse table name (a quoted or database-qualified relation)
            names.add(table)
    return sorted(names)


def result_files(folder: Path) -> list[Path]:
    """The dbt result artifacts under a folder: run_results.json of runs, seeds and tests, and sources.json
    of source freshness checks."""
    return sorted(path for name in RESULT_FILES for path in Path(folder).rglob(name))


def _folders_up(folder: Path, top: Path) -> list[Path]:
    """folder, its parent, ... up to and including top."""
    folders = [folder]
    while folders[-1] != top and folders[-1] != folders[-1].parent:
        folders.append(folders[-1].parent)
    return folders


def load_run_artifacts(folder: Path) -> tuple[list[tuple[Path, dict]], dict]:
    """Every result artifact under ``folder``, and the manifests beside them merged into one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"dbt target directory {folder} does not exist")
    paths = result_files(folder)
    if not paths:
        raise FileNotFoundError(f"no run_results.json under {folder}: did dbt run?")
    artifacts = []
    manifest: dict = {"nodes": {}, "sources": {}, "unit_tests": {}}
    for path in paths:
        artifact = read_json(path)
        if not isinstance(artifact.get("results"), list):
            raise ValueError(f"{path} is not a dbt results file: it has no 'results' list")
        artifacts.append((path, artifact))
        # Parse a manifest only when it can tell something new: they are large, and the Cosmos
        # tasks of one run may each leave a copy. It sits beside run_results.json or in a folder
        # above it (the DAG keeps one per run at the top of the run dir).
        manifests = [d / "manifest.json" for d in _folders_up(path.parent, folder)]
        found_path = next((m for m in manifests if m.exists()), None)
        ids = {r.get("unique_id") for r in artifact["results"]}
        known = manifest["nodes"].keys() | manifest["sources"].keys() | manifest["unit_tests"].keys()
        if found_path is not None and not ids <= known:
            found = read_json(found_path)
            for section in ("nodes", "sources", "unit_tests"):
                manifest[section].update(found.get(section) or {})
    return artifacts, manifest


def pipeline_tables(pipeline) -> list[str]:
    """Every table a pipeline writes: its raw tables and what its dbt project builds (once parsed)."""
    return sorted(set(pipeline.raw_tables) | set(built_tables(load_manifest(pipeline.name))))
