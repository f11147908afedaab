"""Exactly-once capture into raw.audit_log_dml, in both modes, against a real embedded PostgreSQL.

One server per module; each test gets a fresh database and a fresh lakehouse. Logical slots are
created before the traffic they must see, and dropped with their database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from psycopg2.extensions import make_dsn
from pyiceberg.exceptions import CommitFailedException

from lakehouse.catalog import load_table
from lakehouse.cdc import CRASH_POINTS, CaptureError, InjectedCrash
from lakehouse.cdc.capture import capture
from lakehouse.cdc.checkpoint import LANDING_SCHEMA
from lakehouse.cdc.logical import PgOutputDecoder, format_position
from lakehouse.cdc.source import apply_schema, ensure_slot
from lakehouse.loader import pipeline_module
from lakehouse.maintenance import maintain_table
from lakehouse.sources import postgres_server
from lakehouse.writes import write

orders_generator = pipeline_module("orders_cdc")
NEW_COLUMN, generate_orders = orders_generator.NEW_COLUMN, orders_generator.generate_orders
ORDERS_SCHEMA = pipeline_module("orders_cdc").SCHEMA_FILE

MODES = ("audit_log", "logical")
REPO = Path(__file__).resolve().parents[2]


class Source:
    def __init__(self, dsn: str, name: str):
        self.dsn, self.name = dsn, name

    def sql(self, statement: str, args=None) -> list[tuple]:
        conn = postgres_server.connect(self.dsn)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement, args)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def slot(self, name: str | None = None) -> str:
        """A new pgoutput slot in this database (dropped at teardown with the database)."""
        name = name or f"s_{uuid.uuid4().hex[:12]}"
        conn = postgres_server.connect(self.dsn)
        conn.autocommit = True
        try:
            assert ensure_slot(conn, name)
        finally:
            conn.close()
        return name

    def confirmed(self, slot: str) -> str:
        return self.sql("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (slot,))[0][0]


@pytest.fixture
def source(orders_db, lakehouse_home):
    """A fresh database with the orders schema, and a fresh lakehouse."""
    return Source(*orders_db)


def landed(table: str) -> list[dict]:
    """The landed rows in capture order, without ingested_at (the only column a rerun may change)."""
    data = load_table(table).scan().to_arrow().sort_by("event_position").drop_columns(["ingested_at"])
    return data.to_pylist()


def snapshot_id(table: str) -> int | None:
    snapshot = load_table(table).current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def audit_rows(source: Source) -> list[tuple]:
    """audit_log_dml in capture order: (event id, operation, table, raw_data)."""
    return source.sql("SELECT audit_event_id, audit_operation, tbl_name, raw_data::text FROM audit_log_dml"
                      " ORDER BY audit_xid, audit_event_id")


def insert_order(cur, customer: int = 1) -> None:
    cur.execute("INSERT INTO orders (customer_id, customer_name, status, quantity, unit_price, amount, tax_amount,"
                " currency, created_at, updated_at) VALUES (%s, 'x', 'created', 1, 10, 10, 2, 'EUR', now(), now())",
                (customer,))


def crash_on(point: str, hit: int):
    """A crash hook that kills the capture the ``hit``-th time it reaches ``point``."""
    hits = 0

    def hook(reached: str) -> None:
        nonlocal hits
        if reached == point:
            hits += 1
            if hits == hit:
                raise InjectedCrash(point)

    return hook


# -- landing what PostgreSQL produced ---------------------------------------------------------

def test_both_modes_land_exactly_the_events_postgres_produced(source):
    slot = source.slot()
    result = generate_orders(source.dsn, batches=3, orders_per_batch=80, seed=11, add_column_at_batch=2)
    audit = audit_rows(source)
    assert len(audit) == result.audit_events

    by_mode = {}
    for mode in MODES:
        table = f"raw.cdc_{mode}"
        run = capture(mode, dsn=source.dsn, page_size=150, table=table, slot=slot)
        rows = landed(table)
        assert run.events == len(rows) == len(audit) and run.pages > 1
        assert run.last_position == rows[-1]["event_position"] and run.snapshot_id == snapshot_id(table)
        assert len({r["event_position"] for r in rows}) == len(rows)
        assert {r["capture_mode"] for r in rows} == {mode}
        by_mode[mode] = rows

        # A rerun with nothing new lands nothing and adds no snapshot.
        again = capture(mode, dsn=source.dsn, page_size=150, table=table, slot=slot)
        assert (again.events, again.pages, again.snapshot_id) == (0, 0, None)
        assert again.last_position == run.last_position and snapshot_id(table) == run.snapshot_id

    # audit_log mode: the audit table itself, row for row, in the same order.
    assert [(r["audit_event_id"], r["audit_operation"], r["tbl_name"], r["raw_data"]) for r in by_mode["audit_log"]] == audit
    # logical mode: the same changes from the WAL, in the same order, with the same row JSON.
    assert [(r["audit_operation"], r["tbl_name"], json.loads(r["raw_data"])) for r in by_mode["logical"]] == [
        (op, tbl, json.loads(raw)) for _, op, tbl, raw in audit
    ]
    assert all(r["audit_event_id"] is None and r["tbl_schema"] == "public" for r in by_mode["logical"])
    # Schema evolution reached both: the rows written after the ALTER carry the new column.
    for rows in by_mode.values():
        assert any(NEW_COLUMN in json.loads(r["raw_data"]) for r in rows)
        assert NEW_COLUMN not in json.loads(rows[0]["raw_data"])

    # New traffic: each mode lands exactly the new events, after the old ones.
    more = generate_orders(source.dsn, batches=1, orders_per_batch=30, seed=12)
    for mode in MODES:
        run = capture(mode, dsn=source.dsn, page_size=150, table=f"raw.cdc_{mode}", slot=slot)
        assert run.events == more.audit_events and run.first_position > by_mode[mode][-1]["event_position"]
        assert len(landed(f"raw.cdc_{mode}")) == len(audit) + more.audit_events


def test_bad_events_are_landed_as_they_are(source):
    result = generate_orders(source.dsn, batches=2, orders_per_batch=20, seed=5, bad_events_per_batch=4)
    run = capture("audit_log", dsn=source.dsn, page_size=1000)
    rows = landed("raw.audit_log_dml")
    assert run.events == len(rows) == result.audit_events
    assert [(r["audit_event_id"], r["audit_operation"], r["tbl_name"], r["raw_data"]) for r in rows] == audit_rows(source)
    assert any(r["audit_operation"] == "X" for r in rows) and any(r["raw_data"] is None for r in rows)


def test_max_events_cuts_anywhere_and_the_rest_follows(source):
    slot = source.slot()
    generate_orders(source.dsn, batches=2, orders_per_batch=40, seed=3)
    total = len(audit_rows(source))
    for mode in MODES:
        table = f"raw.cut_{mode}"
        # 7 cuts inside transactions (the first one inserts 40 rows): logical lands part of one.
        first = capture(mode, dsn=source.dsn, max_events=7, table=table, slot=slot)
        assert first.events == 7 and len(landed(table)) == 7
        second = capture(mode, dsn=source.dsn, max_events=50, page_size=20, table=table, slot=slot)
        assert second.events == 50 and second.first_position > first.last_position
        rest = capture(mode, dsn=source.dsn, table=table, slot=slot)
        rows = landed(table)
        assert rest.events == total - 57 and len(rows) == total == len({r["event_position"] for r in rows})


def test_a_late_commit_of_a_lower_event_id_is_not_missed(source):
    """Event ids are assigned at insert, visible at commit: the lower id commits last."""
    slot = source.slot()
    early = postgres_server.connect(source.dsn)  # takes the lower id, commits last
    late = postgres_server.connect(source.dsn)
    try:
        insert_order(early.cursor(), customer=1)
        insert_order(late.cursor(), customer=2)
        late.commit()
        visible = source.sql("SELECT audit_event_id FROM audit_log_dml")
        assert len(visible) == 1  # the lower id is invisible, the higher one committed: the trap
        # A transaction that got its xid before, but writes its event after, the committed one.
        third = postgres_server.connect(source.dsn)
        third.cursor().execute("SELECT pg_current_xact_id()")

        first = {mode: capture(mode, dsn=source.dsn, table=f"raw.late_{mode}", slot=slot) for mode in MODES}
        # audit_log: nothing is final while the older transaction runs, so nothing is landed yet.
        assert first["audit_log"].events == 0
        # logical: the WAL stream is in commit order; the committed transaction is landed.
        assert first["logical"].events == 1

        insert_order(third.cursor(), customer=3)  # highest id, lowest xid of the two still open
        early.commit()
        second = {mode: capture(mode, dsn=source.dsn, table=f"raw.late_{mode}", slot=slot) for mode in MODES}
        assert second["audit_log"].events == 2 and second["logical"].events == 1
        third.commit()
        third.close()
        final = {mode: capture(mode, dsn=source.dsn, table=f"raw.late_{mode}", slot=slot) for mode in MODES}
        assert final["audit_log"].events == 1 and final["logical"].events == 1
    finally:
        early.close()
        late.close()
    audit = audit_rows(source)
    assert len(audit) == 3
    assert sorted(r["audit_event_id"] for r in landed("raw.late_audit_log")) == sorted(a[0] for a in audit)
    customers = [json.loads(r["raw_data"])["customer_id"] for r in landed("raw.late_logical")]
    assert customers == [2, 1, 3]  # commit order


# -- crashes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_a_crash_at_any_point_then_a_rerun_equals_the_run_without_crash(source, mode):
    points = [(point, hit) for point in CRASH_POINTS for hit in (1, 2)]
    slots = {case: source.slot() for case in [("none", 0), *points]}
    generate_orders(source.dsn, batches=2, orders_per_batch=40, seed=21, add_column_at_batch=2)
    options = {"dsn": source.dsn, "page_size": 60}
    expected = capture(mode, table="raw.no_crash", slot=slots["none", 0], **options)
    reference = landed("raw.no_crash")
    assert expected.pages >= 4 and len(reference) == len(audit_rows(source))

    for point, hit in points:
        table, slot = f"raw.crash_{point}_{hit}", slots[point, hit]
        before_ack = source.confirmed(slot)
        with pytest.raises(InjectedCrash):
            capture(mode, table=table, slot=slot, crash_at=crash_on(point, hit), **options)
        # At the crash: whole pages only, and the slot never ahead of the lake.
        committed = hit - 1 + (point == "after_commit_before_ack")
        at_crash = landed(table) if load_table(table).current_snapshot() else []
        assert at_crash == reference[: len(at_crash)]
        assert len(load_table(table).snapshots()) == committed
        if point == "after_write_before_checkpoint":  # the crashed page's files exist, unreferenced
            referenced = {Path(t.file.file_path.removeprefix("file://")) for t in load_table(table).scan().plan_files()} \
                if committed else set()
            on_disk = set(Path(load_table(table).location().removeprefix("file://")).rglob("*.parquet"))
            assert referenced < on_disk
        if mode == "logical" and point == "after_commit_before_ack":
            assert source.confirmed(slot) != before_ack if hit == 2 else source.confirmed(slot) == before_ack

        rerun = capture(mode, table=table, slot=slot, **options)
        assert landed(table) == reference, f"{mode} crash at {point} (hit {hit})"
        assert rerun.last_position == expected.last_position
        assert rerun.events == len(reference) - len(at_crash)


def test_the_slot_is_acknowledged_only_after_the_lake_commit(source):
    slot = source.slot()
    generate_orders(source.dsn, batches=1, orders_per_batch=30, seed=8)
    created_at = source.confirmed(slot)
    with pytest.raises(InjectedCrash):
        capture("logical", dsn=source.dsn, slot=slot, crash_at="before_write")
    assert source.confirmed(slot) == created_at and snapshot_id("raw.audit_log_dml") is None

    with pytest.raises(InjectedCrash):
        capture("logical", dsn=source.dsn, slot=slot, crash_at="after_commit_before_ack")
    committed = snapshot_id("raw.audit_log_dml")
    assert committed is not None and source.confirmed(slot) == created_at  # landed, not acknowledged

    rerun = capture("logical", dsn=source.dsn, slot=slot)
    assert rerun.events == 0 and snapshot_id("raw.audit_log_dml") == committed  # nothing landed twice
    acknowledged = source.confirmed(slot)
    summary = load_table("raw.audit_log_dml").current_snapshot().summary
    assert acknowledged != created_at
    assert source.sql("SELECT %s::pg_lsn >= %s::pg_lsn", (acknowledged, summary["lakehouse.cdc.logical.ack_lsn"])) == [(True,)]


def test_a_killed_process_after_commit_before_ack_loses_and_repeats_nothing(source, lakehouse_home):
    slot, reference_slot = source.slot(), source.slot()
    generate_orders(source.dsn, batches=1, orders_per_batch=50, seed=9)
    capture("logical", dsn=source.dsn, slot=reference_slot, table="raw.no_crash")
    program = (
        "import os, signal\n"
        "from lakehouse.cdc.capture import capture\n"
        "def kill(point):\n"
        "    if point == 'after_commit_before_ack':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        f"capture('logical', dsn={source.dsn!r}, slot={slot!r}, page_size=40, crash_at=kill)\n"
    )
    env = {**os.environ, "LAKEHOUSE_HOME": str(lakehouse_home)}
    killed = subprocess.run([sys.executable, "-c", program], env=env, cwd=REPO, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert 0 < len(landed("raw.audit_log_dml")) < len(landed("raw.no_crash"))
    assert source.sql("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)) == [(False,)]
    capture("logical", dsn=source.dsn, slot=slot, page_size=40)
    assert landed("raw.audit_log_dml") == landed("raw.no_crash")


def test_the_checkpoint_survives_compaction_and_snapshot_expiry(source):
    """Maintenance replaces the checkpoint snapshots by one without a checkpoint: the rows still tell it."""
    slot = source.slot()
    generate_orders(source.dsn, batches=1, orders_per_batch=40, seed=4)
    total = len(audit_rows(source))
    for mode in MODES:
        table = f"raw.kept_{mode}"
        with pytest.raises(InjectedCrash):  # two pages landed, the second not acknowledged
            capture(mode, dsn=source.dsn, page_size=30, table=table, slot=slot,
                    crash_at=crash_on("after_commit_before_ack", 2))
        at_crash = len(landed(table))
        maintain_table(table, retention_hours=0, min_snapshots_to_keep=1, target_file_size_mb=128)
        [only] = load_table(table).snapshots()
        assert only.summary[f"lakehouse.cdc.{mode}.position"] is None  # the compaction snapshot
        rest = capture(mode, dsn=source.dsn, page_size=30, table=table, slot=slot)
        rows = landed(table)
        assert rest.events == total - at_crash and len(rows) == total == len({r["event_position"] for r in rows})


def test_a_commit_by_someone_else_between_checkpoint_read_and_landing_fails_the_landing(source):
    generate_orders(source.dsn, batches=1, orders_per_batch=10, seed=6)
    capture("audit_log", dsn=source.dsn, max_events=5)
    intruder = pa.Table.from_pylist([{"event_position": "x", "capture_mode": "other"}], schema=LANDING_SCHEMA)

    def commit_meanwhile(point: str) -> None:
        if point == "before_write":
            write("raw.audit_log_dml", intruder, "append")

    with pytest.raises(CommitFailedException):  # not re-based on the intruder's snapshot: it could repeat events
        capture("audit_log", dsn=source.dsn, crash_at=commit_meanwhile)
    capture("audit_log", dsn=source.dsn)
    rows = [r for r in landed("raw.audit_log_dml") if r["capture_mode"] == "audit_log"]
    assert [r["audit_event_id"] for r in rows] == [a[0] for a in audit_rows(source)]


# -- safety ------------------------------------------------------------------------------------

def test_another_source_is_refused_instead_of_skipping_its_events(source, pg):
    generate_orders(source.dsn, batches=1, orders_per_batch=5, seed=1)
    capture("audit_log", dsn=source.dsn)
    other = make_dsn(postgres_server.source_dsn(pg), dbname="postgres")
    apply_schema(other, ORDERS_SCHEMA)
    with pytest.raises(CaptureError, match="not comparable"):
        capture("audit_log", dsn=other)


def test_an_idle_slot_is_advanced_and_truncate_is_landed(source):
    slot = source.slot()
    source.sql("CREATE TABLE unpublished (x int); INSERT INTO unpublished SELECT generate_series(1, 1000)")
    created_at = source.confirmed(slot)
    run = capture("logical", dsn=source.dsn, slot=slot)
    assert run.events == 0 and source.confirmed(slot) != created_at  # no WAL kept for unpublished changes
    generate_orders(source.dsn, batches=1, orders_per_batch=3, seed=2)
    source.sql("TRUNCATE orders")
    capture("logical", dsn=source.dsn, slot=slot)
    rows = landed("raw.audit_log_dml")
    assert rows[-1]["audit_operation"] == "T" and rows[-1]["tbl_name"] == "orders" and rows[-1]["raw_data"] is None


def test_pgoutput_decoder_builds_row_json_like_row_to_json():
    def cstr(text: str) -> bytes:
        return text.encode() + b"\0"

    def tuple_data(*values) -> bytes:
        out = len(values).to_bytes(2, "big")
        for value in values:
            if value is None:
                out += b"n"
            elif value == "<unchanged>":
                out += b"u"
            else:
                out += b"t" + len(value.encode()).to_bytes(4, "big") + value.encode()
        return out

    columns = [("id", 20), ("ok", 16), ("price", 1700), ("at", 1184), ("doc", 3802), ("name", 25), ("nan", 1700)]
    relation = b"R" + (16385).to_bytes(4, "big") + cstr("public") + cstr("t") + b"f" + len(columns).to_bytes(2, "big")
    for name, oid in columns:
        relation += b"\x01" + cstr(name) + oid.to_bytes(4, "big") + (-1).to_bytes(4, "big", signed=True)
    begin = b"B" + (0x1_0000_00A0).to_bytes(8, "big") + (0).to_bytes(8, "big") + (77).to_bytes(4, "big")
    old = ("1", "t", "2.50", "2026-01-02 03:04:05.5+00", '{"a": [1]}', 'say "hi"', "NaN")
    new = ("1", "f", "3.00", "2026-01-02 03:04:05.5+05:30", "<unchanged>", None, "NaN")
    update = b"U" + (16385).to_bytes(4, "big") + b"O" + tuple_data(*old) + b"N" + tuple_data(*new)
    commit = b"C\0" + (0x1_0000_00A0).to_bytes(8, "big") + (0x1_0000_00F0).to_bytes(8, "big") + (0).to_bytes(8, "big")
    decoder = PgOutputDecoder()
    assert [decoder.feed(m) for m in (begin, relation, update)] == [None, None, None]
    txn = decoder.feed(commit)
    assert (txn.xid, txn.commit_lsn, txn.end_lsn) == (77, 0x1_0000_00A0, 0x1_0000_00F0)
    [event] = txn.events
    assert event.position == format_position(0x1_0000_00A0, 1) == "00000001/000000A0.0000000001"
    assert event.operation == "U" and (event.tbl_schema, event.tbl_name) == ("public", "t")
    assert json.loads(event.raw_data) == {
        "id": 1, "ok": False, "price": 3.0, "at": "2026-01-02T03:04:05.5+05:30", "doc": {"a": [1]}, "name": None,
        "nan": "NaN",
    }
