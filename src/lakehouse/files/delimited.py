"""The ``delimited_file`` ingest kind: one delimited text file, fetched to the raw zone, typed, bad lines quarantined.

    source (URL, path, s3://) ──fetch──▶ raw zone (file:// or s3://) ──parse in chunks──▶ raw.<table>  (typed, one row per key)
                                                                                   └──▶ quarantine.rejected_<source name>

Options (``pipeline.yml``, under the ingest entry's ``options``):

- ``source``: an http(s) URL, a local path, a file:// or an s3:// URI. ``{date}`` becomes the batch date
  (YYYY-MM-DD) and ``{home}`` the lakehouse home, so a daily file is ``.../tweets_{date}.tsv``.
- ``format``: the file's declaration (see ``FileFormat``): ``delimiter``, ``header``, ``escape``
  (``backslash`` or ``none``), ``columns`` (``name``, ``type``: string, long, int, double, timestamp,
  date; ``required``; ``min``; ``format`` of a timestamp or date, strptime directives; ``offset_column``),
  ``deduplicate`` (``key`` columns, ``keep``: last or first).
- ``simulate`` (bool), ``generator`` ('module:function'), ``simulate_rows``, ``simulate_bad_rate``, ``seed``:
  when ``simulate`` is true and the source does not exist, ``generator(uri, rows=, day=, seed=, bad_rate=)``
  writes the day's file there first (the demo's stand-in for an upstream export; file:// and s3:// only).
- ``connections``: parallel ranged connections of the download; ``max_rejected_ratio`` (default 0.5):
  more rejected lines than that share fails the task instead of landing a file read with the wrong format.

The rules, each line judged once, the first failing rule giving the reason:
1. bytes that are not UTF-8: ``invalid UTF-8``;
2. a field count other than the columns': ``expected 7 fields, got 5``;
3. per column in declared order: a blank required value: ``missing <column>``; a value that does not
   read exactly as its type: ``bad <column>: '<value>'``; a number below ``min``: ``negative <column>:
   <value>`` (min 0) or ``<column> below <min>: <value>``.
Lines end with LF (a CR before it is dropped); the header must name the declared columns in order.
Strings are unescaped (``\\\\``, ``\\t``, ``\\n``, ``\\r``; any other backslash stays). A timestamp must
match its format exactly, as Python would write it back (no rolled-over dates such as Nov 31, the
weekday of ``%a`` must be the date's); with ``%z`` it is converted to UTC, without it is read as UTC.
Among the good lines, one per ``deduplicate.key`` survives: the last in the file (``keep: last``, a later
re-export carries newer counts) or the first. So, per file:
``lines (header excluded) = landed rows + duplicates dropped + quarantined lines``.

Idempotent: the raw rows and the quarantined lines of a file carry ``_source_file`` (the source as
given, ``{date}`` filled in); each table gets ONE commit that replaces that file's rows, so loading a
file again leaves the same tables. The raw commit's snapshot properties record the file, its size and
sha256, and the counts. Parsing is vectorized (pyarrow) over chunks of the file; good rows are spooled
to a memory-mapped Arrow file, so memory does not grow with the file beyond what the commit needs.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import EqualTo

from ..identifiers import validate_identifier
from ..objectstore import filesystem, join
from ..settings import load_settings
from ..writes import write

log = logging.getLogger(__name__)

TYPES = {"string": pa.string(), "long": pa.int64(), "int": pa.int32(), "double": pa.float64(),
         "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32()}
INT_RANGES = {"long": (-(2**63), 2**63 - 1), "int": (-(2**31), 2**31 - 1)}
CHUNK_BYTES = 8 << 20
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# strptime directives the strict timestamp reader knows: RE2 pattern and width (all are fixed width,
# so once a value has the format's shape each part is a slice at a known position).
DIRECTIVES = {
    "Y": ("[0-9]{4}", 4), "m": ("[0-9]{2}", 2), "d": ("[0-9]{2}", 2), "H": ("[0-9]{2}", 2),
    "M": ("[0-9]{2}", 2), "S": ("[0-9]{2}", 2), "f": ("[0-9]{6}", 6), "z": ("[+-][0-9]{4}", 5),
    "a": ("(?:" + "|".join(DAY_NAMES) + ")", 3), "b": ("(?:" + "|".join(MONTH_NAMES) + ")", 3),
}
# A whole line of well-formed UTF-8 (what Python's strict decoder accepts: no overlong forms, no
# surrogates, nothing above U+10FFFF). On a binary array Arrow's RE2 matches byte by byte (Latin-1).
_UTF8 = ("^(?:[\\x00-\\x7F]|[\\xC2-\\xDF][\\x80-\\xBF]|\\xE0[\\xA0-\\xBF][\\x80-\\xBF]"
         "|[\\xE1-\\xEC\\xEE\\xEF][\\x80-\\xBF]{2}|\\xED[\\x80-\\x9F][\\x80-\\xBF]"
         "|\\xF0[\\x90-\\xBF][\\x80-\\xBF]{2}|[\\xF1-\\xF3][\\x80-\\xBF]{3}|\\xF4[\\x80-\\x8F][\\x80-\\xBF]{2})*$")
_SENTINEL = "\uffff"  # a noncharacter, stands for an escaped backslash while unescaping
QUARANTINE_SCHEMA = pa.schema([
    ("_source_file", pa.string()), ("line_number", pa.int64()), ("raw_line", pa.string()),
    ("rejection_reason", pa.string()), ("_batch_date", pa.date32()), ("_ingested_at", pa.timestamp("us", tz="UTC")),
])


class FileFormatError(ValueError):
    """The format declaration is invalid, or the file does not follow it as a whole (header, share rejected)."""


# --- the format declaration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"
    required: bool = False
    min: float | None = None
    format: str | None = None  # timestamp / date: strptime directives
    offset_column: str | None = None  # timestamp with %z: also keep the UTC offset (minutes) in this column


@dataclass(frozen=True)
class FileFormat:
    columns: tuple[Column, ...]
    delimiter: str = "\t"
    header: bool = True
    escape: bool = True  # backslash escapes in values
    key: tuple[str, ...] = ()
    keep: str = "last"

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @classmethod
    def from_options(cls, spec: dict[str, Any]) -> FileFormat:
        if not isinstance(spec, dict) or not spec.get("columns"):
            raise FileFormatError("format: 'columns' is required (a list of {name, type, ...})")
        columns = []
        for entry in spec["columns"]:
            entry = {"name": entry} if isinstance(entry, str) else dict(entry)
            unknown = set(entry) - {"name", "type", "required", "min", "format", "offset_column"}
            if unknown:
                raise FileFormatError(f"format column {entry.get('name')!r}: unknown setting(s) {sorted(unknown)}")
            column = Column(
                name=validate_identifier(str(entry.get("name", "")), "column name"),
                type=str(entry.get("type", "string")),
                required=bool(entry.get("required", False)),
                min=None if entry.get("min") is None else float(entry["min"]),
                format=entry.get("format"),
                offset_column=entry.get("offset_column"),
            )
            if column.type not in TYPES:
                raise FileFormatError(f"column {column.name}: type {column.type!r} is not one of {', '.join(TYPES)}")
            if column.type in ("timestamp", "date"):
                _timestamp_pattern(column.format or ("%Y-%m-%d" if column.type == "date" else "%Y-%m-%d %H:%M:%S"))
            if column.offset_column:
                validate_identifier(column.offset_column, "offset_column")
                if "%z" not in (column.format or ""):
                    raise FileFormatError(f"column {column.name}: offset_column needs %z in the format")
            columns.append(column)
        names = [c.name for c in columns] + [c.offset_column for c in columns if c.offset_column]
        if len(set(names)) != len(names):
            raise FileFormatError(f"format: column names must be unique, got {names}")
        dedup = spec.get("deduplicate") or {}
        key = dedup.get("key") or []
        key = (key,) if isinstance(key, str) else tuple(key)
        if set(key) - set(names):
            raise FileFormatError(f"deduplicate key {list(key)} names unknown columns")
        keep = str(dedup.get("keep", "last"))
        if keep not in ("last", "first"):
            raise FileFormatError(f"deduplicate keep must be 'last' or 'first', not {keep!r}")
        escape = str(spec.get("escape", "backslash")).lower()
        if escape not in ("backslash", "none"):
            raise FileFormatError(f"escape must be 'backslash' or 'none', not {escape!r}")
        delimiter = str(spec.get("delimiter", "\t"))
        if len(delimiter) != 1 or delimiter in "\n\r\\":
            raise FileFormatError(f"delimiter must be one character other than LF, CR and backslash, not {delimiter!r}")
        return cls(columns=tuple(columns), delimiter=delimiter, header=bool(spec.get("header", True)),
                   escape=escape == "backslash", key=key, keep=keep)

    def arrow_schema(self) -> pa.Schema:
        fields = []
        for column in self.columns:
            fields.append(pa.field(column.name, TYPES[column.type]))
            if column.offset_column:
                fields.append(pa.field(column.offset_column, pa.int32()))
        return pa.schema(fields + [pa.field("_source_file", pa.string()), pa.field("_source_row", pa.int64()),
                                   pa.field("_batch_date", pa.date32()), pa.field("_ingested_at", pa.timestamp("us", tz="UTC"))])


# --- strict value readers (vectorized) ------------------------------------------------------------


def _timestamp_pattern(fmt: str) -> tuple[str, dict[str, tuple[int, int]]]:
    """An anchored RE2 pattern for a strptime format, and each directive's (start, end) in a matching value."""
    pattern, positions, i, width = [], {}, 0, 0
    while i < len(fmt):
        char = fmt[i]
        if char == "%":
            if i + 1 >= len(fmt):
                raise FileFormatError(f"timestamp format {fmt!r} ends with a lone %")
            directive = fmt[i + 1]
            if directive == "%":
                pattern.append("%")
                width += 1
            elif directive in DIRECTIVES and directive not in positions:
                regex, size = DIRECTIVES[directive]
                pattern.append(regex)
                positions[directive] = (width, width + size)
                width += size
            else:
                raise FileFormatError(f"timestamp format {fmt!r}: %{directive} is not supported (or repeated); "
                                      f"use {', '.join('%' + d for d in DIRECTIVES)}")
            i += 2
        else:
            if not char.isascii():
                raise FileFormatError(f"timestamp format {fmt!r}: only ASCII literals are supported")
            pattern.append(re.escape(char))
            width += 1
            i += 1
    if not {"Y", "d"} <= set(positions) or not set(positions) & {"m", "b"}:
        raise FileFormatError(f"timestamp format {fmt!r} needs a year (%Y), a month (%m or %b) and a day (%d)")
    return "^" + "".join(pattern) + "$", positions


