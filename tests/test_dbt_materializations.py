"""What a dbt user relies on from the Iceberg materializations, through real dbt runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakehouse import compute
from lakehouse.catalog import load_table
from lakehouse.testing import dbt as run_dbt

PROJECT = Path(__file__).parent / "fixtures" / "iceberg_project"


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
def project(lakehouse_home):
    ok, message = dbt("deps")
    assert ok, message
    ok, message = dbt("run", batch=1)
    assert ok, message
    return lakehouse_home


def test_first_run_builds_partitioned_iceberg_tables(project):
    assert rows("select event_id, status from staging.fixture_events order by 1") == [(1, "created"), (2, "created")]
    table = load_table("staging.fixture_events")
    assert [str(f.transform) for f in table.spec().fields] == ["identity"]
    assert table.current_snapshot().summary.additional_properties["dbt.node"] == "model.iceberg_fixture.fixture_events"


def test_incremental_merge_updates_and_inserts_by_unique_key(project):
    ok, message = dbt("run", batch=2)
    assert ok, message
    assert rows("select event_id, status from staging.fixture_events order by 1") == [
        (1, "created"), (2, "shipped"), (3, "created"),
    ]
    assert rows("select status, events from staging.fixture_summary order by 1") == [("created", 2), ("shipped", 1)]


def test_a_new_column_is_added_by_schema_evolution(project):
    ok, message = dbt("run", batch=2, with_channel=True)
    assert ok, message
    assert rows("select event_id, channel from staging.fixture_events order by 1") == [
        (1, None), (2, "web"), (3, "web"),
    ]


@pytest.mark.parametrize(
    ("bad_vars", "error"),
    [
        ({"duplicate_keys": True}, "duplicate values of unique_key ['event_id']"),
        ({"broken_sql": True}, "no_such_column"),
    ],
)
def test_a_failed_model_leaves_the_previous_snapshot(project, bad_vars, error):
    before = load_table("staging.fixture_events").current_snapshot().snapshot_id
    ok, message = dbt("run", "--select", "fixture_events", batch=2, **bad_vars)
    assert not ok
    assert error in message
    assert load_table("staging.fixture_events").current_snapshot().snapshot_id == before
    assert rows("select count(*) from staging.fixture_events") == [(2,)]


def test_a_view_is_refused_with_the_reason(project):
    ok, message = dbt("run", "--select", "fixture_summary", summary_materialization="view")
    assert not ok
    assert "would live only in one task's in-memory DuckDB" in message


def test_full_refresh_rebuilds_from_the_model(project):
    ok, message = dbt("run", "--full-refresh", batch=2)
    assert ok, message
    assert rows("select event_id, status from staging.fixture_events order by 1") == [(2, "shipped"), (3, "created")]


def test_an_enforced_contract_is_checked_before_anything_is_written(project):
    assert rows("select event_id, status from staging.fixture_contract") == [(1, "created")]
    before = load_table("staging.fixture_contract").current_snapshot().snapshot_id
    ok, message = dbt("run", "--select", "fixture_contract", break_contract=True)
    assert not ok
    assert "contract" in message.lower() and "status" in message
    assert load_table("staging.fixture_contract").current_snapshot().snapshot_id == before
