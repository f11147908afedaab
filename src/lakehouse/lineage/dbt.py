"""OpenLineage for the Cosmos dbt tasks: Cosmos's own lineage, mapped onto the lakehouse identity.

Cosmos's local operators parse dbt's artifacts after each command with openlineage-integration-common
(``get_openlineage_facets_on_complete``): datasets named as DuckDB sees them (``duckdb://:memory:``,
``memory.<schema>.<table>``), schema and documentation from the dbt YAML, test assertions, the compiled
SQL, and column lineage where openlineage-sql can follow the SQL. This extractor, registered with the
provider for Cosmos's local operator classes (``[openlineage] extractors``, set by
lineage.config.lineage_environment), keeps all of it and fixes what a lakehouse needs:

- every dataset gets the one identity of naming.py (``iceberg://<catalog>`` + ``<schema>.<table>``),
- ephemeral models (inlined CTEs, never stored) are replaced by what they read, so a staging model's
  input is the raw table the ingest task wrote, not ``staging.base_*``,
- the datasets dbt does not report are added from the manifest: the START event's inputs and outputs,
  a seed's CSV file and table, a source-freshness check's table (with its result as an assertion), the
  tables a multi-parent test reads,
- the schema facet is the Iceberg table's (names and types as committed), keeping dbt's descriptions,
- column lineage keeps only references to real tables (openlineage-sql also names CTEs), and, where the
  SQL allows, is completed by lakehouse.lineage.columns from the compiled SQL and the Iceberg schemas.

Which dbt node a task runs is set on the task by the DAG factory (``lakehouse_dbt_node``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from airflow.providers.openlineage.extractors import OperatorLineage
from airflow.providers.openlineage.extractors.base import BaseExtractor
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import column_lineage_dataset, data_quality_assertions_dataset, schema_dataset

from ..dbt_artifacts import load_manifest, node_table
from ..dbt_artifacts import node as find_node
from . import facets as F
from . import naming

log = logging.getLogger(__name__)

NODE_ATTRIBUTE = "lakehouse_dbt_node"
COSMOS_LOCAL_OPERATORS = (
    "DbtRunLocalOperator", "DbtTestLocalOperator", "DbtSeedLocalOperator", "DbtSnapshotLocalOperator",
    "DbtSourceLocalOperator", "DbtBuildLocalOperator",
)
_WRITES = ("DbtRunLocalOperator", "DbtSnapshotLocalOperator", "DbtBuildLocalOperator")
def is_ephemeral(node: dict) -> bool:
    return node.get("resource_type") == "model" and (node.get("config") or {}).get("materialized") == "ephemeral"


def stored_tables(manifest: dict, unique_id: str, _seen: set | None = None) -> list[str]:
    """The tables a node stands for: itself, or through an ephemeral model the tables it reads."""
    seen = _seen if _seen is not None else set()
    if unique_id in seen:
        return []
    seen.add(unique_id)
    node = find_node(manifest, unique_id)
    if node is None:
        return []
    if is_ephemeral(node):
        return [t for parent in (node.get("depends_on") or {}).get("nodes") or [] for t in stored_tables(manifest, parent, seen)]
    if node.get("resource_type") in ("model", "seed", "snapshot", "source"):
        table = node_table(node)
        return [table] if table else []
    return []


def _parents(manifest: dict, node: dict) -> list[str]:
    tables: list[str] = []
    for parent in (node.get("depends_on") or {}).get("nodes") or []:
        for table in stored_tables(manifest, parent):
            if table not in tables:
                tables.append(table)
    return tables


def static_datasets(
    task_type: str, manifest: dict, unique_id: str | None, project_dir: str | None
) -> tuple[list[str], list[str], list]:
    """(input tables, output tables, other input datasets) of a Cosmos task from the manifest alone."""
    node = find_node(manifest, unique_id) if unique_id else None
    if node is None:
        return [], [], []
    kind = node.get("resource_type")
    if task_type in _WRITES and kind in ("model", "snapshot", "seed"):
        if is_ephemeral(node):
            return [], [], []
        return _parents(manifest, node), [t for t in [node_table(node)] if t], []
    if task_type == "DbtSeedLocalOperator" and kind == "seed":
        extra = []
        if project_dir and node.get("original_file_path"):
            namespace, name = naming.file_identity(Path(project_dir) / node["original_file_path"])
            extra.append(InputDataset(namespace=namespace, name=name))
        return [], [t for t in [node_table(node)] if t], extra
    if task_type == "DbtSourceLocalOperator":
        return stored_tables(manifest, unique_id), [], []
    if task_type == "DbtTestLocalOperator":
        if kind == "test":
            return _parents(manifest, node), [], []
        return stored_tables(manifest, unique_id), [], []
    return [], [], []


def _map_column_lineage(facet: Any, ephemeral: set[str]) -> Any | None:
    """openlineage-sql's column lineage with every input field on a real table, in the lakehouse identity."""
    fields = {}
    for column, spec in (getattr(facet, "fields", None) or {}).items():
        inputs = []
        for field in spec.inputFields or []:
            mapped = naming.from_dbt(field.namespace, field.name)
            if mapped is None or mapped[1] in ephemeral:
                continue  # a CTE, an unqualified name or an inlined ephemeral model: not a table
            inputs.append(column_lineage_dataset.InputField(namespace=mapped[0], name=mapped[1], field=field.field,
                                                            transformations=field.transformations or []))
        if inputs:
            fields[column] = column_lineage_dataset.Fields(inputFields=inputs,
                                                           transformationDescription=spec.transformationDescription,
                                                           transformationType=spec.transformationType)
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields) if fields else None


