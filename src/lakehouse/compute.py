"""DuckDB as stateless compute over Iceberg.

Every connection is in-memory and sees each Iceberg table as a view ``<namespace>.<table>`` over
``iceberg_scan(<current metadata file>)``. Nothing is kept in a .duckdb file, so any number of tasks
can read and compute in parallel without DuckDB's one-writer file lock; every write goes through
PyIceberg (see writes.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import urlparse

import duckdb
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from .catalog import current_metadata_locations, get_catalog
from .identifiers import NAMESPACES, quote, split_table_name
from .objectstore import s3_options
from .settings import Settings, load_settings

DUCKDB_VERSION = "1.5.5"
# avro must be loaded before iceberg: the iceberg extension reads manifests through it.
_EXTENSIONS = ("avro", "iceberg", "httpfs")


def _extension_path(name: str) -> Path:
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"duckdb_extension_{name}=={DUCKDB_VERSION} is not installed; run `make install` "
            "(DuckDB extensions are loaded from PyPI packages because INSTALL needs the network)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "extensions" / f"v{DUCKDB_VERSION}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: duckdb must be exactly {DUCKDB_VERSION} for its extensions to load")
    return path


def load_extensions(con: duckdb.DuckDBPyConnection, settings: Settings | None = None) -> None:
    """Load DuckDB's extensions and, when S3 is configured, the secret that reads s3:// with it."""
    for name in _EXTENSIONS:
        con.execute(f"LOAD '{_extension_path(name)}'")
    configure_s3(con, settings)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def configure_s3(con: duckdb.DuckDBPyConnection, settings: Settings | None = None) -> bool:
    """A temporary (in-memory, never persisted) S3 secret from settings and the AWS_* keys.

    Made when an endpoint or keys are set, or the warehouse or raw zone is on s3://. Returns whether
    it was made. The statement holds the secret key, so a failure is reported without it.
    """
    settings = settings or load_settings()
    options = s3_options(settings)
    on_s3 = any(str(uri).startswith("s3://") for uri in (settings.warehouse, settings.raw_zone))
    if not (on_s3 or "s3.endpoint" in options or "s3.access-key-id" in options):
        return False
    parts = ["TYPE s3", f"REGION {_literal(settings.s3_region)}"]
    if "s3.access-key-id" in options:
        parts.append(f"KEY_ID {_literal(options['s3.access-key-id'])}")
    if "s3.secret-access-key" in options:
        parts.append(f"SECRET {_literal(options['s3.secret-access-key'])}")
    if settings.s3_endpoint:
        endpoint = urlparse(settings.s3_endpoint)
        # DuckDB wants host:port; an endpoint other than AWS (MinIO, SeaweedFS) wants path-style URLs.
        parts += [f"ENDPOINT {_literal(endpoint.netloc)}", "URL_STYLE 'path'",
                  f"USE_SSL {'true' if endpoint.scheme == 'https' else 'false'}"]
    try:
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET lakehouse_s3 ({', '.join(parts)})")
    except duckdb.Error as error:
        message = str(error)
        for value in (options.get("s3.secret-access-key"), options.get("s3.access-key-id")):
            if value:
                message = message.replace(value, "***")
        raise RuntimeError(f"could not configure DuckDB for S3: {message}") from None
    return True


def _create_view(con: duckdb.DuckDBPyConnection, full_name: str, metadata_location: str) -> None:
    namespace, name = split_table_name(full_name)
    location = metadata_location.replace("'", "''")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(namespace)}")
    con.execute(
        f"CREATE OR REPLACE VIEW {quote(namespace)}.{quote(name)} AS SELECT * FROM iceberg_scan('{location}')"
    )
    # The comment marks the view as an Iceberg table for dbt's relation cache (see the dbt package).
    con.execute(f"COMMENT ON VIEW {quote(namespace)}.{quote(name)} IS 'iceberg'")


def register_table(con: duckdb.DuckDBPyConnection, full_name: str, table: Table) -> None:
    """(Re)point the view <namespace>.<table> at the table's current metadata file."""
    _create_view(con, full_name, table.metadata_location)


def register_catalog(
    con: duckdb.DuckDBPyConnection, catalog: Catalog | None = None, known: dict[str, str] | None = None
) -> dict[str, str]:
    """Point a view at every table's current snapshot; returns {table: metadata file} registered.

    With ``known`` (what this connection registered before), only tables whose metadata changed
    since are re-pointed, so refreshing a long-lived connection costs one catalog query.
    """
    catalog = catalog or get_catalog()
    known = known if known is not None else {}
    if not known:
        for namespace in NAMESPACES:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(namespace)}")
    locations = current_metadata_locations(catalog)
    for full_name in set(known) - set(locations):
        # Dropped, or a connection that outlived its catalog (another LAKEHOUSE_HOME).
        namespace, name = split_table_name(full_name)
        con.execute(f"DROP VIEW IF EXISTS {quote(namespace)}.{quote(name)}")
    for full_name, location in locations.items():
        if known.get(full_name) != location:
            _create_view(con, full_name, location)
    return locations


def connect(catalog: Catalog | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB with the extensions loaded and every Iceberg table visible."""
    con = duckdb.connect(":memory:")
    load_extensions(con)
    register_catalog(con, catalog)
    return con
