"""One run of an incremental copy: what the source extracted, committed to its raw table exactly once.

    state (raw table's snapshots) ──▶ extract(state) ──▶ rows with cursor >= state.cursor, rejected records,
                                                          and (deletes: detect) every key the source has now
    quarantine.rejected_<source name>  ◀── records that cannot be landed, with the reason (one commit)
    raw.<table>                        ◀── new and changed rows merged by key, deleted keys removed,
                                           the new state in the same snapshot (one commit)

Per run: ``fetched = landed + quarantined + superseded + already_landed`` where ``superseded`` are older
versions of a key fetched in the same run (the newest by cursor wins) and ``already_landed`` the
rows the raw table already holds in that version (the previous run's last rows, a lookback's
overlap). A run that finds nothing new commits nothing.

Crash safety: the quarantine commit replaces the rows of this run's window (its starting cursor), and
the raw commit carries the state. Dying between the two leaves the state where it was, so the rerun
extracts the same window, replaces the same quarantine rows and lands the rows once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import AlwaysTrue, EqualTo, GreaterThanOrEqual

from ..catalog import load_table
from ..ingest import LINEAGE_COLUMNS, add_lineage_columns
from ..writes import write
from . import SyncError
from .state import CURSOR_COLUMN_PROPERTY, KEY_PROPERTY, STATE_PROPERTY, CursorState, key_texts, read_state

log = logging.getLogger(__name__)
TOMBSTONE = "_deleted"
RESERVED = (*LINEAGE_COLUMNS, TOMBSTONE)
QUARANTINE_SCHEMA = pa.schema([
    ("_window", pa.string()),  # the run's starting cursor: a rerun of the window replaces its rows
    ("primary_key", pa.string()),  # JSON of the key's values, when the record has them
    ("record", pa.string()),  # the record as the source gave it (JSON)
    ("rejection_reason", pa.string()),
    ("_batch_date", pa.date32()),
    ("_ingested_at", pa.timestamp("us", tz="UTC")),
])


@dataclass
class Rejected:
    record: dict[str, Any] | str  # the record (or the raw text that could not be read as one)
    reason: str


@dataclass
class Increment:
    """What one extraction returned."""

    rows: pa.Table  # typed rows with cursor >= the state's cursor
    rejected: list[Rejected] = field(default_factory=list)
    source_keys: pa.Table | None = None  # every key the source holds now (deletes: detect), else None
    details: dict[str, Any] = field(default_factory=dict)  # what the extraction reports (pages, retries)
    # The extraction stopped part way (a page that cannot be read): its rejected records are
    # quarantined, nothing is landed, and the run fails with this message.
    failure: str | None = None


@dataclass
class Target:
    """Where and how a source's rows land."""

    table: str  # raw.<name>
    key: list[str]
    cursor_column: str
    quarantine: str  # quarantine.rejected_<source name>
    partition_by: list[str] | None = None
    properties: dict[str, str] = field(default_factory=dict)  # pipeline, ingest, run id... for the snapshot
    # Asked again before a timestamp cursor each run (see land_increment); None: from the cursor itself.
    lookback: dt.timedelta | None = None
    # More of the raw table's keys than this share gone from the source fails the run instead of
    # deleting them (a source restored empty, a wrong replica); 1.0 allows anything.
    max_delete_fraction: float = 1.0


def _window(state: CursorState) -> str:
    return "initial" if state.cursor is None else json.dumps(state.cursor, default=str)


def _record_json(record: dict[str, Any] | str) -> str:
    return record if isinstance(record, str) else json.dumps(record, default=str, sort_keys=True)


def _invalid_rows(rows: pa.Table, target: Target) -> tuple[pa.Table, list[Rejected]]:
    """Rows without a key or a cursor value cannot be merged or ordered: they are quarantined."""
    checks = [(column, f"missing key column {column}") for column in target.key]
    checks.append((target.cursor_column, f"missing cursor {target.cursor_column}"))
    bad_mask = None
    reasons: list[str | None] = [None] * rows.num_rows
    for column, reason in checks:
        nulls = pc.is_null(rows.column(column))
        for index in pc.indices_nonzero(nulls).to_pylist():
            reasons[index] = reasons[index] or reason
        bad_mask = nulls if bad_mask is None else pc.or_(bad_mask, nulls)
    if bad_mask is None or not pc.any(bad_mask).as_py():
        return rows, []
    bad = rows.filter(bad_mask).to_pylist()
    rejected = [Rejected(record, reason) for record, reason in zip(bad, [r for r in reasons if r])]
    return rows.filter(pc.invert(bad_mask)), rejected


