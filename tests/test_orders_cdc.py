"""The orders_cdc dbt project against its oracle: PostgreSQL itself.

Generator batches drive real SQL through the embedded PostgreSQL; after each batch, capture lands
the events (both modes) and `dbt build` runs the project in-process (no Airflow:
tests/test_dag_factory.py covers the DAG). Then marts.orders must equal `SELECT * FROM orders`, row
for row and column for column; the SCD2 history must replay PostgreSQL's own audit log; every landed
row must be applied or quarantined with the reason an independent Python reading of the rules gives.
Two tests without PostgreSQL land hand-made events: in awkward batches (a key's I, U and D in one
batch, a delete that lands before an earlier update, a re-created key, a replayed batch), compared
with a Python replay; and values that do not read exactly as their type, plus new fields of every
kind (schema evolution typed from the values).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from decimal import Decimal, InvalidOperation

import pyarrow as pa
import pytest

from lakehouse import compute
from lakehouse.catalog import load_table
from lakehouse.cdc.capture import capture
from lakehouse.cdc.checkpoint import LANDING_SCHEMA
from lakehouse.cdc.source import ensure_slot
from lakehouse.loader import pipeline_module
from lakehouse.settings import REPO_ROOT
from lakehouse.sources import postgres_server
from lakehouse.testing import dbt as run_dbt
from lakehouse.writes import write

orders_generator = pipeline_module("orders_cdc")
NEW_COLUMN, generate_orders = orders_generator.NEW_COLUMN, orders_generator.generate_orders

PROJECT = REPO_ROOT / "pipelines" / "orders_cdc" / "dbt"
MODES = ("audit_log", "logical")
LANDING = "raw.audit_log_dml"
FLATTENED = "staging.stg_ecomm_audit_log_dml_orders_flattened"
QUARANTINE = "quarantine.rejected_ecomm_audit_log_dml"
MARTS = ("marts.orders", "marts.orders_history_scd2")
CAPTURE_COLUMNS = ("event_position", "ingested_at")
EVERY_MODEL_TABLE = ("staging.stg_ecomm_audit_log_dml", FLATTENED, QUARANTINE, *MARTS)
# The rules of README.md, read again in Python: the declared type of every order column.
INTEGER, TEXT, INSTANT = "integer", "text", "instant"
ORDER_COLUMNS = {
    "order_id": (INTEGER, "bigint"), "customer_id": (INTEGER, "bigint"), "customer_name": (TEXT, "varchar"),
    "customer_email": (TEXT, "varchar"), "status": (TEXT, "varchar"), "quantity": (INTEGER, "integer"),
    "unit_price": ((12, 2), "decimal(12,2)"), "amount": ((14, 2), "decimal(14,2)"),
    "tax_amount": ((14, 2), "decimal(14,2)"), "currency": (TEXT, "varchar"), "shipping_country": (TEXT, "varchar"),
    "created_at": (INSTANT, "timestamp with time zone"), "updated_at": (INSTANT, "timestamp with time zone"),
}


# -- running things ------------------------------------------------------------------------------

def dbt(*args: str) -> float:
    started = time.perf_counter()
    result = run_dbt(PROJECT, *args)
    failed = [(r.node.name, r.message) for r in (result.result or []) if str(r.status) in ("error", "fail")]
    assert result.success, f"dbt {args[0]} failed: {failed or result.exception}"
    return time.perf_counter() - started


@pytest.fixture(scope="module", autouse=True)
def dbt_deps():
    dbt("deps")


def lake(sql: str) -> list[dict]:
    return compute.connect().sql(sql).to_arrow_table().to_pylist()


def pg(dsn: str, sql: str, args=None) -> tuple[list[str], list[tuple]]:
    conn = postgres_server.connect(dsn, options="-c timezone=UTC")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, args)
            if cur.description is None:
                return [], []
            return [c.name for c in cur.description], cur.fetchall()
    finally:
        conn.close()


def land(rows: list[dict]) -> None:
    """Append hand-made rows to the landing table (as a misbehaving or replayed capture would)."""
    now = dt.datetime.now(dt.UTC)
    defaults = {"audit_event_id": None, "audit_timestamp": now, "tbl_schema": "public", "tbl_name": "orders",
                "capture_mode": "test", "ingested_at": now}
    full = [{**defaults, **row} for row in rows]
    write(LANDING, pa.Table.from_pylist(full, schema=LANDING_SCHEMA), "append")


def data_files(table: str) -> set[str]:
    return {f["file_path"] for f in load_table(table).inspect.files().to_pylist()}


def table_state(table: str) -> tuple:
    """(sorted rows, data files, snapshot id): what a run with nothing new must leave alone."""
    rows = sorted(map(repr, lake(f"select * from {table}")))
    return rows, data_files(table), load_table(table).current_snapshot().snapshot_id


# -- the rules, read again in Python ---------------------------------------------------------------

def _fits(value, kind) -> bool:
    text = value if isinstance(value, str) else json.dumps(value)
    if kind == TEXT:
        return True
    if kind == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == INSTANT:
        pattern = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d{1,6})?([+-]\d\d(:?\d\d)?|Z)"
        return isinstance(value, str) and re.fullmatch(pattern, value) is not None
    precision, scale = kind
    try:
        number = Decimal(text)
    except InvalidOperation:
        return False
    exponent = number.normalize().as_tuple().exponent
    return number.is_finite() and -exponent <= scale and abs(number) < Decimal(10) ** (precision - scale)


def expected_reason(row: dict, first_copy: bool) -> str | None:
    """The first rule of README.md ("Bad events") a landed row breaks; None: it is applied."""
    if not first_copy:
        return "duplicate event id"
    if row["audit_operation"] not in ("I", "U", "D"):
        return "unknown operation"
    if (row["tbl_schema"], row["tbl_name"]) != ("public", "orders"):
        return "unknown table"
    try:
        document = json.loads(row["raw_data"]) if row["raw_data"] is not None else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return "malformed raw_data"
    if document.get("order_id") is None:
        return "missing order_id"
    for column, (kind, type_name) in ORDER_COLUMNS.items():
        if document.get(column) is not None and not _fits(document[column], kind):
            return f"uncastable {column} as {type_name}"
    return None


def judged_landing() -> list[tuple[dict, str | None]]:
    """Every landed row with the reason it must be quarantined (None: applied); first copy wins."""
    rows = sorted(lake(f"select * from {LANDING}"), key=lambda r: (r["event_position"], r["ingested_at"]))
    seen: set[str] = set()
    judged = []
    for row in rows:
        judged.append((row, expected_reason(row, row["event_position"] not in seen)))
        seen.add(row["event_position"])
    return judged


# -- comparisons ---------------------------------------------------------------------------------

def logical_slot(dsn: str, mode: str) -> str | None:
    """A fresh replication slot for logical mode (created before the changes it must see)."""
    if mode != "logical":
        return None
    slot = f"s_{uuid.uuid4().hex[:12]}"
    conn = postgres_server.connect(dsn)
    conn.autocommit = True
    ensure_slot(conn, slot)
    conn.close()
    return slot


def postgres_orders(dsn: str) -> tuple[list[str], dict[int, dict]]:
    columns, rows = pg(dsn, "SELECT * FROM orders")
    return columns, {row[0]: dict(zip(columns, row)) for row in rows}


def normalized(value):
    return Decimal(str(value)) if isinstance(value, float) else value


def assert_orders_equal_postgres(dsn: str) -> dict[int, dict]:
    columns, expected = postgres_orders(dsn)
    table = compute.connect().sql("select * from marts.orders").to_arrow_table()
    # public.orders' columns, in its order, plus the capture position and arrival of each row's
    # latest event (the next run's watermark); a column added later in PostgreSQL comes after them.
    assert [c for c in table.column_names if c not in CAPTURE_COLUMNS] == columns, (
        "marts.orders has other columns than public.orders"
    )
    assert set(CAPTURE_COLUMNS) <= set(table.column_names)
    actual = {row["order_id"]: row for row in table.to_pylist()}
    assert actual.keys() == expected.keys(), (
        f"only in the lake: {sorted(actual.keys() - expected.keys())[:10]}, "
        f"only in PostgreSQL: {sorted(expected.keys() - actual.keys())[:10]}")
    differences = [(key, column, row[column], actual[key][column])
                   for key, row in expected.items() for column in columns
                   if normalized(row[column]) != normalized(actual[key][column])]
    assert differences == [], f"{len(differences)} values differ, first: {differences[:5]}"
    return actual


def assert_history_is_a_valid_scd2(orders: dict[int, dict]) -> dict[int, list[dict]]:
    history: dict[int, list[dict]] = {}
    for row in lake("select * from marts.orders_history_scd2 order by order_id, change_order"):
        history.setdefault(row["order_id"], []).append(row)
    order_columns = [c for c in next(iter(orders.values())) if c not in CAPTURE_COLUMNS]
    for order_id, versions in history.items():
        assert [v["is_current"] for v in versions] == [False] * (len(versions) - 1) + [True], order_id
        for version, following in zip(versions, versions[1:]):
            assert version["valid_from"] <= version["valid_to"] == following["valid_from"], order_id
        assert versions[-1]["valid_to"] is None, order_id
        current = versions[-1]
        if current["is_deleted"]:
            assert order_id not in orders, f"order {order_id} is deleted in the history but in orders"
        else:
            assert {c: current[c] for c in order_columns} == {c: orders[order_id][c] for c in order_columns}, order_id
    assert orders.keys() <= history.keys()
    return history


def assert_history_replays_postgres_audit(dsn: str, history: dict[int, list[dict]]) -> None:
    """Per order, the versions are PostgreSQL's own change log of it, operation for operation."""
    _, audit = pg(dsn, "SELECT raw_data->>'order_id', audit_operation FROM audit_log_dml"
                       " WHERE tbl_name = 'orders' AND audit_operation IN ('I', 'U', 'D')"
                       " AND raw_data->>'order_id' IS NOT NULL"
                       " ORDER BY audit_xid, audit_event_id")
    expected: dict[int, list[str]] = {}
    for order_id, operation in audit:
        expected.setdefault(int(order_id), []).append(operation)
    actual = {order_id: [v["audit_operation"] for v in versions] for order_id, versions in history.items()}
    assert actual == expected


