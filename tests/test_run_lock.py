"""One run of a pipeline at a time on one lakehouse: a second `lakehouse run` of it is refused at start,
before any Airflow work, naming the run that holds <home>/locks/<pipeline>.lock."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from lakehouse import cli, runner
from lakehouse.pipeline import discover_pipelines
from lakehouse.settings import load_settings

HOLDER = """
import sys
from lakehouse.runner import pipeline_lock
from lakehouse.settings import load_settings

with pipeline_lock(load_settings(), sys.argv[1:]):
    print("locked", flush=True)
    sys.stdin.read()  # until the test closes stdin (or kills this process)
"""


@pytest.fixture
def holder(lakehouse_home):
    """start(*pipelines): a process holding their locks until its stdin closes; stopped afterwards."""
    started = []

    def start(*names: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", HOLDER, *names], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        started.append(process)
        line = process.stdout.readline()
        assert line == "locked\n", process.stderr.read()
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.fixture
def pipeline_name(lakehouse_home):
    return discover_pipelines(load_settings())[0].name


def refusal(name: str, pid: int) -> str:
    since = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    return rf"pipeline {name} is already running on this lakehouse \(pid {pid}, since {since}\); wait for it or stop it"


def test_a_second_run_is_refused_before_any_airflow_work(holder, pipeline_name, monkeypatch):
    settings = load_settings()
    first = holder(pipeline_name)
    lock_file = settings.home / "locks" / f"{pipeline_name}.lock"
    assert json.loads(lock_file.read_text())["pid"] == first.pid

    def no_airflow(*args, **kwargs):
        raise AssertionError("Airflow was prepared although the pipeline is locked")

    # Only a guard: were the lock not taken first, the test fails here instead of running a whole pipeline.
    monkeypatch.setattr(runner, "_prepare_airflow", no_airflow)
    with pytest.raises(runner.PipelineRunningError, match=refusal(pipeline_name, first.pid)):
        runner.run_pipelines([pipeline_name])
    assert not settings.airflow_home.exists()
    assert not (settings.logs_dir / "runs").exists()  # refused before the run log is opened

    # The CLI shows it as one line.
    result = CliRunner().invoke(cli.main, ["run", pipeline_name])
    assert result.exit_code == 1
    assert re.search(refusal(pipeline_name, first.pid), result.stderr) and "Traceback" not in result.stderr

    # After the holder is done, the lock is free again; this process then holds it and says so.
    first.stdin.close()
    assert first.wait(timeout=30) == 0
    with runner.pipeline_lock(settings, [pipeline_name]):
        assert json.loads(lock_file.read_text())["pid"] != first.pid
        # One process cannot take it twice either.
        with pytest.raises(runner.PipelineRunningError, match="already running"), runner.pipeline_lock(settings, [pipeline_name]):
            pass
    assert lock_file.read_text() == ""  # released


def test_a_crashed_holder_leaves_no_lock_and_other_pipelines_are_free(holder, pipeline_name):
    settings = load_settings()
    crashed = holder(pipeline_name)
    with runner.pipeline_lock(settings, ["some_other_pipeline"]):  # a different pipeline is not blocked
        pass
    crashed.send_signal(signal.SIGKILL)
    crashed.wait(timeout=30)
    # Its pid is still in the file, but the lock went with the process.
    assert json.loads((settings.home / "locks" / f"{pipeline_name}.lock").read_text())["pid"] == crashed.pid
    with runner.pipeline_lock(settings, [pipeline_name]):
        pass
