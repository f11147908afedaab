"""The SQL engine seam: what the platform asks of an engine, and the registry that picks one by setting.

``LAKEHOUSE_ENGINE`` names the engine (default duckdb). An engine is one class (base.py says what it
owes the platform; duckdb.py and spark.py); adding one is a module and a line here. An unknown name
fails when the platform starts (load_settings), never later inside dbt.
"""

from __future__ import annotations

import importlib

from .base import Engine, EngineError, Session

ENGINES = {
    # In-memory DuckDB over Iceberg metadata files: stateless compute, any number of parallel tasks.
    "duckdb": "lakehouse.engines.duckdb:DuckDBEngine",
    # Spark over the same catalog, through one long-lived Thrift server (lakehouse.spark.server).
    "spark": "lakehouse.engines.spark:SparkEngine",
}


def engine_class(name: str) -> type[Engine]:
    if name not in ENGINES:
        raise EngineError(f"LAKEHOUSE_ENGINE={name!r} is not supported; choose one of {', '.join(ENGINES)}")
    module, _, attribute = ENGINES[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def get_engine(settings) -> Engine:
    """The engine the settings name (``LAKEHOUSE_ENGINE``): ``get_engine(load_settings())``."""
    return engine_class(settings.engine)(settings)


__all__ = ["ENGINES", "Engine", "EngineError", "Session", "engine_class", "get_engine"]
