"""Runs tests/fixtures/quality_project (checks that pass, warn, fail and error on purpose) with real dbt.

Shared by tests/test_datahub.py and tests/test_zscore_check.py. Every run writes its artifacts to a
target folder of its own (never the project's target/), so parallel test sessions do not mix them.
"""

from __future__ import annotations

import fcntl
import json
import tempfile
from pathlib import Path

from dbt.cli.main import dbtRunnerResult

from lakehouse.testing import dbt as run_dbt

PROJECT = Path(__file__).parent / "fixtures" / "quality_project"


def dbt(target: Path, *args: str, dbt_vars: dict | None = None, project: Path = PROJECT) -> dbtRunnerResult:
    argv = [*args, "--target-path", str(target), "--log-path", str(target / "logs")]
    if dbt_vars:
        argv += ["--vars", json.dumps(dbt_vars)]
    return run_dbt(project, *argv)


def install_packages(project: Path = PROJECT) -> None:
    """`dbt deps` once (a symlink to dbt/lakehouse_dbt), safe when several sessions start together."""
    lock_path = Path(tempfile.gettempdir()) / f"lakehouse-dbt-deps-{project.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (project / "dbt_packages" / "lakehouse").exists():
            result = run_dbt(project, "deps")
            assert result.success, f"dbt deps failed: {result.exception}"


def build(target: Path) -> dict[str, dict]:
    """`dbt run` then `dbt test` (separately, so a failing test does not skip the others) into the
    current LAKEHOUSE_HOME. The run's results go to <target>/models/run_results.json, the tests' stay in
    <target>/run_results.json; returns the test results by node name."""
    install_packages()
    run = dbt(target, "run")
    assert run.success, f"dbt run failed: {run.exception or [str(r.message) for r in run.result or []]}"
    # Kept beside the test results, as the DAG keeps one run_results.json per dbt task.
    (target / "models").mkdir(exist_ok=True)
    (target / "run_results.json").replace(target / "models" / "run_results.json")
    test = dbt(target, "test")
    assert test.exception is None, f"dbt test could not run: {test.exception}"
    return results_by_name(target)


def results_by_name(target: Path) -> dict[str, dict]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2]: r for r in results}
