"""The ``sql_database`` ingest kind against the test session's real embedded PostgreSQL.

Each test gets its own schema in one database of this module (whose session time zone is not UTC, so
a timestamptz landed in the wrong zone shows), a fresh lakehouse, and a pipeline folder declaring the
entry under test. Expected values come from PostgreSQL itself (psycopg2), never from the code under
test; the raw tables are read back with PyIceberg.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml
from postgres_databases import fresh_database, query
from psycopg2.extensions import make_dsn, parse_dsn

from lakehouse.catalog import load_table
from lakehouse.ingest import LINEAGE_COLUMNS, build_ingest, run_ingest
from lakehouse.loader import pipeline_module
from lakehouse.pipeline import get_pipeline, load_pipeline
from lakehouse.sources import postgres_server
from lakehouse.sync import SyncError, landing, sql_tables
from lakehouse.testing import rendered_options

DAY = dt.date(2026, 11, 20)
T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
SHOP_TABLES = {"customers": "customer_id", "products": "product_id", "orders": "order_id",
               "order_items": "order_item_id"}


@pytest.fixture(scope="module")
def source_db(pg):
    """One database for the module's tests (each works in its own schema): its DSN."""
    # Sessions in New York: the copy must land instants in UTC whatever the server's zone.
    with fresh_database(pg, timezone="America/New_York") as dsn:
        yield dsn


@dataclass
class Source:
    """A schema of its own in the module's database, and a pipeline folder to declare its copy in."""

    dsn: str
    schema: str
    folder: Path

    def sql(self, text: str, args=None) -> list[dict]:
        return query(self.dsn, text.replace("{s}", self.schema), args)

    def rows(self, table: str, key: str = "id") -> list[dict]:
        """The source table's rows now, as PostgreSQL returns them."""
        return sorted(self.sql(f"SELECT * FROM {{s}}.{table}"), key=lambda row: _sort_key(row[key]))

    def sync(self, table: str, day: dt.date = DAY, entry: dict | None = None, **settings) -> dict:
        """One ingest task of an entry copying ``table`` (with table ``settings``, entry options ``entry``)."""
        return self.kind(table, entry=entry, **settings).land(day, "test-run")

    def kind(self, table: str, chunk_size: int | None = None, entry: dict | None = None, **settings):
        options = {"schema": self.schema, "tables": [{"name": table, **settings}], **(entry or {})}
        if chunk_size:
            options["chunk_size"] = chunk_size
        declaration = {"name": self.folder.name, "ingest": [{"name": "src", "kind": "sql_database", "options": options}]}
        (self.folder / "pipeline.yml").write_text(yaml.safe_dump(declaration))
        pipeline = load_pipeline(self.folder)
        [source] = pipeline.ingest
        assert (source.name, source.table) == (f"src_{table}", self.raw_name(table))
        return build_ingest(pipeline, source, rendered_options(pipeline, source.options))

    def raw_name(self, table: str) -> str:
        return f"raw.{self.schema}_{table}"

    def raw(self, table: str, key: str = "id") -> pa.Table:
        return load_table(self.raw_name(table)).scan().to_arrow().sort_by(key)

    def snapshots(self, table: str) -> list[int]:
        return [snapshot.snapshot_id for snapshot in load_table(self.raw_name(table)).snapshots()]

    def quarantine(self, table: str) -> list[dict]:
        found = load_table(f"quarantine.rejected_src_{table}")
        return [] if found is None else found.scan().to_arrow().to_pylist()


@pytest.fixture
def source(source_db, lakehouse_home, monkeypatch, tmp_path) -> Source:
    monkeypatch.setenv(postgres_server.DSN_VARIABLE, source_db)
    schema = "s_" + uuid.uuid4().hex[:10]
    query(source_db, f"CREATE SCHEMA {schema}")
    folder = tmp_path / "copy_test"
    (folder / "dbt").mkdir(parents=True)
    (folder / "dbt" / "dbt_project.yml").write_text("name: copy_test\n")
    return Source(source_db, schema, folder)


def _sort_key(value):
    return (value is None, value)


def as_source_rows(raw: pa.Table, columns: list[str]) -> list[dict]:
    """The raw rows' source ``columns`` as Python values (comparable with psycopg2's)."""
    return raw.select(columns).to_pylist()


