"""The CDC source: the embedded PostgreSQL server, the orders schema and the order generator.

One real embedded PostgreSQL per module (under a temporary home); each test gets a fresh database.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from dataclasses import replace

import pytest
from click.testing import CliRunner
from conftest import server_home
from psycopg2.extensions import make_dsn, parse_dsn

from lakehouse.cdc.source import DEFAULT_PUBLICATION as PUBLICATION
from lakehouse.cdc.source import apply_schema
from lakehouse.cli import main
from lakehouse.loader import pipeline_module
from lakehouse.settings import load_settings
from lakehouse.sources import postgres_server

orders_generator = pipeline_module("orders_cdc")
NEW_COLUMN, generate_orders = orders_generator.NEW_COLUMN, orders_generator.generate_orders
ORDERS_SCHEMA = pipeline_module("orders_cdc").SCHEMA_FILE



@pytest.fixture
def db(orders_db):
    return orders_db[0]


def query(dsn: str, sql: str, args=None) -> list[tuple]:
    conn = postgres_server.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def _pid_alive(pid: int) -> bool:
    """Alive and not a zombie (PID 1 of a container may never reap the daemonised postmaster)."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


# -- the server ------------------------------------------------------------------------------

def test_server_runs_on_localhost_with_logical_wal_and_start_is_idempotent(pg):
    first = postgres_server.status(pg)
    again = postgres_server.start(pg)
    assert first.running and (again.pid, again.port) == (first.pid, first.port)
    assert (pg.home / "postgres" / "port").read_text() == str(first.port)
    dsn = postgres_server.source_dsn(pg)
    parts = parse_dsn(dsn)
    assert parts["host"] == "127.0.0.1" and int(parts["port"]) == first.port
    assert "password" not in parts and parts["passfile"] == str(pg.home / "postgres" / "pgpass")
    assert oct((pg.home / "postgres" / "pgpass").stat().st_mode)[-3:] == "600"
    settings = dict(query(dsn, "SELECT name, setting FROM pg_settings WHERE name IN"
                               " ('wal_level', 'listen_addresses', 'unix_socket_directories', 'max_replication_slots')"))
    assert settings == {"wal_level": "logical", "listen_addresses": "127.0.0.1", "unix_socket_directories": "",
                        "max_replication_slots": "16"}
    # Password authentication is on: the DSN without its passfile is refused.
    with pytest.raises(postgres_server.SourceError, match="password"):
        postgres_server.connect(make_dsn(host="127.0.0.1", port=first.port, user="postgres", dbname="postgres",
                                         passfile="/nonexistent"))


def test_stop_leaves_no_process_and_a_restart_keeps_the_data(monkeypatch):
    monkeypatch.delenv(postgres_server.DSN_VARIABLE, raising=False)
    with server_home() as home:
        _stop_and_restart(replace(load_settings(), home=home / "home"))


def _stop_and_restart(settings) -> None:
    state = postgres_server.start(settings)
    try:
        query(postgres_server.source_dsn(settings), "CREATE TABLE kept (x int)")
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == state.pid]
        assert children, "a running server has child processes"
    finally:
        assert postgres_server.stop(settings) is True
    assert not _pid_alive(state.pid) and not any(_pid_alive(pid) for pid in children)
    assert not postgres_server.status(settings).running
    assert postgres_server.stop(settings) is False
    with pytest.raises(postgres_server.SourceError, match="not running"):
        postgres_server.source_dsn(settings)
    restarted = postgres_server.start(settings)
    try:
        assert query(postgres_server.source_dsn(settings), "SELECT count(*) FROM kept") == [(0,)]
    finally:
        postgres_server.stop(settings)
    assert not _pid_alive(restarted.pid)


def _parent(pid: int) -> int | None:
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_the_dsn_variable_wins_and_its_password_is_never_shown(pg, monkeypatch):
    secret = "s3cr3t-pw"
    dsn = f"postgresql://someone:{secret}@127.0.0.1:1/nowhere"
    monkeypatch.setenv(postgres_server.DSN_VARIABLE, dsn)
    assert postgres_server.source_dsn(pg) == dsn
    assert secret not in postgres_server.mask_dsn(dsn) and "***" in postgres_server.mask_dsn(dsn)
    assert secret not in postgres_server.mask_dsn(f"host=h password={secret} user=u")
    with pytest.raises(postgres_server.SourceError) as error:
        postgres_server.status(pg)
    assert secret not in str(error.value) and "127.0.0.1" in str(error.value)
    argv, env = postgres_server.psql_invocation(pg)
    assert secret not in " ".join(argv) and env["PGPASSWORD"] == secret


# -- the schema --------------------------------------------------------------------------------

