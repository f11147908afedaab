"""Pipeline declarations: ``pipelines/<name>/pipeline.yml`` read into one typed object.

A pipeline is a folder: its declaration (ingest sources, schedule, maintenance settings), its dbt
project, and the code that belongs to it alone (a demo data generator, a source schema, its tests).
The DAG factory turns every declaration into an Airflow DAG, so adding a pipeline is adding a folder,
and adding a model is adding a SQL file. Each entry's options are checked by its kind's class
(lakehouse.kinds) when the folder loads; a folder that fails to load never stops another one.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engines import ENGINES
from .errors import InvalidPipeline, read_yaml
from .identifiers import InvalidIdentifier, split_table_name, validate_identifier
from .kinds import delivery_kind, ingest_kind
from .loader import LoadError, check_reference
from .settings import Settings, load_settings

log = logging.getLogger(__name__)
DECLARATION_FILE = "pipeline.yml"
_TOP_LEVEL = ("name", "description", "schedule", "start_date", "catchup", "tags", "params", "ingest", "dbt",
              "deliver", "maintenance", "generate", "publish", "engines")  # fmt: skip
# How a run's dbt results reach readers: `direct` (each model's commit is visible at once) or `wap`
# (write-audit-publish: built and tested on a branch, published all together; lakehouse.release).
PUBLISH_MODES = ("direct", "wap")

__all__ = ["DECLARATION_FILE", "Delivery", "Discovery", "IngestSource", "InvalidPipeline", "Maintenance", "Pipeline",
           "discover", "discover_pipelines", "get_pipeline", "load_pipeline", "pipeline_folders", "read_yaml"]


@dataclass(frozen=True)
class IngestSource:
    """One ingest task: read a source for the run's data interval and land it in a raw table."""

    name: str
    table: str
    kind: str
    options: dict[str, Any]
    partition_by: list[str]
    # The engines (LAKEHOUSE_ENGINE) this entry runs on; empty: every engine. Two entries may then
    # land the same table, one per engine (the tweets bronze layer is a Spark job on Spark).
    engines: tuple[str, ...] = ()


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
    # publish: wap: the published sets kept for rollback (the current one always). Each set's tags pin
    # its snapshots, files and rows (an erased customer's too): older sets are untagged, then expire.
    published_sets_to_keep: int = 7


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
    # 'file.py:command' (a click command in the folder) behind `lakehouse generate <name>`, or None.
    generate: str | None = None
    publish: str = "direct"  # a PUBLISH_MODES value
    # The engines the whole pipeline runs on (default: every engine). `lakehouse run` and the DAG folder
    # leave it out on another engine; naming it there is an error.
    engines: tuple[str, ...] = ()

    def runs_on(self, engine: str) -> bool:
        return not self.engines or engine in self.engines

    @property
    def wap(self) -> bool:
        return self.publish == "wap"

    @property
    def dag_id(self) -> str:
        return self.name

    @property
    def raw_tables(self) -> list[str]:
        return [source.table for source in self.ingest]

    @property
    def declaration(self) -> Path:
        return self.folder / DECLARATION_FILE


def _require(mapping: dict, key: str, where: str):
    if not isinstance(mapping, dict):
        raise InvalidPipeline(f"{where}: must be a mapping, got {mapping!r}")
    if key not in mapping or mapping[key] in (None, ""):
        raise InvalidPipeline(f"{where}: '{key}' is required")
    return mapping[key]


def _table_name(value: Any, where: str) -> str:
    try:
        split_table_name(str(value))
    except InvalidIdentifier as error:
        raise InvalidPipeline(f"{where}: {error}") from None
    return str(value)


def _parse_ingest(entry: dict, folder: Path, where: str) -> IngestSource:
    name = validate_identifier(_require(entry, "name", where), "ingest name")
    where = f"{where} ingest '{name}'"
    table = _table_name(_require(entry, "table", where), where)
    if split_table_name(table)[0] != "raw":
        raise InvalidPipeline(f"{where}: ingest lands in the raw layer; got table {table!r}")
    kind = _kind(ingest_kind, _require(entry, "kind", where), where)
    engines = entry.get("engines") or []
    engines = [engines] if isinstance(engines, str) else engines
    if not isinstance(engines, list) or any(engine not in ENGINES for engine in engines):
        raise InvalidPipeline(f"{where}: 'engines' lists engines among {', '.join(ENGINES)}; got {entry['engines']!r}")
    source = IngestSource(
        name=name,
        table=table,
        kind=kind.name,
        options=dict(entry.get("options") or {}),
        partition_by=list(entry.get("partition_by") or ["_batch_date"]),
        engines=tuple(engines),
    )
    kind.validate(source, folder, where)
    return source


def _parse_delivery(entry: dict, folder: Path, where: str) -> Delivery:
    name = validate_identifier(_require(entry, "name", where), "delivery name")
    where = f"{where} deliver '{name}'"
    table = _table_name(_require(entry, "table", where), where)
    kind = _kind(delivery_kind, _require(entry, "kind", where), where)
    delivery = Delivery(name=name, table=table, kind=kind.name, options=dict(entry.get("options") or {}))
    kind.validate(delivery, folder, where)
    return delivery


def _kind(lookup, name: Any, where: str):
    try:
        return lookup(str(name))
    except InvalidPipeline as error:
        raise InvalidPipeline(f"{where}: {error}") from None


def _unique(names: list[str], what: str, where: str) -> None:
    if len(set(names)) != len(names):
        raise InvalidPipeline(f"{where}: {what} names must be unique, got {names}")


