"""The Iceberg catalog: one PyIceberg catalog for every read and write of the platform.

Embedded default: a SQL catalog on SQLite with a file:// warehouse. A shared catalog (JDBC database,
REST) and an s3:// warehouse are chosen by settings only.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.catalog.sql import IcebergTables, SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.table import Table
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from . import objectstore
from .identifiers import NAMESPACES, split_table_name
from .settings import Settings, load_settings


@lru_cache(maxsize=8)
def _catalog_for(name: str, uri: str, warehouse: str, s3: tuple[tuple[str, str], ...] = ()) -> Catalog:
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if warehouse.startswith("file://"):
        Path(urlparse(warehouse).path).mkdir(parents=True, exist_ok=True)
    if warehouse.startswith("s3://"):
        objectstore.ensure_bucket(warehouse, dict(s3))
    # S3 endpoint, region and keys as FileIO properties: data and metadata on s3:// are read and written
    # with them (ignored for file://). Part of the cache key, so other keys or another endpoint get a new catalog.
    properties = {**dict(s3), "type": "sql", "uri": uri, "warehouse": warehouse}
    if uri.startswith("http://") or uri.startswith("https://"):
        properties["type"] = "rest"
    # Parallel task processes on a fresh home all find the SQL catalog's tables or a namespace missing
    # and create them at once: the losers' "already exists" errors mean the work is done; look again.
    for attempt in range(5):
        try:
            catalog = load_catalog(name, **properties)
            for namespace in NAMESPACES:
                try:
                    catalog.create_namespace(namespace)
                except NamespaceAlreadyExistsError:
                    pass
            return catalog
        except (OperationalError, IntegrityError) as error:
            if "already exists" not in str(error) and "UNIQUE constraint" not in str(error) or attempt == 4:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def get_catalog(settings: Settings | None = None) -> Catalog:
    settings = settings or load_settings()
    s3 = tuple(sorted(objectstore.s3_options(settings).items()))
    return _catalog_for(settings.catalog_name, settings.catalog_uri, settings.warehouse, s3)


def load_table(full_name: str, catalog: Catalog | None = None) -> Table | None:
    """The Iceberg table 'namespace.table', or None when it does not exist yet."""
    namespace, table = split_table_name(full_name)
    catalog = catalog or get_catalog()
    try:
        return catalog.load_table((namespace, table))
    except NoSuchTableError:
        return None


def list_tables(catalog: Catalog | None = None) -> list[str]:
    """Every table of every namespace, as 'namespace.table', sorted."""
    catalog = catalog or get_catalog()
    names = []
    for namespace in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            names.append(".".join(identifier))
    return sorted(names)


def current_metadata_locations(catalog: Catalog | None = None) -> dict[str, str]:
    """{'namespace.table': current metadata file} for every table, in one catalog round trip.

    A SQL catalog keeps the pointer in its iceberg_tables row, so one query answers for all tables;
    other catalogs load each table.
    """
    catalog = catalog or get_catalog()
    if isinstance(catalog, SqlCatalog):
        with Session(catalog.engine) as session:
            rows = session.execute(
                select(IcebergTables.table_namespace, IcebergTables.table_name, IcebergTables.metadata_location).where(
                    IcebergTables.catalog_name == catalog.name
                )
            )
            return {f"{namespace}.{name}": location for namespace, name, location in rows if location}
    locations = {}
    for full_name in list_tables(catalog):
        table = load_table(full_name, catalog)
        if table is not None:
            locations[full_name] = table.metadata_location
    return locations
