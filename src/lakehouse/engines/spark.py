"""Spark as the engine: every session is a connection to the one long-lived Thrift server
(lakehouse.spark.server), whose default catalog is the lakehouse's Iceberg catalog, so ``raw.market_data``
in Spark SQL is the table PyIceberg writes and DuckDB reads."""

from __future__ import annotations

import re

import pyarrow as pa

from ..identifiers import InvalidIdentifier, split_table_name
from .base import Engine

# What a read-only session runs: one statement that starts as a query does and names no writing command.
# Spark's Thrift server cannot be made read-only per session, so this refuses conservatively.
_READ_ONLY_START = re.compile(r"^\s*(select|with|show|describe|desc|explain|values|table)\b", re.IGNORECASE)
_WRITING_WORDS = re.compile(
    r"\b(insert|merge|update|delete|create|drop|alter|truncate|call|set|reset|cache|uncache|refresh|msck|load|add|use)\b",
    re.IGNORECASE,
)
_LITERALS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|--[^\n]*|/\*.*?\*/", re.DOTALL)
READ_ONLY = "lakehouse query is read-only over the lakehouse tables"


def check_read_only(sql: str) -> None:
    from ..compute import ReadOnlyQueryError

    code = _LITERALS.sub(" ", sql).strip().rstrip(";")
    if ";" in code:
        raise ReadOnlyQueryError(f"{READ_ONLY}: one statement at a time on Spark")
    if not _READ_ONLY_START.match(code):
        keyword = (code.split(None, 1) or ["this"])[0].upper()
        raise ReadOnlyQueryError(f"{READ_ONLY}: {keyword} statements are refused (only SELECT, SHOW, DESCRIBE, EXPLAIN)")
    writing = _WRITING_WORDS.search(code)
    if writing:
        raise ReadOnlyQueryError(f"{READ_ONLY}: {writing.group(1).upper()} is refused")


class SparkSession:
    """A Thrift (PyHive) connection; rows come back as an Arrow table."""

    def __init__(self, connection, read_only: bool = False):
        self.connection = connection
        self.read_only = read_only

    def query(self, sql: str, params: list | None = None) -> pa.Table | None:
        if self.read_only:
            check_read_only(sql)
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql.strip().rstrip(";"), params or None)
            if not cursor.description:
                return None
            names = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
        finally:
            cursor.close()
        # By column, with the server's names: a query may repeat a column name.
        columns = [pa.array([row[i] for row in rows]) for i in range(len(names))]
        return pa.Table.from_arrays(columns, names=names)

    def execute(self, sql: str, params: list | None = None) -> None:
        if self.read_only:
            check_read_only(sql)
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql.strip().rstrip(";"), params or None)
        finally:
            cursor.close()

    def close(self) -> None:
        self.connection.close()


class SparkEngine(Engine):
    name = "spark"

    @property
    def dbt_target(self) -> str:
        """`spark` (through the Thrift server), or `spark_session` (Spark inside the dbt process) with
        LAKEHOUSE_SPARK_METHOD=session: one process, no server, a JVM per dbt invocation."""
        return "spark_session" if self.settings.spark_method == "session" else "spark"

    def prepare(self) -> dict[str, str]:
        """The Thrift server runs (started when it does not) and dbt's profile reads its endpoint; for
        the session target, the properties file a session in the dbt process reads (SPARK_CONF_DIR)."""
        from ..spark import server

        if self.settings.spark_method == "session":
            return server.session_environment(self.settings)
        return {"LAKEHOUSE_SPARK_ENDPOINT": server.ensure_running(self.settings).endpoint}

    def connect(self, read_only: bool = False) -> SparkSession:
        from ..spark import server

        return SparkSession(server.connect(self.settings), read_only=read_only)

    @classmethod
    def lineage_table(cls, namespace: str, name: str) -> str | None:
        """dbt-spark reports datasets as ``spark://host:port`` with ``<schema>.<table>`` (sometimes with the
        catalog in front): the schema is the Iceberg namespace."""
        if not namespace.startswith(("spark://", "hive://")):
            return None
        parts = [p.strip().strip("`") for p in name.split(".")]
        if len(parts) == 3:
            parts = parts[1:]
        if len(parts) != 2:
            return None
        try:
            return ".".join(split_table_name(".".join(parts)))
        except InvalidIdentifier:
            return None
