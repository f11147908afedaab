"""Ingest: land one source in its raw Iceberg table (a generated batch per date, or CDC events).

A batch is keyed by ``_batch_date``: every run of a date replaces exactly that date's rows in one
commit (overwrite filtered on ``_batch_date``), so reruns and backfills are idempotent.
"""

from __future__ import annotations

import datetime as dt
import importlib
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import EqualTo

from .pipeline import INGEST_KINDS, IngestSource, get_pipeline
from .writes import write

# Columns the platform adds to every raw row; sources must not use these names.
LINEAGE_COLUMNS = ("_batch_date", "_source_row", "_ingested_at")


class IngestError(RuntimeError):
    pass


def _as_date(value: str | dt.date | dt.datetime) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _coerce(value: Any) -> Any:
    """Airflow renders templated options ("{{ params.scale }}") as strings: give numbers back their type."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return value


def _load_callable(path: str):
    module_name, _, function_name = str(path).partition(":")
    if not module_name or not function_name:
        raise IngestError(f"callable {path!r} must be 'module:function'")
    function = getattr(importlib.import_module(module_name), function_name, None)
    if not callable(function):
        raise IngestError(f"{path!r} is not a callable")
    return function


def _find_source(pipeline_name: str, source_name: str) -> IngestSource:
    pipeline = get_pipeline(pipeline_name)
    for source in pipeline.ingest:
        if source.name == source_name:
            return source
    raise IngestError(f"pipeline {pipeline_name!r} has no ingest source {source_name!r}")


def add_lineage_columns(data: pa.Table, batch_date: dt.date, ingested_at: dt.datetime) -> pa.Table:
    clash = [name for name in LINEAGE_COLUMNS if name in data.column_names]
    if clash:
        raise IngestError(f"the source returned reserved column(s) {clash}")
    rows = data.num_rows
    data = data.append_column("_batch_date", pa.array([batch_date] * rows, pa.date32()))
    data = data.append_column("_source_row", pa.array(range(1, rows + 1), pa.int64()))
    return data.append_column("_ingested_at", pa.array([ingested_at] * rows, pa.timestamp("us", tz="UTC")))


def generate(source: IngestSource, batch_date: dt.date, options: dict[str, Any]) -> pa.Table:
    options = dict(options)
    function = _load_callable(options.pop("callable", None) or "")
    data = function(batch_date, **options)
    if not isinstance(data, pa.Table):
        raise IngestError(f"{source.name}: the generator returned {type(data).__name__}, not a pyarrow.Table")
    return data


def land_generated(pipeline_name: str, source: IngestSource, day: dt.date, options: dict[str, Any],
                   run_id: str | None) -> dict[str, Any]:
    """The ``generator`` kind: the callable's batch for ``day`` replaces that date in the raw table."""
    data = add_lineage_columns(generate(source, day, options), day, dt.datetime.now(dt.UTC))
    properties = {
        "lakehouse.pipeline": pipeline_name,
        "lakehouse.ingest": source.name,
        "lakehouse.batch_date": day.isoformat(),
        "lakehouse.run_id": run_id or "",
    }
    table = write(
        source.table,
        data,
        "overwrite",
        overwrite_filter=EqualTo("_batch_date", day.isoformat()),
        partition_by=source.partition_by,
        snapshot_properties=properties,
    )
    snapshot = table.current_snapshot()
    return {"table": source.table, "rows": data.num_rows, "snapshot_id": snapshot.snapshot_id if snapshot else None}


def run_ingest(
    pipeline_name: str,
    source_name: str,
    batch_date: str | dt.date,
    options: dict[str, Any],
    run_id: str | None = None,
) -> dict[str, Any]:
    """Land one ingest source for ``batch_date`` with its kind's handler (pipeline.INGEST_KINDS).

    A ``generator`` batch replaces that date in the source's raw table; a ``postgres_cdc`` source
    lands the change events not landed yet, whatever the date (its checkpoint makes reruns safe).
    """
    source = _find_source(pipeline_name, source_name)
    day = _as_date(batch_date)
    options = {key: _coerce(value) for key, value in dict(options).items()}
    handler = _load_callable(INGEST_KINDS[source.kind])
    return handler(pipeline_name, source, day, options, run_id)
