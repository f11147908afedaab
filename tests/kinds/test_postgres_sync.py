"""The ``postgres_sync`` delivery (reverse ETL by key) and dbt ``grants`` on both PostgreSQL deliveries,
against the test session's real embedded PostgreSQL: rows, xmin, real logins as the granted roles."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg2
import pyarrow as pa
import pytest
from postgres_databases import fresh_database
from psycopg2.extensions import make_dsn, parse_dsn

from lakehouse.delivery import build_delivery, find_delivery
from lakehouse.grants import GrantsError
from lakehouse.kinds import InvalidOptions
from lakehouse.kinds.postgres_sync import SyncError
from lakehouse.pipeline import InvalidPipeline, load_pipeline
from lakehouse.settings import load_settings
from lakehouse.sources import postgres_server
from lakehouse.writes import write

SOURCE = "marts.customer_segments"
TARGET = "crm.customer_segments"
COLUMNS = ["customer_id", "segment", "lifetime_value", "last_order", "note"]


@pytest.fixture
def crm_db(pg, monkeypatch):
    """A fresh database with an empty ``crm`` schema, used by the deliveries (LAKEHOUSE_SOURCE_DSN): its DSN."""
    with fresh_database(pg) as dsn:
        sql(dsn, "CREATE SCHEMA crm")
        monkeypatch.setenv(postgres_server.DSN_VARIABLE, dsn)
        yield dsn


@pytest.fixture
def roles(crm_db):
    """Two login roles with passwords, allowed into the crm schema (the table is what grants decide):
    {name: DSN that logs in as that role}."""
    parts = parse_dsn(crm_db)
    logins = {}
    for _ in range(2):
        role, password = "r_" + uuid.uuid4().hex[:10], "pw-" + uuid.uuid4().hex[:8]
        sql(crm_db, f"CREATE ROLE {role} LOGIN PASSWORD %s; GRANT USAGE ON SCHEMA crm TO {role}", (password,))
        logins[role] = make_dsn(host=parts["host"], port=parts["port"], dbname=parts["dbname"], user=role, password=password)
    yield logins
    for role in logins:
        sql(crm_db, f"DROP OWNED BY {role}; DROP ROLE {role}")


def sql(dsn: str, statement: str, args: tuple = ()) -> list[tuple]:
    conn = postgres_server.connect(dsn, options="-c timezone=UTC")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, args)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def can_select(dsn: str, table: str = TARGET) -> bool:
    """Whether the role of ``dsn`` may read ``table`` (a real login as it); any other error fails the test."""
    try:
        sql(dsn, f"SELECT count(*) FROM {table}")
        return True
    except psycopg2.errors.InsufficientPrivilege as error:
        assert f"permission denied for table {table.split('.')[1]}" in str(error)
        return False


DECLARATION = """\
    name: crm_demo
    ingest:
      - {name: things, table: raw.crm_demo_things, kind: generator, options: {callable: 'generator.py:rows'}}
    deliver:
      - name: segments
        table: marts.customer_segments
        kind: postgres_sync
        options: {target_table: crm.customer_segments, key: [customer_id]}
      - name: segments_bi
        table: marts.customer_segments
        kind: postgres
        options: {target_table: analytics.customer_segments}
