"""Running a pipeline under Airflow's LocalExecutor in a fresh process (Airflow reads its configuration
once, at import), for the tests that check that independent tasks run at the same time."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CODE = textwrap.dedent("""
    import datetime as dt, json, sys
    from dataclasses import asdict
    from lakehouse import runner
    name, day, conf, parallelism = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    if parallelism:
        environment = runner.airflow_environment
        runner.airflow_environment = lambda settings, executor=None: {
            **environment(settings, executor), "AIRFLOW__CORE__PARALLELISM": parallelism}
    [result] = runner.run_pipelines([name], dt.date.fromisoformat(day), conf, executor="local")
    print(json.dumps(asdict(result), default=str))
""")


def run_under_local_executor(pipeline: str, day: dt.date, conf: dict, home: Path, pipelines_dir: Path | None = None,
                             parallelism: int | None = None) -> dict:
    """The run's PipelineResult as a dict; a failed run fails the test with each failed task's error."""
    env = {**os.environ, "LAKEHOUSE_HOME": str(home)}
    if pipelines_dir is not None:
        env["LAKEHOUSE_PIPELINES_DIR"] = str(pipelines_dir)
    for name in ("AIRFLOW_HOME", "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_RAW_ZONE", "LAKEHOUSE_CATALOG_URI"):
        env.pop(name, None)
    argv = [sys.executable, "-c", CODE, pipeline, day.isoformat(), json.dumps(conf), str(parallelism or "")]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["state"] != "success":
        log = Path(result["log_file"]).read_text(errors="replace")[-3000:] if result["log_file"] else ""
        pytest.fail(f"{pipeline}: {result['task_errors'] or result['task_states']} {result['error']}\n{log}")
    return result


def ingest_windows(result: dict) -> list[tuple[dt.datetime, dt.datetime]]:
    """(start, end) of every ingest task of the run."""
    return [tuple(map(dt.datetime.fromisoformat, times)) for task, times in result["task_times"].items()
            if task.startswith("ingest_")]


def most_at_once(windows: list[tuple[dt.datetime, dt.datetime]]) -> int:
    """The most tasks that were running at one moment."""
    running = most = 0
    for _, step in sorted([(start, 1) for start, _ in windows] + [(end, -1) for _, end in windows]):
        running += step
        most = max(most, running)
    return most
