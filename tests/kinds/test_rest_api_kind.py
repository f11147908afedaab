"""The ``rest_api`` ingest kind end to end: a pipeline folder declaring an entry that reads the test's
own JSON API server (lakehouse.sources.json_api_server) over JSON-lines files the test writes, then
the marketing pipeline's ``ads`` entry in simulate mode.

Expected rows come from the files the test wrote (the current version of each key, read here), never
from the code under test; the raw and quarantine tables are read back with PyIceberg.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from lakehouse.catalog import load_table
from lakehouse.ingest import build_ingest
from lakehouse.kinds import InvalidOptions
from lakehouse.loader import pipeline_module
from lakehouse.pipeline import InvalidPipeline, get_pipeline, load_pipeline
from lakehouse.sources import postgres_server
from lakehouse.sources.json_api_server import JsonApiServer
from lakehouse.sync import SyncError
from lakehouse.testing import rendered_options

DAY = dt.date(2026, 11, 20)
TOKEN = "tok-7f3a9c1e-very-secret"
TOKEN_VARIABLE = "TEST_AD_API_TOKEN"
RESOURCES = [
    {"name": "campaigns",
     "columns": {"id": "long", "name": "string", "daily_budget": "decimal(10,2)", "starts_on": "date",
                 "active": "boolean", "updated_at": "timestamp"}},
    {"name": "ad_stats", "primary_key": ["ad_id", "date"],
     "columns": {"ad_id": "long", "date": "date", "clicks": "long", "spend": "decimal(12,2)",
                 "updated_at": "timestamp"}},
]
KEYS = {spec["name"]: tuple(spec.get("primary_key", ["id"])) for spec in RESOURCES}


def campaign(id_: int, updated_at: str, **fields) -> dict:
    return {"id": id_, "name": f"Campaign {id_}", "daily_budget": 10 + id_ + 0.25, "starts_on": "2026-10-01",
            "active": id_ % 2 == 0, "updated_at": updated_at, **fields}


# Ten campaigns on day one, with budgets as JSON numbers and as text, timestamps with and without
# an offset, and id 3 updated later the same day (in the second file: the later version wins).
CAMPAIGNS_DAY_ONE = [campaign(i, f"2026-11-19T{8 + i:02d}:00:00+00:00") for i in range(1, 11)]
CAMPAIGNS_DAY_ONE[0] = campaign(1, "2026-11-19T10:30:00+02:00", daily_budget="1234.50")  # 08:30 UTC
CAMPAIGNS_DAY_ONE[1] = campaign(2, "2026-11-19T09:15:00")  # no offset: UTC
CAMPAIGN_3_LATER = campaign(3, "2026-11-19T20:00:00+00:00", name="Campaign 3, renamed")
STATS_DAY_ONE = [{"ad_id": ad, "date": "2026-11-19", "clicks": ad * 3, "spend": f"{ad}.10",
                  "updated_at": f"2026-11-19T23:{ad:02d}:00+00:00"} for ad in range(1, 6)]


def write_jsonl(folder: Path, resource: str, name: str, records: list[dict]) -> None:
    (folder / resource).mkdir(parents=True, exist_ok=True)
    (folder / resource / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def current(folder: Path, resource: str) -> dict[tuple, dict]:
    """The API's records as the files hold them: the last line of a key wins (files in name order)."""
    latest = {}
    for path in sorted((folder / resource).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            latest[tuple(record.get(k) for k in KEYS.get(resource, ("id",)))] = record
    return latest


class Harness:
    """A JSON API server over ``api_folder``, and a pipeline folder ``api_test`` whose entry ``api`` reads it."""

    def __init__(self, tmp_path: Path, monkeypatch):
        self.api_folder = tmp_path / "api"
        self.folder = tmp_path / "api_test"
        (self.folder / "dbt").mkdir(parents=True)
        (self.folder / "dbt" / "dbt_project.yml").write_text("name: api_test\n")
        monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
        self.server: JsonApiServer | None = None

    def start(self, **settings) -> JsonApiServer:
        self.stop()
        self.server = JsonApiServer(self.api_folder, keys=KEYS, token=TOKEN, **settings).start()
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def declare(self, resources=None, **options) -> Path:
        options = {"base_url": self.server.url if self.server else "http://127.0.0.1:9", "token_variable": TOKEN_VARIABLE,
                   "page_size": 4, "max_attempts": 3, "backoff_seconds": 0.01, **options,
                   "resources": RESOURCES if resources is None else resources}
        declaration = {"name": "api_test", "ingest": [{"name": "api", "kind": "rest_api", "options": options}]}
        (self.folder / "pipeline.yml").write_text(yaml.safe_dump(declaration))
        return self.folder

    def sync(self, resource: str = "campaigns", **options) -> dict:
        pipeline = load_pipeline(self.declare(**options))
        source = next(s for s in pipeline.ingest if s.name == f"api_{resource}")
        assert source.table == f"raw.api_{resource}"
        return build_ingest(pipeline, source, rendered_options(pipeline, source.options)).land(DAY, "test-run")

    def raw(self, resource: str = "campaigns") -> list[dict]:
        table = load_table(f"raw.api_{resource}")
        rows = [] if table is None else table.scan().to_arrow().to_pylist()
        return sorted(rows, key=lambda row: [row[k] for k in KEYS[resource]])

    def snapshot(self, resource: str = "campaigns") -> int | None:
        table = load_table(f"raw.api_{resource}")
        return None if table is None or table.current_snapshot() is None else table.current_snapshot().snapshot_id

    def quarantine(self, resource: str = "campaigns") -> list[dict]:
        table = load_table(f"quarantine.rejected_api_{resource}")
        return [] if table is None else table.scan().to_arrow().to_pylist()


@pytest.fixture
def harness(lakehouse_home, tmp_path, monkeypatch):
    harness = Harness(tmp_path, monkeypatch)
    write_jsonl(harness.api_folder, "campaigns", "2026-11-19-a", CAMPAIGNS_DAY_ONE)
    write_jsonl(harness.api_folder, "campaigns", "2026-11-19-b", [CAMPAIGN_3_LATER])
    write_jsonl(harness.api_folder, "ad_stats", "2026-11-19", STATS_DAY_ONE)
    harness.start()
    yield harness
    harness.stop()


def assert_reconciles(summary: dict, served: int) -> None:
    assert summary["fetched"] == served
    assert summary["fetched"] == (summary["landed"] + summary["quarantined"] + summary["superseded"]
                                  + summary["already_landed"]), summary


def landed_ids(harness: Harness) -> list[int]:
    return [row["id"] for row in harness.raw()]


# -- 1. first run, rerun, the next day -------------------------------------------------------------

def test_the_first_run_lands_every_record_typed(harness):
    summary = harness.sync()
    held = current(harness.api_folder, "campaigns")
    assert_reconciles(summary, len(held))
    assert (summary["landed"], summary["quarantined"], summary["pages"]) == (10, 0, 3)  # 10 records, 4 a page
    assert summary["api"] == harness.server.url and summary["table"] == "raw.api_campaigns"
    rows = harness.raw()
    assert landed_ids(harness) == sorted(id_ for (id_,) in held)
    by_id = {row["id"]: row for row in rows}
    assert by_id[1]["daily_budget"] == Decimal("1234.50")  # text
    assert by_id[4]["daily_budget"] == Decimal("14.25")  # a JSON number
    assert by_id[1]["starts_on"] == dt.date(2026, 10, 1)
    assert by_id[1]["updated_at"] == dt.datetime(2026, 11, 19, 8, 30, tzinfo=dt.UTC)  # +02:00 in UTC
    assert by_id[2]["updated_at"] == dt.datetime(2026, 11, 19, 9, 15, tzinfo=dt.UTC)  # naive read as UTC
    assert (by_id[2]["active"], by_id[3]["active"]) == (True, False)
    assert by_id[3]["name"] == "Campaign 3, renamed"  # the later version of the key
    # Every declared field typed as declared, plus the lineage columns.
    schema = load_table("raw.api_campaigns").schema().as_arrow()
    assert schema.field("daily_budget").type == pa.decimal128(10, 2)
    assert schema.field("starts_on").type == pa.date32()
    assert schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("id").type == pa.int64() and schema.field("active").type == pa.bool_()
    assert {"_batch_date", "_ingested_at"} <= set(schema.names)
    # A compound key, and decimals from text.
    stats = harness.sync("ad_stats")
    assert_reconciles(stats, len(STATS_DAY_ONE))
    assert [(r["ad_id"], r["date"], r["clicks"], r["spend"]) for r in harness.raw("ad_stats")] == [
        (ad, dt.date(2026, 11, 19), ad * 3, Decimal(f"{ad}.10")) for ad in range(1, 6)]


def test_a_rerun_with_nothing_new_writes_nothing(harness):
    harness.sync()
    snapshot = harness.snapshot()
    again = harness.sync()
    assert harness.snapshot() == snapshot
    # Only the boundary (the record at the highest updated_at, inclusive) comes back, and is known.
    assert (again["fetched"], again["already_landed"], again["landed"]) == (1, 1, 0)
    assert_reconciles(again, 1)
    assert len(harness.raw()) == 10


def test_new_and_updated_records_land_once_and_an_update_replaces_its_key(harness):
    harness.sync()
    write_jsonl(harness.api_folder, "campaigns", "2026-11-20", [
        campaign(5, "2026-11-20T07:00:00+00:00", daily_budget=99.5),
        campaign(11, "2026-11-20T08:00:00+00:00"),
        campaign(12, "2026-11-20T08:00:00+00:00"),
    ])
    summary = harness.sync()
    # Asked from the boundary on: campaign 3 (20:00, already landed) and the three records of the day.
    assert (summary["fetched"], summary["landed"], summary["already_landed"]) == (4, 3, 1)
    assert_reconciles(summary, 4)
    assert summary["previous_cursor"] == "2026-11-19 20:00:00+00:00"
    assert summary["cursor"] == "2026-11-20 08:00:00+00:00"
    rows = harness.raw()
    assert landed_ids(harness) == list(range(1, 13))
    assert next(row for row in rows if row["id"] == 5)["daily_budget"] == Decimal("99.50")
    # And again: nothing more.
    snapshot = harness.snapshot()
    assert harness.sync()["landed"] == 0 and harness.snapshot() == snapshot


def test_a_record_updated_while_the_run_pages_lands_once_and_none_is_skipped(harness):
    server, read = harness.server, harness.server.records
    moved = harness.api_folder / "campaigns" / "2026-11-20.jsonl"

    def records(resource):  # campaign 1, served on page 1, is updated before page 2 is read
        if server.pages_served == 1 and not moved.exists():
            write_jsonl(harness.api_folder, "campaigns", "2026-11-20",
                        [campaign(1, "2026-11-20T09:00:00+00:00", name="Campaign 1, moved")])
        return read(resource)

    server.records = records
    summary = harness.sync()
    assert (summary["fetched"], summary["superseded"], summary["landed"], summary["pages"]) == (11, 1, 10, 3)
    assert_reconciles(summary, 11)
    assert landed_ids(harness) == list(range(1, 11))
    assert harness.raw()[0]["name"] == "Campaign 1, moved"


# -- 2. an API that pushes back --------------------------------------------------------------------

def test_a_rate_limited_api_is_waited_for_and_yields_every_record(harness):
    server = harness.start(burst=1, rate=1.0, retry_after=1)
    started = time.monotonic()
    summary = harness.sync(page_size=6, max_attempts=4)  # 2 pages: the second one waits for the bucket
    elapsed = time.monotonic() - started
    assert server.rate_limited > 0
    assert elapsed >= 1.0  # dlt waited the Retry-After (1 s), not its 0.01 s backoff
    assert_reconciles(summary, 10)
    assert summary["landed"] == 10 and landed_ids(harness) == list(range(1, 11))


def test_a_page_answering_503_is_retried_and_then_read(harness):
    harness.server.fail_pages = {("campaigns", 2): 2}
    summary = harness.sync()
    assert harness.server.fail_pages == {("campaigns", 2): 0}
    assert summary["landed"] == 10 and summary["pages"] == 3
    assert landed_ids(harness) == list(range(1, 11))


def test_a_503_that_outlasts_the_attempts_fails_and_lands_nothing(harness):
    harness.server.fail_pages = {("campaigns", 1): 5}
    with pytest.raises(SyncError, match=r"/v1/campaigns failed after 0 page\(s\) and 3 attempt\(s\): HTTPError: 503"):
        harness.sync()
    assert load_table("raw.api_campaigns") is None


# -- 3. a page that is not JSON, an API that dies --------------------------------------------------

def test_a_malformed_page_is_quarantined_fails_the_run_and_the_rerun_lands_it_once(harness):
    harness.sync()
    before = harness.snapshot()
    write_jsonl(harness.api_folder, "campaigns", "2026-11-20",
                [campaign(i, f"2026-11-20T{i - 10:02d}:00:00+00:00") for i in range(11, 18)])
    harness.server.malformed_pages = {("campaigns", 2)}  # of 8 records (boundary + 7 new): pages 1 and 2
    with pytest.raises(SyncError) as failure:
        harness.sync()
    message = str(failure.value)
    assert message.startswith("raw.api_campaigns: page 2 of ")
    assert f"{harness.server.url}/v1/campaigns is not JSON" in message
    assert "nothing was landed" in message and "quarantine.rejected_api_campaigns" in message
    assert harness.snapshot() == before and len(harness.raw()) == 10
    [quarantined] = harness.quarantine()
    assert quarantined["rejection_reason"].startswith("page 2 of ") and "is not JSON" in quarantined["rejection_reason"]
    assert quarantined["record"].startswith('{"data": [') and quarantined["primary_key"] is None
    with pytest.raises(json.JSONDecodeError):
        json.loads(quarantined["record"])
    # The page is fixed: the rerun asks for the same window, lands the 7 new records once, and the
    # window's quarantine row is replaced (by nothing).
    harness.server.malformed_pages = set()
    summary = harness.sync()
    assert (summary["landed"], summary["already_landed"], summary["quarantined"]) == (7, 1, 0)
    assert landed_ids(harness) == list(range(1, 18))
    assert harness.quarantine() == []


def test_an_api_that_dies_mid_run_lands_nothing_and_the_rerun_lands_everything_once(harness):
    harness.server.die_after_pages = 1
    with pytest.raises(SyncError) as failure:
        harness.sync()
    message = str(failure.value)
    assert "/v1/campaigns failed after 1 page(s) and 3 attempt(s): ConnectionError" in message
    assert "nothing was landed (the next run starts from the same cursor)" in message
    assert TOKEN not in message and TOKEN not in repr(failure.value.__cause__)
    assert load_table("raw.api_campaigns") is None and harness.quarantine() == []
    harness.server.die_after_pages = None
    summary = harness.sync()
    assert summary["landed"] == 10 and landed_ids(harness) == list(range(1, 11))
    assert_reconciles(summary, 10)


# -- 4. records that are not of the declared columns -----------------------------------------------

def test_malformed_records_are_quarantined_with_the_reason_and_the_rest_land(harness):
    write_jsonl(harness.api_folder, "ad_stats", "2026-11-20", [
        {"ad_id": 6, "date": "2026-11-20", "clicks": "n/a", "spend": 1.5, "updated_at": "2026-11-20T01:00:00Z"},
        {"ad_id": 7, "date": "20.11.2026", "clicks": 2, "spend": 1.5, "updated_at": "2026-11-20T02:00:00Z"},
        {"ad_id": 8, "date": "2026-11-20", "clicks": 2, "spend": 1.555, "updated_at": "2026-11-20T03:00:00Z"},
        {"ad_id": 9, "date": "2026-11-20", "clicks": 4, "spend": "0.40", "updated_at": "2026-11-20T04:00:00Z"},
        # Numbers no decimal(12,2) holds: quarantined like any other bad value, not the run's end.
        {"ad_id": 10, "date": "2026-11-20", "clicks": 1, "spend": 1e30, "updated_at": "2026-11-20T01:30:00Z"},
        {"ad_id": 11, "date": "2026-11-20", "clicks": 1, "spend": "Infinity", "updated_at": "2026-11-20T01:40:00Z"},
    ])
    write_jsonl(harness.api_folder, "campaigns", "2026-11-20", [
        {key: value for key, value in campaign(0, "2026-11-20T05:00:00Z").items() if key != "id"},
        campaign(11, "not a time"),
    ])
    stats = harness.sync("ad_stats")
    assert_reconciles(stats, 11)
    assert (stats["landed"], stats["quarantined"]) == (6, 5)
    assert sorted((q["primary_key"], q["rejection_reason"]) for q in harness.quarantine("ad_stats")) == [
        ('[10, "2026-11-20"]', "bad spend: 1e+30 is not decimal(12,2)"),
        ('[11, "2026-11-20"]', "bad spend: 'Infinity' is not decimal(12,2)"),
        ('[6, "2026-11-20"]', "bad clicks: 'n/a' is not long"),
        ('[7, "20.11.2026"]', "bad date: '20.11.2026' is not date"),
        ('[8, "2026-11-20"]', "bad spend: 1.555 is not decimal(12,2)"),
    ]
    # The record as the API sent it, not as far as it could be typed.
    [first] = [q for q in harness.quarantine("ad_stats") if q["primary_key"] == '[6, "2026-11-20"]']
    assert json.loads(first["record"]) == {"ad_id": 6, "date": "2026-11-20", "clicks": "n/a", "spend": 1.5,
                                           "updated_at": "2026-11-20T01:00:00Z"}
    assert [(r["ad_id"], r["spend"]) for r in harness.raw("ad_stats")][-1] == (9, Decimal("0.40"))
    campaigns = harness.sync()
    assert_reconciles(campaigns, 12)
    assert (campaigns["landed"], campaigns["quarantined"]) == (10, 2)
    assert sorted(q["rejection_reason"] for q in harness.quarantine()) == [
        "bad updated_at: 'not a time' is not timestamp", "missing key column id"]
    assert landed_ids(harness) == list(range(1, 11))
    # The campaign without an id is later than every landed one, so the rerun fetches it again: it
    # stays quarantined once, and raw is not written.
    snapshot = harness.snapshot()
    again = harness.sync()
    assert_reconciles(again, 2)  # the boundary campaign and the one without an id
    assert harness.snapshot() == snapshot
    assert sorted(q["rejection_reason"] for q in harness.quarantine()) == [
        "bad updated_at: 'not a time' is not timestamp", "missing key column id"]


def test_values_are_typed_strictly_by_their_declared_columns():
    from lakehouse.sync.records import type_records

    columns = {"n": "long", "x": "double", "d": "decimal(38,2)", "on": "date", "at": "timestamp", "ok": "boolean"}
    rows, rejected, undeclared = type_records([
        {"n": 1, "x": 2, "d": "123456789012345678901234567890.12", "on": "2026-11-20",
         "at": "2026-11-20T01:00:00-05:00", "ok": False, "extra": 1},
        {"n": None},  # missing fields and nulls are nulls
        {"n": "12"}, {"n": True}, {"x": "2.5"}, {"d": "NaN"}, {"ok": "true"}, {"at": 1732060800}, "a string",
    ], columns)
    assert rows.to_pylist() == [
        {"n": 1, "x": 2.0, "d": Decimal("123456789012345678901234567890.12"), "on": dt.date(2026, 11, 20),
         "at": dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC), "ok": False},
        dict.fromkeys(columns),
    ]
    assert [item.reason for item in rejected] == [
        "bad n: '12' is not long", "bad n: True is not long", "bad x: '2.5' is not double",
        "bad d: 'NaN' is not decimal(38,2)", "bad ok: 'true' is not boolean", "bad at: 1732060800 is not timestamp",
        "not a JSON object: str"]
    assert undeclared == {"extra"}


