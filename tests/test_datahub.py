"""dbt test results as DataHub assertions: built from a real dbt run, checked with DataHub's own classes,
delivered to a recording GMS endpoint (or a file), and a GMS error fails the publish.

The run is tests/fixtures/quality_project: not_null, unique, accepted_values (one of them warn),
relationships, the lakehouse generic tests, a singular SQL test, one test that errors and the
z-score cases, passing and failing on purpose.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.ingestion.source.file import read_metadata_file
from datahub.metadata.schema_classes import (
    AssertionInfoClass,
    AssertionResultTypeClass,
    AssertionRunEventClass,
    AssertionStdOperatorClass,
    AssertionTypeClass,
    DataPlatformInstanceClass,
)

from lakehouse import dag_factory, datahub, dbt_artifacts, quality
from lakehouse.catalog import _catalog_for, load_table
from lakehouse.identifiers import InvalidIdentifier
from lakehouse.settings import load_settings

try:
    import quality_project
except ImportError:  # pragma: no cover - when tests/ is imported as a package
    from tests import quality_project

RUN_ID = "manual__2026-11-20T10:00:00+00:00"
TOKEN = "s3cr3t-datahub-token"


@pytest.fixture(scope="module")
def dbt_run(tmp_path_factory):
    """The fixture project built and tested once on its own lakehouse; yields (target dir, results by name)."""
    home = tmp_path_factory.mktemp("lakehouse")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_HOME", str(home))
        for name in ("LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_CATALOG_NAME", "LAKEHOUSE_RAW_ZONE",
                     "LAKEHOUSE_DATAHUB_GMS_URL", "LAKEHOUSE_DATAHUB_TOKEN", "LAKEHOUSE_DATAHUB_RETRIES"):  # fmt: skip
            patch.delenv(name, raising=False)
        _catalog_for.cache_clear()
        target = tmp_path_factory.mktemp("quality_project_target")
        results = quality_project.build(target)
        yield target, results
    _catalog_for.cache_clear()


@pytest.fixture(scope="module")
def built(dbt_run):
    target, _ = dbt_run
    results = quality.collect_results("quality_fixture", RUN_ID, target)
    return datahub.build_assertions("quality_fixture", RUN_ID, target, results=results), results


def aspects_of(built_assertions, node_name: str) -> dict[str, object]:
    """The aspects of one test's assertion, by aspect name."""
    infos = [p for p in built_assertions.proposals if isinstance(p.aspect, AssertionInfoClass)
             and p.aspect.customProperties["dbt_name"] == node_name]  # fmt: skip
    assert len(infos) == 1, f"{node_name}: {len(infos)} assertions"
    urn = infos[0].entityUrn
    return {p.aspectName: p.aspect for p in built_assertions.proposals if p.entityUrn == urn}


def test_a_table_has_one_dataset_urn():
    assert datahub.dataset_urn("marts.mart_positions") == "urn:li:dataset:(urn:li:dataPlatform:iceberg,marts.mart_positions,PROD)"
    assert datahub.field_urn("marts.mart_positions", "notional_usd") == (
        "urn:li:schemaField:(urn:li:dataset:(urn:li:dataPlatform:iceberg,marts.mart_positions,PROD),notional_usd)"
    )
    with pytest.raises(InvalidIdentifier):
        datahub.dataset_urn("mart_positions")
    assert datahub.assertion_urn("test.p.x.1") == datahub.assertion_urn("test.p.x.1") != datahub.assertion_urn("test.p.x.2")


def test_the_dataset_is_the_one_the_lineage_events_name():
    """OpenLineage names a table (iceberg://<catalog>, <namespace>.<table>); DataHub maps that to
    platform iceberg and the same name, which must be the dataset the assertions are attached to."""
    naming = pytest.importorskip("lakehouse.lineage.naming")
    namespace, name = naming.table_identity("marts.mart_positions")
    assert (
        datahub.dataset_urn("marts.mart_positions")
        == f"urn:li:dataset:(urn:li:dataPlatform:{namespace.split(':')[0]},{name},PROD)"
    )