def load_pipeline(folder: Path) -> Pipeline:
    folder = Path(folder).resolve()
    path = folder / DECLARATION_FILE
    if not path.exists():
        raise InvalidPipeline(f"{folder} has no {DECLARATION_FILE}")
    raw = read_yaml(path) or {}
    where = str(path)
    if not isinstance(raw, dict):
        raise InvalidPipeline(f"{where}: a pipeline declaration is a mapping (name:, ingest:, dbt:, ...)")
    unknown = sorted(set(raw) - set(_TOP_LEVEL))
    if unknown:
        raise InvalidPipeline(f"{where}: unknown key(s) {unknown}; a declaration has {', '.join(_TOP_LEVEL)}")
    name = validate_identifier(_require(raw, "name", where), "pipeline name")
    if name != folder.name:
        raise InvalidPipeline(f"{where}: name {name!r} must match its folder name {folder.name!r}")
    dbt = raw.get("dbt") or {}
    project_dir = (folder / dbt.get("project_dir", "dbt")).resolve()
    if not (project_dir / "dbt_project.yml").exists():
        raise InvalidPipeline(f"{where}: no dbt project at {project_dir}")
    entries = []
    for entry in raw.get("ingest") or []:
        label = f"{where} ingest '{entry.get('name') if isinstance(entry, dict) else entry}'"
        kind = _kind(ingest_kind, _require(entry, "kind", label), label)
        entries.extend(kind.expand(entry, folder, where))
    # Every entry is checked; the ones for another engine are then left out of this run's pipeline.
    engine = load_settings().engine
    ingest = [source for source in (_parse_ingest(entry, folder, where) for entry in entries)
              if not source.engines or engine in source.engines]
    _unique([source.name for source in ingest], "ingest", where)
    _unique([source.table for source in ingest], "ingest table", where)
    deliver = [_parse_delivery(entry, folder, where) for entry in raw.get("deliver") or []]
    _unique([delivery.name for delivery in deliver], "delivery", where)
    generate = raw.get("generate")
    if generate:
        try:
            check_reference(generate, folder, "generate")
        except LoadError as error:
            raise InvalidPipeline(f"{where}: {error}") from None
    try:
        maintenance = Maintenance(**(raw.get("maintenance") or {}))
    except TypeError as error:
        raise InvalidPipeline(f"{where} maintenance: {error}") from None
    publish = raw.get("publish") or "direct"
    if publish not in PUBLISH_MODES:
        raise InvalidPipeline(f"{where}: publish: {publish!r} is not supported; choose one of {', '.join(PUBLISH_MODES)} "
                              "(wap: build and test on a branch, then publish every mart at once)")
    engines = raw.get("engines") or []
    engines = [engines] if isinstance(engines, str) else engines
    if not isinstance(engines, list) or any(engine not in ENGINES for engine in engines):
        raise InvalidPipeline(f"{where}: 'engines' lists engines among {', '.join(ENGINES)}; got {raw.get('engines')!r}")
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
        maintenance=maintenance,
        deliver=deliver,
        generate=str(generate) if generate else None,
        publish=publish,
        engines=tuple(engines),
    )


def pipeline_folders(settings: Settings | None = None) -> list[Path]:
    """Every folder under the pipelines directory that holds a declaration, sorted by name."""
    settings = settings or load_settings()
    return sorted(p.parent for p in settings.pipelines_dir.glob(f"*/{DECLARATION_FILE}"))


@dataclass
class Discovery:
    """The pipelines that loaded, and why each other folder did not (folder name -> error)."""

    pipelines: list[Pipeline]
    failures: dict[str, str]


def claim_tables(owners: dict[str, str], pipeline: str, tables: list[str], what: str = "writes") -> None:
    """Record that ``pipeline`` writes ``tables``; a table another pipeline writes already is refused."""
    for table in tables:
        owner = owners.get(table)
        if owner is not None and owner != pipeline:
            raise InvalidPipeline(f"pipelines {owner!r} and {pipeline!r} both write {table}: a table has one owner; "
                                  f"rename the model or table in one of them (dbt: an `alias`)")
    for table in tables:
        owners[table] = pipeline


def discover(settings: Settings | None = None) -> Discovery:
    """Every pipeline folder loaded on its own: a bad one is reported, the others still load.

    Two pipelines declaring the same raw table: the second (by name) is refused, naming both.
    """
    found = Discovery([], {})
    owners: dict[str, str] = {}
    for folder in pipeline_folders(settings):
        try:
            pipeline = load_pipeline(folder)
            claim_tables(owners, pipeline.name, pipeline.raw_tables)
        except Exception as error:  # noqa: BLE001 - reported per folder, never fatal for the others
            found.failures[folder.name] = f"{type(error).__name__}: {error}" if not isinstance(error, ValueError) else str(error)
            continue
        found.pipelines.append(pipeline)
    return found


def discover_pipelines(settings: Settings | None = None) -> list[Pipeline]:
    """Every pipeline that loads, sorted by name; each folder that does not is logged and left out."""
    found = discover(settings)
    for folder, error in found.failures.items():
        log.error("pipeline folder %s is left out: %s", folder, error)
    return found.pipelines


def get_pipeline(name: str, settings: Settings | None = None) -> Pipeline:
    """The pipeline of folder ``name``, loaded on its own: another folder's error cannot stop it."""
    settings = settings or load_settings()
    folder = settings.pipelines_dir / str(name)
    if _is_identifier(name) and (folder / DECLARATION_FILE).exists():
        return load_pipeline(folder)
    known = ", ".join(p.name for p in pipeline_folders(settings)) or "none"
    raise InvalidPipeline(f"no pipeline named {name!r}; known pipelines: {known}")


def _is_identifier(name: str) -> bool:
    try:
        validate_identifier(name)
    except InvalidIdentifier:
        return False
    return True
