"""DuckDB as the engine: an in-memory database per session, every Iceberg table a view over its current
metadata file (lakehouse.compute), so parallel tasks never share a DuckDB file or its lock."""

from __future__ import annotations

import re

import pyarrow as pa

from ..identifiers import InvalidIdentifier, split_table_name
from .base import Engine

_QUOTED = re.compile(r'^"(.*)"$')


class DuckDBSession:
    def __init__(self, connection, read_only: bool = False):
        self.connection = connection
        self.read_only = read_only

    def query(self, sql: str, params: list | None = None) -> pa.Table | None:
        """The rows of the (last) statement; a read-only session runs SELECTs only (compute.check_read_only)."""
        if self.read_only:
            from .. import compute

            return compute.run_read_only(self.connection, sql, params)
        return self.connection.execute(sql, params or []).to_arrow_table()

    def execute(self, sql: str, params: list | None = None) -> None:
        self.connection.execute(sql, params or [])

    def close(self) -> None:
        self.connection.close()


class DuckDBEngine(Engine):
    name = "duckdb"
    dbt_target = "duckdb"

    def connect(self, read_only: bool = False) -> DuckDBSession:
        from .. import compute

        if read_only:
            return DuckDBSession(compute.connect_read_only(settings=self.settings), read_only=True)
        return DuckDBSession(compute.connect())

    @classmethod
    def lineage_table(cls, namespace: str, name: str) -> str | None:
        """Every dbt invocation runs an in-memory DuckDB (``duckdb://:memory:``) whose database is ``memory``
        and where each Iceberg table is the view ``<namespace>.<table>``: ``memory.raw.market_data`` (or
        ``raw.market_data``, or quoted parts, as column lineage spells it) is raw.market_data."""
        if not namespace.startswith("duckdb://"):
            return None
        parts = [_unquote(p) for p in name.split(".")]
        if len(parts) == 3 and parts[0] == "memory":
            parts = parts[1:]
        if len(parts) != 2:
            return None
        try:
            return ".".join(split_table_name(".".join(parts)))
        except InvalidIdentifier:
            return None


def _unquote(part: str) -> str:
    match = _QUOTED.match(part.strip())
    return match.group(1) if match else part.strip()