def test_every_test_result_is_an_assertion_with_a_run_event(dbt_run, built):
    _, results = dbt_run
    assertions, _ = built
    tests = [name for name, r in results.items() if r["unique_id"].startswith("test.")]
    assert assertions.assertions == assertions.run_events == len(tests) == 18
    by_aspect: dict[str, int] = {}
    for proposal in assertions.proposals:
        assert proposal.entityUrn.startswith("urn:li:assertion:") and proposal.validate()
        # Through DataHub's own serialization and back: nothing is lost.
        assert MetadataChangeProposalWrapper.from_obj(json.loads(json.dumps(proposal.to_obj()))) == proposal
        by_aspect[proposal.aspectName] = by_aspect.get(proposal.aspectName, 0) + 1
    assert by_aspect == {"assertionInfo": 18, "dataPlatformInstance": 18, "assertionRunEvent": 18}
    platforms = {p.aspect.platform for p in assertions.proposals if isinstance(p.aspect, DataPlatformInstanceClass)}
    assert platforms == {"urn:li:dataPlatform:dbt"}


def test_a_failing_not_null_points_to_its_dataset_and_column(built):
    aspects = aspects_of(built[0], "not_null_customers_email")
    info, event = aspects["assertionInfo"], aspects["assertionRunEvent"]
    customers = "urn:li:dataset:(urn:li:dataPlatform:iceberg,staging.customers,PROD)"
    assert info.type == AssertionTypeClass.CUSTOM
    check = info.customAssertion
    assert check.entity == customers
    assert check.field == f"urn:li:schemaField:({customers},email)" and check.fields == [check.field]
    assert (check.scope, check.aggregation, check.operator) == ("DATASET_COLUMN", "IDENTITY", AssertionStdOperatorClass.NOT_NULL)
    assert info.description == "Fails on purpose (customer 2)."
    assert info.customProperties["dbt_unique_id"].startswith("test.quality_fixture.not_null_customers_email.")
    assert isinstance(event, AssertionRunEventClass)
    assert (event.asserteeUrn, event.runId, event.status) == (customers, RUN_ID, "COMPLETE")
    assert (event.result.type, event.result.severity, event.result.unexpectedCount) == ("FAILURE", "HIGH", 1)
    assert event.result.nativeResults["dbt_status"] == "fail"
    assert json.loads(event.result.nativeResults["failing_rows"]) == [{"email": None}]


def test_passing_checks_map_to_datahub_operators(built):
    unique = aspects_of(built[0], "unique_customers_customer_id")
    check = unique["assertionInfo"].customAssertion
    assert (check.aggregation, check.operator, check.parameters.value.value) == ("UNIQUE_PROPORTION", "EQUAL_TO", "1.0")
    assert unique["assertionRunEvent"].result.type == AssertionResultTypeClass.SUCCESS
    countries = aspects_of(built[0], "accepted_values_customers_country__NO__PE__IN")["assertionInfo"].customAssertion
    assert (countries.operator, countries.parameters.value.type) == ("IN", "SET")
    assert json.loads(countries.parameters.value.value) == ["NO", "PE", "IN"]
    positive = aspects_of(built[0], "lakehouse_positive_when_not_null_orders_amount")["assertionInfo"].customAssertion
    assert (positive.operator, positive.parameters.value.value, positive.nativeType) == (
        "GREATER_THAN",
        "0",
        "lakehouse.positive_when_not_null",
    )
    grain = aspects_of(built[0], "lakehouse_unique_combination_of_columns_orders_order_id__customer_id")[
        "assertionInfo"
    ].customAssertion
    assert grain.scope == "DATASET_ROWS" and [f.rsplit(",", 1)[1] for f in grain.fields] == ["order_id)", "customer_id)"]


def test_a_relationships_test_names_both_tables(built):
    aspects = aspects_of(built[0], "relationships_orders_customer_id__customer_id__ref_customers_")
    info, event = aspects["assertionInfo"], aspects["assertionRunEvent"]
    orders = datahub.dataset_urn("staging.orders")
    assert info.customAssertion.entity == event.asserteeUrn == orders
    assert info.customAssertion.fields == [
        datahub.field_urn("staging.orders", "customer_id"),
        datahub.field_urn("staging.customers", "customer_id"),
    ]
    assert info.customProperties["other_datasets"] == datahub.dataset_urn("staging.customers")
    assert info.customAssertion.logic == "every staging.orders.customer_id exists in staging.customers.customer_id"
    assert (event.result.type, event.result.unexpectedCount) == ("FAILURE", 1)


