"""The ``postgres`` delivery kind: a lakehouse table copied to a PostgreSQL table for BI, idempotently.

Options: ``target_table`` (``schema.table`` in PostgreSQL; default ``analytics.<table>``) and ``conn_id``
(an Airflow connection). The server is resolved as for CDC (lakehouse.sources.postgres_server.resolve_dsn):
the Airflow connection when defined, else ``LAKEHOUSE_SOURCE_DSN``, else the embedded PostgreSQL of the
lakehouse, started when it is not running. The rows are read with a PyIceberg scan: no SQL engine.

One transaction per delivery: create the schema and the table when missing (column types mapped from
the Arrow schema), recreate the table when the lakehouse table's columns changed, delete every row and
COPY the current rows in. Readers see the old rows until the commit, then the new ones; a rerun leaves
the same rows, never doubled. Deliveries into one schema take a transaction-scoped advisory lock, so
two at the same time cannot interleave. Identifiers are validated and quoted; DSNs are only ever shown
masked.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg2 import sql

from ..identifiers import split_table_name, validate_identifier
from ..sources import postgres_server
from .base import DeliveryKind, InvalidOptions, Option, is_template

log = logging.getLogger(__name__)
DEFAULT_CONN_ID = "lakehouse_source"
DEFAULT_SCHEMA = "analytics"
BATCH_ROWS = 100_000


class DeliveryError(RuntimeError):
    pass


def postgres_type(kind: pa.DataType) -> str:
    """The PostgreSQL type of an Arrow type, as format_type() spells it (to compare with an existing table)."""
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_int8(kind) or pa.types.is_int16(kind) or pa.types.is_uint8(kind):
        return "smallint"
    if pa.types.is_int32(kind) or pa.types.is_uint16(kind):
        return "integer"
    if pa.types.is_int64(kind) or pa.types.is_uint32(kind):
        return "bigint"
    if pa.types.is_uint64(kind):
        return "numeric(20,0)"
    if pa.types.is_float16(kind) or pa.types.is_float32(kind):
        return "real"
    if pa.types.is_float64(kind):
        return "double precision"
    if pa.types.is_decimal(kind):
        return f"numeric({kind.precision},{kind.scale})"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "text"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_timestamp(kind):
        return "timestamp with time zone" if kind.tz else "timestamp without time zone"
    if pa.types.is_time(kind):
        return "time without time zone"
    if pa.types.is_dictionary(kind):
        return postgres_type(kind.value_type)
    raise DeliveryError(f"no PostgreSQL column type for Arrow type {kind}")


def _split_target(target: str) -> tuple[str, str]:
    parts = str(target).split(".")
    if len(parts) != 2:
        raise DeliveryError(f"target_table {target!r} must be 'schema.table'")
    return validate_identifier(parts[0], "target schema"), validate_identifier(parts[1], "target table")


def _csv(batch: pa.RecordBatch) -> io.BytesIO:
    buffer = io.BytesIO()
    # Nulls are written as nothing, empty strings as "": COPY ... CSV reads them back as NULL and ''.
    pacsv.write_csv(pa.Table.from_batches([batch]), buffer, pacsv.WriteOptions(include_header=False))
    buffer.seek(0)
    return buffer


def _existing_columns(cur, schema: str, table: str) -> list[tuple[str, str]] | None:
    cur.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',))
    (oid,) = cur.fetchone()
    if oid is None:
        return None
    cur.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (f'"{schema}"."{table}"',),
    )
    return [(name, kind) for name, kind in cur.fetchall()]


def copy_to_postgres(reader: pa.RecordBatchReader, dsn: str, schema: str, table: str) -> int:
    """Replace the rows of ``schema.table`` with the reader's, in one transaction; returns the rows copied."""
    columns = [(validate_identifier(f.name, "column name"), postgres_type(f.type)) for f in reader.schema]
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    column_list = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
    conn = postgres_server.connect(dsn)
    rows = 0
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"lakehouse.deliver:{schema}",))
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            existing = _existing_columns(cur, schema, table)
            if existing is not None and existing != columns:
                log.info("%s.%s has columns %s, the lakehouse table %s: recreating it", schema, table, existing, columns)
                cur.execute(sql.SQL("DROP TABLE {}").format(target))
                existing = None
            if existing is None:
                definition = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in columns)
                cur.execute(sql.SQL("CREATE TABLE {} ({})").format(target, definition))
            cur.execute(sql.SQL("DELETE FROM {}").format(target))
            copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(target, column_list).as_string(cur)
            for batch in reader:
                if batch.num_rows:
                    cur.copy_expert(copy, _csv(batch))
                    rows += batch.num_rows
    finally:
        conn.close()
    return rows


