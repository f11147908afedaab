"""Fresh databases on the test session's embedded PostgreSQL (the `pg` fixture), and reading rows back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg2.extensions import make_dsn

from lakehouse.settings import Settings
from lakehouse.sources import postgres_server


@contextmanager
def fresh_database(settings: Settings, prefix: str = "t", timezone: str | None = None) -> Iterator[str]:
    """A new database (sessions in ``timezone`` when given): its DSN. Dropped afterwards, connections and all."""
    base = postgres_server.source_dsn(settings)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = postgres_server.connect(base)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
            if timezone:
                cur.execute(f"ALTER DATABASE {name} SET timezone TO %s", (timezone,))
        yield make_dsn(base, dbname=name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def query(dsn: str, sql: str, args=None) -> list[dict]:
    """The statement's rows as dicts (none for a statement without a result), in one transaction."""
    conn = postgres_server.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, args)
            if not cur.description:
                return []
            names = [column.name for column in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        conn.close()
