"""Raw ingest throughput against DuckDB writing the same rows to Parquet.

Both sides start from the same in-memory Arrow batch (the generator's output, lineage columns
added), so the figure is the cost of landing rows in Iceberg - a partitioned, atomic, idempotent
commit - against the plainest columnar write there is.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
from pyiceberg.expressions import EqualTo

from lakehouse import writes
from lakehouse.ingest import add_lineage_columns
from lakehouse.loader import pipeline_module

liquidity = pipeline_module("liquidity")

DAY = dt.date(2026, 11, 20)


def _batch(scale: float) -> pa.Table:
    loans = liquidity.positions_loans(DAY, seed=1, scale=scale)
    deposits = liquidity.positions_deposits(DAY, seed=1, scale=scale)
    return add_lineage_columns(pa.concat_tables([loans, deposits]), DAY, dt.datetime.now(dt.UTC))


def _best_of(runs: int, action) -> float:
    timings = []
    for attempt in range(runs):
        start = time.perf_counter()
        action(attempt)
        timings.append(time.perf_counter() - start)
    return min(timings)


def measure(scale: float = 100.0, runs: int = 3) -> dict:
    data = _batch(scale)
    with tempfile.TemporaryDirectory() as folder:
        con = duckdb.connect()
        con.register("batch", data)

        def to_parquet(attempt: int) -> None:
            con.execute(f"COPY batch TO '{Path(folder) / f'batch_{attempt}.parquet'}' (FORMAT parquet)")

        def to_iceberg(attempt: int) -> None:
            writes.write(
                "raw.bench_positions", data, "overwrite",
                overwrite_filter=EqualTo("_batch_date", DAY.isoformat()), partition_by=["_batch_date"],
            )

        parquet_s = _best_of(runs, to_parquet)
        iceberg_s = _best_of(runs, to_iceberg)
    return {
        "rows": data.num_rows,
        "iceberg_rows_per_s": data.num_rows / iceberg_s,
        "parquet_rows_per_s": data.num_rows / parquet_s,
        "ratio": iceberg_s / parquet_s,
    }
