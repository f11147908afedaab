"""logical mode: log-based CDC from a pgoutput replication slot, no trigger needed.

Changes are polled with pg_logical_slot_peek_binary_changes (peek never consumes) and the slot is
moved with pg_replication_slot_advance only after the Iceberg commit that landed them. A crash
between the two leaves the slot behind the lake: the rerun decodes those transactions again and
skips every event at or before the lake's checkpoint, then acknowledges.

Positions: pgoutput emits transactions in commit order, so an event's position is its
transaction's commit LSN plus its sequence number within the transaction (the LSN of the change
itself does not order events: transactions interleave in the WAL).
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from dataclasses import dataclass, field

from . import CaptureError, CrashHook
from .checkpoint import Event, Landing

PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

_U16, _U32 = struct.Struct(">H"), struct.Struct(">I")
_quote = json.encoder.encode_basestring  # the C encoder json.dumps uses; keeps non-ASCII as row_to_json does
_NOT_FINITE = {"NaN", "Infinity", "-Infinity"}


# How row_to_json renders a value, by column type, so that both modes land the same raw_data.
def _number(text: str) -> str:
    return _quote(text) if text in _NOT_FINITE else text  # row_to_json quotes only these


def _boolean(text: str) -> str:
    return "true" if text == "t" else "false"


def _embedded(text: str) -> str:
    return text  # json and jsonb are embedded as they are


def _datetime(text: str) -> str:
    # ISO 8601 as row_to_json writes it: a 'T' between date and time, offsets as +HH:MM.
    text = text.replace(" ", "T", 1)
    if len(text) > 3 and text[-3] in "+-" and text[-2:].isdigit():
        text += ":00"
    return _quote(text)


_RENDER = {
    20: _number, 21: _number, 23: _number, 26: _number, 700: _number, 701: _number, 1700: _number,
    16: _boolean, 114: _embedded, 3802: _embedded, 1114: _datetime, 1184: _datetime, 1266: _datetime,
}  # int8 int2 int4 oid float4 float8 numeric, bool, json jsonb, timestamp timestamptz timetz; others: strings


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def format_position(commit_lsn: int, sequence: int) -> str:
    return f"{commit_lsn >> 32:08X}/{commit_lsn & 0xFFFFFFFF:08X}.{sequence:010d}"


@dataclass
class Relation:
    schema: str | None
    name: str | None
    columns: list[tuple[str, int]]  # (name, type oid)
    fields: list = field(default_factory=list)  # ('"name":', renderer) per column

    def __post_init__(self) -> None:
        self.fields = [(_quote(name) + ":", _RENDER.get(type_oid, _quote)) for name, type_oid in self.columns]


@dataclass
class Transaction:
    xid: int
    commit_lsn: int
    commit_time: dt.datetime
    end_lsn: int = 0
    events: list[Event] = field(default_factory=list)


class PgOutputDecoder:
    """Decodes pgoutput protocol version 1 messages (one per row of peek_binary_changes) into transactions.

    Relations are announced before their first change in each decoding session and again after a
    schema change (ALTER TABLE ADD COLUMN), so the decoder keeps them for the whole session.
    """

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}
        self.current: Transaction | None = None

    def feed(self, message: bytes) -> Transaction | None:
        """Decode one message; returns the transaction when ``message`` is its Commit."""
        kind = message[:1]
        if kind == b"B":
            final_lsn, micros, xid = struct.unpack_from(">QqI", message, 1)
            self.current = Transaction(xid, final_lsn, PG_EPOCH + dt.timedelta(microseconds=micros))
        elif kind == b"C":
            _flags, commit_lsn, end_lsn, _micros = struct.unpack_from(">BQQq", message, 1)
            done, self.current = self.current, None
            if done is None or done.commit_lsn != commit_lsn:
                raise CaptureError(f"pgoutput: Commit {format_lsn(commit_lsn)} without its Begin")
            done.end_lsn = end_lsn
            return done
        elif kind == b"R":
            self._relation(message)
        elif kind in (b"I", b"U", b"D"):
            self._change(kind.decode(), message)
        elif kind == b"T":
            self._truncate(message)
        elif kind not in (b"O", b"Y"):  # Origin and Type messages carry nothing capture needs
            raise CaptureError(f"pgoutput: unexpected message type {kind!r}")
        return None

    def _relation(self, message: bytes) -> None:
        relid = struct.unpack_from(">I", message, 1)[0]
        offset = 5
        schema, offset = _cstring(message, offset)
        name, offset = _cstring(message, offset)
        offset += 1  # replica identity setting
        count = struct.unpack_from(">H", message, offset)[0]
        offset += 2
        columns = []
        for _ in range(count):
            offset += 1  # flags (part of the key)
            column, offset = _cstring(message, offset)
            type_oid = struct.unpack_from(">I", message, offset)[0]
            offset += 8  # type oid, type modifier
            columns.append((column, type_oid))
        self.relations[relid] = Relation(schema, name, columns)

    def _change(self, operation: str, message: bytes) -> None:
        relid = struct.unpack_from(">I", message, 1)[0]
        relation = self.relations.get(relid)
        if relation is None or self.current is None:
            raise CaptureError(f"pgoutput: change of relation {relid} outside a transaction or before its Relation")
        offset = 5
        old = None
        if message[offset:offset + 1] in (b"K", b"O"):  # the old row (update, delete)
            old, offset = _tuple(message, offset + 1)
        new = None
        if message[offset:offset + 1] == b"N":
            new, offset = _tuple(message, offset + 1)
        row = old if operation == "D" else new
        if new is not None and old is not None:
            # An unchanged TOASTed value is not resent ('u'); REPLICA IDENTITY FULL has it in the old row.
            row = [old[i] if value is _UNCHANGED and i < len(old) else value for i, value in enumerate(new)]
        self._add(operation, relation, _row_json(relation, row))

    def _truncate(self, message: bytes) -> None:
        count = struct.unpack_from(">I", message, 1)[0]
        for i in range(count):
            relid = struct.unpack_from(">I", message, 6 + 4 * i)[0]
            relation = self.relations.get(relid) or Relation(None, None, [])
            self._add("T", relation, None)  # an operation staging does not know: it quarantines it

    def _add(self, operation: str, relation: Relation, raw_data: str | None) -> None:
        txn = self.current
        position = format_position(txn.commit_lsn, len(txn.events) + 1)
        txn.events.append(Event(position, None, operation, txn.commit_time, relation.schema, relation.name, raw_data))


_UNCHANGED = object()


def _cstring(message: bytes, offset: int) -> tuple[str, int]:
    end = message.index(b"\0", offset)
    return message[offset:end].decode(), end + 1


def _tuple(message: bytes, offset: int) -> tuple[list, int]:
    count = _U16.unpack_from(message, offset)[0]
    offset += 2
    values: list = []
    for _ in range(count):
        kind = message[offset]
        offset += 1
        if kind == 0x74:  # 't': text
            length = _U32.unpack_from(message, offset)[0]
            values.append(message[offset + 4:offset + 4 + length].decode())
            offset += 4 + length
        elif kind == 0x6E:  # 'n': null
            values.append(None)
        elif kind == 0x75:  # 'u': unchanged TOASTed value
            values.append(_UNCHANGED)
        else:
            raise CaptureError(f"pgoutput: unexpected tuple value kind {chr(kind)!r}")
    return values, offset


def _row_json(relation: Relation, values: list | None) -> str | None:
    if values is None:
        return None
    parts = [key + ("null" if value is None or value is _UNCHANGED else render(value))
             for (key, render), value in zip(relation.fields, values)]
    return "{" + ",".join(parts) + "}"


_PEEK = """
SELECT data FROM pg_logical_slot_peek_binary_changes(
    %(slot)s, %(upto)s::pg_lsn, %(limit)s, 'proto_version', '1', 'publication_names', %(publication)s)
