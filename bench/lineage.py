"""The cost of lineage: the same liquidity daily runs with OpenLineage off and on (file transport).

Each side runs on its own fresh lakehouse, in its own process (Airflow reads its configuration, and so
whether the OpenLineage listener is loaded, once per process): a warm-up date first (Airflow's database,
dbt's first parse), then the same timed dates on both sides. The figure is the ratio of the fastest timed
run on each side, the least disturbed by whatever else the machine is doing; the CPU time the runs took
is reported beside it (on a busy machine, wall time varies by more than lineage costs).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

WARMUP = dt.date(2026, 11, 16)
TIMED = (dt.date(2026, 11, 17), dt.date(2026, 11, 18), dt.date(2026, 11, 19))

_RUN = """
import datetime as dt, json, resource, sys
from lakehouse.runner import run_pipelines

def cpu():
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))

conf = json.loads(sys.argv[1])
seconds, cpu_seconds = [], []
for day in sys.argv[2:]:
    before = cpu()
    [result] = run_pipelines(["liquidity"], dt.date.fromisoformat(day), conf)
    assert result.state == "success", result
    seconds.append(result.wall_seconds)
    cpu_seconds.append(round(cpu() - before, 2))
print(json.dumps({"seconds": seconds[1:], "cpu_seconds": cpu_seconds[1:], "tasks": len(result.task_states)}))
"""


def _side(lineage: str, conf: dict, home: Path, pipelines: Path) -> dict:
    env = {**os.environ, "LAKEHOUSE_HOME": str(home), "LAKEHOUSE_LINEAGE": lineage, "LAKEHOUSE_PIPELINES_DIR": str(pipelines),
           # The warm-up's first DAG parse runs `dbt parse`: it can exceed Airflow's 30 s on a busy machine.
           "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600"}
    for name in ("AIRFLOW_HOME", "LAKEHOUSE_LINEAGE_FILE", "LAKEHOUSE_LINEAGE_URL"):
        env.pop(name, None)
    days = [d.isoformat() for d in (WARMUP, *TIMED)]
    done = subprocess.run([sys.executable, "-c", _RUN, json.dumps(conf), *days], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark run (lineage {lineage}) failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(scale: float = 0.1) -> dict:
    from lakehouse.settings import REPO_ROOT

    conf = {"scale": scale, "bad_row_rate": 0.01, "seed": 42}
    with tempfile.TemporaryDirectory() as root:
        # Only the liquidity pipeline: the DAG file then parses one dbt project, as in a real deployment of one.
        pipelines = Path(root) / "pipelines"
        pipelines.mkdir()
        (pipelines / "liquidity").symlink_to(REPO_ROOT / "pipelines" / "liquidity")
        off = _side("off", conf, Path(root) / "off", pipelines)
        on = _side("file", conf, Path(root) / "on", pipelines)
        events_file = Path(root) / "on" / "lineage" / "events.jsonl"
        events = sum(1 for _ in events_file.open()) if events_file.exists() else 0
        size = events_file.stat().st_size if events_file.exists() else 0
    return {
        "scale": scale,
        "tasks": on["tasks"],
        "off_seconds": min(off["seconds"]),
        "on_seconds": min(on["seconds"]),
        "off_runs": off["seconds"],
        "on_runs": on["seconds"],
        # CPU time of the run's process (and any it waited for): what lineage adds to the work itself,
        # less sensitive than wall time to what else a shared machine is running.
        "off_cpu_seconds": min(off["cpu_seconds"]),
        "on_cpu_seconds": min(on["cpu_seconds"]),
        "events": events,
        "events_bytes": size,
        "ratio": min(on["seconds"]) / min(off["seconds"]),
        "cpu_ratio": min(on["cpu_seconds"]) / min(off["cpu_seconds"]),
    }


if __name__ == "__main__":
    print(json.dumps(measure(float(sys.argv[1]) if len(sys.argv) > 1 else 0.1), indent=2))