def _as_int(values: pa.Array) -> pa.Array:
    return pc.cast(values, pa.int64())


def _read_timestamp(values: pa.Array, column: Column) -> tuple[pa.Array, pa.Array, pa.Array | None]:
    """(UTC timestamps or dates, ok mask, offset minutes or None) for values that match the format exactly."""
    fmt = column.format or ("%Y-%m-%d" if column.type == "date" else "%Y-%m-%d %H:%M:%S")
    pattern, positions = _timestamp_pattern(fmt)
    shaped = pc.fill_null(pc.match_substring_regex(values, pattern), False)
    # A value of the right shape is ASCII: code units are characters, each part a fixed slice.
    part = {key: pc.utf8_slice_codeunits(values, start, end) for key, (start, end) in positions.items()}
    if "b" in part:
        month = pc.cast(pc.add(pc.index_in(part["b"], value_set=pa.array(MONTH_NAMES)), 1), pa.string())
        part["m"] = pc.utf8_lpad(month, 2, "0")
    text = {key: pc.if_else(shaped, part[key], pa.scalar(default)) if key in part else pa.scalar(default)
            for key, default in (("Y", "2000"), ("m", "01"), ("d", "01"), ("H", "00"), ("M", "00"), ("S", "00"))}
    iso = pc.binary_join_element_wise(
        text["Y"], "-", text["m"], "-", text["d"], "T", text["H"], ":", text["M"], ":", text["S"], ""
    )
    local = pc.strptime(iso, format="%Y-%m-%dT%H:%M:%S", unit="us", error_is_null=True)
    ok = pc.and_kleene(shaped, pc.is_valid(local))
    # Arrow rolls over (Nov 31 -> Dec 1, 23:59:60 -> next minute): every field must come back as written.
    for key, extract in (("Y", pc.year), ("m", pc.month), ("d", pc.day), ("H", pc.hour), ("M", pc.minute), ("S", pc.second)):
        if key in part:
            ok = pc.and_kleene(ok, pc.equal(extract(local), _as_int(pc.if_else(ok, text[key], "0"))))
    ok = pc.and_kleene(ok, pc.not_equal(text["Y"], "0000"))
    if "a" in part:
        weekday = pc.index_in(part["a"], value_set=pa.array(DAY_NAMES))
        ok = pc.and_kleene(ok, pc.equal(pc.day_of_week(local), weekday))
    micros = pc.cast(pc.cast(local, pa.timestamp("us")), pa.int64())
    if "f" in part:
        micros = pc.add(micros, _as_int(pc.if_else(ok, part["f"], "0")))
    offset = None
    if "z" in part:
        z = part["z"]
        hours = _as_int(pc.if_else(ok, pc.utf8_slice_codeunits(z, 1, 3), "0"))
        minutes = _as_int(pc.if_else(ok, pc.utf8_slice_codeunits(z, 3, 5), "0"))
        ok = pc.and_kleene(ok, pc.and_kleene(pc.less_equal(hours, 23), pc.less_equal(minutes, 59)))
        ok = pc.and_kleene(ok, pc.not_equal(z, "-0000"))  # written back, zero is +0000
        sign = pc.if_else(pc.starts_with(z, "-"), -1, 1)
        offset = pc.cast(pc.multiply(sign, pc.add(pc.multiply(hours, 60), minutes)), pa.int32())
        micros = pc.subtract(micros, pc.multiply(pc.cast(offset, pa.int64()), 60_000_000))
    ok = pc.fill_null(ok, False)
    result = pc.cast(micros, pa.timestamp("us", tz="UTC"))
    if column.type == "date":
        result = pc.cast(pc.cast(micros, pa.timestamp("us")), pa.date32())
    return result, ok, offset