# -- 5. declarations and secrets -------------------------------------------------------------------

@pytest.mark.parametrize(("resource", "problem"), [
    ({"name": "campaigns"}, "'columns' must map each field landed to its type"),
    ({"name": "campaigns", "columns": {"uid": "long", "updated_at": "timestamp"}},
     "key or cursor field 'id' is not among its columns"),
    ({"name": "campaigns", "cursor_field": "modified", "columns": {"id": "long", "updated_at": "timestamp"}},
     "key or cursor field 'modified' is not among its columns"),
    ({"name": "campaigns", "columns": {"id": "lng", "updated_at": "timestamp"}},
     "unknown column type 'lng'; use string, long, double, boolean, date, timestamp or decimal(p,s)"),
    ({"name": "campaigns", "columns": {"id": "decimal(40,2)", "updated_at": "timestamp"}},
     "type 'decimal(40,2)': precision must be 1..38 and scale at most the precision"),
    ({"name": "campaigns", "colums": {"id": "long"}}, "unknown field(s) ['colums']"),
])
def test_a_bad_resource_declaration_is_refused_at_load_naming_the_resource(harness, resource, problem):
    folder = harness.declare(resources=[resource])
    with pytest.raises(InvalidOptions) as error:
        load_pipeline(folder)
    assert isinstance(error.value, InvalidPipeline)
    assert str(error.value).startswith(f"{folder / 'pipeline.yml'} ingest 'api_campaigns' resource 'campaigns': ")
    assert problem in str(error.value)


