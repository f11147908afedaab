"""JSON records typed by declared columns: good ones as an Arrow table, the others rejected with the reason.

Types: ``string``, ``long``, ``double``, ``decimal(p,s)``, ``boolean``, ``date``, ``timestamp`` (ISO
8601; with an offset it is converted to UTC, without one it is read as UTC). A value must already
be of its type as JSON has it (a number for long and double, text for dates and timestamps; a
decimal may be a number or text): an API that starts sending ``"12"`` for a count has changed, and
that should be seen, not coerced. A missing field or null is a null. The first failing column gives
the reason (``bad clicks: 'n/a' is not long``). Fields a record has but no column declares are not
landed; their names are reported, so a new field is noticed and can be declared.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

import pyarrow as pa

from . import SyncError
from .landing import Rejected

_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_SIMPLE = {"string": pa.string(), "long": pa.int64(), "double": pa.float64(), "boolean": pa.bool_(),
           "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC")}


def arrow_type(name: str) -> pa.DataType:
    text = str(name).strip().lower()
    if text in _SIMPLE:
        return _SIMPLE[text]
    match = _DECIMAL.match(text)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2))
        if not 0 < precision <= 38 or scale > precision:
            raise SyncError(f"type {name!r}: precision must be 1..38 and scale at most the precision")
        return pa.decimal128(precision, scale)
    raise SyncError(f"unknown column type {name!r}; use {', '.join(_SIMPLE)} or decimal(p,s)")


class _Bad(ValueError):
    pass


def _convert(value: Any, kind: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_string(kind):
        if isinstance(value, str):
            return value
    elif pa.types.is_int64(kind):
        if isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63:
            return value
    elif pa.types.is_float64(kind):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif pa.types.is_boolean(kind):
        if isinstance(value, bool):
            return value
    elif pa.types.is_decimal(kind):
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            # quantize raises for infinity and for more digits than the context holds (1e30, or a
            # decimal(38,s) value past the default 28): a bad value to quarantine, not the run's end.
            try:
                number = Decimal(str(value))
                with localcontext(prec=38):  # the widest decimal declared
                    quantized = number.quantize(Decimal(1).scaleb(-kind.scale)) if number.is_finite() else None
            except InvalidOperation:
                raise _Bad from None
            if quantized == number and len(quantized.as_tuple().digits) <= kind.precision:
                return quantized
    elif pa.types.is_date(kind):
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
    elif pa.types.is_timestamp(kind) and isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _Bad from None
        return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    raise _Bad


def type_records(records: list[Any], columns: dict[str, str], key: tuple[str, ...] = (),
                 cursor: str | None = None) -> tuple[pa.Table, list[Rejected], set[str]]:
    """(good rows, rejected records, field names no column declares).

    A record without a ``key`` field or the ``cursor`` is rejected here, with the reasons the landing
    gives (lakehouse.sync.landing), so the quarantine keeps the record exactly as the source sent it."""
    types = {name: arrow_type(kind) for name, kind in columns.items()}
    values: dict[str, list] = {name: [] for name in types}
    rejected: list[Rejected] = []
    undeclared: set[str] = set()
    for record in records:
        if not isinstance(record, dict):
            rejected.append(Rejected(repr(record), f"not a JSON object: {type(record).__name__}"))
            continue
        undeclared.update(set(record) - set(types))
        missing = [f"missing key column {name}" for name in key if record.get(name) is None]
        if not missing and cursor and record.get(cursor) is None:
            missing = [f"missing cursor {cursor}"]
        if missing:
            rejected.append(Rejected(record, missing[0]))
            continue
        row = {}
        try:
            for name, kind in types.items():
                try:
                    row[name] = _convert(record.get(name), kind)
                except _Bad:
                    raise _Bad(f"bad {name}: {record.get(name)!r} is not {columns[name]}") from None
        except _Bad as reason:
            rejected.append(Rejected(record, str(reason)))
            continue
        for name in types:
            values[name].append(row[name])
    table = pa.table({name: pa.array(values[name], kind) for name, kind in types.items()})
    return table, rejected, undeclared
