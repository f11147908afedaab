"""The tweets pipeline: generator, `delimited_file` ingest, dbt marts and the `postgres` delivery.

Every expectation is computed again from the generated FILE by the small plain-Python reader below
(`read_export`), written from the format's documentation (pipelines/tweets/README.md), not from the
code under test: landed rows, quarantined lines with their exact reasons, and every mart value.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.fs
import pytest
from psycopg2.extensions import make_dsn, parse_dsn

from lakehouse import compute
from lakehouse.catalog import _catalog_for, load_table
from lakehouse.identifiers import quote
from lakehouse.ingest import run_ingest
from lakehouse.loader import pipeline_module
from lakehouse.pipeline import Delivery, get_pipeline
from lakehouse.settings import REPO_ROOT
from lakehouse.sources import postgres_server
from lakehouse.testing import dbt as run_dbt
from lakehouse.testing import rendered_options

write_tweets = pipeline_module("tweets").write_tweets

PROJECT = REPO_ROOT / "pipelines" / "tweets" / "dbt"
LAKEHOUSE = str(Path(sys.executable).with_name("lakehouse"))
DAY1, DAY2 = dt.date(2026, 11, 19), dt.date(2026, 11, 20)
MARTS = ("tweets_per_hour", "tweets_per_day", "top_languages_per_day")

# --- an independent reader of the export format ---------------------------------------------------

COLUMNS = ("id", "user", "created_at", "text", "lang", "retweet_count", "like_count")
TIMESTAMP = "%a %b %d %H:%M:%S %z %Y"
ESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


class Bad(Exception):
    pass


def _integer(name: str, value: str) -> int:
    if not re.fullmatch(r"-?[0-9]+", value) or not -(2**63) <= int(value) < 2**63:
        raise Bad(f"bad {name}: '{value}'")
    if int(value) < 0:
        raise Bad(f"negative {name}: {value}")
    return int(value)


def judge(raw: bytes) -> dict:
    """A data line -> its typed row, or raises Bad(reason)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Bad("invalid UTF-8") from None
    text = text.removesuffix("\r")
    fields = text.split("\t")
    if len(fields) != len(COLUMNS):
        raise Bad(f"expected {len(COLUMNS)} fields, got {len(fields)}")
    value = dict(zip(COLUMNS, fields))
    unescape = lambda s: re.sub(r"\\([\\tnr])", lambda m: ESCAPES[m[1]], s)  # noqa: E731
    row = {"id": _integer("id", value["id"])}
    if not value["user"].strip():
        raise Bad("missing user")
    row["user"] = unescape(value["user"])
    try:  # exactly as Python writes it back: no rolled-over dates, the right weekday, +HHMM offsets
        when = dt.datetime.strptime(value["created_at"], TIMESTAMP)
        if when.strftime(TIMESTAMP) != value["created_at"]:
            raise ValueError
    except ValueError:
        raise Bad(f"bad created_at: '{value['created_at']}'") from None
    row["created_at"] = when.astimezone(dt.UTC)
    row["utc_offset_minutes"] = int(when.utcoffset().total_seconds() // 60)
    row["text"] = unescape(value["text"])
    if not value["lang"].strip():
        raise Bad("missing lang")
    row["lang"] = unescape(value["lang"])
    row["retweet_count"] = _integer("retweet_count", value["retweet_count"])
    row["like_count"] = _integer("like_count", value["like_count"])
    return row


def read_export(data: bytes) -> dict:
    """{lines, good: [row + _source_row], rejected: [(line, reason, raw)], landed: last row per id}."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    assert lines[0].decode() == "\t".join(COLUMNS)
    good, rejected = [], []
    for number, raw in enumerate(lines[1:], start=2):
        try:
            good.append({**judge(raw), "_source_row": number})
        except Bad as reason:
            rejected.append((number, str(reason), raw.decode("utf-8", "replace").removesuffix("\r")))
    landed = {}
    for row in good:
        landed[row["id"]] = row  # the last line of an id wins
    return {"lines": len(lines) - 1, "good": good, "rejected": rejected, "landed": landed}


def expected_marts(files: list[tuple[dt.date, str, bytes]]) -> dict[str, list[tuple]]:
    """The marts from (batch date, source file, bytes) of every file: one row per tweet, from the latest file."""
    tweets = {}
    for day, source, data in files:
        for row in read_export(data)["landed"].values():
            rank = (day, source, row["_source_row"])
            if row["id"] not in tweets or rank > tweets[row["id"]][0]:
                tweets[row["id"]] = (rank, row)
    hours, days = collections.defaultdict(list), collections.defaultdict(list)
    for _, row in tweets.values():
        at = row["created_at"]
        hours[(at.date(), at.hour)].append(row)
        days[at.date()].append(row)
    per_hour = sorted(
        (date, dt.datetime(date.year, date.month, date.day, hour, tzinfo=dt.UTC), hour, len(rows),
         len({r["user"] for r in rows}), sum(r["retweet_count"] for r in rows), sum(r["like_count"] for r in rows))
        for (date, hour), rows in hours.items()
    )
    per_day, languages = [], []
    for date, rows in sorted(days.items()):
        by_hour = collections.Counter(r["created_at"].hour for r in rows)
        peak = min(by_hour, key=lambda h: (-by_hour[h], h))
        per_day.append((date, len(rows), len({r["user"] for r in rows}), len({r["lang"] for r in rows}),
                        sum(r["retweet_count"] for r in rows), sum(r["like_count"] for r in rows), peak, by_hour[peak]))
        by_lang = collections.defaultdict(list)
        for r in rows:
            by_lang[r["lang"]].append(r)
        ranked = sorted(by_lang.items(), key=lambda item: (-len(item[1]), item[0]))[:10]
        for rank, (lang, lang_rows) in enumerate(ranked, start=1):
            share = (Decimal(len(lang_rows) * 100) / Decimal(len(rows))).quantize(Decimal("0.01"), ROUND_HALF_UP)
            languages.append((date, rank, lang, len(lang_rows), len({r["user"] for r in lang_rows}), share))
    return {"tweets_per_hour": per_hour, "tweets_per_day": per_day, "top_languages_per_day": sorted(languages)}


# --- helpers ---------------------------------------------------------------------------------------


def lake(sql: str) -> list[tuple]:
    return compute.connect().sql(sql).fetchall()


def lake_marts() -> dict[str, list[tuple]]:
    return {
        "tweets_per_hour": lake("select tweet_date, hour_start_utc, hour_of_day, tweets, authors, retweets, likes"
                                " from marts.tweets_per_hour order by 1, 3"),
        "tweets_per_day": lake("select tweet_date, tweets, authors, languages, retweets, likes, peak_hour_utc,"
                               " peak_hour_tweets from marts.tweets_per_day order by 1"),
        "top_languages_per_day": lake("select tweet_date, language_rank, lang, tweets, authors, share_pct"
                                      " from marts.top_languages_per_day order by 1, 2, 3"),
    }


def dbt(*args: str, day: dt.date | None = None) -> None:
    argv = list(args)
    if day:
        argv += ["--vars", f"{{data_interval_start: '{day}', data_interval_end: '{day + dt.timedelta(days=1)}'}}"]
    # dbt-duckdb keeps its in-memory DuckDB across invocations in a process; one made for a local-disk
    # lakehouse earlier in the session has no S3 secret: start from a fresh one.
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    DuckDBConnectionManager.close_all_connections()
    result = run_dbt(PROJECT, *argv)
    failed = [(r.node.name, r.message) for r in (result.result or []) if str(r.status) in ("error", "fail")]
    assert result.success, f"dbt {args[0]} failed: {failed or result.exception}"


def ingest_options(source: str, **extra) -> dict:
    pipeline = get_pipeline("tweets")
    return rendered_options(pipeline, pipeline.ingest[0].options, source=source, simulate=False, **extra)


def raw_rows(source: str) -> list[dict]:
    return compute.connect().sql(
        "select id, \"user\", created_at, utc_offset_minutes, text, lang, retweet_count, like_count, _source_row"
        f" from raw.tweets where _source_file = '{source}' order by id").to_arrow_table().to_pylist()


def table_contents(name: str) -> list[str]:
    """Every row of a table, the load time left out (it changes with every load)."""
    con = compute.connect()
    columns = [c for c in con.sql(f"select * from {name} limit 0").columns if c != "_ingested_at"]
    return sorted(map(repr, con.sql(f"select {', '.join(map(quote, columns))} from {name}").fetchall()))


def assert_marts_equal(actual: dict, expected: dict) -> None:
    """Exact, but share_pct within 0.01: SQL rounds a double, the oracle an exact fraction."""
    for mart in MARTS:
        got, want = actual[mart], expected[mart]
        if mart == "top_languages_per_day":
            assert [row[:5] for row in got] == [row[:5] for row in want], mart
            assert all(abs(Decimal(g[5]) - w[5]) <= Decimal("0.01") for g, w in zip(got, want)), mart
        else:
            assert got == want, mart


def with_reexports(data: bytes, earlier: bytes, count: int) -> bytes:
    """``data`` plus ``count`` good lines of ``earlier`` exported again, their like_count grown by 100."""
    copies = []
    for row in list(read_export(earlier)["landed"].values())[:count]:
        fields = earlier.split(b"\n")[row["_source_row"] - 1].split(b"\t")
        fields[6] = str(int(fields[6]) + 100).encode()
        copies.append(b"\t".join(fields))
    return data + b"\n".join(copies) + b"\n"


# --- generator -----------------------------------------------------------------------------------


def test_the_generator_is_deterministic_and_writes_the_documented_format(tmp_path):
    first = write_tweets(str(tmp_path / "a.tsv"), rows=1500, day=DAY2, seed=5, bad_rate=0.05)
    again = write_tweets((tmp_path / "b.tsv").as_uri(), rows=1500, day=DAY2, seed=5, bad_rate=0.05)
    other = write_tweets(str(tmp_path / "c.tsv"), rows=1500, day=DAY2, seed=6, bad_rate=0.05)
    data = (tmp_path / "a.tsv").read_bytes()
    assert data == (tmp_path / "b.tsv").read_bytes() and first.sha256 == again.sha256
    assert data != (tmp_path / "c.tsv").read_bytes() and other.sha256 != first.sha256
    assert first.size == len(data)

    export = read_export(data)
    assert export["lines"] == first.lines == 1500
    # The truth the generator reports is what an independent reading of the file finds.
    assert [(b.line, b.reason) for b in first.bad] == [(line, reason) for line, reason, _ in export["rejected"]]
    assert len(export["landed"]) == first.tweets
    assert len(export["good"]) - len(export["landed"]) == first.duplicates > 0
    assert {b.kind for b in first.bad} == {"truncated", "unescaped_tab", "unescaped_newline", "bad_timestamp",
                                           "bad_encoding", "negative_count", "non_numeric_count", "bad_id"}
    rows = list(export["landed"].values())
    texts = [r["text"] for r in rows]
    assert any("\t" in t for t in texts) and any("\n" in t for t in texts) and any('"' in t for t in texts)
    assert any("\\" in t for t in texts) and any(not t.isascii() for t in texts)
    assert len({r["utc_offset_minutes"] for r in rows}) >= 6 and {-300, 0, 330} <= {r["utc_offset_minutes"] for r in rows}
    assert {r["created_at"].date() for r in rows} == {DAY1, DAY2}  # a few late tweets of the day before
    assert len(str(rows[0]["id"])) == 19 and len({r["lang"] for r in rows}) >= 6
    # A re-export keeps the tweet and grows its counts.
    firsts = {}
    for row in export["good"]:
        if row["id"] in firsts:
            assert row["like_count"] >= firsts[row["id"]]["like_count"] and row["text"] == firsts[row["id"]]["text"]
        firsts.setdefault(row["id"], row)


def test_the_loader_reads_utf8_and_timestamps_as_strictly_as_python():
    """Its vectorized checks accept exactly what Python's strict decoder and strptime round trip accept."""
    import random

    import pyarrow.compute as pc

    from lakehouse.files.delimited import _UTF8, Column, _read_timestamp

    rng = random.Random(7)
    samples = [bytes(rng.choice((rng.randrange(256), rng.randrange(0x80, 0xC0), rng.randrange(0xC0, 0xF8), 0x41))
                     for _ in range(rng.randrange(6))) for _ in range(5000)]
    valid = pc.match_substring_regex(pa.array(samples, pa.binary()), _UTF8).to_pylist()

    def decodes(data: bytes) -> bool:
        try:
            data.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False

    assert valid == [decodes(s) for s in samples] and 0 < sum(valid) < len(samples)
    values = ["Wed Nov 18 09:03:11 -0500 2026", "Thu Nov 18 09:03:11 -0500 2026", "Mon Nov 31 09:03:11 +0000 2026",
              "Sun Mar 01 00:00:00 +0530 2026", "Sat Feb 29 00:00:00 +0000 2028", "Wed Nov 18 23:59:60 +0000 2026",
              "Wed Nov 18 09:03:11 +05:30 2026", "Wed Nov 18 09:03:11 -0000 2026", "wed nov 18 09:03:11 +0000 2026",
              "Wed Nov 8 09:03:11 +0000 2026", "Wed Nov 18 09:03:11 +2400 2026", "2026-11-18T09:03:11+00:00", ""]
    parsed, ok, offset = _read_timestamp(pa.array(values), Column("t", "timestamp", format=TIMESTAMP))
    for value, when, accepted, minutes in zip(values, parsed.to_pylist(), ok.to_pylist(), offset.to_pylist()):
        try:
            expected = dt.datetime.strptime(value, TIMESTAMP)
            expected = expected if expected.strftime(TIMESTAMP) == value else None
        except ValueError:
            expected = None
        assert accepted == (expected is not None), value
        if accepted:
            assert when == expected and minutes == expected.utcoffset().total_seconds() // 60, value


# --- ingest and dbt, on local disk and on S3 -------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    """(where source files go, a function putting bytes there and returning the source URI)."""
    if request.param == "local":
        request.getfixturevalue("lakehouse_home")

        def put(name: str, data: bytes) -> str:
            path = tmp_path / "landing" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return path.as_uri()
    else:
        request.getfixturevalue("s3_lakehouse")
        from lakehouse.objectstore import filesystem
        from lakehouse.settings import load_settings

        bucket = load_settings().warehouse.split("/")[2]

        def put(name: str, data: bytes) -> str:
            uri = f"s3://{bucket}/landing/{name}"
            fs, path = filesystem(uri)
            with fs.open_output_stream(path) as stream:
                stream.write(data)
            return uri
    return request.param, put


def deliver_marts(dsn: str) -> dict[str, list[tuple]]:
    """Every mart delivered as the pipeline declares it; returns the PostgreSQL tables' rows."""
    from lakehouse.delivery import run_delivery

    os.environ[postgres_server.DSN_VARIABLE] = dsn
    try:
        for delivery in get_pipeline("tweets").deliver:
            run_delivery("tweets", delivery.name, dict(delivery.options), "test")
    finally:
        del os.environ[postgres_server.DSN_VARIABLE]
    return {m: postgres_rows(dsn, f"analytics.{m}") for m in MARTS}


def test_every_line_is_landed_deduplicated_or_quarantined_and_the_marts_count_the_file(storage, tmp_path, bi_db):
    kind, put = storage
    write_tweets(str(tmp_path / "day1.tsv"), rows=1200, day=DAY1, seed=3, bad_rate=0.05)
    write_tweets(str(tmp_path / "day2.tsv"), rows=1200, day=DAY2, seed=4, bad_rate=0.05)
    day1 = (tmp_path / "day1.tsv").read_bytes()
    day2 = with_reexports((tmp_path / "day2.tsv").read_bytes(), day1, 5)  # 5 tweets of day 1 again, later
    sources = {DAY1: put("tweets_2026-11-19.tsv", day1), DAY2: put("tweets_2026-11-20.tsv", day2)}
    contents = {DAY1: day1, DAY2: day2}

    results = {day: run_ingest("tweets", "tweets", day, ingest_options(source), run_id=f"test-{day}")
               for day, source in sources.items()}
    for day, result in results.items():
        export = read_export(contents[day])
        source = sources[day]
        # in = landed + duplicates dropped + quarantined, each line for the reason the format gives
        assert result["lines"] == export["lines"] == result["rows"] + result["duplicates"] + result["rejected"]
        assert result["rows"] == len(export["landed"]) and result["rejected"] == len(export["rejected"]) > 0
        quarantined = lake("select line_number, rejection_reason, raw_line from quarantine.rejected_tweets"
                           f" where _source_file = '{source}' order by 1")
        assert quarantined == export["rejected"]
        landed = raw_rows(source)
        assert landed == sorted(export["landed"].values(), key=lambda r: r["id"])
        assert result["raw_zone"].startswith("s3://" if kind == "s3" else "file://")
        summary = load_table("raw.tweets").current_snapshot().summary.additional_properties
        if day == DAY2:
            assert summary["lakehouse.file"] == source and summary["lakehouse.file.size"] == str(len(day2))
            assert summary["lakehouse.rows"] == str(result["rows"]) and summary["lakehouse.rejected"] == str(result["rejected"])
            assert summary["lakehouse.file.sha256"] == result["sha256"] and len(result["sha256"]) == 64
    partitions = {str(p["partition"]) for p in load_table("raw.tweets").inspect.partitions().to_pylist()}
    assert len(partitions) == 3  # by the tweets' UTC day: the day before DAY1, DAY1 and DAY2

    dbt("deps")
    dbt("build")
    expected = expected_marts([(day, sources[day], contents[day]) for day in (DAY1, DAY2)])
    assert_marts_equal(lake_marts(), expected)
    delivered = deliver_marts(bi_db[0])
    assert delivered == lake_marts()
    [(staged, unique)] = lake("select count(*), count(distinct tweet_id) from staging.stg_tweets")
    assert staged == unique == len(read_export(day1)["landed"].keys() | read_export(day2)["landed"].keys())

    # Loading day 1 again, then its daily dbt run: the same tables, nothing doubled.
    before = {name: table_contents(name) for name in ("raw.tweets", "quarantine.rejected_tweets", "staging.stg_tweets")}
    again = run_ingest("tweets", "tweets", DAY1, ingest_options(sources[DAY1]), run_id="test-again")
    assert {k: again[k] for k in ("rows", "duplicates", "rejected")} == {
        k: results[DAY1][k] for k in ("rows", "duplicates", "rejected")
    }
    dbt("build", day=DAY1)
    assert {name: table_contents(name) for name in before} == before
    assert_marts_equal(lake_marts(), expected)
    assert deliver_marts(bi_db[0]) == delivered  # replaced, not appended


def test_a_file_in_another_format_fails_instead_of_quarantining_everything(lakehouse_home, tmp_path):
    path = tmp_path / "wrong.tsv"
    path.write_text("\t".join(COLUMNS) + "\n" + "".join(f"{i},someone,now,hello,en,1,2\n" for i in range(20)))
    with pytest.raises(Exception, match="20 of 20 lines rejected"):
        run_ingest("tweets", "tweets", DAY1, ingest_options(path.as_uri()))
    path.write_text("id,user,created_at\n1,a,b\n")
    with pytest.raises(Exception, match="does not name the declared columns"):
        run_ingest("tweets", "tweets", DAY1, ingest_options(path.as_uri()))


# --- delivery to PostgreSQL ----------------------------------------------------------------------


@pytest.fixture
def bi_db(pg):
    """A fresh database and a role with a password: (dsn with the password, password)."""
    base = postgres_server.source_dsn(pg)
    name, password = "t_" + uuid.uuid4().hex[:12], "s3cret-" + uuid.uuid4().hex[:8]
    admin = postgres_server.connect(base)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
        cur.execute(f"CREATE ROLE {name} LOGIN PASSWORD %s", (password,))
        cur.execute(f"GRANT ALL ON DATABASE {name} TO {name}")
    parts = parse_dsn(base)
    dsn = make_dsn(host=parts["host"], port=parts["port"], dbname=name, user=name, password=password)
    yield dsn, password
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE {name} WITH (FORCE)")
        cur.execute(f"DROP ROLE {name}")
    admin.close()


def postgres_rows(dsn: str, table: str) -> list[tuple]:
    conn = postgres_server.connect(dsn, options="-c timezone=UTC")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3")
            return cur.fetchall()
    finally:
        conn.close()


def test_delivery_replaces_the_postgres_table_in_one_transaction(bi_db, lakehouse_home, monkeypatch, caplog):
    from lakehouse.delivery import build_delivery
    from lakehouse.writes import write

    def deliver_to_postgres(delivery, options):
        return build_delivery(get_pipeline("tweets"), delivery, options).deliver("r")

    dsn, password = bi_db
    monkeypatch.setenv(postgres_server.DSN_VARIABLE, dsn)
    utc = dt.UTC
    data = pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "day": pa.array([DAY1, DAY2, None], pa.date32()),
        "at": pa.array([dt.datetime(2026, 11, 20, 23, 30, tzinfo=utc), None, dt.datetime(2026, 1, 1, tzinfo=utc)],
                       pa.timestamp("us", tz="UTC")),
        "amount": pa.array([Decimal("1.25"), Decimal("-3.50"), None], pa.decimal128(9, 2)),
        "label": pa.array(['say "hi", ok', "", None], pa.string()),
        "note": pa.array(["two\nlines", "tab\there", "back\\slash"], pa.string()),
        "ratio": pa.array([0.5, None, 2.0], pa.float64()),
        "flag": pa.array([True, False, None], pa.bool_()),
        "n": pa.array([1, 2, 3], pa.int32()),
    })
    write("marts.bi_test", data, "overwrite")
    delivery = Delivery(name="bi_test", table="marts.bi_test", kind="postgres", options={})
    expected = [
        (1, DAY1, dt.datetime(2026, 11, 20, 23, 30, tzinfo=utc), Decimal("1.25"), 'say "hi", ok', "two\nlines", 0.5, True, 1),
        (2, DAY2, None, Decimal("-3.50"), "", "tab\there", None, False, 2),
        (3, None, dt.datetime(2026, 1, 1, tzinfo=utc), None, None, "back\\slash", 2.0, None, 3),
    ]
    with caplog.at_level("DEBUG"):
        for _ in range(2):  # a rerun leaves the same rows, never doubled
            result = deliver_to_postgres(delivery, {"target_table": "bi.bi_test", "conn_id": "no_such_conn"})
            assert result["rows"] == 3 and result["target"] == "bi.bi_test" and not result["embedded_server"]
            assert postgres_rows(dsn, "bi.bi_test") == expected
    assert password not in caplog.text and password not in repr(result)

    # The lakehouse table changed shape: the PostgreSQL table follows, still one transaction.
    write("marts.bi_test", data.select(["id", "label"]).slice(0, 2).append_column("extra", pa.array(["x", "y"])), "overwrite")
    assert deliver_to_postgres(delivery, {"target_table": "bi.bi_test"})["rows"] == 2
    assert postgres_rows(dsn, "bi.bi_test") == [(1, 'say "hi", ok', "x"), (2, "", "y")]
    # The default target is analytics.<table>; names that are not plain identifiers are refused.
    assert deliver_to_postgres(delivery, {})["target"] == "analytics.bi_test"
    with pytest.raises(ValueError, match="option 'target_table': invalid target table"):
        deliver_to_postgres(delivery, {"target_table": 'bi.x"; drop table y; --'})


