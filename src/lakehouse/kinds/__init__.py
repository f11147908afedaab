"""The registry of ingest and delivery kinds: a kind's name -> its class, imported only when asked for.

Adding a kind is one module with one class (see base.py for what it owns) and one line here.
"""

from __future__ import annotations

import importlib

from .base import DeliveryKind, IngestKind, InvalidOptions, Option, is_template

INGEST_KINDS = {
    # A callable returning the date's batch as a pyarrow.Table; the batch replaces that date.
    "generator": "lakehouse.kinds.generator:GeneratorIngest",
    # A PostgreSQL source's change events, exactly once (audit-log trigger or logical replication).
    "postgres_cdc": "lakehouse.kinds.postgres_cdc:PostgresCdcIngest",
    # One delimited text file (URL, local path or s3://), fetched to the raw zone, typed, bad lines quarantined.
    "delimited_file": "lakehouse.kinds.delimited_file:DelimitedFileIngest",
    # The files a table map assigns to one raw table, each loaded once (again when it changes).
    "table_map": "lakehouse.kinds.table_map:TableMapIngest",
    # A PySpark script of the pipeline, run with spark-submit (Airflow's Spark provider): big sources.
    "spark_job": "lakehouse.kinds.spark_job:SparkJobIngest",
    # An incremental copy of a SQL schema's tables (cursor, merge by key, deletes detected), one task per table.
    "sql_database": "lakehouse.kinds.sql_database:SqlDatabaseIngest",
    # A paginated JSON API's resources, incrementally with a cursor kept between runs, one task per resource.
    "rest_api": "lakehouse.kinds.rest_api:RestApiIngest",
}
DELIVERY_KINDS = {
    # A table copied to PostgreSQL, replacing its rows in one transaction (idempotent).
    "postgres": "lakehouse.kinds.postgres_delivery:PostgresDelivery",
    # A table synced by key into an operational PostgreSQL table: only changed rows written (reverse ETL).
    "postgres_sync": "lakehouse.kinds.postgres_sync:PostgresSyncDelivery",
}


def _class(registry: dict[str, str], name: str, sort: str):
    if name not in registry:
        raise InvalidOptions(f"unknown {sort} kind {name!r}; known kinds: {', '.join(registry)}")
    module, _, attribute = registry[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def ingest_kind(name: str) -> type[IngestKind]:
    return _class(INGEST_KINDS, name, "ingest")


def delivery_kind(name: str) -> type[DeliveryKind]:
    return _class(DELIVERY_KINDS, name, "delivery")


__all__ = ["DELIVERY_KINDS", "INGEST_KINDS", "DeliveryKind", "IngestKind", "InvalidOptions", "Option",
           "delivery_kind", "ingest_kind", "is_template"]
