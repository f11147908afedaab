"""Write-audit-publish (lakehouse.release) through real dbt builds on real Iceberg tables.

A small pipeline `wapdemo` (raw.orders -> staging -> two marts, with tests) declares `publish: wap`.
Each run builds with LAKEHOUSE_WRITE_BRANCH=wap_<run id> as the DAG sets it on its dbt tasks; main's
checksums (snapshot id and a digest of the sorted rows of every built table) prove what readers saw.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap

import pyarrow as pa
import pytest
from click.testing import CliRunner

from lakehouse import compute, release, writes
from lakehouse.catalog import _catalog_for, get_catalog, load_table
from lakehouse.cli import main
from lakehouse.maintenance import maintain_table
from lakehouse.pipeline import InvalidPipeline, load_pipeline
from lakehouse.settings import REPO_ROOT, load_settings
from lakehouse.testing import dbt as run_dbt

MARTS = ["marts.mart_customer_totals", "marts.mart_orders"]
TABLES = [*MARTS, "staging.stg_orders"]

FILES = {
    "pipeline.yml": """
        name: wapdemo
        schedule: null
        publish: wap
        dbt: {project_dir: dbt}
    """,
    "dbt/dbt_project.yml": """
        name: wapdemo
        version: "1.0.0"
        config-version: 2
        profile: lakehouse
        models:
          wapdemo:
            +materialized: table
            staging: {+schema: staging}
            marts: {+schema: marts}
    """,
    "dbt/models/staging/__sources.yml": """
        version: 2
        sources:
          - name: raw
            schema: raw
            tables: [{name: orders}]
    """,
    "dbt/models/staging/stg_orders.sql": """
        select order_id, customer, cast(amount as double) as amount from {{ source('raw', 'orders') }}
    """,
    "dbt/models/marts/mart_orders.sql": "select * from {{ ref('stg_orders') }}",
    "dbt/models/marts/mart_customer_totals.sql": """
        select customer, sum(amount) as total, count(*) as orders from {{ ref('stg_orders') }} group by customer
    """,
    "dbt/models/marts/marts.yml": """
        version: 2
        models:
          - name: mart_orders
            columns: [{name: order_id, data_tests: [not_null, unique]}]
    """,
    # An audit the bad batch fails: it must read the run's branch (main never holds the bad row).
    "dbt/tests/no_negative_totals.sql": "select * from {{ ref('mart_customer_totals') }} where total < 0",
}


def land(orders: list[tuple[int, str, float]]) -> None:
    """What ingest does: raw is written on main, never on a WAP branch."""
    writes.write("raw.orders", pa.table({"order_id": [o[0] for o in orders], "customer": [o[1] for o in orders],
                                         "amount": [o[2] for o in orders]}))


def build(project, run_id: str, monkeypatch) -> set[str]:
    """dbt build on the run's branch; the ids of the nodes that did not pass."""
    with monkeypatch.context() as patch:
        patch.setenv("LAKEHOUSE_WRITE_BRANCH", f"wap_{run_id}")  # as the DAG's `env` does (dag_factory.WRITE_BRANCH_ENV)
        result = run_dbt(project, "build")
    assert result.result is not None, result.exception
    return {r.node.unique_id for r in result.result if str(r.status) not in ("success", "pass")}


def checksums() -> dict[str, tuple[int | None, str]]:
    """Each built table's main as a reader sees it: its snapshot id and a digest of its sorted rows."""
    seen = {}
    for name in TABLES:
        table = load_table(name)
        rows = sorted(json.dumps(row, sort_keys=True, default=str) for row in table.scan().to_arrow().to_pylist())
        seen[name] = (table.metadata.current_snapshot_id, hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16])
    return seen


def files_at(table, snapshot_id: int) -> set[str]:
    return {task.file.file_path for task in table.scan(snapshot_id=snapshot_id).plan_files()}


@pytest.fixture(scope="module")
def wapdemo(tmp_path_factory):
    root = tmp_path_factory.mktemp("wap")
    patch = pytest.MonkeyPatch()
    patch.setenv("LAKEHOUSE_HOME", str(root / "home"))
    patch.setenv("LAKEHOUSE_PIPELINES_DIR", str(root / "pipelines"))
    for name in ("LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_DEFER_CATALOG_URI", "LAKEHOUSE_WRITE_BRANCH"):
        patch.delenv(name, raising=False)
    _catalog_for.cache_clear()
    folder = root / "pipelines" / "wapdemo"
    for path, text in FILES.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(textwrap.dedent(text).strip() + "\n")
    (folder / "dbt" / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT / 'dbt' / 'lakehouse_dbt'}\n")
    (folder / "dbt" / "macros").mkdir()
    shutil.copy(REPO_ROOT / "dbt" / "lakehouse_dbt" / "project_macros" / "lakehouse_platform.sql", folder / "dbt" / "macros")
    project = folder / "dbt"
    assert run_dbt(project, "deps").success
    yield project
    patch.undo()
    _catalog_for.cache_clear()


