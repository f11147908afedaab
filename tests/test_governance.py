"""The governance a dbt project declares (owners, tags, descriptions, grants) as DataHub aspects of the
tables it builds: built from a small manifest written here and from the marketing project parsed by
dbt, delivered as a DataHub file and to a recording GMS, and published by the DAG's publish task.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pytest
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.ingestion.source.file import read_metadata_file

from lakehouse import dag_factory, datahub, dbt_artifacts, governance, quality
from lakehouse.settings import load_settings
from lakehouse.testing import dbt as run_dbt

try:
    from test_datahub import TOKEN, RecordingGMS
except ImportError:  # pragma: no cover - when tests/ is imported as a package
    from tests.test_datahub import TOKEN, RecordingGMS

MARKETING = Path(__file__).parent.parent / "pipelines" / "marketing" / "dbt"
RUN_ID = "manual__2026-11-20T10:00:00+00:00"
SEGMENTS = "urn:li:dataset:(urn:li:dataPlatform:iceberg,marts.customer_segments,PROD)"
ADS = "urn:li:dataset:(urn:li:dataPlatform:iceberg,marts.fct_ads,PROD)"
ORDERS = "urn:li:dataset:(urn:li:dataPlatform:iceberg,staging.stg_orders,PROD)"
TAGGED = "urn:li:dataset:(urn:li:dataPlatform:iceberg,staging.stg_tagged,PROD)"


def model(name: str, schema: str = "marts", *, materialized: str = "table", description: str = "",
          meta: dict | None = None, config: dict | None = None, columns: dict | None = None, **extra) -> dict:  # fmt: skip
    """A model node as dbt's manifest.json has it (only the keys governance reads, and a few it must not)."""
    return {
        "resource_type": "model", "name": name, "alias": name, "schema": schema, "database": "memory",
        "unique_id": f"model.shop.{name}", "description": description, "meta": meta or {},
        "config": {"materialized": materialized, "tags": [], "meta": {}, "grants": {}, **(config or {})},
        "columns": {c: {"name": c, "description": d} for c, d in (columns or {}).items()}, **extra,
    }  # fmt: skip


def manifest() -> dict:
    nodes = [
        model("customer_segments", description="Every customer with an order and their segment.\n",
              meta={"owner": "crm-team@example.com"},
              config={"tags": ["reverse-etl", "customers", "marketing"], "grants": {"select": ["crm_reader", "BI_Reader"]}},
              columns={"customer_id": "", "segment": "The segment the model gave the customer.", "frequency": None}),
        # owners in config.meta (dbt 1.10+), a list with a group; grants but no description.
        model("fct_ads", config={"meta": {"owner": ["group:marketing-analytics", "ana@example.com", "ana@example.com"]},
                                 "grants": {"select": "bi_reader", "insert": []}}),
        model("stg_orders", "staging"),  # declares nothing
        model("stg_tagged", "staging", config={"tags": ["raw-copy"]}),  # only tags
        model("v_orders", "staging", materialized="view", meta={"owner": "x@example.com"}, description="A view."),
        model("eph", "staging", materialized="ephemeral", meta={"owner": "x@example.com"}),
        {**model("countries", "staging", meta={"owner": "x@example.com"}), "resource_type": "seed",
         "unique_id": "seed.shop.countries"},
        {"resource_type": "test", "unique_id": "test.shop.not_null_x", "name": "not_null_x", "schema": "dbt_test__audit",
         "config": {"tags": ["t"]}, "meta": {"owner": "x@example.com"}},
    ]  # fmt: skip
    return {"nodes": {n["unique_id"]: n for n in nodes}, "sources": {}}


def by_dataset(built: governance.Governance) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for proposal in built.proposals:
        assert proposal.aspectName not in found.get(proposal.entityUrn, {}), "one proposal per aspect per dataset"
        found.setdefault(proposal.entityUrn, {})[proposal.aspectName] = proposal.aspect
    return found


@pytest.fixture
def home(lakehouse_home, monkeypatch):
    for name in ("LAKEHOUSE_DATAHUB_GMS_URL", "LAKEHOUSE_DATAHUB_TOKEN", "LAKEHOUSE_DATAHUB_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    return lakehouse_home


@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest()))
    return folder


# --- building ------------------------------------------------------------------------------------


def test_every_table_built_by_a_model_gets_what_it_declares():
    built = governance.build_governance("shop", manifest())
    datasets = by_dataset(built)
    # Views, ephemerals, seeds and tests are not governed here; a model that declares nothing gets nothing.
    assert list(datasets) == [SEGMENTS, ADS, TAGGED] and built.datasets == 3
    assert {urn: list(aspects) for urn, aspects in datasets.items()} == {
        SEGMENTS: ["datasetProperties", "ownership", "globalTags", "editableSchemaMetadata"],
        ADS: ["datasetProperties", "ownership"],
        TAGGED: ["globalTags"],
    }
    for proposal in built.proposals:
        assert proposal.changeType == "UPSERT" and proposal.entityType == "dataset" and proposal.validate()
        assert MetadataChangeProposalWrapper.from_obj(json.loads(json.dumps(proposal.to_obj()))) == proposal