def assert_landed_is_applied_plus_quarantined() -> list[dict]:
    judged = judged_landing()
    applied = sorted((r["event_position"], r["ingested_at"])
                     for r in lake(f"select event_position, ingested_at from {FLATTENED}"))
    quarantined = sorted((r["event_position"], r["ingested_at"], r["rejection_reason"])
                         for r in lake(f"select event_position, ingested_at, rejection_reason from {QUARANTINE}"))
    assert len(judged) == len(applied) + len(quarantined)
    assert applied == sorted((r["event_position"], r["ingested_at"]) for r, reason in judged if reason is None)
    assert quarantined == sorted((r["event_position"], r["ingested_at"], reason)
                                 for r, reason in judged if reason is not None)
    return [dict(row, reason=reason) for row, reason in judged if reason is not None]


# -- the end-to-end oracle -----------------------------------------------------------------------

def plant_bad_events(dsn: str, batch: int) -> dict[str, str]:
    """Bad rows the capture cannot produce, landed after the batch: one per quarantine reason."""
    last = lake(f"select * from {LANDING} order by event_position desc limit 1")[0]
    after = lambda n: f"{last['event_position']}~{batch}.{n}"  # noqa: E731 - sorts after it, before the next capture
    _, rows = pg(dsn, "SELECT row_to_json(o)::text FROM orders o ORDER BY order_id LIMIT 1")
    victim = json.loads(rows[0][0])
    planted = {
        "malformed raw_data": {"event_position": after(1), "audit_operation": "U",
                               "raw_data": '{"order_id": 1, "status": '},
        "unknown operation": {"event_position": after(2), "audit_operation": "T", "raw_data": None},
        "missing order_id": {"event_position": after(3), "audit_operation": "U", "raw_data": '{"status": "paid"}'},
        "unknown table": {"event_position": after(4), "audit_operation": "I", "tbl_name": "customers",
                          "raw_data": '{"customer_id": 1}'},
        # A replay of the batch's last event: same position, landed again later.
        "duplicate event id": {k: last[k] for k in ("event_position", "audit_event_id", "audit_operation",
                                                      "audit_timestamp", "tbl_schema", "tbl_name", "raw_data")},
        # A real order's row with a value that is not a decimal: not applied, not turned into NULL.
        "uncastable amount as decimal(14,2)": {"event_position": after(5), "audit_operation": "U",
                                                   "raw_data": json.dumps({**victim, "amount": "abc"})},
    }
    land(list(planted.values()))
    return {reason: row["event_position"] for reason, row in planted.items()}


