"""Extraction from a SQL database table with dlt's sql_database source: rows after a cursor, and keys.

dlt reads the table through SQLAlchemy (reflected types, decimals with their precision, timestamps
with their zone) into pyarrow tables, chunk by chunk, with the cursor condition in the SQL
(``cursor >= last value``, a closed range; lakehouse.sync.state says why). It is used here as a
library, outside a dlt pipeline: the state it would keep in its own destination lives in the raw
table's snapshots instead, so the Iceberg commit stays the one source of truth.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache

import pyarrow as pa

from ..sources.postgres_server import connect, mask_dsn
from . import SyncError, quiet_dlt
from .landing import Increment
from .state import CursorState

log = logging.getLogger(__name__)


@cache
def sql_engine(dsn: str):
    """A SQLAlchemy engine over psycopg2 that connects with the libpq DSN as it is (a passfile works)."""
    import sqlalchemy as sa

    # Not a URL: the DSN may name a passfile or options a URL cannot carry, and must never be logged.
    return sa.create_engine("postgresql+psycopg2://", creator=lambda: connect(dsn), pool_pre_ping=True)


def primary_key(dsn: str, schema: str, table: str) -> list[str]:
    """The table's primary key columns, in key order; a clear error when it has none."""
    import sqlalchemy as sa

    inspector = sa.inspect(sql_engine(dsn))
    if not inspector.has_table(table, schema=schema):
        raise SyncError(f"{mask_dsn(dsn)} has no table {schema}.{table}")
    columns = inspector.get_pk_constraint(table, schema=schema).get("constrained_columns") or []
    if not columns:
        raise SyncError(f"{schema}.{table} has no primary key: declare `primary_key` for it in pipeline.yml "
                        "(rows are merged and deletes detected by key)")
    return list(columns)


def source_keys(dsn: str, schema: str, table: str, key: list[str]) -> pa.Table:
    """Every key the table holds now, for delete detection (one scan of the key columns)."""
    import sqlalchemy as sa

    query = sa.select(*(sa.column(name) for name in key)).select_from(sa.table(table, schema=schema))
    with sql_engine(dsn).connect() as conn:
        rows = conn.execute(query).fetchall()
    return pa.table({name: [row[i] for row in rows] for i, name in enumerate(key)})


def extract(dsn: str, schema: str, table: str, cursor_column: str, key: list[str], state: CursorState, *,
            chunk_size: int, detect_deletes: bool, on_chunk: Callable[[int], None] | None = None) -> Increment:
    """Rows of ``schema.table`` with ``cursor_column >= state.cursor`` (all rows on a first run)."""
    quiet_dlt()
    import dlt
    from dlt.sources.sql_database import sql_table

    # Keys first: a row deleted after this scan is removed by the next run, never an upserted row now.
    keys = source_keys(dsn, schema, table, key) if detect_deletes else None
    incremental = dlt.sources.incremental(
        cursor_column, initial_value=state.cursor, range_start="closed",
        primary_key=(),  # no deduplication by dlt: the boundary is the state's (lakehouse.sync.state)
        on_cursor_value_missing="include",  # a NULL cursor arrives, and is quarantined with its reason
    )
    resource = sql_table(credentials=sql_engine(dsn), schema=schema, table=table, backend="pyarrow",
                         chunk_size=chunk_size, reflection_level="full_with_precision", incremental=incremental)
    chunks = []
    try:
        for chunk in resource:
            chunks.append(chunk)
            if on_chunk:
                on_chunk(len(chunks))
    except Exception as error:  # noqa: BLE001 - dlt wraps the driver's error; say which source went away
        cause = error
        while cause.__cause__ is not None or cause.__context__ is not None:
            cause = cause.__cause__ or cause.__context__
        raise SyncError(f"reading {schema}.{table} from {mask_dsn(dsn)} failed after {len(chunks)} chunk(s), "
                        f"nothing was landed (the next run starts from the same cursor): {cause}") from error
    rows = pa.concat_tables(chunks, promote_options="permissive") if chunks else _empty(dsn, schema, table)
    return Increment(rows=rows, source_keys=keys, details={"chunks": len(chunks)})


def _empty(dsn: str, schema: str, table: str) -> pa.Table:
    """No rows after the cursor: an empty table of the source's columns (names only matter here)."""
    import sqlalchemy as sa

    columns = sa.inspect(sql_engine(dsn)).get_columns(table, schema=schema)
    return pa.table({column["name"]: pa.array([], pa.null()) for column in columns})
