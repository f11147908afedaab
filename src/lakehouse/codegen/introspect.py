"""Read a source's schema into one neutral description, whatever the source is.

PostgreSQL answers from information_schema (names, order, types, primary keys) and pg_catalog
(comments, the type as `format_type` spells it); Iceberg from the table schemas (field docs, the
schema's identifier fields, table properties). Everything after this module sees only Table and
Column, so rendering and drift never branch on the kind of source.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

# Iceberg table properties: what a sync writes down about the table it keeps up to date.
CURSOR_PROPERTY = "lakehouse.sync.cursor_column"
KEY_PROPERTY = "lakehouse.sync.primary_key"
INGESTED_AT = "_ingested_at"
# PostgreSQL numeric without precision lands as the lake's widest exact decimal (dlt's default too).
UNCONSTRAINED_DECIMAL = "decimal(38, 9)"


@dataclass(frozen=True)
class Column:
    name: str  # as the source spells it
    source_type: str  # as the source spells it: 'numeric(10,2)', 'timestamptz'
    portable_type: str | None  # what the staging model casts to; None: passed through uncast (nested types)
    description: str | None = None


@dataclass(frozen=True)
class Table:
    name: str  # as the source spells it
    columns: tuple[Column, ...]  # in the source's order
    description: str | None = None
    primary_key: tuple[str, ...] = ()
    cursor_column: str | None = None  # the freshness column, when there is one


_PG_TYPES = {
    "smallint": "smallint", "integer": "int", "bigint": "bigint",
    "real": "double", "double precision": "double",
    "boolean": "boolean", "date": "date",
    "timestamp without time zone": "timestamp",
    # The instant, as UTC wall time: see _ICEBERG_TYPES' note on timestamptz.
    "timestamp with time zone": "timestamp",
    "bytea": "binary",
}  # fmt: skip


def portable_pg_type(data_type: str, precision: int | None, scale: int | None) -> str:
    """The portable SQL type (DuckDB and Spark SQL both run it) of a PostgreSQL column.

    Text-like types, json/jsonb, uuid, time, interval, enums and arrays become string: the landed table
    holds them as text, and neither engine shares PostgreSQL's richer types.
    """
    if data_type == "numeric":
        return f"decimal({precision}, {scale or 0})" if precision else UNCONSTRAINED_DECIMAL
    return _PG_TYPES.get(data_type, "string")


_COLUMNS_SQL = """
select c.table_name, c.column_name, c.data_type, c.numeric_precision, c.numeric_scale,
       format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum)
from information_schema.columns c
join pg_catalog.pg_namespace n on n.nspname = c.table_schema
join pg_catalog.pg_class r on r.relnamespace = n.oid and r.relname = c.table_name
join pg_catalog.pg_attribute a on a.attrelid = r.oid and a.attname = c.column_name
where c.table_schema = %s
order by c.table_name, c.ordinal_position
"""
_TABLES_SQL = """
select t.table_name, obj_description(r.oid, 'pg_class')
from information_schema.tables t
join pg_catalog.pg_namespace n on n.nspname = t.table_schema
join pg_catalog.pg_class r on r.relnamespace = n.oid and r.relname = t.table_name
where t.table_schema = %s and t.table_type = 'BASE TABLE'
order by t.table_name
"""
_KEYS_SQL = """
select tc.table_name, k.column_name
from information_schema.table_constraints tc
join information_schema.key_column_usage k
  on k.constraint_schema = tc.constraint_schema and k.constraint_name = tc.constraint_name
 and k.table_name = tc.table_name