def churned_orders(dsn: str) -> set[int]:
    """Orders inserted, updated and deleted in ONE transaction (one capture batch)."""
    _, rows = pg(dsn, "SELECT (raw_data->>'order_id')::bigint FROM audit_log_dml WHERE tbl_name = 'orders'"
                      " AND raw_data->>'order_id' IS NOT NULL GROUP BY 1, audit_xid"
                      " HAVING bool_or(audit_operation = 'I') AND bool_or(audit_operation = 'U')"
                      " AND bool_or(audit_operation = 'D')")
    return {r[0] for r in rows}


@pytest.mark.parametrize("mode", MODES)
def test_orders_and_history_equal_postgres_after_every_batch(orders_db, lakehouse_home, mode):
    dsn, _ = orders_db
    slot = logical_slot(dsn, mode)

    reasons_seen: set[str] = set()
    recreated = None
    timings = []
    for batch in (1, 2, 3):
        if batch == 2:
            # Delete an order the lake holds; batch 3 re-creates it with the same id.
            recreated = sorted(lake("select order_id from marts.orders"), key=lambda r: r["order_id"])[-1]["order_id"]
            pg(dsn, "DELETE FROM orders WHERE order_id = %s", (recreated,))
        if batch == 3:
            pg(dsn, "INSERT INTO orders (order_id, customer_id, customer_name, status, quantity, unit_price, amount,"
                    " tax_amount, currency, created_at, updated_at) VALUES (%s, 7, 'Back Again', 'created', 2, 3.50,"
                    " 7.00, 0.49, 'USD', now(), now())", (recreated,))
        generate_orders(dsn, batches=1, orders_per_batch=40, seed=batch, bad_events_per_batch=4,
                        add_column_at_batch=1 if batch == 2 else None,
                        start_date=dt.date(2026, 1, 1) + dt.timedelta(days=batch))
        landed = capture(mode, dsn=dsn, **({"slot": slot} if slot else {}))
        assert landed.events > 0
        planted = plant_bad_events(dsn, batch)
        timings.append(dbt("build"))

        orders = assert_orders_equal_postgres(dsn)
        history = assert_history_is_a_valid_scd2(orders)
        assert_history_replays_postgres_audit(dsn, history)
        rejected = assert_landed_is_applied_plus_quarantined()
        reasons = {r["event_position"]: r["reason"] for r in rejected}
        assert all(reasons.get(position) == reason
                   for reason, position in planted.items() if reason != "duplicate event id")
        reasons_seen |= {r["reason"] for r in rejected}

        if batch >= 2:  # schema evolution: the column added in PostgreSQL, in landing, staging and orders
            inserts = lake(f"select raw_data from {LANDING} where capture_mode = '{mode}' and audit_operation = 'I'")
            assert any(NEW_COLUMN in json.loads(r["raw_data"]) for r in inserts)
            assert NEW_COLUMN in [c["column_name"] for c in lake(f"describe {FLATTENED}")]
            assert any(row[NEW_COLUMN] is not None for row in orders.values())
        if batch == 2:
            assert recreated not in orders and history[recreated][-1]["is_deleted"]
        if batch == 3:
            assert orders[recreated]["customer_name"] == "Back Again"
            operations = [v["audit_operation"] for v in history[recreated]]
            assert "D" in operations and operations[operations.index("D") + 1] == "I", operations

    # Every kind of bad event was quarantined with its reason, in both modes (the generator's own
    # bad rows reach the lake in audit_log mode only: logical replication does not publish them).
    assert {"malformed raw_data", "unknown operation", "missing order_id", "unknown table", "duplicate event id",
            "uncastable amount as decimal(14,2)"} <= reasons_seen
    # One batch held I, U and D of the same orders: they are gone, their history is whole.
    churned = churned_orders(dsn)
    assert churned and not churned & orders.keys()
    for order_id in churned:
        operations = [v["audit_operation"] for v in history[order_id]]
        assert operations[0] == "I" and "U" in operations and operations[-1] == "D"

    # Nothing new: the run changes no table, writes no data file, commits no snapshot.
    before = {table: table_state(table) for table in EVERY_MODEL_TABLE}
    again = capture(mode, dsn=dsn, **({"slot": slot} if slot else {}))
    assert again.events == 0
    dbt("build")
    assert {table: table_state(table) for table in EVERY_MODEL_TABLE} == before
    print(f"{mode}: dbt build per batch {', '.join(f'{t:.1f}s' for t in timings)}")


