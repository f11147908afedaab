"""Run pipelines' DAGs locally, in this process, with Airflow's ``dag.test()``: no scheduler, no webserver.

Airflow reads its configuration when it is first imported, so this module sets the environment
(AIRFLOW_HOME under LAKEHOUSE_HOME, the repo's dags folder, ...) before importing anything of Airflow.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import re
import secrets
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import get_catalog
from .engines import get_engine
from .lineage.config import lineage_environment
from .pipeline import Pipeline, discover, get_pipeline
from .settings import REPO_ROOT, Settings, load_settings

DAG_FILE = REPO_ROOT / "dags" / "lakehouse_dags.py"
FINISHED = {"success", "failed", "upstream_failed", "skipped", "removed"}
FAILED = {"failed", "upstream_failed"}


@dataclass
class PipelineResult:
    pipeline: str
    state: str
    run_id: str | None = None
    tasks_succeeded: int = 0
    tasks_failed: int = 0
    task_states: dict[str, str] = field(default_factory=dict)
    # task id -> (start, end) as ISO timestamps: shows which tasks ran at the same time.
    task_times: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    tests_passed: int = 0
    tests_warned: int = 0
    tests_failed: int = 0
    mart_rows: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    error: str | None = None
    log_file: str | None = None  # Airflow's and dbt's output for this run
    task_errors: dict[str, str] = field(default_factory=dict)  # failed task -> the first error it logged


def airflow_environment(settings: Settings, executor: str | None = None) -> dict[str, str]:
    home = settings.airflow_home
    env = {
        "AIRFLOW_HOME": str(home),
        # Under a real executor the task processes' API calls and the run loop write to this one SQLite
        # file at once; wait up to 60 s for its lock instead of pysqlite's 5 s, which a busy 2-core
        # machine can exceed (the task then fails with "database is locked").
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILE.parent),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # 2 cores: a few task processes at most (the default forks 32).
        "AIRFLOW__CORE__PARALLELISM": "4",
        # The first parse of the DAG file runs `dbt deps` + `dbt parse` for every pipeline whose project
        # changed (dag_factory.ensure_manifest): minutes on a busy 2-core machine, not Airflow's 30 s.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.logs_dir / "airflow"),
        "AIRFLOW__COSMOS__CACHE_DIR": str(settings.home / "cosmos_cache"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "LAKEHOUSE_HOME": str(settings.home),
    }
    if executor == "local":
        env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
    # OpenLineage: Airflow's provider emits an event as each task starts and ends (lakehouse.lineage.config).
    env.update(lineage_environment(settings, dag_events=False))
    return env


def _prepare_airflow(settings: Settings, executor: str | None) -> None:
    env = airflow_environment(settings, executor)
    database = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if "airflow.settings" in sys.modules and database != sys.modules["airflow.settings"].SQL_ALCHEMY_CONN:
        raise RuntimeError(
            "Airflow was imported, and configured, before the lakehouse runner could point it at "
            f"{settings.airflow_home}: run pipelines from a fresh process"
        )
    os.environ.update(env)
    # What the engine's dbt tasks need running (Spark: the Thrift server) and where it is.
    os.environ.update(get_engine(settings).prepare())
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    database_file = settings.airflow_home / "airflow.db"
    migrated = _migrated_database_cache()
    if not database_file.exists() and migrated.exists():
        try:
            _copy_database(migrated, database_file)  # a fresh home: a copy of an empty migrated DB, not 40 migrations
        except (OSError, sqlite3.Error):
            migrated.unlink(missing_ok=True)
    import airflow  # noqa: F401 - reads the configuration above and sets up logging, once
    if not database_file.exists():
        from airflow.utils.db import upgradedb  # same as `airflow db migrate`

        upgradedb()
        try:  # kept for the next fresh home of this Airflow version
            migrated.parent.mkdir(parents=True, exist_ok=True)
            partial = migrated.with_name(f".{migrated.name}.{os.getpid()}")
            _copy_database(database_file, partial)
            partial.replace(migrated)
        except (OSError, sqlite3.Error):
            pass


def _copy_database(source: Path, destination: Path) -> None:
    """A consistent copy through SQLite's online backup, kept only when it holds a migrated schema (one
    cached copy came out empty under parallel test processes: a copy is never trusted unchecked)."""
    with closing(sqlite3.connect(source)) as reader, closing(sqlite3.connect(destination)) as writer:
        reader.backup(writer)
        try:
            migrated = writer.execute("SELECT count(*) FROM alembic_version").fetchone()[0] > 0
        except sqlite3.Error:
            migrated = False
    if not migrated:
        destination.unlink(missing_ok=True)
        raise OSError(f"{source} holds no migrated Airflow database")


def _migrated_database_cache() -> Path:
    """An empty Airflow metadata DB migrated by this Airflow version, in the user's cache folder."""
    from importlib.metadata import version

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lakehouse"
    return cache / f"airflow-{version('apache-airflow')}-empty.db"


