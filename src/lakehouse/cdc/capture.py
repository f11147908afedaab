"""capture(): one exactly-once CDC run from PostgreSQL into raw.audit_log_dml (what the ingest task calls).

Crash points (``crash_at``), in the order a page meets them:
- ``before_write``: events read from the source, nothing written to the lake.
- ``after_write_before_checkpoint``: data files written but not committed (see Landing.commit: with
  the checkpoint in the same commit this is equivalent to before_write).
- ``after_commit_before_ack``: events and checkpoint committed; the logical slot not yet advanced
  (audit_log mode has nothing to acknowledge: the point is the end of the page).
In every case a rerun lands exactly the events the crashed run had not committed.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2

from ..catalog import get_catalog
from ..sources.postgres_server import connect, source_dsn
from . import LANDING_TABLE, MODES, CaptureError, CrashHook, crash_hook
from .audit_log import DEFAULT_AUDIT_TABLE, capture_audit_log
from .checkpoint import Landing
from .logical import capture_logical
from .source import DEFAULT_PUBLICATION, DEFAULT_SLOT


@dataclass(frozen=True)
class CaptureResult:
    events: int
    first_position: str | None
    last_position: str | None  # the checkpoint after the run (also when it landed nothing)
    pages: int  # landing commits
    snapshot_id: int | None  # the last landing snapshot of this run; None when nothing was landed


def source_identity(conn) -> str:
    """'<system identifier>/<database>': positions (xids, LSNs) only compare within one such source."""
    with conn.cursor() as cur:
        try:
            cur.execute("SELECT system_identifier::text || '/' || current_database() FROM pg_control_system()")
        except psycopg2.errors.InsufficientPrivilege:
            conn.rollback()
            cur.execute("SELECT inet_server_addr()::text || ':' || current_setting('port') || '/' || current_database()")
        return cur.fetchone()[0]


def capture(
    mode: str,
    *,
    dsn: str | None = None,
    max_events: int | None = None,
    page_size: int = 10000,
    crash_at: str | CrashHook | None = None,
    table: str = LANDING_TABLE,
    slot: str = DEFAULT_SLOT,
    publication: str = DEFAULT_PUBLICATION,
    audit_table: str = DEFAULT_AUDIT_TABLE,
) -> CaptureResult:
    """Land the source's new change events in ``table``; rerunning after any failure is always safe."""
    if mode not in MODES:
        raise CaptureError(f"unknown capture mode {mode!r}; choose one of {', '.join(MODES)}")
    if page_size < 1 or (max_events is not None and max_events < 0):
        raise CaptureError("page_size must be positive and max_events not negative")
    crash = crash_hook(crash_at)
    conn = connect(dsn or source_dsn(), application_name=f"lakehouse-capture-{mode}",
                   options="-c timezone=UTC -c datestyle=ISO")  # logical raw_data renders dates like row_to_json
    try:
        conn.autocommit = True  # each page is its own statement and snapshot (see audit_log.py)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(hashtext('lakehouse.cdc'), hashtext(%s))", (f"{table}/{mode}",))
            if not cur.fetchone()[0]:
                raise CaptureError(f"another {mode} capture into {table} is running on this source")
        landing = Landing(table, mode, source_identity(conn), get_catalog())
        if mode == "audit_log":
            capture_audit_log(conn, landing, max_events=max_events, page_size=page_size, crash=crash,
                              audit_table=audit_table)
        else:
            capture_logical(conn, landing, max_events=max_events, page_size=page_size, crash=crash,
                            slot=slot, publication=publication)
        return CaptureResult(landing.events, landing.first_position, landing.position, landing.commits,
                             landing.snapshot_id)
    finally:
        conn.close()  # also releases the advisory lock