# -- awkward batches, without PostgreSQL ---------------------------------------------------------

def order_row(order_id: int, status: str, amount: str) -> str:
    return json.dumps({"order_id": order_id, "customer_id": 1, "customer_name": "x", "customer_email": None,
                       "status": status, "quantity": 1, "unit_price": float(amount), "amount": float(amount),
                       "tax_amount": 0.0, "currency": "EUR", "shipping_country": "DE",
                       "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00"})


def event(position: int, operation: str, order_id: int, status: str = "created", amount: str = "10.00") -> dict:
    return {"event_position": f"{position:020d}", "audit_operation": operation,
            "audit_timestamp": dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=position),
            "raw_data": order_row(order_id, status, amount)}


def replay(events: list[dict]) -> dict[int, str]:
    """The state a log of events leaves, in position order: order_id -> status."""
    state: dict[int, str] = {}
    for e in sorted(events, key=lambda e: e["event_position"]):
        row = json.loads(e["raw_data"])
        if e["audit_operation"] == "D":
            state.pop(row["order_id"], None)
        else:
            state[row["order_id"]] = row["status"]
    return state


def test_the_latest_event_wins_however_the_events_are_batched(lakehouse_home):
    landings = [
        [  # 1: order 1 inserted, updated and deleted in one batch; 2 and 3 inserted; 3 deleted
            event(1, "I", 1), event(2, "U", 1, "paid"), event(3, "D", 1, "paid"),
            event(4, "I", 2), event(6, "I", 3), event(7, "D", 3),
        ],
        [  # 2: order 2 deleted (its update at position 5 has not landed yet); 3 re-created; 4 inserted and updated
            event(9, "D", 2, "paid"), event(8, "I", 3, "created", "30.00"),
            event(10, "I", 4), event(12, "U", 4, "shipped", "12.00"),
        ],
        [  # 3, late: events older than ones already applied (positions 5 and 11)
            event(5, "U", 2, "paid"), event(11, "U", 4, "paid", "11.00"),
        ],
    ]
    landed: list[dict] = []
    for batch in landings:
        land(batch)
        landed += batch
        dbt("build")
        expected = replay(landed)
        orders = {r["order_id"]: r for r in lake("select * from marts.orders")}
        assert {k: r["status"] for k, r in orders.items()} == expected
        history = assert_history_is_a_valid_scd2(orders)
        # The history holds every applied event in position order, the late ones included.
        assert {k: [v["event_position"] for v in versions] for k, versions in history.items()} == {
            k: sorted(e["event_position"] for e in landed if json.loads(e["raw_data"])["order_id"] == k)
            for k in {json.loads(e["raw_data"])["order_id"] for e in landed}
        }
    assert expected == {3: "created", 4: "shipped"}
    assert lake("select amount from marts.orders where order_id = 3") == [{"amount": Decimal("30.00")}]
    assert [v["audit_operation"] for v in history[2]] == ["I", "U", "D"]

    # Landing the same events again (a replayed batch) changes nothing but the quarantine.
    files = {table: data_files(table) for table in MARTS}
    land(landings[1])
    dbt("build")
    assert {table: data_files(table) for table in MARTS} == files
    assert {r["rejection_reason"] for r in lake(f"select rejection_reason from {QUARANTINE}")} == {"duplicate event id"}
    assert len(lake(f"select * from {QUARANTINE}")) == len(landings[1])