def assert_raw_equals_source(source: Source, table: str, key: str = "id") -> None:
    """Every row and column of the source table, in its raw copy, and nothing else."""
    expected = source.rows(table, key)
    assert as_source_rows(source.raw(table, key), list(expected[0])) == expected


def reconciles(result: dict) -> bool:
    return result["fetched"] == (result["landed"] + result["quarantined"] + result["superseded"]
                                 + result["already_landed"])


PRODUCTS = """
    CREATE TABLE {s}.products (
        id         bigint PRIMARY KEY,
        name       text NOT NULL,
        price      numeric(10,2),
        in_stock   boolean NOT NULL,
        added_on   date NOT NULL,
        updated_at timestamptz NOT NULL
    );
    INSERT INTO {s}.products
    SELECT n, 'product ' || n, round((n * 1.37)::numeric, 2), n % 3 <> 0, DATE '2026-01-01' + n,
           TIMESTAMPTZ '2026-11-20 09:00:00+00' + n * INTERVAL '1 minute' + n * INTERVAL '1 microsecond'
    FROM generate_series(1, 40) AS n;
"""


# -- 1. the first copy -------------------------------------------------------------------------

def test_the_first_copy_lands_every_row_with_its_types_and_lineage(source):
    source.sql(PRODUCTS)
    result = source.sync("products")

    count = source.sql("SELECT count(*) AS n FROM {s}.products")[0]["n"]
    assert result["fetched"] == count == 40 and result["landed"] == 40 and reconciles(result)
    assert (result["quarantined"], result["superseded"], result["already_landed"], result["deleted"]) == (0, 0, 0, 0)
    raw = source.raw("products")
    assert raw.schema.field("price").type == pa.decimal128(10, 2)
    assert raw.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    assert raw.schema.field("added_on").type == pa.date32()
    assert as_source_rows(raw, ["id", "name", "price", "in_stock", "added_on", "updated_at"]) == source.rows("products")
    # Spelled out for one row, whatever psycopg2 and PyIceberg make of them.
    row = raw.filter(pc.equal(raw.column("id"), 7)).to_pylist()[0]
    assert row["price"] == Decimal("9.59")
    assert row["updated_at"] == dt.datetime(2026, 11, 20, 9, 7, 0, 7, tzinfo=dt.UTC)
    assert row["updated_at"].utcoffset() == dt.timedelta(0)
    assert set(LINEAGE_COLUMNS) <= set(raw.column_names) and "_deleted" not in raw.column_names
    assert set(raw.column("_batch_date").to_pylist()) == {DAY}
    assert len(source.snapshots("products")) == 1 and result["snapshot_id"] == source.snapshots("products")[0]
    assert result["cursor"] == str(dt.datetime(2026, 11, 20, 9, 40, 0, 40, tzinfo=dt.UTC))


# -- 2. a rerun with nothing new -------------------------------------------------------------------

def test_a_rerun_with_no_change_writes_nothing(source):
    source.sql(PRODUCTS)
    first = source.sync("products")
    again = source.sync("products")
    assert again["landed"] == 0 and again["deleted"] == 0 and reconciles(again)
    assert again["fetched"] == again["already_landed"] == 1  # the boundary row, dropped
    assert source.snapshots("products") == [first["snapshot_id"]] and again["snapshot_id"] == first["snapshot_id"]
    assert source.quarantine("products") == []


# -- 3. changes, inserts and deletes -------------------------------------------------------------

