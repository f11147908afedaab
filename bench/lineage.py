"""The cost of lineage: the same liquidity daily runs with OpenLineage off and on (file transport).

Each side is a process of its own (Airflow reads its configuration, and so whether the OpenLineage listener
is loaded, once per process) on its own fresh lakehouse. Both run a warm-up date first (Airflow's
database, dbt's first parse), then the same dates, taking turns: off, on, off, on, ... so a change in what
else the machine is doing falls on both sides alike. The figure is the ratio of the fastest run of each
side; the CPU time the runs took is reported beside it (less sensitive than wall time to a busy machine).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

WARMUP = dt.date(2026, 11, 15)
TIMED = (dt.date(2026, 11, 16), dt.date(2026, 11, 17), dt.date(2026, 11, 18), dt.date(2026, 11, 19))

# One process per side: runs the date it reads from stdin, answers with one JSON line.
_SERVE = """
import datetime as dt, json, resource, sys
from lakehouse.runner import run_pipelines

def cpu():
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))

conf = json.loads(sys.argv[1])
for line in sys.stdin:
    before = cpu()
    [result] = run_pipelines(["liquidity"], dt.date.fromisoformat(line.strip()), conf)
    print(json.dumps({"state": result.state, "error": result.error, "seconds": result.wall_seconds,
                      "cpu_seconds": round(cpu() - before, 2), "tasks": len(result.task_states)}), flush=True)
"""


class _Side:
    def __init__(self, lineage: str, conf: dict, home: Path, pipelines: Path) -> None:
        env = {**os.environ, "LAKEHOUSE_HOME": str(home), "LAKEHOUSE_LINEAGE": lineage,
               "LAKEHOUSE_PIPELINES_DIR": str(pipelines),
               # The warm-up's first DAG parse runs `dbt parse`: it can exceed Airflow's 30 s on a busy machine.
               "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600"}
        for name in ("AIRFLOW_HOME", "LAKEHOUSE_LINEAGE_FILE", "LAKEHOUSE_LINEAGE_URL"):
            env.pop(name, None)
        self.lineage = lineage
        self.process = subprocess.Popen([sys.executable, "-c", _SERVE, json.dumps(conf)], env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, day: dt.date) -> dict:
        self.process.stdin.write(f"{day.isoformat()}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark run (lineage {self.lineage}) died:\n{self.process.stderr.read()[-4000:]}")
        result = json.loads(line)
        if result["state"] != "success":
            raise RuntimeError(f"benchmark run (lineage {self.lineage}) failed: {result}")
        return result

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=600)


def measure(scale: float = 0.1) -> dict:
    from lakehouse.settings import REPO_ROOT

    conf = {"scale": scale, "bad_row_rate": 0.01, "seed": 42}
    with tempfile.TemporaryDirectory() as root:
        # Only the liquidity pipeline: the DAG file then parses one dbt project, as in a real deployment of one.
        pipelines = Path(root) / "pipelines"
        pipelines.mkdir()
        (pipelines / "liquidity").symlink_to(REPO_ROOT / "pipelines" / "liquidity")
        off = _Side("off", conf, Path(root) / "off", pipelines)
        on = _Side("file", conf, Path(root) / "on", pipelines)
        try:
            off.run(WARMUP)
            on.run(WARMUP)
            runs = {"off": [], "on": []}
            for day in TIMED:
                runs["off"].append(off.run(day))
                runs["on"].append(on.run(day))
        finally:
            off.close()
            on.close()
        events_file = Path(root) / "on" / "lineage" / "events.jsonl"
        events = sum(1 for _ in events_file.open()) if events_file.exists() else 0
    seconds = {side: [r["seconds"] for r in rs] for side, rs in runs.items()}
    cpu = {side: [r["cpu_seconds"] for r in rs] for side, rs in runs.items()}
    return {
        "scale": scale,
        "tasks": runs["on"][0]["tasks"],
        "off_seconds": min(seconds["off"]),
        "on_seconds": min(seconds["on"]),
        "off_runs": seconds["off"],
        "on_runs": seconds["on"],
        "off_cpu_seconds": min(cpu["off"]),
        "on_cpu_seconds": min(cpu["on"]),
        "events": events,
        "ratio": min(seconds["on"]) / min(seconds["off"]),
        "median_pair_ratio": statistics.median(b / a for a, b in zip(seconds["off"], seconds["on"])),
        "cpu_ratio": min(cpu["on"]) / min(cpu["off"]),
    }


if __name__ == "__main__":
    print(json.dumps(measure(float(sys.argv[1]) if len(sys.argv) > 1 else 0.1), indent=2))
