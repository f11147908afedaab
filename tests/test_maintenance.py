"""Compaction, snapshot expiry and orphan removal: fewer files, the same rows, time travel intact where it is kept."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import time
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pytest
from click.testing import CliRunner
from pyarrow import fs

from lakehouse import cli, maintenance, writes
from lakehouse.catalog import load_table
from lakehouse.settings import load_settings

TABLE = "raw.events"


def batch(i: int) -> pa.Table:
    """Append i: 10 rows into one of two partitions, with a duplicate row so the multiset matters."""
    ids = list(range(i * 10, i * 10 + 9)) + [i * 10]
    return pa.table(
        {
            "id": ids,
            "region": ["eu" if i % 2 else "us"] * 10,
            "amount": [float(x) / 3 for x in ids],
            "ts": pa.array([dt.datetime(2026, 11, 1 + i % 2, i % 24, tzinfo=dt.UTC)] * 10, pa.timestamp("us", tz="UTC")),
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
    # Margins wide enough that the cutoff (now - retention, taken inside maintain after compaction,
    # which a busy machine slows down) stays between the halves.
    time.sleep(2)
    between = dt.datetime.now(dt.UTC)
    time.sleep(2)
    for i in range(10, 20):
        writes.write(TABLE, batch(i), "append", partition_by=["region"])
    return between


def hours_since(moment: dt.datetime) -> float:
    return (dt.datetime.now(dt.UTC) - moment).total_seconds() / 3600


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

    report = maintain(
        retention_hours=0, min_snapshots_to_keep=3, target_file_size_mb=0.000001
    )  # every file is big: no compaction

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
    for _i in range(4):
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
    (folder / "dbt").mkdir(parents=True)
    (folder / "dbt" / "dbt_project.yml").write_text("name: demo\n")
    (folder / "generator.py").write_text("def rows(day):\n    raise NotImplementedError\n")
    (folder / "pipeline.yml").write_text(
        "name: demo\ningest:\n  - {name: events, table: raw.events, kind: generator, options: {callable: 'generator.py:rows'}}\n"
        "maintenance: {snapshot_retention_hours: 0, min_snapshots_to_keep: 1, target_file_size_mb: 64, orphan_grace_hours: 0}\n"
    )
    nodes = {
        "model.demo.mart_events": {
            "resource_type": "model",
            "schema": "marts",
            "alias": "mart_events",
            "name": "mart_events",
            "config": {"materialized": "table"},
        },
        "model.demo.v_events": {
            "resource_type": "model",
            "schema": "marts",
            "alias": "v_events",
            "name": "v_events",
            "config": {"materialized": "view"},
        },
        "test.demo.not_null": {"resource_type": "test", "schema": "marts", "alias": "not_null", "name": "not_null", "config": {}},
    }
    manifest = load_settings().manifest_dir("demo") / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"nodes": nodes}))
    monkeypatch.setenv("LAKEHOUSE_PIPELINES_DIR", str(tmp_path / "pipelines"))
    for i in range(3):
        writes.write("raw.events", batch(i), "append", partition_by=["region"])
        writes.write("marts.mart_events", batch(i), "append")

    reports = {r.table: r for r in maintenance.maintain_pipeline("demo")}

    assert set(reports) == {"raw.events", "marts.mart_events"}
    assert (reports["raw.events"].files_after, reports["raw.events"].snapshots_after) == (2, 1)
    assert (reports["marts.mart_events"].files_after, reports["marts.mart_events"].snapshots_after) == (1, 1)
    # The pipeline's grace of 0: the replaced small files, expired manifest lists and all go at once.
    assert reports["raw.events"].orphans_removed == reports["raw.events"].orphans_found > 3


# --- orphan files -------------------------------------------------------------------------------

TINY_MB = 0.000001  # every file is bigger: no compaction


def checksum(table, snapshot_id=None) -> str:
    """SHA-256 of the sorted rows (a multiset fingerprint), independent of any maintenance code."""
    return hashlib.sha256(repr(rows_of(table, snapshot_id)).encode()).hexdigest()


def table_dir(full_name: str) -> Path:
    return Path(urlparse(load_table(full_name).metadata.location).path)


def files_on_disk(full_name: str) -> dict[Path, int]:
    """Every file under the table's data/ and metadata/, with its size, by walking the disk."""
    found = {}
    for folder in ("data", "metadata"):
        for root, _, names in os.walk(table_dir(full_name) / folder):
            found.update({Path(root) / name: (Path(root) / name).stat().st_size for name in names})
    return found


def backdate(paths, hours: float) -> None:
    moment = time.time() - hours * 3600
    for path in paths:
        os.utime(path, (moment, moment))