def test_values_are_read_exactly_or_quarantined_and_new_fields_become_typed_columns(lakehouse_home):
    def with_values(order_id: int, **values) -> str:
        return json.dumps({**json.loads(order_row(order_id, "created", "10.00")), **values})

    cases = {  # order_id: (values in its row, expected rejection reason or None)
        1: ({}, None),
        2: ({"amount": 12.345}, "uncastable amount as decimal(14,2)"),  # more places than the scale
        3: ({"quantity": 2.5}, "uncastable quantity as integer"),
        4: ({"created_at": "2026-01-01T00:00:00"}, "uncastable created_at as timestamp with time zone"),  # no offset
        5: ({"amount": "abc"}, "uncastable amount as decimal(14,2)"),
        6: ({"unit_price": 1234567890123.45}, "uncastable unit_price as decimal(12,2)"),  # too many digits
        7: ({"customer_id": "7x"}, "uncastable customer_id as bigint"),
        # New fields: typed from their values; an all-null one waits for a value.
        8: ({"gift_wrap": True, "note": "hello", "ship_date": "2026-02-01", "priority": 3, "weight": 1.5,
             "later": None}, None),
    }
    land([{"event_position": f"{i:020d}", "audit_operation": "I", "raw_data": with_values(i, **values)}
          for i, (values, _) in cases.items()])
    dbt("build")
    rejected = {int(r["event_position"]): r["rejection_reason"] for r in lake(f"select * from {QUARANTINE}")}
    assert rejected == {i: reason for i, (_, reason) in cases.items() if reason}
    orders = {r["order_id"]: r for r in lake("select * from marts.orders")}
    assert sorted(orders) == [1, 8]
    types = {c["column_name"]: c["column_type"] for c in lake("describe marts.orders")}
    assert {name: types.get(name) for name in ("gift_wrap", "note", "ship_date", "priority", "weight", "later")} == {
        "gift_wrap": "BOOLEAN", "note": "VARCHAR", "ship_date": "DATE", "priority": "BIGINT",
        "weight": "DECIMAL(38,9)", "later": None,
    }
    assert (orders[8]["gift_wrap"], orders[8]["weight"], orders[1]["gift_wrap"]) == (True, Decimal("1.5"), None)

    # Later events: the waiting field gets its first value (and its column); a value that does not
    # fit an inferred type is quarantined like any other.
    land([{"event_position": f"{9:020d}", "audit_operation": "U", "raw_data": with_values(8, later=5, weight="heavy")},
          {"event_position": f"{10:020d}", "audit_operation": "U", "raw_data": with_values(1, later=5, priority=4)}])
    dbt("build")
    assert lake(f"select rejection_reason from {QUARANTINE} where event_position = '{9:020d}'") == [
        {"rejection_reason": "uncastable weight as decimal(38,9)"}]
    assert lake("select order_id, later, priority from marts.orders order by order_id") == [
        {"order_id": 1, "later": 5, "priority": 4}, {"order_id": 8, "later": None, "priority": 3}]


