"""What the platform asks of a SQL engine: a session over every Iceberg table, its dbt target, its lineage names.

Every write goes through PyIceberg (lakehouse.writes), never through an engine, so an engine only reads
and computes. The platform needs three things of it:

- ``connect()``: a SQL session that sees every Iceberg table of the catalog as ``<namespace>.<table>``,
  and runs a query to Arrow (``Session.query``);
- ``dbt_target``: the target of dbt/profiles.yml that runs the pipelines' dbt projects on it, and
  ``prepare()``: start what it needs (a server) and return the environment dbt's processes need;
- ``lineage_table(namespace, name)``: which lakehouse table a dataset that dbt (through this engine's
  adapter) reports to OpenLineage is, so every channel names a table the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:  # pragma: no cover - pyarrow is only needed once a query runs
    import pyarrow as pa


class EngineError(RuntimeError):
    pass


class Session(Protocol):
    def prepare(self) -> dict[str, str]:
        """Make the engine ready for dbt tasks (start what they talk to); the environment they need."""
        return {}

    def query(self, sql: str, params: list | None = None) -> pa.Table: ...

    def execute(self, sql: str, params: list | None = None) -> None: ...

    def close(self) -> None: ...


class Engine:
    name: ClassVar[str]
    dbt_target: ClassVar[str]

    def __init__(self, settings: Any):
        self.settings = settings

    def connect(self, read_only: bool = False) -> Session:
        """A session over every Iceberg table; ``read_only``: it cannot reach anything else (files, network)."""
        raise NotImplementedError

    def prepare(self) -> dict[str, str]:
        """Make the engine ready for dbt tasks (start what they talk to); the environment they need."""
        return {}

    def query(self, sql: str, params: list | None = None) -> pa.Table:
        """Run one query in a fresh session."""
        session = self.connect()
        try:
            return session.query(sql, params)
        finally:
            session.close()

    @classmethod
    def lineage_table(cls, namespace: str, name: str) -> str | None:
        """The lakehouse table ('namespace.table') a dataset reported through this engine is, or None."""
        raise NotImplementedError
