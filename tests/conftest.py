"""Shared fixtures: every test that touches the lakehouse gets its own, empty one; the CDC tests
share one embedded PostgreSQL."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from lakehouse import storage_server
from lakehouse.catalog import _catalog_for
from lakehouse.settings import Settings, load_settings
from lakehouse.sources import postgres_server

# Cosmos caches each DAG's dbt project under one folder (default /tmp/cosmos/<dag>): parallel test
# workers building the same DAG in-process would share it. One folder per test process.
os.environ.setdefault("AIRFLOW__COSMOS__CACHE_DIR", tempfile.mkdtemp(prefix="lakehouse-test-cosmos-"))


@pytest.fixture
def lakehouse_home(tmp_path, monkeypatch):
    """A fresh LAKEHOUSE_HOME (catalog + warehouse) under tmp_path, never the repository's .lakehouse."""
    home = tmp_path / "lakehouse"
    monkeypatch.setenv("LAKEHOUSE_HOME", str(home))
    # Settings that would point the catalog elsewhere than the new home.
    for name in ("LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_CATALOG_NAME",
                 # and a shell's `eval "$(lakehouse storage env)"`: local-disk tests stay on local disk
                 "LAKEHOUSE_RAW_ZONE", "LAKEHOUSE_S3_ENDPOINT", "LAKEHOUSE_S3_REGION"):
        monkeypatch.delenv(name, raising=False)
    # Catalogs are cached per (name, uri, warehouse): no test keeps using another test's catalog.
    _catalog_for.cache_clear()
    yield home
    _catalog_for.cache_clear()


@pytest.fixture
def lakehouse_logs():
    """The records logged by lakehouse.* during the test. Airflow rewires logging on import, so this
    listens on the logger itself rather than through caplog."""
    import logging

    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = records.append
    logger = logging.getLogger("lakehouse")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


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


@dataclass
class S3Server:
    """The test session's embedded S3 server (see the s3_server fixture)."""

    settings: Settings  # the server's own home (not a test's lakehouse)
    endpoint: str  # http://127.0.0.1:<port>
    env: dict[str, str]  # LAKEHOUSE_S3_ENDPOINT, LAKEHOUSE_S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique name by default) and return its name."""
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        storage_server.ensure_bucket(name, self.settings)
        return name

    def delete_bucket(self, name: str) -> None:
        """Delete a bucket and everything in it."""
        self.filesystem().delete_dir(name)

    def filesystem(self):
        """A pyarrow S3FileSystem on this server, signed with its keys (to list or read what a test wrote)."""
        return storage_server.filesystem(self.settings)


@pytest.fixture(scope="session")
def s3_server():
    """One embedded S3 server (SeaweedFS) for the whole test session, in a temporary home, on free ports.

    Yields an S3Server; tests that want a lakehouse on it use s3_lakehouse. Stopped at the end.
    """
    with server_home() as home:
        settings = replace(load_settings(), home=home)
        storage_server.start(settings)
        try:
            yield S3Server(settings, storage_server.endpoint(settings), storage_server.client_env(settings))
        finally:
            storage_server.stop(settings)


@pytest.fixture
def s3_lakehouse(lakehouse_home, s3_server, monkeypatch):
    """lakehouse_home with the warehouse at s3://<fresh bucket>/warehouse and the raw zone at
    s3://<same bucket>/raw_zone on the session's S3 server (the catalog stays SQLite in the home).

    Yields the home; the bucket is urlparse(load_settings().warehouse).netloc. Deleted afterwards.
    """
    bucket = s3_server.make_bucket()
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", f"s3://{bucket}/warehouse")
    monkeypatch.setenv("LAKEHOUSE_RAW_ZONE", f"s3://{bucket}/raw_zone")
    _catalog_for.cache_clear()
    yield lakehouse_home
    _catalog_for.cache_clear()
    # Each bucket with data takes one of the server's volumes (a few dozen on a small disk): give it back.
    try:
        s3_server.delete_bucket(bucket)
    except OSError:
        pass


@pytest.fixture
def orders_db(pg):
    """A fresh database with the orders schema: (dsn, name). Its slots and itself are dropped afterwards."""
    import uuid

    from psycopg2.extensions import make_dsn

    from lakehouse.cdc.source import apply_schema
    from lakehouse.loader import pipeline_module

    base = postgres_server.source_dsn(pg)
    name = "t_" + uuid.uuid4().hex[:12]
    admin = postgres_server.connect(base)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    dsn = make_dsn(base, dbname=name)
    apply_schema(dsn, pipeline_module("orders_cdc").SCHEMA_FILE)
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
