"""Compaction and snapshot expiry: fewer files, the same rows, time travel intact where it is kept."""

from __future__ import annotations

import datetime as dt
import json
import time

import pyarrow as pa
import pytest

from lakehouse import maintenance, writes
from lakehouse.catalog import load_table

TABLE = "raw.events"


def batch(i: int) -> pa.Table:
    """Append i: 10 rows into one of two partitions, with a duplicate row so the multiset matters."""
    ids = list(range(i * 10, i * 10 + 9)) + [i * 10]
    return pa.table(
        {
            "id": ids,
            "region": ["eu" if i % 2 else "us"] * 10,
            "amount": [float(x) / 3 for x in ids],
            "ts": pa.array([dt.datetime(2026, 11, 1 + i % 2, i % 24, tzinfo=dt.timezone.utc)] * 10, pa.timestamp("us", tz="UTC")),
        }
    )


def rows_of(table, snapshot_id=None) -> list[tuple]:
    """Every row, sorted: equal lists mean the same multiset of rows."""
    data = table.scan(snapshot_id=snapshot_id).to_arrow()
    return sorted(tuple(row.values()) for row in data.to_pylist())


def live_file_count(full_name: str) -> int:
    return len(list(load_table(full_name).scan().plan_files()))


def maintain(full_name=TABLE, **overrides):
    options = {"retention_hours": 24, "min_snapshots_to_keep": 1, "target_file_size_mb": 128, **overrides}
    return maintenance.maintain_table(full_name, **options)


@pytest.fixture
def events(lakehouse_home):
    """20 small appends into 2 partitions; the first 10 committed well before the last 10.

    Returns the time between the halves, to expire exactly the first half by retention.
    """
    for i in range(10):
        writes.write(TABLE, batch(i), "append", partition_by=["region"])
    time.sleep(0.3)
    between = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.3)
    for i in range(10, 20):
        writes.write(TABLE, batch(i), "append", partition_by=["region"])
    return between


def hours_since(moment: dt.datetime) -> float:
    return (dt.datetime.now(dt.timezone.utc) - moment).total_seconds() / 3600


def test_compaction_leaves_one_file_per_partition_and_the_same_rows(events):
    table = load_table(TABLE)
    before = rows_of(table)
    assert live_file_count(TABLE) == 20

    report = maintain()

    table = load_table(TABLE)
    assert rows_of(table) == before
    assert live_file_count(TABLE) == 2
    assert (report.files_before, report.files_after, report.compacted_partitions, report.rows) == (20, 2, 2, 200)
    assert report.bytes_after < report.bytes_before
    assert table.current_snapshot().summary["lakehouse.operation"] == "compaction"
    # Nothing is left to merge: a second run commits nothing.
    again = maintain()
    assert (again.files_after, again.compacted_partitions) == (2, 0)
    assert len(load_table(TABLE).metadata.snapshots) == report.snapshots_after


def test_expiry_keeps_retained_snapshots_readable_and_drops_the_old_ones(events):
    table = load_table(TABLE)
    original = {s.snapshot_id: rows_of(table, s.snapshot_id) for s in table.snapshots()}
    old = [s.snapshot_id for s in table.snapshots() if s.timestamp_ms < events.timestamp() * 1000]
    current = table.current_snapshot().snapshot_id
    assert len(old) == 10

    report = maintain(retention_hours=hours_since(events))

    table = load_table(TABLE)
    remaining = {s.snapshot_id for s in table.snapshots()}
    assert remaining.isdisjoint(old)
    assert current in remaining  # the pre-compaction head is young: it stays
    assert len(remaining) == report.snapshots_after == 20 - 10 + 1  # + the compaction snapshot
    for snapshot_id in remaining & original.keys():
        assert rows_of(table, snapshot_id) == original[snapshot_id]
    assert rows_of(table) == original[current]


def test_expiry_keeps_the_newest_snapshots_and_tagged_ones(events):
    table = load_table(TABLE)
    tagged = table.snapshots()[2].snapshot_id
    table.manage_snapshots().create_tag(tagged, "month_end").commit()
    tagged_rows = rows_of(table, tagged)
    newest = [s.snapshot_id for s in table.snapshots()[-3:]]

    report = maintain(retention_hours=0, min_snapshots_to_keep=3, target_file_size_mb=0.000001)  # every file is big: no compaction

    table = load_table(TABLE)
    assert report.compacted_partitions == 0
    assert {s.snapshot_id for s in table.snapshots()} == {tagged, *newest, table.current_snapshot().snapshot_id}
    assert newest[-1] == table.current_snapshot().snapshot_id
    assert rows_of(table, tagged) == tagged_rows


