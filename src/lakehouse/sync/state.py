"""The cursor of an incremental copy, kept in the raw table's own Iceberg snapshots.

Every landing commit's snapshot summary holds ``lakehouse.sync.state``: the highest cursor value landed
and the keys of the rows that have exactly that value (the boundary). The next run asks the source for
rows with cursor >= that value (a closed range, so a row written later with the same value is not
missed) and drops the boundary rows it already has; a rerun with nothing new fetches only the
boundary and writes nothing. Because state and rows are one commit, there is no moment at which one
is saved and the other not (the same design as the CDC checkpoint, lakehouse.cdc.checkpoint).

Once the snapshots holding a state are expired (maintenance keeps the current snapshot, and compaction
writes snapshots without one), the state is read back from the rows: the highest cursor value in the
table and the keys having it. That is exact for rows still in the table; a boundary row deleted since
is fetched once more and merged again, which changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

STATE_PROPERTY = "lakehouse.sync.state"
CURSOR_COLUMN_PROPERTY = "lakehouse.sync.cursor_column"
KEY_PROPERTY = "lakehouse.sync.primary_key"  # comma-separated
# Keys remembered at the boundary; past this (a bulk update stamping one value on many rows) they are
# not kept, and a rerun merges those rows again: correct, only not free.
MAX_BOUNDARY_KEYS = 10_000


def encode_value(value: Any) -> dict[str, Any]:
    if isinstance(value, dt.datetime):
        return {"type": "timestamp", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"a cursor must be a timestamp, a date, a number or text, not {type(value).__name__}")
    return {"type": type(value).__name__, "value": value}


def decode_value(encoded: dict[str, Any]) -> Any:
    kind, value = encoded["type"], encoded["value"]
    if kind == "timestamp":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    return value


def key_texts(keys: pa.Table) -> list[str]:
    """Each row's key as one comparable text (JSON of its values; timestamps and decimals as text)."""
    columns = [keys.column(name).to_pylist() for name in keys.column_names]
    return [json.dumps(list(values), default=str) for values in zip(*columns)]


@dataclass
class CursorState:
    cursor: Any = None  # None: nothing landed yet, the first run copies everything
    boundary: set[str] = field(default_factory=set)  # key_texts of the rows having exactly ``cursor``
    from_snapshot: int | None = None  # the snapshot it was read from (None: read from the rows, or empty)

    def to_property(self, cursor_column: str) -> str:
        boundary = sorted(self.boundary) if len(self.boundary) <= MAX_BOUNDARY_KEYS else []
        return json.dumps({"cursor_column": cursor_column, "cursor": encode_value(self.cursor),
                           "boundary": [json.loads(key) for key in boundary]}, sort_keys=True)

    @staticmethod
    def after(rows: pa.Table, cursor_column: str, key: list[str], previous: CursorState) -> CursorState:
        """The state once ``rows`` (the good rows of a run) are landed: their highest cursor value, or
        the previous state when there are none."""
        if not rows.num_rows:
            return previous
        highest = pc.max(rows.column(cursor_column)).as_py()
        at_highest = rows.filter(pc.equal(rows.column(cursor_column), pa.scalar(highest, rows.schema.field(cursor_column).type)))
        boundary = set(key_texts(at_highest.select(key)))
        if previous.cursor is not None and highest == previous.cursor:
            boundary |= previous.boundary
        return CursorState(highest, boundary)


def read_state(table: Table | None, cursor_column: str, key: list[str]) -> CursorState:
    """The state of the newest commit that has one, else the one the rows imply."""
    if table is None or table.current_snapshot() is None:
        return CursorState()
    for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
        text = (snapshot.summary or {}).get(STATE_PROPERTY) if snapshot.summary else None
        if not text:
            continue
        state = json.loads(text)
        if state.get("cursor_column") != cursor_column:
            break  # the cursor column was changed in pipeline.yml: the rows decide
        return CursorState(decode_value(state["cursor"]),
                           {json.dumps(values, default=str) for values in state.get("boundary", [])},
                           snapshot.snapshot_id)
    if cursor_column not in table.schema().column_names:
        return CursorState()
    rows = table.scan(selected_fields=(cursor_column, *key)).to_arrow()
    return CursorState.after(rows, cursor_column, key, CursorState())
