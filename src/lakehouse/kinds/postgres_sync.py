"""The ``postgres_sync`` delivery kind: a lakehouse table synced by key into an operational PostgreSQL table.

Reverse ETL, as Census or Hightouch do it: the marketing pipeline's customer segments kept in a CRM
table that applications read and other tables may reference, so the table is never dropped or emptied;
only the rows that changed are written.

Options: ``target_table`` (``schema.table``), ``key`` (the columns that identify a row), ``columns``
(the columns synced, the key among them; default all), ``delete_missing`` (delete the target rows
whose key left the source; default true), ``conn_id`` (the server, resolved as for the ``postgres`` kind)
and ``grants`` (dbt's ``{select: [role, ...]}``; default the dbt model's grants config, see lakehouse.grants).

One transaction, under the same per-schema advisory lock as the ``postgres`` kind: the source rows are
COPYed into a temporary table and checked (a NULL or duplicate key changes nothing and names the keys),
the target is created when missing (with a PRIMARY KEY on the key) or gains the source's new columns
(ALTER TABLE ADD COLUMN; a column whose type changed is an error, never a silent recreate), then

- ``INSERT ... ON CONFLICT (key) DO UPDATE`` of only the source rows that are new or differ in a synced
  column (``IS DISTINCT FROM``: NULL-safe), telling inserts from updates by ``xmax = 0``;
- ``DELETE`` of the target rows whose key the source no longer has (with ``delete_missing``);
- the grants.

A rerun with the same source writes no row (0 inserted, 0 updated, 0 deleted). Target columns the
source does not have are left as they are. Identifiers are validated and quoted; DSNs only shown masked.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pyarrow as pa
from psycopg2 import sql

from ..grants import Grants, apply_grants, check_roles, resolve_grants
from ..identifiers import InvalidIdentifier, validate_identifier
from ..sources import postgres_server
from .base import DeliveryKind, InvalidOptions, Option, is_template
from .postgres_delivery import (
    DEFAULT_CONN_ID,
    GRANTS_HELP,
    DeliveryError,
    check_target_and_grants,
    copy_rows,
    describe_grants,
    existing_columns,
    lock_schema,
    postgres_output,
    postgres_type,
    split_target,
)

log = logging.getLogger(__name__)
STAGING = "lakehouse_sync_source"  # the temporary table of one sync (dropped at commit)
SHOWN_KEYS = 5  # key values a NULL or duplicate key error names


class SyncError(DeliveryError):
    pass


def _idents(names: list[str], prefix: str | None = None) -> sql.Composable:
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(name) for name in names)
    return sql.SQL(", ").join(sql.Identifier(prefix, name) for name in names)


def _keys_equal(left: str, right: str, key: list[str]) -> sql.Composable:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(left, name), sql.Identifier(right, name)) for name in key)


def _row(prefix: str, names: list[str]) -> sql.Composable:
    return sql.SQL("ROW({})").format(_idents(names, prefix))


def _unique_keys(cur, schema: str, table: str) -> list[set[str]]:
    """The column sets of the table's primary key and plain unique indexes (what ON CONFLICT can use)."""
    cur.execute(
        "SELECT array_agg(a.attname::text) FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL"
        " GROUP BY i.indexrelid",
        (f'"{schema}"."{table}"',),
    )
    return [set(names) for (names,) in cur.fetchall()]


def _show(rows: list[tuple]) -> str:
    return ", ".join("(" + ", ".join(repr(value) for value in row) + ")" for row in rows[:SHOWN_KEYS])


def _check_keys(cur, staging: sql.Composable, key: list[str], source: str) -> None:
    """No NULL key and no key twice among the source rows; else an error naming the first few."""
    any_null = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(name)) for name in key)
    cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(staging, any_null))
    (nulls,) = cur.fetchone()
    if nulls:
        raise SyncError(f"{source} has {nulls:,} row(s) with a NULL in key ({', '.join(key)}); "
                        "a synced row needs a whole key. Nothing was changed.")
    cur.execute(sql.SQL("SELECT {keys}, count(*) AS n, count(*) OVER () FROM {staging} GROUP BY {keys}"
                        " HAVING count(*) > 1 ORDER BY n DESC, {keys} LIMIT {shown}").format(
        keys=_idents(key), staging=staging, shown=sql.Literal(SHOWN_KEYS)))
    duplicates = cur.fetchall()
    if duplicates:
        total = duplicates[0][-1]
        shown = _show([row[:len(key)] for row in duplicates])
        raise SyncError(f"{source} has {total:,} duplicate key value(s) in key ({', '.join(key)}), e.g. {shown}; "
                        "each key must be one row (deduplicate the model, or choose a key that is unique). "
                        "Nothing was changed.")


