"""The expectation-style generic tests of the shared dbt package (dbt-expectations' names and
arguments, macros/tests/expectations/), called through the dbt_expectations stand-in package, in one
real dbt run + test of tests/fixtures/expectations_project: on good_orders every expectation passes
(but the one made to fail by `strictly`), on bad_orders each fails on exactly the rows or groups its
planted data breaks (tests/expectations_project.py). The same run on Spark:
tests/spark/test_spark_materializations.py."""

from __future__ import annotations

import pytest
from dbt_runs import module_home
from expectations_project import FAILURES, outcome, run_and_test


@pytest.fixture(scope="module")
def results(request, tmp_path_factory):
    home = module_home(request, tmp_path_factory)
    next(home)
    target = tmp_path_factory.mktemp("expectations_target")
    yield run_and_test(target)
    home.close()


def test_every_expectation_is_declared_and_counted(results):
    assert sorted(results) == sorted(FAILURES)


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_each_expectation_fails_on_exactly_its_planted_rows(results, name):
    assert (results[name]["status"], results[name]["failures"]) == outcome(name), results[name]["message"]
