"""The `lakehouse` command, through click's CliRunner on a throw-away lakehouse."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import sys
import types
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from lakehouse import cli, quality, writes
from lakehouse.settings import REPO_ROOT, load_settings


@pytest.fixture
def cities(lakehouse_home):
    writes.write(
        "raw.cities", pa.table({"id": [1, 2, 3], "name": ["Oslo", "Lima", "Pune"], "population_k": [709, 10_719, 7_764]})
    )
    for i in range(4):
        writes.write("raw.visits", pa.table({"city_id": [i % 3 + 1], "visits": [i]}), "append")


def invoke(*args, env=None):
    # Wide output so rich does not wrap table cells.
    return CliRunner().invoke(cli.main, list(args), env={"COLUMNS": "200", **(env or {})})


def test_query_prints_csv(cities):
    result = invoke("query", "select id, name from raw.cities where population_k > 1000 order by id", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == "id,name\n2,Lima\n3,Pune\n"


def test_query_prints_json_and_a_table(cities):
    result = invoke("query", "select count(*) as n, sum(visits)::bigint as total from raw.visits", "--format", "json")
    assert json.loads(result.stdout) == [{"n": 4, "total": 6}]
    result = invoke("query", "select name from raw.cities order by name")
    assert result.exit_code == 0 and all(name in result.stdout for name in ("Lima", "Oslo", "Pune"))


def test_query_of_an_unknown_table_fails_with_duckdbs_message(cities):
    result = invoke("query", "select * from raw.nowhere")
    assert result.exit_code == 1
    assert "Table with name nowhere does not exist" in result.stderr
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.stderr


def test_query_with_bad_sql_fails_cleanly(cities):
    result = invoke("query", "selec 1")
    assert result.exit_code == 1 and "syntax error" in result.stderr.lower()


def test_tables_lists_every_table_with_its_row_count(cities):
    result = invoke("tables", "--format", "csv")
    assert result.exit_code == 0, result.output
    listed = {row["table"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert {name: int(row["rows"]) for name, row in listed.items()} == {"raw.cities": 3, "raw.visits": 4}
    assert (int(listed["raw.visits"]["snapshots"]), int(listed["raw.visits"]["data_files"])) == (4, 4)
    assert listed["raw.visits"]["last_commit_utc"].startswith(str(dt.datetime.now(dt.UTC).date()))
    human = invoke("tables")
    assert "raw.cities" in human.stdout and "KiB" in human.stdout


def test_maintain_reports_files_and_snapshots(cities, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_PIPELINES_DIR", str(tmp_path))  # no pipeline: default settings
    result = invoke("maintain", "raw.visits", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "4 -> 1" in result.stdout and "dry run" in result.stdout
    assert invoke("maintain", "raw.visits").exit_code == 0
    assert "4 -> 1" not in invoke("maintain", "raw.visits").stdout  # already compacted
    result = invoke("maintain", "raw.nowhere")
    assert result.exit_code == 1 and "raw.nowhere" in result.stderr


def test_quality_shows_the_latest_run_with_a_summary(lakehouse_home, tmp_path):
    results = [
        {
            "unique_id": "model.liq.stg_loans",
            "status": "success",
            "timing": [],
            "execution_time": 0.4,
            "failures": None,
            "message": "OK",
        },
        {
            "unique_id": "test.liq.not_null_stg_loans_id.x1",
            "status": "fail",
            "timing": [],
            "execution_time": 0.1,
            "failures": 2,
            "message": "Got 2 results",
        },
    ]
    (tmp_path / "run_results.json").write_text(
        json.dumps({"metadata": {"generated_at": "2026-11-20T10:00:00Z"}, "results": results})
    )
    quality.publish_run_results("liquidity", "run_1", tmp_path)

    result = invoke("quality", "--pipeline", "liquidity", "--history", "3")
    assert result.exit_code == 0, result.output
    assert "not_null_stg_loans_id" in result.stdout
    assert "liquidity: 1 passed, 0 warned, 1 failed, 0 skipped" in result.stdout
    assert "run_1" in result.stdout
    assert "no data-quality results yet" in invoke("quality", "--pipeline", "other").stdout


def test_quality_explains_failed_and_warned_tests_with_their_failing_rows(lakehouse_home, tmp_path):
    """The failing rows are read again with the test's compiled SQL: a `message` column is shown as is."""
    explained = ("select 'sum(notional_usd) for portfolio_id=PF01 on 2026-11-20: value 10.00, mean 1.00' as message "
                 "-- a trailing comment")  # fmt: skip
    results = [
        {"unique_id": "test.liq.zscore_notional.x1", "status": "fail", "timing": [], "execution_time": 0.1, "failures": 1,
         "message": "Got 1 result, configured to fail if != 0", "compiled_code": explained},
        {"unique_id": "test.liq.accepted_values_ccy.x2", "status": "warn", "timing": [], "execution_time": 0.1, "failures": 2,
         "message": "Got 2 results, configured to warn if != 0",
         "compiled_code": "select * from (values ('XXX', 3), ('YYY', 1)) as t(value_field, n_records)"},
        {"unique_id": "test.liq.not_null_x.x3", "status": "pass", "timing": [], "execution_time": 0.1, "failures": 0,
         "message": None, "compiled_code": "select 1 as never_shown"},
    ]  # fmt: skip
    (tmp_path / "run_results.json").write_text(
        json.dumps({"metadata": {"generated_at": "2026-11-20T10:00:00Z"}, "results": results})
    )
    quality.publish_run_results("liquidity", "run_1", tmp_path)

    out = invoke("quality", "--pipeline", "liquidity").stdout
    assert "fail zscore_notional: Got 1 result, configured to fail if != 0" in out
    assert "    sum(notional_usd) for portfolio_id=PF01 on 2026-11-20: value 10.00, mean 1.00" in out
    assert "warn accepted_values_ccy: Got 2 results" in out and "    value_field=XXX, n_records=3" in out
    assert "never_shown" not in out