@contextmanager
def _execution_api():
    """Serve Airflow's Task Execution API from a thread of this process, for the executor's workers.

    Airflow 3 task processes never touch the metadata DB: they report to this API over HTTP. dag.test()
    without an executor serves it in-process; with an executor something must listen on a port.
    """
    import uvicorn
    from airflow.api_fastapi.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
    # The executor signs each task's token and this API checks it: one secret for both.
    os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(32))
    server = uvicorn.Server(uvicorn.Config(create_app(apps="execution"), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the Task Execution API server did not start")
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def _console_to(log_path: Path):
    """Airflow's and dbt's console output (file descriptors 1 and 2, sys.stdout) goes to log_path;
    only sys.stderr stays on the terminal, for the caller's progress display (e.g. rich on stderr).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    python_stderr = sys.stderr
    terminal = {fd: os.dup(fd) for fd in (1, 2)}
    with open(log_path, "ab") as log:
        for fd in (1, 2):
            os.dup2(log.fileno(), fd)
        sys.stderr = os.fdopen(os.dup(terminal[2]), "w", buffering=1)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.close()
            sys.stderr = python_stderr
            for fd in (1, 2):
                os.dup2(terminal[fd], fd)
                os.close(terminal[fd])


def _load_dag(pipeline: Pipeline, log_file: Path):
    # Through the DAG file (not build_dag) so the DAG's fileloc is what an executor's workers load. Only
    # this pipeline's DAG is built (the workers inherit the variable): the others are not parsed at all.
    from airflow.dag_processing.dagbag import DagBag

    from .dag_factory import ONLY_VARIABLE

    os.environ[ONLY_VARIABLE] = pipeline.name
    bag = DagBag(dag_folder=str(DAG_FILE), bundle_path=DAG_FILE.parent, bundle_name="dags-folder")
    if pipeline.dag_id not in bag.dags:
        errors = "\n".join(bag.import_errors.values())
        cause = _first_error(log_file, f"pipeline folder {pipeline.folder}") or errors
        raise RuntimeError(f"pipeline {pipeline.name!r} could not be loaded as a DAG: {cause}".rstrip())
    return bag.dags[pipeline.dag_id]


_ERROR_LINE = re.compile(r"(?:^|[\s\"'])((?:[A-Za-z_][\w.]*)?(?:Error|Exception|Invalid\w*)\b:?\s.*)$")


_HEADINGS = {"Database Error", "Runtime Error", "Compilation Error"}
_THRIFT_WRAPPER = re.compile(r"^[\w.]*HiveSQLException: Error running query: ")


def _error_in(lines: list[str]) -> str | None:
    """The first line that reads as an error: 'SomethingError: why' (a traceback's last line, dbt's message)."""
    for index, line in enumerate(lines):
        text = line.strip()
        if text.startswith("{") and '"event"' in text:  # Airflow 3 task logs are JSON lines
            try:
                record = json.loads(text)
                text = str(record.get("error_detail") or record.get("event") or "")
            except ValueError:
                pass
        match = _ERROR_LINE.search(text)
        if match and "Traceback" not in text:
            found = match.group(1).strip()
            if re.search(r"Error in (model|test|seed|snapshot|unit_test) ", found):
                # dbt: "Runtime Error in model x (path)" then the database's message on the next line.
                # A bare "Database Error" heading is skipped, and Spark's Thrift wrapper around its message.
                details = [n.strip() for n in lines[index + 1:index + 5] if n.strip() and n.strip() not in _HEADINGS]
                detail = _THRIFT_WRAPPER.sub("", details[0]) if details else ""
                found = f"{found}: {detail}" if detail else found
            return found[:500]
    return None


def _task_errors(dag_id: str, run_id: str, failed: list[str], settings: Settings, log_file: Path) -> dict[str, str]:
    """For each failed task, the first error in its own Airflow log (a real executor writes one per task),
    else in the run log after the task's name."""
    errors: dict[str, str] = {}
    safe_run = run_id.replace(":", "_").replace("+", "_")
    try:
        run_lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        run_lines = []
    for task_id in failed:
        found = None
        for path in sorted((settings.logs_dir / "airflow").glob(f"dag_id={dag_id}/run_id=*/task_id={task_id}/*.log")):
            if run_id in str(path) or safe_run in str(path):
                found = _error_in(path.read_text(errors="replace").splitlines())
                if found:
                    break
        if not found:
            marks = [i for i, line in enumerate(run_lines) if task_id in line]
            for index in marks:
                found = _error_in(run_lines[index:index + 60])
                if found:
                    break
        errors[task_id] = found or "failed (no error line found: see the full log)"
    return errors


def _first_error(log_file: Path, marker: str) -> str | None:
    """The error logged after ``marker`` in the run log: the last line of its traceback."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for index in range(len(lines) - 1, -1, -1):
        if marker in lines[index]:
            return _error_in(lines[index + 1:index + 80]) or lines[index].split(marker, 1)[-1].strip(" :") or None
    return None


class _Progress(threading.Thread):
    """Polls the metadata DB for the task states of one DAG run; works whoever runs the tasks."""

    def __init__(self, dag, logical_date: dt.datetime, since: dt.datetime, on_progress: Callable, interval=0.5):
        super().__init__(daemon=True)
        self.dag, self.logical_date, self.since = dag, logical_date, since
        self.on_progress, self.interval = on_progress, interval
        self.total = len(dag.task_ids)
        self.seen: dict[str, str] = {}
        self.stopping = threading.Event()

    def poll(self) -> None:
        from airflow.models import DagRun, TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            run = session.scalar(
                select(DagRun).where(
                    DagRun.dag_id == self.dag.dag_id,
                    DagRun.logical_date == self.logical_date,
                    DagRun.run_after >= self.since,
                )
            )
            if run is None:
                return
            rows = session.execute(
                select(TaskInstance.task_id, TaskInstance.state).where(
                    TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id
                )
            ).all()
        for task_id, state in sorted(rows):
            state = str(state.value if hasattr(state, "value") else state) if state else None
            if state in ("running", *FINISHED) and self.seen.get(task_id) != state:
                self.seen[task_id] = state
                done = sum(1 for s in self.seen.values() if s in FINISHED)
                self.on_progress(
                    {"pipeline": self.dag.dag_id, "run_id": run.run_id, "task_id": task_id, "state": state,
                     "done": done, "total": self.total}  # fmt: skip
                )

    def start(self) -> None:
        # Import and configure every ORM model here, in the calling thread: a first query from this
        # thread would do it while dag.test() imports models in the main thread, and the two deadlock.
        from airflow.models import import_all_models
        from sqlalchemy.orm import configure_mappers

        import_all_models()
        configure_mappers()
        self.poll()
        super().start()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - SQLite may be locked by a writer for a moment; poll again
                pass
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.poll()  # the final states


def _test_counts(pipeline_name: str, run_id: str, run_dir: Path) -> tuple[int, int, int]:
    from .dbt_artifacts import result_files
    from .quality import collect_results, test_counts

    if not run_dir.is_dir() or not result_files(run_dir):
        return 0, 0, 0
    counts = test_counts(collect_results(pipeline_name, run_id, run_dir))
    return counts["passed"], counts["warned"], counts["failed"]


def _mart_rows(pipeline: Pipeline) -> dict[str, int]:
    """Rows of every marts table the pipeline's dbt project builds (those that exist), from snapshot summaries."""
    from .catalog import load_table
    from .dbt_artifacts import built_tables, load_manifest

    counts = {}
    for name in built_tables(load_manifest(pipeline.name)):
        table = load_table(name) if name.startswith("marts.") else None
        snapshot = table.current_snapshot() if table is not None else None
        if table is not None:
            counts[name] = int((snapshot.summary or {}).get("total-records") or 0) if snapshot else 0
    return counts


def _run_one(pipeline: Pipeline, logical_date: dt.date, conf: dict | None, on_progress, executor, log_file) -> PipelineResult:
    from .dbt_artifacts import run_dir as dbt_run_dir

    started = time.monotonic()
    result = PipelineResult(pipeline=pipeline.name, state="failed", log_file=str(log_file))
    try:
        dag = _load_dag(pipeline, log_file)
        # Daily data intervals: a run created at the end of day D covers [D, D+1), the day asked for.
        run_at = dt.datetime.combine(logical_date + dt.timedelta(days=1), dt.time(), dt.UTC)
        watcher = None
        if on_progress:
            watcher = _Progress(dag, run_at, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), on_progress)
            watcher.start()
        # Cosmos runs gc.collect() after every dbt command (to release dbt's semaphores); over the
        # whole in-process heap of Airflow + dbt that cost 0.6 s a task. Freezing what is loaded by
        # now leaves each collection only the objects the task itself allocated.
        gc.freeze()
        try:
            run = dag.test(logical_date=run_at, run_conf=conf or None, use_executor=executor is not None)
        finally:
            gc.unfreeze()
            if watcher:
                watcher.stop()
        result.run_id = run.run_id
        result.state = str(getattr(run.state, "value", run.state))
        for ti in run.get_task_instances():
            result.task_states[ti.task_id] = str(getattr(ti.state, "value", ti.state))
            result.task_times[ti.task_id] = tuple(t.isoformat() if t else None for t in (ti.start_date, ti.end_date))
        result.tests_passed, result.tests_warned, result.tests_failed = _test_counts(
            pipeline.name, run.run_id, dbt_run_dir(pipeline.name, run.run_id)
        )
        result.mart_rows = _mart_rows(pipeline)
        failed = [task for task, state in result.task_states.items() if state == "failed"]
        if failed:
            result.task_errors = _task_errors(dag.dag_id, run.run_id, failed, load_settings(), log_file)
    except Exception as error:  # noqa: BLE001 - one pipeline's failure is reported, the next one still runs
        result.error = f"{type(error).__name__}: {error}"
    result.tasks_succeeded = sum(state == "success" for state in result.task_states.values())
    result.tasks_failed = sum(state in FAILED for state in result.task_states.values())
    result.wall_seconds = round(time.monotonic() - started, 2)
    return result


class PipelineRunningError(RuntimeError):
    """Another process (or this one) runs the pipeline on this lakehouse now."""


# Lock files this process holds -> what they say. A POSIX lock never conflicts with its own process, and
# closing any descriptor of the file drops it: a second take in this process is refused from here instead.
_LOCKED: dict[Path, dict] = {}
_LOCKED_GUARD = threading.Lock()


def _already_running(name: str, holder: dict) -> PipelineRunningError:
    return PipelineRunningError(
        f"pipeline {name} is already running on this lakehouse (pid {holder.get('pid', '?')}, "
        f"since {holder.get('since', '?')}); wait for it or stop it"
    )


@contextmanager
def pipeline_lock(settings: Settings, names: list[str]):
    """Hold <home>/locks/<pipeline>.lock, exclusively, for each of ``names`` while the block runs.

    Non-blocking: a pipeline another process (or this one) is running raises PipelineRunningError naming
    its pid and start time. The lock is a POSIX fcntl lock, so it ends with the process that holds it,
    even one that crashed, and forked task processes do not inherit it: a file left behind never blocks.
    """
    import errno
    import fcntl
    import json

    folder = settings.home / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    held: list[tuple[Path, int]] = []
    try:
        for name in sorted(set(names)):
            path = folder / f"{name}.lock"
            with _LOCKED_GUARD:
                if path in _LOCKED:
                    raise _already_running(name, _LOCKED[path])
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as error:
                    try:
                        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
                    except ValueError:  # being written this instant
                        holder = {}
                    os.close(fd)
                    if error.errno not in (errno.EACCES, errno.EAGAIN):
                        raise
                    raise _already_running(name, holder) from None
                since = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
                holder = {"pipeline": name, "pid": os.getpid(), "since": since}
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(holder).encode(), 0)
                _LOCKED[path] = holder
                held.append((path, fd))
        yield
    finally:
        with _LOCKED_GUARD:
            for path, fd in held:
                os.ftruncate(fd, 0)  # while still locked: the next holder never reads a finished run's pid
                os.close(fd)
                del _LOCKED[path]


