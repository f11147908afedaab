"""dbt test results as DataHub assertions, built with DataHub's own Python SDK (acryl-datahub).

For every check of a pipeline run (a data test, a unit test, a source freshness check) the
publish_data_quality task makes, per check:

- an ``assertionInfo`` aspect: what is checked, on which dataset and column(s), mapped to DataHub's
  assertion vocabulary (scope, aggregation, operator, parameters), with the dbt test's own name and
  arguments kept as native type and parameters;
- a ``dataPlatformInstance`` aspect naming dbt as the platform that runs the check;
- an ``assertionRunEvent`` (time series) with the run's result: SUCCESS, FAILURE (dbt ``fail``:
  severity HIGH; ``warn``: severity LOW, the check did not hold but is configured not to stop the
  run) or ERROR (the check could not run), the failing row count and dbt's message. A skipped check
  did not run and gets no run event.

Identity. A table is ``dataset_urn('<namespace>.<table>')`` =
``urn:li:dataset:(urn:li:dataPlatform:iceberg,<namespace>.<table>,PROD)``, the same platform and name
the OpenLineage events use, so assertions, lineage and schemas meet on one dataset. A check's
assertion urn is a stable guid of its dbt unique id, so every run adds an event to the same assertion.

Delivery. With ``LAKEHOUSE_DATAHUB_GMS_URL`` set, the metadata change proposals go to that GMS over
REST (DataHub's DatahubRestEmitter), authenticated with the token in ``LAKEHOUSE_DATAHUB_TOKEN`` (read
when sending, never logged). Without it they are written as a JSON array of MCPs (DataHub's file sink
format, loadable with ``datahub ingest`` and a ``file`` source) to
``<home>/datahub/<pipeline>/<run id>.json``. A failure to deliver raises DataHubPublishError: the task fails.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
from datahub.emitter import mce_builder
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.metadata.schema_classes import (
    AssertionInfoClass,
    AssertionResultClass,
    AssertionResultErrorClass,
    AssertionResultErrorTypeClass,
    AssertionResultSeverityClass,
    AssertionResultTypeClass,
    AssertionRunEventClass,
    AssertionRunStatusClass,
    AssertionSourceClass,
    AssertionSourceTypeClass,
    AssertionStdAggregationClass,
    AssertionStdOperatorClass,
    AssertionStdParameterClass,
    AssertionStdParametersClass,
    AssertionStdParameterTypeClass,
    AssertionTypeClass,
    CustomAssertionInfoClass,
    DataPlatformInstanceClass,
    DatasetAssertionScopeClass,
    SqlAssertionInfoClass,
    SqlAssertionTypeClass,
)

from . import dbt_artifacts, quality
from .identifiers import split_table_name
from .settings import Settings, load_settings

log = logging.getLogger(__name__)

PLATFORM = "iceberg"
ENV = "PROD"
CHECK_PLATFORM = "dbt"  # the platform that runs the checks (the assertions' dataPlatformInstance)
TOKEN_VARIABLE = "LAKEHOUSE_DATAHUB_TOKEN"
CHECK_NODE_TYPES = ("test", "unit_test", "source")  # data tests, unit tests, source freshness
_NATIVE_TEXT_LIMIT = 4000  # nativeResults values are for people: keep them readable


class DataHubPublishError(RuntimeError):
    """Assertions could not be delivered to DataHub (the message says where and why; never the token)."""


# --- identity --------------------------------------------------------------------------------------


def dataset_urn(table: str) -> str:
    """The DataHub dataset of the Iceberg table '<namespace>.<table>' (the one identity of a table)."""
    namespace, name = split_table_name(table)
    return mce_builder.make_dataset_urn(PLATFORM, f"{namespace}.{name}", ENV)


def field_urn(table: str, column: str) -> str:
    """The DataHub schema field of a table's column."""
    return mce_builder.make_schema_field_urn(dataset_urn(table), column)


def assertion_urn(unique_id: str) -> str:
    """A check's assertion: stable across runs (a guid of its dbt unique id)."""
    return mce_builder.make_assertion_urn(mce_builder.datahub_guid({"source": "lakehouse", "dbt_node": unique_id}))