def test_the_next_run_lands_exactly_the_updates_inserts_and_deletes(source):
    source.sql(PRODUCTS)
    source.sync("products")
    source_after_first = source.snapshots("products")
    metadata_after_first = len(load_table(source.raw_name("products")).metadata.metadata_log)
    later = "TIMESTAMPTZ '2026-11-21 10:00:00+00'"
    source.sql(f"""
        UPDATE {{s}}.products SET price = price + 1.50, name = name || ' (new)', updated_at = {later} WHERE id IN (3, 4, 5);
        UPDATE {{s}}.products SET price = NULL, updated_at = {later} + INTERVAL '1 second' WHERE id = 6;
        INSERT INTO {{s}}.products VALUES (41, 'product 41', 12.34, true, DATE '2026-11-21', {later}),
                                          (42, 'product 42', 0.01, false, DATE '2026-11-21', {later});
        DELETE FROM {{s}}.products WHERE id IN (10, 11, 40);
    """)
    result = source.sync("products", day=DAY + dt.timedelta(days=1))

    assert result["landed"] == 6 and result["deleted"] == 3 and reconciles(result)
    assert result["fetched"] == 6 and result["already_landed"] == 0  # the boundary row (40) is gone
    assert_raw_equals_source(source, "products")
    raw = source.raw("products")
    changed = {row["id"] for row in raw.to_pylist() if row["_batch_date"] == DAY + dt.timedelta(days=1)}
    assert changed == {3, 4, 5, 6, 41, 42}  # and the other rows were not rewritten
    # One commit: the delete of the replaced keys and the append of their rows (two snapshots, one
    # metadata update), both carrying the run's batch date and the state.
    table = load_table(source.raw_name("products"))
    added = [snapshot for snapshot in table.snapshots() if snapshot.snapshot_id not in set(source_after_first)]
    assert [snapshot.summary.operation.value for snapshot in added] == ["overwrite", "append"]
    assert {snapshot.summary["lakehouse.batch_date"] for snapshot in added} == {str(DAY + dt.timedelta(days=1))}
    assert len(table.metadata.metadata_log) == metadata_after_first + 1
    assert table.current_snapshot().snapshot_id == result["snapshot_id"]

    # deletes: none keeps what the source deleted.
    gone = source.sql("DELETE FROM {s}.products WHERE id IN (1, 2) RETURNING *")
    kept = source.sync("products", day=DAY + dt.timedelta(days=2), deletes="none")
    assert kept["deleted"] == 0 and kept["landed"] == 0
    expected = sorted(source.rows("products") + gone, key=lambda row: row["id"])
    assert as_source_rows(source.raw("products"), list(expected[0])) == expected
    # and detecting again removes them.
    assert source.sync("products", day=DAY + dt.timedelta(days=3))["deleted"] == 2
    assert_raw_equals_source(source, "products")


def test_a_source_emptied_entirely_is_refused_unless_allowed(source):
    source.sql(PRODUCTS)
    source.sync("products")
    before = source.snapshots("products")
    source.sql("DELETE FROM {s}.products")
    # By default more than half of the keys gone is a mistake (a source restored empty): nothing changes.
    with pytest.raises(SyncError, match=r"no longer has 40 of the 40 keys landed \(more than max_delete_fraction 0.5\)"):
        source.sync("products", day=DAY + dt.timedelta(days=1))
    assert source.snapshots("products") == before and source.raw("products").num_rows == 40
    result = source.sync("products", day=DAY + dt.timedelta(days=1), entry={"max_delete_fraction": 1.0})
    assert result["deleted"] == 40 and result["landed"] == 0
    assert source.raw("products").num_rows == 0


def test_a_late_commit_behind_the_cursor_is_found_by_the_lookback(source):
    """now() is a transaction's start: a row stamped before the last run's cursor can commit after it."""
    source.sql("""
        CREATE TABLE {s}.late (id int PRIMARY KEY, label text, updated_at timestamptz NOT NULL);
        INSERT INTO {s}.late VALUES (1, 'a', %(t)s), (2, 'b', %(t)s + INTERVAL '2 minutes');
    """, {"t": T0})
    source.sync("late", entry={"lookback_seconds": 300})
    # Committed after that run, stamped a minute before its cursor.
    source.sql("INSERT INTO {s}.late VALUES (3, 'c', %s + INTERVAL '1 minute')", (T0,))
    result = source.sync("late", day=DAY + dt.timedelta(days=1), entry={"lookback_seconds": 300})
    # Asked again from 5 minutes before the cursor: rows 1 and 2 are held already, row 3 is new.
    assert (result["fetched"], result["already_landed"], result["landed"]) == (3, 2, 1)
    assert_raw_equals_source(source, "late")
    snapshot = source.snapshots("late")[-1]
    again = source.sync("late", day=DAY + dt.timedelta(days=1), entry={"lookback_seconds": 300})
    assert again["landed"] == 0 and source.snapshots("late")[-1] == snapshot  # the overlap writes nothing
    # Without a lookback such a row is behind the cursor for good: what the option is for.
    source.sql("INSERT INTO {s}.late VALUES (4, 'd', %s + INTERVAL '1 minute')", (T0,))
    assert source.sync("late", day=DAY + dt.timedelta(days=2))["landed"] == 0


