"""The ``postgres_cdc`` ingest kind: the pipeline task that lands a PostgreSQL source's new changes.

Which server: an Airflow connection (``conn_id``, default ``lakehouse_source``) when one is defined,
else ``LAKEHOUSE_SOURCE_DSN``, else the embedded PostgreSQL under the lakehouse home, which is started
(and given its schema and replication slot) when it is not running. Only on that embedded server,
and only when ``simulate_orders`` > 0, the task first drives that many new orders through the
generator: the demo's stand-in for a shop's traffic, so `make run` shows CDC on a fresh machine.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from ..sources import postgres_server
from ..sources.orders_schema import prepare_source
from . import MODES, CaptureError
from .capture import capture

log = logging.getLogger(__name__)
DEFAULT_CONN_ID = "lakehouse_source"


def _airflow_connection_dsn(conn_id: str) -> str | None:
    """The connection's URI when Airflow knows ``conn_id`` (environment or metadata DB), else None."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # running outside Airflow
        return None
    try:
        connection = BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - "not defined" has several exception types across Airflow versions
        return None
    return connection.get_uri().replace("postgres://", "postgresql://", 1)


def resolve_source(conn_id: str = DEFAULT_CONN_ID) -> tuple[str, bool]:
    """(DSN, embedded?): the user's server when configured, else the embedded one, started if needed."""
    dsn = _airflow_connection_dsn(conn_id) or os.environ.get(postgres_server.DSN_VARIABLE, "").strip()
    if dsn:
        return dsn, False
    if not postgres_server.status().running:
        postgres_server.start()
    return postgres_server.source_dsn(), True


def land_changes(pipeline_name: str, source, day: dt.date, options: dict[str, Any], run_id: str | None) -> dict[str, Any]:
    """The ``postgres_cdc`` ingest kind (lakehouse.pipeline.INGEST_KINDS)."""
    return capture_changes(source.table, options, day)


def capture_changes(table: str, options: dict[str, Any], batch_date: dt.date) -> dict[str, Any]:
    """Land the source's new change events in ``table``; see the module docstring for the source."""
    mode = options.get("mode", "audit_log")
    if mode not in MODES:
        raise CaptureError(f"postgres_cdc mode must be one of {', '.join(MODES)}, not {mode!r}")
    dsn, embedded = resolve_source(options.get("conn_id", DEFAULT_CONN_ID))
    prepare_source(dsn)
    simulated = int(options.get("simulate_orders") or 0)
    if simulated and embedded:
        from ..generators.orders import generate_orders

        # A new seed per day, so each simulated day has its own traffic.
        done = generate_orders(dsn, batches=1, orders_per_batch=simulated,
                               seed=int(options.get("seed", 42)) + batch_date.toordinal(), start_date=batch_date)
        log.info("simulated shop traffic on the embedded source: %s", done)
    result = capture(mode, dsn=dsn, table=table, page_size=int(options.get("page_size", 10000)))
    log.info("captured %s events from %s (%s mode)", result.events, postgres_server.mask_dsn(dsn), mode)
    return {"table": table, "events": result.events, "last_position": result.last_position, "snapshot_id": result.snapshot_id}
