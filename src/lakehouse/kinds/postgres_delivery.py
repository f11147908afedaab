"""The ``postgres`` delivery kind: a lakehouse table copied to a PostgreSQL table for BI, idempotently.

Options: ``target_table`` (``schema.table`` in PostgreSQL; default ``analytics.<table>``), ``conn_id``
(an Airflow connection) and ``grants`` (dbt's ``{select: [role, ...]}``; default the dbt model's own
``grants`` config, see lakehouse.grants). The server is resolved as for CDC (lakehouse.sources.postgres_server.resolve_dsn):
the Airflow connection when defined, else ``LAKEHOUSE_SOURCE_DSN``, else the embedded PostgreSQL of the
lakehouse, started when it is not running. The rows are read with a PyIceberg scan: no SQL engine.

One transaction per delivery: create the schema and the table when missing (column types mapped from
the Arrow schema), recreate the table when the lakehouse table's columns changed, delete every row and
COPY the current rows in, then apply the grants. Readers see the old rows until the commit, then the new ones; a rerun leaves
the same rows, never doubled. Deliveries into one schema take a transaction-scoped advisory lock, so
two at the same time cannot interleave. Identifiers are validated and quoted; DSNs are only ever shown
masked.

The other PostgreSQL delivery kind, ``postgres_sync``, shares the helpers here: the type mapping, the
target's parsing, the CSV for COPY, the lock, the options' checks and the lineage.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg2 import sql

from ..grants import Grants, GrantsError, apply_grants, check_roles, parse_grants, resolve_grants
from ..identifiers import split_table_name, validate_identifier
from ..sources import postgres_server
from .base import DeliveryKind, InvalidOptions, Option, is_template

log = logging.getLogger(__name__)
DEFAULT_CONN_ID = "lakehouse_source"
DEFAULT_SCHEMA = "analytics"
BATCH_ROWS = 100_000


class DeliveryError(RuntimeError):
    pass


def describe_grants(changes: dict[str, list[str]]) -> str:
    """'; granted select to a; revoked select from b' for a log line (empty when nothing changed)."""
    return "".join(f"; {what} {', '.join(lines)}" for what, lines in changes.items() if lines)


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


def split_target(target: str) -> tuple[str, str]:
    """'schema.table' -> (schema, table), both validated."""
    parts = str(target).split(".")
    if len(parts) != 2:
        raise DeliveryError(f"target_table {target!r} must be 'schema.table'")
    return validate_identifier(parts[0], "target schema"), validate_identifier(parts[1], "target table")


def csv_rows(batch: pa.RecordBatch) -> io.BytesIO:
    """A batch as CSV for ``COPY ... FROM STDIN WITH (FORMAT csv)``."""
    buffer = io.BytesIO()
    # Nulls are written as nothing, empty strings as "": COPY ... CSV reads them back as NULL and ''.
    pacsv.write_csv(pa.Table.from_batches([batch]), buffer, pacsv.WriteOptions(include_header=False))
    buffer.seek(0)
    return buffer


def existing_columns(cur, schema: str, table: str) -> list[tuple[str, str]] | None:
    """[(name, type as format_type spells it)] of a table, in order; None when it does not exist."""
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


def lock_schema(cur, schema: str) -> None:
    """Serialise the deliveries into one schema (of either PostgreSQL kind) until the transaction ends."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"lakehouse.deliver:{schema}",))


def copy_rows(cur, reader: pa.RecordBatchReader, relation: sql.Composable, columns: list[str]) -> int:
    """COPY every batch of the reader into ``relation``'s ``columns``; returns the rows copied."""
    column_list = sql.SQL(", ").join(sql.Identifier(name) for name in columns)
    copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(relation, column_list).as_string(cur)
    rows = 0
    for batch in reader:
        if batch.num_rows:
            cur.copy_expert(copy, csv_rows(batch))
            rows += batch.num_rows
    return rows


def copy_to_postgres(reader: pa.RecordBatchReader, dsn: str, schema: str, table: str,
                     grants: Grants | None = None) -> tuple[int, dict[str, list[str]]]:
    """Replace the rows of ``schema.table`` with the reader's and apply ``grants``, in one transaction;
    returns the rows copied and the grant changes."""
    columns = [(validate_identifier(f.name, "column name"), postgres_type(f.type)) for f in reader.schema]
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    conn = postgres_server.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            lock_schema(cur, schema)
            check_roles(cur, grants or {}, f"{schema}.{table}")  # before anything is written
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            existing = existing_columns(cur, schema, table)
            if existing is not None and existing != columns:
                log.info("%s.%s has columns %s, the lakehouse table %s: recreating it", schema, table, existing, columns)
                cur.execute(sql.SQL("DROP TABLE {}").format(target))
                existing = None
            if existing is None:
                definition = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in columns)
                cur.execute(sql.SQL("CREATE TABLE {} ({})").format(target, definition))
            cur.execute(sql.SQL("DELETE FROM {}").format(target))
            rows = copy_rows(cur, reader, target, [name for name, _ in columns])
            changes = apply_grants(cur, schema, table, grants or {})
    finally:
        conn.close()
    return rows, changes


