"""One Airflow DAG per pipeline folder: ingest tasks -> the dbt project (Cosmos) -> quality -> maintenance.

    ingest_<source> (parallel) ──▶ dbt (a task per model + its tests) ──▶ publish_data_quality ──▶ maintain_tables ──▶ refresh_bi
                                        └──────────────────────────────────────────────────────────────▲

refresh_bi (lakehouse.bi) copies the marts, as published, to what the BI tool reads, and provisions the
pipeline's dashboards when the BI tool runs.

A `publish: wap` pipeline (lakehouse.release) builds and tests on the branch wap_<run id>, and a task
``publish`` between dbt and publish_data_quality, run only when every dbt task succeeded, moves every
mart's main to the branch in one catalog transaction (deliveries run after it, on what was published).

Heavy modules (pyiceberg, the quality and maintenance code) are imported inside the task callables,
so parsing the DAG file stays fast.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, TaskGroup
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, SourceRenderingBehavior, TestBehavior
from cosmos.operators.local import DbtRunLocalOperator, DbtSeedLocalOperator, DbtSnapshotLocalOperator

from . import dbt_artifacts
from .dbt_prepare import ensure_manifest
from .engines import get_engine
from .lineage.naming import table_asset_uri
from .lineage.operators import LineagePythonOperator
from .pipeline import InvalidPipeline, Pipeline, claim_tables, load_pipeline, pipeline_folders
from .settings import load_settings

log = logging.getLogger(__name__)

DBT_GROUP_ID = "dbt"
PUBLISH_TASK_ID = "publish_data_quality"
MAINTAIN_TASK_ID = "maintain_tables"
REFRESH_BI_TASK_ID = "refresh_bi"
RELEASE_TASK_ID = "publish"  # a `publish: wap` pipeline's release of its branch (lakehouse.release)
# Set on a WAP pipeline's dbt tasks (Cosmos's templated `env`, applied to os.environ around each in-process
# dbt invocation); lakehouse.settings turns it into a branch name (':' and '+' of a run id become '_').
WRITE_BRANCH_ENV = {"LAKEHOUSE_WRITE_BRANCH": "wap_{{ run_id }}"}
# Set on every other pipeline's dbt tasks: "main" (settings: no branch). Never left to the process: Cosmos
# (1.15, DbtLocalBaseOperator.calculate_openlineage_events_completes) copies a task's env into os.environ for
# good after its dbt command, so in one process (`lakehouse run`: every pipeline's dag.test()) a WAP
# pipeline's branch would stay set and a later pipeline's models would be committed to that branch, main
# left empty.
MAIN_BRANCH_ENV = {"LAKEHOUSE_WRITE_BRANCH": "main"}
# Rendered by Airflow when the task runs; a scheduled daily run covers [logical date, next day).
DATA_INTERVAL_VARS = {
    "data_interval_start": "{{ data_interval_start | ds }}",
    "data_interval_end": "{{ data_interval_end | ds }}",
}
# The Airflow run's id, for what a run keeps under its name (a fitted model: lakehouse.model_store).
RUN_VARS = {"run_id": "{{ run_id }}"}
# `lakehouse run --full-refresh` passes it in the run's conf; Cosmos's run/seed operators template it.
FULL_REFRESH = "{{ dag_run.conf.get('full_refresh', False) }}"
# `lakehouse run a b` builds only the DAGs of the pipelines it runs (a comma-separated list; unset: all).
ONLY_VARIABLE = "LAKEHOUSE_DAGS"
_WRITING_OPERATORS = (DbtRunLocalOperator, DbtSeedLocalOperator, DbtSnapshotLocalOperator)


def table_asset(full_name: str) -> Asset:
    """The Airflow Asset of the Iceberg table 'namespace.table': its lineage identity (lineage/naming.py) as a URI."""
    return Asset(table_asset_uri(full_name))


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
    dbt_artifacts.run_dir(...)/<task id>/ (and the manifest once per run) for publish_data_quality.
    """
    target = Path(project_dir) / "target"
    run_dir = dbt_artifacts.run_dir(pipeline_name, context["run_id"])
    task_dir = run_dir / context["ti"].task_id
    task_dir.mkdir(parents=True, exist_ok=True)
    for source in [*(target / name for name in dbt_artifacts.RESULT_FILES), Path(project_dir) / "logs" / "dbt.log"]:
        if source.exists():
            shutil.copy2(source, task_dir / source.name)
    if (target / "manifest.json").exists() and not (run_dir / "manifest.json").exists():
        shutil.copy2(target / "manifest.json", run_dir / "manifest.json")
    if gc.get_freeze_count():
        # The runner froze the heap before the run (lakehouse.runner: Cosmos runs gc.collect() after every
        # dbt command). What this dbt command left alive is frozen too, so the next task's collection scans
        # only its own objects: 9 s less over energy's 33 dbt tasks, for about 17 MB kept.
        gc.freeze()


