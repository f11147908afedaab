"""Are two Iceberg tables the same rows? For the engine-equality proof (DuckDB's marts against Spark's).

Both sides are read with PyIceberg, so neither engine reads its own output. Values are compared by
meaning, not by physical type: a decimal(38,6) and a decimal(18,2) holding 1.50 are equal, a naive
timestamp is the UTC instant it stands for, and floats (and decimals, whose division rounds differently
per engine) are equal within ``tolerance`` (relative, and absolute near zero). The row order never matters:
rows are compared as multisets, with an order-independent checksum for the report and a diff on mismatch.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

TOLERANCE = 1e-9


@dataclass
class TableDiff:
    table: str
    rows: tuple[int, int]
    checksums: tuple[str, str]
    problems: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = f"{self.table}: {self.rows[0]} vs {self.rows[1]} rows, checksums {self.checksums[0]} / {self.checksums[1]}"
        return "\n  ".join([head, *self.problems[:20]])


def _family(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "number"
    if pa.types.is_timestamp(kind):
        return "timestamp"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "string"
    return str(kind)


def _value(value):
    """An engine-neutral form of a value: numbers of any width as int or float, instants in UTC."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, (float, decimal.Decimal)):
        number = float(value)
        return "nan" if math.isnan(number) else number
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()
    return value


def _key(row: tuple, digits: int) -> tuple:
    """A row with its fractional numbers rounded to ``digits`` significant digits (whole numbers stay exact)."""
    return tuple(float(f"{v:.{digits - 1}e}") if isinstance(v, float) and v else v for v in row)


def _rows(table: pa.Table, columns: list[str]) -> list[tuple]:
    values = [table.column(name).to_pylist() for name in columns]
    return [tuple(_value(v) for v in row) for row in zip(*values)]


def _checksum(keys: Counter) -> str:
    digest = hashlib.sha256()
    for key in sorted(keys.elements(), key=repr):
        digest.update(repr(key).encode())
    return digest.hexdigest()[:16]


def _close(a, b, tolerance: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
    return a == b


def _unmatched(left: list[tuple], right: list[tuple], digits: int, tolerance: float) -> tuple[list, list]:
    """The rows of each side with no equal row on the other: first by rounded key, then within the tolerance."""
    by_key: dict[tuple, list[tuple]] = {}
    for row in right:
        by_key.setdefault(_key(row, digits), []).append(row)
    rest_left = []
    for row in left:
        bucket = by_key.get(_key(row, digits))
        if bucket:
            bucket.pop()
        else:
            rest_left.append(row)
    rest_right = [row for bucket in by_key.values() for row in bucket]
    if len(rest_left) * len(rest_right) > 4_000_000:  # too many to pair one by one: report them as they are
        return rest_left, rest_right
    missing = []
    for row in rest_left:  # a value the rounding put on the other side of a digit boundary
        match = next((i for i, other in enumerate(rest_right) if all(_close(x, y, tolerance) for x, y in zip(row, other))), None)
        if match is None:
            missing.append(row)
        else:
            rest_right.pop(match)
    return missing, rest_right


def compare(name: str, left: pa.Table, right: pa.Table, tolerance: float = TOLERANCE) -> TableDiff:
    """Compare two tables as multisets of rows (see the module docstring)."""
    problems = []
    left_columns, right_columns = set(left.column_names), set(right.column_names)
    if left_columns != right_columns:
        problems.append(f"columns differ: only left {sorted(left_columns - right_columns)}, "
                        f"only right {sorted(right_columns - left_columns)}")
    columns = sorted(left_columns & right_columns)
    for column in columns:
        a, b = _family(left.schema.field(column).type), _family(right.schema.field(column).type)
        if a != b:
            problems.append(f"column {column}: {left.schema.field(column).type} vs {right.schema.field(column).type}")
    # Keys rounded a little coarser than the tolerance, so rows equal within it usually hash alike.
    digits = max(1, min(15, int(-math.log10(tolerance)) - 1))
    left_rows, right_rows = _rows(left, columns), _rows(right, columns)
    checksums = (_checksum(Counter(_key(r, digits) for r in left_rows)), _checksum(Counter(_key(r, digits) for r in right_rows)))
    diff = TableDiff(name, (left.num_rows, right.num_rows), checksums, problems)
    only_left, only_right = _unmatched(left_rows, right_rows, digits, tolerance)
    problems += [f"only left: {dict(zip(columns, row))}" for row in only_left]
    problems += [f"only right: {dict(zip(columns, row))}" for row in only_right]
    return diff
