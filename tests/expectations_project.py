"""tests/fixtures/expectations_project, shared by tests/dbt/test_expectations.py (DuckDB) and
tests/spark/test_spark_materializations.py (Spark): the project, one dbt run + test of it, and how many
rows or groups each of its tests must fail on, counted by hand from the models' VALUES."""

from __future__ import annotations

from pathlib import Path

from quality_project import dbt, install_packages, results_by_name

PROJECT = Path(__file__).parent / "fixtures" / "expectations_project"

# test name -> failing rows or groups. A row-level test fails on rows, an aggregate one on groups.
FAILURES = {
    "good__row_count": 0,              # 4 rows in [3, 4]
    "good__row_count_per_status": 0,   # placed 1, shipped 2, returned 1, all in [1, 2]
    "good__amount_above_discount": 0,
    "good__id_between": 0,
    "good__id_unique": 0,
    "good__status_in_set": 0,
    "good__status_distinct": 0,
    "good__status_distinct_above": 0,  # 3 > 2
    "good__email_regex": 0,            # o'neil@x.com included: the quote is escaped
    "good__email_no_space": 0,
    "good__email_quote": 0,            # the one row of row_condition contains a quote
    "good__amount_mean": 0,            # 25
    "good__amount_median": 0,          # 25, between 20 and 30
    "good__amount_p90": 0,             # 30 + 0.7 * (40 - 30) = 37, linear interpolation
    "good__discount_strict": 2,        # the two discounts of exactly 0
    "good__recent": 0,
    "bad__row_count": 1,               # 5 rows
    "bad__row_count_per_status": 1,    # shipped has 2
    "bad__amount_above_discount": 1,   # 100 against 150
    "bad__id_between": 2,              # 0 and 200
    "bad__id_unique": 1,               # 4 distinct of 5
    "bad__status_in_set": 1,           # lost
    "bad__status_in_set_without_200": 0,  # row_condition leaves 'lost' out
    "bad__status_distinct": 1,         # 4, not 3
    "bad__status_distinct_above": 1,   # 4 is not above 4
    "bad__email_regex": 2,             # nobody, o'neil@x
    "bad__email_no_at_x": 2,           # e@x.com and b@x.com match "@X\." case-insensitively
    "bad__amount_mean": 1,             # 100
    "bad__amount_median": 1,           # 100
    "bad__recent": 1,                  # 2020
}


def run_and_test(target: Path) -> dict[str, dict]:
    """`dbt run` then `dbt test` of the project into ``target``; the tests' results by name."""
    install_packages(PROJECT)
    run = dbt(target, "run", project=PROJECT)
    assert run.success, f"dbt run failed: {run.exception or [str(r.message) for r in run.result or []]}"
    test = dbt(target, "test", project=PROJECT)
    assert test.exception is None, f"dbt test could not run: {test.exception}"
    return results_by_name(target)


def outcome(name: str) -> tuple[str, int]:
    """(status, failures) that test ``name`` must end with."""
    return ("fail", FAILURES[name]) if FAILURES[name] else ("pass", 0)
