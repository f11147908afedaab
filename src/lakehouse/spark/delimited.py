"""The ``delimited_file`` kind's work as a Spark job: the same file, format and rules
(lakehouse.files.delimited), the lines judged in parallel by the executors. A pipeline's spark_job
script calls it (pipelines/tweets/spark/bronze_tweets.py)::

    args = job.arguments(extra=["--file"])
    delimited.land(job.session(), args, json.loads(args.file))   # --file: the delimited_file options

The driver fetches the day's file into the raw zone as the kind does (simulating it first in the demo)
and checks the header. The file is cut into byte ranges; each task judges the lines that START in its
range with ``parse_chunk``, the very code of the one-machine path, so each line is judged once and by
the same rules. Line numbers come from a first pass that only counts each range's lines. One row per
key survives (the last or the first line, by line number), and each table gets ONE ``MERGE`` that
replaces exactly this file's rows (``WHEN NOT MATCHED BY SOURCE AND _source_file = <file> THEN
DELETE``): a rerun leaves the same tables. An overwrite by filter would be one commit too, but Iceberg
refuses it once maintenance has compacted two files' rows into one data file.

What the one-machine path writes as snapshot properties (the file's sha256 and counts) is logged and
returned here instead: Spark SQL has no way to set a MERGE's snapshot properties.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import pyarrow as pa

from ..files.delimited import QUARANTINE_SCHEMA, FileFormat, FileFormatError, check_header, fetch_day_file, parse_chunk
from ..identifiers import split_table_name, validate_identifier
from ..objectstore import filesystem

log = logging.getLogger(__name__)
SPLIT_BYTES = 64 << 20  # bytes of the file per task
_BLOCK = 1 << 16
_BATCH_COLUMNS = ("_source_file", "_batch_date", "_ingested_at")


def _judged_schema(fmt: FileFormat) -> pa.Schema:
    """What a task returns: the typed columns and ``_source_row`` for a good line; ``raw_line`` and
    ``rejection_reason`` (the typed columns null) for a rejected one."""
    fields = [f for f in fmt.arrow_schema() if f.name not in _BATCH_COLUMNS]
    return pa.schema(fields + [pa.field("raw_line", pa.string()), pa.field("rejection_reason", pa.string())])


def owned_lines(stream, start: int, end: int, size: int) -> bytes | None:
    """The lines whose first byte lies in [start, end), without the last LF; None when no line starts there.

    A line starts at 0 or after an LF, so the line running across ``start`` belongs to the range before."""
    begin = 0
    if start > 0:
        stream.seek(start - 1)
        skipped = 0
        while True:
            block = stream.read(_BLOCK)
            if not block:
                return None
            cut = block.find(b"\n")
            if cut >= 0:
                begin = start - 1 + skipped + cut + 1
                break
            skipped += len(block)
    if begin >= min(end, size):
        return None
    stream.seek(begin)
    parts = [stream.read(end - begin)]
    while not parts[-1].endswith(b"\n"):  # finish the last line, however far it runs
        block = stream.read(_BLOCK)
        if not block:
            break
        cut = block.find(b"\n")
        parts.append(block if cut < 0 else block[: cut + 1])
    data = b"".join(parts)
    return data[:-1] if data.endswith(b"\n") else data


def _ranges(uri: str, fmt: FileFormat, split_bytes: int) -> tuple[list[tuple[int, int]], int, int]:
    """(byte ranges of the data lines, the line number of the first data line, the file's size); the header checked."""
    fs, path = filesystem(uri)
    size = fs.get_file_info(path).size
    begin, first_line = 0, 1
    if fmt.header:
        with fs.open_input_file(path) as stream:
            head = stream.read(min(size, 1 << 20))
        if not head:
            raise FileFormatError(f"{uri} is empty: no header line")
        line, newline, _ = head.partition(b"\n")
        if not newline and len(head) < size:
            raise FileFormatError(f"{uri}: the header line is longer than 1 MiB")
        check_header(uri, line, fmt)
        begin, first_line = len(line) + len(newline), 2
    edges = list(range(begin, size, split_bytes)) + [size]
    return list(zip(edges[:-1], edges[1:], strict=True)), first_line, size


def _count_lines(uri: str, size: int):
    def count(part):
        fs, path = filesystem(uri)
        with fs.open_input_file(path) as stream:
            for index, start, end in part:
                data = owned_lines(stream, start, end, size)
                yield index, 0 if data is None else data.count(b"\n") + 1

    return count


def _judge(uri: str, size: int, fmt: FileFormat, schema: pa.Schema):
    """The mapInArrow function: each range's lines judged by parse_chunk, good and rejected in one batch."""

    def judge(batches):
        fs, path = filesystem(uri)
        with fs.open_input_file(path) as stream:
            for batch in batches:
                columns = batch.to_pydict()
                for start, end, first in zip(columns["start"], columns["end"], columns["first_line"], strict=True):
                    data = owned_lines(stream, start, end, size)
                    if data is None:
                        continue
                    good, rejected = parse_chunk(data, first, fmt)
                    bad = rejected.num_rows
                    yield from pa.concat_tables([
                        pa.table({f.name: good[f.name] if f.name in good.column_names else pa.nulls(good.num_rows, f.type)
                                  for f in schema}, schema=schema),
                        pa.table({f.name: rejected["line_number"] if f.name == "_source_row"
                                  else rejected[f.name] if f.name in rejected.column_names else pa.nulls(bad, f.type)
                                  for f in schema}, schema=schema),
                    ]).to_batches()

    return judge


def _quoted(name: str) -> str:
    return f"`{validate_identifier(name)}`"  # Spark SQL quotes with backticks


def _merge(spark, incoming, table: str, key: list[str], uri: str) -> None:
    """Replace ``uri``'s rows of ``table`` by ``incoming`` in one commit."""
    namespace, name = split_table_name(table)
    view = f"lakehouse_incoming_{namespace}_{name}"
    incoming.createOrReplaceTempView(view)
    on = " AND ".join(f"t.{_quoted(c)} = s.{_quoted(c)}" for c in ["_source_file", *key])
    spark.sql(f"MERGE INTO {_quoted(namespace)}.{_quoted(name)} t USING {view} s ON {on} "
              "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT * "
              "WHEN NOT MATCHED BY SOURCE AND t._source_file = :file THEN DELETE", args={"file": uri})
    spark.catalog.dropTempView(view)


def _ensure_table(table: str, schema: pa.Schema, partition_by: list[str]) -> None:
    """Created by PyIceberg as the one-machine path creates it: the same schema, field ids and layout."""
    from ..catalog import load_table
    from ..writes import write

    if load_table(table) is None:
        write(table, schema.empty_table(), "append", partition_by=partition_by)


def land(spark, args, options: dict[str, Any], split_bytes: int = SPLIT_BYTES) -> dict[str, Any]:
    """Land the day's file: ``args`` from lakehouse.spark.job.arguments, ``options`` the delimited_file
    kind's (checked and typed here, as the kind checks them)."""
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    from ..kinds.delimited_file import DelimitedFileIngest

    started = time.monotonic()
    options = DelimitedFileIngest.parse(options, f"{args.pipeline} ingest '{args.source}' on Spark", rendered=True)
    fmt = FileFormat.from_options(options["format"])
    uri, fetched = fetch_day_file(args.pipeline, args.source, args.batch_date, options, args.folder)
    ranges, first_line, size = _ranges(fetched.destination, fmt, split_bytes)
    indexed = [(i, start, end) for i, (start, end) in enumerate(ranges)]
    slices = max(1, len(indexed))
    counts = dict(spark.sparkContext.parallelize(indexed, slices).mapPartitions(
        _count_lines(fetched.destination, size)).collect())
    firsts, line = [], first_line
    for index, start, end in indexed:
        firsts.append((start, end, line))
        line += counts[index]
    lines = line - first_line

    schema = _judged_schema(fmt)
    work = spark.createDataFrame(spark.sparkContext.parallelize(firsts, slices), "start long, end long, first_line long")
    judged = work.mapInArrow(_judge(fetched.destination, size, fmt, schema), from_arrow_schema(schema))
    judged = judged.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        rejected_count = judged.where(F.col("rejection_reason").isNotNull()).count()
        good_count = judged.count() - rejected_count
        if good_count + rejected_count != lines:
            raise FileFormatError(f"{uri}: {lines} lines counted but {good_count + rejected_count} judged")
        ratio = options["max_rejected_ratio"]
        if lines and rejected_count / lines > ratio:
            first = judged.where(F.col("rejection_reason").isNotNull()).orderBy("_source_row").limit(3).collect()
            raise FileFormatError(
                f"{uri}: {rejected_count:,} of {lines:,} lines rejected (more than max_rejected_ratio {ratio}); "
                f"is the format right? first: {[(r['_source_row'], r['rejection_reason']) for r in first]}")

        ingested_at = dt.datetime.now(dt.UTC)
        stamp = [F.lit(uri).alias("_source_file"), F.lit(args.batch_date.isoformat()).cast("date").alias("_batch_date"),
                 F.lit(ingested_at.isoformat()).cast("timestamp_ltz").alias("_ingested_at")]
        good = judged.where(F.col("rejection_reason").isNull()).drop("raw_line", "rejection_reason")
        if fmt.key:
            order = F.col("_source_row").desc() if fmt.keep == "last" else F.col("_source_row").asc()
            chosen = F.row_number().over(Window.partitionBy(*fmt.key).orderBy(order))
            good = good.withColumn("_choice", chosen).where(F.col("_choice") == 1).drop("_choice")
        good = good.select("*", *stamp).select(*fmt.arrow_schema().names)
        rows = good.count()
        _ensure_table(args.table, fmt.arrow_schema(), args.partition_by)
        _merge(spark, good, args.table, ["_source_row"], uri)

        quarantine = f"quarantine.rejected_{args.source}"
        bad = (judged.where(F.col("rejection_reason").isNotNull())
               .select(F.col("_source_row").alias("line_number"), "raw_line", "rejection_reason", *stamp)
               .select(*QUARANTINE_SCHEMA.names))
        _ensure_table(quarantine, QUARANTINE_SCHEMA, ["_batch_date"])
        _merge(spark, bad, quarantine, ["line_number"], uri)
    finally:
        judged.unpersist()
    summary = {"table": args.table, "rows": rows, "lines": lines, "duplicates": good_count - rows,
               "rejected": rejected_count, "quarantine": quarantine, "file": uri, "raw_zone": fetched.destination,
               "size": fetched.size, "sha256": fetched.sha256, "tasks": len(indexed),
               "seconds": round(time.monotonic() - started, 3)}
    log.info("landed %s on Spark: %s", args.table, summary)
    return summary