@pytest.mark.parametrize("mode", MODES)
def test_a_change_by_an_older_transaction_after_a_newer_one_committed_wins(orders_db, lakehouse_home, mode):
    """Transaction A starts first (lower xid) but changes the order after B committed its change:
    PostgreSQL keeps A's version, and so must the lake, whatever order capture pages the events in."""
    dsn, _ = orders_db
    slot = logical_slot(dsn, mode)
    generate_orders(dsn, batches=1, orders_per_batch=3, seed=5)
    [(order_id,)] = pg(dsn, "SELECT min(order_id) FROM orders")[1]
    older = postgres_server.connect(dsn)
    newer = postgres_server.connect(dsn)
    try:
        with older.cursor() as cur:
            cur.execute("SELECT txid_current()")  # A takes its transaction id now, before B's
        with newer, newer.cursor() as cur:
            cur.execute("UPDATE orders SET status = 'shipped_by_newer' WHERE order_id = %s", (order_id,))
        with older, older.cursor() as cur:
            cur.execute("UPDATE orders SET status = 'cancelled_by_older' WHERE order_id = %s", (order_id,))
    finally:
        older.close()
        newer.close()
    capture(mode, dsn=dsn, **({"slot": slot} if slot else {}))
    dbt("build")
    orders = assert_orders_equal_postgres(dsn)
    assert orders[order_id]["status"] == "cancelled_by_older"
    assert_history_is_a_valid_scd2(orders)
