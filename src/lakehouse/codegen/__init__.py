"""`lakehouse codegen`: a pipeline's dbt staging layer written from its source's schema.

One call reads the source (a PostgreSQL schema, through its DSN or an Airflow connection id, or an
Iceberg namespace), names every table and column for dbt (lakehouse.codegen.plan), renders a sources
file plus one base model and YAML per table (render), and puts each file in place unless a person
edited it (files). The dbt source always points at Iceberg: a PostgreSQL table is read where the
sql_database ingest lands it, ``raw.<schema>_<table>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import files, render
from .files import CREATED, EDITED, MERGED, ORPHANED, UNCHANGED, UPDATED, FileResult
from .introspect import Column, Table, read_iceberg, read_postgres
from .plan import CodegenError, SourcePlan, plan_source, snake_case

__all__ = ["CREATED", "EDITED", "MERGED", "ORPHANED", "UNCHANGED", "UPDATED", "CodegenError", "CodegenReport", "Column",
           "FileResult", "SourcePlan", "Table", "generate", "is_dsn", "plan_source", "snake_case"]

ICEBERG_PREFIX = "iceberg:"
SOURCES_FILE = "__sources.yml"


@dataclass
class CodegenReport:
    source: str  # what was read, DSNs masked
    models_dir: Path  # where the files are, relative to the dbt project
    check: bool  # nothing was written: the statuses say what a run would do
    files: list[FileResult] = field(default_factory=list)

    def by_status(self, status: str) -> list[FileResult]:
        return [f for f in self.files if f.status == status]

    @property
    def changed(self) -> bool:
        """A run writes (or, with check, would write) a file: the committed code is not up to date."""
        return any(f.status in (CREATED, UPDATED, MERGED) for f in self.files)


def is_dsn(source: str) -> bool:
    """A libpq DSN ('host=... dbname=...') or URI ('postgresql://...'), not an Airflow connection id."""
    return "=" in source or "://" in source


def _read(source: str, *, schema: str | None, source_name: str | None, landed_namespace: str,
          landed_prefix: str | None, strip_prefix: str | None, cursor_column: str | None,
          tables: str | None) -> tuple[SourcePlan, str]:
    """The plan of the staging layer, and the source as the report names it."""
    if source.startswith(ICEBERG_PREFIX):
        namespace, _, glob = source.removeprefix(ICEBERG_PREFIX).partition(".")
        if schema or landed_prefix or cursor_column:
            raise CodegenError("--schema, --landed-prefix and --cursor-column are for a PostgreSQL source; an Iceberg "
                               "table names its cursor in the property lakehouse.sync.cursor_column")
        found = read_iceberg(namespace, tables=glob or tables)
        if not found:
            raise CodegenError(f"no Iceberg table matches {source!r}")
        name = source_name or namespace
        origin = f"Iceberg {namespace}.{glob or tables or '*'}"
        plan = plan_source(found, origin=origin, source_name=name, namespace=namespace,
                           description=f"The Iceberg tables {namespace}.{glob or tables or '*'}.",
                           strip_prefix=strip_prefix or "", where_prefix=f"{namespace}.")
        return plan, source
    from ..sources.postgres_server import mask_dsn, resolve_dsn

    if not schema:
        raise CodegenError("a PostgreSQL source needs --schema (the schema whose tables the ingest lands)")
    dsn = source if is_dsn(source) else resolve_dsn(source)[0]
    label = mask_dsn(source) if is_dsn(source) else f"Airflow connection {source} ({mask_dsn(dsn)})"
    found = read_postgres(dsn, schema, tables=tables, cursor_column=cursor_column or "updated_at")
    if not found:
        raise CodegenError(f"no table of PostgreSQL schema {schema!r} matches {tables!r}")
    name = source_name or schema
    prefix = f"{schema}_" if landed_prefix is None else landed_prefix
    plan = plan_source(found, origin=f"PostgreSQL schema {schema}", source_name=name, namespace=landed_namespace,
                       description=f"The PostgreSQL schema {schema}, landed in {landed_namespace} as {prefix}<table> "
                                   f"by the sql_database ingest.",
                       identifier_prefix=prefix, strip_prefix=strip_prefix or "", where_prefix=f"{schema}.")
    return plan, label


def generate(source: str, pipeline: str, *, schema: str | None = None, source_name: str | None = None,
             landed_namespace: str = "raw", landed_prefix: str | None = None, strip_prefix: str | None = None,
             cursor_column: str | None = None, tables: str | None = None, models_dir: str | None = None,
             check: bool = False) -> CodegenReport:
    """Write (``check``: only compare) the staging layer of ``source`` into pipeline ``pipeline``'s dbt project.

    Files land in ``models_dir`` (relative to the dbt project; default models/staging/<source name>).
    """
    from ..pipeline import get_pipeline

    project = get_pipeline(pipeline).dbt_project_dir
    plan, label = _read(source, schema=schema, source_name=source_name, landed_namespace=landed_namespace,
                        landed_prefix=landed_prefix, strip_prefix=strip_prefix, cursor_column=cursor_column, tables=tables)
    folder = Path(models_dir or f"models/staging/{plan.source_name}")
    if folder.is_absolute() or ".." in folder.parts:
        raise CodegenError(f"--models-dir {models_dir!r} must be a folder inside the dbt project")
    report = CodegenReport(source=label, models_dir=folder, check=check)

    def put(name: str, body: str, mark: str, drift) -> None:
        path = project / folder / name
        status = files.place(path, files.stamp(body, plan.origin, mark), check=check)
        found = drift(path.read_text()) if status == EDITED else []
        report.files.append(FileResult(folder / name, status, found))

    sources = render.sources_yaml(plan)
    put(SOURCES_FILE, sources, "#", lambda text: files.sources_drift(text, plan))
    _merge_sources(report.files[-1], project, sources, plan, check)
    expected = {SOURCES_FILE}
    for table in plan.tables:
        put(f"{table.model}.sql", render.model_sql(plan, table), "--", lambda text, t=table: files.model_drift(text, t))
        put(f"{table.model}.yml", render.model_yaml(plan, table), "#", lambda text, t=table: files.model_yaml_drift(text, t))
        expected |= {f"{table.model}.sql", f"{table.model}.yml"}
    # Files codegen wrote for a table the source no longer has: reported, never deleted.
    for path in sorted((project / folder).glob("*")) if (project / folder).is_dir() else []:
        if path.name not in expected and path.suffix in (".sql", ".yml") and files.has_header(path.read_text()):
            report.files.append(FileResult(folder / path.name, ORPHANED, ["its table is no longer in the source"]))
    return report


def _merge_sources(result: FileResult, project: Path, generated: str, plan: SourcePlan, check: bool) -> None:
    """An edited sources file still gains the source's new tables and columns (dbt should know them)."""
    if result.status != EDITED:
        return
    path = project / result.path
    merged, added = files.merge_sources(path.read_text(), generated, plan)
    if not added:
        return
    if not check:
        files.replace(path, merged)
    result.status = MERGED
    result.drift = added + files.sources_drift(merged, plan)