# --- what a check tests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The table a check is about, the columns it tests, and the other table's column a multi-table
    check (relationships) compares them with."""

    table: str
    columns: tuple[str, ...] = ()
    references: tuple[str, str] | None = None
    other_tables: tuple[str, ...] = ()  # every further table a (singular) test reads


def _relation_of(manifest: dict, unique_id: str) -> str:
    found = dbt_artifacts.node(manifest, unique_id)
    if found is None:
        raise ValueError(f"{unique_id} is not in the run's manifest.json")
    return dbt_artifacts.node_table(found, strict=False)


def _metric_column(metric: str) -> str | None:
    """'sum(notional_usd)' -> 'notional_usd': the column an aggregate of one column measures."""
    match = re.fullmatch(r"\s*\w+\(\s*(?:distinct\s+)?([A-Za-z_]\w*)\s*\)\s*", metric or "", re.IGNORECASE)
    return match.group(1) if match else None


def _target(unique_id: str, node: dict | None, manifest: dict) -> Target:
    """From the manifest: a test's attached node (else its first model/seed/snapshot/source parent), its
    column_name and the columns its arguments name; a relationships test also names the `to` table."""
    if node is None:
        raise ValueError(f"{unique_id}: not in the run's manifest.json, so the table it checks is unknown")
    if node.get("resource_type") == "source":
        return Target(dbt_artifacts.node_table(node, strict=False))
    parents = [p for p in (node.get("depends_on") or {}).get("nodes") or [] if p.split(".")[0] in dbt_artifacts.STORED]
    tested = dbt_artifacts.tested_node_id(node)
    if tested is None:
        raise ValueError(f"{unique_id}: depends on no model, seed, snapshot or source, so the table it checks is unknown")
    table = _relation_of(manifest, tested)
    others = [p for p in parents if p != tested]
    kwargs = (node.get("test_metadata") or {}).get("kwargs") or {}
    columns: list[str] = []
    if node.get("column_name") or kwargs.get("column_name"):
        columns.append(node.get("column_name") or kwargs["column_name"])
    columns += [c for c in kwargs.get("combination_of_columns") or [] if isinstance(c, str)]
    if _metric_column(kwargs.get("metric")):
        columns.append(_metric_column(kwargs["metric"]))
    references = None
    if (node.get("test_metadata") or {}).get("name") == "relationships" and others and kwargs.get("field"):
        references = (_relation_of(manifest, others[0]), str(kwargs["field"]))
    return Target(table, tuple(dict.fromkeys(columns)), references, tuple(_relation_of(manifest, p) for p in others))


# --- assertionInfo ---------------------------------------------------------------------------------


def _parameter(value: Any, kind: str = AssertionStdParameterTypeClass.NUMBER) -> AssertionStdParameterClass:
    return AssertionStdParameterClass(value=value if isinstance(value, str) else json.dumps(value), type=kind)


def _native_parameters(kwargs: dict) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in kwargs.items() if k != "model"}


def _custom(target: Target, *, check_type: str, scope: str, aggregation: str, operator: str,
            parameters: AssertionStdParametersClass | None = None, native_type: str | None = None,
            native_parameters: dict[str, str] | None = None, logic: str | None = None) -> CustomAssertionInfoClass:  # fmt: skip
    fields = [field_urn(target.table, c) for c in target.columns]
    if target.references:
        fields.append(field_urn(*target.references))
    return CustomAssertionInfoClass(
        type=check_type,
        entity=dataset_urn(target.table),
        field=fields[0] if fields else None,
        fields=fields or None,
        scope=scope,
        aggregation=aggregation,
        operator=operator,
        parameters=parameters,
        nativeType=native_type,
        nativeParameters=native_parameters or None,
        logic=logic,
    )


def _data_test_info(node: dict, target: Target, compiled_sql: str | None) -> tuple[str, dict[str, Any]]:
    """(AssertionInfo type, its typed field) of a data test, mapped from its generic test and arguments."""
    metadata = node.get("test_metadata") or {}
    name = metadata.get("name")
    qualified = f"{metadata['namespace']}.{name}" if metadata.get("namespace") else name
    kwargs = metadata.get("kwargs") or {}
    sql = compiled_sql or node.get("compiled_code") or node.get("raw_code") or ""
    if not name:
        # A singular test is custom SQL: the check holds when its query returns no row.
        statement = f"select count(*) from (\n{sql.strip().rstrip(';')}\n) as failing_rows"
        return AssertionTypeClass.SQL, {"sqlAssertion": SqlAssertionInfoClass(
            type=SqlAssertionTypeClass.METRIC, entity=dataset_urn(target.table), statement=statement,
            operator=AssertionStdOperatorClass.EQUAL_TO, parameters=AssertionStdParametersClass(value=_parameter(0)),
        )}  # fmt: skip
    column, rows = DatasetAssertionScopeClass.DATASET_COLUMN, DatasetAssertionScopeClass.DATASET_ROWS
    common = {"check_type": "dbt test", "native_type": qualified, "native_parameters": _native_parameters(kwargs)}
    std = AssertionStdParametersClass
    if qualified == "not_null":
        info = _custom(target, scope=column, aggregation=AssertionStdAggregationClass.IDENTITY,
                       operator=AssertionStdOperatorClass.NOT_NULL, **common)  # fmt: skip
    elif qualified == "unique":
        info = _custom(target, scope=column, aggregation=AssertionStdAggregationClass.UNIQUE_PROPORTION,
                       operator=AssertionStdOperatorClass.EQUAL_TO, parameters=std(value=_parameter(1.0)), **common)  # fmt: skip
    elif qualified == "accepted_values":
        info = _custom(target, scope=column, aggregation=AssertionStdAggregationClass.IDENTITY,
                       operator=AssertionStdOperatorClass.IN,
                       parameters=std(value=_parameter(kwargs.get("values") or [], AssertionStdParameterTypeClass.SET)),
                       **common)  # fmt: skip
    elif qualified == "relationships" and target.references:
        ref_table, ref_column = target.references
        logic = f"every {target.table}.{', '.join(target.columns)} exists in {ref_table}.{ref_column}"
        info = _custom(target, scope=column, aggregation=AssertionStdAggregationClass.IDENTITY,
                       operator=AssertionStdOperatorClass._NATIVE_, logic=logic, **common)  # fmt: skip
    elif qualified == "lakehouse.unique_combination_of_columns":
        info = _custom(target, scope=rows, aggregation=AssertionStdAggregationClass.UNIQUE_PROPORTION,
                       operator=AssertionStdOperatorClass.EQUAL_TO, parameters=std(value=_parameter(1.0)),
                       logic=f"no two rows share ({', '.join(target.columns)})", **common)  # fmt: skip
    elif qualified == "lakehouse.positive_when_not_null":
        info = _custom(target, scope=column, aggregation=AssertionStdAggregationClass.IDENTITY,
                       operator=AssertionStdOperatorClass.GREATER_THAN, parameters=std(value=_parameter(0)),
                       **common)  # fmt: skip
    elif qualified == "lakehouse.daily_metric_zscore_within":
        threshold = float(kwargs.get("threshold", 4))
        by = kwargs.get("group_by") or []
        logic = (f"z-score of {kwargs.get('metric')} per {', '.join(by) if by else 'day'} on the tested business day "
                 f"against the previous {kwargs.get('window_days', 10)} business days within ±{threshold:g}")  # fmt: skip
        info = _custom(target, scope=column if target.columns else rows, aggregation=AssertionStdAggregationClass._NATIVE_,
                       operator=AssertionStdOperatorClass.BETWEEN,
                       parameters=std(minValue=_parameter(-threshold), maxValue=_parameter(threshold)),
                       logic=logic, **common)  # fmt: skip
    else:
        # Any other generic test: dbt's own semantics, its SQL as the logic.
        info = _custom(target, scope=column if target.columns else rows, aggregation=AssertionStdAggregationClass._NATIVE_,
                       operator=AssertionStdOperatorClass._NATIVE_, logic=sql or None, **common)  # fmt: skip
    return AssertionTypeClass.CUSTOM, {"customAssertion": info}


def _assertion_info(pipeline: str, unique_id: str, node: dict, target: Target, compiled_sql: str | None) -> AssertionInfoClass:
    resource_type = node.get("resource_type")
    properties = {"pipeline": pipeline, "dbt_unique_id": unique_id, "dbt_name": str(node.get("name") or "")}
    if severity := (node.get("config") or {}).get("severity"):
        properties["dbt_severity"] = str(severity).lower()
    if target.other_tables:
        properties["other_datasets"] = ",".join(dataset_urn(t) for t in target.other_tables)
    if resource_type == "source":
        freshness = node.get("freshness") or {}
        for level in ("warn_after", "error_after"):
            if (freshness.get(level) or {}).get("count") is not None:
                properties[level] = f"{freshness[level]['count']} {freshness[level].get('period')}"
        kind, typed = AssertionTypeClass.CUSTOM, {"customAssertion": CustomAssertionInfoClass(
            type="dbt source freshness", entity=dataset_urn(target.table), nativeType="source_freshness")}  # fmt: skip
    elif resource_type == "unit_test":
        kind, typed = AssertionTypeClass.CUSTOM, {"customAssertion": _custom(
            target, check_type="dbt unit test", scope=DatasetAssertionScopeClass.DATASET_ROWS,
            aggregation=AssertionStdAggregationClass._NATIVE_, operator=AssertionStdOperatorClass._NATIVE_,
            native_type="unit_test", logic=node.get("description") or None)}  # fmt: skip
    else:
        kind, typed = _data_test_info(node, target, compiled_sql)
    return AssertionInfoClass(
        type=kind,
        customProperties=properties,
        description=(node.get("description") or "").strip() or None,
        source=AssertionSourceClass(type=AssertionSourceTypeClass.EXTERNAL),
        **typed,
    )


# --- assertionRunEvent -----------------------------------------------------------------------------


def _clip(text: str) -> str:
    return text if len(text) <= _NATIVE_TEXT_LIMIT else text[: _NATIVE_TEXT_LIMIT - 1] + "…"


def _result(row: dict, kind: str) -> AssertionResultClass | None:
    """dbt's status as DataHub's result; None for a check that did not run (skipped)."""
    status, node_type = row["status"], row["node_type"]
    if status == "skipped":
        return None
    native = {"dbt_status": status}
    if row.get("failures") is not None:
        native["failures"] = str(row["failures"])
    if row.get("message"):
        native["message"] = _clip(str(row["message"]))
    if row.get("failing_rows"):
        native["failing_rows"] = _clip(row["failing_rows"])
    severity, error = None, None
    if status in quality.PASSED:
        outcome = AssertionResultTypeClass.SUCCESS
    elif status == "warn":
        outcome, severity = AssertionResultTypeClass.FAILURE, AssertionResultSeverityClass.LOW
    elif status == "fail" or (status == "error" and node_type == "source"):
        # A freshness "error" is a verdict (older than error_after), not a failure to run.
        outcome, severity = AssertionResultTypeClass.FAILURE, AssertionResultSeverityClass.HIGH
    else:  # error, runtime error: the check could not run
        outcome = AssertionResultTypeClass.ERROR
        error_type = (AssertionResultErrorTypeClass.CUSTOM_SQL_ERROR if kind == AssertionTypeClass.SQL
                      else AssertionResultErrorTypeClass.SOURCE_QUERY_FAILED if node_type == "test"
                      else AssertionResultErrorTypeClass.UNKNOWN_ERROR)  # fmt: skip
        error = AssertionResultErrorClass(type=error_type, properties={"message": native.get("message", status)})
    failures = row.get("failures") if node_type in ("test", "unit_test") else None
    return AssertionResultClass(
        type=outcome,
        severity=severity,
        unexpectedCount=failures,
        actualAggValue=float(failures) if failures is not None and kind == AssertionTypeClass.SQL else None,
        nativeResults=native,
        error=error,
    )


# --- building --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assertions:
    """The metadata change proposals of one run's checks."""

    proposals: list[MetadataChangeProposalWrapper]
    assertions: int
    run_events: int