GRANTS_HELP = "dbt's grants, {privilege: [role, ...]}; default the dbt model's grants config"


def check_target_and_grants(options: dict[str, Any], where: str, rendered: bool) -> None:
    """The options both PostgreSQL kinds share: 'target_table' is schema.table, 'grants' is dbt's shape."""
    if options.get("target_table") and not is_template(options["target_table"]):
        try:
            split_target(options["target_table"])
        except (DeliveryError, ValueError) as error:
            raise InvalidOptions(f"{where} option 'target_table': {error}") from None
    if options.get("grants") is not None and not is_template(options["grants"]):
        try:
            parse_grants(options["grants"], f"{where} option 'grants'", allow_templates=not rendered)
        except GrantsError as error:
            raise InvalidOptions(str(error)) from None


def postgres_output(conn_id: str, schema: str, table: str, lakehouse_table: str, full: bool, rows: Any,
                    columns: list[str] | None = None):
    """The OpenLineage OutputDataset of a PostgreSQL copy: with ``full``, the column types it gets and column
    lineage from the lakehouse table (``columns``: the ones copied, default all); ``rows`` written."""
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import output_statistics_output_dataset, schema_dataset

    from ..catalog import load_table
    from ..lineage import facets as F
    from ..lineage import naming

    dsn, embedded = postgres_server.resolve_dsn(conn_id, start_embedded=False)
    namespace, name = naming.postgres_identity(dsn, schema, table, embedded=embedded)
    target = OutputDataset(namespace=namespace, name=name, facets={}, outputFacets={})
    source = load_table(lakehouse_table) if full else None
    if source is not None:
        arrow = source.schema().as_arrow()
        if columns is not None:
            arrow = pa.schema([field for field in arrow if field.name in columns])
        fields = []
        for field in arrow:
            try:
                kind = postgres_type(field.type)
            except DeliveryError:  # a type the delivery itself refuses
                kind = None
            fields.append(schema_dataset.SchemaDatasetFacetFields(name=field.name, type=kind))
        target.facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=fields)
        target.facets["columnLineage"] = F.identity_column_lineage(naming.table_identity(lakehouse_table), arrow.names)
    if isinstance(rows, int):
        target.outputFacets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=rows)
    return target


class PostgresDelivery(DeliveryKind):
    name = "postgres"
    OPTIONS = {
        "target_table": Option(str, help="'schema.table' in PostgreSQL; default analytics.<table>"),
        "conn_id": Option(str, default=DEFAULT_CONN_ID, help="the Airflow connection of the server"),
        "grants": Option(dict, help=GRANTS_HELP),
    }

    @classmethod
    def check(cls, options: dict[str, Any], where: str, rendered: bool) -> None:
        check_target_and_grants(options, where, rendered)

    @property
    def target(self) -> tuple[str, str]:
        return split_target(self.options.get("target_table") or f"{DEFAULT_SCHEMA}.{split_table_name(self.delivery.table)[1]}")

    def deliver(self, run_id: str | None) -> dict[str, Any]:
        from ..catalog import load_table

        started = time.monotonic()
        schema, table = self.target
        source = load_table(self.delivery.table)
        if source is None:
            raise DeliveryError(f"{self.delivery.table} does not exist in the lakehouse (has dbt built it?)")
        grants = resolve_grants(self.pipeline, self.delivery, self.options.get("grants"))
        dsn, embedded = postgres_server.resolve_dsn(self.options["conn_id"])
        rows, changes = copy_to_postgres(source.scan().to_arrow_batch_reader(), dsn, schema, table, grants)
        seconds = round(time.monotonic() - started, 2)
        log.info("delivered %s to %s.%s on %s: %s rows in %.2f s%s", self.delivery.table, schema, table,
                 postgres_server.mask_dsn(dsn), f"{rows:,}", seconds, describe_grants(changes))
        return {"table": self.delivery.table, "target": f"{schema}.{table}", "rows": rows, "embedded_server": embedded,
                "seconds": seconds, "grants": changes}

    def lineage_output(self, result: dict[str, Any] | None, full: bool):
        """The PostgreSQL table, with the column types it gets and column lineage from the lakehouse table."""
        schema, table = self.target
        rows = result.get("rows") if isinstance(result, dict) else None
        return postgres_output(self.options["conn_id"], schema, table, self.delivery.table, full, rows)
