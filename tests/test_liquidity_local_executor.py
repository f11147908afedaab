"""The liquidity pipeline under Airflow's LocalExecutor: its three ingest tasks run at the same time, in
separate processes, on one lakehouse (no DuckDB file lock between them)."""

from __future__ import annotations

import datetime as dt

import pytest
from local_executor import ingest_windows, most_at_once, run_under_local_executor

pytestmark = pytest.mark.e2e


def test_ingest_tasks_run_at_the_same_time_under_the_local_executor(tmp_path):
    result = run_under_local_executor("liquidity", dt.date(2026, 11, 20), {"scale": 0.01}, tmp_path)
    windows = ingest_windows(result)
    assert len(windows) == 3
    # All three were running at one moment: the latest start comes before the earliest end.
    assert most_at_once(windows) == 3
    assert all(state in ("success", "skipped") for state in result["task_states"].values())