def _compiled_sql(artifacts: list[tuple[Path, dict]]) -> dict[str, str]:
    compiled: dict[str, str] = {}
    for _, artifact in artifacts:
        for result in artifact["results"]:
            if result.get("compiled_code"):
                compiled[result["unique_id"]] = result["compiled_code"]
    return compiled


def build_assertions(pipeline_name: str, run_id: str, target_dir: str | Path, *, results: pa.Table | None = None) -> Assertions:
    """Assertions of every check under target_dir (the run's dbt artifacts), each validated by DataHub's classes.

    ``results``: quality.collect_results(...) of the same run, when the caller has it already.
    """
    artifacts, manifest = dbt_artifacts.load_run_artifacts(Path(target_dir))
    if results is None:
        results = quality.collect_results(pipeline_name, run_id, target_dir)
    compiled = _compiled_sql(artifacts)
    proposals: list[MetadataChangeProposalWrapper] = []
    events = 0
    rows = [r for r in results.to_pylist() if r["node_type"] in CHECK_NODE_TYPES]
    for row in sorted(rows, key=lambda r: r["node_id"]):
        unique_id = row["node_id"]
        node = dbt_artifacts.node(manifest, unique_id)
        target = _target(unique_id, node, manifest)
        urn = assertion_urn(unique_id)
        info = _assertion_info(pipeline_name, unique_id, node, target, compiled.get(unique_id))
        proposals.append(MetadataChangeProposalWrapper(entityUrn=urn, aspect=info))
        platform = DataPlatformInstanceClass(platform=mce_builder.make_data_platform_urn(CHECK_PLATFORM))
        proposals.append(MetadataChangeProposalWrapper(entityUrn=urn, aspect=platform))
        result = _result(row, info.type)
        if result is not None:
            event = AssertionRunEventClass(
                timestampMillis=int(row["completed_at"].timestamp() * 1000),
                runId=run_id,
                asserteeUrn=dataset_urn(target.table),
                assertionUrn=urn,
                status=AssertionRunStatusClass.COMPLETE,
                result=result,
                runtimeContext={"pipeline": pipeline_name, "dbt_unique_id": unique_id},
            )
            proposals.append(MetadataChangeProposalWrapper(entityUrn=urn, aspect=event))
            events += 1
    for proposal in proposals:
        if not proposal.validate():
            raise ValueError(f"DataHub rejects the {proposal.aspectName} built for {proposal.entityUrn}: {proposal.aspect}")
    return Assertions(proposals, len(rows), events)


