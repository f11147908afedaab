"""The pipelines' dbt unit tests (`unit_tests:` in their models' YAML), run the way CI runs them:
`dbt test --select test_type:unit` per pipeline project on a fresh LAKEHOUSE_HOME. Every one must
pass, and a copy of a project with one expectation made wrong must fail exactly that one, so these
tests can fail. dbt runs them with the project's own materializations routed as in any run (see
dbt/lakehouse_dbt/macros/unit_testing.sql for what a unit test needs from the platform).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from dbt_runs import module_home, results_by_name
from quality_project import dbt, install_packages

from lakehouse.cdc.checkpoint import LANDING_SCHEMA
from lakehouse.settings import REPO_ROOT
from lakehouse.writes import write

PACKAGE = REPO_ROOT / "dbt" / "lakehouse_dbt"

# What each pipeline's unit tests need in the lakehouse before they run: a fixture given as rows
# (dict or csv) takes its columns from the relation it stands for, so those relations must exist
# (dbt's advice: build them first, with --empty). Sources are landed by the pipeline's ingest or
# capture, so they are made here, empty: {table: Arrow schema}. None: every input is given as SQL.
PREREQUISITES: dict[str, dict[str, pa.Schema] | None] = {
    "orders_cdc": {"raw.audit_log_dml": LANDING_SCHEMA},
    "liquidity": None,
    "marketing": None,
}


def declared_unit_tests(project: Path) -> set[str]:
    names = set()
    for path in (project / "models").rglob("*.yml"):
        names |= {test["name"] for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])}
    return names


PROJECTS = {p.parent.name: p for p in sorted((REPO_ROOT / "pipelines").glob("*/dbt")) if declared_unit_tests(p)}


def test_every_pipeline_with_unit_tests_says_what_they_need():
    assert set(PROJECTS) == set(PREREQUISITES)


@pytest.fixture(scope="module")
def home(request, tmp_path_factory):
    yield from module_home(request, tmp_path_factory)


def prepare(pipeline: str, target: Path) -> None:
    """Make the relations the unit tests' row fixtures stand for: landed sources empty, then every
    model empty (`dbt run --empty`)."""
    sources = PREREQUISITES[pipeline]
    if sources is None:
        return
    for table, schema in sources.items():
        write(table, schema.empty_table(), "append")
    run = dbt(target, "run", "--empty", project=PROJECTS[pipeline])
    assert run.success, f"dbt run --empty failed: {run.exception or [str(r.message) for r in run.result or []]}"


def unit_tests(project: Path, target: Path, *select: str) -> dict[str, dict]:
    result = dbt(target, "test", "--select", *(select or ["test_type:unit"]), project=project)
    assert result.exception is None, f"dbt test could not run: {result.exception}"
    return {name: r for name, r in results_by_name(target).items() if r["unique_id"].startswith("unit_test.")}


@pytest.fixture(scope="module")
def prepared(home, tmp_path_factory):
    """pipeline -> a target folder of its own, the lakehouse holding what its unit tests need."""
    targets = {}
    for pipeline, project in PROJECTS.items():
        install_packages(project)
        targets[pipeline] = tmp_path_factory.mktemp(f"{pipeline}_target")
        prepare(pipeline, targets[pipeline])
    return targets


@pytest.mark.parametrize("pipeline", sorted(PROJECTS))
def test_the_unit_tests_of_each_pipeline_pass(prepared, pipeline):
    results = unit_tests(PROJECTS[pipeline], prepared[pipeline])
    assert set(results) == declared_unit_tests(PROJECTS[pipeline])
    failed = {name: r["message"] for name, r in results.items() if r["status"] != "pass"}
    assert not failed


def copy_project(project: Path, destination: Path) -> Path:
    """A copy that works anywhere: links resolved, the shared package by its absolute path."""
    shutil.copytree(project, destination, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "package-lock.yml"))
    packages = yaml.safe_load((destination / "packages.yml").read_text())
    for package in packages["packages"]:
        package["local"] = str((project / package["local"]).resolve())
    (destination / "packages.yml").write_text(yaml.safe_dump(packages))
    return destination


def test_a_wrong_expectation_fails(prepared, tmp_path):
    """Order 4 was deleted and inserted again: expecting its values from before the delete is wrong."""
    project = copy_project(PROJECTS["orders_cdc"], tmp_path / "orders_cdc")
    path = project / "models" / "marts" / "_unit_tests.yml"
    spec = yaml.safe_load(path.read_text())
    [case] = [t for t in spec["unit_tests"] if t["name"] == "orders_latest_event_of_each_order_wins"]
    [row] = [r for r in case["expect"]["rows"] if r["order_id"] == 4]
    assert row["customer_name"] == "Back Again"
    row["customer_name"] = "Cid"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))

    install_packages(project)
    results = unit_tests(project, tmp_path / "target", "orders")  # the unit tests of model orders
    assert {name: r["status"] for name, r in results.items()} == {
        "orders_latest_event_of_each_order_wins": "fail",
        "orders_change_order_decides_not_landing_order": "pass",
    }
    message = results["orders_latest_event_of_each_order_wins"]["message"]
    assert "Cid" in message and "Back Again" in message  # dbt's diff of expected and actual rows
