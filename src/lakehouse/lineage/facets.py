"""OpenLineage datasets of the lakehouse, with their facets: one place that turns a table name into what
every task emits (see naming.py for the identity).

- schema: the Iceberg table's current schema (names, Iceberg types, docs, nested fields of structs),
- version: the snapshot id (on outputs: the snapshot the task committed),
- catalog: framework iceberg, the catalog's name and type, the warehouse location,
- symlinks: the table's physical location (how a Spark job that reads files by path names it),
- outputStatistics: rows written, when the task knows them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    catalog_dataset,
    column_lineage_dataset,
    dataset_version_dataset,
    datasource_dataset,
    output_statistics_output_dataset,
    schema_dataset,
    symlinks_dataset,
)

from ..settings import load_settings
from . import naming

log = logging.getLogger(__name__)


def _fields(struct) -> list[schema_dataset.SchemaDatasetFacetFields]:
    from pyiceberg.types import ListType, MapType, StructType

    fields = []
    for position, field in enumerate(struct.fields, start=1):
        kind = field.field_type
        nested = None
        if isinstance(kind, StructType):
            nested = _fields(kind)
        elif isinstance(kind, ListType) and isinstance(kind.element_type, StructType):
            nested = _fields(kind.element_type)
        elif isinstance(kind, MapType) and isinstance(kind.value_type, StructType):
            nested = _fields(kind.value_type)
        fields.append(schema_dataset.SchemaDatasetFacetFields(
            name=field.name, type=str(kind), description=field.doc or None, ordinal_position=position,
            fields=nested or [],
        ))
    return fields


def schema_facet(table) -> schema_dataset.SchemaDatasetFacet:
    """The schema facet of a PyIceberg table: exactly its columns, in order, with Iceberg types."""
    return schema_dataset.SchemaDatasetFacet(fields=_fields(table.schema()))


def _catalog_type(uri: str) -> str:
    return "rest" if uri.startswith(("http://", "https://")) else "sql"


@lru_cache(maxsize=8)
def _catalog_facets(_variables: tuple) -> dict[str, Any]:
    """The facets every table of the catalog shares; keyed by the LAKEHOUSE_* variables they come from."""
    settings = load_settings()
    namespace = naming.iceberg_namespace(settings)
    return {
        "dataSource": datasource_dataset.DatasourceDatasetFacet(name=namespace, uri=namespace),
        "catalog": catalog_dataset.CatalogDatasetFacet(
            framework="iceberg", type=_catalog_type(settings.catalog_uri), name=settings.catalog_name,
            warehouseUri=settings.warehouse, source="pyiceberg",
        ),
    }


# Facets read from a table's metadata, by table: (metadata location they were read from, facets).
_table_cache: dict[str, tuple[str, dict[str, Any]]] = {}


def _facets_of(table) -> dict[str, Any]:
    facets: dict[str, Any] = {"schema": schema_facet(table)}
    snapshot = table.current_snapshot()
    if snapshot is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(snapshot.snapshot_id))
    location_namespace, location_name = naming.file_identity(table.location())
    facets["symlinks"] = symlinks_dataset.SymlinksDatasetFacet(
        identifiers=[symlinks_dataset.Identifier(namespace=location_namespace, name=location_name, type="LOCATION")]
    )
    return facets


def _metadata_facets(full_name: str) -> dict[str, Any]:
    """The table's schema, version and location facets; {} when it does not exist. A SQL catalog answers
    "which metadata file is current" for every table in one query, so a table read before and unchanged
    since is not loaded again (a dbt task's inputs, maintenance's tables)."""
    from pyiceberg.catalog.sql import SqlCatalog

    from ..catalog import current_metadata_locations, get_catalog, load_table

    catalog = get_catalog()
    if isinstance(catalog, SqlCatalog):
        location = current_metadata_locations(catalog).get(full_name)
        if location is None:
            return {}
        cached = _table_cache.get(full_name)
        if cached is not None and cached[0] == location:
            return cached[1]
    table = load_table(full_name, catalog)
    if table is None:
        return {}
    facets = _facets_of(table)
    _table_cache[full_name] = (table.metadata_location, facets)
    return facets


def table_facets(full_name: str, *, table: Any = None, with_schema: bool = True) -> dict[str, Any]:
    """Dataset facets of a lakehouse table; only the data-source and catalog facets when it does not exist
    (yet) or ``with_schema`` is False (a START event: the identity suffices, and loading costs a catalog read)."""
    variables = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("LAKEHOUSE_")))
    facets = dict(_catalog_facets(variables))
    if not with_schema:
        return facets
    try:
        facets.update(_facets_of(table) if table is not None else _metadata_facets(full_name))
    except Exception:  # noqa: BLE001 - lineage never fails a task: the identity is still right
        log.debug("could not read %s for its lineage facets", full_name, exc_info=True)
    return facets


# What an input carries: the version read. Its schema, catalog and location are on the events that write it;
# repeating them on every reader's events would multiply the events' size (and the provider's redaction work).
INPUT_FACETS = ("version",)


def table_input(full_name: str, *, with_schema: bool = True, facets: dict | None = None,
                input_facets: dict | None = None) -> InputDataset:
    namespace, name = naming.table_identity(full_name)
    own = table_facets(full_name, with_schema=with_schema)
    merged = {**(facets or {}), **{k: v for k, v in own.items() if k in INPUT_FACETS}}
    return InputDataset(namespace=namespace, name=name, facets=merged, inputFacets=input_facets or {})


def table_schemas(full_names) -> dict[str, list[str]]:
    """{table: its column names} of the tables that exist (from the same cache as the facets)."""
    schemas = {}
    for full_name in full_names:
        schema = table_facets(full_name).get("schema")
        if schema is not None and schema.fields:
            schemas[full_name] = [f.name for f in schema.fields]
    return schemas


def table_output(full_name: str, *, with_schema: bool = True, rows: int | None = None, facets: dict | None = None,
                 output_facets: dict | None = None) -> OutputDataset:
    namespace, name = naming.table_identity(full_name)
    merged = {**(facets or {}), **table_facets(full_name, with_schema=with_schema)}
    outputs = dict(output_facets or {})
    if rows is not None:
        outputs["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=int(rows))
    return OutputDataset(namespace=namespace, name=name, facets=merged, outputFacets=outputs)


def identity_column_lineage(source: tuple[str, str], columns: Iterable[str],
                            kind: str = "DIRECT", subtype: str = "IDENTITY") -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """Each column copied as it is from the same-named column of ``source`` (a delivery, a rewrite)."""
    namespace, name = source
    transformation = column_lineage_dataset.Transformation(type=kind, subtype=subtype)
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields={
        column: column_lineage_dataset.Fields(inputFields=[column_lineage_dataset.InputField(
            namespace=namespace, name=name, field=column, transformations=[transformation])])
        for column in columns
    })


def schema_columns(facets: dict) -> list[str]:
    schema = facets.get("schema")
    return [f.name for f in (schema.fields or [])] if schema is not None else []