def plant(path: Path, text: str = "not referenced by anything") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_an_in_flight_write_keeps_its_files_and_commits_after_the_cleanup(lakehouse_home):
    for i in range(6):
        writes.write(TABLE, batch(i), "append", partition_by=["region"])
    old_stray = plant(table_dir(TABLE) / "data" / "region=eu" / "00000-0-crashed-write.parquet")
    backdate(files_on_disk(TABLE), hours=3)  # everything so far was written three hours ago
    committed = files_on_disk(TABLE)
    expected = sorted(rows_of(load_table(TABLE)) + [tuple(r.values()) for r in batch(6).to_pylist()])

    # A write in flight: its data file, manifest and manifest list are written, the commit is not.
    pending = load_table(TABLE).transaction()
    pending.append(batch(6))
    in_flight = set(files_on_disk(TABLE)) - set(committed)
    assert {p.suffix for p in in_flight} == {".parquet", ".avro"}

    report = maintain(retention_hours=0, min_snapshots_to_keep=1, target_file_size_mb=TINY_MB, orphan_grace_hours=1)

    assert report.expired_snapshots == 5
    assert not old_stray.exists()
    assert all(path.exists() for path in in_flight)
    # Found: the stray, the expired snapshots' manifest lists and the in-flight files; removed: the old ones.
    assert (report.orphans_found, report.orphans_removed) == (1 + 5 + len(in_flight), 1 + 5)
    pending.commit_transaction()
    assert rows_of(load_table(TABLE)) == expected
    assert len(expected) == 70


def test_the_grace_period_decides_whether_an_unreferenced_file_goes(lakehouse_home):
    for i in range(2):
        writes.write(TABLE, batch(i), "append", partition_by=["region"])
    strays = [
        plant(table_dir(TABLE) / "data" / "region=us" / "00000-0-failed.parquet"),
        plant(table_dir(TABLE) / "metadata" / "00099-failed.metadata.json", "{}"),
    ]
    referenced = files_on_disk(TABLE).keys() - set(strays)

    young = maintain(target_file_size_mb=TINY_MB, orphan_grace_hours=1)
    assert (young.orphans_found, young.orphans_removed) == (2, 0) and all(p.exists() for p in strays)

    backdate(strays, hours=2)
    old = maintain(target_file_size_mb=TINY_MB, orphan_grace_hours=1)
    assert (old.orphans_found, old.orphans_removed) == (2, 2) and not any(p.exists() for p in strays)
    assert old.orphan_bytes_removed == len("not referenced by anything") + len("{}")

    fresh = plant(table_dir(TABLE) / "data" / "00000-0-just-now.parquet")
    none = maintain(target_file_size_mb=TINY_MB, orphan_grace_hours=0)
    assert none.orphans_removed == 1 and not fresh.exists()
    assert referenced <= files_on_disk(TABLE).keys()  # nothing referenced went
    assert len(rows_of(load_table(TABLE))) == 20


def test_every_retained_snapshot_reads_the_same_after_expiry_and_orphan_removal(events):
    table = load_table(TABLE)
    first = table.snapshots()
    table.manage_snapshots().create_tag(first[3].snapshot_id, "month_end").create_branch(first[5].snapshot_id, "audit").commit()
    load_table(TABLE).append(batch(30), branch="audit")  # a file only the branch has
    table = load_table(TABLE)
    before = {s.snapshot_id: checksum(table, s.snapshot_id) for s in table.snapshots()}
    files_before = files_on_disk(TABLE)

    report = maintain(retention_hours=hours_since(events), orphan_grace_hours=0)

    table = load_table(TABLE)
    retained = {s.snapshot_id for s in table.snapshots()}
    assert {table.refs()["month_end"].snapshot_id, table.refs()["audit"].snapshot_id} <= retained
    assert len(retained & before.keys()) == 1 + 1 + 10  # the tag, the branch head and the young half
    for snapshot_id in retained:
        expected = before.get(snapshot_id, before[first[-1].snapshot_id])  # the compaction has main's rows
        assert checksum(table, snapshot_id) == expected
    gone = files_before.keys() - files_on_disk(TABLE).keys()
    assert report.orphans_removed == len(gone) > 0
    assert report.orphan_bytes_removed == sum(files_before[p] for p in gone)


def test_expiry_with_no_retention_keeps_main_branch_and_tag_heads(events):
    table = load_table(TABLE)
    tagged, branched = table.snapshots()[2].snapshot_id, table.snapshots()[7].snapshot_id
    table.manage_snapshots().create_tag(tagged, "quarter_end").create_branch(branched, "audit").commit()
    sums = {name: checksum(load_table(TABLE), snapshot_id) for name, snapshot_id in
            {"quarter_end": tagged, "audit": branched, "main": load_table(TABLE).current_snapshot().snapshot_id}.items()}

    maintain(retention_hours=0, min_snapshots_to_keep=0, orphan_grace_hours=0)

    table = load_table(TABLE)
    heads = {name: ref.snapshot_id for name, ref in table.refs().items()}
    assert {s.snapshot_id for s in table.snapshots()} == set(heads.values())
    assert (heads["quarter_end"], heads["audit"]) == (tagged, branched)
    assert table.current_snapshot().summary["lakehouse.operation"] == "compaction"
    assert {name: checksum(table, heads[name]) for name in sums} == sums


