"""The liquidity pipeline through Airflow + Cosmos against the same work done plainly.

Both sides process the same generated data (same seed, scale and dates) on their own fresh
lakehouse: a warm-up date first (the first run builds everything and pays one-off costs such as
Airflow's metadata database and dbt's first parse), then the timed date, an ordinary daily run.

- Airflow: the DAG run's wall time (``lakehouse.runner``): 3 ingest tasks, a Cosmos task per model
  and per model's tests, source freshness, data-quality publishing and maintenance.
- Plain: the three ingests called directly, then one `dbt build` command for that date's interval.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from lakehouse.settings import REPO_ROOT

WARMUP, DAY = dt.date(2026, 11, 18), dt.date(2026, 11, 19)
SOURCES = ("market_data", "positions_loans", "positions_deposits")

_AIRFLOW_RUN = """
import datetime as dt, json, sys
from lakehouse.runner import run_pipelines
conf = json.loads(sys.argv[1])
for day in sys.argv[2:]:
    [result] = run_pipelines(["liquidity"], dt.date.fromisoformat(day), conf)
    assert result.state == "success", result
print(json.dumps({"wall_seconds": result.wall_seconds, "tasks": len(result.task_states)}))
"""

_PLAIN_RUN = """
import datetime as dt, json, subprocess, sys, time
from lakehouse.ingest import run_ingest
conf, project, profiles = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
for day in map(dt.date.fromisoformat, sys.argv[4:]):
    start = time.perf_counter()
    for source in %r:
        run_ingest("liquidity", source, day, {"callable": f"generator.py:{source}", **conf})
    ingest = time.perf_counter() - start
    interval = json.dumps({"data_interval_start": str(day), "data_interval_end": str(day + dt.timedelta(days=1))})
    subprocess.run([sys.executable.replace("python", "dbt"), "build", "--project-dir", project,
                    "--profiles-dir", profiles, "--vars", interval, "--quiet"], check=True)
    total = time.perf_counter() - start
print(json.dumps({"wall_seconds": total, "ingest_seconds": ingest}))
""" % (SOURCES,)  # noqa: UP031 - a Python script full of braces: %r is its one placeholder


def _python(code: str, home: Path, *args: str) -> dict:
    env = {**os.environ, "LAKEHOUSE_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark run failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(scale: float = 1.0) -> dict:
    conf = {"scale": scale, "bad_row_rate": 0.01, "seed": 42}
    dates = [WARMUP.isoformat(), DAY.isoformat()]
    with tempfile.TemporaryDirectory() as airflow_home, tempfile.TemporaryDirectory() as plain_home:
        airflow = _python(_AIRFLOW_RUN, Path(airflow_home), json.dumps(conf), *dates)
        project = str(REPO_ROOT / "pipelines" / "liquidity" / "dbt")
        plain = _python(_PLAIN_RUN, Path(plain_home), json.dumps(conf), project, str(REPO_ROOT / "dbt"), *dates)
    return {
        "scale": scale,
        "airflow_seconds": airflow["wall_seconds"],
        "airflow_tasks": airflow["tasks"],
        "plain_seconds": plain["wall_seconds"],
        "ratio": airflow["wall_seconds"] / plain["wall_seconds"],
    }
