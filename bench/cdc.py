"""CDC merge speed: events applied to marts.orders per second, and incremental against full rebuild.

The landing table is filled directly with synthetic change events shaped like captured ones (the
same columns and JSON as the audit-log trigger writes), so a 1M-row orders table is set up in
seconds rather than by replaying a million statements through PostgreSQL; capture throughput has
its own figures (tests/test_cdc_capture.py, README). What is timed is `dbt run` of the orders_cdc
project (staging, flattening, the current-state merge and the SCD2 history) with dbt's in-process
runner, warm, as the pipeline's Airflow tasks run it; the update batches change the most recent
orders, as an order's life (paid, packed, shipped) does.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pyarrow as pa

from bench.homes import throwaway_lakehouse
from lakehouse.settings import REPO_ROOT

PROJECT = REPO_ROOT / "pipelines" / "orders_cdc" / "dbt"
BASE = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
STATUSES = ("placed", "paid", "packed", "shipped", "delivered")


def _events(first_event: int, order_ids: range, operation: str, status: str) -> pa.Table:
    from lakehouse.cdc.checkpoint import LANDING_SCHEMA

    ids = list(order_ids)
    positions = [f"{first_event + i:020d}.{first_event + i:020d}" for i in range(len(ids))]
    stamp = BASE + dt.timedelta(seconds=first_event)
    iso = stamp.isoformat()
    raw = [
        json.dumps({
            "order_id": order_id, "customer_id": order_id % 5000, "customer_name": f"Customer {order_id % 5000}",
            "customer_email": f"c{order_id % 5000}@example.com", "status": status, "quantity": 1 + order_id % 4,
            "unit_price": 19.99, "amount": 19.99 * (1 + order_id % 4), "tax_amount": 1.4, "currency": "USD",
            "shipping_country": "US", "created_at": iso, "updated_at": iso,
        })
        for order_id in ids
    ]
    n = len(ids)
    return pa.table({
        "event_position": positions,
        "audit_event_id": pa.array(range(first_event, first_event + n), pa.int64()),
        "audit_operation": [operation] * n,
        "audit_timestamp": pa.array([stamp] * n, pa.timestamp("us", tz="UTC")),
        "tbl_schema": ["public"] * n,
        "tbl_name": ["orders"] * n,
        "raw_data": raw,
        "capture_mode": ["audit_log"] * n,
        "ingested_at": pa.array([dt.datetime.now(dt.UTC)] * n, pa.timestamp("us", tz="UTC")),
    }, schema=LANDING_SCHEMA)


def _land(data: pa.Table) -> None:
    from lakehouse.writes import write

    write("raw.audit_log_dml", data, "append")


def _dbt(*args: str) -> float:
    from dbt.cli.main import dbtRunner

    start = time.perf_counter()
    result = dbtRunner().invoke([*args, "--project-dir", str(PROJECT), "--profiles-dir", str(REPO_ROOT / "dbt"), "--quiet"])
    if not result.success:
        raise RuntimeError(f"dbt {args[0]} failed: {result.exception}")
    return time.perf_counter() - start


def measure(orders: int = 1_000_000, batches: tuple[int, ...] = (10_000, 100_000)) -> dict:
    with throwaway_lakehouse():
        _dbt("deps")
        _land(_events(1, range(1, orders + 1), "I", "placed"))
        initial = _dbt("run")
        next_event = orders + 1
        figures = {"orders": orders, "initial_build_seconds": initial, "batches": {}}
        for size, status in zip(batches, STATUSES[1:]):
            _land(_events(next_event, range(orders - size + 1, orders + 1), "U", status))
            next_event += size
            seconds = _dbt("run")
            figures["batches"][size] = {"seconds": seconds, "events_per_second": size / seconds}
        # One percent of the table changes; the same state is then rebuilt from every event.
        one_percent = orders // 100
        _land(_events(next_event, range(orders - one_percent + 1, orders + 1), "U", "delivered"))
        incremental = _dbt("run")
        full = _dbt("run", "--full-refresh")
        figures.update(incremental_seconds=incremental, full_rebuild_seconds=full, ratio=incremental / full)
        return figures