def test_run_calls_the_runner_and_exits_1_when_a_pipeline_failed(monkeypatch):
    calls = {}

    def run_pipelines(names, logical_date, conf, on_progress, executor):
        calls.update(names=names, logical_date=logical_date, conf=conf, executor=executor)
        on_progress({"task_id": "ingest.market_data", "state": "running", "done": 0, "total": 2})
        on_progress(types.SimpleNamespace(task_id="dbt.stg_loans", state="success", done=2, total=2))
        ok = types.SimpleNamespace(pipeline="liquidity", state="success", tasks_succeeded=2, tasks_failed=0,
                                   task_states={"a": "success"}, tests_passed=5, tests_warned=1, tests_failed=0,
                                   mart_rows={"marts.mart_positions": 3500}, wall_seconds=12.5)
        failed = dict(pipeline="treasury", state="failed", tasks_succeeded=1, tasks_failed=1,
                      task_states={"load": "failed", "report": "upstream_failed"}, tests_passed=0, tests_warned=0,
                      tests_failed=0, mart_rows={}, wall_seconds=3.0)
        return [ok, failed]

    monkeypatch.setitem(sys.modules, "lakehouse.runner", types.SimpleNamespace(run_pipelines=run_pipelines))
    result = invoke("run", "liquidity", "treasury", "--date", "2026-11-20", "--conf", "scale=0.1", "--conf", "label=eod",
                    "--full-refresh", "--executor", "local")

    assert result.exit_code == 1, result.output
    assert calls == {
        "names": ["liquidity", "treasury"],
        "logical_date": dt.date(2026, 11, 20),
        "conf": {"scale": 0.1, "label": "eod", "full_refresh": True},
        "executor": "local",
    }
    assert "marts.mart_positions 3,500 rows" in result.stdout
    assert "treasury: not successful: load, report" in result.stdout
    assert invoke("run", "--conf", "novalue").exit_code == 2


def test_ui_environment(lakehouse_home, monkeypatch):
    monkeypatch.delenv("AIRFLOW__API__HOST", raising=False)
    monkeypatch.delenv("AIRFLOW__CORE__PARALLELISM", raising=False)
    env = cli.ui_environment(load_settings())
    assert env["AIRFLOW_HOME"] == str(lakehouse_home.resolve() / "airflow")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO_ROOT / "dags")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    assert env["LAKEHOUSE_HOME"] == str(lakehouse_home.resolve())
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)  # standalone runs `airflow ...`
    assert cli.ui_environment(load_settings(), login=False)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "True"
