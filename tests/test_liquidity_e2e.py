"""The liquidity pipeline as a user runs it: `lakehouse run` through Airflow 3 and Cosmos.

Each run is a fresh process (Airflow reads its configuration once, at import), on one lakehouse
home shared by the module: a daily run, a backfill of the day before, and a rerun of the first day.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse import compute
from lakehouse.catalog import _catalog_for

pytestmark = pytest.mark.e2e

LAKEHOUSE = str(Path(sys.executable).with_name("lakehouse"))
DAY, BACKFILL = "2026-11-19", "2026-11-18"
CONF = ["--conf", "scale=0.03", "--conf", "bad_row_rate=0.2", "--conf", "seed=11"]
MARTS = ("mart_positions", "mart_liquidity_risk", "mart_cashflow_forecast")


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LAKEHOUSE_HOME": str(home)}
    env.pop("AIRFLOW_HOME", None)
    return subprocess.run([LAKEHOUSE, *args], env=env, capture_output=True, text=True, timeout=900)


def read(sql: str) -> list[tuple]:
    return compute.connect().sql(sql).fetchall()


def mart_contents(day: str) -> dict[str, list]:
    return {m: sorted(map(repr, read(f"select * from marts.{m} where as_of_date = date '{day}'"))) for m in MARTS}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("lakehouse")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_HOME", str(home))
        _catalog_for.cache_clear()
        yield home
    _catalog_for.cache_clear()


@pytest.fixture(scope="module")
def runs(home):
    first = run(home, "run", "liquidity", "--date", DAY, *CONF)
    after_first = mart_contents(DAY) if first.returncode == 0 else None
    backfill = run(home, "run", "liquidity", "--date", BACKFILL, *CONF)
    rerun = run(home, "run", "liquidity", "--date", DAY, *CONF)
    return {"first": first, "backfill": backfill, "rerun": rerun, "after_first": after_first}


def test_a_daily_run_succeeds_and_prints_its_summary(runs):
    for name in ("first", "backfill", "rerun"):
        done = runs[name]
        assert done.returncode == 0, f"{name}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    out = runs["first"].stdout
    assert "liquidity" in out and "success" in out
    assert "marts.mart_positions" in out and "not successful" not in out


def test_a_backfill_adds_its_date_and_keeps_the_others(runs):
    dates = [str(d) for (d,) in read("select distinct as_of_date from marts.mart_positions order by 1")]
    assert dates == [BACKFILL, DAY]


def test_rerunning_a_date_leaves_the_same_marts(runs):
    assert runs["after_first"] is not None
    assert mart_contents(DAY) == runs["after_first"]


def test_every_raw_row_is_staged_or_quarantined(runs):
    for source in ("market_data", "positions_loans", "positions_deposits"):
        [(raw,)] = read(f"select count(*) from raw.{source}")
        [(staged,)] = read(f"select count(*) from staging.stg_{source}")
        [(rejected,)] = read(f"select count(*) from quarantine.rejected_{source}")
        assert raw == staged + rejected and rejected > 0, source


def test_data_quality_of_every_run_is_published(runs, home):
    per_run = read(
        "select run_id, count(*) filter (where node_type = 'test'), count(*) filter (where status in ('fail', 'error')),"
        " count(*) filter (where node_type = 'source') from audit.dq_results where pipeline = 'liquidity' group by run_id"
    )
    assert len(per_run) == 3
    for run_id, tests, failed, freshness in per_run:
        assert tests > 50 and failed == 0 and freshness == 3, run_id
    shown = run(home, "quality", "--pipeline", "liquidity")
    assert shown.returncode == 0 and "0 failed" in shown.stdout


def test_maintenance_compacts_the_files_merges_left_behind(runs):
    from lakehouse.catalog import load_table

    # The backfill's merge appended a second file to the (unpartitioned) staging table; the
    # maintenance task of that run compacted the two into one, in a commit of its own.
    table = load_table("staging.stg_positions_loans")
    operations = [s.summary.additional_properties.get("lakehouse.operation") for s in table.snapshots()]
    assert "compaction" in operations
    assert len(table.inspect.files()) == 1


def test_a_failing_run_exits_1_and_names_the_failed_tasks(home):
    done = run(home, "run", "liquidity", "--date", "2026-11-17", "--conf", "scale=not-a-number")
    assert done.returncode == 1
    assert "failed" in done.stdout
    assert "not successful: " in done.stdout and "ingest_positions_loans" in done.stdout