def test_the_mart_carries_owner_tags_descriptions_and_grants():
    segments = by_dataset(governance.build_governance("shop", manifest()))[SEGMENTS]
    properties = segments["datasetProperties"]
    assert properties.description == "Every customer with an order and their segment."
    assert properties.customProperties == {
        "pipeline": "shop",
        "dbt_unique_id": "model.shop.customer_segments",
        "materialization": "table",
        "grants.select": "crm_reader,bi_reader",  # as declared, lower case as the delivery grants them
    }
    [owner] = segments["ownership"].owners
    assert (owner.owner, owner.type, owner.source.type) == ("urn:li:corpuser:crm-team@example.com", "TECHNICAL_OWNER",
                                                            "SOURCE_CONTROL")  # fmt: skip
    assert [t.tag for t in segments["globalTags"].tags] == ["urn:li:tag:customers", "urn:li:tag:marketing",
                                                            "urn:li:tag:reverse-etl"]  # fmt: skip
    # Only the documented column; an empty or missing description is no documentation.
    fields = segments["editableSchemaMetadata"].editableSchemaFieldInfo
    assert [(f.fieldPath, f.description) for f in fields] == [("segment", "The segment the model gave the customer.")]


def test_owner_lists_groups_and_grants_without_a_description():
    ads = by_dataset(governance.build_governance("shop", manifest()))[ADS]
    assert [(o.owner, o.type) for o in ads["ownership"].owners] == [
        ("urn:li:corpGroup:marketing-analytics", "TECHNICAL_OWNER"),
        ("urn:li:corpuser:ana@example.com", "TECHNICAL_OWNER"),
    ]
    properties = ads["datasetProperties"]
    assert properties.description is None
    # An empty list is declared too: dbt revokes the privilege from everyone.
    assert (properties.customProperties["grants.insert"], properties.customProperties["grants.select"]) == ("", "bi_reader")
    assert governance.owner_urn(" group:crm ") == "urn:li:corpGroup:crm"
    assert governance.owner_urn("jdoe") == "urn:li:corpuser:jdoe"


def test_the_order_does_not_depend_on_the_manifest_order():
    shuffled = manifest()
    shuffled["nodes"] = dict(reversed(list(shuffled["nodes"].items())))
    first, second = governance.build_governance("shop", manifest()), governance.build_governance("shop", shuffled)
    assert [p.to_obj() for p in first.proposals] == [p.to_obj() for p in second.proposals]


def test_an_owner_that_is_not_a_name_says_what_to_fix():
    bad = {"nodes": {"model.shop.m": model("m", meta={"owner": {"team": "crm"}})}}
    with pytest.raises(ValueError, match=r"model.shop.m: meta.owner must be a name, an e-mail, 'group:<name>'"):
        governance.build_governance("shop", bad)


# --- delivery ------------------------------------------------------------------------------------


def test_without_a_gms_the_governance_is_a_datahub_file_beside_the_assertions(home, run_dir):
    published = governance.publish_governance("shop", RUN_ID, run_dir)
    path = load_settings().home / "datahub" / "shop" / "manual__2026-11-20T10_00_00_00_00.governance.json"
    assert Path(published.destination) == path
    assert path.with_name("manual__2026-11-20T10_00_00_00_00.json") == datahub.assertions_file(load_settings(), "shop", RUN_ID)
    read_back = list(read_metadata_file(path))  # DataHub's own reader of its file sink format
    built = governance.build_governance("shop", manifest())
    assert read_back == built.proposals and (published.proposals, published.datasets) == (7, 3)
    assert [p.aspectName for p in read_back] == ["datasetProperties", "ownership", "globalTags", "editableSchemaMetadata",
                                                 "datasetProperties", "ownership", "globalTags"]  # fmt: skip


def test_nothing_declared_nothing_published(home, tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"nodes": {"model.shop.m": model("m")}}))
    assert governance.publish_governance("shop", RUN_ID, tmp_path) == governance.PublishedGovernance(0, 0, None)
    assert not (load_settings().home / "datahub").exists()


@pytest.fixture
def gms(home, monkeypatch):
    server = RecordingGMS()
    monkeypatch.setenv("LAKEHOUSE_DATAHUB_GMS_URL", server.url)
    monkeypatch.setenv("LAKEHOUSE_DATAHUB_TOKEN", TOKEN)
    monkeypatch.setenv("LAKEHOUSE_DATAHUB_RETRIES", "0")
    yield server
    server.close()


