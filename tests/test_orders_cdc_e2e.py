"""orders_cdc as a user runs it: `lakehouse run orders_cdc` starts the embedded PostgreSQL, drives
demo traffic through it, captures, merges; after every run the lake equals PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from lakehouse import compute
from lakehouse.catalog import _catalog_for
from lakehouse.sources import postgres_server

pytestmark = pytest.mark.e2e
LAKEHOUSE = str(Path(sys.executable).with_name("lakehouse"))


def lakehouse(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LAKEHOUSE_HOME": str(home)}
    for name in ("AIRFLOW_HOME", postgres_server.DSN_VARIABLE):
        env.pop(name, None)
    return subprocess.run([LAKEHOUSE, *args], env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def home():
    # Outside pytest's tmp folder: the server runs as another account that must reach its data.
    path = Path(tempfile.mkdtemp(prefix="lakehouse-test-cdc-e2e-"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_HOME", str(path))
        patch.delenv(postgres_server.DSN_VARIABLE, raising=False)
        _catalog_for.cache_clear()
        yield path
        lakehouse(path, "source", "stop")
    _catalog_for.cache_clear()
    shutil.rmtree(path, ignore_errors=True)


def postgres_orders() -> list[tuple]:
    conn = postgres_server.connect(postgres_server.source_dsn())
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT order_id, status, amount, updated_at FROM orders ORDER BY order_id")
            return cur.fetchall()
    finally:
        conn.close()


def lake_orders() -> list[tuple]:
    return compute.connect().sql("select order_id, status, amount, updated_at from marts.orders order by 1").fetchall()


def test_every_daily_run_leaves_the_lake_equal_to_postgres(home):
    for day in ("2026-11-19", "2026-11-20"):
        done = lakehouse(home, "run", "orders_cdc", "--date", day, "--conf", "simulate_orders=30")
        assert done.returncode == 0, f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        assert "success" in done.stdout
        expected = postgres_orders()
        assert expected and lake_orders() == expected
    [(current,)] = compute.connect().sql(
        "select count(*) from marts.orders_history_scd2 where is_current and not is_deleted").fetchall()
    assert current == len(expected)