def _publish(pipeline_name: str, run_id: str, keep_state: bool = True) -> Any:
    from lakehouse.datahub import publish_assertions
    from lakehouse.governance import publish_governance
    from lakehouse.quality import collect_results, publish_run_results, summarize
    from lakehouse.slim_ci import keep_production_state

    run_dir = dbt_artifacts.run_dir(pipeline_name, run_id)
    if not run_dir.is_dir() or not dbt_artifacts.result_files(run_dir):
        # No dbt task ran (e.g. an ingest failed): nothing to record, and the run fails anyway.
        return 0
    results = collect_results(pipeline_name, run_id, run_dir)
    written = publish_run_results(pipeline_name, run_id, run_dir, results=results)
    # Then the same results as DataHub assertions (GMS or a file); a failure to deliver fails the task.
    publish_assertions(pipeline_name, run_id, run_dir, results=results)
    # And the owners, tags, docs and grants the project declares, the same way (lakehouse.governance).
    publish_governance(pipeline_name, run_id, run_dir)
    counts = summarize(results)
    # A WAP pipeline keeps it in its publish task instead, once the run is what readers see.
    if keep_state and not counts["failed"] and not counts["skipped"] and (run_dir / "manifest.json").exists():
        # Every node built and every check held: this run's project is what readers now see, the
        # state slim CI compares a working tree with (lakehouse.slim_ci).
        keep_production_state(pipeline_name, run_id, run_dir / "manifest.json")
    return written


def _release(pipeline_name: str, run_id: str) -> dict:
    from lakehouse.release import publish_run

    report = publish_run(pipeline_name, run_id)
    for move in report.moved:
        log.info("%s: main %s -> %s", move.table, move.before, move.after)
    for note in report.notes:
        log.info("%s", note)
    return {"run_id": run_id, "tables": len(report.moved), "atomic": report.atomic}


def _maintain(pipeline_name: str) -> Any:
    from lakehouse.maintenance import maintain_pipeline

    return maintain_pipeline(pipeline_name)


def _refresh_bi(pipeline_name: str) -> Any:
    from lakehouse.bi import refresh_and_provision

    report = refresh_and_provision(pipelines=[pipeline_name])
    log.info("%s", report.describe())
    if not report.ok:
        raise RuntimeError("\n".join(report.errors))  # a dashboard file of this pipeline is wrong: red, not silent
    return {"imported": report.imported, "unchanged": report.unchanged, "skipped": report.skipped}


# --- DAG -----------------------------------------------------------------------------------------


def _timetable(schedule: str | None):
    # Airflow 3 turns a cron string into a point-in-time trigger; a daily batch needs a [day, next day) interval.
    if schedule is None or schedule in ("@once", "@continuous"):
        return schedule
    return CronDataIntervalTimetable(schedule, timezone="UTC")


def _tasks(task_or_group) -> list:
    return list(task_or_group.children.values()) if isinstance(task_or_group, TaskGroup) else [task_or_group]


def _set_model_outlets(group: DbtTaskGroup, manifest: dict) -> None:
    """Each model/seed run task emits the Asset of the Iceberg table it commits (<schema>.<alias>)."""
    for unique_id, task_or_group in group.tasks_map.items():
        # Which dbt node each task runs, for its OpenLineage extractor (lakehouse.lineage.dbt).
        for task in _tasks(task_or_group):
            task.lakehouse_dbt_node = unique_id
        node = dbt_artifacts.node(manifest, unique_id)
        table = dbt_artifacts.node_table(node) if node and node["resource_type"] in ("model", "seed", "snapshot") else None
        for task in _tasks(task_or_group) if table else []:
            if isinstance(task, _WRITING_OPERATORS):
                task.outlets = [table_asset(table)]


def _seeds_before_readers(group: DbtTaskGroup, manifest: dict) -> None:
    """A model that reads a seed's table through source() runs after that seed.

    Cosmos draws edges for ref() only; a project that declares its seeds as sources (raw data loaded by
    dbt) would otherwise run those models first and fail with "table does not exist" on an empty home.
    """
    seeds = {dbt_artifacts.node_table(n): uid for uid, n in (manifest.get("nodes") or {}).items()
             if n.get("resource_type") == "seed" and uid in group.tasks_map}  # fmt: skip
    sources = {uid: dbt_artifacts.node_table(n) for uid, n in (manifest.get("sources") or {}).items()}
    for uid, node in (manifest.get("nodes") or {}).items():
        if uid not in group.tasks_map or node.get("resource_type") not in ("model", "snapshot"):
            continue
        for parent in (node.get("depends_on") or {}).get("nodes") or []:
            seed = seeds.get(sources.get(parent))
            if seed and seed != uid:
                group.tasks_map[seed] >> group.tasks_map[uid]


