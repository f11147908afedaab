"""`make bench`: every figure against a baseline measured in the same run, on the same data.

    python -m bench [--scale 1.0] [--ingest-scale 100]
"""

from __future__ import annotations

import argparse

from bench import ingest, pipeline


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--scale", type=float, default=1.0, help="liquidity scale of the pipeline runs")
    parser.add_argument("--ingest-scale", type=float, default=100.0, help="positions scale of the ingest batch")
    args = parser.parse_args()

    figures = ingest.measure(args.ingest_scale)
    print(f"raw ingest of {figures['rows']:,} rows: Iceberg commit {figures['iceberg_rows_per_s']:,.0f} rows/s, "
          f"DuckDB to Parquet {figures['parquet_rows_per_s']:,.0f} rows/s "
          f"-> Iceberg takes {figures['ratio']:.2f}x the Parquet write")

    figures = pipeline.measure(args.scale)
    print(f"liquidity daily run at scale {figures['scale']}: Airflow + Cosmos {figures['airflow_seconds']:.1f} s "
          f"({figures['airflow_tasks']} tasks), plain ingest + dbt build {figures['plain_seconds']:.1f} s "
          f"-> {figures['ratio']:.2f}x (aim: at most 1.5x)")


if __name__ == "__main__":
    main()