def run_pipelines(
    names: list[str] | None = None,
    logical_date: dt.date | None = None,
    conf: dict[str, Any] | None = None,
    on_progress: Callable[[dict], None] | None = None,
    executor: str | None = None,
    log_file: Path | None = None,
) -> list[PipelineResult]:
    """Run each pipeline's DAG once for ``logical_date`` (default: yesterday UTC, the last complete day).

    ``logical_date`` is the day of data processed (the run's data_interval_start). ``on_progress(event)``
    gets {pipeline, run_id, task_id, state, done, total} as tasks start and finish. ``executor="local"``
    sends tasks to Airflow's LocalExecutor so independent tasks run at the same time. Airflow's and
    dbt's console output goes to ``log_file`` (default <home>/logs/runs/<UTC time>.log).
    """
    if executor not in (None, "local"):
        raise ValueError(f"executor must be None (in-process) or 'local', not {executor!r}")
    settings = load_settings()
    if names:
        pipelines = [get_pipeline(name, settings) for name in names]
        not_loaded: dict[str, str] = {}
    else:  # every folder: one that does not load is reported in the results; the others still run
        found = discover(settings)
        # All of them: those the current engine runs (a pipeline may declare the engines it runs on).
        pipelines = [pipeline for pipeline in found.pipelines if pipeline.runs_on(settings.engine)]
        not_loaded = found.failures
    day = logical_date or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    log_file = Path(log_file or settings.logs_dir / "runs" / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.log")
    # Before any Airflow work: a second run of a pipeline at once would break the first's metadata DB.
    with pipeline_lock(settings, [pipeline.name for pipeline in pipelines]), _console_to(log_file):
        _prepare_airflow(settings, executor)
        get_catalog(settings)  # its tables and namespaces exist before parallel tasks look for them
        with _execution_api() if executor else nullcontext():
            results = [_run_one(pipeline, day, conf, on_progress, executor, log_file) for pipeline in pipelines]
    failed_to_load = [PipelineResult(pipeline=name, state="failed", error=f"the folder did not load: {error}")
                      for name, error in not_loaded.items()]
    return sorted(results + failed_to_load, key=lambda result: result.pipeline)