# -- 4. the boundary ---------------------------------------------------------------------------------

def test_a_row_written_later_at_the_cursor_value_is_picked_up_once(source):
    source.sql("""
        CREATE TABLE {s}.items (id int PRIMARY KEY, label text, updated_at timestamptz NOT NULL);
        INSERT INTO {s}.items VALUES (1, 'a', %(t)s - INTERVAL '1 hour'), (2, 'b', %(t)s), (3, 'c', %(t)s), (4, 'd', %(t)s);
    """, {"t": T0})
    source.sync("items")
    source.sql("INSERT INTO {s}.items VALUES (5, 'e', %s)", (T0,))  # after the run, at exactly its cursor

    result = source.sync("items", day=DAY + dt.timedelta(days=1))
    assert (result["fetched"], result["already_landed"], result["landed"]) == (4, 3, 1) and reconciles(result)
    assert_raw_equals_source(source, "items")
    batches = {row["id"]: row["_batch_date"] for row in source.raw("items").to_pylist()}
    assert batches == {1: DAY, 2: DAY, 3: DAY, 4: DAY, 5: DAY + dt.timedelta(days=1)}  # 2-4 not written again
    # The boundary now holds all four keys at that value: nothing is written again.
    snapshots = source.snapshots("items")
    again = source.sync("items", day=DAY + dt.timedelta(days=2))
    assert (again["fetched"], again["already_landed"], again["landed"]) == (4, 4, 0)
    assert source.snapshots("items") == snapshots


# -- 5. rows that cannot be landed -------------------------------------------------------------------

EVENTS = """
    CREATE TABLE {s}.events (id int, kind text, amount numeric(8,3), updated_at timestamptz);  -- no constraint
    INSERT INTO {s}.events
    SELECT n, 'kind ' || n, n * 0.125, %(t)s + n * INTERVAL '1 minute' FROM generate_series(1, 5) AS n;
    INSERT INTO {s}.events VALUES (NULL, 'keyless', 1.000, %(t)s + INTERVAL '1 hour'), (6, 'timeless', 2.000, NULL);
"""


def test_rows_without_a_key_or_a_cursor_are_quarantined_with_the_reason_once(source):
    source.sql(EVENTS, {"t": T0})
    result = source.sync("events", primary_key=["id"])

    assert (result["fetched"], result["landed"], result["quarantined"]) == (7, 5, 2) and reconciles(result)
    good = [row for row in source.rows("events") if row["id"] is not None and row["updated_at"] is not None]
    assert as_source_rows(source.raw("events"), list(good[0])) == good
    rejected = sorted((row["rejection_reason"], json.loads(row["record"])["kind"]) for row in source.quarantine("events"))
    assert rejected == [("missing cursor updated_at", "timeless"), ("missing key column id", "keyless")]
    assert {row["_batch_date"] for row in source.quarantine("events")} == {DAY}

    # Reruns fetch both again (a NULL cursor matches every query, the keyless row is at the cursor):
    # counted as quarantined again, recorded once.
    quarantine_snapshots = len(load_table("quarantine.rejected_src_events").snapshots())
    again = source.sync("events", day=DAY + dt.timedelta(days=1), primary_key=["id"])
    assert (again["fetched"], again["quarantined"], again["already_landed"], again["landed"]) == (3, 2, 1, 0)
    source.sql("INSERT INTO {s}.events VALUES (7, 'new', 3.000, %(t)s), (NULL, 'keyless later', 0, %(t)s)",
               {"t": T0 + dt.timedelta(hours=2)})
    for offset in (2, 3, 4):  # a new window that records a rejection, then reruns of it
        later = source.sync("events", day=DAY + dt.timedelta(days=offset), primary_key=["id"])
        assert reconciles(later)
    assert len(load_table("quarantine.rejected_src_events").snapshots()) == quarantine_snapshots + 1
    records = Counter((row["rejection_reason"], json.loads(row["record"])["kind"]) for row in source.quarantine("events"))
    assert records == {("missing cursor updated_at", "timeless"): 1, ("missing key column id", "keyless"): 1,
                       ("missing key column id", "keyless later"): 1}
    good = [row for row in source.rows("events") if row["id"] is not None and row["updated_at"] is not None]
    assert as_source_rows(source.raw("events"), list(good[0])) == good


