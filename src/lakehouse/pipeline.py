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
# generator: a callable returning the batch (lakehouse.ingest); postgres_cdc: a PostgreSQL source's
# change events, exactly once (lakehouse.cdc.ingest).
INGEST_KINDS = ("generator", "postgres_cdc")


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
class Maintenance:
    snapshot_retention_hours: int = 168
    min_snapshots_to_keep: int = 1
    target_file_size_mb: int = 128


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
    ingest = [_parse_ingest(entry, where) for entry in raw.get("ingest") or []]
    names = [source.name for source in ingest]
    if len(set(names)) != len(names):
        raise InvalidPipeline(f"{where}: ingest names must be unique, got {names}")
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
