"""The ``table_map`` ingest kind: the files a table map assigns to one raw table, each loaded once.

A table map (``pipelines/<name>/table_map.yml``) names, for each raw table, the files that feed it::

    root: s3://bucket/incoming          # optional; else the ingest option `root`, else <raw_zone>/<pipeline>/incoming
    tables:
      meter_readings:
        table: raw.energy_meter_readings
        files: "meter_readings/date=*/*.parquet"   # glob relative to the root: * and ? stay within a folder, ** crosses folders
        columns: [customer_id, reading_hour, kwh]  # optional: columns every file must have

The pipeline declares one ingest entry ``{kind: table_map, options: {map: table_map.yml, ...}}``; the
platform expands it into one task per table (lakehouse.kinds.table_map.TableMapIngest.expand), and each task calls
``land_mapped_files`` for its own entry:

1. With ``simulate`` on, the entry's ``generator`` (``file.py:function`` in the pipeline folder, or
   ``module:function``) first writes the day's files of
   this source under the root: ``generator(entry, day, root, **other options)`` (demo data, so a run on
   an empty home has files to load).
2. It lists the files matching the pattern (local disk or S3, through lakehouse.objectstore) and compares
   each file's size and modification time with those recorded in the raw table. A file never loaded is
   loaded; a file whose size or modification time changed is reloaded and its previous rows are
   replaced; an unchanged file is not read at all.
3. Every row gets the platform's lineage columns (``_batch_date`` = the run's date, ``_source_row`` = its
   row number in its file, ``_ingested_at``) and the file's: ``_source_file`` (full URI),
   ``_source_size``, ``_source_modified`` and ``_source_sha256`` (of the bytes loaded).
4. All of it is ONE Iceberg commit: delete the rows of the changed files, append the rows of every
   file loaded (writes.write, strategy overwrite with a filter on ``_source_file``). The snapshot
   summary lists the files (``lakehouse.files``). The raw table is the record of what was loaded, so
   a crash before the commit loads the same files again on the rerun, and after it loads nothing
   again: never a duplicate, never a gap.

Schema drift between files: a column a file adds is added to the table (schema evolution; older rows
read NULL); a column a file lacks is NULL in its rows, unless the entry lists it in ``columns``
(then the task fails naming the file); a column whose type changed is cast when the cast is lossless
(int32 -> int64, integer or float32 -> double, timestamp units), otherwise the task fails with an
error naming the file, the column and both types, and nothing is committed.

Option ``max_files`` (default: no limit) caps the files loaded by one run, for a first run over a
large backlog: the rest, in path order, wait for the next runs (``files_deferred``).

A file deleted from the bucket keeps its rows in the raw table (the lake keeps what was delivered).
Change detection uses size and modification time: on S3 the modification time has one-second
precision, so a rewrite with exactly the same size within the same second is not seen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from pyarrow import fs
from pyiceberg.expressions import In

from ..catalog import load_table
from ..ingest import IngestError, add_lineage_columns
from ..loader import load_callable
from ..objectstore import filesystem, join
from ..settings import load_settings
from ..writes import write

# The file's lineage, next to the platform's (_batch_date, _source_row, _ingested_at).
FILE_COLUMNS = ("_source_file", "_source_size", "_source_modified", "_source_sha256")
# Ingest options this kind reads itself; every other option goes to the generator.
OWN_OPTIONS = ("map", "entry", "root", "simulate", "generator", "max_files")
FORMATS = ("parquet",)
MAX_FILES_IN_SUMMARY = 200


@dataclass(frozen=True)
class Listed:
    uri: str
    size: int
    modified: dt.datetime  # UTC, microseconds


def read_map(path: str | Path) -> dict[str, Any]:
    text = Path(path).read_text()
    content = yaml.safe_load(text) or {}
    if not isinstance(content.get("tables"), dict):
        raise IngestError(f"{path}: a table map needs `tables:`, a mapping of names to {{table, files}}")
    return content


def map_entry(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the whole map, this task's entry) from the ingest options `map` and `entry`."""
    if not options.get("map") or not options.get("entry"):
        raise IngestError("a table_map ingest needs the options `map` (the file) and `entry` (the table's name in it)")
    content = read_map(options["map"])
    entry = (content["tables"] or {}).get(options["entry"])
    if not isinstance(entry, dict) or not entry.get("files"):
        raise IngestError(f"{options['map']}: table '{options['entry']}' needs `files:` (a glob relative to the root)")
    file_format = entry.get("format", content.get("format", "parquet"))
    if file_format not in FORMATS:
        raise IngestError(f"{options['map']}: table '{options['entry']}' has format {file_format!r}; supported: {FORMATS}")
    return content, entry


