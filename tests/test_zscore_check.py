"""lakehouse.daily_metric_zscore_within: the statistical check of a daily metric, through real dbt runs.

First case by case on tests/fixtures/quality_project (hand-made daily amounts: an outlier, weekends,
a holiday, a flat history, too little history), then on the liquidity pipeline with generated data:
several business days pass, and one portfolio's notionals multiplied by 10 on the last day fail with
the metric, value, mean and deviation in the result, equal to what the marts hold.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lakehouse import compute, quality
from lakehouse.catalog import _catalog_for
from lakehouse.ingest import run_ingest
from lakehouse.loader import pipeline_module
from lakehouse.pipeline import get_pipeline

generator = pipeline_module("liquidity")

try:
    import quality_project
except ImportError:  # pragma: no cover - when tests/ is imported as a package
    from tests import quality_project


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("lakehouse")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_HOME", str(home))
        for name in ("LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_CATALOG_NAME", "LAKEHOUSE_RAW_ZONE"):
            patch.delenv(name, raising=False)
        _catalog_for.cache_clear()
        yield home
    _catalog_for.cache_clear()


# --- the fixture project, case by case -----------------------------------------------------------

# test name -> (dbt status, failing rows): see the data in tests/fixtures/quality_project/models/daily_amounts.sql
CASES = {
    # Desk A's 1,000 against about 100; its Saturday 5,000 and 50,000 are not in the history (else no outlier).
    "zscore_monday_outlier": ("fail", 1),
    # Desk C was exactly 10 for ten business days: 11 is infinitely far (with no minimum deviation).
    "zscore_flat_history": ("fail", 1),
    # Saturday the 14th holds 50,000 for desk A, but a Saturday is not a business day: not tested.
    "zscore_saturday_is_not_tested": ("pass", 0),
    # Desk H's 10 on Wednesday the 11th is an outlier, unless the 11th is a holiday.
    "zscore_holiday_outside_the_calendar": ("fail", 1),
    "zscore_holiday_in_the_calendar": ("pass", 0),
    # Desk I's 1,000 on the 5th has 3 business days of history: too few (5 needed), so the check passes...
    "zscore_insufficient_history": ("pass", 0),
    # ... and fails once 3 days are enough.
    "zscore_shorter_minimum_history": ("fail", 1),
    # Without as_of_date and without the DAG's var, the latest business day (the 17th) is tested: all normal.
    "zscore_day_of_the_run": ("pass", 0),
}


@pytest.fixture(scope="module")
def fixture_run(home, tmp_path_factory):
    target = tmp_path_factory.mktemp("quality_project_target")
    results = quality_project.build(target)
    return target, results


@pytest.mark.parametrize("name", CASES)
def test_each_case_passes_or_fails_as_expected(fixture_run, name):
    _, results = fixture_run
    result = results[name]
    assert (result["status"], result["failures"]) == CASES[name], result["message"]


def failing_rows(target: Path, name: str) -> list[dict]:
    [row] = [r for r in quality.collect_results("fixture", "run", target).to_pylist() if r["node_name"] == name]
    return json.loads(row["failing_rows"])


def test_a_failing_row_names_the_metric_group_value_mean_and_deviation(fixture_run):
    target, _ = fixture_run
    [row] = failing_rows(target, "zscore_monday_outlier")
    assert (row["desk"], row["metric_date"], row["metric"]) == ("A", "2026-11-16", "sum(amount)")
    # History: desk A on the ten business days 2nd-13th; the Saturdays are left out.
    history = [100, 104, 96, 101, 99, 102, 98, 100, 103, 97]
    assert row["history_days"] == 10
    assert row["metric_value"] == 1000
    assert row["history_mean"] == pytest.approx(statistics.mean(history))
    assert row["history_stddev"] == pytest.approx(statistics.stdev(history))
    # The deviation used is at least 0.2 x |mean| = 20 (min_relative_stddev), so z = 900 / 20.
    assert (row["deviation"], row["z_score"]) == (pytest.approx(20), pytest.approx(45))
    assert row["message"] == (
        "sum(amount) for desk=A on 2026-11-16: value 1000.00, mean 100.00, standard deviation 2.58 "
        "(used 20.00, at least 0.2 x |mean|) over the previous 10 business days: z = 45.00, allowed |z| <= 4"
    )


def test_a_flat_history_fails_with_an_infinite_z(fixture_run):
    target, _ = fixture_run
    [row] = failing_rows(target, "zscore_flat_history")
    assert (row["desk"], row["metric_value"], row["history_mean"], row["deviation"], row["z_score"]) == ("C", 11, 10, 0, None)
    assert "z = infinite (flat history)" in row["message"]


def test_the_tested_day_is_the_day_of_the_dag_run(fixture_run, tmp_path):
    """The DAG passes data_interval_start: a run (or backfill) of the 16th tests the 16th, not the latest day."""
    result = quality_project.dbt(tmp_path, "test", "--select", "zscore_day_of_the_run",
                                 dbt_vars={"data_interval_start": "2026-11-16"})  # fmt: skip
    assert result.exception is None
    [outcome] = result.result
    assert (str(outcome.status), outcome.failures) == ("fail", 1)
    [row] = failing_rows(tmp_path, "zscore_day_of_the_run")
    assert (row["desk"], row["metric_date"]) == ("A", "2026-11-16")


def test_arguments_that_cannot_work_are_refused_when_compiled(fixture_run, tmp_path, capsys):
    call = ("{{ lakehouse.test_daily_metric_zscore_within(model='m', metric='count(*)', date_column='d', "
            "window_days=3, min_history_days=5) }}")  # fmt: skip
    result = quality_project.dbt(tmp_path, "compile", "--inline", call)
    assert not result.success
    assert "need 2 <= min_history_days <= window_days, got 5 and 3" in capsys.readouterr().out


# --- the liquidity pipeline on generated data ----------------------------------------------------

# Two weeks: ten business days and a weekend. The last day is tested against the nine before it.
DAYS = [dt.date(2026, 11, 9) + dt.timedelta(days=n) for n in range(12)]
LAST = DAYS[-1]
OPTIONS = {"seed": 42, "scale": 1.0}  # the pipeline's defaults (pipelines/liquidity/pipeline.yml)
SOURCES = ("market_data", "positions_loans", "positions_deposits")
CHECK = "zscore_total_notional_usd_per_portfolio_and_source"


def loans_with_outlier(batch_date, **options) -> pa.Table:
    """The loan system's extract with every PF01 notional multiplied by 10 (a unit error, say)."""
    table = generator.positions_loans(batch_date, **options)
    cents = pc.cast(table.column("notional_cents"), pa.int64())
    tenfold = pc.if_else(pc.equal(table.column("portfolio_id"), "PF01"), pc.multiply(cents, 10), cents)
    return table.set_column(table.schema.get_field_index("notional_cents"), "notional_cents", pc.cast(tenfold, pa.string()))


