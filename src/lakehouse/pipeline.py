"""Pipeline declarations: ``pipelines/<name>/pipeline.yml`` read into one typed object.

A pipeline is a folder: its declaration (ingest sources, schedule, maintenance settings) and its dbt
project. The DAG factory turns every declaration into an Airflow DAG, so adding a pipeline is adding
a folder, and adding a model is adding a SQL file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .identifiers import split_table_name, validate_identifier
from .settings import Settings, load_settings

DECLARATION_FILE = "pipeline.yml"
# Each ingest kind and the function that lands it: called as handler(pipeline_name, source, batch_date,
# options, run_id) -> a summary dict (at least "table" and "rows").
INGEST_KINDS = {
    # A callable returning the date's batch as a pyarrow.Table; the batch replaces that date.
    "generator": "lakehouse.ingest:land_generated",
    # A PostgreSQL table's change events, exactly once.
    "postgres_cdc": "lakehouse.cdc.ingest:land_changes",
    # One delimited text file (URL, local path or s3://), fetched to the raw zone, typed, bad lines quarantined.
    "delimited_file": "lakehouse.files.delimited:land_delimited_file",
    # The files a table map assigns to one raw table, each loaded once (again when it changes).
    "table_map": "lakehouse.files.table_map:land_mapped_files",
}
# Each delivery kind and its function: handler(pipeline_name, delivery, options, run_id) -> a summary dict.
DELIVERY_KINDS = {
    # A mart copied to a PostgreSQL table, replacing its rows in one transaction (idempotent).
    "postgres": "lakehouse.delivery.postgres:deliver_to_postgres",
}


class InvalidPipeline(ValueError):
    pass


@dataclass(frozen=True)
class IngestSource:
    """One ingest task: read a source for the run's data interval and land it in a raw table."""

    name: str
    table: str
    kind: str
    options: dict[str, Any]
    partition_by: list[str]


@dataclass(frozen=True)
class Delivery:
    """One delivery task after dbt: copy a table of the lakehouse to a system outside it."""

    name: str
    table: str
    kind: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Maintenance:
    snapshot_retention_hours: int = 168
    min_snapshots_to_keep: int = 1
    target_file_size_mb: int = 128
    # Unreferenced files younger than this are kept: they may belong to a write that has not committed
    # yet. 72 h (Iceberg's own default for remove_orphan_files) outlasts any write here, a task stuck
    # over a weekend included, and costs at most three days of unreferenced files on storage.
    orphan_grace_hours: float = 72


@dataclass(frozen=True)
class Pipeline:
    name: str
    description: str
    folder: Path
    schedule: str | None
    start_date: dt.date
    catchup: bool
    tags: list[str]
    params: dict[str, Any]
    dbt_project_dir: Path
    dbt_vars: dict[str, Any]
    ingest: list[IngestSource]
    maintenance: Maintenance = field(default_factory=Maintenance)
    deliver: list[Delivery] = field(default_factory=list)

    @property
    def dag_id(self) -> str:
        return self.name

    @property
    def raw_tables(self) -> list[str]:
        return [source.table for source in self.ingest]


def _require(mapping: dict, key: str, where: str):
    if key not in mapping or mapping[key] in (None, ""):
        raise InvalidPipeline(f"{where}: '{key}' is required")
    return mapping[key]


def _parse_ingest(entry: dict, where: str) -> IngestSource:
    name = validate_identifier(_require(entry, "name", where), "ingest name")
    where = f"{where} ingest '{name}'"
    table = _require(entry, "table", where)
    namespace, _ = split_table_name(table)
    if namespace != "raw":
        raise InvalidPipeline(f"{where}: ingest lands in the raw layer; got table {table!r}")
    kind = _require(entry, "kind", where)
    if kind not in INGEST_KINDS:
        raise InvalidPipeline(f"{where}: unknown kind {kind!r}; known kinds: {', '.join(INGEST_KINDS)}")
    return IngestSource(
        name=name,
        table=table,
        kind=kind,
        options=dict(entry.get("options") or {}),
        partition_by=list(entry.get("partition_by") or ["_batch_date"]),
    )


