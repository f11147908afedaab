"""`lakehouse ci`: on a temporary copy of the liquidity pipeline, production is built once and kept as
the production state; then one model changes in the copy, and CI builds exactly it and its children
into its own catalog, reads everything else from production where it is, and leaves production as
it was (snapshot ids before and after)."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
import yaml
from click.testing import CliRunner
from pyiceberg.catalog.sql import SqlCatalog

from lakehouse.catalog import _catalog_for, get_catalog
from lakehouse.cli import main
from lakehouse.ingest import run_ingest
from lakehouse.pipeline import get_pipeline
from lakehouse.settings import REPO_ROOT
from lakehouse.slim_ci import CiError, keep_production_state, production_dir, run_ci
from lakehouse.testing import dbt as run_dbt

DAY = dt.date(2026, 11, 18)
SOURCES = ("market_data", "positions_loans", "positions_deposits")
CHANGED = "model.liquidity.mart_positions"
CHILDREN = {"model.liquidity.mart_liquidity_risk", "model.liquidity.mart_cashflow_forecast"}


def copy_pipeline(destination):
    """pipelines/liquidity, links resolved and the shared dbt package by its absolute path."""
    source = REPO_ROOT / "pipelines" / "liquidity"
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "package-lock.yml"))
    packages_file = destination / "dbt" / "packages.yml"
    packages = yaml.safe_load(packages_file.read_text())
    for package in packages["packages"]:
        package["local"] = str((source / "dbt" / package["local"]).resolve())
    packages_file.write_text(yaml.safe_dump(packages))
    return destination


def snapshots() -> dict[str, int | None]:
    catalog = get_catalog()
    ids = {}
    for namespace in ("raw", "staging", "marts", "quarantine"):
        for identifier in catalog.list_tables(namespace):
            table = catalog.load_table(identifier)
            ids[".".join(identifier)] = table.current_snapshot().snapshot_id if table.current_snapshot() else None
    return ids


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    """The copy built once, its manifest kept as production; yields the project folder."""
    root = tmp_path_factory.mktemp("slim_ci")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("LAKEHOUSE_HOME", str(root / "home"))
    monkeypatch.setenv("LAKEHOUSE_PIPELINES_DIR", str(root / "pipelines"))
    for name in ("LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_DEFER_CATALOG_URI", "LAKEHOUSE_DEFER_WAREHOUSE"):
        monkeypatch.delenv(name, raising=False)
    _catalog_for.cache_clear()
    project = copy_pipeline(root / "pipelines" / "liquidity") / "dbt"
    assert run_dbt(project, "deps").success
    for source in SOURCES:
        run_ingest("liquidity", source, DAY, {"callable": f"generator.py:{source}", "seed": 7, "scale": 0.05,
                                               "bad_row_rate": 0.1})
    vars_ = f"{{data_interval_start: '{DAY}', data_interval_end: '{DAY + dt.timedelta(days=1)}'}}"
    result = run_dbt(project, "build", "--vars", vars_)
    assert result.success, result.exception
    keep_production_state("liquidity", "scheduled__2026-11-18", project / "target" / "manifest.json")
    yield project
    monkeypatch.undo()
    _catalog_for.cache_clear()


def test_an_unchanged_project_builds_nothing(production):
    before = snapshots()
    report = run_ci("liquidity")
    assert (report.built, report.tests) == ([], {})
    assert report.production_run == "scheduled__2026-11-18"
    assert snapshots() == before


def test_one_changed_model_builds_it_and_its_children_only_and_production_is_untouched(production):
    before = snapshots()
    model = production / "models" / "marts" / "mart_positions.sql"
    original = model.read_text()
    model.write_text(original.replace("select", "select  -- reviewed in CI\n   ", 1))
    try:
        report = run_ci("liquidity")
    finally:
        model.write_text(original)
    built = {item.unique_id: item for item in report.built}
    assert set(built) == {CHANGED, *CHILDREN}
    assert built[CHANGED].reason == "changed: body"
    assert {built[child].reason for child in CHILDREN} == {f"downstream of {CHANGED}"}
    assert all(item.status == "success" for item in report.built)
    assert report.tests and all(status == "pass" for status in report.tests.values())
    # Only what was built is in the CI catalog: the parents were read from production, not copied.
    ci = SqlCatalog("lakehouse", uri=f"sqlite:///{report.environment / 'catalog.db'}",
                    warehouse=(report.environment / "warehouse").as_uri())
    in_ci = {".".join(identifier) for namespace in ("raw", "staging", "marts") for identifier in ci.list_tables(namespace)}
    assert in_ci == {"marts.mart_positions", "marts.mart_liquidity_risk", "marts.mart_cashflow_forecast"}
    assert {"staging.stg_positions_loans", "staging.stg_positions_deposits"} <= set(report.deferred)
    # Production: not one commit.
    assert snapshots() == before
    # The CI build read production's staging: its marts hold the same rows as production's.
    production_positions = get_catalog().load_table("marts.mart_positions").scan().to_arrow()
    ci_positions = ci.load_table("marts.mart_positions").scan().to_arrow()
    key = ["as_of_date", "source_system", "position_id"]
    assert ci_positions.sort_by([(k, "ascending") for k in key]).to_pylist() == \
        production_positions.sort_by([(k, "ascending") for k in key]).to_pylist()


def test_the_cli_reports_what_it_built_and_why(production):
    model = production / "models" / "marts" / "mart_liquidity_risk.sql"
    original = model.read_text()
    model.write_text(original + "\n-- a leaf: nothing downstream\n")
    try:
        result = CliRunner().invoke(main, ["ci", "liquidity"])
    finally:
        model.write_text(original)
    assert result.exit_code == 0, result.output
    built = result.output.split("read from production")[0]
    assert "model.liquidity.mart_liquidity_risk" in built and "changed: body" in built
    assert "mart_positions" not in built and "mart_cashflow_forecast" not in built
    assert "marts.mart_positions" in result.output.split("read from production")[1]  # its parent, deferred


def test_without_a_production_state_ci_says_what_to_do(production):
    state = production_dir("liquidity")
    kept = state.with_name("kept")
    state.rename(kept)
    try:
        with pytest.raises(CiError, match="has no production state yet .* run the pipeline once"):
            run_ci("liquidity")
    finally:
        kept.rename(state)
    assert get_pipeline("liquidity").folder.is_relative_to(production.parent.parent)
