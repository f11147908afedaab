"""Preparing a pipeline's dbt project: `dbt deps` and `dbt parse` into its manifest, only when it changed.

A DAG file is parsed every few seconds by Airflow: the unchanged case costs one directory walk over the
project's files (paths, sizes, mtimes: the fingerprint). A lock lets the DAG processor and a CLI run
parse at the same moment without both running dbt.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from .engines import get_engine
from .settings import load_settings

# Folders dbt writes into; they never change what `dbt parse` produces.
_NOT_SOURCES = {"target", "logs", "dbt_packages", "__pycache__", ".git"}
_PACKAGE_FILES = ("packages.yml", "dependencies.yml")


def _dbt_executable() -> str:
    beside_python = Path(sys.executable).with_name("dbt")
    return str(beside_python) if beside_python.exists() else (shutil.which("dbt") or "dbt")


def _local_packages(project_dir: Path) -> list[Path]:
    """Folders of `local:` packages: a change there changes the manifest too."""
    folders = []
    for name in _PACKAGE_FILES:
        path = project_dir / name
        if path.exists():
            for entry in (yaml.safe_load(path.read_text()) or {}).get("packages") or []:
                if isinstance(entry, dict) and "local" in entry:
                    folders.append((project_dir / str(entry["local"])).resolve())
    return folders


def _fingerprint(project_dir: Path, extra: dict[str, Any]) -> str:
    """Paths, sizes and mtimes of every source file: cheap to compute, changes with any edit."""
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for root in [project_dir, *_local_packages(project_dir)]:
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if d not in _NOT_SOURCES)
            for name in sorted(files):
                stat = os.stat(os.path.join(folder, name))
                digest.update(f"{folder}/{name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _needs_deps(project_dir: Path) -> bool:
    declared = [project_dir / name for name in (*_PACKAGE_FILES, "package-lock.yml") if (project_dir / name).exists()]
    installed = project_dir / "dbt_packages"
    if not declared:
        return False
    return not installed.exists() or max(p.stat().st_mtime for p in declared) > installed.stat().st_mtime


@contextmanager
def project_lock(project_dir: Path) -> Iterator[None]:
    """One dbt command at a time writes into a project folder (its dbt_packages/, package-lock.yml,
    target/), whichever process runs it: the DAG processor, a CLI run, parallel test workers."""
    digest = hashlib.sha256(str(Path(project_dir).resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"lakehouse-dbt-project-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _dbt(args: list[str], project_dir: Path, profiles_yml: Path, target: str, log_dir: Path) -> None:
    command = [_dbt_executable(), *args, "--project-dir", str(project_dir), "--profiles-dir", str(profiles_yml.parent),
               "--profile", "lakehouse", "--target", target, "--log-path", str(log_dir)]  # fmt: skip
    done = subprocess.run(command, cwd=project_dir, capture_output=True, text=True)
    if done.returncode != 0:
        output = f"{done.stdout}\n{done.stderr}"
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        cause = ([line for line in lines if "error" in line.lower()] or lines or ["no output"])[-1]
        if "hub.getdbt.com" in output:
            cause = ("the dbt package hub (hub.getdbt.com) cannot be reached; use the local stand-ins of "
                     "dbt_utils / dbt_date (README: Adding an existing dbt project). dbt said: " + cause)
        raise RuntimeError(f"`dbt {args[0]}` failed for {project_dir}: {cause[:600]}\n{output[-4000:]}")


def ensure_manifest(
    project_dir: Path,
    *,
    target_dir: Path | None = None,
    dbt_vars: dict[str, Any] | None = None,
    profiles_yml: Path | None = None,
) -> Path:
    """The project's manifest.json; runs `dbt deps` / `dbt parse` only when the project changed.

    A DAG file is parsed every few seconds by Airflow: the unchanged case costs one directory walk.
    """
    settings = load_settings()
    project_dir = Path(project_dir).resolve()
    profiles_yml = Path(profiles_yml or settings.profiles_dir / "profiles.yml").resolve()
    target_dir = Path(target_dir or settings.manifest_dir(project_dir.parent.name)).resolve()
    manifest = target_dir / "manifest.json"
    stamp = target_dir / "manifest.fingerprint"
    extra = {"vars": dbt_vars or {}, "engine": settings.engine, "profiles": profiles_yml.read_text()}
    fingerprint = _fingerprint(project_dir, extra)
    if manifest.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return manifest
    target_dir.mkdir(parents=True, exist_ok=True)
    # The DAG processor and a CLI run may parse at the same moment: one of them parses, the other waits.
    with open(target_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest.exists() and stamp.exists() and stamp.read_text() == fingerprint:
            return manifest
        log_dir = target_dir / "logs"
        target = get_engine(settings).dbt_target
        with project_lock(project_dir):
            if _needs_deps(project_dir):
                # Installed here into <project>/dbt_packages; Cosmos links that folder into each task's copy.
                _dbt(["deps"], project_dir, profiles_yml, target, log_dir)
        vars_arg = ["--vars", json.dumps(dbt_vars)] if dbt_vars else []
        _dbt(["parse", "--target-path", str(target_dir), *vars_arg], project_dir, profiles_yml, target, log_dir)
        stamp.write_text(_fingerprint(project_dir, extra))
    return manifest