def _newest_per_key(rows: pa.Table, key: list[str], cursor: str) -> pa.Table:
    """One row per key: the one with the highest cursor (the later one of equals, in source order)."""
    if not rows.num_rows:
        return rows
    order = pa.array(range(rows.num_rows), pa.int64())
    ranked = rows.select([*key, cursor]).append_column("__order", order).sort_by([(cursor, "ascending"),
                                                                                  ("__order", "ascending")])
    ranked = ranked.append_column("__rank", pa.array(range(ranked.num_rows), pa.int64()))
    last = ranked.group_by(key).aggregate([("__rank", "max")]).column("__rank_max")
    chosen = pc.take(ranked.column("__order"), last)
    return rows.take(pc.take(chosen, pc.sort_indices(chosen)))  # in source order


def _signatures(rows: pa.Table) -> Counter:
    return Counter(zip(rows.column("record").to_pylist(), rows.column("rejection_reason").to_pylist()))


def _quarantine(target: Target, rejected: list[Rejected], window: str, day: dt.date, now: dt.datetime,
                properties: dict[str, str]) -> None:
    existing = load_table(target.quarantine)
    if existing is None and not rejected:
        return  # nothing to record and nothing of an earlier attempt at this window to replace
    # A record rejected again in a later window (a NULL cursor matches every run's query, a keyless row
    # at the boundary is fetched again) is kept once, in the window that first recorded it.
    held = (existing.scan(row_filter=AlwaysTrue() if rejected else EqualTo("_window", window),
                          selected_fields=("_window", "record", "rejection_reason")).to_arrow()
            if existing is not None else QUARANTINE_SCHEMA.empty_table())
    in_window = pc.equal(held.column("_window"), window)
    elsewhere = _signatures(held.filter(pc.invert(in_window)))
    fresh = []
    for item in rejected:
        signature = (_record_json(item.record), item.reason)
        if elsewhere[signature]:
            elsewhere[signature] -= 1
        else:
            fresh.append(item)
    rejected = fresh
    if Counter((_record_json(item.record), item.reason) for item in rejected) == _signatures(held.filter(in_window)):
        return  # nothing new, or exactly what an earlier attempt at this window recorded
    keys = []
    for item in rejected:
        values = [item.record.get(name) for name in target.key] if isinstance(item.record, dict) else None
        keys.append(json.dumps(values, default=str) if values and all(v is not None for v in values) else None)
    count = len(rejected)
    data = pa.table({
        "_window": pa.array([window] * count, pa.string()),
        "primary_key": pa.array(keys, pa.string()),
        "record": pa.array([_record_json(item.record) for item in rejected], pa.string()),
        "rejection_reason": pa.array([item.reason for item in rejected], pa.string()),
        "_batch_date": pa.array([day] * count, pa.date32()),
        "_ingested_at": pa.array([now] * count, pa.timestamp("us", tz="UTC")),
    }, schema=QUARANTINE_SCHEMA)
    write(target.quarantine, data, "overwrite", overwrite_filter=EqualTo("_window", window),
          partition_by=["_batch_date"], snapshot_properties=properties)


def _deleted_keys(table, target: Target, source_keys: pa.Table, landed: pa.Table) -> pa.Table:
    """Keys the raw table has and the source no longer has (a key landed again in this run stays)."""
    if table is None:
        return source_keys.schema.empty_table()
    held = table.scan(selected_fields=tuple(target.key)).to_arrow()
    # The source's keys to the raw table's types, not the other way round: keys read as Python values
    # have inferred types (null when the source is empty; a decimal's precision from the values seen).
    source_keys = source_keys.select(target.key).cast(held.schema)
    gone = held.join(source_keys, target.key, join_type="left anti")
    return gone.join(landed.select(target.key), target.key, join_type="left anti") if landed.num_rows else gone


def _held_versions(table, target: Target, since: Any) -> set[str]:
    """key_texts of (key..., cursor) of the raw rows whose cursor is at or after ``since``."""
    bound = since.isoformat() if isinstance(since, (dt.date, dt.datetime)) else since
    held = table.scan(row_filter=GreaterThanOrEqual(target.cursor_column, bound),
                      selected_fields=(*target.key, target.cursor_column)).to_arrow()
    return set(key_texts(held.select([*target.key, target.cursor_column])))


