"""DuckDB against Spark (local[2]) on the same data, each on its own fresh lakehouse:

- liquidity at scales 1, 10 and 50: the three ingests once (PyIceberg, the same on both engines), then
  the timed `dbt build --full-refresh` of the project on each engine's target;
- the CDC pipeline's `dbt run` for one batch of 100k update events into 1M orders (bench/cdc.py's
  synthetic events), after the initial build: DuckDB's delete+insert path against Spark's MERGE INTO.

Spark's Thrift server is started before the timing (its JVM start is reported apart, once): what is
compared is the work, as a long-lived cluster would do it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time

from bench import cdc
from bench.homes import throwaway_lakehouse
from lakehouse.settings import REPO_ROOT

LIQUIDITY = REPO_ROOT / "pipelines" / "liquidity" / "dbt"
DAY = dt.date(2026, 11, 19)


def _dbt(project, *args: str) -> float:
    from dbt.cli.main import dbtRunner

    start = time.perf_counter()
    result = dbtRunner().invoke([*args, "--project-dir", str(project), "--profiles-dir", str(REPO_ROOT / "dbt"), "--quiet"])
    if not result.success:
        raise RuntimeError(f"dbt {args[0]} on {os.environ.get('LAKEHOUSE_ENGINE')} failed: {result.exception}")
    return time.perf_counter() - start


class _Engine:
    """LAKEHOUSE_ENGINE for the block; on Spark the server of this home runs (stopped after)."""

    def __init__(self, name: str):
        self.name = name
        self.startup_seconds = 0.0

    def __enter__(self):
        from lakehouse.engines import get_engine
        from lakehouse.settings import load_settings

        os.environ["LAKEHOUSE_ENGINE"] = self.name
        start = time.perf_counter()
        os.environ.update(get_engine(load_settings()).prepare())
        self.startup_seconds = time.perf_counter() - start
        return self

    def __exit__(self, *exc):
        if self.name == "spark":
            from lakehouse.spark import server

            server.stop()
        os.environ.pop("LAKEHOUSE_SPARK_ENDPOINT", None)
        os.environ["LAKEHOUSE_ENGINE"] = "duckdb"


def _liquidity(scale: float, engine: str) -> tuple[float, float]:
    from lakehouse.ingest import run_ingest

    with throwaway_lakehouse(), _Engine(engine) as running:
        for source in ("market_data", "positions_loans", "positions_deposits"):
            run_ingest("liquidity", source, DAY, {"callable": f"generator.py:{source}", "scale": scale,
                                                  "bad_row_rate": 0.01, "seed": 42})
        _dbt(LIQUIDITY, "deps")
        interval = json.dumps({"data_interval_start": str(DAY), "data_interval_end": str(DAY + dt.timedelta(days=1))})
        return _dbt(LIQUIDITY, "build", "--full-refresh", "--vars", interval), running.startup_seconds


def _cdc(orders: int, batch: int, engine: str) -> float:
    with throwaway_lakehouse(), _Engine(engine):
        _dbt(cdc.PROJECT, "deps")
        cdc._land(cdc._events(1, range(1, orders + 1), "I", "placed"))
        _dbt(cdc.PROJECT, "run")
        cdc._land(cdc._events(orders + 1, range(orders - batch + 1, orders + 1), "U", "paid"))
        return _dbt(cdc.PROJECT, "run")


def measure(scales: tuple[float, ...] = (1, 10, 50), orders: int = 1_000_000, batch: int = 100_000) -> dict:
    figures: dict = {"liquidity": {}, "spark_startup_seconds": 0.0}
    for scale in scales:
        duckdb_seconds, _ = _liquidity(scale, "duckdb")
        spark_seconds, startup = _liquidity(scale, "spark")
        figures["spark_startup_seconds"] = max(figures["spark_startup_seconds"], startup)
        figures["liquidity"][scale] = {"duckdb": duckdb_seconds, "spark": spark_seconds,
                                       "ratio": spark_seconds / duckdb_seconds}
        print(f"  (liquidity at scale {scale:g}: {figures['liquidity'][scale]})", file=sys.stderr, flush=True)
    duckdb_cdc, spark_cdc = _cdc(orders, batch, "duckdb"), _cdc(orders, batch, "spark")
    figures["cdc"] = {"orders": orders, "batch": batch, "duckdb": duckdb_cdc, "spark": spark_cdc,
                      "ratio": spark_cdc / duckdb_cdc}
    return figures


def report(figures: dict) -> None:
    for scale, row in figures["liquidity"].items():
        print(f"liquidity dbt build at scale {scale:g}: DuckDB {row['duckdb']:.1f} s, Spark local[2] {row['spark']:.1f} s "
              f"-> Spark takes {row['ratio']:.2f}x")
    row = figures["cdc"]
    print(f"CDC run, {row['batch']:,} events into {row['orders']:,} orders: DuckDB {row['duckdb']:.1f} s, Spark MERGE INTO "
          f"{row['spark']:.1f} s -> Spark takes {row['ratio']:.2f}x (the Thrift server's start, "
          f"{figures['spark_startup_seconds']:.1f} s, not included)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.engines")
    parser.add_argument("--scales", default="1,10,50")
    parser.add_argument("--cdc-orders", type=int, default=1_000_000)
    parser.add_argument("--cdc-batch", type=int, default=100_000)
    args = parser.parse_args()
    report(measure(tuple(float(s) for s in args.scales.split(",")), args.cdc_orders, args.cdc_batch))
