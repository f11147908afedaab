"""Every Iceberg write strategy, read back by a second engine (DuckDB's iceberg_scan)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from lakehouse import compute, writes
from lakehouse.catalog import load_table
from lakehouse.identifiers import InvalidIdentifier
from lakehouse.partitioning import InvalidPartitioning

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def rows(sql: str) -> list[tuple]:
    return compute.connect().sql(sql).fetchall()


def test_overwrite_creates_then_replaces_atomically(lakehouse_home):
    writes.write("marts.t", pa.table({"k": [1, 2], "v": ["a", "b"]}))
    writes.write("marts.t", pa.table({"k": [3], "v": ["c"]}))
    assert rows("select k, v from marts.t") == [(3, "c")]
    table = load_table("marts.t")
    assert len(table.snapshots()) >= 2
    # Time travel: the first snapshot still holds the first rows.
    first = table.scan(snapshot_id=table.snapshots()[0].snapshot_id).to_arrow()
    assert sorted(first.column("k").to_pylist()) == [1, 2]


def test_append_adds_rows(lakehouse_home):
    writes.write("raw.t", pa.table({"k": [1]}))
    writes.write("raw.t", pa.table({"k": [2]}), "append")
    assert rows("select k from raw.t order by k") == [(1,), (2,)]


def test_merge_replaces_matched_keys_and_adds_new_ones(lakehouse_home):
    writes.write("staging.t", pa.table({"k": [1, 2], "v": ["a", "b"]}))
    writes.write("staging.t", pa.table({"k": [2, 3], "v": ["B", "c"]}), "merge", unique_key=["k"])
    assert rows("select k, v from staging.t order by k") == [(1, "a"), (2, "B"), (3, "c")]


def test_merge_of_unchanged_rows_writes_no_snapshot(lakehouse_home):
    writes.write("staging.t", pa.table({"k": [1, 2], "v": ["a", "b"]}))
    before = len(load_table("staging.t").snapshots())
    writes.write("staging.t", pa.table({"k": [1, 2], "v": ["a", "b"]}), "merge", unique_key=["k"])
    assert len(load_table("staging.t").snapshots()) == before


def test_merge_with_duplicate_keys_is_refused_and_changes_nothing(lakehouse_home):
    writes.write("staging.t", pa.table({"k": [1], "v": ["a"]}))
    snapshot = load_table("staging.t").current_snapshot().snapshot_id
    with pytest.raises(writes.WriteError, match=r"duplicate values of unique_key \['k'\]"):
        writes.write("staging.t", pa.table({"k": [1, 1], "v": ["x", "y"]}), "merge", unique_key=["k"])
    assert load_table("staging.t").current_snapshot().snapshot_id == snapshot


def test_merge_adds_new_columns_in_the_same_commit(lakehouse_home):
    writes.write("staging.t", pa.table({"k": [1, 2], "v": ["a", "b"]}))
    versions = len(load_table("staging.t").metadata.metadata_log)
    writes.write("staging.t", pa.table({"k": [2], "v": ["B"], "extra": [2.5]}), "merge", unique_key=["k"])
    assert rows("select k, v, extra from staging.t order by k") == [(1, "a", None), (2, "B", 2.5)]
    table = load_table("staging.t")
    assert [f.name for f in table.schema().fields] == ["k", "v", "extra"]
    # Schema change, delete and append are one commit: exactly one new metadata version.
    assert len(table.metadata.metadata_log) == versions + 1


def test_insert_overwrite_replaces_only_the_partitions_present(lakehouse_home):
    writes.write("marts.t", pa.table({"d": [D1, D1, D2], "v": ["a", "b", "c"]}), partition_by=["d"])
    writes.write("marts.t", pa.table({"d": [D1], "v": ["z"]}), "insert_overwrite")
    assert rows("select d, v from marts.t order by d, v") == [(D1, "z"), (D2, "c")]


def test_insert_overwrite_needs_identity_partitions(lakehouse_home):
    data = pa.table({"ts": [dt.datetime(2026, 11, 1, 5)], "v": [1]})
    writes.write("marts.t", data, partition_by=["day(ts)"])
    with pytest.raises(writes.WriteError, match="identity partitions only"):
        writes.write("marts.t", data, "insert_overwrite")


def test_partition_transforms_from_config(lakehouse_home):
    data = pa.table({"ts": [dt.datetime(2026, 11, 1, 5)], "id": [7]})
    table = writes.write("raw.t", data, partition_by=["day(ts)", "bucket(4, id)"])
    assert [str(f.transform) for f in table.spec().fields] == ["day", "bucket[4]"]


def test_table_rebuild_with_a_new_layout(lakehouse_home):
    writes.write("marts.t", pa.table({"d": [D1], "old": ["x"]}), partition_by=["d"])
    table = writes.write("marts.t", pa.table({"k": [1], "v": ["only"]}), partition_by=["v"])
    assert rows("select * from marts.t") == [(1, "only")]
    assert [f.name for f in table.schema().fields] == ["k", "v"]


def test_bad_partition_expression_and_bad_names_are_refused_before_writing(lakehouse_home):
    with pytest.raises(InvalidPartitioning, match="unsupported partition expression 'weekly\\(d\\)'"):
        writes.write("marts.t", pa.table({"d": [D1]}), partition_by=["weekly(d)"])
    with pytest.raises(InvalidIdentifier, match="invalid column name 'bad name'"):
        writes.write("marts.t", pa.table({"bad name": [1]}))
    with pytest.raises(InvalidIdentifier, match="must be '<namespace>.<table>'"):
        writes.write("t", pa.table({"k": [1]}))
    assert load_table("marts.t") is None


def test_unknown_strategy_is_refused(lakehouse_home):
    with pytest.raises(writes.WriteError, match="unknown write strategy 'upsert'"):
        writes.write("marts.t", pa.table({"k": [1]}), "upsert")


def test_a_filtered_overwrite_never_touches_rows_outside_its_filter(lakehouse_home):
    from pyiceberg.expressions import EqualTo

    writes.write("audit.t", pa.table({"run": ["a", "a"], "n": [1, 2], "note": ["x", "y"]}), partition_by=["run"])
    # Run b arrives with one column fewer and another partitioning: run a must survive intact.
    writes.write(
        "audit.t", pa.table({"run": ["b"], "n": [3]}), "overwrite",
        overwrite_filter=EqualTo("run", "b"), partition_by=["run", "n"],
    )
    assert rows("select run, n, note from audit.t order by n") == [("a", 1, "x"), ("a", 2, "y"), ("b", 3, None)]


def test_delete_insert_replaces_every_row_of_each_key_in_the_batch(lakehouse_home):
    writes.write("marts.h", pa.table({"k": [1, 1, 2], "v": ["a1", "a2", "b1"]}))
    writes.write("marts.h", pa.table({"k": [1, 3], "v": ["A", "c"]}), "delete_insert", unique_key=["k"])
    assert rows("select k, v from marts.h order by k, v") == [(1, "A"), (2, "b1"), (3, "c")]


def test_delete_insert_with_tombstones_deletes_and_reinserts(lakehouse_home):
    writes.write("marts.o", pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}))
    batch = pa.table({"k": [1, 2, 4], "v": ["gone", "B", "d"], "is_deleted": [True, False, None]})
    table = writes.write("marts.o", batch, "delete_insert", unique_key=["k"], tombstone_column="is_deleted")
    assert rows("select k, v from marts.o order by k") == [(2, "B"), (3, "c"), (4, "d")]
    assert "is_deleted" not in [f.name for f in table.schema().fields]


def test_delete_insert_of_an_empty_batch_or_absent_keys_writes_nothing(lakehouse_home):
    writes.write("marts.o", pa.table({"k": [1], "v": ["a"]}))
    files = {f["file_path"] for f in load_table("marts.o").inspect.files().to_pylist()}
    snapshots = len(load_table("marts.o").snapshots())
    empty = pa.table({"k": pa.array([], pa.int64()), "v": pa.array([], pa.string()), "is_deleted": pa.array([], pa.bool_())})
    writes.write("marts.o", empty, "delete_insert", unique_key=["k"], tombstone_column="is_deleted")
    # A delete of a key that is no longer there (a replayed 'D'): no file is touched.
    gone = pa.table({"k": [9], "v": ["x"], "is_deleted": [True]})
    writes.write("marts.o", gone, "delete_insert", unique_key=["k"], tombstone_column="is_deleted")
    table = load_table("marts.o")
    assert {f["file_path"] for f in table.inspect.files().to_pylist()} == files
    assert rows("select k, v from marts.o") == [(1, "a")]
    assert len(table.snapshots()) == snapshots


def test_tombstones_must_be_a_boolean_column(lakehouse_home):
    writes.write("marts.o", pa.table({"k": [1], "v": ["a"]}))
    with pytest.raises(writes.WriteError, match="tombstone_column 'op' must be boolean"):
        writes.write("marts.o", pa.table({"k": [1], "v": ["a"], "op": ["D"]}), "delete_insert",
                     unique_key=["k"], tombstone_column="op")


@pytest.mark.parametrize("layout", [["truncate(10, k)"], ["bucket(4, k)"], ["d", "truncate(10, k)"], ["day(ts)"], []])
def test_delete_insert_on_any_layout_equals_replacing_the_keys(lakehouse_home, layout):
    """Partitioned by the key, only the files of the keys' partitions are rewritten; any other layout
    takes PyIceberg's delete. Either way: every row of a batch key goes, the batch's rows come in,
    and a column new in the batch is added (null for the rows kept)."""
    day = dt.date(2026, 11, 1)
    before = [{"k": k, "d": day + dt.timedelta(days=k % 3), "ts": dt.datetime(2026, 11, 1 + k % 5, tzinfo=dt.UTC),
               "v": f"v{k}"} for k in range(40)]
    writes.write("marts.p", pa.Table.from_pylist(before), partition_by=layout)
    files_before = {f["file_path"]: list(f["partition"].values()) for f in load_table("marts.p").inspect.files().to_pylist()}
    batch = [{**row, "v": f"new{row['k']}", "extra": row["k"] * 10, "gone": row["k"] == 13}
             for row in before if row["k"] in (3, 5, 13, 17)]
    batch.append({"k": 99, "d": day, "ts": dt.datetime(2026, 11, 1, tzinfo=dt.UTC), "v": "new99", "extra": 990, "gone": False})
    key = ["k", "d"] if "d" in layout else ["k"]
    writes.write("marts.p", pa.Table.from_pylist(batch), "delete_insert", unique_key=key, tombstone_column="gone")

    replaced = {row["k"]: row for row in batch}
    expected = sorted(
        [(r["k"], r["v"], None) for r in before if r["k"] not in replaced]
        + [(r["k"], r["v"], r["extra"]) for r in batch if not r["gone"]]
    )
    assert rows("select k, v, extra from marts.p order by k") == expected
    if layout == ["truncate(10, k)"]:
        # Keys 3, 5, 13, 17 and 99 live in partitions 0, 10 and 90: partitions 20 and 30 keep their files.
        files = {f["file_path"]: list(f["partition"].values()) for f in load_table("marts.p").inspect.files().to_pylist()}
        kept = {path for path, partition in files.items() if partition[0] in (20, 30)}
        assert len(kept) == 2 and kept <= files_before.keys()
        assert {partition[0] for path, partition in files.items() if path not in files_before} == {0, 10, 90}


def _open_catalog(home: str, barrier) -> str:
    import os

    os.environ["LAKEHOUSE_HOME"] = home
    from lakehouse.catalog import get_catalog

    barrier.wait()  # all at once, as the ingest tasks of a first run under the LocalExecutor
    return ",".join(sorted(ns[0] for ns in get_catalog().list_namespaces()))


def test_parallel_processes_create_a_fresh_catalog_without_failing(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(6)
        with context.Pool(6) as pool:
            namespaces = pool.starmap(_open_catalog, [(str(tmp_path / "home"), barrier)] * 6)
    assert set(namespaces) == {"audit,marts,quarantine,raw,staging"}