def _prepare_target(cur, schema: str, table: str, columns: list[tuple[str, str]], key: list[str], source: str) -> None:
    """Create the target (PRIMARY KEY on the key) or add the source's new columns; a changed type is an error."""
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    existing = existing_columns(cur, schema, table)
    if existing is None:
        definition = sql.SQL(", ").join(
            [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in columns]
            + [sql.SQL("PRIMARY KEY ({})").format(_idents(key))])
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(target, definition))
        log.info("created %s.%s with primary key (%s)", schema, table, ", ".join(key))
        return
    have = dict(existing)
    changed = [(name, have[name], kind) for name, kind in columns if name in have and have[name] != kind]
    if changed:
        lines = "; ".join(f"column {name!r} is {old} there, {new} in {source}" for name, old, new in changed)
        raise SyncError(f"{schema}.{table}: {lines}. A sync never changes a column's type (others may depend on the "
                        "table): alter the column yourself (ALTER TABLE ... ALTER COLUMN ... TYPE ...), then rerun.")
    if not any(unique == set(key) for unique in _unique_keys(cur, schema, table)):
        raise SyncError(f"{schema}.{table} has no primary key or unique index on ({', '.join(key)}), the sync's key: "
                        f"add one (ALTER TABLE {schema}.{table} ADD PRIMARY KEY ({', '.join(key)})), then rerun.")
    for name, kind in columns:
        if name not in have:
            cur.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(target, sql.Identifier(name), sql.SQL(kind)))
            log.info("%s.%s: added column %s %s, new in %s", schema, table, name, kind, source)
    kept = [name for name in have if name not in dict(columns)]
    if kept:
        log.info("%s.%s keeps column(s) %s that %s does not sync (left as they are)", schema, table, ", ".join(kept), source)


def sync_to_postgres(reader: pa.RecordBatchReader, dsn: str, schema: str, table: str, key: list[str],
                     delete_missing: bool = True, grants: Grants | None = None,
                     source: str = "the source") -> dict[str, Any]:
    """Sync ``schema.table`` to the reader's rows by ``key`` in one transaction; returns the counts
    (inserted, updated, deleted, unchanged, rows) and the grant changes."""
    columns = [(validate_identifier(f.name, "column name"), postgres_type(f.type)) for f in reader.schema]
    names = [name for name, _ in columns]
    values = [name for name in names if name not in key]
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    staging = sql.Identifier(STAGING)
    conn = postgres_server.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            lock_schema(cur, schema)
            check_roles(cur, grants or {}, f"{schema}.{table}")  # before anything is written
            definition = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(k)) for n, k in columns)
            cur.execute(sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(staging, definition))
            rows = copy_rows(cur, reader, staging, names)
            _check_keys(cur, staging, key, source)
            cur.execute(sql.SQL("ANALYZE {}").format(staging))
            _prepare_target(cur, schema, table, columns, key, source)

            # Only the source rows that are new or differ reach the upsert: unchanged target rows are
            # not even locked. The ON CONFLICT ... WHERE repeats the comparison for a row that changed
            # in between (another writer of the table; the advisory lock only orders deliveries).
            same = _keys_equal("existing", "s", key)
            if values:
                same = sql.SQL("{} AND {} IS NOT DISTINCT FROM {}").format(same, _row("existing", values), _row("s", values))
                on_conflict = sql.SQL("DO UPDATE SET {} WHERE {} IS DISTINCT FROM {}").format(
                    sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in values),
                    _row("t", values), _row("excluded", values))
            else:  # a table of keys only: a key present is a row unchanged
                on_conflict = sql.SQL("DO NOTHING")
            cur.execute(sql.SQL(
                "WITH written AS (INSERT INTO {target} AS t ({columns}) SELECT {source_columns} FROM {staging} AS s"
                " WHERE NOT EXISTS (SELECT 1 FROM {target} AS existing WHERE {same})"
                " ON CONFLICT ({key}) {on_conflict} RETURNING (t.xmax = 0) AS inserted)"
                " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written").format(
                target=target, columns=_idents(names), source_columns=_idents(names, "s"), staging=staging,
                same=same, key=_idents(key), on_conflict=on_conflict))
            inserted, updated = cur.fetchone()
            deleted = 0
            if delete_missing:
                cur.execute(sql.SQL("DELETE FROM {} AS t WHERE NOT EXISTS (SELECT 1 FROM {} AS s WHERE {})").format(
                    target, staging, _keys_equal("s", "t", key)))
                deleted = cur.rowcount
            changes = apply_grants(cur, schema, table, grants or {})
    finally:
        conn.close()
    return {"rows": rows, "inserted": inserted, "updated": updated, "deleted": deleted,
            "unchanged": rows - inserted - updated, "grants": changes}


