"""The DAG factory's shape for every pipeline folder, and idempotent ingest (same date twice = same rows)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import types

import pyarrow as pa
import pytest

from lakehouse.pipeline import discover_pipelines
from lakehouse.settings import REPO_ROOT

DAG_FILE = REPO_ROOT / "dags" / "lakehouse_dags.py"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every pipeline with its DAG, built once on a throw-away home (the manifest is parsed there)."""
    home = tmp_path_factory.mktemp("lakehouse")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_HOME", str(home))
        patch.setenv("AIRFLOW_HOME", str(home / "airflow"))
        patch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        from lakehouse.dag_factory import build_all_dags

        dags = build_all_dags()
        yield [(pipeline, dags[pipeline.dag_id]) for pipeline in discover_pipelines()]


def _model_names(pipeline) -> list[str]:
    return sorted(path.stem for path in (pipeline.dbt_project_dir / "models").rglob("*.sql"))


def test_every_pipeline_folder_has_a_dag(built):
    assert built, "no pipeline folders found"
    assert {p.name for p, _ in built} == {p.name for p in discover_pipelines()}


def test_every_entrys_options_are_valid_once_rendered_with_the_default_params(built):
    """Loading checked every option that is not a template; rendered with the pipeline's own params,
    the templated ones must be valid too (a param default of the wrong type fails here, not in a run)."""
    from lakehouse.delivery import build_delivery
    from lakehouse.ingest import build_ingest
    from lakehouse.testing import rendered_options

    checked = 0
    for pipeline, _ in built:
        for source in pipeline.ingest:
            build_ingest(pipeline, source, rendered_options(pipeline, source.options))
            checked += 1
        for delivery in pipeline.deliver:
            build_delivery(pipeline, delivery, rendered_options(pipeline, delivery.options))
            checked += 1
    assert checked >= 14  # 3 liquidity + 1 orders_cdc + 1 tweets + 3 deliveries + 8 energy tables


def test_ingest_tasks_are_parallel_and_feed_every_dbt_root(built):
    for pipeline, dag in built:
        ingest_ids = {f"ingest_{source.name}" for source in pipeline.ingest}
        assert ingest_ids <= set(dag.task_ids)
        for task_id in ingest_ids:
            assert dag.get_task(task_id).upstream_task_ids == set(), f"{task_id} must start the DAG"
        dbt_ids = {t for t in dag.task_ids if t.startswith("dbt.")}
        roots = [t for t in dbt_ids if not dag.get_task(t).upstream_task_ids & dbt_ids]
        assert roots
        for root in roots:
            assert dag.get_task(root).upstream_task_ids == ingest_ids, root


def test_dbt_group_has_a_task_per_model_and_test_tasks(built):
    from cosmos.operators.local import DbtRunLocalOperator, DbtTestLocalOperator

    for pipeline, dag in built:
        assert "dbt" in dag.task_group_dict
        group_ids = {t.task_id for t in dag.task_group_dict["dbt"]}
        for model in _model_names(pipeline):
            assert {f"dbt.{model}.run", f"dbt.{model}_run"} & group_ids, f"no task for model {model}"
        runs = [t for t in dag.tasks if isinstance(t, DbtRunLocalOperator)]
        tests = [t for t in dag.tasks if isinstance(t, DbtTestLocalOperator)]
        assert runs and tests
        for task in runs + tests:
            # Rendered per task at run time, so every task of a run sees that run's interval.
            assert task.vars["data_interval_start"] == "{{ data_interval_start | ds }}"
            assert task.vars["data_interval_end"] == "{{ data_interval_end | ds }}"
            assert {k: task.vars[k] for k in pipeline.dbt_vars} == pipeline.dbt_vars
            # Every dbt task names the branch it builds on: never one a WAP pipeline's task left in os.environ
            # of the process (Cosmos keeps a task's env there; test_tweets: ..._after_a_wap_pipeline_...).
            branch = "wap_{{ run_id }}" if pipeline.wap else "main"
            assert task.env == {"LAKEHOUSE_WRITE_BRANCH": branch}, task.task_id
        for task in runs:
            assert task.full_refresh == "{{ dag_run.conf.get('full_refresh', False) }}"
        for task in runs:
            (asset,) = task.outlets  # the Iceberg table the model commits: iceberg://<catalog>/<layer>/<model>
            assert asset.uri.startswith("iceberg://lakehouse/") and asset.uri.rsplit("/", 1)[1] in task.task_id