where tc.table_schema = %s and tc.constraint_type = 'PRIMARY KEY'
order by tc.table_name, k.ordinal_position
"""


def read_postgres(dsn: str, schema: str, *, tables: str | None = None, cursor_column: str = "updated_at") -> list[Table]:
    """The base tables of ``schema`` (those matching the glob ``tables``), sorted by name."""
    from ..sources.postgres_server import connect

    conn = connect(dsn, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute(_TABLES_SQL, (schema,))
            comments = dict(cur.fetchall())
            cur.execute(_COLUMNS_SQL, (schema,))
            column_rows = cur.fetchall()
            cur.execute(_KEYS_SQL, (schema,))
            key_rows = cur.fetchall()
    finally:
        conn.close()
    if not comments:
        raise ValueError(f"PostgreSQL schema {schema!r} has no tables (or does not exist)")
    columns: dict[str, list[Column]] = {name: [] for name in comments}
    for table, name, data_type, precision, scale, full_type, comment in column_rows:
        if table in columns:
            columns[table].append(Column(name, full_type, portable_pg_type(data_type, precision, scale), _text(comment)))
    keys: dict[str, list[str]] = {}
    for table, name in key_rows:
        keys.setdefault(table, []).append(name)
    result = []
    for name in sorted(comments):
        if tables and not fnmatch.fnmatchcase(name, tables):
            continue
        names = {c.name for c in columns[name]}
        result.append(Table(name, tuple(columns[name]), _text(comments[name]), tuple(keys.get(name, ())),
                            cursor_column if cursor_column in names else None))
    return result


def portable_iceberg_type(field_type) -> str | None:
    """The portable SQL type of an Iceberg field type; None for nested types (passed through uncast)."""
    from pyiceberg import types as t

    simple = {
        t.BooleanType: "boolean", t.IntegerType: "int", t.LongType: "bigint",
        t.FloatType: "double", t.DoubleType: "double", t.DateType: "date",
        t.StringType: "string", t.UUIDType: "string", t.TimeType: "string",
        t.BinaryType: "binary", t.FixedType: "binary",
        t.TimestampType: "timestamp", t.TimestampNanoType: "timestamp",
        # timestamptz is not portable: Spark SQL has no type of that name, and DuckDB shows a
        # timestamptz in its session's TimeZone. A timestamp holds the same instant as UTC wall
        # time on both (the lakehouse's Spark sessions run in UTC).
        t.TimestamptzType: "timestamp", t.TimestamptzNanoType: "timestamp",
    }  # fmt: skip
    if isinstance(field_type, t.DecimalType):
        return f"decimal({field_type.precision}, {field_type.scale})"
    for kind, portable in simple.items():
        if isinstance(field_type, kind):
            return portable
    return None


def read_iceberg(namespace: str, *, tables: str | None = None, catalog=None) -> list[Table]:
    """The tables of an Iceberg namespace (those matching the glob ``tables``), sorted by name."""
    from ..catalog import get_catalog

    catalog = catalog or get_catalog()
    names = sorted(identifier[-1] for identifier in catalog.list_tables(namespace))
    result = []
    for name in names:
        if tables and not fnmatch.fnmatchcase(name, tables):
            continue
        table = catalog.load_table((namespace, name))
        schema = table.schema()
        columns = tuple(Column(f.name, str(f.field_type), portable_iceberg_type(f.field_type), _text(f.doc))
                        for f in schema.fields)
        column_names = [c.name for c in columns]
        cursor = table.properties.get(CURSOR_PROPERTY)
        if cursor and cursor not in column_names:
            raise ValueError(f"Iceberg table {namespace}.{name}: property {CURSOR_PROPERTY}={cursor!r} names no column "
                             f"of the table ({', '.join(column_names)})")
        if not cursor and INGESTED_AT in column_names:
            cursor = INGESTED_AT
        keys = tuple(schema.find_column_name(field_id) for field_id in schema.identifier_field_ids)
        if not keys and table.properties.get(KEY_PROPERTY):  # the key an incremental copy merges by
            keys = tuple(name for name in table.properties[KEY_PROPERTY].split(",") if name in column_names)
        result.append(Table(name, columns, _text(table.properties.get("comment")), keys, cursor))
    return result


def _text(value) -> str | None:
    # One line: a description is a one-line YAML scalar, so a comment's line breaks cannot reshape the file.
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None
