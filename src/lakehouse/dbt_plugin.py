"""The dbt-duckdb plugin that makes every dbt model an Iceberg table.

On connect it loads DuckDB's extensions (offline, from the PyPI packages) and registers every Iceberg
table as a view ``<namespace>.<table>``, so ``source()`` and ``ref()`` resolve from the catalog. The
shared dbt package's materializations compute a model into a scratch DuckDB table and call
``adapter.store_relation('lakehouse', ...)``, which lands here: one atomic PyIceberg commit, then the
view is re-pointed at the new snapshot for the models that follow in the same invocation.

Write-audit-publish (lakehouse.release): with LAKEHOUSE_WRITE_BRANCH set (the DAG sets it on the dbt
tasks of a `publish: wap` pipeline; every other pipeline's dbt tasks set it to "main", no branch), every
commit goes to that Iceberg branch and every view of a table that has the branch reads its head, so the
run's models and tests see the run's results while main, what everyone else reads, is left as it was.
This plugin is the only reader of the setting.

A dbt Python model arrives here as code (``python_job``: the model plus dbt-duckdb's ``materialize``):
dbt runs Python only from the materialization it called itself, and with every project routing its
materializations to the shared package that is a one-line wrapper, so the plugin runs the model
(dbt-duckdb's own ``run_python_job``), which fills the scratch table, and commits it like SQL's.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from dbt.adapters.duckdb.environments import Environment
from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.duckdb.utils import TargetConfig
from duckdb import DuckDBPyConnection

from . import compute, writes
from .catalog import get_catalog
from .settings import load_settings


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self._conn: DuckDBPyConnection | None = None
        self._registered: dict[str, str] = {}

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        # Profile `settings:` are applied too late to load extensions: do it here.
        compute.load_extensions(conn)
        self._storage = _storage_signature()
        self._branch = load_settings().write_branch
        self._registered = compute.register_catalog(conn, get_catalog(), branch=self._branch)
        self._conn = conn

    def configure_cursor(self, cursor) -> None:
        # dbt-duckdb keeps one in-memory DuckDB per process across dbt invocations (Cosmos runs
        # every task of a dag.test() in one process): re-point the views other writers moved, and
        # renew the S3 secret if the storage settings changed since the connection was made.
        storage = _storage_signature()
        if storage != getattr(self, "_storage", None):
            compute.configure_s3(cursor)
            self._storage = storage
        branch = load_settings().write_branch
        if branch != getattr(self, "_branch", ""):
            # Another pipeline's task (or another run's branch) in the same process: every view again.
            self._registered, self._branch = {}, branch
        self._registered = compute.register_catalog(cursor, get_catalog(), self._registered, branch=branch)

    def store(self, target_config: TargetConfig) -> None:
        if self._conn is None:
            raise RuntimeError("the lakehouse plugin stores a model only after its connection is configured")
        options = dict(target_config.config or {})
        full_name = target_config.location.path
        scratch = target_config.relation
        branch = load_settings().write_branch or None
        cursor = self._conn.cursor()
        try:
            if options.get("python_job"):
                self._run_python_model(cursor, scratch.identifier, options["python_job"])
            data = cursor.execute(f"select * from {scratch}").to_arrow_table()
            # Drop first: a seed's scratch table has the name its view is about to take.
            cursor.execute(f"drop table if exists {scratch}")
            table = writes.write(
                full_name,
                data,
                options.get("strategy", "overwrite"),
                unique_key=_as_list(options.get("unique_key")),
                partition_by=_as_list(options.get("partition_by")),
                tombstone_column=options.get("tombstone_column") or None,
                snapshot_properties={
                    "dbt.node": options.get("node", ""),
                    "dbt.invocation_id": options.get("invocation_id", ""),
                },
                branch=branch,
            )
            compute.register_table(cursor, full_name, table, branch)
            self._registered[full_name] = table.metadata_location
        finally:
            cursor.close()

    def _run_python_model(self, cursor: DuckDBPyConnection, identifier: str, code: str) -> None:
        """``model(dbt, session)`` with ``session`` this cursor; ``dbt.ref()`` / ``dbt.source()`` give
        DuckDB relations over the registered Iceberg views. Its result becomes the scratch table;
        an exception comes back as dbt's "Python model failed" error with the model's traceback."""

        def load_relation(name: str):
            return cursor.query(f"select * from {name}")

        Environment.run_python_job(cursor, load_relation, identifier, code, self.creds)


def _storage_signature() -> tuple:
    """What the S3 secret is made from (the secret key by its digest, not kept in memory twice)."""
    settings = load_settings()
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    return (settings.warehouse, settings.raw_zone, settings.s3_endpoint, settings.s3_region,
            os.environ.get("AWS_ACCESS_KEY_ID", ""), hashlib.sha256(secret.encode()).hexdigest())


def _as_list(value: Any) -> list[str] | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]