class PostgresDelivery(DeliveryKind):
    name = "postgres"
    OPTIONS = {
        "target_table": Option(str, help="'schema.table' in PostgreSQL; default analytics.<table>"),
        "conn_id": Option(str, default=DEFAULT_CONN_ID, help="the Airflow connection of the server"),
    }

    @classmethod
    def check(cls, options: dict[str, Any], where: str, rendered: bool) -> None:
        if options.get("target_table") and not is_template(options["target_table"]):
            try:
                _split_target(options["target_table"])
            except (DeliveryError, ValueError) as error:
                raise InvalidOptions(f"{where} option 'target_table': {error}") from None

    @property
    def target(self) -> tuple[str, str]:
        return _split_target(self.options.get("target_table") or f"{DEFAULT_SCHEMA}.{split_table_name(self.delivery.table)[1]}")

    def deliver(self, run_id: str | None) -> dict[str, Any]:
        from ..catalog import load_table

        started = time.monotonic()
        schema, table = self.target
        source = load_table(self.delivery.table)
        if source is None:
            raise DeliveryError(f"{self.delivery.table} does not exist in the lakehouse (has dbt built it?)")
        dsn, embedded = postgres_server.resolve_dsn(self.options["conn_id"])
        rows = copy_to_postgres(source.scan().to_arrow_batch_reader(), dsn, schema, table)
        seconds = round(time.monotonic() - started, 2)
        log.info("delivered %s to %s.%s on %s: %s rows in %.2f s", self.delivery.table, schema, table,
                 postgres_server.mask_dsn(dsn), f"{rows:,}", seconds)
        return {"table": self.delivery.table, "target": f"{schema}.{table}", "rows": rows, "embedded_server": embedded,
                "seconds": seconds}

    def lineage_output(self, result: dict[str, Any] | None, full: bool):
        """The PostgreSQL table, with the column types it gets and column lineage from the lakehouse table."""
        from openlineage.client.event_v2 import OutputDataset
        from openlineage.client.facet_v2 import output_statistics_output_dataset, schema_dataset

        from ..catalog import load_table
        from ..lineage import facets as F
        from ..lineage import naming

        schema, table = self.target
        dsn, embedded = postgres_server.resolve_dsn(self.options["conn_id"], start_embedded=False)
        namespace, name = naming.postgres_identity(dsn, schema, table, embedded=embedded)
        target = OutputDataset(namespace=namespace, name=name, facets={}, outputFacets={})
        source = load_table(self.delivery.table) if full else None
        if source is not None:
            arrow = source.schema().as_arrow()
            fields = []
            for field in arrow:
                try:
                    kind = postgres_type(field.type)
                except DeliveryError:  # a type the delivery itself refuses
                    kind = None
                fields.append(schema_dataset.SchemaDatasetFacetFields(name=field.name, type=kind))
            target.facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=fields)
            target.facets["columnLineage"] = F.identity_column_lineage(naming.table_identity(self.delivery.table),
                                                                       arrow.names)
        rows = (result or {}).get("rows") if isinstance(result, dict) else None
        if isinstance(rows, int):
            target.outputFacets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=rows)
        return target