def test_an_entry_without_resources_is_refused_at_load(harness):
    folder = harness.declare(resources=[])
    with pytest.raises(InvalidPipeline, match="ingest 'api': option 'resources' must list the API's resources"):
        load_pipeline(folder)


def test_the_token_never_appears_in_logs_or_errors(harness, lakehouse_logs, monkeypatch):
    # dlt's request log too, at its most talkative (DEBUG logs each request's parameters and headers).
    seen: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = seen.append
    loggers = [logging.getLogger(name) for name in ("lakehouse", "dlt")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    loggers[1].addHandler(handler)
    try:
        harness.server.fail_pages = {("campaigns", 2): 1}
        summary = harness.sync()
        harness.server.die_after_pages = harness.server.pages_served
        with pytest.raises(SyncError) as died:
            harness.sync("ad_stats")
        monkeypatch.setenv(TOKEN_VARIABLE, "a-wrong-token-x")
        harness.server.die_after_pages = None
        with pytest.raises(SyncError, match=r"failed after 0 page\(s\) and 1 attempt\(s\): HTTPError: 401") as refused:
            harness.sync("ad_stats")
    finally:
        loggers[1].removeHandler(handler)
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
    assert summary["landed"] == 10
    assert any("synced raw.api_campaigns" in record.getMessage() for record in lakehouse_logs)
    assert any("/v1/campaigns" in record.getMessage() for record in seen)  # dlt's request log was heard
    texts = [record.getMessage() for record in [*lakehouse_logs, *seen]]
    texts += [str(died.value), str(refused.value), repr(died.value.__cause__), repr(refused.value.__cause__),
              json.dumps(summary, default=str)]
    for text in texts:
        assert TOKEN not in text and "a-wrong-token-x" not in text


def test_without_a_token_the_api_refuses_and_the_error_says_401(harness, monkeypatch):
    monkeypatch.delenv(TOKEN_VARIABLE)
    with pytest.raises(SyncError) as refused:
        harness.sync()
    assert "/v1/campaigns failed after 0 page(s) and 1 attempt(s): HTTPError: 401 Client Error" in str(refused.value)
    assert "check the API's token; nothing was landed" in str(refused.value)
    assert harness.server.requests == 1 and harness.server.pages_served == 0  # a 401 is not retried


# -- 6. the marketing pipeline's ad platform, simulated --------------------------------------------

def test_the_marketing_ad_platform_is_copied_exactly_two_days_running(orders_db, lakehouse_home, monkeypatch):
    dsn, _ = orders_db
    monkeypatch.setenv(postgres_server.DSN_VARIABLE, dsn)
    monkeypatch.delenv("AD_PLATFORM_TOKEN", raising=False)
    pipeline = get_pipeline("marketing")
    tasks = [source for source in pipeline.ingest if source.kind == "rest_api"]
    assert [task.table for task in tasks] == [f"raw.ads_{name}" for name in
                                              ("campaigns", "ad_groups", "ads", "ad_stats", "conversions")]
    folder = lakehouse_home / pipeline_module("marketing").AD_PLATFORM_FOLDER
    keys = {task.table: tuple(task.options["resource"].get("primary_key", ["id"])) for task in tasks}
    for day in (DAY, DAY + dt.timedelta(days=1)):
        landed_before = {task.table: len(_rows(task.table)) for task in tasks}
        for task in tasks:
            options = rendered_options(pipeline, task.options, generator_args={"seed": 5, "customers": 30})
            summary = build_ingest(pipeline, task, options).land(day, "test")
            assert summary["api"] == "http://lakehouse-demo-api/sources/ad_platform"
            assert summary["fetched"] == (summary["landed"] + summary["quarantined"] + summary["superseded"]
                                          + summary["already_landed"]), summary
            # Everything the day's file holds came in this run (the API replaces a restated key).
            resource = task.options["resource"]["name"]
            file = folder / resource / f"{day}.jsonl"  # the entities are written once, on the first day
            today = {tuple(r[k] for k in keys[task.table])
                     for r in map(json.loads, file.read_text().splitlines() if file.exists() else [])}
            assert summary["fetched"] - summary["already_landed"] >= len(today)
        # Raw holds exactly the keys of every file (the two malformed records of a later day aside).
        for task in tasks:
            resource = task.options["resource"]["name"]
            held = {}
            for path in sorted((folder / resource).glob("*.jsonl")):
                for record in map(json.loads, path.read_text().splitlines()):
                    held[tuple(record[k] for k in keys[task.table])] = record
            good = {key: r for key, r in held.items()
                    if not (resource == "ad_stats" and r["clicks"] == "n/a") and None not in key}
            rows = _rows(task.table)
            assert len(rows) == len(good) >= landed_before[task.table], task.table
            assert {tuple(str(row[k]) for k in keys[task.table]) for row in rows} == {
                tuple(str(v) for v in key) for key in good}
    stats = {(row["ad_id"], row["date"].isoformat()): row for row in _rows("raw.ads_ad_stats")}
    restated = [r for r in map(json.loads, (folder / "ad_stats" / f"{DAY + dt.timedelta(days=1)}.jsonl")
                               .read_text().splitlines()) if r["date"] == DAY.isoformat()]
    assert len(restated) == 3  # yesterday's stats restated: the later version replaced the first
    for record in restated:
        row = stats[(record["ad_id"], record["date"])]
        assert (row["clicks"], row["spend"]) == (record["clicks"], Decimal(str(record["spend"])))
    quarantined = {table: [q["rejection_reason"] for q in _rows(f"quarantine.rejected_ads_{table}")]
                   for table in ("ad_stats", "conversions")}
    assert quarantined == {"ad_stats": ["bad clicks: 'n/a' is not long"], "conversions": ["missing key column id"]}


def _rows(table: str) -> list[dict]:
    found = load_table(table)
    return [] if found is None else found.scan().to_arrow().to_pylist()

