"""The energy pipeline under Airflow's LocalExecutor: its eight ingest tasks (one per table of the map)
overlap in separate processes, with no lock error, and the marts come out whole."""

from __future__ import annotations

import datetime as dt

import pytest
from local_executor import ingest_windows, most_at_once, run_under_local_executor

from lakehouse.pipeline import get_pipeline

pytestmark = pytest.mark.e2e


def test_the_ingest_tasks_run_at_the_same_time_under_the_local_executor(tmp_path):
    # The runner allows 4 task processes on 2 cores; 8 here so that all eight ingest tasks can run at once.
    # Only this pipeline's folder is visible: the DAG file (loaded by every task process) builds one DAG.
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "energy").symlink_to(get_pipeline("energy").folder)
    result = run_under_local_executor("energy", dt.date(2026, 11, 20), {"scale": 0.5}, tmp_path / "home",
                                      pipelines_dir=pipelines, parallelism=8)
    assert all(state in ("success", "skipped") for state in result["task_states"].values())
    windows = ingest_windows(result)
    assert len(windows) == 8
    # Several ran at one moment. Not necessarily all eight: on 2 cores a small table's task may end
    # before the last of the eight processes has started.
    most = most_at_once(windows)
    assert most >= 4, f"at most {most} ingest tasks ran at once: {result['task_times']}"
    task_logs = sorted((tmp_path / "home" / "logs" / "airflow").rglob("*.log"))
    assert not [p for p in task_logs if "Could not set lock" in p.read_text(errors="replace")]
    assert result["mart_rows"]["marts.demand_price_elasticity"] == 3 * 6 * 24