# --- delivery --------------------------------------------------------------------------------------


def _display_url(url: str) -> str:
    """The URL without any user:password part."""
    if "://" not in url:
        return url.rsplit("@", 1)[-1]
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def emit_to_gms(proposals: list[MetadataChangeProposalWrapper], gms_url: str, *, token: str | None = None,
                retries: int = 4, what: str = "assertion") -> None:  # fmt: skip
    """Send the proposals to DataHub GMS with DatahubRestEmitter; DataHubPublishError if it cannot.

    ``what``: the kind of proposals, as an error message names them ("assertion", "governance")."""
    import requests
    from datahub.configuration.common import ConfigurationError, OperationalError
    from datahub.emitter.rest_emitter import DatahubRestEmitter

    where = _display_url(gms_url)
    emitter = None
    try:
        emitter = DatahubRestEmitter(gms_server=gms_url, token=token or None, retry_max_times=retries)
        emitter.test_connection()  # GET /config: reachable, token accepted, and which ingestion API it speaks
        emitter.emit_mcps(proposals)
    except OperationalError as error:
        detail = (error.info or {}).get("message")
        raise DataHubPublishError(
            f"DataHub GMS at {where} did not accept {len(proposals)} {what} proposals: {error.message}"
            + (f" ({detail})" if detail and detail not in error.message else "")
        ) from None
    except ConfigurationError as error:
        raise DataHubPublishError(f"DataHub GMS at {where} is not usable: {error}") from None
    except requests.RequestException as error:
        raise DataHubPublishError(f"DataHub GMS at {where} could not be reached: {type(error).__name__}: {error}") from None
    finally:
        if emitter is not None:
            emitter.close()