def resolve_root(pipeline_name: str, options: dict[str, Any], content: dict[str, Any]) -> str:
    """The ingest option `root`, else the map's `root`, else <raw_zone>/<pipeline>/incoming."""
    root = str(options.get("root") or content.get("root") or "").strip()
    if "{{" in root:
        raise IngestError(f"root {root!r} is an unrendered template: pass the rendered value (Airflow renders it per run)")
    return root.rstrip("/") if root else join(load_settings().raw_zone, pipeline_name, "incoming")


# ---------------------------------------------------------------- listing


def pattern_regex(pattern: str) -> re.Pattern:
    """A glob as a regex over paths relative to the root: * and ? within a folder, ** across folders."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def list_files(root: str, pattern: str) -> list[Listed]:
    """Every file under ``root`` whose path relative to it matches ``pattern``, sorted by path."""
    pattern = pattern.lstrip("/")
    literal = re.split(r"[*?]", pattern, maxsplit=1)[0]
    prefix = literal.rsplit("/", 1)[0] if "/" in literal else ""
    filesystem_, root_path = filesystem(root)
    base = f"{root_path.rstrip('/')}/{prefix}".rstrip("/")
    matcher = pattern_regex(pattern)
    found = []
    for info in filesystem_.get_file_info(fs.FileSelector(base, recursive=True, allow_not_found=True)):
        if info.type != fs.FileType.File:
            continue
        relative = info.path[len(root_path.rstrip("/")) + 1:]
        if matcher.match(relative):
            modified = _utc(info.mtime) if info.mtime else dt.datetime.fromtimestamp(0, dt.UTC)
            found.append(Listed(join(root, relative), info.size, modified))
    return sorted(found, key=lambda f: f.uri)


def loaded_files(table_name: str) -> dict[str, tuple[int, dt.datetime]]:
    """{file URI: (size, modification time)} of every file whose rows the raw table holds."""
    table = load_table(table_name)
    if table is None or table.current_snapshot() is None:
        return {}
    names = {f.name for f in table.schema().fields}
    if not set(FILE_COLUMNS) <= names:
        raise IngestError(f"{table_name} exists but lacks the file lineage columns {list(FILE_COLUMNS)}: "
                          "it was not written by the table_map ingest")
    rows = table.scan(selected_fields=("_source_file", "_source_size", "_source_modified")).to_arrow()
    if rows.num_rows == 0:
        return {}
    distinct = rows.group_by(["_source_file", "_source_size", "_source_modified"]).aggregate([])
    return {
        r["_source_file"]: (r["_source_size"], _utc(r["_source_modified"]))
        for r in distinct.to_pylist()
    }


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _same(listed: Listed, recorded: tuple[int, dt.datetime] | None) -> bool:
    return recorded is not None and recorded == (listed.size, listed.modified)


# ---------------------------------------------------------------- schema drift


def _plain(kind: pa.DataType) -> pa.DataType:
    """Arrow types Iceberg stores the same way, as one type."""
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_dictionary(kind):
        return _plain(kind.value_type)
    if pa.types.is_timestamp(kind) and kind.unit != "us":
        return pa.timestamp("us", tz=kind.tz)
    return kind


def _lossless(source: pa.DataType, target: pa.DataType) -> bool:
    source, target = _plain(source), _plain(target)
    if source == target or pa.types.is_null(source):
        return True
    if pa.types.is_integer(source) and pa.types.is_integer(target):
        # A signed target holds an unsigned source only with one more bit.
        extra_bit = 0 if pa.types.is_signed_integer(source) else 1
        return pa.types.is_signed_integer(target) and target.bit_width >= source.bit_width + extra_bit
    if pa.types.is_floating(target) and target.bit_width == 64:
        return (pa.types.is_integer(source) and source.bit_width <= 32) or pa.types.is_floating(source)
    if pa.types.is_timestamp(source) and pa.types.is_timestamp(target):
        return (source.tz is None) == (target.tz is None)
    return False


def unify(table_name: str, existing: pa.Schema | None, files: list[tuple[Listed, pa.Table]],
          required: list[str]) -> list[pa.Table]:
    """Each file's rows cast to one schema: the table's columns first, then columns files add."""
    fields: dict[str, pa.DataType] = {f.name: _plain(f.type) for f in existing} if existing is not None else {}
    for listed, data in files:
        missing = [name for name in required if name not in data.column_names]
        if missing:
            raise IngestError(f"{listed.uri}: missing required column(s) {missing} for {table_name}")
        for field in data.schema:
            if field.name not in fields:
                fields[field.name] = _plain(field.type) if not pa.types.is_null(field.type) else pa.string()
            elif not _lossless(field.type, fields[field.name]):
                raise IngestError(
                    f"schema drift in {listed.uri}: column {field.name!r} is {field.type}, but {table_name} (or an "
                    f"earlier file of this load) has {fields[field.name]}; fix the file or land it in a new table"
                )
    schema = pa.schema([pa.field(name, kind) for name, kind in fields.items()])
    unified = []
    for _, data in files:
        columns = [
            data.column(name).cast(kind) if name in data.column_names else pa.nulls(data.num_rows, kind)
            for name, kind in fields.items()
        ]
        unified.append(pa.Table.from_arrays(columns, schema=schema))
    return unified


# ---------------------------------------------------------------- the ingest kind


def _read(listed: Listed) -> tuple[pa.Table, str]:
    filesystem_, path = filesystem(listed.uri)
    with filesystem_.open_input_file(path) as handle:
        content = handle.read()
    try:
        data = pq.read_table(pa.BufferReader(content))
    except (pa.ArrowInvalid, OSError) as error:
        raise IngestError(f"{listed.uri} is not a readable parquet file: {error}") from error
    return data, hashlib.sha256(content).hexdigest()


def _with_lineage(listed: Listed, data: pa.Table, sha256: str, day: dt.date, now: dt.datetime) -> pa.Table:
    clash = [name for name in FILE_COLUMNS if name in data.column_names]
    if clash:
        raise IngestError(f"{listed.uri}: the file has reserved column(s) {clash}")
    data = add_lineage_columns(data, day, now)
    rows = data.num_rows
    data = data.append_column("_source_file", pa.array([listed.uri] * rows, pa.string()))
    data = data.append_column("_source_size", pa.array([listed.size] * rows, pa.int64()))
    data = data.append_column("_source_modified", pa.array([listed.modified] * rows, pa.timestamp("us", tz="UTC")))
    return data.append_column("_source_sha256", pa.array([sha256] * rows, pa.string()))


def simulate(entry_name: str, day: dt.date, root: str, options: dict[str, Any], folder: Path | None = None) -> None:
    if not options.get("generator"):
        raise IngestError(f"table map entry '{entry_name}': simulate is on but no `generator` option names the function")
    generator = load_callable(options["generator"], folder, "generator")
    generator(entry_name, day, root, **{k: v for k, v in options.items() if k not in OWN_OPTIONS})


def land_mapped_files(pipeline_name: str, source, day: dt.date, options: dict[str, Any],
                      run_id: str | None, folder: Path | None = None) -> dict[str, Any]:
    """Load the files of one table map entry not loaded yet (or changed since) into its raw table, in one commit."""
    content, entry = map_entry(options)
    entry_name = options["entry"]
    root = resolve_root(pipeline_name, options, content)
    if options.get("simulate") is True:
        simulate(entry_name, day, root, options, folder)
    listed = list_files(root, str(entry["files"]))
    recorded = loaded_files(source.table)
    todo = [f for f in listed if not _same(f, recorded.get(f.uri))]
    unchanged = len(listed) - len(todo)
    # A backlog larger than max_files is loaded over several runs, in path order, one commit each.
    limit = int(options.get("max_files") or 0)
    deferred = max(0, len(todo) - limit) if limit > 0 else 0
    todo = todo[:len(todo) - deferred]
    changed = [f.uri for f in todo if f.uri in recorded]
    summary: dict[str, Any] = {
        "table": source.table, "root": root, "files_seen": len(listed), "files_loaded": 0,
        "files_new": len(todo) - len(changed), "files_changed": len(changed), "files_unchanged": unchanged,
        "files_deferred": deferred, "rows": 0, "rows_replaced": 0, "snapshot_id": None,
    }
    table = load_table(source.table)
    if not listed and table is None:
        raise IngestError(f"no file under {root} matches {entry['files']!r}, and {source.table} does not exist yet")
    if not todo:
        summary["snapshot_id"] = table.current_snapshot().snapshot_id if table and table.current_snapshot() else None
        return summary

    now = dt.datetime.now(dt.UTC)
    files, digests = [], {}
    for f in todo:
        data, digests[f.uri] = _read(f)
        files.append((f, _with_lineage(f, data, digests[f.uri], day, now)))
    existing = table.schema().as_arrow() if table is not None else None
    tables = unify(source.table, existing, files, list(entry.get("columns") or []))
    data = pa.concat_tables(tables) if tables else None
    if data is None or (data.num_rows == 0 and not changed):
        summary["files_empty"] = len(todo)
        return summary
    if changed and table is not None:
        replaced = table.scan(row_filter=In("_source_file", changed), selected_fields=("_source_row",))
        summary["rows_replaced"] = replaced.to_arrow().num_rows
    described = [
        {"file": f.uri, "size": f.size, "modified": f.modified.isoformat(), "rows": d.num_rows,
         "sha256": digests[f.uri], "reloaded": f.uri in changed}
        for f, d in files
    ]
    properties = {
        "lakehouse.pipeline": pipeline_name,
        "lakehouse.ingest": source.name,
        "lakehouse.batch_date": day.isoformat(),
        "lakehouse.run_id": run_id or "",
        "lakehouse.files_loaded": str(len(files)),
        "lakehouse.files_reloaded": str(len(changed)),
        "lakehouse.files": json.dumps(described[:MAX_FILES_IN_SUMMARY]),
    }
    written = write(
        source.table,
        data,
        "overwrite" if changed else "append",
        overwrite_filter=In("_source_file", changed) if changed else None,
        partition_by=source.partition_by,
        snapshot_properties=properties,
    )
    snapshot = written.current_snapshot()
    summary.update(files_loaded=len(files), rows=data.num_rows,
                   snapshot_id=snapshot.snapshot_id if snapshot else None)
    return summary


def rows_per_file(table_name: str) -> dict[str, int]:
    """{file URI: rows} in the raw table."""
    table = load_table(table_name)
    if table is None:
        return {}
    rows = table.scan(selected_fields=("_source_file",)).to_arrow()
    counted = pc.value_counts(rows.column("_source_file")) if rows.num_rows else []
    return {item["values"].as_py(): item["counts"].as_py() for item in counted}
