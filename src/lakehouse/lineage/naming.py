"""The identity of every dataset in the lineage: one function per kind of place, used by every channel.

An Iceberg table of the lakehouse is ONE OpenLineage dataset, whoever reports it:

    namespace  iceberg://<catalog name>       (LAKEHOUSE_CATALOG_NAME, default "lakehouse")
    name       <namespace>.<table>            e.g. raw.market_data, marts.mart_positions

The ingest task that writes raw.market_data, the dbt model that reads it (Cosmos reports DuckDB's
``duckdb://:memory:`` / ``memory.raw.market_data``, mapped here by :func:`from_dbt`), its tests, the
maintenance task and a delivery all emit exactly this (namespace, name). The Airflow Asset of the same
table, ``iceberg://<catalog name>/<namespace>/<table>``, is the same identity written as a URI
(:func:`table_asset_uri`). The catalog name is the only variable part: give each lakehouse whose lineage
goes to one shared backend (DataHub, Marquez) its own LAKEHOUSE_CATALOG_NAME.

Other places follow the OpenLineage naming conventions: a local file is ``file`` + its absolute path, an
object ``s3://<bucket>`` + its key, a URL ``https://<host>`` + its path, a PostgreSQL table
``postgres://<host>:<port>`` + ``<database>.<schema>.<table>``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..identifiers import InvalidIdentifier, split_table_name
from ..settings import Settings, load_settings

ICEBERG_SCHEME = "iceberg"
# The embedded PostgreSQL takes a free port at every start: a fixed name keeps its tables one dataset.
EMBEDDED_POSTGRES_NAMESPACE = "postgres://lakehouse-embedded"
# Datasets that are not data at rest: a Python callable that produces a source's batch.
GENERATOR_NAMESPACE = "generator"


def iceberg_namespace(settings: Settings | None = None) -> str:
    """The OpenLineage namespace of every table of this lakehouse's catalog."""
    if settings is None:
        return _namespace_of(os.environ.get("LAKEHOUSE_CATALOG_NAME"))
    return f"{ICEBERG_SCHEME}://{settings.catalog_name}"


@lru_cache(maxsize=8)
def _namespace_of(_catalog_name_variable: str | None) -> str:
    # Keyed by the one variable the namespace depends on: load_settings() resolves paths, too slow per dataset.
    return iceberg_namespace(load_settings())


def table_identity(full_name: str, settings: Settings | None = None) -> tuple[str, str]:
    """THE identity of an Iceberg table: (namespace, name) for 'namespace.table'. Validates the name."""
    namespace, table = split_table_name(full_name)
    return iceberg_namespace(settings), f"{namespace}.{table}"


def table_asset_uri(full_name: str, settings: Settings | None = None) -> str:
    """The same identity as an Airflow Asset URI: iceberg://<catalog>/<namespace>/<table>."""
    namespace, table = split_table_name(full_name)
    return f"{iceberg_namespace(settings)}/{namespace}/{table}"


def table_of(namespace: str, name: str, settings: Settings | None = None) -> str | None:
    """The lakehouse table 'namespace.table' a dataset identity denotes, or None for any other dataset."""
    if namespace != iceberg_namespace(settings):
        return None
    try:
        split_table_name(name)
    except InvalidIdentifier:
        return None
    return name


def from_dbt(namespace: str, name: str, settings: Settings | None = None) -> tuple[str, str] | None:
    """Map a dataset dbt reports through the engine (e.g. DuckDB's ``duckdb://:memory:`` +
    ``memory.raw.market_data``) onto the lakehouse identity; None for anything else (a CTE's name,
    another system's dataset). The engine knows its own names (lakehouse.engines)."""
    from ..engines import engine_class

    # Called per dataset and per column field: the engine class by the one variable naming it, not
    # load_settings() each time (as _namespace_of); lineage_table() needs no other setting.
    engine = settings.engine if settings else (os.environ.get("LAKEHOUSE_ENGINE", "").strip().lower() or "duckdb")
    table = engine_class(engine).lineage_table(namespace, name)
    return table_identity(table, settings) if table else None


def file_identity(location: str | Path) -> tuple[str, str]:
    """A file, object or URL: local paths and file:// -> ('file', absolute path); s3://b/k -> ('s3://b', 'k');
    http(s)://host/p -> ('https://host', '/p'). Credentials in a URL never reach the identity."""
    text = str(location)
    parts = urlsplit(text)
    if parts.scheme in ("", "file") or len(parts.scheme) == 1:  # a path (a drive letter is not a scheme)
        path = unquote(parts.path) if parts.scheme == "file" else text
        return "file", str(Path(path).expanduser().absolute())
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.scheme in ("s3", "s3a", "gs", "gcs", "abfs", "abfss"):
        return f"{parts.scheme}://{host}", parts.path.lstrip("/")
    name = parts.path or "/"
    return f"{parts.scheme}://{host}", name + (f"?{parts.query}" if parts.query else "")


def postgres_identity(dsn: str | None, schema: str, table: str, *, embedded: bool = False) -> tuple[str, str]:
    """A PostgreSQL table: ('postgres://host:port', 'database.schema.table') from a DSN (password unused);
    the embedded server of the lakehouse has a fixed namespace, since its port changes at each start."""
    parts: dict[str, str] = {}
    if dsn:
        try:
            from psycopg2.extensions import parse_dsn

            parts = parse_dsn(dsn)
        except Exception:  # noqa: BLE001 - not a DSN psycopg2 reads: fall back to the defaults
            parts = {}
    database = parts.get("dbname") or "postgres"
    if embedded or not dsn:
        return EMBEDDED_POSTGRES_NAMESPACE, f"{database}.{schema}.{table}"
    host = parts.get("host") or "localhost"
    if "," in host:  # several hosts: the first one names the server
        host = host.split(",")[0]
    return f"postgres://{host}:{parts.get('port') or 5432}", f"{database}.{schema}.{table}"


def generator_identity(callable_path: str) -> tuple[str, str]:
    """A Python generator that produces a source's batch ('module:function'): a dataset of its own."""
    return GENERATOR_NAMESPACE, str(callable_path)