def test_schema_is_idempotent_with_trigger_publication_and_full_replica_identity(db):
    apply_schema(db, ORDERS_SCHEMA)
    apply_schema(db, ORDERS_SCHEMA)
    assert query(db, "SELECT relreplident FROM pg_class WHERE oid = 'public.orders'::regclass") == [("f",)]
    assert query(db, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.orders'::regclass AND NOT tgisinternal") == [(1,)]
    assert query(db, "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s", (PUBLICATION,)) == [
        ("public", "orders")
    ]
    columns = [r[0] for r in query(db, "SELECT column_name FROM information_schema.columns WHERE table_name ="
                                        " 'audit_log_dml' ORDER BY ordinal_position")]
    assert columns == ["audit_event_id", "audit_operation", "audit_timestamp", "tbl_schema", "tbl_name", "raw_data",
                       "audit_xid"]


# -- the generator ---------------------------------------------------------------------------

AUDIT = "SELECT audit_event_id, audit_operation, tbl_name, raw_data::text, audit_xid::text FROM audit_log_dml ORDER BY 1"


def test_generator_drives_the_trigger_with_every_lifecycle_case(db):
    result = generate_orders(db, batches=4, orders_per_batch=120, seed=7, add_column_at_batch=3)
    audit = query(db, AUDIT)
    # Every row change the statements reported is one audit row written by the trigger.
    assert len(audit) == result.audit_events == result.inserts + result.updates + result.deletes
    assert Counter(op for _, op, _, _, _ in audit) == {"I": result.inserts, "U": result.updates, "D": result.deletes}
    assert result.batches == 4 and result.updates > result.inserts and result.deletes > 0
    history: dict[int, list[tuple[str, str]]] = {}
    for _event_id, op, _, raw, xid in audit:
        history.setdefault(json.loads(raw)["order_id"], []).append((op, xid))
    # Ids are unique across batches: only deliberate re-creations insert an id twice, each after a delete.
    recreated = {order_id for order_id, events in history.items() if [op for op, _ in events].count("I") > 1}
    assert len(recreated) == result.recreated > 0
    for order_id in recreated:
        ops = "".join(op for op, _ in history[order_id])
        assert ops.startswith("I") and "DI" in ops and ops.count("I") == ops.count("D") + (ops[-1] != "D")
    first, last = result.new_order_ids
    assert len(history) == last - first + 1 == result.inserts - result.recreated
    # Insert, two updates and delete of one key in one transaction.
    churned = [events for events in history.values() if [op for op, _ in events] == ["I", "U", "U", "D"]
               and len({xid for _, xid in events}) == 1]
    assert len(churned) >= result.churned > 0
    # Several updates over an order's life: some order went created -> paid -> shipped -> delivered.
    statuses = [json.loads(raw)["status"] for _, _, _, raw, _ in audit]
    assert {"created", "paid", "shipped", "delivered", "cancelled"} <= set(statuses)
    # Schema evolution at batch 3: the column exists, and only rows written after the ALTER carry it.
    assert query(db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = %s",
                 (NEW_COLUMN,)) == [(1,)]
    carries = [NEW_COLUMN in json.loads(raw) for _, _, _, raw, _ in audit]
    switch = carries.index(True)
    assert switch > 0 and all(carries[switch:]) and not any(carries[:switch])
    assert any(json.loads(raw)[NEW_COLUMN] not in (None, 0) for _, _, _, raw, _ in audit[switch:])


def test_generator_is_seeded_and_ids_stay_unique_across_runs(pg, db):
    name = "t_" + uuid.uuid4().hex[:12]
    base = postgres_server.source_dsn(pg)
    admin = postgres_server.connect(base)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    other = make_dsn(base, dbname=name)
    try:
        one = generate_orders(db, batches=2, orders_per_batch=40, seed=3)
        two = generate_orders(other, batches=2, orders_per_batch=40, seed=3)
        assert one == two
        strip = "SELECT audit_operation, raw_data::text FROM audit_log_dml ORDER BY audit_event_id"
        assert query(db, strip) == query(other, strip)
        # A second run on the same source continues the ids instead of reusing them.
        more = generate_orders(db, batches=1, orders_per_batch=40, seed=3)
        assert more.new_order_ids[0] > one.new_order_ids[1]
    finally:
        admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


def test_generator_bad_events_are_written_without_the_trigger(db):
    result = generate_orders(db, batches=2, orders_per_batch=20, seed=1, bad_events_per_batch=5)
    assert result.bad_events == 10
    audit = query(db, AUDIT)
    assert len(audit) == result.audit_events
    bad = [r for r in audit if r[1] not in "IUD" or r[2] != "orders" or r[3] is None
           or "order_id" not in json.loads(r[3])]
    assert len(bad) == 10


# -- the command line ------------------------------------------------------------------------------

def test_cli_source_and_generate(monkeypatch):
    monkeypatch.delenv(postgres_server.DSN_VARIABLE, raising=False)
    with server_home() as home:
        monkeypatch.setenv("LAKEHOUSE_HOME", str(home))
        _cli_session()


def _cli_session() -> None:
    runner = CliRunner()
    try:
        started = runner.invoke(main, ["source", "start"])
        assert started.exit_code == 0, started.output
        assert "running" in started.output and "lakehouse_cdc" in started.output
        generated = runner.invoke(main, ["generate", "orders_cdc", "--batches", "2", "--orders", "30",
                                         "--add-column-at-batch", "2"])
        assert generated.exit_code == 0, generated.output
        assert "discount_amount" in generated.output
        assert runner.invoke(main, ["source", "status"]).exit_code == 0
    finally:
        stopped = runner.invoke(main, ["source", "stop"])
    assert stopped.exit_code == 0 and "stopped" in stopped.output
    status = runner.invoke(main, ["source", "status"])
    assert status.exit_code == 1 and "not running" in status.output