def _identifier_list(value: Any, option: str, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidOptions(f"{where} option {option!r}: must be a non-empty list of column names, got {value!r}")
    try:
        names = [validate_identifier(name, "column name") for name in value]
    except InvalidIdentifier as error:
        raise InvalidOptions(f"{where} option {option!r}: {error}") from None
    if len(set(names)) != len(names):
        raise InvalidOptions(f"{where} option {option!r}: names a column twice: {value!r}")
    return names


class PostgresSyncDelivery(DeliveryKind):
    name = "postgres_sync"
    OPTIONS = {
        "target_table": Option(str, required=True, help="'schema.table' in PostgreSQL, e.g. crm.customer_segments"),
        "key": Option(list, required=True, help="the columns that identify a row, e.g. [customer_id]"),
        "columns": Option(list, help="the columns synced, the key among them; default all"),
        "delete_missing": Option(bool, default=True, help="delete target rows whose key left the source"),
        "conn_id": Option(str, default=DEFAULT_CONN_ID, help="the Airflow connection of the server"),
        "grants": Option(dict, help=GRANTS_HELP),
    }

    @classmethod
    def check(cls, options: dict[str, Any], where: str, rendered: bool) -> None:
        check_target_and_grants(options, where, rendered)
        key = options.get("key")
        if key is None or is_template(key) or any(is_template(name) for name in key):
            return
        key = _identifier_list(key, "key", where)
        columns = options.get("columns")
        if columns is not None and not is_template(columns) and not any(is_template(name) for name in columns):
            columns = _identifier_list(columns, "columns", where)
            missing = [name for name in key if name not in columns]
            if missing:
                raise InvalidOptions(f"{where} option 'columns': must include the key column(s) {', '.join(missing)}")

    @property
    def target(self) -> tuple[str, str]:
        return split_target(self.options["target_table"])

    def _columns(self, source) -> list[str]:
        """The source columns synced, in the table's order; the key and 'columns' must name columns it has."""
        have = [field.name for field in source.schema().fields]
        wanted = self.options.get("columns") or have
        for option, names in (("key", self.options["key"]), ("columns", wanted)):
            missing = [name for name in names if name not in have]
            if missing:
                raise SyncError(f"{self.delivery.table} has no column {', '.join(map(repr, missing))} (option {option!r}); "
                                f"its columns: {', '.join(have)}")
        return [name for name in have if name in set(wanted) | set(self.options["key"])]

    def deliver(self, run_id: str | None) -> dict[str, Any]:
        from ..catalog import load_table

        started = time.monotonic()
        schema, table = self.target
        source = load_table(self.delivery.table)
        if source is None:
            raise SyncError(f"{self.delivery.table} does not exist in the lakehouse (has dbt built it?)")
        columns = self._columns(source)
        grants = resolve_grants(self.pipeline, self.delivery, self.options.get("grants"))
        dsn, embedded = postgres_server.resolve_dsn(self.options["conn_id"])
        reader = source.scan(selected_fields=tuple(columns)).to_arrow_batch_reader()
        counts = sync_to_postgres(reader, dsn, schema, table, list(self.options["key"]),
                                  delete_missing=self.options["delete_missing"], grants=grants, source=self.delivery.table)
        seconds = round(time.monotonic() - started, 2)
        log.info("synced %s to %s.%s on %s by (%s): %s inserted, %s updated, %s deleted, %s unchanged in %.2f s%s",
                 self.delivery.table, schema, table, postgres_server.mask_dsn(dsn), ", ".join(self.options["key"]),
                 f"{counts['inserted']:,}", f"{counts['updated']:,}", f"{counts['deleted']:,}", f"{counts['unchanged']:,}",
                 seconds, describe_grants(counts["grants"]))
        return {"table": self.delivery.table, "target": f"{schema}.{table}", **counts, "embedded_server": embedded,
                "seconds": seconds}

    def lineage_output(self, result: dict[str, Any] | None, full: bool):
        """The PostgreSQL table with the synced columns' types and lineage; the rows written (inserted + updated)."""
        schema, table = self.target
        result = result if isinstance(result, dict) else {}
        written = result.get("inserted"), result.get("updated")
        rows = sum(written) if all(isinstance(n, int) for n in written) else None
        columns = self.options.get("columns")
        if columns:
            columns = list(dict.fromkeys([*self.options["key"], *columns]))
        return postgres_output(self.options["conn_id"], schema, table, self.delivery.table, full, rows, columns)
