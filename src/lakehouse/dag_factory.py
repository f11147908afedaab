"""One Airflow DAG per pipeline folder: ingest tasks -> the dbt project (Cosmos) -> quality -> maintenance.

    ingest_<source> (parallel) ──▶ dbt (one task per model + its tests) ──▶ publish_data_quality ──▶ maintain_tables
                                          └──────────────────────────────────────────────────────────────▲

Heavy modules (pyiceberg, the quality and maintenance code) are imported inside the task callables,
so parsing the DAG file stays fast.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, TaskGroup
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, SourceRenderingBehavior, TestBehavior
from cosmos.operators.local import DbtRunLocalOperator, DbtSeedLocalOperator, DbtSnapshotLocalOperator

from .lineage.naming import table_asset_uri
from .lineage.operators import LineagePythonOperator
from .pipeline import Pipeline, load_pipeline, pipeline_folders
from .settings import load_settings

log = logging.getLogger(__name__)

DBT_GROUP_ID = "dbt"
PUBLISH_TASK_ID = "publish_data_quality"
MAINTAIN_TASK_ID = "maintain_tables"
# Rendered by Airflow when the task runs; a scheduled daily run covers [logical date, next day).
DATA_INTERVAL_VARS = {
    "data_interval_start": "{{ data_interval_start | ds }}",
    "data_interval_end": "{{ data_interval_end | ds }}",
}
# `lakehouse run --full-refresh` passes it in the run's conf; Cosmos's run/seed operators template it.
FULL_REFRESH = "{{ dag_run.conf.get('full_refresh', False) }}"
# Folders dbt writes into; they never change what `dbt parse` produces.
_NOT_SOURCES = {"target", "logs", "dbt_packages", "__pycache__", ".git"}
_PACKAGE_FILES = ("packages.yml", "dependencies.yml")
_WRITING_OPERATORS = (DbtRunLocalOperator, DbtSeedLocalOperator, DbtSnapshotLocalOperator)


def table_asset(full_name: str) -> Asset:
    """The Airflow Asset of the Iceberg table 'namespace.table': its lineage identity (lineage/naming.py) as a URI."""
    return Asset(table_asset_uri(full_name))


def dbt_run_dir(pipeline_name: str, run_id: str) -> Path:
    """Where every dbt task of one DAG run leaves its artifacts: <dbt target dir>/<pipeline>/<run id>/<task id>/."""
    safe_run_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return load_settings().dbt_target_dir / pipeline_name / safe_run_id


# --- dbt manifest ---------------------------------------------------------------------------------


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


def _dbt(args: list[str], project_dir: Path, profiles_yml: Path, target: str, log_dir: Path) -> None:
    command = [_dbt_executable(), *args, "--project-dir", str(project_dir), "--profiles-dir", str(profiles_yml.parent),
               "--profile", "lakehouse", "--target", target, "--log-path", str(log_dir)]  # fmt: skip
    done = subprocess.run(command, cwd=project_dir, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`dbt {args[0]}` failed for {project_dir}:\n{done.stdout[-4000:]}{done.stderr[-2000:]}")


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
    extra = {"vars": dbt_vars or {}, "target": settings.engine, "profiles": profiles_yml.read_text()}
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
        if _needs_deps(project_dir):
            # Installed here into <project>/dbt_packages; Cosmos links that folder into each task's copy.
            _dbt(["deps"], project_dir, profiles_yml, settings.engine, log_dir)
        vars_arg = ["--vars", json.dumps(dbt_vars)] if dbt_vars else []
        _dbt(["parse", "--target-path", str(target_dir), *vars_arg], project_dir, profiles_yml, settings.engine, log_dir)
        stamp.write_text(_fingerprint(project_dir, extra))
    return manifest


# --- task callables (run on the worker; imports are lazy on purpose) -----------------------------


def _ingest(pipeline_name: str, source_name: str, batch_date: str, options: dict, run_id: str) -> dict:
    from lakehouse.ingest import run_ingest

    return run_ingest(pipeline_name, source_name, batch_date, options, run_id=run_id)


def _deliver(pipeline_name: str, delivery_name: str, options: dict, run_id: str) -> dict:
    from lakehouse.delivery import run_delivery

    return run_delivery(pipeline_name, delivery_name, options, run_id=run_id)


def save_dbt_artifacts(project_dir: str, context: Any = None, pipeline_name: str = "") -> None:
    """Cosmos callback, called after every dbt command (also a failed one) with its temporary project copy.

    Cosmos deletes that copy when the task ends; keep the result artifacts and dbt.log under
    dbt_run_dir(...)/<task id>/ (and the manifest once per run) for publish_data_quality.
    """
    target = Path(project_dir) / "target"
    run_dir = dbt_run_dir(pipeline_name, context["run_id"])
    task_dir = run_dir / context["ti"].task_id
    task_dir.mkdir(parents=True, exist_ok=True)
    from lakehouse.quality import RESULT_FILES

    for source in [*(target / name for name in RESULT_FILES), Path(project_dir) / "logs" / "dbt.log"]:
        if source.exists():
            shutil.copy2(source, task_dir / source.name)
    if (target / "manifest.json").exists() and not (run_dir / "manifest.json").exists():
        shutil.copy2(target / "manifest.json", run_dir / "manifest.json")


def _publish(pipeline_name: str, run_id: str) -> Any:
    from lakehouse.datahub import publish_assertions
    from lakehouse.quality import collect_results, publish_run_results, result_files

    run_dir = dbt_run_dir(pipeline_name, run_id)
    if not run_dir.is_dir() or not result_files(run_dir):
        # No dbt task ran (e.g. an ingest failed): nothing to record, and the run fails anyway.
        return 0
    results = collect_results(pipeline_name, run_id, run_dir)
    written = publish_run_results(pipeline_name, run_id, run_dir, results=results)
    # Then the same results as DataHub assertions (GMS or a file); a failure to deliver fails the task.
    publish_assertions(pipeline_name, run_id, run_dir, results=results)
    return written


def _maintain(pipeline_name: str) -> Any:
    from lakehouse.maintenance import maintain_pipeline

    return maintain_pipeline(pipeline_name)


# --- DAG -----------------------------------------------------------------------------------------


def _timetable(schedule: str | None):
    # Airflow 3 turns a cron string into a point-in-time trigger; a daily batch needs a [day, next day) interval.
    if schedule is None or schedule in ("@once", "@continuous"):
        return schedule
    return CronDataIntervalTimetable(schedule, timezone="UTC")


def _set_model_outlets(group: DbtTaskGroup, manifest_path: Path) -> None:
    """Each model/seed run task emits the Asset of the Iceberg table it commits (<schema>.<alias>)."""
    nodes = json.loads(manifest_path.read_text())["nodes"]
    for unique_id, task_or_group in group.tasks_map.items():
        # Which dbt node each task runs, for its OpenLineage extractor (lakehouse.lineage.dbt).
        for task in task_or_group.children.values() if isinstance(task_or_group, TaskGroup) else [task_or_group]:
            task.lakehouse_dbt_node = unique_id
        node = nodes.get(unique_id)
        if node is None or node["resource_type"] not in ("model", "seed", "snapshot"):
            continue
        tasks = task_or_group.children.values() if isinstance(task_or_group, TaskGroup) else [task_or_group]
        for task in tasks:
            if isinstance(task, _WRITING_OPERATORS):
                task.outlets = [table_asset(f"{node['schema']}.{node.get('alias') or node['name']}")]


def build_dag(pipeline: Pipeline) -> DAG:
    settings = load_settings()
    profiles_yml = settings.profiles_dir / "profiles.yml"
    parse_vars = {**pipeline.dbt_vars, "data_interval_start": str(pipeline.start_date),
                  "data_interval_end": str(pipeline.start_date + dt.timedelta(days=1))}  # fmt: skip
    manifest = ensure_manifest(pipeline.dbt_project_dir, target_dir=settings.manifest_dir(pipeline.name),
                               dbt_vars=parse_vars, profiles_yml=profiles_yml)  # fmt: skip
    dag = DAG(
        dag_id=pipeline.dag_id,
        description=pipeline.description[:200] or None,
        schedule=_timetable(pipeline.schedule),
        start_date=dt.datetime.combine(pipeline.start_date, dt.time(), dt.UTC),
        catchup=pipeline.catchup,
        tags=pipeline.tags,
        params=dict(pipeline.params),
        max_active_runs=1,
        doc_md=pipeline.description or None,
    )
    with dag:
        ingest = [
            LineagePythonOperator(
                task_id=f"ingest_{source.name}",
                lineage_kind="ingest",
                python_callable=_ingest,
                op_kwargs={
                    "pipeline_name": pipeline.name,
                    "source_name": source.name,
                    "batch_date": DATA_INTERVAL_VARS["data_interval_start"],
                    "options": dict(source.options),  # op_kwargs is templated: "{{ params.x }}" renders at run time
                    "run_id": "{{ run_id }}",
                },
                outlets=[table_asset(source.table)],
            )
            for source in pipeline.ingest
        ]
        dbt = DbtTaskGroup(
            group_id=DBT_GROUP_ID,
            project_config=ProjectConfig(
                dbt_project_path=pipeline.dbt_project_dir,
                manifest_path=manifest,
                # deps are installed by ensure_manifest; Cosmos links <project>/dbt_packages into its copy.
                install_dbt_deps=False,
            ),
            profile_config=ProfileConfig(
                profile_name="lakehouse", target_name=settings.engine, profiles_yml_filepath=profiles_yml
            ),
            execution_config=ExecutionConfig(
                execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER
            ),
            render_config=RenderConfig(
                load_method=LoadMode.DBT_MANIFEST,
                test_behavior=TestBehavior.AFTER_EACH,
                should_detach_multiple_parents_tests=True,
                # A task per source with a freshness threshold: `dbt source freshness` before its models.
                source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
                # Our own iceberg:// outlets replace Cosmos's runtime duckdb://... assets (see _set_model_outlets).
                emit_datasets=False,
            ),
            operator_args={
                # `vars` is a templated field of every Cosmos operator: rendered per task at run time.
                "vars": {**pipeline.dbt_vars, **DATA_INTERVAL_VARS},
                "full_refresh": FULL_REFRESH,
                "callback": save_dbt_artifacts,
                "callback_args": {"pipeline_name": pipeline.name},
            },
        )
        _set_model_outlets(dbt, manifest)
        publish = LineagePythonOperator(
            task_id=PUBLISH_TASK_ID,
            lineage_kind="publish",
            python_callable=_publish,
            op_kwargs={"pipeline_name": pipeline.name, "run_id": "{{ run_id }}"},
            trigger_rule="all_done",  # record the results of a failed dbt run too
        )
        maintain = LineagePythonOperator(
            task_id=MAINTAIN_TASK_ID, lineage_kind="maintain", python_callable=_maintain, op_kwargs={"pipeline_name": pipeline.name}
        )
        deliver = [
            LineagePythonOperator(
                task_id=f"deliver_{delivery.name}",
                lineage_kind="deliver",
                python_callable=_deliver,
                op_kwargs={
                    "pipeline_name": pipeline.name,
                    "delivery_name": delivery.name,
                    "options": dict(delivery.options),
                    "run_id": "{{ run_id }}",
                },
                inlets=[table_asset(delivery.table)],
            )
            for delivery in pipeline.deliver
        ]
        ingest >> dbt >> publish >> maintain
        if deliver:
            # Marts leave the lakehouse only once built and tested; data quality is published either way.
            dbt >> deliver >> publish
        # Also directly after dbt: a failed dbt task leaves maintain_tables upstream_failed, and the DAG run
        # (judged by its leaf tasks) ends failed even though publish_data_quality succeeded.
        dbt >> maintain
    return dag


def build_all_dags() -> dict[str, DAG]:
    """A DAG per pipeline folder. A broken folder is logged and left out, so it cannot take every other
    pipeline's DAG down with it; tests/test_dag_factory.py builds each one strictly, so CI still fails."""
    dags = {}
    for folder in pipeline_folders():
        try:
            pipeline = load_pipeline(folder)
            dags[pipeline.dag_id] = build_dag(pipeline)
        except Exception:
            log.exception("pipeline folder %s could not be turned into a DAG; it is left out", folder)
    return dags