# -- 6. a crash between the two commits ----------------------------------------------------------------

def test_a_crash_after_the_quarantine_commit_lands_every_row_once_on_the_rerun(source, monkeypatch):
    source.sql(EVENTS, {"t": T0})
    real_write = landing.write

    def raw_commit_fails(full_name, *args, **kwargs):
        if full_name == source.raw_name("events"):
            raise OSError("the disk went away")
        return real_write(full_name, *args, **kwargs)

    def crash_then_rerun(day):
        with monkeypatch.context() as patch:
            patch.setattr(landing, "write", raw_commit_fails)
            with pytest.raises(OSError, match="the disk went away"):
                source.sync("events", day=day, primary_key=["id"])
        return source.sync("events", day=day, primary_key=["id"])

    crash_then_rerun(DAY)  # the first run: no raw table yet
    source.sql("UPDATE {s}.events SET kind = 'changed', updated_at = %s WHERE id = 2; "
               "INSERT INTO {s}.events VALUES (NULL, 'keyless too', 0, %s)", (T0 + dt.timedelta(hours=3),) * 2)
    crash_then_rerun(DAY + dt.timedelta(days=1))  # a later window

    good = [row for row in source.rows("events") if row["id"] is not None and row["updated_at"] is not None]
    raw = source.raw("events")
    assert as_source_rows(raw, list(good[0])) == good and len(set(raw.column("id").to_pylist())) == raw.num_rows
    records = Counter(json.loads(row["record"])["kind"] for row in source.quarantine("events"))
    assert records == {"keyless": 1, "timeless": 1, "keyless too": 1}


# -- 7. the source goes away mid-run -----------------------------------------------------------------

def test_a_source_lost_mid_read_lands_nothing_and_says_which_table(source, monkeypatch, lakehouse_logs):
    role, password = "r_" + uuid.uuid4().hex[:10], "pw-" + uuid.uuid4().hex[:12]
    source.sql(f"""
        CREATE TABLE {{s}}.big (id int PRIMARY KEY, payload text, updated_at timestamptz NOT NULL);
        INSERT INTO {{s}}.big SELECT n, repeat('x', 50), %(t)s FROM generate_series(1, 60) AS n;
        CREATE ROLE {role} LOGIN PASSWORD %(pw)s;
        GRANT USAGE ON SCHEMA {{s}} TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA {{s}} TO {role};
    """, {"t": T0, "pw": password})
    parts = parse_dsn(source.dsn)
    login = make_dsn(host=parts["host"], port=parts["port"], dbname=parts["dbname"], user=role, password=password)
    monkeypatch.setenv(postgres_server.DSN_VARIABLE, login)
    try:
        source.sync("big", chunk_size=10)
        snapshots = source.snapshots("big")
        source.sql("UPDATE {s}.big SET payload = 'changed', updated_at = %s WHERE id > 15", (T0 + dt.timedelta(hours=1),))
        real_extract = sql_tables.extract
        chunks_seen = []

        def server_drops_the_reader(chunks: int) -> None:
            chunks_seen.append(chunks)
            if chunks == 1:
                source.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))

        def extract_losing_the_server(*args, **kwargs):
            return real_extract(*args, **kwargs, on_chunk=server_drops_the_reader)

        with monkeypatch.context() as patch:
            patch.setattr(sql_tables, "extract", extract_losing_the_server)
            with pytest.raises(SyncError) as raised:
                source.sync("big", day=DAY + dt.timedelta(days=1), chunk_size=10)
        message = str(raised.value)
        assert f"{source.schema}.big" in message and "nothing was landed" in message
        assert password not in message and password not in repr(raised.value.__cause__)
        assert not [record for record in lakehouse_logs if password in record.getMessage()]
        assert chunks_seen == [1]
        assert source.snapshots("big") == snapshots
        assert {row["payload"] for row in source.raw("big").to_pylist()} == {"x" * 50}

        result = source.sync("big", day=DAY + dt.timedelta(days=1), chunk_size=10)
        assert (result["landed"], result["already_landed"]) == (45, 15) and reconciles(result)
        assert_raw_equals_source(source, "big")
    finally:
        source.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'; "
                   f"DROP OWNED BY {role}; DROP ROLE {role}")