def test_quality_after_dbt_even_on_failure_then_maintenance_last(built):
    for _, dag in built:
        dbt_ids = {t for t in dag.task_ids if t.startswith("dbt.")}
        dbt_leaves = {t for t in dbt_ids if not dag.get_task(t).downstream_task_ids & dbt_ids}
        publish = dag.get_task("publish_data_quality")
        maintain = dag.get_task("maintain_tables")
        # Deliveries run after every dbt task (write-audit-publish: after the release of the run's
        # branch, which itself waits for every dbt task) and before quality is published.
        deliver_ids = {t for t in dag.task_ids if t.startswith("deliver_")}
        released = {"publish"} if "publish" in dag.task_ids else set()
        if released:
            assert dag.get_task("publish").upstream_task_ids == dbt_leaves
            assert dag.get_task("publish").trigger_rule == "all_success"
        for task_id in deliver_ids:
            assert dag.get_task(task_id).upstream_task_ids == (released or dbt_leaves)
        assert publish.upstream_task_ids == dbt_leaves | deliver_ids | released
        assert publish.trigger_rule == "all_done"
        # Directly after dbt too: a failed dbt task fails the run through maintain_tables (and the leaf after it).
        assert maintain.upstream_task_ids == dbt_leaves | {"publish_data_quality"} | released
        assert maintain.trigger_rule == "all_success"
        # Last, once the tables are maintained: what the BI tool reads is copied and its dashboards provisioned.
        assert [t.task_id for t in dag.tasks if not t.downstream_task_ids] == ["refresh_bi"]
        assert dag.get_task("refresh_bi").upstream_task_ids == {"maintain_tables"}


def test_ingest_outlets_and_params(built):
    from lakehouse.dag_factory import table_asset

    for pipeline, dag in built:
        for source in pipeline.ingest:
            task = dag.get_task(f"ingest_{source.name}")
            assert [a.uri for a in task.outlets] == [table_asset(source.table).uri]
            assert task.outlets[0].uri == f"iceberg://lakehouse/{source.table.replace('.', '/')}"
            assert task.op_kwargs["options"] == source.options
            assert task.op_kwargs["batch_date"] == "{{ data_interval_start | ds }}"
        assert {key: dag.params[key] for key in dag.params} == pipeline.params


def test_daily_schedule_has_day_long_data_intervals(built):
    for pipeline, dag in built:
        if pipeline.schedule != "@daily":
            continue
        template = dag.get_template_env().from_string("{{ data_interval_start | ds }}..{{ data_interval_end | ds }}")
        # What the scheduler and dag.test() use: the core form of the DAG's timetable.
        from airflow.serialization.encoders import coerce_to_core_timetable

        timetable = coerce_to_core_timetable(dag.timetable)
        interval = timetable.infer_manual_data_interval(run_after=dt.datetime(2026, 11, 21, tzinfo=dt.UTC))
        assert template.render(data_interval_start=interval.start, data_interval_end=interval.end) == "2026-11-20..2026-11-21"


def test_the_dag_file_loads_in_airflow(built):
    env = dict(os.environ)  # the module's home: its manifest is parsed already
    code = textwrap.dedent(f"""
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(DAG_FILE)!r})
        print(json.dumps({{"dags": sorted(bag.dags), "errors": bag.import_errors}}))
    """)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {"dags": sorted(p.dag_id for p, _ in built), "errors": {}}


# --- ingest ---------------------------------------------------------------------------------------


def _fake_rows(batch_date: dt.date, seed: int = 0, scale: float = 1.0) -> pa.Table:
    # Options arrive rendered by Airflow as strings; run_ingest gives numbers back their type.
    assert isinstance(seed, int) and isinstance(scale, float)
    rows = int(4 * scale)
    return pa.table({"account": [f"A{seed}-{i}" for i in range(rows)], "amount": [batch_date.day * 10 + i for i in range(rows)]})


@pytest.fixture
def fake_pipeline(lakehouse_home, tmp_path, monkeypatch):
    folder = tmp_path / "pipelines" / "fake"
    (folder / "dbt").mkdir(parents=True)
    (folder / "dbt" / "dbt_project.yml").write_text("name: fake\nprofile: lakehouse\n")
    (folder / "pipeline.yml").write_text(
        textwrap.dedent("""
            name: fake
            ingest:
              - name: accounts
                table: raw.fake_accounts
                kind: generator
                options: {callable: "fake_source:rows", seed: "{{ params.seed }}", scale: 1.0}
        """)
    )
    monkeypatch.setenv("LAKEHOUSE_PIPELINES_DIR", str(folder.parent))
    monkeypatch.setitem(sys.modules, "fake_source", types.SimpleNamespace(rows=_fake_rows))
    return folder