def test_with_a_gms_the_governance_is_sent_over_rest_with_the_token(gms, run_dir, caplog, lakehouse_logs):
    caplog.set_level(logging.DEBUG)
    published = governance.publish_governance("shop", RUN_ID, run_dir)
    assert published.destination == gms.url
    assert [(r["method"], r["path"]) for r in gms.requests] == [("GET", "/config"),
                                                                ("POST", "/aspects?action=ingestProposalBatch")]  # fmt: skip
    assert {r["headers"]["Authorization"] for r in gms.requests} == {f"Bearer {TOKEN}"}
    received = [MetadataChangeProposalWrapper.from_obj(p) for p in gms.requests[1]["body"]["proposals"]]
    # As sent (the emitter adds its own systemMetadata): the same aspects, in the same order.
    built = governance.build_governance("shop", manifest()).proposals
    assert [(p.entityUrn, p.changeType, p.aspect) for p in received] == [(p.entityUrn, p.changeType, p.aspect) for p in built]
    assert not (load_settings().home / "datahub").exists()
    assert TOKEN not in caplog.text and all(TOKEN not in r.getMessage() for r in lakehouse_logs)
    assert any("governance of 3 datasets (7 proposals)" in r.getMessage() for r in lakehouse_logs)


def test_a_gms_error_fails_the_governance_publish(gms, run_dir):
    gms.status = 500
    with pytest.raises(datahub.DataHubPublishError) as raised:
        governance.publish_governance("shop", RUN_ID, run_dir)
    message = str(raised.value)
    assert "did not accept 7 governance proposals" in message and gms.url in message and TOKEN not in message


def test_the_publish_task_publishes_the_governance_after_the_assertions(home, monkeypatch):
    """dag_factory._publish: the run's results, its assertions, then its governance (from the run's manifest)."""
    calls = []
    # A run with a skipped node: not one whose manifest becomes slim CI's production state.
    results = pa.table({"status": ["skipped"]})
    monkeypatch.setattr(quality, "collect_results", lambda *a, **k: calls.append("collect") or results)
    monkeypatch.setattr(quality, "publish_run_results", lambda *a, **k: calls.append("record") or 4)
    monkeypatch.setattr(datahub, "publish_assertions", lambda *a, **k: calls.append("assertions"))
    publish = governance.publish_governance
    monkeypatch.setattr(governance, "publish_governance", lambda *a, **k: calls.append("governance") or publish(*a, **k))
    folder = dbt_artifacts.run_dir("shop", RUN_ID)
    (folder / "dbt.models_run").mkdir(parents=True)
    (folder / "dbt.models_run" / "run_results.json").write_text(json.dumps({"results": []}))
    (folder / "manifest.json").write_text(json.dumps(manifest()))

    assert dag_factory._publish("shop", RUN_ID) == 4
    assert calls == ["collect", "record", "assertions", "governance"]
    path = governance.governance_file(load_settings(), "shop", RUN_ID)
    assert len(list(read_metadata_file(path))) == 7


# --- the marketing project -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def marketing_manifest(tmp_path_factory):
    """pipelines/marketing/dbt parsed by dbt in this process (no lakehouse needed), into a target of its own."""
    target = tmp_path_factory.mktemp("marketing_target")
    result = run_dbt(MARKETING, "parse", "--no-partial-parse", "--target-path", str(target), "--log-path", str(target / "logs"))
    assert result.success, f"dbt parse failed: {result.exception}"
    return json.loads((target / "manifest.json").read_text())


def test_the_marketing_marts_as_declared_in_their_yaml(marketing_manifest):
    datasets = by_dataset(governance.build_governance("marketing", marketing_manifest))
    segments = datasets[datahub.dataset_urn("marts.customer_segments")]
    assert [o.owner for o in segments["ownership"].owners] == ["urn:li:corpuser:crm-team@example.com"]
    assert [t.tag for t in segments["globalTags"].tags] == ["urn:li:tag:customers", "urn:li:tag:marketing",
                                                            "urn:li:tag:reverse-etl"]  # fmt: skip
    properties = segments["datasetProperties"]
    assert properties.description.startswith("Every customer with an order, their segment and how it was assigned")
    assert properties.customProperties == {"pipeline": "marketing", "dbt_unique_id": "model.marketing.customer_segments",
                                           "materialization": "table", "grants.select": "crm_reader"}  # fmt: skip
    assert "editableSchemaMetadata" not in segments  # its columns have no descriptions

    ads = datasets[datahub.dataset_urn("marts.fct_ad_performance")]
    assert [o.owner for o in ads["ownership"].owners] == ["urn:li:corpuser:marketing-analytics@example.com"]
    assert ads["datasetProperties"].customProperties["grants.select"] == "bi_reader"
    assert ads["datasetProperties"].customProperties["materialization"] == "incremental"
    docs = {f.fieldPath: f.description for f in ads["editableSchemaMetadata"].editableSchemaFieldInfo}
    assert list(docs) == ["ctr", "cpc", "cpa", "roas"] and docs["roas"] == "revenue / spend; NULL without spend."

    rfm = datasets[datahub.dataset_urn("marts.customer_rfm")]
    assert not any(k.startswith("grants.") for k in rfm["datasetProperties"].customProperties)
    assert [t.tag for t in rfm["globalTags"].tags] == ["urn:li:tag:customers", "urn:li:tag:marketing", "urn:li:tag:pii-free"]
    # Every governed dataset is a table a model of the project builds.
    assert set(datasets) <= {datahub.dataset_urn(t) for t in dbt_artifacts.built_tables(marketing_manifest)}