def land_increment(target: Target, extract: Callable[[CursorState], Increment], day: dt.date) -> dict[str, Any]:
    """Read the state, extract after it, and commit the quarantine then the raw rows; the run's summary."""
    started = time.monotonic()
    table = load_table(target.table)
    state = read_state(table, target.cursor_column)
    asked = state
    if target.lookback and isinstance(state.cursor, dt.datetime):
        # A row's updated_at is set when its transaction starts and seen when it commits: a
        # transaction older than the last run's newest row can commit after that run. Asking again
        # from a lookback before the cursor finds such rows; what is already held is dropped below.
        asked = CursorState(state.cursor - target.lookback, state.from_snapshot)
    increment = extract(asked)
    if increment.failure:
        _quarantine(target, increment.rejected, _window(state), day, dt.datetime.now(dt.UTC),
                    {**target.properties, "lakehouse.batch_date": day.isoformat()})
        raise SyncError(f"{target.table}: {increment.failure} (quarantined in {target.quarantine})")
    rows = increment.rows
    clash = [name for name in RESERVED if name in rows.column_names]
    if clash:
        raise SyncError(f"{target.table}: the source has column(s) {clash}, names the platform reserves")
    missing = [name for name in (*target.key, target.cursor_column) if name not in rows.column_names]
    if missing and rows.num_rows:
        raise SyncError(f"{target.table}: the source's rows have no column(s) {missing} "
                        f"(key {target.key}, cursor {target.cursor_column!r})")
    fetched = rows.num_rows + len(increment.rejected)
    rejected = list(increment.rejected)
    if rows.num_rows:
        rows, invalid = _invalid_rows(rows, target)
        rejected += invalid
    already = 0
    if rows.num_rows and table is not None and asked.cursor is not None:
        # Rows the raw table already holds in exactly this version (same key, same cursor value): the
        # boundary of the last run and the lookback's overlap. Not written again.
        held = _held_versions(table, target, asked.cursor)
        seen = pa.array([text in held for text in key_texts(rows.select([*target.key, target.cursor_column]))],
                        pa.bool_())
        already = pc.sum(seen).as_py() or 0
        rows = rows.filter(pc.invert(seen))
    newest = _newest_per_key(rows, target.key, target.cursor_column)
    superseded = rows.num_rows - newest.num_rows
    deleted = (_deleted_keys(table, target, increment.source_keys, newest)
               if increment.source_keys is not None else None)
    deletes = deleted.num_rows if deleted is not None else 0
    if deletes and target.max_delete_fraction < 1.0:
        held_keys = table.scan(selected_fields=(target.key[0],)).to_arrow().num_rows
        if held_keys and deletes / held_keys > target.max_delete_fraction:
            raise SyncError(
                f"{target.table}: the source no longer has {deletes:,} of the {held_keys:,} keys landed "
                f"(more than max_delete_fraction {target.max_delete_fraction:g}); nothing was changed. A source "
                "restored empty or the wrong database? If the deletes are real, raise max_delete_fraction for a run")
    new_state = CursorState.after(newest, target.cursor_column, state)
    now = dt.datetime.now(dt.UTC)
    counts = {"fetched": fetched, "landed": newest.num_rows, "quarantined": len(rejected), "superseded": superseded,
              "already_landed": already, "deleted": deletes}
    if fetched != newest.num_rows + len(rejected) + superseded + already:
        raise SyncError(f"{target.table}: the run does not reconcile: {counts}")  # a bug here, never a source's
    properties = {**target.properties, "lakehouse.batch_date": day.isoformat(),
                  **{f"lakehouse.sync.{name}": str(value) for name, value in counts.items()}}
    _quarantine(target, rejected, _window(state), day, now, properties)
    snapshot_id = table.current_snapshot().snapshot_id if table is not None and table.current_snapshot() else None
    if newest.num_rows or deletes:
        parts = []
        # Optional columns, whatever the source's constraints say: a source relaxing NOT NULL later
        # must not break its copy (and tombstones carry the key only).
        newest = newest.cast(pa.schema([column.with_nullable(True) for column in newest.schema]))
        if newest.num_rows:
            data = add_lineage_columns(newest, day, now)
            parts.append(data.append_column(TOMBSTONE, pa.array([False] * data.num_rows, pa.bool_())))
        if deletes:  # the key and the flag only: delete_insert removes the key and inserts nothing for it
            parts.append(deleted.append_column(TOMBSTONE, pa.array([True] * deletes, pa.bool_())))
        data = pa.concat_tables(parts, promote_options="permissive")
        properties[STATE_PROPERTY] = new_state.to_property(target.cursor_column)
        table = write(target.table, data, "delete_insert", unique_key=target.key, tombstone_column=TOMBSTONE,
                      partition_by=target.partition_by, snapshot_properties=properties)
        snapshot_id = table.current_snapshot().snapshot_id
        described = {CURSOR_COLUMN_PROPERTY: target.cursor_column, KEY_PROPERTY: ",".join(target.key)}
        if any(table.properties.get(name) != value for name, value in described.items()):
            # Once per table: tells readers (lakehouse codegen: freshness, key tests) the cursor and the key.
            with table.transaction() as tx:
                tx.set_properties(described)
    summary = {"table": target.table, "rows": newest.num_rows, **counts, "quarantine": target.quarantine,
               "cursor": None if new_state.cursor is None else str(new_state.cursor),
               "previous_cursor": None if state.cursor is None else str(state.cursor),
               "snapshot_id": snapshot_id, "seconds": round(time.monotonic() - started, 3), **increment.details}
    log.info("synced %s: %s", target.table, summary)
    return summary
