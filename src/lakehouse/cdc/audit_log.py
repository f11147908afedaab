"""audit_log mode: incremental reads of the trigger-filled audit_log_dml table, in bounded pages.

The trap: audit_event_id comes from a sequence at INSERT time but the row becomes visible at COMMIT.
A transaction holding id 5 can commit after one holding id 6 was read; a plain "id > last id"
watermark then skips 5 forever. Timestamps have the same flaw, and OFFSET paging also repeats rows.

What is read instead: only rows whose writing transaction (audit_xid, the top-level xid8) is older
than the oldest transaction still running, ``audit_xid < pg_snapshot_xmin(pg_current_snapshot())``,
in (audit_xid, audit_event_id) order, after the last (audit_xid, audit_event_id) landed.
Why no event is ever skipped: a row not visible now belongs to a transaction that is running or has
not started, and such a transaction's xid is >= the snapshot's xmin; every transaction below xmin
has ended, so the set of rows with audit_xid < xmin is final: rows there can no longer appear. Each
read takes the next rows of that final set in key order, and the key of any row that shows up later
is >= xmin > every key read so far. Why none is repeated: the keyset (audit_xid, audit_event_id) is
unique (audit_event_id is the primary key) and only keys after the checkpoint are read.
The cost: a transaction that stays open holds back every event written after it started writing,
until it ends. (The audit_event_id alone still identifies each event; it is landed as such.)
"""

from __future__ import annotations

from ..identifiers import quote, split_table_name
from . import CrashHook
from .checkpoint import Event, Landing

# The trigger-filled table read; the postgres_cdc ingest's option `audit_table` names another.
DEFAULT_AUDIT_TABLE = "public.audit_log_dml"

_PAGE = """
SELECT audit_xid::text::bigint, audit_event_id, audit_operation::text, audit_timestamp,
       tbl_schema::text, tbl_name::text, raw_data::text
FROM {audit_table}
WHERE (audit_xid, audit_event_id) > (%(xid)s::text::xid8, %(event_id)s)
  AND audit_xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY audit_xid, audit_event_id
LIMIT %(limit)s
"""


def format_position(xid: int, event_id: int) -> str:
    return f"{xid:020d}.{event_id:020d}"


def parse_position(position: str | None) -> tuple[int, int]:
    if not position:
        return 0, 0
    xid, _, event_id = position.partition(".")
    return int(xid), int(event_id)


def read_page(cur, after: str | None, limit: int, audit_table: str = DEFAULT_AUDIT_TABLE) -> list[Event]:
    """The next ``limit`` final events after position ``after``, in capture order (one statement, one snapshot)."""
    xid, event_id = parse_position(after)
    schema, table = split_table_name(audit_table)
    cur.execute(_PAGE.format(audit_table=f"{quote(schema)}.{quote(table)}"), {"xid": xid, "event_id": event_id, "limit": limit})
    return [
        Event(format_position(row[0], row[1]), row[1], row[2], row[3], row[4], row[5], row[6])
        for row in cur.fetchall()
    ]


def capture_audit_log(conn, landing: Landing, *, max_events: int | None, page_size: int, crash: CrashHook,
                      audit_table: str = DEFAULT_AUDIT_TABLE) -> None:
    """Land every final event after the checkpoint, one Iceberg commit per page."""
    with conn.cursor() as cur:
        while max_events is None or landing.events < max_events:
            limit = page_size if max_events is None else min(page_size, max_events - landing.events)
            events = read_page(cur, landing.position, limit, audit_table)
            if not events:
                return
            landing.commit(events, crash)
            # There is nothing to acknowledge in this mode: the lake's checkpoint is the only state.
            crash("after_commit_before_ack")
            if len(events) < limit:
                return
