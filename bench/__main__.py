"""`make bench`: every figure against a baseline measured in the same run, on the same data.

    python -m bench [--scale 1.0] [--ingest-scale 100]
"""

from __future__ import annotations

import argparse

from bench import cdc, ingest, pipeline


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--scale", type=float, default=1.0, help="liquidity scale of the pipeline runs")
    parser.add_argument("--ingest-scale", type=float, default=100.0, help="positions scale of the ingest batch")
    parser.add_argument("--cdc-orders", type=int, default=1_000_000, help="rows of the orders table for the CDC figures")
    args = parser.parse_args()

    figures = ingest.measure(args.ingest_scale)
    print(f"raw ingest of {figures['rows']:,} rows: Iceberg commit {figures['iceberg_rows_per_s']:,.0f} rows/s, "
          f"DuckDB to Parquet {figures['parquet_rows_per_s']:,.0f} rows/s "
          f"-> Iceberg takes {figures['ratio']:.2f}x the Parquet write")

    from bench import tweets

    figures = tweets.measure()
    print(f"tweets TSV to bronze, {figures['lines']:,} lines ({figures['megabytes']:.0f} MB): land_delimited_file "
          f"{figures['lakehouse_rows_per_s']:,.0f} rows/s, DuckDB read_csv to Parquet {figures['duckdb_rows_per_s']:,.0f} "
          f"rows/s -> {figures['ratio']:.2f}x the time")

    from bench import download

    figures = download.measure()
    print(f"download of {figures['megabytes']:.0f} MB, server capped at {figures['cap_mb_per_s']:.0f} MB/s per "
          f"connection: 1 connection {figures['single_mb_per_s']:.1f} MB/s, {figures['connections']} connections "
          f"{figures['parallel_mb_per_s']:.1f} MB/s -> {figures['ratio']:.2f}x")

    from bench import maintenance

    figures = maintenance.measure()
    print(f"compaction of {figures['commits']} small files ({figures['megabytes']:.1f} MB, {figures['rows']:,} rows) "
          f"into one: {figures['compaction_mb_per_s']:.1f} MB/s, plain pyarrow read + rewrite "
          f"{figures['plain_mb_per_s']:.1f} MB/s -> compaction takes {figures['ratio']:.2f}x; then expiry + orphan "
          f"removal {figures['cleanup_seconds']:.1f} s ({figures['orphans_removed']} files removed, "
          f"{figures['stored_files_before']} -> {figures['stored_files_after']} files stored)")

    figures = pipeline.measure(args.scale)
    print(f"liquidity daily run at scale {figures['scale']}: Airflow + Cosmos {figures['airflow_seconds']:.1f} s "
          f"({figures['airflow_tasks']} tasks), plain ingest + dbt build {figures['plain_seconds']:.1f} s "
          f"-> {figures['ratio']:.2f}x (aim: at most 1.5x)")

    from bench import lineage

    figures = lineage.measure()
    print(f"liquidity daily run at scale {figures['scale']} ({figures['tasks']} tasks): OpenLineage off "
          f"{figures['off_seconds']:.1f} s, on (file, {figures['events']} events) {figures['on_seconds']:.1f} s "
          f"-> {figures['ratio']:.2f}x (aim: under 1.10x); CPU {figures['off_cpu_seconds']:.1f} s -> "
          f"{figures['on_cpu_seconds']:.1f} s, {figures['cpu_ratio']:.2f}x")

    figures = cdc.measure(args.cdc_orders)
    for size, batch in figures["batches"].items():
        print(f"CDC merge of {size:,} events into {figures['orders']:,} orders: {batch['seconds']:.1f} s, "
              f"{batch['events_per_second']:,.0f} events/s applied")
    print(f"CDC incremental run with 1% new events {figures['incremental_seconds']:.1f} s, full rebuild "
          f"{figures['full_rebuild_seconds']:.1f} s -> {figures['ratio']:.1%} of a rebuild (aim: under 10%)")

    from bench import engines

    engines.report(engines.measure(orders=args.cdc_orders))


if __name__ == "__main__":
    main()