def test_many_small_commits_end_as_few_files_with_identical_contents(lakehouse_home):
    for i in range(40):
        writes.write(TABLE, batch(i), "append", partition_by=["region"])
    expected = checksum(load_table(TABLE))
    files_before = files_on_disk(TABLE)

    report = maintain(retention_hours=0, orphan_grace_hours=0)

    files_after = files_on_disk(TABLE)
    assert checksum(load_table(TABLE)) == expected
    assert len([p for p in files_after if p.suffix == ".parquet"]) == live_file_count(TABLE) == 2
    assert len(files_after) < len(files_before) / 2
    assert (report.stored_files_before, report.stored_files_after) == (len(files_before), len(files_after))
    assert (report.stored_bytes_before, report.stored_bytes_after) == (sum(files_before.values()), sum(files_after.values()))


def test_dry_run_predicts_the_orphans_and_removes_nothing(events):
    # A short metadata log: the compaction and expiry commits push old metadata files off it.
    with load_table(TABLE).transaction() as tx:
        tx.set_properties({"write.metadata.previous-versions-max": "5"})
    files_before = files_on_disk(TABLE)

    predicted = maintain(retention_hours=hours_since(events), orphan_grace_hours=0, dry_run=True)
    assert files_on_disk(TABLE) == files_before
    actual = maintain(retention_hours=hours_since(events), orphan_grace_hours=0)

    assert predicted.orphans_removed > 0
    assert (predicted.orphans_found, predicted.orphans_removed, predicted.orphan_bytes_removed) == (
        actual.orphans_found, actual.orphans_removed, actual.orphan_bytes_removed)
    assert len([p for p in files_on_disk(TABLE) if p.name.endswith(".metadata.json")]) == 5 + 1


def test_a_custom_data_path_is_left_alone(lakehouse_home, tmp_path):
    writes.write(TABLE, batch(0), "append")
    with load_table(TABLE).transaction() as tx:
        tx.set_properties({"write.data.path": (tmp_path / "shared").as_uri()})
    stray = plant(table_dir(TABLE) / "data" / "00000-0-failed.parquet")

    report = maintain(orphan_grace_hours=0)

    assert stray.exists() and report.orphans_removed == 0
    assert any("write.data.path" in note for note in report.notes)


def test_cli_maintain_prints_the_files_on_storage(events, monkeypatch, tmp_path):
    monkeypatch.setenv("LAKEHOUSE_PIPELINES_DIR", str(tmp_path))  # no pipeline: default settings (168 h retention)
    for name in ("00000-0-failed.parquet", "00000-1-failed.parquet"):
        plant(table_dir(TABLE) / "data" / name)
    stored_before, data_before = len(files_on_disk(TABLE)), live_file_count(TABLE)
    snapshots_before = len(load_table(TABLE).snapshots())

    def row(*args) -> str:
        result = CliRunner().invoke(cli.main, ["maintain", TABLE, *args], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        [line] = [line for line in result.stdout.splitlines() if TABLE in line]
        return line

    dry = row("--dry-run", "--orphan-grace-hours", "0")
    assert re.findall(r"(\d+) -> (\d+)", dry)[0] == (str(data_before), "2")
    assert len(files_on_disk(TABLE)) == stored_before

    files_before = files_on_disk(TABLE)
    line = row("--orphan-grace-hours", "0")
    files_after = files_on_disk(TABLE)
    data_files, stored, snapshots = re.findall(r"(\d+) -> (\d+)", line)
    assert data_files == (str(data_before), str(live_file_count(TABLE)))
    assert stored == (str(stored_before), str(len(files_after)))
    assert snapshots == (str(snapshots_before), str(len(load_table(TABLE).snapshots())))
    removed = len(files_before.keys() - files_after.keys())
    assert removed == 2 and re.search(r"\b2 \(52 B\)", line)


def test_orphan_removal_on_s3(s3_lakehouse, s3_server):
    for i in range(3):
        writes.write(TABLE, batch(i), "append", partition_by=["region"])
    location = urlparse(load_table(TABLE).metadata.location)
    stray = f"{location.netloc}{location.path}/data/region=us/00000-0-failed.parquet"
    s3 = s3_server.filesystem()
    with s3.open_output_stream(stray) as out:
        out.write(b"not referenced by anything")
    expected = checksum(load_table(TABLE))

    young = maintain(retention_hours=0, target_file_size_mb=TINY_MB, orphan_grace_hours=1)
    assert (young.expired_snapshots, young.orphans_found, young.orphans_removed) == (2, 1 + 2, 0)  # stray, 2 manifest lists
    assert s3.get_file_info(stray).type == fs.FileType.File

    report = maintain(retention_hours=0, target_file_size_mb=TINY_MB, orphan_grace_hours=0)
    assert (report.orphans_found, report.orphans_removed) == (3, 3)
    assert s3.get_file_info(stray).type == fs.FileType.NotFound
    listed = s3.get_file_info(fs.FileSelector(f"{location.netloc}{location.path}", recursive=True))
    assert report.stored_files_after == len([f for f in listed if f.type == fs.FileType.File])
    assert checksum(load_table(TABLE)) == expected
