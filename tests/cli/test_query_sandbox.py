"""`lakehouse query` is read-only over the lakehouse: it reads every Iceberg table (and older snapshots)
and nothing else, writes nothing, changes no setting and never shows the S3 secret.

One lakehouse per module (and one on the embedded S3 server): each test only reads it, through the CLI
with that lakehouse's environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner

from lakehouse import cli, compute, writes
from lakehouse.catalog import _catalog_for

READ_ONLY = "lakehouse query is read-only over the lakehouse tables"
# What conftest's lakehouse_home clears: nothing of the shell's own lakehouse leaks in.
CLEARED = ("LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_CATALOG_NAME", "LAKEHOUSE_RAW_ZONE",
           "LAKEHOUSE_S3_ENDPOINT", "LAKEHOUSE_S3_REGION", "AWS_SESSION_TOKEN")  # fmt: skip


@dataclass
class Lakehouse:
    home: Path
    env: dict[str, str | None]
    metadata: str  # raw.cities' current metadata file
    first_snapshot: int  # raw.cities before its append

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"


def _build(home: Path, extra: dict[str, str]) -> Lakehouse:
    env: dict[str, str | None] = {name: None for name in CLEARED} | {"LAKEHOUSE_HOME": str(home), **extra}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.delenv(name, raising=False) if value is None else patch.setenv(name, value)
        _catalog_for.cache_clear()
        first = writes.write("raw.cities", pa.table({"id": [1, 2], "name": ["Oslo", "Lima"]}))
        table = writes.write("raw.cities", pa.table({"id": [3], "name": ["Pune"]}), "append")
    _catalog_for.cache_clear()
    return Lakehouse(home, env, table.metadata_location, first.current_snapshot().snapshot_id)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("sandbox") / "lakehouse", {})


@pytest.fixture(scope="module")
def s3_lake(tmp_path_factory, s3_server):
    bucket = s3_server.make_bucket()
    extra = {**s3_server.env, "LAKEHOUSE_WAREHOUSE": f"s3://{bucket}/warehouse", "LAKEHOUSE_RAW_ZONE": f"s3://{bucket}/raw_zone"}
    try:
        yield _build(tmp_path_factory.mktemp("sandbox_s3") / "lakehouse", extra)
    finally:
        try:
            s3_server.delete_bucket(bucket)
        except OSError:
            pass


def query(lakehouse: Lakehouse, sql: str, *options: str):
    return CliRunner().invoke(cli.main, ["query", sql, *options], env={"COLUMNS": "200", **lakehouse.env})


def refused(result) -> str:
    """The one-line error of a refused query (and that it was one)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"Error: {READ_ONLY}: "), result.stderr
    return result.stderr