def _expand_table_map(entry: dict, folder: Path, where: str) -> list[dict]:
    """A `table_map` entry names a map file instead of a table: one ingest entry per table it maps.

    The map (YAML or JSON, path relative to the pipeline folder) has `tables: {name: {table: raw.x,
    ...}}`; each becomes ingest `name` landing in `table`, with the entry's options plus `map` (the
    file's absolute path) and `entry` (its name), so one generic task per table loads its files.
    """
    options = dict(entry.get("options") or {})
    map_file = (folder / _require(options, "map", f"{where} table_map options")).resolve()
    if not map_file.exists():
        raise InvalidPipeline(f"{where}: table map {map_file} does not exist")
    tables = (yaml.safe_load(map_file.read_text()) or {}).get("tables") or {}
    if not isinstance(tables, dict) or not tables:
        raise InvalidPipeline(f"{map_file}: 'tables' must map each raw table's name to its files")
    return [
        {
            "name": name,
            "table": _require(spec or {}, "table", f"{map_file} table '{name}'"),
            "kind": "table_map",
            "options": {**options, "map": str(map_file), "entry": name},
            "partition_by": (spec or {}).get("partition_by") or entry.get("partition_by"),
        }
        for name, spec in tables.items()
    ]


def _parse_delivery(entry: dict, where: str) -> Delivery:
    name = validate_identifier(_require(entry, "name", where), "delivery name")
    where = f"{where} deliver '{name}'"
    table = _require(entry, "table", where)
    split_table_name(table)
    kind = _require(entry, "kind", where)
    if kind not in DELIVERY_KINDS:
        raise InvalidPipeline(f"{where}: unknown kind {kind!r}; known kinds: {', '.join(DELIVERY_KINDS)}")
    return Delivery(name=name, table=table, kind=kind, options=dict(entry.get("options") or {}))


def load_pipeline(folder: Path) -> Pipeline:
    folder = Path(folder).resolve()
    path = folder / DECLARATION_FILE
    if not path.exists():
        raise InvalidPipeline(f"{folder} has no {DECLARATION_FILE}")
    raw = yaml.safe_load(path.read_text()) or {}
    where = str(path)
    name = validate_identifier(_require(raw, "name", where), "pipeline name")
    if name != folder.name:
        raise InvalidPipeline(f"{where}: name {name!r} must match its folder name {folder.name!r}")
    dbt = raw.get("dbt") or {}
    project_dir = (folder / dbt.get("project_dir", "dbt")).resolve()
    if not (project_dir / "dbt_project.yml").exists():
        raise InvalidPipeline(f"{where}: no dbt project at {project_dir}")
    entries = []
    for entry in raw.get("ingest") or []:
        mapped = isinstance(entry, dict) and entry.get("kind") == "table_map" and "table" not in entry
        entries.extend(_expand_table_map(entry, folder, where) if mapped else [entry])
    ingest = [_parse_ingest(entry, where) for entry in entries]
    names = [source.name for source in ingest]
    if len(set(names)) != len(names):
        raise InvalidPipeline(f"{where}: ingest names must be unique, got {names}")
    deliver = [_parse_delivery(entry, where) for entry in raw.get("deliver") or []]
    if len({d.name for d in deliver}) != len(deliver):
        raise InvalidPipeline(f"{where}: delivery names must be unique, got {[d.name for d in deliver]}")
    start = raw.get("start_date", "2026-01-01")
    return Pipeline(
        name=name,
        description=str(raw.get("description", "")).strip(),
        folder=folder,
        schedule=raw.get("schedule"),
        start_date=start if isinstance(start, dt.date) else dt.date.fromisoformat(str(start)),
        catchup=bool(raw.get("catchup", False)),
        tags=list(raw.get("tags") or []),
        params=dict(raw.get("params") or {}),
        dbt_project_dir=project_dir,
        dbt_vars=dict(dbt.get("vars") or {}),
        ingest=ingest,
        maintenance=Maintenance(**(raw.get("maintenance") or {})),
        deliver=deliver,
    )


def pipeline_folders(settings: Settings | None = None) -> list[Path]:
    """Every folder under the pipelines directory that holds a declaration, sorted by name."""
    settings = settings or load_settings()
    return sorted(p.parent for p in settings.pipelines_dir.glob(f"*/{DECLARATION_FILE}"))


def discover_pipelines(settings: Settings | None = None) -> list[Pipeline]:
    """Every pipeline, sorted by name; an invalid declaration raises."""
    pipelines = [load_pipeline(folder) for folder in pipeline_folders(settings)]
    tables: dict[str, str] = {}
    for pipeline in pipelines:
        for table in pipeline.raw_tables:
            if table in tables:
                raise InvalidPipeline(f"raw table {table} is written by both {tables[table]} and {pipeline.name}")
            tables[table] = pipeline.name
    return pipelines


def get_pipeline(name: str, settings: Settings | None = None) -> Pipeline:
    for pipeline in discover_pipelines(settings):
        if pipeline.name == name:
            return pipeline
    known = ", ".join(p.name for p in discover_pipelines(settings)) or "none"
    raise InvalidPipeline(f"no pipeline named {name!r}; known pipelines: {known}")