def _read_integer(values: pa.Array, kind: str) -> tuple[pa.Array, pa.Array]:
    """(integers, ok mask): optional minus sign and ASCII digits only, within the type's range."""
    shaped = pc.match_substring_regex(values, "^-?[0-9]{1,19}$")
    digits = pc.utf8_ltrim(values, "-")
    negative = pc.starts_with(values, "-")
    long_max = str(2**63 - 1)
    fits = pc.or_(pc.less(pc.utf8_length(digits), 19),
                  pc.and_(pc.equal(pc.utf8_length(digits), 19),
                          pc.less_equal(digits, pc.if_else(negative, str(2**63), long_max))))
    ok = pc.fill_null(pc.and_(shaped, fits), False)
    numbers = pc.cast(pc.if_else(ok, values, "0"), pa.int64())
    low, high = INT_RANGES[kind]
    if kind != "long":
        ok = pc.and_(ok, pc.and_(pc.greater_equal(numbers, low), pc.less_equal(numbers, high)))
        numbers = pc.if_else(ok, numbers, 0)
    return pc.cast(numbers, TYPES[kind]), ok


def _read_double(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    ok = pc.fill_null(pc.match_substring_regex(values, r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"), False)
    return pc.cast(pc.if_else(ok, values, "0"), pa.float64()), ok


def unescape(values: pa.Array) -> pa.Array:
    """Backslash escapes of the export: \\\\ -> backslash, \\t -> TAB, \\n -> LF, \\r -> CR; others stay."""
    escaped = pc.fill_null(pc.match_substring(values, "\\"), False)
    if not pc.any(escaped).as_py():
        return values
    subset = values.filter(escaped)  # only the values that hold a backslash
    if pc.any(pc.match_substring(subset, _SENTINEL)).as_py():
        subset = pa.array([None if v is None else _unescape_one(v) for v in subset.to_pylist()], values.type)
    else:
        subset = pc.replace_substring(subset, "\\\\", _SENTINEL)
        for sequence, char in (("\\t", "\t"), ("\\n", "\n"), ("\\r", "\r")):
            subset = pc.replace_substring(subset, sequence, char)
        subset = pc.replace_substring(subset, _SENTINEL, "\\")
    return pc.replace_with_mask(values, escaped, subset)


_ESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def _unescape_one(value: str) -> str:
    return re.sub(r"\\([\\tnr])", lambda m: _ESCAPES[m.group(1)], value)


# --- parsing ----------------------------------------------------------------------------------------


@dataclass
class ParseResult:
    lines: int = 0  # data lines read (header excluded)
    good: int = 0  # lines that passed every rule (duplicates included)
    rejected: list[pa.Table] = field(default_factory=list)  # QUARANTINE_SCHEMA-like, without batch columns

    @property
    def rejected_count(self) -> int:
        return sum(t.num_rows for t in self.rejected)


def _reason_for(row: int, checks: list[tuple[str, pa.Array, pa.Array, Column]]) -> str:
    for rule, failed, raw, column in checks:
        if failed[row].as_py():
            value = raw[row].as_py()
            if rule == "missing":
                return f"missing {column.name}"
            if rule == "bad":
                return f"bad {column.name}: '{value}'"
            if column.min == 0:
                return f"negative {column.name}: {value}"
            return f"{column.name} below {column.min:g}: {value}"
    raise AssertionError("no failing rule for a rejected row")


def parse_chunk(data: bytes, first_line: int, fmt: FileFormat) -> tuple[pa.Table, pa.Table]:
    """Judge the lines of ``data`` (whole lines, the first is line ``first_line``, no final LF).

    Returns (good rows: the declared columns typed plus ``_source_row``, rejected: line_number, raw_line,
    rejection_reason).
    """
    lines = pc.list_flatten(pc.split_pattern(pa.array([data], pa.binary()), b"\n"))
    count = len(lines)
    numbers = pa.array(range(first_line, first_line + count), pa.int64())
    rejected_rows: list[tuple[int, str, str]] = []
    encoded = pc.match_substring_regex(lines, _UTF8)
    if not pc.all(encoded).as_py():
        for i in pc.indices_nonzero(pc.invert(encoded)).to_pylist():
            raw = lines[i].as_py().decode("utf-8", "replace").removesuffix("\r")
            rejected_rows.append((first_line + i, raw, "invalid UTF-8"))
        lines = lines.filter(encoded)
        numbers = numbers.filter(encoded)
    lines = lines.cast(pa.string())  # validates again: every line left is UTF-8
    if b"\r" in data:
        lines = pc.replace_substring_regex(lines, "\r$", "")
    fields = pc.split_pattern(lines, fmt.delimiter)
    width = len(fmt.columns)
    nfields = pc.list_value_length(fields)
    shaped = pc.equal(nfields, width)
    if not pc.all(shaped).as_py():
        widths = nfields.to_pylist()
        for i in pc.indices_nonzero(pc.invert(shaped)).to_pylist():
            rejected_rows.append((numbers[i].as_py(), lines[i].as_py(), f"expected {width} fields, got {widths[i]}"))
        fields = fields.filter(shaped)
        lines = lines.filter(shaped)
        numbers = numbers.filter(shaped)

    raw = {c.name: pc.list_element(fields, i) for i, c in enumerate(fmt.columns)}
    typed: dict[str, pa.Array] = {}
    checks: list[tuple[str, pa.Array, pa.Array, Column]] = []
    for column in fmt.columns:
        values = raw[column.name]
        if column.required:
            checks.append(("missing", pc.equal(pc.utf8_trim_whitespace(values), ""), values, column))
        if column.type == "string":
            typed[column.name] = unescape(values) if fmt.escape else values
            continue
        if column.type in ("timestamp", "date"):
            parsed, ok, offset = _read_timestamp(values, column)
            if column.offset_column:
                typed[column.offset_column] = offset
        elif column.type == "double":
            parsed, ok = _read_double(values)
        else:
            parsed, ok = _read_integer(values, column.type)
        typed[column.name] = parsed
        checks.append(("bad", pc.invert(ok), values, column))
        if column.min is not None and column.type in ("long", "int", "double"):
            bound = pa.scalar(column.min) if column.type == "double" else pa.scalar(math.ceil(column.min), parsed.type)
            checks.append(("min", pc.and_(ok, pc.less(parsed, bound)), values, column))

    failed = None
    for _, mask, _, _ in checks:
        failed = mask if failed is None else pc.or_(failed, mask)
    if failed is not None and pc.any(failed).as_py():
        for i in pc.indices_nonzero(failed).to_pylist():
            rejected_rows.append((numbers[i].as_py(), lines[i].as_py(), _reason_for(i, checks)))
        keep = pc.invert(failed)
        typed = {name: array.filter(keep) for name, array in typed.items()}
        numbers = numbers.filter(keep)

    good_schema = pa.schema([f for f in fmt.arrow_schema() if f.name in typed])
    good = pa.table({f.name: pc.cast(typed[f.name], f.type) for f in good_schema} | {"_source_row": numbers})
    rejected_rows.sort()
    rejected = pa.table({
        "line_number": pa.array([r[0] for r in rejected_rows], pa.int64()),
        "raw_line": pa.array([r[1] for r in rejected_rows], pa.string()),
        "rejection_reason": pa.array([r[2] for r in rejected_rows], pa.string()),
    })
    return good, rejected


def _chunks(uri: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The file's bytes in pieces that end at a line end (the last one may not)."""
    fs, path = filesystem(uri)
    carry = b""
    with fs.open_input_stream(path) as stream:
        while True:
            block = stream.read(chunk_bytes)
            if not block:
                break
            data = carry + block
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1:]
            yield data[: cut + 1]
    if carry:
        yield carry


def check_header(uri: str, line: bytes, fmt: FileFormat) -> None:
    """The header line (without its LF) names the declared columns in order."""
    header = line.decode("utf-8", "replace").removeprefix("\ufeff").removesuffix("\r")
    if header.split(fmt.delimiter) != fmt.names:
        raise FileFormatError(f"{uri}: the header {header[:300]!r} does not name the declared columns "
                              f"{fmt.delimiter.join(fmt.names)!r}")


def _pieces(uri: str, fmt: FileFormat, chunk_bytes: int) -> Iterator[tuple[bytes, int]]:
    """(whole lines without the last LF, number of the first line) of the file, the header checked and left out."""
    line = 1
    header_pending = fmt.header
    for data in _chunks(uri, chunk_bytes):
        data = data[:-1] if data.endswith(b"\n") else data
        if header_pending:
            header, newline, data = data.partition(b"\n")
            check_header(uri, header, fmt)
            header_pending = False
            line += 1
            if not newline:
                continue
        yield data, line
        line += data.count(b"\n") + 1
    if header_pending:
        raise FileFormatError(f"{uri} is empty: no header line")


def parse_file(uri: str, fmt: FileFormat, on_good, chunk_bytes: int = CHUNK_BYTES, workers: int | None = None) -> ParseResult:
    """Read the file at ``uri`` chunk by chunk; ``on_good(table)`` gets each chunk's good rows, in file order.

    Chunks are judged by ``workers`` threads (Arrow's kernels release the GIL); at most one chunk per
    worker waits in memory beyond the ones being judged.
    """
    workers = workers or min(4, os.cpu_count() or 1)
    result = ParseResult()
    pending: collections.deque = collections.deque()

    def collect() -> None:
        good, rejected = pending.popleft().result()
        result.good += good.num_rows
        if rejected.num_rows:
            result.rejected.append(rejected)
        if good.num_rows:
            on_good(good)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for data, first_line in _pieces(uri, fmt, chunk_bytes):
                result.lines += data.count(b"\n") + 1
                pending.append(pool.submit(parse_chunk, data, first_line, fmt))
                if len(pending) > workers:
                    collect()
            while pending:
                collect()
        finally:
            for future in pending:
                future.cancel()
    return result


def deduplicate(data: pa.Table, key: tuple[str, ...], keep: str) -> pa.Table:
    """One row per key: the one with the greatest ``_source_row`` (keep='last') or the smallest."""
    if not key or data.num_rows == 0:
        return data
    aggregate = "max" if keep == "last" else "min"
    chosen = data.group_by(list(key), use_threads=False).aggregate([("_source_row", aggregate)])
    if chosen.num_rows == data.num_rows:
        return data
    return data.filter(pc.is_in(data["_source_row"], value_set=chosen[f"_source_row_{aggregate}"]))


# --- the ingest kind --------------------------------------------------------------------------------


def _constant(value: Any, kind: pa.DataType, rows: int) -> pa.Array:
    return pa.nulls(rows, kind).fill_null(pa.scalar(value, kind))


def resolve_source(template: str, day: dt.date) -> str:
    home = load_settings().home
    return str(template).replace("{date}", day.isoformat()).replace("{home}", str(home))


def _exists(uri: str) -> bool:
    from pyarrow import fs as pafs

    if urlparse(uri).scheme in ("http", "https"):
        return True  # a URL is never generated; fetch says if it is missing
    filesystem_, path = filesystem(uri)
    return filesystem_.get_file_info(path).type == pafs.FileType.File


def _file_name(uri: str) -> str:
    name = PurePosixPath(urlparse(uri).path or uri).name
    if not name:
        raise FileFormatError(f"source {uri!r} does not end with a file name")
    return name


def _progress_logger(name: str):
    state = {"next": 0.0}

    def progress(done: int, total: int | None) -> None:
        if total and done / total >= state["next"]:
            log.info("fetching %s: %.0f%% of %s bytes", name, 100 * done / total, f"{total:,}")
            state["next"] = done / total + 0.1

    return progress


def fetch_day_file(pipeline_name: str, source_name: str, day: dt.date, options: dict[str, Any], folder: Path | None):
    """The day's file in the raw zone (simulated first in the demo): (the source URI, the Fetched copy)."""
    from ..loader import load_callable
    from .download import fetch

    if "source" not in options or not str(options["source"]).strip():
        raise FileFormatError(f"{source_name}: option 'source' (URL, path or s3:// URI) is required")
    uri = resolve_source(str(options["source"]).strip(), day)
    if options.get("simulate") and not _exists(uri):
        generator = load_callable(options.get("generator") or "", folder, "generator")
        truth = generator(uri, rows=int(options.get("simulate_rows", 2000)), day=day, seed=int(options.get("seed", 42)),
                          bad_rate=float(options.get("simulate_bad_rate", 0.0)))
        log.info("simulated the upstream export for %s at %s (%s lines)", day, uri, getattr(truth, "lines", "?"))
    destination = join(load_settings().raw_zone, pipeline_name, source_name, _file_name(uri))
    fetched = fetch(uri, destination, connections=int(options.get("connections", 4)), progress=_progress_logger(uri))
    log.info("fetched %s to %s: %s bytes in %.1f s (%s resumed, %s connections), sha256 %s", uri, fetched.destination,
             f"{fetched.size:,}", fetched.seconds, f"{fetched.resumed_bytes:,}", fetched.connections, fetched.sha256)
    return uri, fetched


def land_delimited_file(pipeline_name: str, source, day: dt.date, options: dict[str, Any], run_id: str | None,
                        folder: Path | None = None) -> dict[str, Any]:
    """The work of the ``delimited_file`` kind (lakehouse.kinds.delimited_file); see the module docstring.

    ``folder``: the pipeline folder, where a ``file.py:function`` generator is found."""
    started = time.monotonic()
    fmt = FileFormat.from_options(options.get("format") or {})
    uri, fetched = fetch_day_file(pipeline_name, source.name, day, options, folder)
    ingested_at = dt.datetime.now(dt.UTC)
    schema = fmt.arrow_schema()
    with tempfile.TemporaryDirectory(prefix="lakehouse-ingest-") as folder:
        spool = Path(folder) / "good.arrow"
        sink = pa.OSFile(str(spool), "wb")
        writer = pa.ipc.new_file(sink, schema)

        def on_good(good: pa.Table) -> None:
            rows = good.num_rows
            good = good.append_column("_source_file", _constant(uri, pa.string(), rows))
            good = good.append_column("_batch_date", _constant(day, pa.date32(), rows))
            good = good.append_column("_ingested_at", _constant(ingested_at, pa.timestamp("us", tz="UTC"), rows))
            writer.write_table(good.select(schema.names).cast(schema))

        parse_started = time.monotonic()
        try:
            parsed = parse_file(fetched.destination, fmt, on_good)
        finally:
            writer.close()
            sink.close()
        parse_seconds = time.monotonic() - parse_started
        rejected_count = parsed.rejected_count
        ratio = float(options.get("max_rejected_ratio", 0.5))
        if parsed.lines and rejected_count / parsed.lines > ratio:
            first = parsed.rejected[0].slice(0, 3).to_pylist()
            raise FileFormatError(
                f"{uri}: {rejected_count:,} of {parsed.lines:,} lines rejected (more than max_rejected_ratio {ratio}); "
                f"is the format right? first: {[(r['line_number'], r['rejection_reason']) for r in first]}")
        with pa.memory_map(str(spool)) as mapped:
            good = pa.ipc.open_file(mapped).read_all()
            landed = deduplicate(good, fmt.key, fmt.keep)
            duplicates = good.num_rows - landed.num_rows
            properties = {
                "lakehouse.pipeline": pipeline_name, "lakehouse.ingest": source.name,
                "lakehouse.batch_date": day.isoformat(), "lakehouse.run_id": run_id or "",
                "lakehouse.file": uri, "lakehouse.file.raw_zone": fetched.destination,
                "lakehouse.file.size": str(fetched.size), "lakehouse.file.sha256": fetched.sha256,
                "lakehouse.file.lines": str(parsed.lines), "lakehouse.rows": str(landed.num_rows),
                "lakehouse.duplicates": str(duplicates), "lakehouse.rejected": str(rejected_count),
            }
            commit_started = time.monotonic()
            table = write(source.table, landed, "overwrite", overwrite_filter=EqualTo("_source_file", uri),
                          partition_by=source.partition_by, snapshot_properties=properties)
            rows = landed.num_rows
            del good, landed
    quarantine = f"quarantine.rejected_{source.name}"
    rejected = pa.concat_tables(parsed.rejected) if parsed.rejected else QUARANTINE_SCHEMA.empty_table().drop_columns(
        ["_source_file", "_batch_date", "_ingested_at"])
    count = rejected.num_rows
    rejected = pa.table({
        "_source_file": _constant(uri, pa.string(), count),
        "line_number": rejected["line_number"], "raw_line": rejected["raw_line"],
        "rejection_reason": rejected["rejection_reason"],
        "_batch_date": _constant(day, pa.date32(), count),
        "_ingested_at": _constant(ingested_at, pa.timestamp("us", tz="UTC"), count),
    }, schema=QUARANTINE_SCHEMA)
    write(quarantine, rejected, "overwrite", overwrite_filter=EqualTo("_source_file", uri), partition_by=["_batch_date"],
          snapshot_properties=properties)
    commit_seconds = time.monotonic() - commit_started
    snapshot = table.current_snapshot()
    summary = {
        "table": source.table, "rows": rows, "lines": parsed.lines, "duplicates": duplicates, "rejected": count,
        "quarantine": quarantine, "file": uri, "raw_zone": fetched.destination, "size": fetched.size,
        "sha256": fetched.sha256, "resumed_bytes": fetched.resumed_bytes, "fetch_seconds": round(fetched.seconds, 3),
        "parse_seconds": round(parse_seconds, 3), "commit_seconds": round(commit_seconds, 3),
        "seconds": round(time.monotonic() - started, 3), "snapshot_id": snapshot.snapshot_id if snapshot else None,
    }
    log.info("landed %s: %s", source.table, summary)
    return summary