# -- 8. two versions of a key in one fetch -------------------------------------------------------------

def test_of_two_versions_of_a_key_the_newest_wins(source):
    source.sql("""
        CREATE TABLE {s}.base (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
        INSERT INTO {s}.base SELECT n, 'name ' || n, %(t)s + n * INTERVAL '1 second' FROM generate_series(1, 5) AS n;
        CREATE VIEW {s}.versions AS
            SELECT id, 'stale ' || name AS name, updated_at - INTERVAL '1 hour' AS updated_at FROM {s}.base WHERE id = 2
            UNION ALL SELECT id, name, updated_at FROM {s}.base
            UNION ALL SELECT id, 'older ' || name, updated_at - INTERVAL '2 hours' FROM {s}.base WHERE id = 4;
    """, {"t": T0})
    result = source.sync("versions", primary_key=["id"])
    assert (result["fetched"], result["landed"], result["superseded"]) == (7, 5, 2) and reconciles(result)
    newest = source.sql("SELECT DISTINCT ON (id) * FROM {s}.versions ORDER BY id, updated_at DESC")
    assert as_source_rows(source.raw("versions"), ["id", "name", "updated_at"]) == newest
    assert source.quarantine("versions") == []


# -- 9. no primary key -------------------------------------------------------------------------------

def test_a_table_without_a_primary_key_must_have_one_declared(source):
    source.sql("CREATE TABLE {s}.loose (id int, updated_at timestamptz)")
    with pytest.raises(SyncError, match=rf"{source.schema}\.loose has no primary key: declare `primary_key` for it "
                                        r"in pipeline.yml"):
        source.sync("loose")
    assert load_table(source.raw_name("loose")) is None


# -- 10. the marketing shop, three days --------------------------------------------------------------

def test_the_marketing_shop_is_copied_exactly_day_after_day(source_db, lakehouse_home, monkeypatch, tmp_path):
    monkeypatch.setenv(postgres_server.DSN_VARIABLE, source_db)
    simulate_day = pipeline_module("marketing").simulate_day
    pipeline = get_pipeline("marketing")
    tasks = {table: next(s for s in pipeline.ingest if s.name == f"shop_{table}") for table in SHOP_TABLES}

    def sync_day(day):
        results = {}
        for table, task in tasks.items():
            options = rendered_options(pipeline, task.options, simulate="false")
            results[table] = run_ingest("marketing", task.name, day, options, run_id="test")
        return results

    for offset in range(3):
        day = dt.date(2026, 11, 1) + dt.timedelta(days=offset)
        written = simulate_day(day, seed=7, customers=40, dsn=source_db, out=tmp_path / "ad_platform")
        results = sync_day(day)
        assert all(reconciles(result) for result in results.values())
        if offset:
            assert results["customers"]["deleted"] == written["customers_deleted"] == 1
            # the erased customer's orders and their lines, all of them in raw
            assert results["orders"]["deleted"] == written["orders_deleted"]
            assert results["order_items"]["deleted"] == written["order_items_deleted"]
        for table, key in SHOP_TABLES.items():
            expected = {row[key]: row for row in query(source_db, f"SELECT * FROM shop.{table}")}  # noqa: S608
            columns = list(next(iter(expected.values())))
            landed = {row[key]: row for row in as_source_rows(load_table(tasks[table].table).scan().to_arrow(), columns)}
            assert set(landed) <= set(expected), (day, table, "rows the shop no longer has")
            wrong = [k for k, row in expected.items() if landed.get(k) != row]
            assert not wrong, (day, table, "rows the copy got wrong", wrong[:5])
        snapshots = {table: load_table(task.table).current_snapshot().snapshot_id for table, task in tasks.items()}
        again = sync_day(day)
        assert {table: result["landed"] + result["deleted"] for table, result in again.items()} == dict.fromkeys(tasks, 0)
        assert {table: load_table(task.table).current_snapshot().snapshot_id for table, task in tasks.items()} == snapshots
