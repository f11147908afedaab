"""Publishing dbt results to audit.dq_results: one row per node, idempotent per run, clear errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from lakehouse import quality
from lakehouse.catalog import load_table

RUN_RESULTS_SCHEMA = "https://schemas.getdbt.com/dbt/run-results/v6.json"
MANIFEST_SCHEMA = "https://schemas.getdbt.com/dbt/manifest/v12.json"


def result(unique_id, status, *, failures=None, message=None, seconds=0.5, completed="2026-11-20T10:00:05.000000Z"):
    """One entry of run_results.json 'results' (dbt 1.11, RunResultOutput)."""
    timing = [] if status == "skipped" else [
        {"name": "compile", "started_at": "2026-11-20T10:00:00.000000Z", "completed_at": "2026-11-20T10:00:01.000000Z"},
        {"name": "execute", "started_at": "2026-11-20T10:00:01.000000Z", "completed_at": completed},
    ]
    return {
        "status": status,
        "timing": timing,
        "thread_id": "Thread-1",
        "execution_time": seconds,
        "adapter_response": {},
        "message": message,
        "failures": failures,
        "unique_id": unique_id,
        "compiled": True,
        "compiled_code": "select 1",
        "relation_name": None,
        "batch_results": None,
    }


def write_run_results(folder: Path, results: list[dict], generated_at="2026-11-20T10:00:06.000000Z") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    artifact = {
        "metadata": {
            "dbt_schema_version": RUN_RESULTS_SCHEMA,
            "dbt_version": "1.11.16",
            "generated_at": generated_at,
            "invocation_id": "3f1c7a3e-0000-4000-8000-000000000001",
            "env": {},
        },
        "results": results,
        "elapsed_time": 1.5,
        "args": {"which": "run"},
    }
    (folder / "run_results.json").write_text(json.dumps(artifact))
    return folder / "run_results.json"


def node(resource_type, name, schema, **extra):
    return {"resource_type": resource_type, "name": name, "schema": schema, "alias": name, **extra}


def write_manifest(folder: Path) -> None:
    nodes = {
        "model.liq.stg_loans": node("model", "stg_loans", "staging"),
        "model.liq.mart_positions": node("model", "mart_positions", "marts"),
        "seed.liq.currencies": node("seed", "currencies", "staging"),
        "test.liq.not_null_stg_loans_position_id.a1": node(
            "test", "not_null_stg_loans_position_id", "staging",
            attached_node="model.liq.stg_loans", depends_on={"nodes": ["model.liq.stg_loans"]},
        ),
        "test.liq.accepted_values_stg_loans_currency.b2": node(
            "test", "accepted_values_stg_loans_currency", "staging",
            attached_node="model.liq.stg_loans", depends_on={"nodes": ["model.liq.stg_loans"]},
        ),
        # A singular test has no attached node: its parent is found through depends_on.
        "test.liq.assert_positions_balance": node(
            "test", "assert_positions_balance", "marts", depends_on={"nodes": ["model.liq.mart_positions"]},
        ),
    }
    (folder / "manifest.json").write_text(
        json.dumps({"metadata": {"dbt_schema_version": MANIFEST_SCHEMA}, "nodes": nodes, "sources": {}})
    )


@pytest.fixture
def dbt_target(tmp_path) -> Path:
    """What the DAG keeps of one run: a run_results.json per dbt task (Cosmos runs dbt once per task), one manifest on top."""
    target = tmp_path / "run_artifacts"
    write_run_results(target / "seed_currencies", [result("seed.liq.currencies", "success")])
    write_run_results(
        target / "stg_loans_run", [result("model.liq.stg_loans", "success", failures=0, message="OK", seconds=1.25)]
    )
    write_run_results(
        target / "stg_loans_test",
        [
            result("test.liq.not_null_stg_loans_position_id.a1", "pass", failures=0),
            result(
                "test.liq.accepted_values_stg_loans_currency.b2",
                "warn",
                failures=3,
                message="Got 3 results, configured to warn if != 0",
            ),
        ],
    )
    write_run_results(target / "mart_positions" / "nested", [
        result("model.liq.mart_positions", "error", message="Binder Error: column x not found"),
        result("test.liq.assert_positions_balance", "skipped"),
    ])
    write_manifest(target)
    return target


def published_rows(pipeline=None):
    table = load_table(quality.TABLE)
    rows = table.scan().to_arrow().to_pylist()
    return [r for r in rows if pipeline is None or r["pipeline"] == pipeline]


def test_one_row_per_node_with_status_counts_and_tested_model(lakehouse_home, dbt_target):
    written = quality.publish_run_results("liquidity", "manual__2026-11-20", dbt_target)

    rows = {r["node_id"]: r for r in published_rows()}
    assert written == len(rows) == 6
    assert Counter(r["status"] for r in rows.values()) == {"success": 2, "pass": 1, "warn": 1, "error": 1, "skipped": 1}
    assert Counter(r["node_type"] for r in rows.values()) == {"model": 2, "test": 3, "seed": 1}
    warn = rows["test.liq.accepted_values_stg_loans_currency.b2"]
    assert (warn["failures"], warn["tested_model"], warn["node_name"]) == (
        3,
        "staging.stg_loans",
        "accepted_values_stg_loans_currency",
    )
    assert rows["test.liq.assert_positions_balance"]["tested_model"] == "marts.mart_positions"
    model = rows["model.liq.stg_loans"]
    assert model["failures"] is None and model["tested_model"] is None and model["execution_time_s"] == 1.25
    assert model["completed_at"].isoformat() == "2026-11-20T10:00:05+00:00"
    # A skipped node has no timing: it is dated by its run_results file.
    assert rows["test.liq.assert_positions_balance"]["completed_at"].isoformat() == "2026-11-20T10:00:06+00:00"
    assert rows["model.liq.mart_positions"]["message"] == "Binder Error: column x not found"
    assert quality.summarize(quality.latest_results("liquidity")) == {"passed": 3, "warned": 1, "failed": 1, "skipped": 1}


def test_publishing_a_run_twice_replaces_its_rows(lakehouse_home, dbt_target):
    quality.publish_run_results("liquidity", "run_1", dbt_target)
    quality.publish_run_results("liquidity", "run_1", dbt_target)
    assert len(published_rows()) == 6

    # The same Airflow run id in another pipeline (scheduled runs share them) is another run.
    quality.publish_run_results("treasury", "run_1", dbt_target)
    quality.publish_run_results("liquidity", "run_1", dbt_target)
    assert Counter(r["pipeline"] for r in published_rows()) == {"liquidity": 6, "treasury": 6}


def test_latest_results_are_those_of_the_last_run(lakehouse_home, dbt_target, tmp_path):
    quality.publish_run_results("liquidity", "run_1", dbt_target)
    later = tmp_path / "later"
    write_run_results(
        later, [result("model.liq.stg_loans", "success", completed="2026-11-21T10:00:05Z")], generated_at="2026-11-21T10:00:06Z"
    )
    quality.publish_run_results("liquidity", "run_2", later)

    latest = quality.latest_results()
    assert latest.column("run_id").to_pylist() == ["run_2"]
    history = quality.run_history("liquidity", runs=5).to_pylist()
    assert [(h["run_id"], h["nodes"], h["passed"], h["warned"], h["failed"]) for h in history] == [
        ("run_2", 1, 1, 0, 0),
        ("run_1", 6, 3, 1, 1),
    ]


def test_a_manifest_beside_run_results_is_used(lakehouse_home, tmp_path):
    """A plain dbt target folder: run_results.json and manifest.json side by side."""
    target = tmp_path / "dbt_project" / "target"
    write_run_results(target, [result("test.liq.not_null_stg_loans_position_id.a1", "fail", failures=7)])
    write_manifest(target)
    quality.publish_run_results("liquidity", "run_1", tmp_path / "dbt_project")
    [row] = published_rows()
    assert (row["node_name"], row["tested_model"], row["failures"]) == ("not_null_stg_loans_position_id", "staging.stg_loans", 7)


def test_without_a_manifest_names_come_from_unique_ids(lakehouse_home, tmp_path):
    write_run_results(tmp_path, [result("test.liq.unique_stg_loans_position_id.c3", "pass", failures=0)])
    quality.publish_run_results("liquidity", "run_1", tmp_path)
    [row] = published_rows()
    assert (row["node_type"], row["node_name"], row["tested_model"]) == ("test", "unique_stg_loans_position_id", None)


def test_a_retried_node_keeps_its_last_result(lakehouse_home, tmp_path):
    write_run_results(tmp_path / "try_1", [result("model.liq.stg_loans", "error", completed="2026-11-20T10:00:05Z")])
    write_run_results(tmp_path / "try_2", [result("model.liq.stg_loans", "success", completed="2026-11-20T10:05:05Z")])
    assert quality.publish_run_results("liquidity", "run_1", tmp_path) == 1
    assert [r["status"] for r in published_rows()] == ["success"]


def test_malformed_json_names_the_file(lakehouse_home, dbt_target):
    broken = dbt_target / "broken_task" / "run_results.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"results": [')
    with pytest.raises(ValueError, match=str(broken)):
        quality.publish_run_results("liquidity", "run_1", dbt_target)
    assert load_table(quality.TABLE) is None  # nothing was published


def test_missing_or_empty_target_dir_is_a_clear_error(lakehouse_home, tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        quality.publish_run_results("liquidity", "run_1", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no run_results.json"):
        quality.publish_run_results("liquidity", "run_1", tmp_path / "empty")


def test_no_results_yet_is_an_empty_table(lakehouse_home):
    assert quality.latest_results().num_rows == 0
    assert quality.run_history().num_rows == 0


def test_source_freshness_results_are_published_against_their_table(lakehouse_home, tmp_path):
    run_dir = tmp_path / "run"
    task_dir = run_dir / "dbt.source_loans_freshness"
    task_dir.mkdir(parents=True)
    # `dbt source freshness` writes sources.json (dbt 1.11, FreshnessExecutionResultArtifact), not run_results.json.
    freshness = {
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/sources/v3.json",
                     "generated_at": "2026-11-20T10:00:06.000000Z", "invocation_id": "x", "env": {}},
        "elapsed_time": 0.1,
        "results": [{
            "unique_id": "source.liq.loan_system.positions_loans", "status": "warn",
            "max_loaded_at": "2026-11-18T10:00:00+00:00", "snapshotted_at": "2026-11-20T10:00:00+00:00",
            "max_loaded_at_time_ago_in_s": 172800.0, "execution_time": 0.02, "thread_id": "Thread-1",
            "timing": [], "adapter_response": {}, "criteria": {},
        }],
    }
    (task_dir / "sources.json").write_text(json.dumps(freshness))
    sources = {"source.liq.loan_system.positions_loans": {
        "resource_type": "source", "name": "positions_loans", "source_name": "loan_system",
        "schema": "raw", "identifier": "positions_loans",
    }}
    (run_dir / "manifest.json").write_text(json.dumps({"nodes": {}, "sources": sources}))

    assert quality.publish_run_results("liquidity", "run-f", run_dir) == 1
    row = quality.latest_results("liquidity").to_pylist()[0]
    assert (row["node_type"], row["node_name"], row["status"], row["tested_model"]) == (
        "source", "loan_system.positions_loans", "warn", "raw.positions_loans",
    )
    assert row["message"].startswith("last loaded 48.0 h ago")
    assert quality.test_counts(quality.latest_results("liquidity")) == {"passed": 0, "warned": 1, "failed": 0, "skipped": 0}
