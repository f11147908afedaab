"""Ingest tasks: land one source of a pipeline in its raw Iceberg table, with its kind's class.

The kinds (generator, postgres_cdc, delimited_file, table_map) are in lakehouse.kinds; this module is
what the Airflow task calls, and what every kind shares: the platform's lineage columns.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from .kinds import IngestKind, ingest_kind
from .pipeline import IngestSource, Pipeline, get_pipeline

# Columns the platform adds to every raw row; sources must not use these names.
LINEAGE_COLUMNS = ("_batch_date", "_source_row", "_ingested_at")


class IngestError(RuntimeError):
    pass


def as_date(value: str | dt.date | dt.datetime) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def find_source(pipeline: Pipeline, source_name: str) -> IngestSource:
    for source in pipeline.ingest:
        if source.name == source_name:
            return source
    raise IngestError(f"pipeline {pipeline.name!r} has no ingest source {source_name!r}")


def build_ingest(pipeline: Pipeline, source: IngestSource, options: dict[str, Any]) -> IngestKind:
    """The source's kind, given the task's rendered options (checked and typed here)."""
    kind = ingest_kind(source.kind)
    where = f"{pipeline.declaration} ingest '{source.name}'"
    return kind(pipeline, source, kind.parse(options, where, rendered=True))


def add_lineage_columns(data: pa.Table, batch_date: dt.date, ingested_at: dt.datetime) -> pa.Table:
    clash = [name for name in LINEAGE_COLUMNS if name in data.column_names]
    if clash:
        raise IngestError(f"the source returned reserved column(s) {clash}")
    rows = data.num_rows
    data = data.append_column("_batch_date", pa.array([batch_date] * rows, pa.date32()))
    data = data.append_column("_source_row", pa.array(range(1, rows + 1), pa.int64()))
    return data.append_column("_ingested_at", pa.array([ingested_at] * rows, pa.timestamp("us", tz="UTC")))


def run_ingest(
    pipeline_name: str,
    source_name: str,
    batch_date: str | dt.date,
    options: dict[str, Any],
    run_id: str | None = None,
) -> dict[str, Any]:
    """Land one ingest source for ``batch_date``; ``options`` as the task rendered them."""
    pipeline = get_pipeline(pipeline_name)
    source = find_source(pipeline, source_name)
    return build_ingest(pipeline, source, options).land(as_date(batch_date), run_id)
