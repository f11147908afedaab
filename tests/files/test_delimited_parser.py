"""The delimited-file parser on its own: every line is landed or quarantined with the reason its rule
gives, values are read strictly, and the file's format is checked before a line is read."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from lakehouse.files.delimited import FileFormat, FileFormatError, deduplicate, parse_chunk, parse_file

FORMAT = FileFormat.from_options({
    "delimiter": "\t",
    "header": True,
    "columns": [
        {"name": "id", "type": "long", "min": 0},
        {"name": "user", "type": "string", "required": True},
        {"name": "at", "type": "timestamp", "format": "%Y-%m-%d %H:%M:%S %z", "offset_column": "offset_minutes"},
        {"name": "score", "type": "double"},
    ],
    "deduplicate": {"key": ["id"], "keep": "last"},
})


def judge(*lines: str) -> tuple[list[dict], list[tuple[int, str]]]:
    good, rejected = parse_chunk("\n".join(lines).encode(), 2, FORMAT)
    return good.to_pylist(), list(zip(rejected["line_number"].to_pylist(), rejected["rejection_reason"].to_pylist()))


def test_a_good_line_is_typed_and_keeps_its_line_number():
    good, rejected = judge("7\tann\t2026-11-20 23:30:00 +0100\t1.5")
    assert rejected == []
    assert good == [{"id": 7, "user": "ann", "at": dt.datetime(2026, 11, 20, 22, 30, tzinfo=dt.UTC),
                     "offset_minutes": 60, "score": 1.5, "_source_row": 2}]


@pytest.mark.parametrize(("line", "reason"), [
    ("7\tann\t2026-11-20 23:30:00 +0100", "expected 4 fields, got 3"),
    ("7\t \t2026-11-20 23:30:00 +0100\t1.5", "missing user"),
    ("x7\tann\t2026-11-20 23:30:00 +0100\t1.5", "bad id: 'x7'"),
    ("-1\tann\t2026-11-20 23:30:00 +0100\t1.5", "negative id: -1"),
    ("7\tann\t2026-11-31 23:30:00 +0100\t1.5", "bad at: '2026-11-31 23:30:00 +0100'"),  # no Nov 31
    ("7\tann\t2026-11-20 23:30:00 +0100\tlots", "bad score: 'lots'"),
])
def test_each_rule_rejects_with_its_reason(line, reason):
    good, rejected = judge("1\tok\t2026-11-20 00:00:00 +0000\t0", line)
    assert [g["id"] for g in good] == [1]
    assert rejected == [(3, reason)]


def test_invalid_utf8_is_its_own_reason():
    good, rejected = parse_chunk(b"1\tok\t2026-11-20 00:00:00 +0000\t0\n2\t\xff\t2026-11-20 00:00:00 +0000\t0", 1, FORMAT)
    assert good.num_rows == 1 and rejected["rejection_reason"].to_pylist() == ["invalid UTF-8"]


def test_in_equals_landed_plus_duplicates_plus_quarantined(tmp_path):
    path = tmp_path / "export.tsv"
    lines = ["id\tuser\tat\tscore",
             "1\ta\t2026-11-20 00:00:00 +0000\t1", "2\tb\t2026-11-20 00:00:00 +0000\t2",
             "1\ta2\t2026-11-20 01:00:00 +0000\t3",  # a later line of id 1: the one kept
             "3\t\t2026-11-20 00:00:00 +0000\t4", "bad line"]
    path.write_text("\n".join(lines) + "\n")
    batches = []
    parsed = parse_file(str(path), FORMAT, batches.append)
    good = deduplicate(pa.concat_tables(batches), FORMAT.key, FORMAT.keep)
    duplicates = parsed.good - good.num_rows
    assert parsed.lines == 5 == good.num_rows + duplicates + parsed.rejected_count
    assert sorted((r["id"], r["user"]) for r in good.to_pylist()) == [(1, "a2"), (2, "b")]


def test_a_header_that_does_not_name_the_columns_fails_the_file(tmp_path):
    path = tmp_path / "other.tsv"
    path.write_text("a\tb\tc\td\n1\t2\t3\t4\n")
    with pytest.raises(FileFormatError, match="does not name the declared columns"):
        parse_file(str(path), FORMAT, lambda batch: None)


@pytest.mark.parametrize(("spec", "message"), [
    ({}, "format: 'columns' is required"),
    ({"columns": [{"name": "id", "type": "uuid"}]}, "column id: type 'uuid' is not one of"),
    ({"columns": [{"name": "id", "colour": "red"}]}, "format column 'id': unknown setting(s) ['colour']"),
    ({"columns": ["id", "id"]}, "column names must be unique"),
    ({"columns": ["id"], "deduplicate": {"key": ["nope"]}}, "deduplicate key ['nope'] names unknown columns"),
    ({"columns": ["id"], "delimiter": "\\\\"}, "delimiter must be one character other than LF, CR and backslash"),
    ({"columns": [{"name": "at", "type": "timestamp", "offset_column": "o"}]}, "offset_column needs %z in the format"),
])
def test_a_wrong_format_declaration_is_refused_with_what_to_fix(spec, message):
    with pytest.raises(FileFormatError) as error:
        FileFormat.from_options(spec)
    assert message in str(error.value)
