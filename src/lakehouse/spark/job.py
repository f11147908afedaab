"""What a ``spark_job`` script uses (lakehouse.kinds.spark_job runs it with spark-submit)::

    from lakehouse.spark import job

    args = job.arguments(extra=["--path"])        # --table, --batch-date, --run-id, ... and the script's own
    spark = job.session()
    rows = spark.read.option("sep", "\\t").csv(args.path, header=True)
    job.replace_batch(spark, rows, args.table, args.batch_date)

``replace_batch`` adds the lineage columns the other ingest kinds add (_batch_date, _ingested_at) and
replaces exactly that date's rows in ONE commit (a dynamic overwrite of the _batch_date partition; the
table is created partitioned by it on the first run), so a rerun or a backfill never duplicates rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from ..identifiers import split_table_name


def arguments(extra: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--table", required=True)
    parser.add_argument("--batch-date", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--run-id", default="")
    # Which entry of which pipeline runs: the pipeline's name and folder, the ingest's name and layout.
    parser.add_argument("--pipeline", default="")
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--source", default="")
    parser.add_argument("--partition-by", type=json.loads, default=["_batch_date"])
    for name in extra or []:
        parser.add_argument(name)
    return parser.parse_args()


def session():
    from pyspark.sql import SparkSession

    return SparkSession.builder.getOrCreate()  # the properties come from spark-submit


def replace_batch(spark, frame, table: str, batch_date: dt.date) -> None:
    from pyspark.sql import functions as F

    namespace, name = split_table_name(table)  # validated: safe to write into SQL
    frame = (frame.withColumn("_batch_date", F.lit(batch_date).cast("date"))
             .withColumn("_ingested_at", F.current_timestamp()))
    if not spark.catalog.tableExists(f"{namespace}.{name}"):
        frame.limit(0).writeTo(f"{namespace}.{name}").using("iceberg").partitionedBy(F.col("_batch_date")).create()
    frame.writeTo(f"{namespace}.{name}").overwritePartitions()
