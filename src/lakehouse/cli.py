"""The `lakehouse` command: query, inspect, maintain and run the lakehouse from a terminal.

Formatting only: the work is done by the modules (compute, quality, maintenance, runner), so every
command is also a Python call.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .settings import REPO_ROOT, Settings, load_settings

FORMATS = click.Choice(["table", "csv", "json"])
UI_URL = "http://localhost:8080"
STATUS_STYLE = {"success": "green", "pass": "green", "warn": "yellow", "fail": "red", "error": "red", "skipped": "dim"}


class _Group(click.Group):
    """Errors become one line on stderr and exit code 1; LAKEHOUSE_DEBUG=1 shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if os.environ.get("LAKEHOUSE_DEBUG"):
                raise
            raise click.ClickException(str(error).strip() or type(error).__name__) from None


@click.group(cls=_Group)
def main() -> None:
    """A local-first lakehouse: Iceberg tables, DuckDB compute, dbt models, Airflow pipelines."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _human_bytes(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def emit(
    columns: list[str], rows: list[list[Any]], fmt: str = "table", title: str | None = None, max_rows: int | None = None
) -> None:
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_text(v) for v in row] for row in rows])
        click.echo(buffer.getvalue(), nl=False)
    elif fmt == "json":
        click.echo(json.dumps([dict(zip(columns, row)) for row in rows], default=_text, indent=2))
    else:
        table = Table(*columns, title=title)
        for row in rows[:max_rows]:
            table.add_row(*[_text(v) for v in row])
        console = Console()
        console.print(table)
        if max_rows is not None and len(rows) > max_rows:
            console.print(f"[dim]{len(rows) - max_rows} more rows not shown; use --format csv or json for all[/dim]")


@main.command()
@click.argument("sql")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.option("--max-rows", type=int, default=200, show_default=True, help="Rows shown by --format table.")
def query(sql: str, fmt: str, max_rows: int) -> None:
    """Run a read-only SQL query with DuckDB; every Iceberg table is a view <namespace>.<table>.

    Only SELECT (and EXPLAIN of one) runs, and DuckDB reads nothing but the warehouse: no COPY, ATTACH,
    INSTALL/LOAD or SET, no other files. Time travel: iceberg_scan('<metadata file>', snapshot_from_id => N).
    """
    from .engines import get_engine

    session = get_engine(load_settings()).connect(read_only=True)
    try:
        data = session.query(sql)
    finally:
        session.close()
    if data is None:  # a statement without a result set
        return
    # By column, not to_pylist(): a result may repeat a column name (select 1 as a, 2 as a).
    rows = [list(row) for row in zip(*(column.to_pylist() for column in data.columns))]
    emit(data.column_names, rows, fmt, max_rows=max_rows)


@main.command()
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def tables(fmt: str) -> None:
    """Every Iceberg table with its rows, snapshots, data files, size and last commit (UTC)."""
    from .maintenance import describe_tables

    described = describe_tables()
    human = fmt == "table"
    rows = [
        [
            t["table"], t["rows"], t["snapshots"], t["data_files"],
            _human_bytes(t["bytes"]) if human else t["bytes"],
            t["last_commit"].strftime("%Y-%m-%d %H:%M:%S") if human and t["last_commit"] else t["last_commit"],
        ]
        for t in described
    ]
    columns = ["table", "rows", "snapshots", "data_files", "size" if human else "bytes", "last_commit_utc"]
    emit(columns, rows, fmt)


@main.command()
@click.option("--pipeline", help="Only this pipeline.")
@click.option("--history", type=int, default=0, help="Also list the last N runs with their counts.")
def quality(pipeline: str | None, history: int) -> None:
    """Data-quality results of the latest run of each pipeline (from audit.dq_results)."""
    from . import quality as dq

    latest = dq.latest_results(pipeline)
    if latest.num_rows == 0:
        click.echo("no data-quality results yet" + (f" for pipeline {pipeline}" if pipeline else ""))
        return
    console = Console()
    for name in sorted(set(latest.column("pipeline").to_pylist())):
        rows = [r for r in latest.to_pylist() if r["pipeline"] == name]
        table = Table("node", "type", "status", "failures", "seconds", "tested model", title=f"{name}  run {rows[0]['run_id']}")
        for r in rows:
            style = STATUS_STYLE.get(r["status"], "")
            status = f"[{style}]{r['status']}[/{style}]" if style else r["status"]
            seconds = f"{r['execution_time_s']:.2f}"
            table.add_row(r["node_name"], r["node_type"], status, _text(r["failures"]), seconds, _text(r["tested_model"]))
        console.print(table)
        # What went wrong, in words: dbt's message, then the failing rows a test explains itself with.
        for r in rows:
            if r["status"] in dq.WARNED + dq.FAILED and (r["message"] or r.get("failing_rows")):
                style = STATUS_STYLE.get(r["status"], "")
                console.print(f"[{style}]{r['status']}[/{style}] {r['node_name']}: {_text(r['message'])}", highlight=False)
                for line in dq.failing_row_lines(r.get("failing_rows")):
                    console.print(f"    {line}", highlight=False, markup=False)
        counts = dq.summarize(latest.filter([p == name for p in latest.column("pipeline").to_pylist()]))
        console.print(f"{name}: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    if history > 0:
        runs = dq.run_history(pipeline, history)
        emit(runs.column_names, [list(r.values()) for r in runs.to_pylist()], title=f"last {history} runs")


@main.command("lineage")
@click.argument("table", required=False)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="SVG, or .html, to write (default <home>/lineage/<TABLE>.svg)."
)
@click.option("--depth", type=click.IntRange(min=1), default=50, show_default=True, help="Levels of jobs shown each way.")
def lineage_command(table: str | None, out: Path | None, depth: int) -> None:
    """Upstream and downstream of TABLE (default: everything), columns included, from the OpenLineage events; draws it."""
    from .lineage.command import show_lineage

    show_lineage(table, out, depth)


@main.command()
@click.argument("table_names", nargs=-1, metavar="[TABLE]...")
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@click.option("--orphan-grace-hours", type=click.FloatRange(min=0), default=None,
              help="Remove unreferenced files older than this many hours (default: each pipeline's "
                   "orphan_grace_hours, else 72). Shorter than a write in progress, it deletes that write's files.")
def maintain(table_names: tuple[str, ...], dry_run: bool, orphan_grace_hours: float | None) -> None:
    """Compact small files, expire old snapshots and remove orphan files (default: every table).

    data files: the current snapshot's; stored files: everything under the table's data/ and
    metadata/ (a dry run's "after" leaves out the files a compaction would write).
    """
    from .maintenance import maintain_tables

    console = Console()
    if orphan_grace_hours is not None and orphan_grace_hours < 1 and not dry_run:
        console.print(f"[yellow]orphan grace of {orphan_grace_hours:g} h: files of a write still in progress "
                      "may be removed[/yellow]")
    reports = maintain_tables(list(table_names) or None, dry_run=dry_run, orphan_grace_hours=orphan_grace_hours)
    table = Table("table", "data files", "data size", "stored files", "stored size", "snapshots", "orphans removed",
                  "rows", "partitions compacted", "seconds",
                  title="maintenance (dry run: nothing changed)" if dry_run else "maintenance")
    for r in reports:
        orphans = f"{r.orphans_removed} ({_human_bytes(r.orphan_bytes_removed)})"
        if r.orphans_found > r.orphans_removed:
            orphans += f", {r.orphans_found - r.orphans_removed} within grace"
        table.add_row(
            r.table,
            f"{r.files_before} -> {r.files_after}",
            f"{_human_bytes(r.bytes_before)} -> {_human_bytes(r.bytes_after)}",
            f"{r.stored_files_before} -> {r.stored_files_after}",
            f"{_human_bytes(r.stored_bytes_before)} -> {_human_bytes(r.stored_bytes_after)}",
            f"{r.snapshots_before} -> {r.snapshots_after}",
            orphans,
            str(r.rows),
            str(r.compacted_partitions),
            f"{r.seconds:.2f}",
        )
    console.print(table)
    for r in reports:
        for note in r.notes:
            console.print(f"[dim]{r.table}: {note}[/dim]")


@main.command("fetch")
@click.argument("source")
@click.argument("destination")
@click.option("--connections", type=click.IntRange(min=1), default=4, show_default=True,
              help="Parallel ranged connections (one if the server does not support ranges).")
@click.option("--sha256", help="Expected SHA-256 (hex); a different file is an error and is removed.")
def fetch_command(source: str, destination: str, connections: int, sha256: str | None) -> None:
    """Download SOURCE (http(s)://, s3:// or a path) to DESTINATION (a path, file:// or s3://), resuming an interrupted one."""
    from rich.progress import DownloadColumn, TransferSpeedColumn

    from .files.download import fetch

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        bar = progress.add_task(source.rsplit("/", 1)[-1] or source, total=None)
        result = fetch(source, destination, connections=connections, sha256=sha256,
                       progress=lambda done, total: progress.update(bar, completed=done, total=total))
    rate = result.size / result.seconds / 1e6 if result.seconds > 0 else 0.0
    click.echo(f"{result.destination}: {_human_bytes(result.size)} in {result.seconds:.1f} s ({rate:.1f} MB/s, "
               f"{result.connections} connections), resumed {_human_bytes(result.resumed_bytes)}, sha256 {result.sha256}")


def ui_environment(settings: Settings, login: bool = True) -> dict[str, str]:
    """The environment `airflow standalone` runs with (added to the current one)."""
    from .lineage.config import lineage_environment

    def tunable(name: str, default: str) -> str:
        return os.environ.get(name) or default  # a value the user exported wins

    return {
        # standalone starts its components as `airflow ...`: find the one of this environment.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "LAKEHOUSE_HOME": str(settings.home),  # the same lakehouse whatever folder Airflow's processes start in
        "AIRFLOW_HOME": str(settings.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # The default (32) forks 32 workers, 1-2 GiB, on a 2-core machine.
        "AIRFLOW__CORE__PARALLELISM": tunable("AIRFLOW__CORE__PARALLELISM", "4"),
        # The first parse builds every pipeline's dbt manifest (see lakehouse.runner.airflow_environment).
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": tunable("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "600"),
        # Local-first: not reachable from other machines unless AIRFLOW__API__HOST says so.
        "AIRFLOW__API__HOST": tunable("AIRFLOW__API__HOST", "127.0.0.1"),
        # Standalone generates and prints an admin password only for the default users setting.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False" if login else "True",
        **lineage_environment(settings),  # OpenLineage events, as in `lakehouse run` (lakehouse.lineage.config)
    }


def password_file(settings: Settings) -> Path:
    """Where Airflow's simple auth manager keeps the generated password (its default location)."""
    return settings.airflow_home / "simple_auth_manager_passwords.json.generated"


@main.command()
@click.option("--no-login", is_flag=True, help="No password: everyone who reaches the UI is admin.")
def ui(no_login: bool) -> None:
    """Start Airflow (`airflow standalone`) on this lakehouse; Ctrl-C stops it."""
    settings = load_settings()
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **ui_environment(settings, login=not no_login)}
    process = subprocess.Popen(["airflow", "standalone"], env=env)
    click.echo(f"Airflow UI: {UI_URL} (ready in about 30 s)")
    try:
        if not no_login:
            _show_login(password_file(settings), process)
        process.wait()
    except KeyboardInterrupt:
        click.echo("stopping Airflow ...")
        _stop(process)
    raise SystemExit(process.returncode or 0)


def _stop(process: subprocess.Popen) -> None:
    # Ctrl-C reached standalone too (same terminal) and it stops its components; one that does not
    # finish in time is terminated, then killed (seen: standalone left sleeping after its components exited).
    for send in (None, process.terminate, process.kill):
        if send is not None:
            send()
        try:
            process.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


def _show_login(path: Path, process: subprocess.Popen) -> None:
    # Airflow writes the password file on its first start, a few seconds in.
    for _ in range(120):
        if path.exists() or process.poll() is not None:
            break
        time.sleep(0.5)
    try:
        password = json.loads(path.read_text()).get("admin")
        click.echo(f"login: admin / {password}   (kept in {path})")
    except (OSError, ValueError):
        click.echo(f"login: admin; the password is printed by Airflow and kept in {path}")


def _parse_conf(items: tuple[str, ...]) -> dict[str, Any]:
    """key=value pairs; values read as JSON when they are (numbers, true/false), else kept as text."""
    conf = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--conf")
        try:
            conf[key.strip()] = json.loads(value)
        except ValueError:
            conf[key.strip()] = value
    return conf


def _field(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


@main.command()
@click.argument("pipelines", nargs=-1)
@click.option("--date", "logical_date", type=click.DateTime(formats=["%Y-%m-%d"]), help="Day of data (default: yesterday, UTC).")
@click.option("--conf", "conf_items", multiple=True, metavar="KEY=VALUE", help="Run parameter, repeatable.")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
@click.option("--executor", type=click.Choice(["in-process", "local"]), default="in-process", show_default=True,
              help="in-process: tasks one after another in this process (fastest on a laptop); "
                   "local: Airflow's LocalExecutor, independent tasks in parallel processes.")
def run(pipelines: tuple[str, ...], logical_date: dt.datetime | None, conf_items: tuple[str, ...], full_refresh: bool,
        executor: str):
    """Run pipelines (default: all) through Airflow and print what they did."""
    from .runner import run_pipelines  # imports Airflow: only when running

    conf = _parse_conf(conf_items)
    if full_refresh:
        conf["full_refresh"] = True
    day = logical_date.date() if logical_date else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    err = Console(stderr=True)
    err.print(f"processing {day} (data interval {day} 00:00 to {day + dt.timedelta(days=1)} 00:00 UTC"
              + (")" if logical_date else "; the default: yesterday, the last complete day; --date picks another)"),
              highlight=False)
    run_args = dict(executor=None if executor == "in-process" else executor)
    if not sys.stderr.isatty():
        # A CI log or a pipe: a plain line per finished task, so the run never looks hung.
        def on_line(event: Any) -> None:
            if _field(event, "state") in ("success", "failed", "upstream_failed", "skipped", "removed"):
                click.echo(f"{_field(event, 'pipeline')}: {_field(event, 'task_id')} {_field(event, 'state')} "
                           f"({_field(event, 'done', 0)}/{_field(event, 'total')})", err=True)

        results = run_pipelines(list(pipelines) or None, day, conf, on_line, **run_args)
    else:
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True) as progress:
            bar = progress.add_task("starting", total=None)

            def on_progress(event: Any) -> None:
                progress.update(
                    bar,
                    description=" ".join(str(_field(event, k) or "") for k in ("pipeline", "task_id", "state")).strip(),
                    completed=_field(event, "done", 0),
                    total=_field(event, "total"),
                )

            results = run_pipelines(list(pipelines) or None, day, conf, on_progress, **run_args)
    _print_run_summary(results)
    if any(_field(r, "state") != "success" for r in results):
        raise SystemExit(1)


def _print_run_summary(results: list[Any]) -> None:
    console = Console()
    table = Table("pipeline", "state", "tasks ok", "tasks failed", "tests pass/warn/fail", "seconds", title="run")
    for r in results:
        state = _field(r, "state")
        table.add_row(
            _field(r, "pipeline"),
            f"[{'green' if state == 'success' else 'red'}]{state}[/]",
            str(_field(r, "tasks_succeeded", 0)),
            str(_field(r, "tasks_failed", 0)),
            f"{_field(r, 'tests_passed', 0)}/{_field(r, 'tests_warned', 0)}/{_field(r, 'tests_failed', 0)}",
            f"{_field(r, 'wall_seconds', 0):.1f}",
        )
    console.print(table)
    for r in results:
        if _field(r, "error"):
            console.print(f"[red]{_field(r, 'pipeline')}: {_field(r, 'error')}[/red]")
        states = _field(r, "task_states") or {}
        failed = [task for task, state in states.items() if state not in ("success", "skipped")]
        if failed:
            console.print(f"[red]{_field(r, 'pipeline')}: not successful: {', '.join(sorted(failed))}[/red]")
        for task, error in sorted((_field(r, "task_errors") or {}).items()):
            console.print(f"  {task}: {error}", highlight=False, markup=False, style="red")
        if (failed or _field(r, "error")) and _field(r, "log_file"):
            console.print(f"  full log: {_field(r, 'log_file')}", highlight=False)
        marts = _field(r, "mart_rows") or {}
        if marts:
            rows = ", ".join(f"{table} {n:,} rows" for table, n in sorted(marts.items()))
            console.print(f"{_field(r, 'pipeline')} marts: {rows}")


@main.command("codegen")
@click.argument("source_ref", metavar="SOURCE")
@click.option("--pipeline", required=True, help="The pipeline whose dbt project gets the staging layer.")
@click.option("--schema", help="PostgreSQL: the schema to read (required for PostgreSQL).")
@click.option("--source-name", help="The dbt source's name (default: the schema, or the Iceberg namespace).")
@click.option("--landed-namespace", default="raw", show_default=True, help="PostgreSQL: the namespace the ingest lands in.")
@click.option("--landed-prefix", help="PostgreSQL: the landed tables' prefix (default '<schema>_').")
@click.option("--strip-prefix", help="Taken off table names in dbt (ads_campaigns -> campaigns, identifier ads_campaigns).")
@click.option("--cursor-column", help="PostgreSQL: the freshness column (default updated_at, when a table has it).")
@click.option("--tables", "tables_glob", metavar="GLOB", help="Only the tables matching this glob.")
@click.option("--models-dir", help="Folder in the dbt project (default models/staging/<source name>).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when a run would write a file (for CI).")
def codegen_command(source_ref: str, pipeline: str, schema: str | None, source_name: str | None, landed_namespace: str,
                    landed_prefix: str | None, strip_prefix: str | None, cursor_column: str | None, tables_glob: str | None,
                    models_dir: str | None, check: bool) -> None:
    """Write a pipeline's dbt staging layer (sources file, one base model and YAML per table) from a source's schema.

    SOURCE is a PostgreSQL DSN ('host=... dbname=...' or postgresql://...), an Airflow connection id, or an
    Iceberg namespace, 'iceberg:raw' or 'iceberg:raw.ads_*'. A file a person edited is never overwritten: what
    the source changed since is reported as drift instead.
    """
    from .codegen import EDITED, MERGED, ORPHANED, UNCHANGED, generate

    report = generate(source_ref, pipeline, schema=schema, source_name=source_name, landed_namespace=landed_namespace,
                      landed_prefix=landed_prefix, strip_prefix=strip_prefix, cursor_column=cursor_column,
                      tables=tables_glob, models_dir=models_dir, check=check)
    # Plain lines, never wrapped: paths and drift stay greppable in CI logs.
    click.echo(f"codegen from {report.source} into {pipeline}'s dbt project, {report.models_dir}")
    would = "would be " if check else ""
    labels = {EDITED: "edited, left as it is", ORPHANED: "its table left the source, kept",
              MERGED: "edited, kept; the source's new tables and columns " + ("would be added" if check else "added")}
    for result in report.files:
        status = labels.get(result.status) or (result.status if result.status == UNCHANGED else would + result.status)
        click.echo(f"  {result.path}: {status}")
        for line in result.drift:
            click.secho(f"      drift: {line}", fg="yellow")
    counts = {status: len(report.by_status(status)) for status in ("created", "updated", MERGED, UNCHANGED, EDITED, ORPHANED)}
    click.echo(", ".join(f"{n} {status}" for status, n in counts.items() if n))
    if check and report.changed:
        click.secho("generated code is not up to date: run the same command without --check", fg="red")
        raise SystemExit(1)


@main.command("ci")
@click.argument("pipeline")
def ci_command(pipeline: str) -> None:
    """Build only what the working tree changed (dbt state:modified+) beside production, and test it.

    Compares the pipeline's dbt project with the manifest of its last fully successful run, builds the
    changed models and everything downstream of them into an isolated catalog under <home>/ci/PIPELINE,
    reads every other table from production where it is (no copy), and runs their tests. Production is
    never written. Exit 1 when a build or a test fails.
    """
    from .slim_ci import CiError, run_ci

    try:
        report = run_ci(pipeline)
    except CiError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{pipeline}: compared with production run {report.production_run}; environment {report.environment}")
    if not report.built and not report.tests:
        click.echo("nothing changed: nothing to build")
        return
    emit(["built", "why", "status"], [[b.unique_id, b.reason, b.status] for b in report.built], title="built")
    failed = {uid: status for uid, status in report.tests.items() if status not in ("pass", "warn")}
    click.echo(f"tests: {len(report.tests) - len(failed)} of {len(report.tests)} passed or warned")
    for unique_id, status in sorted(failed.items()):
        click.secho(f"  {status}: {unique_id}", fg="red")
    if report.deferred:
        click.echo("read from production (deferred, not copied): " + ", ".join(report.deferred))
    if not report.success:
        raise SystemExit(1)


@main.command("rollback")
@click.argument("pipeline")
@click.option("--to", "to_run_id", metavar="RUN_ID", help="The run whose published set to return to "
              "(default: the set published before the current one).")
def rollback_command(pipeline: str, to_run_id: str | None) -> None:
    """Set every mart of a `publish: wap` pipeline back to a published set, in one catalog transaction.

    Main of each table moves to the snapshot of its published-RUN_ID tag: no data is copied.
    """
    from .release import rollback_pipeline

    report = rollback_pipeline(pipeline, to_run_id)
    rows = [[m.table, m.before, m.after, "moved" if m.before != m.after else "already there"] for m in report.moved]
    emit(["table", "main before", "main after", ""], rows, title=f"{pipeline}: rolled back to {report.run_id}")
    if not report.atomic:
        click.echo("this catalog is not a SQL catalog: the tables were moved one commit at a time")
    for note in report.notes:
        click.echo(note)


@main.group()
def source() -> None:
    """The CDC source PostgreSQL: embedded, or yours when LAKEHOUSE_SOURCE_DSN is set."""


@source.command("start")
def source_start() -> None:
    """Start the embedded server (if no DSN is set) and prepare what each postgres_cdc ingest captures:
    its source schema (tables, trigger, publication) and its replication slot."""
    from .cdc.source import prepare_source
    from .pipeline import discover_pipelines
    from .sources import postgres_server

    settings = load_settings()
    if not postgres_server.status(settings).external:
        postgres_server.start(settings)
    dsn = postgres_server.source_dsn(settings)
    for pipeline in discover_pipelines(settings):
        for ingest in (i for i in pipeline.ingest if i.kind == "postgres_cdc"):
            schema, slot = ingest.options.get("source_schema"), str(ingest.options.get("slot") or "lakehouse_cdc")
            prepared = prepare_source(dsn, pipeline.folder / schema if schema else None, slot)
            where = f"{pipeline.name}/{ingest.name}"
            if prepared["slot_created"]:
                click.echo(f"{where}: created replication slot {slot}: logical capture sees changes from now on")
            elif prepared["slot"] is None:
                click.echo(f"{where}: wal_level is {prepared['wal_level']}: no replication slot, only audit_log capture works")
    _print_source_status(postgres_server.status(settings))


@source.command("stop")
def source_stop() -> None:
    """Stop the embedded server."""
    from .sources import postgres_server

    if postgres_server.status().external:
        click.echo(f"{postgres_server.DSN_VARIABLE} is set: the source is your server, nothing to stop")
    elif postgres_server.stop():
        click.echo("PostgreSQL stopped")
    else:
        click.echo("PostgreSQL was not running")


@source.command("status")
def source_status() -> None:
    """Whether the source runs, where, and its replication slots."""
    from .sources import postgres_server

    state = postgres_server.status()
    _print_source_status(state)
    if not state.running:
        raise SystemExit(1)


def _print_source_status(state: Any) -> None:
    where = "your server (LAKEHOUSE_SOURCE_DSN)" if state.external else "embedded"
    if not state.running:
        click.echo(f"PostgreSQL ({where}): not running")
        return
    click.echo(f"PostgreSQL {state.version} ({where}): running" + (f", pid {state.pid}, port {state.port}" if state.pid else ""))
    click.echo(f"dsn: {state.dsn}")
    if state.data_dir:
        click.echo(f"data: {state.data_dir}\nlog: {state.log_file}")
    if state.slots:
        emit(list(state.slots[0]), [list(s.values()) for s in state.slots], title="replication slots")


@source.command("psql", context_settings={"ignore_unknown_options": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def source_psql(psql_args: tuple[str, ...]) -> None:
    """psql on the source; extra arguments go to psql (e.g. -c 'select 1')."""
    from .sources import postgres_server

    argv, env = postgres_server.psql_invocation(args=psql_args)
    raise SystemExit(subprocess.call(argv, env=env))


@main.group()
def storage() -> None:
    """The embedded S3 server (SeaweedFS) for an s3:// warehouse and raw zone; see `storage env`."""


@storage.command("start")
@click.option("--bucket", "buckets", multiple=True, help="Also create this bucket (repeatable).")
def storage_start(buckets: tuple[str, ...]) -> None:
    """Start the embedded S3 server in the background (a running one is kept)."""
    from . import storage_server

    settings = load_settings()
    storage_server.start(settings)
    for bucket in buckets:
        click.echo(f"bucket {storage_server.ensure_bucket(bucket, settings)}")
    _print_storage_status(storage_server.status(settings), settings)
    click.echo('clients: eval "$(lakehouse storage env --bucket NAME)"')


@storage.command("stop")
def storage_stop() -> None:
    """Stop the embedded S3 server (its data stays in <home>/storage/data)."""
    from . import storage_server

    click.echo("S3 server stopped" if storage_server.stop() else "S3 server was not running")


@storage.command("status")
def storage_status() -> None:
    """Whether the embedded S3 server runs, and where (never its secret key)."""
    from . import storage_server

    settings = load_settings()
    state = storage_server.status(settings)
    _print_storage_status(state, settings)
    if not state.running:
        raise SystemExit(1)


def _print_storage_status(state: Any, settings: Settings) -> None:
    if not state.running:
        click.echo("S3 server (embedded): not running")
        return
    click.echo(f"S3 server (embedded): running, pid {state.pid}")
    click.echo(f"endpoint: {state.endpoint}\naccess key id: {state.access_key_id} (secret key: `lakehouse storage env`)")
    click.echo(f"data: {state.data_dir}\nlog: {state.log_file}")
    if settings.s3_endpoint and settings.s3_endpoint.rstrip("/") != state.endpoint:
        click.echo(f"note: LAKEHOUSE_S3_ENDPOINT is {settings.s3_endpoint}: clients in this shell use that, not this server")


@storage.command("env")
@click.option("--bucket", help="Create this bucket and also export LAKEHOUSE_WAREHOUSE and LAKEHOUSE_RAW_ZONE in it.")
def storage_env(bucket: str | None) -> None:
    """Print `export` lines for a client of the embedded server: eval "$(lakehouse storage env)".

    The only command that prints the secret key, on purpose, for a shell to eval: keep its output out of
    logs, tickets and chats.
    """
    import shlex

    from . import storage_server

    settings = load_settings()
    env = storage_server.client_env(settings)
    if bucket:
        location = storage_server.ensure_bucket(bucket, settings)
        env.update({"LAKEHOUSE_WAREHOUSE": f"{location}/warehouse", "LAKEHOUSE_RAW_ZONE": f"{location}/raw_zone"})
    for name, value in env.items():
        click.echo(f"export {name}={shlex.quote(value)}")


@main.group()
def spark() -> None:
    """The Spark Thrift server every dbt task and query talks to on LAKEHOUSE_ENGINE=spark (lakehouse.spark.server)."""


@spark.command("start")
def spark_start() -> None:
    """Start this home's Spark Thrift server on 127.0.0.1 (a running one is kept)."""
    from .spark import server

    _print_spark_status(server.start())


@spark.command("stop")
def spark_stop() -> None:
    """Stop this home's Spark Thrift server."""
    from .spark import server

    click.echo("Spark Thrift server stopped" if server.stop() else "Spark Thrift server was not running")


@spark.command("status")
def spark_status() -> None:
    """Whether the Spark Thrift server runs, and where."""
    from .spark import server

    state = server.status()
    _print_spark_status(state)
    if not state.running:
        raise SystemExit(1)


def _print_spark_status(state: Any) -> None:
    where = "your own (LAKEHOUSE_SPARK_THRIFT)" if state.external else "embedded"
    if not state.running:
        click.echo(f"Spark Thrift server ({where}): not running" + (f" at {state.endpoint}" if state.external else ""))
        return
    click.echo(f"Spark Thrift server ({where}): running at {state.endpoint}" + (f", pid {state.pid}" if state.pid else ""))
    if state.log_file:
        click.echo(f"log: {state.log_file}")


@main.group()
def bi() -> None:
    """The BI tool: Apache Superset over the marts, each pipeline's dashboards provisioned (lakehouse.bi)."""


@bi.command("start")
def bi_start() -> None:
    """Start Superset on 127.0.0.1 (a running one is kept), refresh what it reads, provision the dashboards."""
    from .bi import refresh_and_provision, server

    settings = load_settings()
    started = time.monotonic()
    state, password = server.start(settings)
    click.echo(f"Superset: {state.url} (ready in {time.monotonic() - started:.0f} s)")
    if password:
        click.echo(f"login: {server.ADMIN} / {password}   (printed this once; kept in {state.password_file})")
    else:
        click.echo(f"login: {server.ADMIN}; the password is kept in {state.password_file}")
    report = refresh_and_provision(settings)
    click.echo(report.describe())
    if not report.ok:
        raise SystemExit(1)


@bi.command("provision")
def bi_provision() -> None:
    """Refresh what Superset reads and provision every pipeline's dashboards again (Superset must run)."""
    from .bi import refresh_and_provision

    report = refresh_and_provision(load_settings(), require_server=True)
    click.echo(report.describe())
    if not report.ok:
        raise SystemExit(1)


@bi.command("stop")
def bi_stop() -> None:
    """Stop Superset (its dashboards and users stay in <home>/bi/superset.db)."""
    from .bi import server

    click.echo("Superset stopped" if server.stop() else "Superset was not running")


@bi.command("status")
def bi_status() -> None:
    """Whether Superset runs, and where."""
    from .bi import server

    state = server.status()
    if not state.running:
        click.echo("Superset: not running")
        raise SystemExit(1)
    click.echo(f"Superset: running at {state.url}, pid {state.pid}\nlog: {state.log_file}")


class _PipelineGenerators(click.Group):
    """`lakehouse generate PIPELINE ...`: each pipeline's own generator command (its `generate:` declaration)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from .pipeline import discover_pipelines

        return [p.name for p in discover_pipelines() if p.generate]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from .loader import load_reference
        from .pipeline import get_pipeline

        pipeline = get_pipeline(name)
        if not pipeline.generate:
            raise click.UsageError(f"pipeline {name!r} declares no generator (`generate:` in its pipeline.yml)")
        command = load_reference(pipeline.generate, pipeline.folder, "generate")
        if not isinstance(command, click.Command):
            raise click.UsageError(f"{pipeline.declaration}: generate {pipeline.generate!r} is not a click command")
        return command


@main.group(cls=_PipelineGenerators)
def generate() -> None:
    """Drive a pipeline's source with seeded synthetic data: `lakehouse generate PIPELINE --help`."""
