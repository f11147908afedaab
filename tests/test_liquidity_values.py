"""The liquidity marts hold the values the rules say, computed again by tests/oracle_liquidity.py.

Two generated business dates with bad rows are ingested, dbt builds the project on Iceberg, and every
mart row is compared with the oracle's. No Airflow here (tests/test_liquidity_e2e.py covers the
DAG): this isolates the SQL.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal

import pytest

from lakehouse import compute
from lakehouse.ingest import run_ingest
from lakehouse.pipeline import get_pipeline
from lakehouse.settings import REPO_ROOT
from lakehouse.testing import dbt as run_dbt

try:
    import oracle_liquidity as oracle
except ImportError:  # pragma: no cover - when tests/ is imported as a package
    from tests import oracle_liquidity as oracle

DATES = [dt.date(2026, 11, 18), dt.date(2026, 11, 19)]
OPTIONS = {"seed": 7, "scale": 0.05, "bad_row_rate": 0.2}
SOURCES = {"market_data": "liquidity.market_data", "positions_loans": "loans", "positions_deposits": "deposits"}
MARTS = {
    "mart_positions": ("as_of_date", "source_system", "position_id"),
    "mart_liquidity_risk": ("as_of_date", "source_system", "position_id"),
    "mart_cashflow_forecast": ("as_of_date", "portfolio_id", "forecast_date"),
}


def dbt(*args: str, interval: dt.date | None = None) -> None:
    argv = list(args)
    if interval:
        end = interval + dt.timedelta(days=1)
        argv += ["--vars", f"{{data_interval_start: '{interval}', data_interval_end: '{end}'}}"]
    result = run_dbt(get_pipeline("liquidity").dbt_project_dir, *argv)
    failed = [r.node.name for r in (result.result or []) if str(r.status) in ("error", "fail")]
    assert result.success, f"dbt {args[0]} failed: {failed or result.exception}"


def ingest(day: dt.date) -> None:
    for source in SOURCES:
        run_ingest("liquidity", source, day, {"callable": f"generator.py:{source}", **OPTIONS})


def read(sql: str) -> list[dict]:
    return compute.connect().sql(sql).to_arrow_table().to_pylist()


def seed(name: str) -> list[dict]:
    with open(REPO_ROOT / "pipelines/liquidity/dbt/seeds" / f"{name}.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two dates ingested and built (first run = full build); yields the oracle's expectations."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path_factory.mktemp("lakehouse")))
    from lakehouse.catalog import _catalog_for

    _catalog_for.cache_clear()
    dbt("deps")
    for day in DATES:
        ingest(day)
    dbt("build")
    raw = {source: read(f"select * from raw.{source}") for source in SOURCES}
    expected = oracle.expected_marts(
        raw["market_data"], raw["positions_loans"], raw["positions_deposits"],
        seed("instrument_reference"), seed("currencies"),
    )
    yield expected
    monkeypatch.undo()
    _catalog_for.cache_clear()


def keyed(rows: list[dict], grain: tuple[str, ...]) -> dict[tuple, dict]:
    return {tuple(row[c] for c in grain): row for row in rows}


def normalized(value):
    return Decimal(str(value)) if isinstance(value, (Decimal, float)) else value


@pytest.mark.parametrize("mart", MARTS)
def test_mart_values_equal_the_oracle(built, mart):
    grain = MARTS[mart]
    actual = keyed(read(f"select * from marts.{mart}"), grain)
    expected = keyed(built[mart], grain)
    assert len(expected) > 0
    assert actual.keys() == expected.keys()
    mismatches = [
        (key, column, row[column], actual[key].get(column))
        for key, row in expected.items()
        for column in row
        if normalized(row[column]) != normalized(actual[key].get(column))
    ]
    assert mismatches == [], f"{len(mismatches)} values differ, first: {mismatches[:5]}"


def test_history_keeps_every_as_of_date(built):
    dates = [r["as_of_date"] for r in read("select distinct as_of_date from marts.mart_positions order by 1")]
    assert dates == DATES


@pytest.mark.parametrize("source", SOURCES)
def test_every_raw_row_is_staged_or_quarantined_with_its_reason(built, source):
    stg = "stg_" + source
    raw = read(f"select _batch_date, _source_row from raw.{source}")
    staged = read(f"select _batch_date from staging.{stg}")
    rejected = read(f"select rejection_reason from quarantine.rejected_{source}")
    assert len(raw) == len(staged) + len(rejected)
    expected_reasons = sorted(r["rejection_reason"] for r in built["rejected_" + source])
    assert sorted(r["rejection_reason"] for r in rejected) == expected_reasons
    assert len(rejected) > 0


def test_bad_rows_never_reach_the_marts(built):
    bad_ids = {r["position_id"] for r in read(
        "select position_id from quarantine.rejected_positions_loans where rejection_reason not like 'duplicate%' "
        "union all select position_id from quarantine.rejected_positions_deposits where rejection_reason not like 'duplicate%'"
    )}
    mart_ids = {r["position_id"] for r in read("select position_id from marts.mart_positions")}
    good_ids = {r["position_id"] for r in built["mart_positions"]}
    # A bad row is a damaged copy of a good row: its id may be in the mart only through that good row,
    # and no damaged value (negative notional, unknown currency or instrument) got through.
    assert bad_ids and mart_ids == good_ids
    leaks = read(
        "select * from marts.mart_positions where notional_usd <= 0 or asset_class is null "
        "or currency not in ('USD', 'EUR', 'GBP', 'CHF') or instrument_id = 'INS9999'"
    )
    assert leaks == []


def test_rerunning_a_date_leaves_identical_marts(built):
    before = {mart: sorted(map(repr, read(f"select * from marts.{mart}"))) for mart in MARTS}
    ingest(DATES[-1])
    dbt("build", interval=DATES[-1])
    after = {mart: sorted(map(repr, read(f"select * from marts.{mart}"))) for mart in MARTS}
    assert after == before