"""


def capture_logical(conn, landing: Landing, *, max_events: int | None, page_size: int, crash: CrashHook,
                    slot: str, publication: str) -> None:
    """Land every change the slot has after the checkpoint; one commit then one acknowledgement per page."""
    with conn.cursor() as cur:
        cur.execute("SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s AND plugin = 'pgoutput'", (slot,))
        row = cur.fetchone()
        if row is None:
            raise CaptureError(f"there is no pgoutput replication slot {slot!r}; `lakehouse source start` creates it")
        if row[0] == "lost":
            raise CaptureError(f"replication slot {slot!r} was invalidated (max_slot_wal_keep_size): changes are lost")
        # Decode only what is flushed now; when a page reaches it, everything before it was seen.
        cur.execute("SELECT pg_current_wal_flush_lsn()::text")
        upto = cur.fetchone()[0]
        while True:
            cur.execute(_PEEK, {"slot": slot, "upto": upto, "limit": page_size, "publication": publication})
            rows = cur.fetchall()
            # peek stops at transaction ends only: fewer rows than asked means it reached ``upto``.
            reached_upto = len(rows) < page_size
            decoder = PgOutputDecoder()  # each peek is a new decoding session: Relations come again
            transactions = [t for t in (decoder.feed(bytes(r[0])) for r in rows) if t is not None]
            if not transactions and not reached_upto:
                raise CaptureError(f"slot {slot!r}: a page of {page_size} messages held no whole transaction")
            events, ack, complete = _select(transactions, landing.position, _room(max_events, landing.events))
            if events:
                properties = {"lakehouse.cdc.logical.slot": slot}
                if ack:
                    properties["lakehouse.cdc.logical.ack_lsn"] = format_lsn(ack)
                landing.commit(events, crash, properties)
                crash("after_commit_before_ack")
            # Acknowledge only what the lake now holds: every transaction up to ``ack``, or everything
            # up to ``upto`` when the page reached it (this also moves a slot whose publication saw
            # no change, so that it does not hold WAL forever).
            ack_to = upto if reached_upto and complete else (format_lsn(ack) if ack else None)
            if ack_to:
                cur.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (slot, ack_to))
            if reached_upto or not complete or _room(max_events, landing.events) == 0:
                return


def _room(max_events: int | None, landed: int) -> int | None:
    return None if max_events is None else max_events - landed


def _select(transactions: list[Transaction], checkpoint: str | None, room: int | None):
    """The events after the checkpoint (at most ``room``), the end LSN of the last transaction that is
    then wholly in the lake (what may be acknowledged), and whether every transaction was taken."""
    events: list[Event] = []
    ack = None
    for txn in transactions:
        new = [e for e in txn.events if checkpoint is None or e.position > checkpoint]
        if room is not None and len(events) + len(new) > room:
            events.extend(new[: room - len(events)])
            return events, ack, False
        events.extend(new)
        ack = txn.end_lsn
    return events, ack, True
