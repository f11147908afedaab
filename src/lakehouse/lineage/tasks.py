"""What each Python task of a pipeline DAG reads and writes, as OpenLineage datasets.

Called by lineage.operators.LineagePythonOperator (through Airflow's OpenLineage listener) when the task
starts, completes or fails: ``task_lineage(kind, op_kwargs, result, phase)``. ``op_kwargs`` are the task's
rendered arguments, ``result`` what its callable returned (None at start and on failure). A START event
carries the identities only (cheap, and known before anything ran); COMPLETE and FAIL carry the facets
(schema, version, statistics) of the tables as the task left them.

- ingest_<source>: the source (a generator callable, a file or URL, a PostgreSQL table) -> its raw table
  (and the quarantine table and raw-zone copy a file ingest writes),
- deliver_<name>: the lakehouse table -> the PostgreSQL table, column for column,
- publish_data_quality: every table a dbt check of the run tested (with its assertions) -> audit.dq_results,
- maintain_tables: each table it maintains, as input and as output of itself (an in-place rewrite: the
  output's column lineage names only the same table).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.providers.openlineage.extractors import OperatorLineage
from openlineage.client.event_v2 import OutputDataset
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    output_statistics_output_dataset,
)

from . import facets as F
from . import naming

log = logging.getLogger(__name__)

QUALITY_TABLE = "audit.dq_results"


def task_lineage(kind: str, op_kwargs: dict[str, Any], result: Any, phase: str) -> OperatorLineage:
    """The lineage of one run of a task of ``kind`` (ingest, deliver, publish, maintain) at ``phase``."""
    handler = {"ingest": ingest, "deliver": deliver, "publish": publish, "maintain": maintain}[kind]
    return handler(op_kwargs, result if phase == "complete" else None, full=phase != "start")


# --- ingest and deliver: each kind's class reports what it reads and writes (lakehouse.kinds) ------


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def ingest(op_kwargs: dict[str, Any], result: Any, full: bool) -> OperatorLineage:
    from ..ingest import as_date, build_ingest, find_source
    from ..pipeline import get_pipeline

    pipeline = get_pipeline(op_kwargs["pipeline_name"])
    source = find_source(pipeline, op_kwargs["source_name"])
    kind = build_ingest(pipeline, source, dict(op_kwargs.get("options") or {}))
    day = as_date(op_kwargs.get("batch_date") or dt.date.today())
    result = result if isinstance(result, dict) else None
    inputs = kind.lineage_inputs(day, result)
    rows = _as_int(result.get("rows", result.get("events"))) if result else None
    target = F.table_output(source.table, with_schema=full, rows=rows)
    file_inputs = [d for d in inputs if "schema" in (d.facets or {})]  # a file of a declared format
    if full and len(file_inputs) == 1:
        # A file's columns land, parsed and typed, in the same-named columns of the raw table.
        columns = set(F.schema_columns(target.facets or {}))
        landed = [c for c in F.schema_columns(file_inputs[0].facets) if c in columns]
        if landed:
            target.facets["columnLineage"] = F.identity_column_lineage(
                (file_inputs[0].namespace, file_inputs[0].name), landed, subtype="TRANSFORMATION")
    outputs = [target, *kind.lineage_outputs(day, result, full)]
    # What a kind's summary says it also wrote: a quarantine table, a raw-zone copy.
    if result and result.get("quarantine"):
        outputs.append(F.table_output(str(result["quarantine"]), with_schema=full, rows=_as_int(result.get("rejected"))))
    if result and result.get("raw_zone"):
        namespace, name = naming.file_identity(str(result["raw_zone"]))
        outputs.append(OutputDataset(namespace=namespace, name=name))
    return OperatorLineage(inputs=inputs, outputs=outputs)


def deliver(op_kwargs: dict[str, Any], result: Any, full: bool) -> OperatorLineage:
    from ..delivery import build_delivery, find_delivery
    from ..pipeline import get_pipeline

    pipeline = get_pipeline(op_kwargs["pipeline_name"])
    delivery = find_delivery(pipeline, op_kwargs["delivery_name"])
    kind = build_delivery(pipeline, delivery, dict(op_kwargs.get("options") or {}))
    source = F.table_input(delivery.table, with_schema=full)
    return OperatorLineage(inputs=[source], outputs=[kind.lineage_output(result if isinstance(result, dict) else None, full)])


# --- publish_data_quality ------------------------------------------------------------------------


def _assertions(pipeline_name: str, run_id: str) -> dict[str, list]:
    """The run's dbt checks by the table they test: {table: [Assertion]} (empty when no dbt task ran)."""
    from ..dbt_artifacts import result_files
    from ..dbt_artifacts import run_dir as dbt_run_dir
    from ..identifiers import InvalidIdentifier, split_table_name
    from ..quality import FAILED, PASSED, WARNED, collect_results

    run_dir = dbt_run_dir(pipeline_name, run_id)
    if not run_dir.is_dir() or not result_files(run_dir):
        return {}
    by_table: dict[str, list] = {}
    for row in collect_results(pipeline_name, run_id, run_dir).to_pylist():
        tested = row["tested_model"]
        if row["node_type"] not in ("test", "unit_test", "source") or not tested:
            continue
        try:
            split_table_name(tested)
        except InvalidIdentifier:
            continue
        if row["status"] not in (*PASSED, *WARNED, *FAILED):
            continue  # skipped: it asserted nothing
        by_table.setdefault(tested, []).append(data_quality_assertions_dataset.Assertion(
            assertion=row["node_name"], success=row["status"] in (*PASSED, *WARNED)))
    return by_table