def test_selects_ctes_aggregates_and_time_travel_read_the_tables(lake):
    result = query(lake, "select id, name from raw.cities order by id", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == "id,name\n1,Oslo\n2,Lima\n3,Pune\n"
    sql = "with c as (select * from raw.cities) select count(*) as n, string_agg(name, ',' order by id) as names from c"
    result = query(lake, sql, "--format", "csv")
    assert result.stdout == "n,names\n3,\"Oslo,Lima,Pune\"\n", result.output
    # The snapshot before the append, through the current metadata file.
    result = query(lake, f"select count(*) as n from iceberg_scan('{lake.metadata}', snapshot_from_id => {lake.first_snapshot})",
                   "--format", "csv")
    assert result.stdout == "n\n2\n", result.output
    result = query(lake, "describe raw.cities", "--format", "csv")
    assert result.exit_code == 0 and result.stdout.startswith("column_name,column_type"), result.output


@pytest.mark.parametrize("where", ["outside", "warehouse"])
def test_copy_to_a_file_is_refused_and_writes_nothing(lake, tmp_path, where):
    # DuckDB's allowed_directories would let COPY write into the warehouse: the statement check stops it.
    target = (tmp_path if where == "outside" else lake.warehouse) / "x.csv"
    stderr = refused(query(lake, f"COPY (select 1) TO '{target}'"))
    assert "COPY statements are refused" in stderr
    assert not target.exists()


@pytest.mark.parametrize("sql", [
    "select * from read_text('/etc/passwd')",
    "select * from read_csv('/etc/passwd')",
    "select * from glob('/etc/*')",
    "select * from read_blob('{warehouse}/../catalog.db')",  # beside the warehouse, through '..'
])  # fmt: skip
def test_files_outside_the_warehouse_are_refused(lake, sql):
    result = query(lake, sql.format(warehouse=lake.warehouse), "--format", "csv")
    stderr = refused(result)
    assert "Permission Error" in stderr and "file system operations are disabled" in stderr
    assert "root:" not in result.stdout and "passwd" not in result.stdout


@pytest.mark.parametrize("sql, says", [
    ("ATTACH ':memory:' AS other", "ATTACH statements are refused"),
    ("ATTACH '{warehouse}/other.duckdb' AS other", "ATTACH statements are refused"),
    ("INSTALL httpfs", "INSTALL statements are refused"),
    ("LOAD json", "LOAD statements are refused"),
    ("LOAD '{extension}'", "LOAD statements are refused"),
    ("SET enable_external_access = true", "SET statements are refused"),
    ("RESET lock_configuration", "RESET statements are refused"),
    ("PRAGMA enable_profiling", "PRAGMA statements are refused"),
    ("CREATE SECRET mine (TYPE s3, KEY_ID 'a', SECRET 'b')", "CREATE statements are refused"),
    ("select 1; COPY (select 1) TO '{warehouse}/x.csv'", "COPY statements are refused"),
    # Table functions inside a SELECT that would write log files into the warehouse or run SQL from a string.
    ("select * from enable_logging(storage = 'file', storage_path = '{warehouse}/logs')", "enable_logging() is refused"),
    ("select * from query('select 1')", "query() is refused"),
])  # fmt: skip
def test_statements_that_write_or_change_the_session_are_refused(lake, sql, says):
    extension = compute._extension_path("httpfs")
    stderr = refused(query(lake, sql.format(warehouse=lake.warehouse, extension=extension)))
    assert says in stderr
    assert sorted(p.name for p in lake.warehouse.iterdir()) == ["raw"]


def _use(monkeypatch, lakehouse: Lakehouse) -> None:
    for name, value in lakehouse.env.items():
        monkeypatch.delenv(name, raising=False) if value is None else monkeypatch.setenv(name, value)
    _catalog_for.cache_clear()


def test_duckdb_itself_refuses_what_the_statement_check_lets_through(lake, tmp_path, monkeypatch):
    """The connection under the check: external access off, the warehouse the only readable place, locked."""
    _use(monkeypatch, lake)
    con = compute.connect_read_only()
    try:
        assert con.execute("select count(*) from raw.cities").fetchone() == (3,)
        with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
            con.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
            con.execute("SET allowed_directories = ['/']")
        for sql in (f"COPY (select 1) TO '{tmp_path / 'x.csv'}'", f"ATTACH '{tmp_path / 'x.duckdb'}'", "INSTALL json",
                    "select * from read_text('/etc/passwd')"):
            with pytest.raises(duckdb.PermissionException):
                con.execute(sql)
        assert list(tmp_path.iterdir()) == []
    finally:
        con.close()
        _catalog_for.cache_clear()


def test_on_s3_the_query_reads_the_warehouse_and_never_shows_the_secret(s3_lake):
    secret, key_id = s3_lake.env["AWS_SECRET_ACCESS_KEY"], s3_lake.env["AWS_ACCESS_KEY_ID"]
    bucket = urlparse(s3_lake.env["LAKEHOUSE_WAREHOUSE"]).netloc
    result = query(s3_lake, "select id, name from raw.cities order by id", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == "id,name\n1,Oslo\n2,Lima\n3,Pune\n"
    assert s3_lake.metadata.startswith(f"s3://{bucket}/warehouse/")
    # httpfs puts the AWS_* keys into settings as it loads: those are cleared; duckdb_secrets() is refused.
    for sql in ("select * from duckdb_secrets()", "select name, value from duckdb_settings()",
                "select current_setting('s3_secret_access_key') as s, current_setting('s3_access_key_id') as k",
                f"select * from which_secret('s3://{bucket}/warehouse', 's3')"):
        result = query(s3_lake, sql, "--format", "json")
        assert secret not in result.output and key_id not in result.output, sql
        assert result.exit_code == 0 or "duckdb_secrets() is refused" in result.stderr, result.output
    # The bucket's raw zone is beside the warehouse: not readable.
    stderr = refused(query(s3_lake, f"select * from read_text('s3://{bucket}/raw_zone/x.csv')"))
    assert "Permission Error" in stderr
    assert "COPY statements are refused" in refused(query(s3_lake, f"COPY (select 1) TO 's3://{bucket}/warehouse/x.csv'"))


def test_on_s3_duckdb_redacts_the_secret_under_the_statement_check(s3_lake, monkeypatch):
    _use(monkeypatch, s3_lake)
    con = compute.connect_read_only()
    try:
        rows = con.execute("select secret_string from duckdb_secrets()").fetchall()
        assert rows and all("secret=redacted" in row[0] and s3_lake.env["AWS_SECRET_ACCESS_KEY"] not in row[0] for row in rows)
        with pytest.raises(duckdb.InvalidInputException, match="unredacted secrets is disabled"):
            con.execute("select * from duckdb_secrets(redact := false)")
    finally:
        con.close()
        _catalog_for.cache_clear()
