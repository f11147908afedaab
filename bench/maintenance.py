"""Compaction throughput against a plain read-and-rewrite of the same small files.

A table is built from many small appends (one Parquet file and one snapshot each) in a throw-away
lakehouse. Baseline: pyarrow reads those files and writes their rows as one Parquet file (zstd, as
PyIceberg writes), nothing else. Compaction: planning and the one overwrite commit that replaces the
files by one (lakehouse.maintenance), so the gap is what Iceberg's bookkeeping (manifests, snapshot,
catalog commit) and the row-count check cost. Both figures are bytes of small files per second.
Then the rest of a maintenance run on the same table: expiry of the appends' snapshots and removal of
the files that leaves unreferenced, timed as one call.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.homes import throwaway_lakehouse

TABLE = "raw.bench_small_files"


def _batch(i: int, rows: int, rng: random.Random) -> pa.Table:
    ids = range(i * rows, (i + 1) * rows)
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "account": [f"ACC{rng.randrange(1_000_000):07d}" for _ in ids],
        "amount": [round(rng.gauss(1000, 250), 2) for _ in ids],
        "quantity": pa.array([rng.randrange(1, 500) for _ in ids], pa.int64()),
        "booked_at": pa.array([1_790_000_000_000_000 + n * 1_000_000 for n in ids], pa.timestamp("us", tz="UTC")),
    })


def _fingerprint(data: pa.Table) -> tuple:
    return data.num_rows, pc.sum(data["id"]).as_py(), round(pc.sum(data["amount"]).as_py(), 2)


def measure(commits: int = 200, rows_per_commit: int = 5_000) -> dict:
    from lakehouse import maintenance, writes
    from lakehouse.catalog import load_table

    rng = random.Random(7)
    with throwaway_lakehouse() as folder:
        for i in range(commits):
            writes.write(TABLE, _batch(i, rows_per_commit, rng), "append")
        table = load_table(TABLE)
        expected = _fingerprint(table.scan().to_arrow())
        paths = [urlparse(t.file.file_path).path for t in table.scan().plan_files()]
        small_bytes = sum(Path(p).stat().st_size for p in paths)

        start = time.perf_counter()
        rows = pq.read_table(paths)
        pq.write_table(rows, folder / "rewritten.parquet", compression="zstd")
        plain_s = time.perf_counter() - start
        assert _fingerprint(pq.read_table(folder / "rewritten.parquet")) == expected

        start = time.perf_counter()
        plan, _ = maintenance.plan_compaction(table, 128 * maintenance.MB)
        maintenance._rewrite(table, plan)
        compaction_s = time.perf_counter() - start
        compacted = load_table(TABLE)
        assert len(list(compacted.scan().plan_files())) == 1
        assert _fingerprint(compacted.scan().to_arrow()) == expected

        start = time.perf_counter()
        report = maintenance.maintain_table(TABLE, retention_hours=0, min_snapshots_to_keep=1,
                                            target_file_size_mb=128, orphan_grace_hours=0)
        cleanup_s = time.perf_counter() - start
        assert _fingerprint(load_table(TABLE).scan().to_arrow()) == expected
    megabytes = small_bytes / 1e6
    return {
        "commits": commits,
        "rows": expected[0],
        "megabytes": megabytes,
        "compaction_mb_per_s": megabytes / compaction_s,
        "plain_mb_per_s": megabytes / plain_s,
        "ratio": compaction_s / plain_s,
        "cleanup_seconds": cleanup_s,
        "expired_snapshots": report.expired_snapshots,
        "orphans_removed": report.orphans_removed,
        "stored_files_before": report.stored_files_before,
        "stored_files_after": report.stored_files_after,
    }