def test_a_warning_is_a_low_severity_failure(built):
    aspects = aspects_of(built[0], "accepted_values_orders_status__created__shipped")
    assert aspects["assertionInfo"].customProperties["dbt_severity"] == "warn"
    result = aspects["assertionRunEvent"].result
    assert (result.type, result.severity, result.unexpectedCount) == ("FAILURE", "LOW", 2)
    assert result.nativeResults["dbt_status"] == "warn"
    assert result.nativeResults["message"] == "Got 2 results, configured to warn if != 0"


def test_a_test_that_could_not_run_is_an_error(built):
    result = aspects_of(built[0], "not_null_orders_no_such_column")["assertionRunEvent"].result
    assert (result.type, result.error.type) == ("ERROR", "SOURCE_QUERY_FAILED")
    assert "no_such_column" in result.error.properties["message"]


def test_a_singular_test_is_a_sql_assertion(built):
    aspects = aspects_of(built[0], "assert_no_order_above_limit")
    info, result = aspects["assertionInfo"], aspects["assertionRunEvent"].result
    assert info.type == AssertionTypeClass.SQL
    sql = info.sqlAssertion
    assert (sql.type, sql.entity, sql.operator, sql.parameters.value.value) == (
        "METRIC",
        datahub.dataset_urn("staging.orders"),
        "EQUAL_TO",
        "0",
    )
    assert sql.statement.startswith("select count(*) from (") and "where amount > 6" in sql.statement
    assert (result.type, result.unexpectedCount, result.actualAggValue) == ("FAILURE", 1, 1.0)


def test_the_zscore_check_carries_its_bounds_and_explanation(built):
    aspects = aspects_of(built[0], "zscore_monday_outlier")
    check = aspects["assertionInfo"].customAssertion
    assert (check.operator, check.parameters.minValue.value, check.parameters.maxValue.value) == ("BETWEEN", "-4.0", "4.0")
    assert check.field == datahub.field_urn("staging.daily_amounts", "amount")
    assert check.nativeParameters["group_by"] == '["desk"]'
    rows = json.loads(aspects["assertionRunEvent"].result.nativeResults["failing_rows"])
    assert rows[0]["message"].startswith("sum(amount) for desk=A on 2026-11-16: value 1000.00, mean 100.00")


def test_without_a_gms_the_proposals_are_a_datahub_file(dbt_run, built):
    target, _ = dbt_run
    published = datahub.publish_assertions("quality_fixture", RUN_ID, target, results=built[1])
    path = load_settings().home / "datahub" / "quality_fixture" / "manual__2026-11-20T10_00_00_00_00.json"
    assert Path(published.destination) == path and (published.assertions, published.run_events) == (18, 18)
    read_back = list(read_metadata_file(path))  # DataHub's own reader of its file sink format
    assert read_back == built[0].proposals


# --- REST ----------------------------------------------------------------------------------------