@pytest.fixture(scope="module")
def two_published(wapdemo):
    """Run r1 built and published, then run r2 built on its branch (not yet published)."""
    monkeypatch = pytest.MonkeyPatch()
    land([(1, "ann", 10.0), (2, "bob", 5.0)])
    assert build(wapdemo, "r1", monkeypatch) == set()
    # The project's parsed manifest, where the DAG factory keeps it (what `lakehouse rollback` reads).
    manifest_dir = load_settings().manifest_dir("wapdemo")
    manifest_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(wapdemo / "target" / "manifest.json", manifest_dir / "manifest.json")
    assert release.pipeline_release_tables("wapdemo") == TABLES
    # Before r1's publish its tables are new: on main they exist, empty.
    assert {load_table(name).scan().to_arrow().num_rows for name in TABLES} == {0}
    first = release.publish(TABLES, "r1")
    assert first.atomic
    after_r1 = checksums()
    land([(1, "ann", 10.0), (2, "bob", 5.0), (3, "bob", 2.5), (4, "cat", 1.0)])
    assert build(wapdemo, "r2", monkeypatch) == set()
    return after_r1


def test_a_run_on_its_branch_leaves_main_as_it_was_until_publish(two_published):
    after_r1 = two_published
    assert checksums() == after_r1  # r2 is built and tested, readers still see r1
    con = compute.connect()  # a reader outside the run: main
    assert con.sql("select sum(orders) from marts.mart_customer_totals").fetchone() == (2,)
    heads = {}
    for name in TABLES:
        table = load_table(name)
        heads[name] = (table.metadata.refs["wap_r2"].snapshot_id, files_at(table, table.metadata.refs["wap_r2"].snapshot_id))

    report = release.publish(TABLES, "r2")

    assert report.atomic and {m.table for m in report.moved} == set(TABLES)
    for name in TABLES:
        table = load_table(name)
        head, files = heads[name]
        assert table.metadata.current_snapshot_id == head  # main is the branch head: a pointer move
        assert files_at(table, head) == files  # no data file rewritten
        assert table.metadata.refs["published-r2"].snapshot_id == head
        assert "wap_r2" not in table.metadata.refs  # the branch is gone, the tags of both sets stay
        assert "published-r1" in table.metadata.refs
    assert compute.connect().sql("select sum(orders) from marts.mart_customer_totals").fetchone() == (4,)
    assert checksums() != after_r1


def test_a_failing_test_never_publishes_and_main_is_unchanged(two_published, wapdemo, tmp_path):
    release.publish(TABLES, "r2")  # a no-op when the test above published it already
    before = checksums()
    land([(1, "ann", 10.0), (5, "dan", -50.0)])  # bad data: dan's total is negative
    # The audit fails on the branch: the run's results, not main's, were tested.
    assert build(wapdemo, "r3", pytest.MonkeyPatch()) == {"test.wapdemo.no_negative_totals"}
    # The DAG's publish task (trigger rule all_success) does not run: readers see r2 exactly.
    assert checksums() == before
    table = load_table("marts.mart_customer_totals")
    bad = table.scan(snapshot_id=table.metadata.refs["wap_r3"].snapshot_id).to_arrow()
    assert min(bad.column("total").to_pylist()) == -50.0  # what the audit saw: the branch, left for inspection
    # Maintenance removes the branch of an unpublished run once past the retention; tags and rollback survive expiry.
    land([(1, "ann", 10.0), (2, "bob", 5.0)])
    report = maintain_table("marts.mart_customer_totals", retention_hours=0, min_snapshots_to_keep=1,
                            target_file_size_mb=128)
    assert any("wap_r3" in note for note in report.notes)
    table = load_table("marts.mart_customer_totals")
    assert "wap_r3" not in table.metadata.refs and {"published-r1", "published-r2"} <= set(table.metadata.refs)
    assert table.snapshot_by_id(table.metadata.refs["published-r1"].snapshot_id) is not None


