"""Lineage: OpenLineage events from every task of a pipeline run, one identity per table, the graph.

Two runs of the liquidity pipeline at a tiny scale, each in a fresh process on one lakehouse home shared by
the module (only the liquidity pipeline is visible to it, so the DAG file parses one dbt project):
a successful run with the default file transport, then a run whose ingests fail, with the HTTP transport
sending to a local endpoint that records what it receives. The unit tests at the end need no run.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lakehouse.pipeline import get_pipeline
from lakehouse.settings import REPO_ROOT

LAKEHOUSE = str(Path(sys.executable).with_name("lakehouse"))
DAY, FAILED_DAY = "2026-11-19", "2026-11-17"
API_KEY = "lineage-test-key-7f3a9c"
ICEBERG = "iceberg://lakehouse"

_RUN = textwrap.dedent("""
    import datetime as dt, json, sys
    from dataclasses import asdict
    from lakehouse.runner import run_pipelines
    [result] = run_pipelines(["liquidity"], dt.date.fromisoformat(sys.argv[1]), json.loads(sys.argv[2]))
    print(json.dumps(asdict(result), default=str))
""")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "LAKEHOUSE_HOME": str(home), "LAKEHOUSE_PIPELINES_DIR": str(home.parent / "pipelines"),
           # The first parse of the DAG file runs `dbt parse`: more than Airflow's 30 s on a busy 2-core machine.
           "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600", **extra}
    for name in ("AIRFLOW_HOME", "LAKEHOUSE_LINEAGE", "LAKEHOUSE_LINEAGE_URL", "LAKEHOUSE_LINEAGE_FILE",
                 "LAKEHOUSE_LINEAGE_API_KEY", "LAKEHOUSE_CATALOG_NAME", "LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_WAREHOUSE"):
        if name not in extra:
            env.pop(name, None)
    return env


def _run(home: Path, day: str, conf: dict, **env: str) -> tuple[dict, subprocess.CompletedProcess]:
    done = subprocess.run([sys.executable, "-c", _RUN, day, json.dumps(conf)], env=_env(home, **env),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append({"path": self.path, "headers": dict(self.headers), "event": json.loads(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lineage")
    (root / "pipelines").mkdir()
    (root / "pipelines" / "liquidity").symlink_to(REPO_ROOT / "pipelines" / "liquidity")
    home = root / "home"
    ok, ok_process = _run(home, DAY, {"scale": 0.01})

    _Recorder.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    failing_file = home / "lineage" / "failing.jsonl"
    try:
        failed, failed_process = _run(
            home, FAILED_DAY, {"scale": "not-a-number"}, LAKEHOUSE_LINEAGE="http",
            LAKEHOUSE_LINEAGE_URL=f"http://127.0.0.1:{server.server_address[1]}", LAKEHOUSE_LINEAGE_FILE=str(failing_file),
            LAKEHOUSE_LINEAGE_API_KEY=API_KEY)
    finally:
        server.shutdown()
        server.server_close()
    return {
        "home": home, "ok": ok, "ok_process": ok_process, "events": _events(home / "lineage" / "events.jsonl"),
        "failed": failed, "failed_process": failed_process, "failed_events": _events(failing_file),
        "received": list(_Recorder.received),
    }


@pytest.fixture(scope="module")
def iceberg(runs):
    from lakehouse.catalog import _catalog_for, load_table

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_HOME", str(runs["home"]))
        for name in ("LAKEHOUSE_CATALOG_NAME", "LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_WAREHOUSE"):
            patch.delenv(name, raising=False)
        _catalog_for.cache_clear()
        yield load_table
    _catalog_for.cache_clear()


def _of(events: list[dict], task_id: str, event_type: str = "COMPLETE") -> dict:
    [event] = [e for e in events if e["job"]["name"] == f"liquidity.{task_id}" and e["eventType"] == event_type]
    return event


def _ids(datasets: list[dict]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


# --- the successful run ---------------------------------------------------------------------------


@pytest.mark.e2e
def test_every_task_emits_start_and_complete_with_the_job_of_its_task(runs):
    result = runs["ok"]
    assert result["state"] == "success", result["error"]
    by_job: dict[str, list[str]] = {}
    for event in runs["events"]:
        by_job.setdefault(event["job"]["name"], []).append(event["eventType"])
        assert event["job"]["namespace"] == "lakehouse"
    for task_id in result["task_states"]:
        assert sorted(by_job.get(f"liquidity.{task_id}", [])) == ["COMPLETE", "START"], task_id


@pytest.mark.e2e
def test_each_kind_of_task_reports_its_inputs_and_outputs(runs):
    events = runs["events"]
    ingest = _of(events, "ingest_positions_loans")
    assert _ids(ingest["inputs"]) == {("generator", "pipelines/liquidity/generator.py:positions_loans")}
    assert _ids(ingest["outputs"]) == {(ICEBERG, "raw.positions_loans")}
    assert ingest["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] > 0
    # Known before it runs: the START event already names the datasets.
    assert _ids(_of(events, "ingest_positions_loans", "START")["outputs"]) == {(ICEBERG, "raw.positions_loans")}
    mart = _of(events, "dbt.mart_positions.run")
    assert _ids(mart["outputs"]) == {(ICEBERG, "marts.mart_positions")}
    assert {(ICEBERG, "staging.stg_positions_loans"), (ICEBERG, "staging.stg_positions_deposits")} <= _ids(mart["inputs"])
    assert "sql" in mart["job"]["facets"]  # Cosmos's facets are kept
    test = _of(events, "dbt.mart_positions.test")
    [tested] = test["inputs"]
    assert (tested["namespace"], tested["name"]) == (ICEBERG, "marts.mart_positions") and not test["outputs"]
    assert tested["inputFacets"]["dataQualityAssertions"]["assertions"]
    seed = _of(events, "dbt.currencies.seed")
    assert _ids(seed["outputs"]) == {(ICEBERG, "raw.currencies")}
    assert [d["name"] for d in seed["inputs"]] == [str(REPO_ROOT / "pipelines/liquidity/dbt/seeds/currencies.csv")]
    freshness = _of(events, "dbt.loan_system_positions_loans_source")
    assert _ids(freshness["inputs"]) == {(ICEBERG, "raw.positions_loans")}
    publish = _of(events, "publish_data_quality")
    assert _ids(publish["outputs"]) == {(ICEBERG, "audit.dq_results")}
    checked = {d["name"]: d["inputFacets"]["dataQualityAssertions"]["assertions"] for d in publish["inputs"]}
    assert "marts.mart_positions" in checked and all(a["success"] for a in checked["marts.mart_positions"])


@pytest.mark.e2e
def test_one_identity_per_table_across_ingest_dbt_and_maintenance(runs):
    from lakehouse.lineage.naming import table_asset_uri, table_identity

    events = runs["events"]
    [landed] = _of(events, "ingest_positions_loans")["outputs"]
    staging_inputs = _ids(_of(events, "dbt.stg_positions_loans.run")["inputs"])
    assert (landed["namespace"], landed["name"]) in staging_inputs
    assert (landed["namespace"], landed["name"]) == table_identity("raw.positions_loans")
    # The ephemeral base model is resolved to the raw table: nothing named like it is a dataset.
    assert not any("base_positions_loans" in name for _, name in staging_inputs)
    assert all(not ns.startswith("duckdb") for e in events for ns, _ in _ids(e.get("inputs", []) + e.get("outputs", [])))

    written = {d for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] != "liquidity.maintain_tables"
               for d in _ids(e.get("outputs", [])) if d[0] == ICEBERG and d[1] != "audit.dq_results"}
    maintain = _of(events, "maintain_tables")
    assert _ids(maintain["inputs"]) == _ids(maintain["outputs"]) == written
    for output in maintain["outputs"]:  # in place: each column comes from the same column of itself
        lineage = output["facets"]["columnLineage"]["fields"]
        assert {(f["namespace"], f["name"]) for spec in lineage.values() for f in spec["inputFields"]} == {
            (output["namespace"], output["name"])}
    # The Airflow Asset of the table is the same identity, as a URI.
    assert table_asset_uri("raw.positions_loans") == f"{ICEBERG}/raw/positions_loans"


@pytest.mark.e2e
def test_schema_facets_are_the_iceberg_tables_columns(runs, iceberg):
    events = runs["events"]
    for task_id, table in (("ingest_positions_loans", "raw.positions_loans"), ("dbt.mart_positions.run", "marts.mart_positions"),
                           ("publish_data_quality", "audit.dq_results")):
        [output] = [o for o in _of(events, task_id)["outputs"] if o["name"] == table]
        fields = [(f["name"], f["type"]) for f in output["facets"]["schema"]["fields"]]
        schema = iceberg(table).schema()
        assert fields == [(f.name, str(f.field_type)) for f in schema.fields], table
        # The snapshot the task committed (maintenance may have committed another one since).
        assert int(output["facets"]["version"]["datasetVersion"]) in {s.snapshot_id for s in iceberg(table).snapshots()}


@pytest.mark.e2e
def test_column_lineage_of_models_reaches_the_raw_columns(runs):
    events = runs["events"]

    def sources(task_id: str, table: str, column: str) -> set[tuple[str, str]]:
        [output] = [o for o in _of(events, task_id)["outputs"] if o["name"] == table]
        return {(f["name"], f["field"]) for f in output["facets"]["columnLineage"]["fields"][column]["inputFields"]}

    assert ("staging.stg_positions_loans", "notional_amount") in sources(
        "dbt.mart_positions.run", "marts.mart_positions", "notional_usd"
    )
    assert ("raw.currencies", "usd_rate") in sources("dbt.mart_positions.run", "marts.mart_positions", "notional_usd")
    assert sources("dbt.stg_positions_loans.run", "staging.stg_positions_loans", "notional_amount") == {
        ("raw.positions_loans", "notional_cents")}


@pytest.mark.e2e
def test_lineage_command_prints_the_tree_and_draws_an_svg(runs, tmp_path):
    out = tmp_path / "positions.svg"
    done = subprocess.run(
        [LAKEHOUSE, "lineage", "marts.mart_positions", "--out", str(out)],
        env=_env(runs["home"], COLUMNS="300"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    for name in ("raw.positions_loans", "raw.positions_deposits", "staging.stg_positions_loans", "ingest_positions_loans",
                 "marts.mart_cashflow_forecast", "audit.dq_results"):
        assert name in text, name
    assert "notional_usd" in text and "raw.positions_loans.notional_cents" in text  # column level, to the origin
    assert str(out) in text
    svg = ET.parse(out).getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    groups = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if "node" in (g.get("class") or "")]
    datasets = {g.get("data-name") for g in groups if "dataset" in g.get("class")}
    jobs = {g.get("data-name") for g in groups if "job" in g.get("class")}
    assert {"raw.positions_loans", "raw.positions_deposits", "staging.stg_positions_loans", "marts.mart_positions",
            "marts.mart_liquidity_risk"} <= datasets
    assert {"liquidity.ingest_positions_loans", "liquidity.dbt.mart_positions.run"} <= jobs
    assert "raw.market_data" not in datasets  # not upstream nor downstream of mart_positions
    # Every node's box is drawn, with its name as text.
    texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert "raw.positions_loans" in texts and "dbt.mart_positions.run" in texts

    page = tmp_path / "all.html"
    done = subprocess.run([LAKEHOUSE, "lineage", "--out", str(page)], env=_env(runs["home"]), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert page.read_text().startswith("<!DOCTYPE html>") and "raw.market_data" in page.read_text()


# --- the failing run, over HTTP -------------------------------------------------------------------


@pytest.mark.e2e
def test_a_failing_task_emits_fail_with_its_datasets(runs):
    result = runs["failed"]
    assert result["state"] == "failed"
    events = runs["failed_events"]
    for source in ("market_data", "positions_loans", "positions_deposits"):
        assert result["task_states"][f"ingest_{source}"] == "failed"
        assert _ids(_of(events, f"ingest_{source}", "FAIL")["outputs"]) == {(ICEBERG, f"raw.{source}")}
        assert not [e for e in events if e["job"]["name"] == f"liquidity.ingest_{source}" and e["eventType"] == "COMPLETE"]
    # publish_data_quality runs after a failure (all_done): it completes.
    assert _of(events, "publish_data_quality")["eventType"] == "COMPLETE"


@pytest.mark.e2e
def test_the_http_transport_sends_every_event_with_the_api_key_that_is_never_logged(runs):
    received = runs["received"]
    assert received, "the endpoint received nothing"
    assert {r["path"] for r in received} == {"/api/v1/lineage"}
    assert all(r["headers"].get("Authorization") == f"Bearer {API_KEY}" for r in received)
    sent = {(e["run"]["runId"], e["eventType"]) for e in runs["failed_events"]}
    assert {(r["event"]["run"]["runId"], r["event"]["eventType"]) for r in received} == sent
    assert any(r["event"]["eventType"] == "FAIL" for r in received)
    process = runs["failed_process"]
    assert API_KEY not in process.stdout + process.stderr
    logs = [p for p in (runs["home"] / "logs").rglob("*") if p.is_file()]
    assert logs and not [p for p in logs if API_KEY in p.read_text(errors="replace")]
    assert API_KEY not in json.dumps(runs["failed_events"])


# --- units ----------------------------------------------------------------------------------------


def test_dbt_names_map_onto_the_lakehouse_identity(lakehouse_home):
    from lakehouse.lineage.naming import from_dbt, table_identity

    assert (
        from_dbt("duckdb://:memory:", "memory.raw.market_data")
        == (ICEBERG, "raw.market_data")
        == table_identity("raw.market_data")
    )
    assert from_dbt("duckdb://:memory:", '"memory"."marts"."mart_positions"') == (ICEBERG, "marts.mart_positions")
    assert from_dbt("duckdb://:memory:", "staging.stg_market_data") == (ICEBERG, "staging.stg_market_data")
    assert from_dbt("duckdb://:memory:", "final") is None  # a CTE
    assert from_dbt("postgres://h:5432", "db.public.t") is None


def test_catalog_name_sets_the_namespace(lakehouse_home, monkeypatch):
    from lakehouse.lineage.naming import table_asset_uri, table_identity

    monkeypatch.setenv("LAKEHOUSE_CATALOG_NAME", "prod")
    assert table_identity("raw.x") == ("iceberg://prod", "raw.x")
    assert table_asset_uri("raw.x") == "iceberg://prod/raw/x"


def test_files_urls_and_postgres_tables_follow_openlineage_naming(tmp_path):
    from lakehouse.lineage.naming import file_identity, postgres_identity

    assert file_identity(tmp_path / "a.csv") == ("file", str(tmp_path / "a.csv"))
    assert file_identity((tmp_path / "a b.csv").as_uri()) == ("file", str(tmp_path / "a b.csv"))
    assert file_identity("s3://bucket/raw/x.tsv") == ("s3://bucket", "raw/x.tsv")
    assert file_identity("https://user:pw@example.com:8443/d/x.tsv?v=1") == ("https://example.com:8443", "/d/x.tsv?v=1")
    assert postgres_identity("postgresql://u:secret@db.example:6543/shop", "analytics", "t") == (
        "postgres://db.example:6543", "shop.analytics.t")
    assert postgres_identity(None, "public", "orders", embedded=True)[0] == "postgres://lakehouse-embedded"


def test_transports_by_settings_never_hold_the_api_key(lakehouse_home, monkeypatch):
    from lakehouse.lineage.config import http_target, lineage_environment
    from lakehouse.settings import load_settings

    monkeypatch.setenv("LAKEHOUSE_LINEAGE_API_KEY", API_KEY)
    env = lineage_environment(load_settings())
    transport = json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert transport["path"] == str(lakehouse_home / "lineage" / "events.jsonl")
    monkeypatch.setenv("LAKEHOUSE_LINEAGE", "http")
    monkeypatch.setenv("LAKEHOUSE_LINEAGE_URL", "http://marquez:5000")
    env = lineage_environment(load_settings())
    assert API_KEY not in json.dumps(env)
    transports = json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])["transports"]
    assert transports["http"]["url"] == "http://marquez:5000/" and transports["http"]["endpoint"] == "api/v1/lineage"
    assert "file" in transports
    assert http_target("http://gms:8080/openapi/openlineage/") == ("http://gms:8080/openapi/openlineage/", "api/v1/lineage")
    assert http_target("http://x:1/custom/api/v1/lineage") == ("http://x:1/", "custom/api/v1/lineage")
    monkeypatch.setenv("LAKEHOUSE_LINEAGE", "off")
    assert lineage_environment(load_settings()) == {"AIRFLOW__OPENLINEAGE__DISABLED": "True"}
    monkeypatch.setenv("LAKEHOUSE_LINEAGE", "kafka")
    with pytest.raises(ValueError, match="LAKEHOUSE_LINEAGE"):
        load_settings()


def test_the_token_provider_reads_the_key_when_sending(monkeypatch):
    from lakehouse.lineage.transport import EnvApiKeyTokenProvider

    provider = EnvApiKeyTokenProvider({})
    monkeypatch.delenv("LAKEHOUSE_LINEAGE_API_KEY", raising=False)
    assert provider.get_bearer() is None
    monkeypatch.setenv("LAKEHOUSE_LINEAGE_API_KEY", API_KEY)
    assert provider.get_bearer() == f"Bearer {API_KEY}" and API_KEY not in repr(provider)


def test_json_lines_appends_from_many_processes_never_interleave(tmp_path):
    path = tmp_path / "events.jsonl"
    code = (
        "import sys; from pathlib import Path; from lakehouse.lineage.transport import append_line\n"
        "for i in range(50):\n"
        '    append_line(Path(sys.argv[1]), \'{"w": %s, "i": %d, "pad": "%s"}\' % (sys.argv[2], i, \'x\' * 20000))'
    )
    workers = [subprocess.Popen([sys.executable, "-c", code, str(path), str(w)]) for w in range(4)]
    assert all(w.wait(timeout=120) == 0 for w in workers)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted((x["w"], x["i"]) for x in lines) == [(w, i) for w in range(4) for i in range(50)]


def test_column_lineage_follows_ctes_stars_unions_and_expressions():
    from lakehouse.lineage.columns import column_sources

    schemas = {"raw.a": ["id", "amount", "currency", "note"], "raw.fx": ["currency", "rate"]}
    sql = """
        with base as (select * exclude (note) from "memory"."raw"."a"),
        priced as (
            select b.*, b.amount * fx.rate as amount_usd, sum(b.amount) over (partition by b.currency) as total
            from base b join raw.fx fx using (currency)
        )
        select id, cast(amount as decimal(18, 2)) as amount, amount_usd, total, 'x' as constant from priced
        union all
        select id, amount, amount, amount, 'y' from base
    """
    found = column_sources(sql, schemas)
    assert found["id"] == {("raw.a", "id", "IDENTITY")}
    assert found["amount"] == {("raw.a", "amount", "TRANSFORMATION"), ("raw.a", "amount", "IDENTITY")}
    assert {(t, c) for t, c, _ in found["amount_usd"]} == {("raw.a", "amount"), ("raw.fx", "rate")}
    assert ("raw.a", "amount", "AGGREGATION") in found["total"]
    assert "constant" not in found and "note" not in found


def test_graph_tells_in_place_maintenance_and_checks_from_data_flow():
    from lakehouse.lineage.graph import LineageGraph

    def event(job, kind, inputs=(), outputs=(), run="r", time="2026-11-19T00:00:00Z"):
        return {"eventType": kind, "eventTime": time, "run": {"runId": f"{job}-{run}"}, "job": {"namespace": "lh", "name": job},
                "inputs": list(inputs), "outputs": list(outputs)}

    def ds(name, **facets):
        return {"namespace": ICEBERG, "name": name, "facets": facets}

    self_only = lambda name: {"fields": {"c": {"inputFields": [{"namespace": ICEBERG, "name": name, "field": "c"}]}}}  # noqa: E731
    graph = LineageGraph.from_events([
        event("ingest", "COMPLETE", [{"namespace": "file", "name": "/x.csv"}], [ds("raw.a")]),
        event("model", "COMPLETE", [ds("raw.a")], [ds("marts.b")]),
        event("model", "COMPLETE", [ds("raw.old")], [ds("marts.b")], run="old", time="2026-11-01T00:00:00Z"),
        event("test", "COMPLETE", [{**ds("marts.b"), "inputFacets": {"dataQualityAssertions": {"assertions": [
            {"assertion": "not_null", "column": "c", "success": False}]}}}]),
        event("maintain", "COMPLETE", [ds("raw.a"), ds("marts.b")],
              [ds("raw.a", columnLineage=self_only("raw.a")), ds("marts.b", columnLineage=self_only("marts.b"))]),
    ])
    b = graph.find("marts.b")
    up, jobs = graph.reach(b.key, "up")
    assert {name for _, name in up} == {"marts.b", "raw.a", "/x.csv"}  # not raw.old (an older run), not via maintain
    assert {name for _, name in jobs} == {"model", "ingest"}
    assert b.maintained_by == {("lh", "maintain")} and b.checked_by == {("lh", "test")}
    assert b.assertions == {"not_null(c)": False}
    assert graph.reach(graph.find("raw.a").key, "down")[0] == {(ICEBERG, "raw.a"), (ICEBERG, "marts.b")}


def test_the_drawing_is_valid_svg_for_any_graph():
    from lakehouse.lineage.graph import LineageGraph
    from lakehouse.lineage.render import svg

    def event(job, inputs, outputs):
        return {
            "eventType": "COMPLETE",
            "eventTime": "t",
            "run": {"runId": job},
            "job": {"namespace": "lh", "name": job},
            "inputs": [{"namespace": "n", "name": i} for i in inputs],
            "outputs": [{"namespace": "n", "name": o} for o in outputs],
        }

    # A cycle, a long edge, a name that needs escaping.
    graph = LineageGraph.from_events([event("a", ["x<&>"], ["y"]), event("b", ["y"], ["z"]), event("c", ["z"], ["x<&>"]),
                                      event("d", ["x<&>"], ["z"])])
    root = ET.fromstring(svg(graph, None, "t"))
    names = {g.get("data-name") for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("data-name")}
    assert names == {"x<&>", "y", "z", "a", "b", "c", "d"}
    assert ET.fromstring(svg(graph, "y"))


def test_each_ingest_kind_and_delivery_names_its_sources_and_targets(lakehouse_home, monkeypatch):
    """The lineage functions of the Python tasks, on the repository's pipelines, without running them."""
    from lakehouse.lineage.tasks import task_lineage

    monkeypatch.delenv("LAKEHOUSE_SOURCE_DSN", raising=False)

    def ids(datasets):
        return [(d.namespace, d.name) for d in datasets]

    generated = task_lineage("ingest", {"pipeline_name": "liquidity", "source_name": "market_data", "batch_date": "2026-11-19",
                                        "options": {"callable": "generator.py:market_data"}}, None, "start")
    # A generator of the pipeline folder is named with its folder, so two pipelines' generator.py differ.
    assert ids(generated.inputs) == [("generator", "pipelines/liquidity/generator.py:market_data")]
    assert ids(generated.outputs) == [(ICEBERG, "raw.market_data")]

    options = {"source": "file://{home}/landing/tweets/tweets_{date}.tsv",
               "format": {"columns": [{"name": "id", "type": "long"}, {"name": "lang", "type": "string"}]}}
    kwargs = {"pipeline_name": "tweets", "source_name": "tweets", "batch_date": "2026-11-19", "options": options}
    landed = task_lineage("ingest", kwargs, None, "start")
    assert ids(landed.inputs) == [("file", str(lakehouse_home / "landing/tweets/tweets_2026-11-19.tsv"))]
    done = task_lineage(
        "ingest",
        kwargs,
        {
            "table": "raw.tweets",
            "rows": 5,
            "file": "s3://bucket/t.tsv",
            "raw_zone": "s3://bucket/raw_zone/tweets/t.tsv",
            "quarantine": "quarantine.rejected_tweets",
            "rejected": 1,
        },
        "complete",
    )
    assert ids(done.inputs) == [("s3://bucket", "t.tsv")]
    assert ids(done.outputs) == [(ICEBERG, "raw.tweets"), (ICEBERG, "quarantine.rejected_tweets"),
                                 ("s3://bucket", "raw_zone/tweets/t.tsv")]
    assert done.outputs[0].outputFacets["outputStatistics"].rowCount == 5

    # The capture's options as the task renders them: what it reads is the pipeline's (`tables`, `audit_table`).
    declared = {**get_pipeline("orders_cdc").ingest[0].options, "simulate_rows": "0"}
    captured = task_lineage("ingest", {"pipeline_name": "orders_cdc", "source_name": "orders_changes", "batch_date": "2026-11-19",
                                       "options": {**declared, "mode": "logical"}}, None, "start")
    assert ids(captured.inputs) == [("postgres://lakehouse-embedded", "postgres.public.orders")]
    monkeypatch.setenv("LAKEHOUSE_SOURCE_DSN", "postgresql://shop:pw@db.example:5433/shop")
    captured = task_lineage("ingest", {"pipeline_name": "orders_cdc", "source_name": "orders_changes", "batch_date": "2026-11-19",
                                       "options": {**declared, "mode": "audit_log"}}, None, "start")
    assert ids(captured.inputs) == [("postgres://db.example:5433", "shop.public.audit_log_dml")]
    assert ids(captured.outputs) == [(ICEBERG, "raw.audit_log_dml")]

    delivered = task_lineage("deliver", {"pipeline_name": "tweets", "delivery_name": "tweets_per_day",
                                         "options": {"target_table": "analytics.tweets_per_day"}}, {"rows": 3}, "complete")
    assert ids(delivered.inputs) == [(ICEBERG, "marts.tweets_per_day")]
    assert ids(delivered.outputs) == [("postgres://db.example:5433", "shop.analytics.tweets_per_day")]
    assert delivered.outputs[0].outputFacets["outputStatistics"].rowCount == 3
