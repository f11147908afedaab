"""The postgres_cdc ingest kind: which server it captures from, and that it lands the changes."""

from __future__ import annotations

import datetime as dt

import pytest
from psycopg2.extensions import parse_dsn

from lakehouse.ingest import build_ingest
from lakehouse.kinds import InvalidOptions
from lakehouse.loader import pipeline_module
from lakehouse.pipeline import get_pipeline
from lakehouse.sources import postgres_server

generate_orders = pipeline_module("orders_cdc").generate_orders

DAY = dt.date(2026, 11, 20)


def test_an_airflow_connection_wins_over_the_environment(orders_db, monkeypatch):
    dsn, name = orders_db
    parts = parse_dsn(dsn)
    uri = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{name}?passfile={parts['passfile']}"
    monkeypatch.setenv("AIRFLOW_CONN_SHOP_DB", uri)
    monkeypatch.setenv(postgres_server.DSN_VARIABLE, "host=elsewhere dbname=nothing")
    resolved, embedded = postgres_server.resolve_dsn("shop_db")
    assert not embedded
    assert parse_dsn(resolved)["dbname"] == name and parse_dsn(resolved)["port"] == parts["port"]


def test_the_environment_dsn_is_used_and_never_simulated(orders_db, lakehouse_home, monkeypatch):
    dsn, _ = orders_db
    monkeypatch.setenv(postgres_server.DSN_VARIABLE, dsn)
    generate_orders(dsn, batches=1, orders_per_batch=5, seed=3)
    [(events,)] = _query(dsn, "SELECT count(*) FROM audit_log_dml")
    # simulate_rows would add traffic on the embedded server only: here it must add none.
    result = _capture({"simulate_rows": 50})
    assert result["events"] == events > 0
    assert _query(dsn, "SELECT count(*) FROM audit_log_dml") == [(events,)]
    assert _capture({"simulate_rows": 0})["events"] == 0


def test_an_unknown_mode_is_refused_before_connecting(lakehouse_home):
    with pytest.raises(InvalidOptions, match="option 'mode': must be one of audit_log, logical, got 'wal2json'"):
        _capture({"mode": "wal2json"})


def _capture(options: dict) -> dict:
    """The orders_cdc pipeline's capture with the task's options as Airflow renders them, changed by ``options``."""
    pipeline = get_pipeline("orders_cdc")
    source = pipeline.ingest[0]
    rendered = {**source.options, "simulate_rows": "0", **options}
    return build_ingest(pipeline, source, rendered).land(DAY, None)


def _query(dsn: str, sql: str) -> list[tuple]:
    conn = postgres_server.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()