def _with_dbt_descriptions(ours: Any, theirs: Any) -> Any:
    """The Iceberg schema facet, each column keeping the description dbt documents for it."""
    if ours is None:
        return theirs
    described = {f.name: f.description for f in (getattr(theirs, "fields", None) or []) if f.description}
    return schema_dataset.SchemaDatasetFacet(fields=[
        schema_dataset.SchemaDatasetFacetFields(name=f.name, type=f.type, description=f.description or described.get(f.name),
                                                ordinal_position=f.ordinal_position, fields=f.fields)
        for f in ours.fields or []
    ])


def _merge(ours: InputDataset | OutputDataset, theirs: Any | None, ephemeral: set[str]):
    """Our dataset (identity, Iceberg facets) with the facets Cosmos reported for the same table."""
    if theirs is None:
        return ours
    facets = {k: v for k, v in (theirs.facets or {}).items() if k not in ("dataSource", "symlinks")}
    if "columnLineage" in facets:
        mapped = _map_column_lineage(facets.pop("columnLineage"), ephemeral)
        if mapped is not None:
            facets["columnLineage"] = mapped
    schema = _with_dbt_descriptions((ours.facets or {}).get("schema"), facets.pop("schema", None))
    merged = {**facets, **(ours.facets or {})}
    if schema is not None:
        merged["schema"] = schema
    if isinstance(ours, OutputDataset):
        output_facets = {**(getattr(theirs, "outputFacets", None) or {}), **(ours.outputFacets or {})}
        return OutputDataset(namespace=ours.namespace, name=ours.name, facets=merged, outputFacets=output_facets)
    # An input keeps the version read and the assertions checked on it; its description is its writer's.
    kept = {k: v for k, v in merged.items() if k in (*F.INPUT_FACETS, "dataQualityAssertions")}
    input_facets = {**(getattr(theirs, "inputFacets", None) or {}), **(ours.inputFacets or {})}
    return InputDataset(namespace=ours.namespace, name=ours.name, facets=kept, inputFacets=input_facets)


def _freshness_assertion(operator: Any) -> Any | None:
    results = (getattr(operator, "_sources_json", None) or {}).get("results") or []
    if not results:
        return None
    assertions = [data_quality_assertions_dataset.Assertion(
        assertion="source_freshness", success=str(r.get("status")) in ("pass", "warn")) for r in results]
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(assertions=assertions)


