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

    from bench import download

    figures = download.measure()
    print(f"download of {figures['megabytes']:.0f} MB, server capped at {figures['cap_mb_per_s']:.0f} MB/s per "
          f"connection: 1 connection {figures['single_mb_per_s']:.1f} MB/s, {figures['connections']} connections "
          f"{figures['parallel_mb_per_s']:.1f} MB/s -> {figures['ratio']:.2f}x")

    figures = pipeline.measure(args.scale)
    print(f"liquidity daily run at scale {figures['scale']}: Airflow + Cosmos {figures['airflow_seconds']:.1f} s "
          f"({figures['airflow_tasks']} tasks), plain ingest + dbt build {figures['plain_seconds']:.1f} s "
          f"-> {figures['ratio']:.2f}x (aim: at most 1.5x)")

    figures = cdc.measure(args.cdc_orders)
    for size, batch in figures["batches"].items():
        print(f"CDC merge of {size:,} events into {figures['orders']:,} orders: {batch['seconds']:.1f} s, "
              f"{batch['events_per_second']:,.0f} events/s applied")
    print(f"CDC incremental run with 1% new events {figures['incremental_seconds']:.1f} s, full rebuild "
          f"{figures['full_rebuild_seconds']:.1f} s -> {figures['ratio']:.1%} of a rebuild (aim: under 10%)")


if __name__ == "__main__":
    main()