def assertions_file(settings: Settings, pipeline_name: str, run_id: str) -> Path:
    safe_run_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return settings.datahub_dir / pipeline_name / f"{safe_run_id}.json"


def write_file(proposals: list[MetadataChangeProposalWrapper], path: Path) -> Path:
    """The proposals as DataHub's file sink writes them (a JSON array of MCPs), replacing the file atomically."""
    from datahub.ingestion.sink.file import write_metadata_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    write_metadata_file(partial, proposals)
    partial.replace(path)
    return path


def deliver(proposals: list[MetadataChangeProposalWrapper], settings: Settings, path: Path, *,
            what: str = "assertion") -> str:  # fmt: skip
    """The proposals to GMS when LAKEHOUSE_DATAHUB_GMS_URL is set (with the token of LAKEHOUSE_DATAHUB_TOKEN,
    read now), else to the file at ``path``; returns where they went (the URL without credentials, or the file)."""
    if settings.datahub_gms_url:
        emit_to_gms(proposals, settings.datahub_gms_url, token=os.environ.get(TOKEN_VARIABLE, "").strip() or None,
                    retries=settings.datahub_retries, what=what)  # fmt: skip
        return _display_url(settings.datahub_gms_url)
    return str(write_file(proposals, path))


@dataclass(frozen=True)
class Published:
    assertions: int
    run_events: int
    destination: str  # the GMS URL (without credentials) or the file written


def publish_assertions(pipeline_name: str, run_id: str, target_dir: str | Path, *, results: pa.Table | None = None,
                       settings: Settings | None = None) -> Published:  # fmt: skip
    """Build the run's assertions and deliver them: to GMS when LAKEHOUSE_DATAHUB_GMS_URL is set, else to a file."""
    settings = settings or load_settings()
    built = build_assertions(pipeline_name, run_id, target_dir, results=results)
    destination = deliver(built.proposals, settings, assertions_file(settings, pipeline_name, run_id))
    log.info("DataHub: %d assertions, %d run events of %s run %s -> %s",
             built.assertions, built.run_events, pipeline_name, run_id, destination)  # fmt: skip
    return Published(built.assertions, built.run_events, destination)