def build_dag(pipeline: Pipeline, owners: dict[str, str] | None = None) -> DAG:
    """The pipeline's DAG. ``owners`` (table -> pipeline) are the tables other pipelines write: one of them
    built by this pipeline's dbt project too is refused (InvalidPipeline naming both)."""
    settings = load_settings()
    if not pipeline.runs_on(settings.engine):
        raise InvalidPipeline(f"{pipeline.name} runs on the {', '.join(pipeline.engines)} engine only (its pipeline.yml "
                              f"'engines'), not on {settings.engine}")
    if pipeline.wap and settings.engine != "duckdb":
        # Only the DuckDB engine's dbt plugin writes and reads a branch: refused rather than published directly.
        raise InvalidPipeline(f"{pipeline.name}: publish: wap runs on the duckdb engine only, not on {settings.engine}")
    profiles_yml = settings.profiles_dir / "profiles.yml"
    parse_vars = {**pipeline.dbt_vars, "data_interval_start": str(pipeline.start_date),
                  "data_interval_end": str(pipeline.start_date + dt.timedelta(days=1))}  # fmt: skip
    manifest = ensure_manifest(pipeline.dbt_project_dir, target_dir=settings.manifest_dir(pipeline.name),
                               dbt_vars=parse_vars, profiles_yml=profiles_yml)  # fmt: skip
    nodes = dbt_artifacts.read_json(manifest)
    claim_tables(owners if owners is not None else {}, pipeline.name,
                 sorted(set(pipeline.raw_tables) | set(dbt_artifacts.built_tables(nodes))))
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
                profile_name="lakehouse", target_name=get_engine(settings).dbt_target, profiles_yml_filepath=profiles_yml
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
                "vars": {**pipeline.dbt_vars, **DATA_INTERVAL_VARS, **RUN_VARS},
                "full_refresh": FULL_REFRESH,
                "callback": save_dbt_artifacts,
                "callback_args": {"pipeline_name": pipeline.name},
                "env": dict(WRITE_BRANCH_ENV if pipeline.wap else MAIN_BRANCH_ENV),
            },
        )
        _set_model_outlets(dbt, nodes)
        _seeds_before_readers(dbt, nodes)
        publish = LineagePythonOperator(
            task_id=PUBLISH_TASK_ID,
            lineage_kind="publish",
            python_callable=_publish,
            op_kwargs={"pipeline_name": pipeline.name, "run_id": "{{ run_id }}", "keep_state": not pipeline.wap},
            trigger_rule="all_done",  # record the results of a failed dbt run too
        )
        maintain = LineagePythonOperator(
            task_id=MAINTAIN_TASK_ID,
            lineage_kind="maintain",
            python_callable=_maintain,
            op_kwargs={"pipeline_name": pipeline.name},
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
        refresh_bi = PythonOperator(
            task_id=REFRESH_BI_TASK_ID,
            python_callable=_refresh_bi,
            op_kwargs={"pipeline_name": pipeline.name},
        )
        ingest >> dbt >> publish >> maintain >> refresh_bi
        built = dbt
        if pipeline.wap:
            release = PythonOperator(
                task_id=RELEASE_TASK_ID,
                python_callable=_release,
                op_kwargs={"pipeline_name": pipeline.name, "run_id": "{{ run_id }}"},
                trigger_rule="all_success",  # one failed model or test: main stays as it was
            )
            dbt >> release >> [publish, maintain]
            built = release
        if deliver:
            # Marts leave the lakehouse only once built and tested (WAP: published); data quality is published either way.
            built >> deliver >> publish
        # Also directly after dbt: a failed dbt task leaves maintain_tables upstream_failed, and the DAG run
        # (judged by its leaf tasks) ends failed even though publish_data_quality succeeded.
        dbt >> maintain
    return dag


def _asked_for() -> set[str] | None:
    names = {n.strip() for n in os.environ.get(ONLY_VARIABLE, "").split(",") if n.strip()}
    return names or None


def build_all_dags() -> dict[str, DAG]:
    """A DAG per pipeline folder (only those in LAKEHOUSE_DAGS when it is set). A broken folder is logged and
    left out, so it cannot take every other pipeline's DAG down with it; tests/test_dag_factory.py builds
    each one strictly, so CI still fails. A pipeline writing a table another one writes is left out too,
    naming both: a table has one owner, nothing is silently overwritten."""
    only = _asked_for()
    folders = pipeline_folders()
    pipelines: dict[str, Pipeline] = {}
    for folder in folders:
        try:
            pipelines[folder.name] = load_pipeline(folder)
        except Exception:
            if only is None or folder.name in only:
                log.exception("pipeline folder %s could not be turned into a DAG; it is left out", folder)
    owners: dict[str, str] = {}
    for name, pipeline in list(pipelines.items()):
        # Raw tables of every declaration, and what the pipelines not built now build (their last manifest).
        tables = pipeline.raw_tables
        if only is not None and name not in only:
            tables = dbt_artifacts.pipeline_tables(pipeline)
        try:
            claim_tables(owners, name, tables)
        except InvalidPipeline as error:
            log.error("pipeline folder %s is left out: %s", pipeline.folder, error)
            del pipelines[name]
    dags = {}
    engine = load_settings().engine
    for name, pipeline in pipelines.items():
        if only is not None and name not in only:
            continue
        if not pipeline.runs_on(engine):
            log.info("pipeline %s runs on %s only: no DAG on the %s engine", name, ", ".join(pipeline.engines), engine)
            continue
        try:
            dags[pipeline.dag_id] = build_dag(pipeline, owners)
        except Exception:
            log.exception("pipeline folder %s could not be turned into a DAG; it is left out", pipeline.folder)
    return dags