class RecordingGMS:
    """A local HTTP endpoint standing in for DataHub GMS: records every request, answers /config like
    GMS does, and answers ingestion with `status` (200, or an error to simulate an outage)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(body) if body else None})  # fmt: skip
                if self.path == "/config":
                    status, payload = 200, {"noCode": "true"}
                elif recorder.status == 200:
                    status, payload = 200, {"value": []}
                else:
                    status, payload = recorder.status, {"status": recorder.status, "message": "assertion store is unavailable"}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gms(monkeypatch):
    server = RecordingGMS()
    monkeypatch.setenv("LAKEHOUSE_DATAHUB_GMS_URL", server.url)
    monkeypatch.setenv("LAKEHOUSE_DATAHUB_TOKEN", TOKEN)
    monkeypatch.setenv("LAKEHOUSE_DATAHUB_RETRIES", "0")
    yield server
    server.close()


def test_with_a_gms_the_assertions_are_sent_over_rest_with_the_token(dbt_run, built, gms, caplog):
    target, _ = dbt_run
    caplog.set_level(logging.DEBUG)
    published = datahub.publish_assertions("quality_fixture", RUN_ID, target, results=built[1])
    assert published.destination == gms.url

    assert [(r["method"], r["path"]) for r in gms.requests] == [
        ("GET", "/config"),
        ("POST", "/aspects?action=ingestProposalBatch"),
    ]
    assert {r["headers"]["Authorization"] for r in gms.requests} == {f"Bearer {TOKEN}"}
    proposals = gms.requests[1]["body"]["proposals"]
    assert len(proposals) == len(built[0].proposals) == 54
    # Each proposal as GMS receives it (Rest.li: the aspect as a JSON string), read back with DataHub's classes.
    received = [MetadataChangeProposalWrapper.from_obj(p) for p in proposals]
    assert {(p.entityUrn, p.aspectName) for p in received} == {(p.entityUrn, p.aspectName) for p in built[0].proposals}
    email_test = aspects_of(built[0], "not_null_customers_email")["assertionInfo"].customProperties["dbt_unique_id"]
    [email_event] = [p.aspect for p in received if isinstance(p.aspect, AssertionRunEventClass)
                     and p.aspect.runtimeContext["dbt_unique_id"] == email_test]  # fmt: skip
    assert (email_event.asserteeUrn, email_event.result.type, email_event.result.unexpectedCount) == (
        datahub.dataset_urn("staging.customers"), "FAILURE", 1)
    assert TOKEN not in caplog.text


def test_a_gms_error_fails_the_publish_with_its_message(dbt_run, built, gms, monkeypatch):
    target, _ = dbt_run
    gms.status = 500
    monkeypatch.setenv("LAKEHOUSE_DATAHUB_RETRIES", "1")
    with pytest.raises(datahub.DataHubPublishError) as raised:
        datahub.publish_assertions("quality_fixture", RUN_ID, target, results=built[1])
    message = str(raised.value)
    assert gms.url in message and "assertion store is unavailable" in message and TOKEN not in message
    # One retry (LAKEHOUSE_DATAHUB_RETRIES=1), then the error.
    assert [r["method"] for r in gms.requests] == ["GET", "POST", "POST"]


def test_an_unreachable_gms_fails_the_publish(dbt_run, built, gms, monkeypatch):
    target, _ = dbt_run
    gms.close()
    with pytest.raises(datahub.DataHubPublishError, match="could not be reached"):
        datahub.publish_assertions("quality_fixture", RUN_ID, target, results=built[1])


def test_the_publish_task_records_the_results_and_sends_the_assertions(dbt_run, gms):
    """dag_factory's publish_data_quality callable, on the artifacts laid out as the DAG keeps them."""
    target, _ = dbt_run
    run_dir = dbt_artifacts.run_dir("quality_fixture", RUN_ID)
    for task, results in (("dbt.models_run", target / "models" / "run_results.json"), ("dbt.tests", target / "run_results.json")):
        (run_dir / task).mkdir(parents=True)
        shutil.copy(results, run_dir / task / "run_results.json")
    shutil.copy(target / "manifest.json", run_dir / "manifest.json")

    assert dag_factory._publish("quality_fixture", RUN_ID) == 21  # 3 models and 18 tests
    assert len(gms.requests) == 2 and len(gms.requests[1]["body"]["proposals"]) == 54
    rows = quality.latest_results("quality_fixture").to_pylist()
    assert len(rows) == 21
    zscore = next(r for r in rows if r["node_name"] == "zscore_monday_outlier")
    assert quality.failing_row_lines(zscore["failing_rows"])[0].startswith("sum(amount) for desk=A on 2026-11-16")

    gms.status = 503
    with pytest.raises(datahub.DataHubPublishError, match="assertion store is unavailable"):
        dag_factory._publish("quality_fixture", RUN_ID)
    assert load_table(quality.TABLE) is not None  # the results were recorded before DataHub was asked