"""


def declare(folder: Path, declaration: str = DECLARATION) -> Path:
    (folder / "dbt").mkdir(parents=True)
    (folder / "dbt" / "dbt_project.yml").write_text("name: crm_demo\nprofile: lakehouse\n")
    (folder / "generator.py").write_text("import pyarrow as pa\ndef rows(day, **kw):\n    return pa.table({'x': [1]})\n")
    (folder / "pipeline.yml").write_text(textwrap.dedent(declaration))
    return folder


@pytest.fixture
def pipeline(tmp_path, lakehouse_home):
    return load_pipeline(declare(tmp_path / "crm_demo"))


def deliver(pipeline, name: str = "segments", **options) -> dict:
    """Run one delivery of the pipeline as its task does, with its declared options plus ``options``."""
    delivery = find_delivery(pipeline, name)
    return build_delivery(pipeline, delivery, {**delivery.options, **options}).deliver("test")


def segments(rows: list[tuple]) -> pa.Table:
    """The source table from (customer_id, segment, lifetime_value, last_order, note) rows."""
    ids, names, values, days, notes = zip(*rows, strict=True) if rows else ([],) * 5
    return pa.table({
        "customer_id": pa.array(ids, pa.int64()),
        "segment": pa.array(names, pa.string()),
        "lifetime_value": pa.array(values, pa.decimal128(12, 2)),
        "last_order": pa.array(days, pa.date32()),
        "note": pa.array(notes, pa.string()),
    })


def first_rows() -> list[tuple]:
    return [(i, "vip" if i % 3 == 0 else "regular", Decimal(f"{i * 10}.50"), dt.date(2026, 11, i),
             None if i % 4 == 0 else f"note {i}") for i in range(1, 11)]


def target_rows(dsn: str, columns: list[str] = COLUMNS) -> list[tuple]:
    return sql(dsn, f"SELECT {', '.join(columns)} FROM {TARGET} ORDER BY customer_id")


def versions(dsn: str) -> dict[int, str]:
    """customer_id -> xmin of its row: a row rewritten (updated, or deleted and inserted) gets a new one."""
    return dict(sql(dsn, f"SELECT customer_id, xmin::text FROM {TARGET}"))


def counts(result: dict) -> tuple[int, int, int, int]:
    return result["inserted"], result["updated"], result["deleted"], result["unchanged"]


def test_a_sync_writes_exactly_the_rows_that_changed(crm_db, pipeline, lakehouse_logs):
    rows = first_rows()
    write(SOURCE, segments(rows), "overwrite")
    result = deliver(pipeline)
    assert counts(result) == (10, 0, 0, 0) and result["target"] == TARGET and result["rows"] == 10
    assert target_rows(crm_db) == rows
    # The table was created with its primary key on the key.
    assert sql(crm_db, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass"
                       " AND contype = 'p'", (TARGET,)) == [("PRIMARY KEY (customer_id)",)]

    # The same source again: nothing written, not a single row version.
    before = versions(crm_db)
    assert counts(deliver(pipeline)) == (0, 0, 0, 10)
    assert versions(crm_db) == before

    # Two rows change (a value, and NULL -> text and text -> NULL: NULL-safe), key 5 goes, key 11 comes.
    changed = {2: (2, "vip", Decimal("20.50"), dt.date(2026, 11, 2), None),
               4: (4, "regular", Decimal("40.50"), dt.date(2026, 11, 4), "now noted")}
    new_rows = [changed.get(r[0], r) for r in rows if r[0] != 5] + [(11, "new", None, None, "")]
    write(SOURCE, segments(new_rows), "overwrite")
    result = deliver(pipeline)
    assert counts(result) == (1, 2, 1, 7)
    assert target_rows(crm_db) == new_rows  # the whole table equals the source ('' stays '', not NULL)
    after = versions(crm_db)
    assert {k: v for k, v in after.items() if k not in (2, 4, 11)} == {k: v for k, v in before.items() if k not in (2, 4, 5)}
    assert after[2] != before[2] and after[4] != before[4]
    assert counts(deliver(pipeline)) == (0, 0, 0, 10) and versions(crm_db) == after

    logged = [r.getMessage() for r in lakehouse_logs if r.getMessage().startswith("synced ")]
    assert f"synced {SOURCE} to {TARGET}" in logged[2] and "1 inserted, 2 updated, 1 deleted, 7 unchanged" in logged[2]

    # delete_missing off: keys that leave the source stay in the target.
    write(SOURCE, segments(new_rows[:3]), "overwrite")
    assert counts(deliver(pipeline, delete_missing=False)) == (0, 0, 0, 3)
    assert target_rows(crm_db) == new_rows
    # A subset of columns: only those are compared and written.
    write(SOURCE, segments([(r[0], "gone", *r[2:]) for r in new_rows]), "overwrite")
    assert counts(deliver(pipeline, columns=["customer_id", "lifetime_value"])) == (0, 0, 0, 10)
    assert target_rows(crm_db) == new_rows


def test_duplicate_or_null_keys_change_nothing_and_say_which(crm_db, pipeline):
    rows = first_rows()
    write(SOURCE, segments(rows), "overwrite")
    deliver(pipeline)
    before = versions(crm_db)

    write(SOURCE, segments([*rows, rows[4], rows[2], (3, "again", None, None, None)]), "overwrite")
    with pytest.raises(SyncError) as error:
        deliver(pipeline)
    assert str(error.value) == (
        f"{SOURCE} has 2 duplicate key value(s) in key (customer_id), e.g. (3), (5); each key must be one row "
        "(deduplicate the model, or choose a key that is unique). Nothing was changed.")
    write(SOURCE, segments([(None, "x", None, None, None), *rows[1:]]), "overwrite")
    with pytest.raises(SyncError, match=r"has 1 row\(s\) with a NULL in key \(customer_id\).*Nothing was changed"):
        deliver(pipeline)
    assert target_rows(crm_db) == rows and versions(crm_db) == before


def test_the_target_follows_new_columns_and_refuses_a_changed_type(crm_db, pipeline):
    rows = first_rows()
    write(SOURCE, segments(rows), "overwrite")
    deliver(pipeline)
    # The CRM added its own column, and a view reads the table: neither may be lost.
    sql(crm_db, f"ALTER TABLE {TARGET} ADD COLUMN owner_note text DEFAULT 'crm';"
                f" CREATE VIEW crm.vips AS SELECT customer_id FROM {TARGET} WHERE segment = 'vip'")
    oid = sql(crm_db, "SELECT %s::regclass::oid", (TARGET,))

    scored = segments(rows).append_column("score", pa.array([float(i) / 4 for i in range(10)], pa.float64()))
    write(SOURCE, scored, "overwrite")
    assert counts(deliver(pipeline)) == (0, 10, 0, 0)
    assert sql(crm_db, "SELECT %s::regclass::oid", (TARGET,)) == oid  # altered, not recreated
    assert target_rows(crm_db, [*COLUMNS, "score", "owner_note"]) == [(*r, i / 4, "crm") for i, r in enumerate(rows)]
    assert sql(crm_db, "SELECT count(*) FROM crm.vips") == [(3,)]

    # Someone narrowed a column in PostgreSQL: the sync refuses rather than recreating the table.
    sql(crm_db, f"DROP VIEW crm.vips; ALTER TABLE {TARGET} ALTER COLUMN lifetime_value TYPE numeric(10,2)")
    with pytest.raises(SyncError) as error:
        deliver(pipeline)
    assert str(error.value).startswith(f"{TARGET}: column 'lifetime_value' is numeric(10,2) there, numeric(12,2) in {SOURCE}."
                                       " A sync never changes a column's type")
    # A target without a key to match on is refused too (ON CONFLICT needs one).
    sql(crm_db, f"ALTER TABLE {TARGET} ALTER COLUMN lifetime_value TYPE numeric(12,2);"
                f" ALTER TABLE {TARGET} DROP CONSTRAINT customer_segments_pkey")
    with pytest.raises(SyncError, match=r"has no primary key or unique index on \(customer_id\).*ADD PRIMARY KEY"):
        deliver(pipeline)


def test_grants_are_given_and_taken_back_on_both_postgres_kinds(crm_db, roles, pipeline):
    reader, other = roles
    write(SOURCE, segments(first_rows()), "overwrite")
    result = deliver(pipeline, grants={"select": [reader]})
    assert result["grants"] == {"granted": [f"select to {reader}"], "revoked": []}
    assert can_select(roles[reader]) and not can_select(roles[other])

    # The config is the complete list: the role it no longer names loses the privilege.
    result = deliver(pipeline, grants={"SELECT": [other]})
    assert result["grants"] == {"granted": [f"select to {other}"], "revoked": [f"select from {reader}"]}
    assert not can_select(roles[reader]) and can_select(roles[other])
    assert deliver(pipeline, grants={"select": [other]})["grants"] == {"granted": [], "revoked": []}
    # Never taken from the table's owner, though the config does not name it.
    assert sql(crm_db, "SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = %s::regclass"
                       " AND a.grantee = c.relowner AND a.privilege_type = 'SELECT'", (TARGET,)) == [(1,)]

    # A role that does not exist: an error naming it and the table, raised before any row is written.
    rows = target_rows(crm_db)
    write(SOURCE, segments(first_rows()[:2]), "overwrite")
    with pytest.raises(GrantsError) as error:
        deliver(pipeline, grants={"select": [other, "no_such_role"]})
    assert str(error.value) == (f"grants on {TARGET}: role 'no_such_role' does not exist; create the role first "
                                "(CREATE ROLE no_such_role), then rerun. Nothing was changed.")
    assert target_rows(crm_db) == rows and can_select(roles[other])
    # Only dbt's table privileges, checked when the options are.
    with pytest.raises(InvalidOptions, match="privilege 'truncate' is not one of select, insert, update, delete"):
        deliver(pipeline, grants={"truncate": [other]})

    # The `postgres` kind (replace all rows) applies them the same way, also after it recreates the table.
    sql(crm_db, f"CREATE SCHEMA analytics; GRANT USAGE ON SCHEMA analytics TO {reader}, {other}")
    assert deliver(pipeline, "segments_bi", grants={"select": [reader]})["grants"]["granted"] == [f"select to {reader}"]
    assert can_select(roles[reader], "analytics.customer_segments")
    assert not can_select(roles[other], "analytics.customer_segments")
    write(SOURCE, segments(first_rows()).drop_columns(["note"]), "overwrite")
    assert deliver(pipeline, "segments_bi", grants={"select": [other]})["rows"] == 10
    assert can_select(roles[other], "analytics.customer_segments")
    assert not can_select(roles[reader], "analytics.customer_segments")
    with pytest.raises(GrantsError, match="role 'nobody_here' does not exist"):
        deliver(pipeline, "segments_bi", grants={"select": ["nobody_here"]})
    assert sql(crm_db, "SELECT count(*) FROM analytics.customer_segments") == [(10,)]


def test_grants_default_to_the_dbt_models_grants_config(crm_db, roles, pipeline):
    reader, other = roles
    write(SOURCE, segments(first_rows()), "overwrite")
    # No manifest yet: no grant changes.
    assert deliver(pipeline)["grants"] == {"granted": [], "revoked": []}
    sql(crm_db, f"GRANT SELECT ON {TARGET} TO {other}")  # granted by hand: the model's config will take it back

    manifest = load_settings().manifest_dir(pipeline.name) / "manifest.json"
    manifest.parent.mkdir(parents=True)
    model = {"resource_type": "model", "name": "customer_segments", "alias": "customer_segments", "schema": "marts",
             "unique_id": "model.crm_demo.customer_segments", "config": {"materialized": "table", "grants": {"select": reader}}}
    other_model = {**model, "name": "x", "alias": "x", "config": {"grants": {"select": [other]}}}
    manifest.write_text(json.dumps({"nodes": {model["unique_id"]: model, "model.crm_demo.x": other_model}}))
    assert deliver(pipeline)["grants"] == {"granted": [f"select to {reader}"], "revoked": [f"select from {other}"]}
    assert can_select(roles[reader]) and not can_select(roles[other])
    assert deliver(pipeline, "segments_bi")["grants"]["granted"] == [f"select to {reader}"]
    # An explicit option wins over the model's config; an empty one changes nothing.
    assert deliver(pipeline, grants={})["grants"] == {"granted": [], "revoked": []}
    assert can_select(roles[reader])


def test_options_are_checked_when_the_pipeline_loads(tmp_path, lakehouse_home):
    def refused(options: str) -> str:
        folder = tmp_path / uuid.uuid4().hex / "crm_demo"
        declare(folder, DECLARATION.replace("{target_table: crm.customer_segments, key: [customer_id]}", options))
        with pytest.raises(InvalidPipeline) as error:
            load_pipeline(folder)
        return str(error.value).split(" deliver ", 1)[1]

    assert refused("{target_table: crm.x}") == ("'segments': option 'key' is required for kind 'postgres_sync' "
                                                "(the columns that identify a row, e.g. [customer_id])")
    assert refused("{target_table: crm.x, key: customer_id}") == (
        "'segments' option 'key': must be a list, got 'customer_id'")
    assert refused("{target_table: crm.x, key: [id], columns: [name]}") == (
        "'segments' option 'columns': must include the key column(s) id")
    assert refused("{target_table: crm.x, key: ['a; drop']}").startswith("'segments' option 'key': invalid column name")
    assert refused("{target_table: crm.x, key: [id], grants: {select: ['bad role']}}").startswith(
        "'segments' option 'grants': privilege 'select': invalid role name 'bad role'")
    assert refused("{target_table: x, key: [id]}") == "'segments' option 'target_table': target_table 'x' must be 'schema.table'"


def test_lineage_names_the_postgres_table_and_the_rows_written(pipeline, monkeypatch):
    monkeypatch.setenv(postgres_server.DSN_VARIABLE, "postgresql://crm:pw@db.example:5433/crm")
    delivery = find_delivery(pipeline, "segments")
    kind = build_delivery(pipeline, delivery, {**delivery.options, "columns": ["customer_id", "segment"]})
    output = kind.lineage_output({"inserted": 1, "updated": 2, "deleted": 1}, full=False)
    assert (output.namespace, output.name) == ("postgres://db.example:5433", "crm.crm.customer_segments")
    assert output.outputFacets["outputStatistics"].rowCount == 3
    write(SOURCE, segments(first_rows()), "overwrite")
    full = kind.lineage_output(None, full=True)
    assert [f.name for f in full.facets["schema"].fields] == ["customer_id", "segment"]
