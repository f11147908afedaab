"""The cursor of an incremental copy, kept in the raw table's own Iceberg snapshots.

Every landing commit's snapshot summary holds ``lakehouse.sync.state``: the highest cursor value
landed. The next run asks the source for rows with cursor >= that value (a closed range: a row
written later with the same value is not missed), or from a lookback before it (lakehouse.sync.
landing), and drops the rows the raw table already holds in exactly that version (same key, same
cursor value); a rerun with nothing new writes nothing. Because state and rows are one commit, there
is no moment at which one is saved and the other not (the same design as the CDC checkpoint,
lakehouse.cdc.checkpoint).

Once the snapshots holding a state are expired (maintenance keeps the current snapshot, and compaction
writes snapshots without one), the state is read back from the rows: the highest cursor value in the
table. That is exact for rows still in the table; a row at that value deleted since is fetched once
more and merged again, which changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

STATE_PROPERTY = "lakehouse.sync.state"
CURSOR_COLUMN_PROPERTY = "lakehouse.sync.cursor_column"
KEY_PROPERTY = "lakehouse.sync.primary_key"  # comma-separated


def encode_value(value: Any) -> dict[str, Any]:
    if isinstance(value, Decimal):  # a numeric cursor: as text, exact
        return {"type": "decimal", "value": str(value)}
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
    if kind == "decimal":
        return Decimal(value)
    return value


def key_texts(keys: pa.Table) -> list[str]:
    """Each row's key as one comparable text (JSON of its values; timestamps and decimals as text)."""
    columns = [keys.column(name).to_pylist() for name in keys.column_names]
    return [json.dumps(list(values), default=str) for values in zip(*columns)]


@dataclass
class CursorState:
    cursor: Any = None  # None: nothing landed yet, the first run copies everything
    from_snapshot: int | None = None  # the snapshot it was read from (None: read from the rows, or empty)

    def to_property(self, cursor_column: str) -> str:
        return json.dumps({"cursor_column": cursor_column, "cursor": encode_value(self.cursor)}, sort_keys=True)

    @staticmethod
    def after(rows: pa.Table, cursor_column: str, previous: CursorState) -> CursorState:
        """The state once ``rows`` (the good rows of a run) are landed: the highest cursor value of
        them and the previous state (a lookback can land rows older than the cursor)."""
        if not rows.num_rows:
            return previous
        highest = pc.max(rows.column(cursor_column)).as_py()
        if previous.cursor is not None and previous.cursor > highest:
            highest = previous.cursor
        return CursorState(highest)


def read_state(table: Table | None, cursor_column: str) -> CursorState:
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
        return CursorState(decode_value(state["cursor"]), snapshot.snapshot_id)
    if cursor_column not in table.schema().column_names:
        return CursorState()
    rows = table.scan(selected_fields=(cursor_column,)).to_arrow()
    return CursorState.after(rows, cursor_column, CursorState())