def _by_date(table) -> dict[str, list]:
    data = table.scan().to_arrow().sort_by([("_batch_date", "ascending"), ("_source_row", "ascending")])
    out: dict[str, list] = {}
    for row in data.to_pylist():
        out.setdefault(row["_batch_date"].isoformat(), []).append((row["_source_row"], row["account"], row["amount"]))
    return out


def test_ingest_rerun_of_a_date_replaces_it(fake_pipeline):
    from lakehouse.catalog import load_table
    from lakehouse.ingest import run_ingest

    first = run_ingest("fake", "accounts", "2026-11-20", {"callable": "fake_source:rows", "seed": "7", "scale": "1.0"}, "run-1")
    assert first["table"] == "raw.fake_accounts" and first["rows"] == 4
    once = _by_date(load_table("raw.fake_accounts"))
    second = run_ingest(
        "fake", "accounts", dt.date(2026, 11, 20), {"callable": "fake_source:rows", "seed": "7", "scale": "1.0"}, "run-2"
    )
    table = load_table("raw.fake_accounts")
    assert _by_date(table) == once == {"2026-11-20": [(i + 1, f"A7-{i}", 200 + i) for i in range(4)]}
    assert second["snapshot_id"] == table.current_snapshot().snapshot_id != first["snapshot_id"]
    summary = table.current_snapshot().summary
    assert summary["lakehouse.run_id"] == "run-2" and summary["lakehouse.batch_date"] == "2026-11-20"
    assert summary["lakehouse.pipeline"] == "fake" and summary["lakehouse.ingest"] == "accounts"
    schema = table.schema()
    assert str(schema.find_type("_batch_date")) == "date"
    assert str(schema.find_type("_source_row")) == "long"
    assert str(schema.find_type("_ingested_at")) == "timestamptz"


def test_ingest_keeps_other_dates_one_partition_each(fake_pipeline):
    from lakehouse.catalog import load_table
    from lakehouse.ingest import run_ingest

    options = {"callable": "fake_source:rows", "seed": "1", "scale": "0.5"}
    run_ingest("fake", "accounts", "2026-11-19", options)
    run_ingest("fake", "accounts", "2026-11-20", options)
    run_ingest("fake", "accounts", "2026-11-19", {**options, "scale": "1.0"})  # a rerun with more rows
    table = load_table("raw.fake_accounts")
    rows = _by_date(table)
    assert {day: len(values) for day, values in rows.items()} == {"2026-11-19": 4, "2026-11-20": 2}
    partitions = table.inspect.partitions().to_pylist()
    assert sorted((p["partition"]["_batch_date"].isoformat(), p["record_count"]) for p in partitions) == [
        ("2026-11-19", 4),
        ("2026-11-20", 2),
    ]
    for day, values in rows.items():
        assert [r[0] for r in values] == list(range(1, len(values) + 1)), day


def test_ingest_refuses_an_unknown_source(fake_pipeline):
    from lakehouse.ingest import IngestError, run_ingest

    with pytest.raises(IngestError, match="no ingest source 'nope'"):
        run_ingest("fake", "nope", "2026-11-20", {})


# --- loading -------------------------------------------------------------------------------------
# (A whole run through Airflow: tests/test_adding_a_pipeline.py with the API, tests/test_liquidity_e2e.py with the CLI.)


def test_a_broken_pipeline_folder_leaves_the_other_dags_standing(fake_pipeline, lakehouse_home, monkeypatch, lakehouse_logs):
    monkeypatch.setenv("AIRFLOW_HOME", str(lakehouse_home / "airflow"))
    from lakehouse.dag_factory import build_all_dags

    (fake_pipeline / "dbt" / "models").mkdir()
    (fake_pipeline / "dbt" / "models" / "fake_model.sql").write_text("{{ config(schema='staging') }} select 1 as one")
    broken = fake_pipeline.parent / "broken"
    broken.mkdir()
    (broken / "pipeline.yml").write_text("name: broken\ningest: []\n")
    dags = build_all_dags()
    assert list(dags) == ["fake"]
    [record] = [r for r in lakehouse_logs if r.name == "lakehouse.dag_factory"]
    assert "pipelines/broken could not be turned into a DAG" in record.getMessage()
    assert "no dbt project" in str(record.exc_info[1])
