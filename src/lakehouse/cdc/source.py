"""What a CDC source needs in PostgreSQL, idempotently: the pipeline's schema file, and the replication slot.

The schema (tables, the audit trigger, the publication) belongs to the pipeline: its postgres_cdc
ingest names the file (option ``source_schema``), e.g. pipelines/orders_cdc/source_schema.sql.
"""

from __future__ import annotations

from pathlib import Path

from ..sources.postgres_server import connect

DEFAULT_PUBLICATION = "lakehouse_cdc"
DEFAULT_SLOT = "lakehouse_cdc"


def apply_schema(dsn: str, schema_file: str | Path) -> None:
    """Run the schema file in one transaction (it must be idempotent: it runs before every capture)."""
    conn = connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(Path(schema_file).read_text())
    finally:
        conn.close()


def ensure_slot(conn, slot: str = DEFAULT_SLOT) -> bool:
    """Create the pgoutput slot if it is missing; True when created. ``conn`` must be in autocommit.

    A slot streams the changes committed after its creation only, and keeps WAL until it is
    acknowledged: create it before the traffic it should see, drop it when it is no longer read.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,))
        if cur.fetchone():
            return False
        cur.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        return True


def drop_slot(conn, slot: str) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (slot,))


def prepare_source(dsn: str, schema_file: str | Path | None = None, slot: str = DEFAULT_SLOT) -> dict:
    """Everything both capture modes need: the schema (when given), and the slot when wal_level allows one."""
    if schema_file:
        apply_schema(dsn, schema_file)
    conn = connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SHOW wal_level")
            wal_level = cur.fetchone()[0]
        created = ensure_slot(conn, slot) if wal_level == "logical" else False
        return {"wal_level": wal_level, "slot": slot if wal_level == "logical" else None, "slot_created": created}
    finally:
        conn.close()
