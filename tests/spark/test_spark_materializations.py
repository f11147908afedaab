"""The shared package's Iceberg materializations on Spark: the same fixture project and the same
outcomes as on DuckDB (tests/test_dbt_materializations.py), each table read back by DuckDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse import compute
from lakehouse.catalog import get_catalog, load_table
from lakehouse.testing import dbt as run_dbt

PROJECT = Path(__file__).parents[1] / "fixtures" / "iceberg_project"
TABLES = ("staging.fixture_events", "staging.fixture_summary", "staging.fixture_contract")


def dbt(*args: str, **dbt_vars) -> tuple[bool, str]:
    argv = list(args)
    if dbt_vars:
        argv += ["--vars", json.dumps(dbt_vars)]
    result = run_dbt(PROJECT, *argv)
    messages = " ".join(str(getattr(r, "message", "") or "") for r in (result.result or []) if hasattr(r, "message"))
    return result.success, messages + " " + str(result.exception or "")


def rows(sql: str) -> list[tuple]:
    return compute.connect().sql(sql).fetchall()


@pytest.fixture
def project(spark_home):
    """The fixture project's first run (batch 1) on Spark, from no tables."""
    catalog = get_catalog()
    for name in TABLES:
        if load_table(name) is not None:
            catalog.drop_table(name)
    ok, message = dbt("deps")
    assert ok, message
    ok, message = dbt("run", batch=1)
    assert ok, message
    return spark_home


def test_first_run_builds_a_partitioned_iceberg_table(project):
    assert rows("select event_id, status from staging.fixture_events order by 1") == [(1, "created"), (2, "created")]
    table = load_table("staging.fixture_events")
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("event_date", "identity")]
    assert table.current_snapshot().summary["engine-name"] == "spark"


def test_merge_then_schema_evolution_then_a_failed_run_keeps_the_snapshot(project):
    ok, message = dbt("run", batch=2)
    assert ok, message
    assert rows("select event_id, status from staging.fixture_events order by 1") == [
        (1, "created"), (2, "shipped"), (3, "created")]
    assert rows("select status, events from staging.fixture_summary order by 1") == [("created", 2), ("shipped", 1)]
    snapshots = len(load_table("staging.fixture_events").snapshots())
    ok, message = dbt("run", "--select", "fixture_events", batch=2, with_channel=True)
    assert ok, message
    assert rows("select event_id, channel from staging.fixture_events order by 1") == [(1, None), (2, "web"), (3, "web")]
    # One data commit for the merge (the ADD COLUMNS is metadata only: no snapshot).
    assert len(load_table("staging.fixture_events").snapshots()) == snapshots + 1
    before = load_table("staging.fixture_events").current_snapshot().snapshot_id
    for bad_vars, error in [({"duplicate_keys": True}, "duplicate values of unique_key ['event_id']"),
                            ({"broken_sql": True}, "no_such_column")]:
        ok, message = dbt("run", "--select", "fixture_events", batch=2, **bad_vars)
        assert not ok and error in message
        assert load_table("staging.fixture_events").current_snapshot().snapshot_id == before


def test_full_refresh_rebuilds_and_view_and_contract_are_refused(project):
    ok, message = dbt("run", "--full-refresh", batch=2)
    assert ok, message
    assert rows("select event_id, status from staging.fixture_events order by 1") == [(2, "shipped"), (3, "created")]
    ok, message = dbt("run", "--select", "fixture_summary", summary_materialization="view")
    assert not ok and "would be a view DuckDB and PyIceberg cannot read" in message
    before = load_table("staging.fixture_contract").current_snapshot().snapshot_id
    ok, message = dbt("run", "--select", "fixture_contract", break_contract=True)
    assert not ok and "contract" in message.lower()
    assert load_table("staging.fixture_contract").current_snapshot().snapshot_id == before


def test_the_session_target_runs_spark_inside_dbt_on_the_same_catalog(project, tmp_path):
    """LAKEHOUSE_SPARK_METHOD=session: no server, Spark in the dbt process, the same tables."""
    from lakehouse.engines import get_engine
    from lakehouse.settings import load_settings

    env = {**os.environ, "LAKEHOUSE_SPARK_METHOD": "session"}
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_SPARK_METHOD", "session")
        engine = get_engine(load_settings())
        assert engine.dbt_target == "spark_session"
        env.update(engine.prepare())
    done = subprocess.run([str(Path(sys.executable).with_name("dbt")), "run", "--target", "spark_session",
                           "--select", "fixture_events", "--vars", json.dumps({"batch": 2}),
                           "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT.parents[2] / "dbt"),
                           # its own target folder: other test workers run dbt on this project meanwhile
                           "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
                          env=env, cwd=workdir, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert rows("select event_id, status from staging.fixture_events order by 1") == [
        (1, "created"), (2, "shipped"), (3, "created")]
    assert not list(workdir.iterdir()), "a session leaves nothing in the working folder (metastore_db, derby.log)"


def test_the_expectation_tests_give_the_same_outcomes_on_spark(spark_home, tmp_path):
    from expectations_project import FAILURES, outcome, run_and_test

    results = run_and_test(tmp_path)
    assert {name: (r["status"], r["failures"]) for name, r in results.items()} == {name: outcome(name) for name in FAILURES}
