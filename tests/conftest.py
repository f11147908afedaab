"""Shared fixtures: every test that touches the lakehouse gets its own, empty one; the CDC tests
share one embedded PostgreSQL."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from lakehouse.catalog import _catalog_for
from lakehouse.settings import load_settings
from lakehouse.sources import postgres_server


@pytest.fixture
def lakehouse_home(tmp_path, monkeypatch):
    """A fresh LAKEHOUSE_HOME (catalog + warehouse) under tmp_path, never the repository's .lakehouse."""
    home = tmp_path / "lakehouse"
    monkeypatch.setenv("LAKEHOUSE_HOME", str(home))
    # Settings that would point the catalog elsewhere than the new home.
    for name in ("LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_CATALOG_NAME"):
        monkeypatch.delenv(name, raising=False)
    # Catalogs are cached per (name, uri, warehouse): no test keeps using another test's catalog.
    _catalog_for.cache_clear()
    yield home
    _catalog_for.cache_clear()


@contextmanager
def server_home():
    """A temporary home for a server, outside pytest's basetemp.

    As root the server runs as another account that must traverse the home's ancestors; every
    pytest session resets /tmp/pytest-of-root to 0700, which would cut a running server off from
    its data directory whenever another session starts meanwhile.
    """
    path = Path(tempfile.mkdtemp(prefix="lakehouse-test-pg-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg():
    """One embedded PostgreSQL for the whole test session (each test gets its own database)."""
    with pytest.MonkeyPatch.context() as env, server_home() as home:
        env.delenv(postgres_server.DSN_VARIABLE, raising=False)
        settings = replace(load_settings(), home=home)
        postgres_server.start(settings)
        try:
            yield settings
        finally:
            postgres_server.stop(settings)


@pytest.fixture
def orders_db(pg):
    """A fresh database with the orders schema: (dsn, name). Its slots and itself are dropped afterwards."""
    import uuid

    from psycopg2.extensions import make_dsn

    from lakehouse.sources.orders_schema import apply_schema

    base = postgres_server.source_dsn(pg)
    name = "t_" + uuid.uuid4().hex[:12]
    admin = postgres_server.connect(base)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    dsn = make_dsn(base, dbname=name)
    apply_schema(dsn)
    # An autoanalyze holds an xid for a moment; audit_log capture would (rightly) land the events
    # after it a run later, which tests that expect everything in one run would see as a flake.
    conn = postgres_server.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE orders SET (autovacuum_enabled = false);"
                    " ALTER TABLE audit_log_dml SET (autovacuum_enabled = false)")
    conn.close()
    yield dsn, name
    with admin.cursor() as cur:
        cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s", (name,))
        cur.execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()
