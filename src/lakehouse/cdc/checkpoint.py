"""The landing table raw.audit_log_dml and its checkpoint: events and position in ONE Iceberg snapshot.

Every landing commit is one append snapshot whose summary properties hold the capture position of
its last event (``lakehouse.cdc.<mode>.position``) and the identity of the source it came from. The
checkpoint is therefore exactly "what the table holds": there is no moment at which the data is
committed and the checkpoint not, or the reverse. The next capture reads the position from the
newest snapshot that has one and asks the source only for events after it.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import TableAlreadyExistsError
from pyiceberg.expressions import EqualTo
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from ..catalog import get_catalog, load_table
from ..identifiers import split_table_name
from . import CaptureError, CrashHook

LANDING_SCHEMA = pa.schema([
    # Orders the events totally in capture order; fixed-width text, so string order = capture order.
    pa.field("event_position", pa.string()),
    pa.field("audit_event_id", pa.int64()),  # audit_log mode only
    pa.field("audit_operation", pa.string()),
    pa.field("audit_timestamp", pa.timestamp("us", tz="UTC")),
    pa.field("tbl_schema", pa.string()),
    pa.field("tbl_name", pa.string()),
    pa.field("raw_data", pa.string()),  # JSON text of the row as PostgreSQL had it
    pa.field("capture_mode", pa.string()),
    pa.field("ingested_at", pa.timestamp("us", tz="UTC")),
])
TABLE_PROPERTIES = {
    # PyIceberg 0.12 retries a conflicting append by re-basing it on the new snapshot. For a landing
    # commit that would land events after a checkpoint another commit has already moved: fail instead.
    "commit.retry.num-retries": "0",
}


class Event(NamedTuple):
    position: str
    audit_event_id: int | None
    operation: str | None
    timestamp: dt.datetime | None
    tbl_schema: str | None
    tbl_name: str | None
    raw_data: str | None


def _key(mode: str, name: str) -> str:
    return f"lakehouse.cdc.{mode}.{name}"


def open_landing_table(full_name: str, catalog: Catalog) -> Table:
    """The landing table, created empty on first use."""
    table = load_table(full_name, catalog)
    if table is None:
        # Not writes.write: creating needs the table properties above, which write() cannot set.
        try:
            catalog.create_table_transaction(
                split_table_name(full_name), schema=LANDING_SCHEMA, properties=TABLE_PROPERTIES
            ).commit_transaction()
        except TableAlreadyExistsError:
            pass  # another capture created it meanwhile
        table = load_table(full_name, catalog)
    if any(table.properties.get(key) != value for key, value in TABLE_PROPERTIES.items()):
        with table.transaction() as tx:  # a table made by something else: properties only, no snapshot
            tx.set_properties(TABLE_PROPERTIES)
    return table


def _position_from_data(table: Table, mode: str) -> str | None:
    """The last landed position read from the rows: the fallback once checkpoint snapshots are expired.

    Exact, because rows and checkpoint were always committed together: the highest position in the
    table is the position of the last landing commit.
    """
    rows = table.scan(row_filter=EqualTo("capture_mode", mode), selected_fields=("event_position",)).to_arrow()
    return pc.max(rows["event_position"]).as_py() if rows.num_rows else None


class Landing:
    """One capture run's view of the landing table: its checkpoint, and commits of events + checkpoint."""

    def __init__(self, full_name: str, mode: str, source_id: str, catalog: Catalog | None = None):
        self.full_name, self.mode, self.source_id = full_name, mode, source_id
        self.table = open_landing_table(full_name, catalog or get_catalog())
        self.position, checkpoint_source = self._read_checkpoint()
        if checkpoint_source and checkpoint_source != source_id:
            raise CaptureError(
                f"{full_name} holds {mode} events of source {checkpoint_source}, but this source is {source_id} "
                "(a re-initialised or different PostgreSQL): its positions are not comparable, so capturing "
                "would skip or repeat events; land it in another table or drop this one"
            )
        self.events = 0
        self.commits = 0
        self.first_position: str | None = None
        self.snapshot_id: int | None = None

    def _read_checkpoint(self) -> tuple[str | None, str | None]:
        # The newest ancestor with a checkpoint: snapshots of other writers (compaction) have none.
        for snapshot in ancestors_of(self.table.current_snapshot(), self.table.metadata):
            position = snapshot.summary[_key(self.mode, "position")] if snapshot.summary else None
            if position:
                return position, snapshot.summary[_key(self.mode, "source")]
        if self.table.current_snapshot() is None:
            return None, None
        return _position_from_data(self.table, self.mode), None

    def commit(self, events: list[Event], crash: CrashHook, properties: dict[str, str] | None = None) -> int:
        """Append ``events`` (in capture order, all after the checkpoint) with the new checkpoint; one snapshot."""
        if not events:
            raise CaptureError("nothing to land")
        if self.position is not None and events[0].position <= self.position:
            raise CaptureError(f"event {events[0].position} is not after the checkpoint {self.position}")
        crash("before_write")
        data = _to_arrow(events, self.mode)
        summary = {
            _key(self.mode, "position"): events[-1].position,
            _key(self.mode, "source"): self.source_id,
            "lakehouse.cdc.mode": self.mode,
            "lakehouse.cdc.events": str(len(events)),
            **(properties or {}),
        }
        # A transaction on the table as loaded when the checkpoint was read, not writes.write (which
        # loads the table again): the commit must fail if any snapshot was added since that read.
        tx = self.table.transaction()
        tx.append(data, snapshot_properties=summary)  # data and manifest files written, nothing committed
        # A design that commits data and then writes the checkpoint separately could die here with
        # events landed and the checkpoint behind them (rerun: duplicates). Here both are in the one
        # commit below, so dying here leaves only unreferenced files: the same as dying before_write.
        crash("after_write_before_checkpoint")
        self.table = tx.commit_transaction()
        self.position = events[-1].position
        self.first_position = self.first_position or events[0].position
        self.events += len(events)
        self.commits += 1
        self.snapshot_id = self.table.current_snapshot().snapshot_id
        return self.snapshot_id


def _to_arrow(events: list[Event], mode: str) -> pa.Table:
    columns = list(zip(*events))
    now = dt.datetime.now(dt.UTC)
    count = len(events)
    return pa.Table.from_arrays(
        [
            pa.array(columns[0], pa.string()),
            pa.array(columns[1], pa.int64()),
            pa.array(columns[2], pa.string()),
            pa.array(columns[3], pa.timestamp("us", tz="UTC")),
            pa.array(columns[4], pa.string()),
            pa.array(columns[5], pa.string()),
            pa.array(columns[6], pa.string()),
            pa.array([mode] * count, pa.string()),
            pa.array([now] * count, pa.timestamp("us", tz="UTC")),
        ],
        schema=LANDING_SCHEMA,
    )