def liquidity_dbt(target: Path, *args: str, day: dt.date | None = None):
    project = get_pipeline("liquidity").dbt_project_dir
    quality_project.install_packages(project)
    dbt_vars = {"data_interval_start": str(day), "data_interval_end": str(day + dt.timedelta(days=1))} if day else None
    result = quality_project.dbt(target, *args, dbt_vars=dbt_vars, project=project)
    assert result.exception is None, result.exception
    return {r.node.name: r for r in result.result}


@pytest.fixture(scope="module")
def liquidity(home, tmp_path_factory):
    """Two weeks of generated data built once (clean), then the last day again with the outlier."""
    for day in DAYS:
        for source in SOURCES:
            run_ingest("liquidity", source, day, {"callable": f"generator.py:{source}", **OPTIONS})
    clean_target = tmp_path_factory.mktemp("liquidity_clean")
    clean = liquidity_dbt(clean_target, "build", "--select", "+mart_positions")
    run_ingest("liquidity", "positions_loans", LAST, {"callable": f"{__name__}:loans_with_outlier", **OPTIONS})
    outlier_target = tmp_path_factory.mktemp("liquidity_outlier")
    outlier = liquidity_dbt(outlier_target, "build", "--select", "+mart_positions", day=LAST)
    return {"clean": clean, "outlier": outlier, "outlier_target": outlier_target}


def test_clean_generated_days_pass(liquidity):
    clean = liquidity["clean"]
    assert str(clean[CHECK].status) == "pass"
    assert [name for name, r in clean.items() if str(r.status) not in ("success", "pass")] == []


def test_a_tenfold_portfolio_fails_with_metric_value_mean_and_deviation(liquidity):
    outcome = liquidity["outlier"][CHECK]
    assert (str(outcome.status), outcome.failures) == ("fail", 1)

    [published] = [r for r in quality.collect_results("liquidity", "run", liquidity["outlier_target"]).to_pylist()
                   if r["node_name"] == CHECK]  # fmt: skip
    assert published["status"] == "fail" and published["failures"] == 1
    [row] = json.loads(published["failing_rows"])
    assert (row["portfolio_id"], row["source_system"], row["metric_date"]) == ("PF01", "LOANS", str(LAST))

    # The same figures computed here from the mart: the tested day, and the nine business days before it.
    daily = {
        (d, s): float(v)
        for d, s, v in compute.connect().sql(
            "select as_of_date, source_system, sum(notional_usd) from marts.mart_positions "
            "where portfolio_id = 'PF01' group by all"
        ).fetchall()
    }
    history = [daily[(d, "LOANS")] for d in DAYS[:-1] if d.weekday() < 5]
    assert len(history) == row["history_days"] == 9
    assert row["metric_value"] == pytest.approx(daily[(LAST, "LOANS")])
    assert row["history_mean"] == pytest.approx(statistics.mean(history))
    assert row["history_stddev"] == pytest.approx(statistics.stdev(history))
    deviation = max(statistics.stdev(history), 0.2 * statistics.mean(history))
    assert row["z_score"] == pytest.approx((daily[(LAST, "LOANS")] - statistics.mean(history)) / deviation)
    assert row["z_score"] > 4
    message = row["message"]
    assert message.startswith(f"sum(notional_usd) for portfolio_id=PF01, source_system=LOANS on {LAST}: value ")
    for figure in (row["metric_value"], row["history_mean"], row["history_stddev"]):
        assert f"{figure:.2f}" in message
    assert "over the previous 9 business days" in message