def publish(op_kwargs: dict[str, Any], result: Any, full: bool) -> OperatorLineage:
    pipeline_name, run_id = op_kwargs["pipeline_name"], op_kwargs["run_id"]
    inputs = []
    if full:
        for table, assertions in sorted(_assertions(pipeline_name, run_id).items()):
            facet = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(assertions=assertions)
            inputs.append(F.table_input(table, input_facets={"dataQualityAssertions": facet}))
    output = F.table_output(QUALITY_TABLE, with_schema=full, rows=result if isinstance(result, int) else None)
    return OperatorLineage(inputs=inputs, outputs=[output])


# --- maintain_tables -----------------------------------------------------------------------------


def maintain(op_kwargs: dict[str, Any], result: Any, full: bool) -> OperatorLineage:
    """Every maintained table is both input and output; its output's column lineage names only itself, which
    is how lineage consumers (and lakehouse.lineage.graph) tell an in-place rewrite from a data flow."""
    from ..dbt_artifacts import pipeline_tables
    from ..pipeline import get_pipeline

    reports = {getattr(r, "table", None): r for r in result} if isinstance(result, list) else {}
    if reports:
        tables = sorted(t for t in reports if t)
    else:
        tables = pipeline_tables(get_pipeline(op_kwargs["pipeline_name"]))
        if full:  # failed before it reported: the tables that exist
            from ..catalog import load_table

            tables = [t for t in tables if load_table(t) is not None]
    inputs, outputs = [], []
    for table in tables:
        facets = F.table_facets(table, with_schema=full)
        namespace, name = naming.table_identity(table)
        inputs.append(F.table_input(table, with_schema=full))  # (the same table's output below has the facets)
        output_facets = {}
        report = reports.get(table)
        if report is not None:
            output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=int(report.rows), size=int(report.bytes_after), fileCount=int(report.files_after))
        columns = F.schema_columns(facets)
        out_facets = dict(facets)
        out_facets["columnLineage"] = F.identity_column_lineage((namespace, name), columns)
        if not columns:
            # No schema at START: still say "from itself only", at dataset level.
            out_facets["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(
                fields={}, dataset=[column_lineage_dataset.InputField(namespace=namespace, name=name, field="*")])
        outputs.append(OutputDataset(namespace=namespace, name=name, facets=out_facets, outputFacets=output_facets))
    return OperatorLineage(inputs=inputs, outputs=outputs)