def test_rollback_to_the_first_run_gives_its_checksums_in_one_transaction(two_published, monkeypatch):
    after_r1 = two_published
    release.publish(TABLES, "r2")
    after_r2 = checksums()
    assert after_r2 != after_r1
    catalog = get_catalog()

    # A writer moves one mart while the rollback is staged: the whole rollback fails, nothing moved.
    staged = []
    real_write = catalog._write_metadata

    def write_then_race(metadata, io, metadata_path):
        real_write(metadata, io, metadata_path)
        staged.append(metadata_path)
        if len(staged) == 2:  # the second table's new metadata is written, no pointer swapped yet
            writes.write("marts.mart_orders", pa.table({"order_id": [99], "customer": ["eve"], "amount": [1.0]}), "append")

    monkeypatch.setattr(catalog, "_write_metadata", write_then_race)
    with pytest.raises(release.ReleaseConflict, match="no table was changed"):
        release.rollback(TABLES, "r1")
    monkeypatch.undo()
    raced = checksums()
    assert {name: raced[name] for name in TABLES if name != "marts.mart_orders"} == \
        {name: after_r2[name] for name in TABLES if name != "marts.mart_orders"}

    result = CliRunner().invoke(main, ["rollback", "wapdemo", "--to", "r1"])
    assert result.exit_code == 0, result.output
    assert "rolled back to r1" in result.output
    assert checksums() == after_r1

    result = CliRunner().invoke(main, ["rollback", "wapdemo", "--to", "nope"])
    assert result.exit_code == 1 and "run 'nope' has no published set" in result.output
    assert release.current_set(TABLES).run_id == "r1"
    with pytest.raises(release.ReleaseError, match="first published set"):
        release.rollback(TABLES)  # default: the set before the current one, and r1 has none

    # The newest set (r2) is kept with keep=1, and the current one (r1, rolled back to) always.
    assert release.prune_published(TABLES, keep=1) == []
    # keep=0: only the current set stays; r2 loses its tags on every table.
    assert {s.run_id for s in release.published_sets(TABLES)} == {"r1", "r2"}
    assert release.prune_published(TABLES, keep=0, dry_run=True) == ["r2"]
    assert {s.run_id for s in release.published_sets(TABLES)} == {"r1", "r2"}  # a dry run changes nothing
    assert release.prune_published(TABLES, keep=0) == ["r2"]
    assert [s.run_id for s in release.published_sets(TABLES)] == ["r1"]
    assert all("published-r2" not in get_catalog().load_table(name).metadata.refs for name in TABLES)
    assert checksums() == after_r1  # untagging moves nothing


def test_the_dag_of_a_wap_pipeline_publishes_after_every_dbt_task(wapdemo, tmp_path, monkeypatch):
    from lakehouse.dag_factory import DBT_GROUP_ID, PUBLISH_TASK_ID, RELEASE_TASK_ID, build_dag

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    pipeline = load_pipeline(wapdemo.parent)
    assert pipeline.wap
    dag = build_dag(pipeline)
    publish = dag.get_task(RELEASE_TASK_ID)
    dbt_tasks = [t for t in dag.tasks if t.task_id.startswith(f"{DBT_GROUP_ID}.")]
    assert dbt_tasks and all(t.env == {"LAKEHOUSE_WRITE_BRANCH": "wap_{{ run_id }}"} for t in dbt_tasks)
    assert publish.trigger_rule == "all_success"
    assert {t.task_id for t in dbt_tasks if not t.downstream_task_ids & {t.task_id for t in dbt_tasks}} <= \
        publish.upstream_task_ids
    assert PUBLISH_TASK_ID in publish.downstream_task_ids
    assert dag.get_task(PUBLISH_TASK_ID).op_kwargs["keep_state"] is False  # slim CI's state is kept by publish

    declaration = wapdemo.parent / "pipeline.yml"
    original = declaration.read_text()
    declaration.write_text(original.replace("publish: wap", "publish: yolo"))
    try:
        with pytest.raises(InvalidPipeline, match="publish: 'yolo' is not supported; choose one of direct, wap"):
            load_pipeline(wapdemo.parent)
    finally:
        declaration.write_text(original)
    assert release.branch_for_run("manual__2026-11-18T00:00:00+00:00") == "wap_manual__2026-11-18T00_00_00_00_00"
    monkeypatch.setenv("LAKEHOUSE_WRITE_BRANCH", "wap_manual__2026-11-18T00:00:00+00:00")
    assert load_settings().write_branch == release.branch_for_run("manual__2026-11-18T00:00:00+00:00")