def cosmos_task_lineage(operator: Any, task_instance: Any = None, *, full: bool) -> OperatorLineage:
    """The lineage of one Cosmos task (see the module docstring); ``full`` after the dbt command ran."""
    task_type = type(operator).__name__
    manifest = load_manifest(operator.dag_id)
    unique_id = getattr(operator, NODE_ATTRIBUTE, None)
    input_tables, output_tables, extra_inputs = static_datasets(
        task_type, manifest, unique_id, str(getattr(operator, "project_dir", "") or "") or None)
    ephemeral = {t for n in (manifest.get("nodes") or {}).values() if is_ephemeral(n) for t in [node_table(n)] if t}

    cosmos = None
    if full:
        try:
            cosmos = operator.get_openlineage_facets_on_complete(task_instance)
        except Exception:  # noqa: BLE001 - Cosmos could not parse dbt's artifacts: the manifest still says enough
            log.debug("Cosmos lineage unavailable for %s", operator.task_id, exc_info=True)
    theirs_in: dict[tuple[str, str], Any] = {}
    theirs_out: dict[tuple[str, str], Any] = {}
    foreign_in, foreign_out = [], []
    for source, target, foreign in ((getattr(cosmos, "inputs", None) or [], theirs_in, foreign_in),
                                    (getattr(cosmos, "outputs", None) or [], theirs_out, foreign_out)):
        for dataset in source:
            mapped = naming.from_dbt(dataset.namespace, dataset.name)
            if mapped is None:
                if not dataset.namespace.startswith("duckdb://"):
                    foreign.append(dataset)  # another engine's dataset: kept as it is
                continue
            if mapped[1] in ephemeral:
                continue
            previous = target.get(mapped)
            # A test reports its table twice (with and without assertions): keep the richer one.
            if previous is None or len(dataset.facets or {}) + len(getattr(dataset, "inputFacets", None) or {}) > \
                    len(previous.facets or {}) + len(getattr(previous, "inputFacets", None) or {}):
                target[mapped] = dataset

    def tables(static: list[str], reported: dict) -> list[str]:
        names = list(static)
        for _, name in reported:
            if name not in names:
                names.append(name)
        return names

    inputs = []
    for table in tables(input_tables, theirs_in):
        dataset = F.table_input(table, with_schema=full)
        inputs.append(_merge(dataset, theirs_in.get((dataset.namespace, dataset.name)), ephemeral))
    if task_type == "DbtSourceLocalOperator" and full and inputs:
        assertion = _freshness_assertion(operator)
        if assertion is not None:
            inputs[0].inputFacets["dataQualityAssertions"] = assertion
    outputs = []
    for table in tables(output_tables, theirs_out):
        dataset = F.table_output(table, with_schema=full)
        merged = _merge(dataset, theirs_out.get((dataset.namespace, dataset.name)), ephemeral)
        sql = getattr((getattr(cosmos, "job_facets", None) or {}).get("sql"), "query", None)
        if full and task_type in _WRITES and sql:
            from .columns import add_model_column_lineage

            add_model_column_lineage(merged, inputs, sql)
        outputs.append(merged)
    return OperatorLineage(
        inputs=[*inputs, *extra_inputs, *foreign_in],
        outputs=[*outputs, *foreign_out],
        run_facets=dict(getattr(cosmos, "run_facets", None) or {}),
        job_facets=dict(getattr(cosmos, "job_facets", None) or {}),
    )


class CosmosLineageExtractor(BaseExtractor):
    """The provider's extractor for Cosmos's local dbt operators (see the module docstring)."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return list(COSMOS_LOCAL_OPERATORS)

    def _execute_extraction(self) -> OperatorLineage | None:
        return cosmos_task_lineage(self.operator, full=False)

    def extract_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        return cosmos_task_lineage(self.operator, task_instance, full=True)

    def extract_on_failure(self, task_instance: Any) -> OperatorLineage | None:
        return cosmos_task_lineage(self.operator, task_instance, full=True)