# --- end to end through Airflow ------------------------------------------------------------------


def run_cli(home: Path, *args: str, storage: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`lakehouse ARGS` on ``home``, on local disk, or with ``storage`` (S3 settings and keys) on S3."""
    # Only this pipeline in the DAG folder: a fresh home then parses one dbt project, not every one.
    pipelines = home / "pipelines"
    if not pipelines.exists():
        pipelines.mkdir()
        (pipelines / "tweets").symlink_to(REPO_ROOT / "pipelines" / "tweets")
    env = {**os.environ, "LAKEHOUSE_HOME": str(home), "LAKEHOUSE_PIPELINES_DIR": str(pipelines)}
    for name in ("AIRFLOW_HOME", postgres_server.DSN_VARIABLE, "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_RAW_ZONE",
                 "LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_S3_ENDPOINT"):
        env.pop(name, None)
    env.update(storage or {})
    return subprocess.run([LAKEHOUSE, *args], env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.e2e
def test_a_daily_run_through_airflow_on_s3(s3_server, monkeypatch):
    """The same DAG with the warehouse and the raw zone in a bucket of the embedded S3 server."""
    home = Path(tempfile.mkdtemp(prefix="lakehouse-test-tweets-s3-"))
    bucket = s3_server.make_bucket()
    storage = {**s3_server.env, "LAKEHOUSE_WAREHOUSE": f"s3://{bucket}/warehouse",
               "LAKEHOUSE_RAW_ZONE": f"s3://{bucket}/raw_zone"}
    try:
        done = run_cli(home, "run", "tweets", "--date", str(DAY2), "--conf", "simulate_rows=300", storage=storage)
        assert done.returncode == 0, f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        [states] = task_states(home).values()
        assert set(states.values()) == {"success"}, states
        for name, value in {**storage, "LAKEHOUSE_HOME": str(home)}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv(postgres_server.DSN_VARIABLE, raising=False)
        _catalog_for.cache_clear()
        source = home / "landing" / "tweets" / f"tweets_{DAY2}.tsv"
        assert_marts_equal(lake_marts(), expected_marts([(DAY2, source.as_uri(), source.read_bytes())]))
        dsn = postgres_server.source_dsn()
        assert {m: postgres_rows(dsn, f"analytics.{m}") for m in MARTS} == lake_marts()
        # Tables and the fetched export are objects in the bucket, not files under the home.
        stored = [info.path for info in s3_server.filesystem().get_file_info(pa.fs.FileSelector(bucket, recursive=True))]
        assert any("/warehouse/raw/tweets/data/" in path for path in stored)
        assert any(path.endswith(f"/raw_zone/tweets/tweets/tweets_{DAY2}.tsv") for path in stored)
        assert not (home / "warehouse").exists()
    finally:
        run_cli(home, "source", "stop")
        _catalog_for.cache_clear()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def e2e_home():
    # Outside pytest's tmp folder: the embedded PostgreSQL runs as another account that must reach it.
    path = Path(tempfile.mkdtemp(prefix="lakehouse-test-tweets-e2e-"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_HOME", str(path))
        for name in (postgres_server.DSN_VARIABLE, "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_RAW_ZONE", "LAKEHOUSE_CATALOG_URI"):
            patch.delenv(name, raising=False)
        _catalog_for.cache_clear()
        yield path
        run_cli(path, "source", "stop")
    _catalog_for.cache_clear()
    shutil.rmtree(path, ignore_errors=True)


def task_states(home: Path) -> dict[str, dict[str, str]]:
    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        rows = db.execute("SELECT run_id, task_id, state FROM task_instance WHERE dag_id = 'tweets'").fetchall()
    states: dict[str, dict[str, str]] = collections.defaultdict(dict)
    for run_id, task_id, state in rows:
        states[run_id][task_id] = state
    return states


@pytest.mark.e2e
def test_a_daily_run_and_its_rerun_through_airflow_fill_postgres_once(e2e_home):
    snapshots = []
    for _attempt in range(2):
        done = run_cli(e2e_home, "run", "tweets", "--date", str(DAY2), "--conf", "simulate_rows=400",
                       "--conf", "simulate_bad_rate=0.05")
        assert done.returncode == 0, f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        assert "success" in done.stdout and "not successful" not in done.stdout
        dsn = postgres_server.source_dsn()
        # dag.test() replaces the earlier run of the same logical date in the metadata DB: read it now.
        [states] = task_states(e2e_home).values()
        assert {"ingest_tweets", "publish_data_quality", "maintain_tables", *(f"deliver_{m}" for m in MARTS)} <= set(states)
        assert any(task.startswith("dbt.") for task in states)
        assert set(states.values()) == {"success"}, states
        snapshots.append({
            "raw": table_contents("raw.tweets"),
            "marts": lake_marts(),
            "postgres": {m: postgres_rows(dsn, f"analytics.{m}") for m in MARTS},
        })
    source = e2e_home / "landing" / "tweets" / f"tweets_{DAY2}.tsv"  # simulated by the first run, reused by the rerun
    expected = expected_marts([(DAY2, source.as_uri(), source.read_bytes())])
    first, rerun = snapshots
    assert first == rerun  # the rerun changed nothing, doubled nothing
    assert_marts_equal(first["marts"], expected)
    assert first["postgres"] == first["marts"]  # PostgreSQL holds exactly the marts


# A `publish: wap` pipeline that runs before tweets in the same `lakehouse run` process.
WAP_FIRST = {
    "pipeline.yml": "name: wapfirst\nschedule: null\npublish: wap\ndbt: {project_dir: dbt}\n",
    "dbt/dbt_project.yml": "name: wapfirst\nversion: '1.0.0'\nconfig-version: 2\nprofile: lakehouse\n"
                           "models:\n  wapfirst:\n    +materialized: table\n    +schema: marts\n",
    "dbt/packages.yml": f"packages:\n  - local: {REPO_ROOT / 'dbt' / 'lakehouse_dbt'}\n",
    "dbt/models/wapfirst_numbers.sql": "select 1 as n\n",
}


@pytest.mark.e2e
def test_a_pipeline_run_after_a_wap_pipeline_in_one_process_builds_on_main():
    """`lakehouse run wapfirst tweets`: one process, every DAG's tasks in it. Cosmos leaves a dbt task's
    `env` (wapfirst's LAKEHOUSE_WRITE_BRANCH=wap_<run id>) in os.environ; tweets' models were then
    committed to that branch and main kept the empty tables: marts of 0 rows."""
    home = Path(tempfile.mkdtemp(prefix="lakehouse-test-tweets-after-wap-"))
    pipelines = home / "pipelines"
    (pipelines / "wapfirst" / "dbt" / "macros").mkdir(parents=True)
    (pipelines / "tweets").symlink_to(REPO_ROOT / "pipelines" / "tweets")
    for path, text in WAP_FIRST.items():
        (pipelines / "wapfirst" / path).parent.mkdir(parents=True, exist_ok=True)
        (pipelines / "wapfirst" / path).write_text(text)
    shutil.copy(REPO_ROOT / "dbt" / "lakehouse_dbt" / "project_macros" / "lakehouse_platform.sql",
                pipelines / "wapfirst" / "dbt" / "macros")
    try:
        done = run_cli(home, "run", "wapfirst", "tweets", "--date", str(DAY2), "--conf", "simulate_rows=300")
        assert done.returncode == 0, f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("LAKEHOUSE_HOME", str(home))
            for name in (postgres_server.DSN_VARIABLE, "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_RAW_ZONE",
                         "LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_WRITE_BRANCH"):
                patch.delenv(name, raising=False)
            _catalog_for.cache_clear()
            assert lake("select n from marts.wapfirst_numbers") == [(1,)]  # published from its branch
            [(tweets,)] = lake("select count(distinct id) from raw.tweets")
            assert tweets > 250
            assert lake("select count(*), count(distinct tweet_id) from staging.stg_tweets") == [(tweets, tweets)]
            assert lake("select sum(tweets) from marts.tweets_per_day") == [(tweets,)]
            for name in ("staging.stg_tweets", *(f"marts.{m}" for m in MARTS)):
                assert set(load_table(name).metadata.refs) == {"main"}, name  # built on main, no WAP branch
            source = home / "landing" / "tweets" / f"tweets_{DAY2}.tsv"
            assert_marts_equal(lake_marts(), expected_marts([(DAY2, source.as_uri(), source.read_bytes())]))
    finally:
        run_cli(home, "source", "stop")
        _catalog_for.cache_clear()
        shutil.rmtree(home, ignore_errors=True)
