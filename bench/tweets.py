"""Bronze ingest of a tweets TSV: `land_delimited_file` against DuckDB reading the same file into Parquet.

One generated export (the tweets pipeline's format, 1% bad lines), in a throw-away lakehouse home.
- lakehouse: ``land_delimited_file`` without its download step (the file is already local): strict
  typed parsing of every line, bad lines with their reasons, dedup by id, and two Iceberg commits
  (raw.tweets partitioned by day, quarantine), idempotent per file.
- baseline: DuckDB ``read_csv`` (delim TAB, no quoting, typed columns, ``ignore_errors``) with
  ``try_strptime`` of created_at, written by ``COPY ... (FORMAT parquet)``: the plainest fast way to
  turn the file into columns. It keeps no reasons, does not unescape, dedup or reject negative counts.
Both are timed on the same file in the same run; rows/s counts the file's data lines.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from bench.homes import throwaway_lakehouse

DAY = dt.date(2026, 11, 20)


def measure(rows: int = 500_000, bad_rate: float = 0.01) -> dict:
    import duckdb

    from lakehouse.files import delimited
    from lakehouse.loader import pipeline_module
    from lakehouse.pipeline import IngestSource, load_pipeline
    from lakehouse.settings import REPO_ROOT

    write_tweets = pipeline_module("tweets").write_tweets

    declared = load_pipeline(REPO_ROOT / "pipelines" / "tweets").ingest[0]
    with throwaway_lakehouse() as folder:
        path = Path(folder) / f"tweets_{DAY}.tsv"
        generated = write_tweets(str(path), rows=rows, day=DAY, seed=1, bad_rate=bad_rate)
        source = IngestSource(name="bench_tweets", table="raw.bench_tweets", kind="delimited_file",
                              options={}, partition_by=declared.partition_by)
        options = {"source": path.as_uri(), "format": declared.options["format"], "simulate": False}
        summary = delimited.land_delimited_file("bench", source, DAY, options, "bench")
        lakehouse_s = summary["seconds"] - summary["fetch_seconds"]

        con = duckdb.connect()
        started = time.perf_counter()
        con.execute(f"""
            COPY (
                SELECT id, "user", try_strptime(created_at, '%a %b %d %H:%M:%S %z %Y') AS created_at,
                       text, lang, retweet_count, like_count
                FROM read_csv('{path}', delim='\t', header=true, quote='', escape='', ignore_errors=true,
                              strict_mode=false,
                              columns={{'id': 'BIGINT', 'user': 'VARCHAR', 'created_at': 'VARCHAR', 'text': 'VARCHAR',
                                       'lang': 'VARCHAR', 'retweet_count': 'BIGINT', 'like_count': 'BIGINT'}})
            ) TO '{Path(folder) / "tweets.parquet"}' (FORMAT parquet)""")
        duckdb_s = time.perf_counter() - started
        duckdb_rows = con.execute(f"select count(*) from '{Path(folder) / 'tweets.parquet'}'").fetchone()[0]
    return {
        "lines": generated.lines,
        "megabytes": generated.size / 1e6,
        "landed": summary["rows"],
        "duplicates": summary["duplicates"],
        "rejected": summary["rejected"],
        "lakehouse_seconds": lakehouse_s,
        "parse_seconds": summary["parse_seconds"],  # judging every line, spooling the good rows
        "commit_seconds": summary["commit_seconds"],  # dedup, the raw and quarantine Iceberg commits
        "lakehouse_rows_per_s": generated.lines / lakehouse_s,
        "duckdb_seconds": duckdb_s,
        "duckdb_rows": duckdb_rows,
        "duckdb_rows_per_s": generated.lines / duckdb_s,
        "ratio": lakehouse_s / duckdb_s,
    }


if __name__ == "__main__":
    print(measure())
