"""Spark as the second engine: its jars, its server, and the one catalog every engine shares: a table
written by PyIceberg or by Spark is read by the other writer and by DuckDB, after schema evolution and
with deleted rows."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import compute
from lakehouse.catalog import load_table
from lakehouse.compute import ReadOnlyQueryError
from lakehouse.engines import get_engine
from lakehouse.settings import load_settings
from lakehouse.spark import jars, server
from lakehouse.testing.compare import compare
from lakehouse.writes import write

LAKEHOUSE = str(Path(sys.executable).with_name("lakehouse"))


def duckdb_rows(sql: str) -> list[tuple]:
    return compute.connect().sql(sql).fetchall()


def test_the_iceberg_runtime_needs_the_rebuilt_jackson_and_loads_with_it():
    prepared = jars.prepare()
    assert [p.name for p in prepared][0] == jars.ICEBERG_RUNTIME and all(p.is_file() for p in prepared)
    jars.check_classes_load(prepared)  # loads: no exception
    without = [p for p in prepared if p != jars.shaded_jackson_jar()]
    missing = "do not load: java.lang.ClassNotFoundException: org.apache.iceberg.shaded.com.fasterxml.jackson"
    with pytest.raises(jars.SparkJarsError, match=missing):
        jars.check_classes_load(without)


def test_the_server_listens_on_localhost_and_keeps_its_properties_private(spark_home):
    state = server.status()
    assert state.running and state.host == "127.0.0.1" and not state.external
    properties = spark_home / "spark" / "spark-defaults.conf"
    assert stat.S_IMODE(properties.stat().st_mode) == 0o600
    text = properties.read_text()
    assert f"spark.sql.catalog.lakehouse.uri jdbc:sqlite:{spark_home / 'catalog.db'}" in text
    assert "spark.sql.defaultCatalog lakehouse" in text
    done = subprocess.run([LAKEHOUSE, "spark", "status"], capture_output=True, text=True, timeout=120, env=os.environ)
    assert done.returncode == 0 and f"running at 127.0.0.1:{state.port}, pid {state.pid}" in done.stdout


def test_a_pyiceberg_table_reads_the_same_on_spark_after_schema_evolution_and_a_delete_it_read_before(spark):
    write("raw.engines_written_by_pyiceberg", pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "amount": pa.array([1.5, 2.25, None]),
        "at": pa.array([dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)] * 3, pa.timestamp("us", tz="UTC")),
    }), "overwrite")
    # The long-lived server reads the table once; what PyIceberg commits next must be seen by the next
    # query, not hidden behind metadata the server kept (Iceberg's catalog cache is off for that).
    assert spark.query("select count(*) as n from raw.engines_written_by_pyiceberg").to_pylist() == [{"n": 3}]
    # A new column by schema evolution, then a delete of one key (a rewrite of its file by PyIceberg).
    write("raw.engines_written_by_pyiceberg", pa.table({"id": pa.array([4], pa.int64()), "amount": [4.0],
                                                        "at": pa.array([None], pa.timestamp("us", tz="UTC")),
                                                        "note": ["new"]}), "append")
    load_table("raw.engines_written_by_pyiceberg").delete("id == 2")
    expected = load_table("raw.engines_written_by_pyiceberg").scan().to_arrow()
    assert expected.num_rows == 3
    on_spark = spark.query("select * from raw.engines_written_by_pyiceberg")
    assert compare("raw.engines_written_by_pyiceberg", expected, on_spark).equal
    assert spark.query("select note from raw.engines_written_by_pyiceberg where id = 4").to_pylist() == [{"note": "new"}]


def test_a_spark_table_reads_the_same_with_pyiceberg_and_duckdb_after_merge_deletes_and_a_new_column(spark):
    spark.execute("create table staging.engines_written_by_spark (id bigint, status string, amount decimal(12,2)) "
                  "using iceberg tblproperties ('format-version'='2', 'write.delete.mode'='merge-on-read', "
                  "'write.update.mode'='merge-on-read', 'write.merge.mode'='merge-on-read')")
    spark.execute("insert into staging.engines_written_by_spark values (1, 'created', 10.00), (2, 'created', 20.50), "
                  "(3, 'created', 30.25)")
    spark.execute("alter table staging.engines_written_by_spark add columns (channel string)")
    spark.execute("merge into staging.engines_written_by_spark t using (select 2 as id, 'shipped' as status, "
                  "cast(20.50 as decimal(12,2)) as amount, 'web' as channel union all select 3, null, null, null) s "
                  "on t.id = s.id when matched and s.status is null then delete "
                  "when matched then update set * when not matched then insert *")
    spark.execute("delete from staging.engines_written_by_spark where id = 1")
    table = load_table("staging.engines_written_by_spark")
    # Spark wrote delete files (merge-on-read), which the other two readers must apply.
    assert any(task.delete_files for task in table.scan().plan_files())
    expected = [(2, "shipped", 20.5, "web")]
    read_by_pyiceberg = table.scan().to_arrow().sort_by("id")
    assert [(r["id"], r["status"], float(r["amount"]), r["channel"]) for r in read_by_pyiceberg.to_pylist()] == expected
    rows = duckdb_rows("select id, status, cast(amount as double), channel from staging.engines_written_by_spark order by id")
    assert rows == expected


def test_a_read_only_session_refuses_writes_with_the_reason(spark_home):
    session = get_engine(load_settings()).connect(read_only=True)
    try:
        assert session.query("select 1 as one").to_pylist() == [{"one": 1}]
        for sql, refused in [("drop table staging.engines_written_by_spark", "DROP statements are refused"),
                             ("with t as (select 1) insert into raw.x select * from t", "INSERT is refused"),
                             ("select 1; drop table raw.x", "one statement at a time")]:
            with pytest.raises(ReadOnlyQueryError, match=refused):
                session.query(sql)
        # A keyword inside a string literal is data, not a command.
        assert session.query("select 'drop table' as words").to_pylist() == [{"words": "drop table"}]
    finally:
        session.close()


def test_dbt_spark_datasets_name_the_lakehouse_table():
    engine = get_engine(load_settings())
    assert engine.dbt_target == "spark"
    assert engine.lineage_table("spark://127.0.0.1:10000", "marts.mart_positions") == "marts.mart_positions"
    assert engine.lineage_table("spark://127.0.0.1:10000", "lakehouse.raw.market_data") == "raw.market_data"
    assert engine.lineage_table("duckdb://:memory:", "marts.mart_positions") is None
    assert engine.lineage_table("spark://h:1", "positions_cte") is None


def test_an_s3_warehouse_on_spark_says_what_it_needs(spark_home, monkeypatch):
    from lakehouse.spark.config import SparkConfigError, spark_properties

    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", "s3://bucket/warehouse")
    with pytest.raises(SparkConfigError, match="iceberg-aws-bundle.*LAKEHOUSE_SPARK_PACKAGES=org.apache.iceberg"):
        spark_properties(load_settings())
    monkeypatch.setenv("LAKEHOUSE_SPARK_PACKAGES", "org.apache.iceberg:iceberg-aws-bundle:1.10.2")
    monkeypatch.setenv("LAKEHOUSE_S3_ENDPOINT", "http://127.0.0.1:9000")
    properties = spark_properties(load_settings())
    assert properties["spark.sql.catalog.lakehouse.io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert properties["spark.sql.catalog.lakehouse.s3.endpoint"] == "http://127.0.0.1:9000"
    assert not any("secret" in key.lower() or "AWS_" in value for key, value in properties.items())


def test_maintenance_on_spark_uses_icebergs_procedures_with_the_same_report(spark_home):
    from lakehouse.maintenance import maintain_table

    name = "raw.engines_maintained"
    for day in range(1, 4):  # three partitions, three small files each
        for part in range(3):
            write(name, pa.table({"day": pa.array([dt.date(2026, 11, day)] * 2, pa.date32()),
                                  "n": pa.array([part * 10 + day, part * 10 + day + 100], pa.int64())}),
                  "append", partition_by=["day"])
    before = load_table(name).scan().to_arrow()
    data_dir = Path(load_table(name).metadata.location.removeprefix("file://")) / "data"
    orphan = data_dir / "left-by-a-failed-write.parquet"
    orphan.write_bytes(b"not referenced")
    old = (dt.datetime.now() - dt.timedelta(days=10)).timestamp()
    os.utime(orphan, (old, old))
    report = maintain_table(name, retention_hours=0, min_snapshots_to_keep=1, target_file_size_mb=128,
                            orphan_grace_hours=24)
    assert "maintained on Spark with Iceberg's procedures" in report.notes
    assert (report.files_before, report.files_after, report.compacted_partitions) == (9, 3, 3)
    # The nine appends expire; compaction and rewrite_manifests are two commits newer than the retention.
    assert report.snapshots_before == 9 and report.expired_snapshots == 9 and report.snapshots_after == 2
    assert (report.orphans_removed, report.orphan_bytes_removed) == (1, len(b"not referenced")) and not orphan.exists()
    assert compare(name, before, load_table(name).scan().to_arrow()).equal
    assert duckdb_rows(f"select count(*) from {name}") == [(before.num_rows,)]


def test_a_failed_spark_model_reports_sparks_own_message():
    from lakehouse.runner import _error_in

    log = [
        "  Runtime Error in model stg_x (models/staging/stg_x.sql)",
        "  Database Error",
        "    org.apache.hive.service.cli.HiveSQLException: Error running query: [PARSE_SYNTAX_ERROR] "
        "org.apache.spark.sql.catalyst.parser.ParseException: Syntax error at or near 'with'",
    ]
    assert _error_in(log) == ("Error in model stg_x (models/staging/stg_x.sql): [PARSE_SYNTAX_ERROR] "
                              "org.apache.spark.sql.catalyst.parser.ParseException: Syntax error at or near 'with'")