def test_dry_run_predicts_and_changes_nothing(events):
    table = load_table(TABLE)
    metadata_location = table.metadata_location

    predicted = maintain(retention_hours=hours_since(events), dry_run=True)

    assert load_table(TABLE).metadata_location == metadata_location
    assert live_file_count(TABLE) == 20
    actual = maintain(retention_hours=hours_since(events))
    assert (predicted.files_after, predicted.snapshots_after, predicted.expired_snapshots, predicted.compacted_partitions) == (
        actual.files_after, actual.snapshots_after, actual.expired_snapshots, actual.compacted_partitions,
    )


def test_compaction_of_a_day_partitioned_table(lakehouse_home):
    for i in range(12):
        writes.write("raw.ticks", batch(i), "append", partition_by=["day(ts)"])
    before = rows_of(load_table("raw.ticks"))

    report = maintain("raw.ticks")

    assert (report.files_before, report.files_after) == (12, 2)
    assert rows_of(load_table("raw.ticks")) == before


def test_only_small_files_are_merged(lakehouse_home):
    for i in range(4):
        writes.write("raw.mixed", batch(0), "append")
    size = min(t.file.file_size_in_bytes for t in load_table("raw.mixed").scan().plan_files())
    # Room for two files per output file: 4 files -> 2.
    report = maintain("raw.mixed", target_file_size_mb=(2 * size + 1) / maintenance.MB)
    assert (report.files_before, report.files_after) == (4, 2)


def test_a_concurrent_commit_makes_compaction_fail_without_losing_rows(events):
    stale = load_table(TABLE)
    plan, _ = maintenance.plan_compaction(stale, 128 * maintenance.MB)
    # Another writer replaces the 'us' partition, deleting files the plan was about to rewrite.
    writes.write(TABLE, pa.table({"id": [-1], "region": ["us"], "amount": [0.0], "ts": batch(0)["ts"][:1]}), "insert_overwrite")
    expected = rows_of(load_table(TABLE))

    with pytest.raises(Exception, match="(?i)data files|changed"):
        maintenance._rewrite(stale, plan)

    assert rows_of(load_table(TABLE)) == expected
    report = maintain()  # planned again against the new state, it succeeds
    assert (report.files_after, rows_of(load_table(TABLE))) == (2, expected)


def test_maintain_plans_again_after_a_concurrent_commit(events, monkeypatch):
    real_rewrite, calls = maintenance._rewrite, []

    def rewrite_racing_an_append(table, plan):
        calls.append(len(plan))
        if len(calls) == 1:  # someone appends between planning and committing
            writes.write(TABLE, batch(21), "append")
        real_rewrite(table, plan)

    monkeypatch.setattr(maintenance, "_rewrite", rewrite_racing_an_append)
    report = maintain()

    assert len(calls) == 2
    assert (report.files_after, report.rows, len(rows_of(load_table(TABLE)))) == (2, 200, 210)


def test_maintain_pipeline_covers_raw_and_dbt_built_tables(lakehouse_home, tmp_path, monkeypatch):
    folder = tmp_path / "pipelines" / "demo"
    (folder / "dbt" / "target").mkdir(parents=True)
    (folder / "dbt" / "dbt_project.yml").write_text("name: demo\n")
    (folder / "pipeline.yml").write_text(
        "name: demo\ningest:\n  - {name: events, table: raw.events, kind: generator}\n"
        "maintenance: {snapshot_retention_hours: 0, min_snapshots_to_keep: 1, target_file_size_mb: 64}\n"
    )
    nodes = {
        "model.demo.mart_events": {"resource_type": "model", "schema": "marts", "alias": "mart_events", "name": "mart_events", "config": {"materialized": "table"}},
        "model.demo.v_events": {"resource_type": "model", "schema": "marts", "alias": "v_events", "name": "v_events", "config": {"materialized": "view"}},
        "test.demo.not_null": {"resource_type": "test", "schema": "marts", "alias": "not_null", "name": "not_null", "config": {}},
    }
    (folder / "dbt" / "target" / "manifest.json").write_text(json.dumps({"nodes": nodes}))
    monkeypatch.setenv("LAKEHOUSE_PIPELINES_DIR", str(tmp_path / "pipelines"))
    for i in range(3):
        writes.write("raw.events", batch(i), "append", partition_by=["region"])
        writes.write("marts.mart_events", batch(i), "append")

    reports = {r.table: r for r in maintenance.maintain_pipeline("demo")}

    assert set(reports) == {"raw.events", "marts.mart_events"}
    assert (reports["raw.events"].files_after, reports["raw.events"].snapshots_after) == (2, 1)
    assert (reports["marts.mart_events"].files_after, reports["marts.mart_events"].snapshots_after) == (1, 1)
