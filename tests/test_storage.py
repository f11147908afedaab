"""The warehouse and the raw zone on a real S3 server (the embedded SeaweedFS), with local-disk code."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner
from pyarrow import fs

from lakehouse import cli, compute, objectstore, writes
from lakehouse.catalog import load_table
from lakehouse.settings import load_settings

PROJECT = Path(__file__).parent / "fixtures" / "iceberg_project"
LAKEHOUSE = Path(sys.executable).with_name("lakehouse")


def _bucket() -> str:
    return urlparse(load_settings().warehouse).netloc


def _files(s3_server, prefix: str) -> list[str]:
    infos = s3_server.filesystem().get_file_info(fs.FileSelector(prefix, recursive=True))
    return sorted(info.path for info in infos if info.type == fs.FileType.File)


def test_an_iceberg_table_on_s3_is_read_back_by_duckdb(s3_lakehouse, s3_server):
    cities = pa.table({"id": [1, 2, 3], "name": ["Oslo", "Lima", "Pune"], "population_k": [709, 10_719, 7_764]})
    writes.write("raw.cities", cities)
    writes.write("raw.cities", pa.table({"id": [4], "name": ["Kyiv"], "population_k": [2_952]}), "append")
    bucket = _bucket()

    table = load_table("raw.cities")
    assert table.metadata_location.startswith(f"s3://{bucket}/warehouse/")
    got = compute.connect().sql("select id, name, population_k from raw.cities order by id").fetchall()
    assert got == [(1, "Oslo", 709), (2, "Lima", 10_719), (3, "Pune", 7_764), (4, "Kyiv", 2_952)]
    assert table.scan().to_arrow().sort_by("id").to_pylist() == [dict(zip(("id", "name", "population_k"), r)) for r in got]

    stored = _files(s3_server, f"{bucket}/warehouse")
    data_files = [path for path in stored if path.endswith(".parquet")]
    assert len(data_files) == 2 and all(path.startswith(f"{bucket}/warehouse/raw/cities/data/") for path in data_files)
    assert f"{bucket}/{urlparse(table.metadata_location).path.lstrip('/')}" in stored
    # Nothing landed on local disk but the catalog.
    assert not (s3_lakehouse / "warehouse").exists()


def test_objectstore_round_trip_on_s3(s3_lakehouse, s3_server):
    raw_zone = load_settings().raw_zone
    assert raw_zone == f"s3://{_bucket()}/raw_zone"
    uri = objectstore.join(raw_zone, "cities", "2026-11-21.csv")
    filesystem, path = objectstore.filesystem(uri)
    assert isinstance(filesystem, fs.S3FileSystem) and path == f"{_bucket()}/raw_zone/cities/2026-11-21.csv"
    with filesystem.open_output_stream(path) as out:
        out.write(b"id,name\n1,Oslo\n2,Lima\n")
    with filesystem.open_input_stream(path) as stream:
        assert stream.read() == b"id,name\n1,Oslo\n2,Lima\n"
    assert _files(s3_server, f"{_bucket()}/raw_zone") == [path]
    # DuckDB reads the raw zone with the same settings.
    assert compute.connect().sql(f"select name from read_csv('{uri}') order by id").fetchall() == [("Oslo",), ("Lima",)]


def test_a_dbt_project_builds_on_the_s3_warehouse(s3_lakehouse, s3_server, tmp_path):
    from lakehouse.testing import dbt as run_dbt

    def dbt(*args: str) -> None:
        argv = list(args)
        if args[0] == "run":  # its own target folder: other tests run this project too
            argv += ["--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")]
        result = run_dbt(PROJECT, *argv)
        assert result.success, f"dbt {args[0]}: {result.exception or result.result}"

    dbt("deps")
    dbt("run", "--vars", '{"batch": 1}')
    dbt("run", "--vars", '{"batch": 2}')
    con = compute.connect()
    assert con.sql("select event_id, status from staging.fixture_events order by 1").fetchall() == [
        (1, "created"), (2, "shipped"), (3, "created"),
    ]
    assert con.sql("select status, events from staging.fixture_summary order by 1").fetchall() == [
        ("created", 2), ("shipped", 1),
    ]
    events = load_table("staging.fixture_events")
    assert events.metadata_location.startswith(f"s3://{_bucket()}/warehouse/staging/fixture_events/")
    parquet = [p for p in _files(s3_server, f"{_bucket()}/warehouse/staging/fixture_events") if p.endswith(".parquet")]
    assert parquet
    assert pq.read_table(parquet[0], filesystem=s3_server.filesystem()).num_rows > 0


def _lakehouse(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "LAKEHOUSE_"))}
    env.update(LAKEHOUSE_HOME=str(home), COLUMNS="200")
    return subprocess.run([str(LAKEHOUSE), "storage", *args], env=env, capture_output=True, text=True, timeout=120)


def test_storage_start_status_env_stop_through_the_cli(tmp_path):
    home = tmp_path / "home"
    try:
        started = _lakehouse(home, "start", "--bucket", "lakehouse")
        assert started.returncode == 0, started.stderr
        state = json.loads((home / "storage" / "state.json").read_text())
        endpoint = state["endpoint"]
        assert endpoint.startswith("http://127.0.0.1:") and f"endpoint: {endpoint}" in started.stdout
        assert "bucket s3://lakehouse" in started.stdout

        keys = home / "storage" / "credentials.json"
        assert stat.S_IMODE(keys.stat().st_mode) == 0o600
        secret = json.loads(keys.read_text())["secret_access_key"]

        status = _lakehouse(home, "status")
        assert status.returncode == 0, status.stderr
        assert f"running, pid {state['pid']}" in status.stdout and f"endpoint: {endpoint}" in status.stdout
        # Only `env` prints the secret, on purpose.
        env = _lakehouse(home, "env", "--bucket", "lakehouse")
        assert env.returncode == 0, env.stderr
        exports = dict(line.removeprefix("export ").split("=", 1) for line in env.stdout.splitlines())
        assert exports == {
            "LAKEHOUSE_S3_ENDPOINT": endpoint, "LAKEHOUSE_S3_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": json.loads(keys.read_text())["access_key_id"], "AWS_SECRET_ACCESS_KEY": secret,
            "LAKEHOUSE_WAREHOUSE": "s3://lakehouse/warehouse", "LAKEHOUSE_RAW_ZONE": "s3://lakehouse/raw_zone",
        }
        for output in (started.stdout + started.stderr, status.stdout + status.stderr,
                       (home / "storage" / "log" / "weed.log").read_text()):
            assert secret not in output

        # Every port it listens on is one of the free ones it picked (none of weed's fixed defaults).
        assert set(state["ports"].values()).isdisjoint({8333, 9333, 8888, 9340, 8181, 7333, 23646, 9101})

        stopped = _lakehouse(home, "stop")
        assert stopped.returncode == 0 and stopped.stdout.strip() == "S3 server stopped"
        assert not (home / "storage" / "state.json").exists()
        after = _lakehouse(home, "status")
        assert after.returncode == 1 and after.stdout.strip() == "S3 server (embedded): not running"
        assert _lakehouse(home, "stop").stdout.strip() == "S3 server was not running"
    finally:
        _lakehouse(home, "stop")


def test_an_unreachable_s3_endpoint_fails_with_what_to_do(lakehouse_home, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("LAKEHOUSE_S3_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", "s3://lakehouse/warehouse")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    result = CliRunner().invoke(cli.main, ["tables"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: cannot reach S3 at http://127.0.0.1:{port}: Connection refused. Start the embedded server with"
        ' `lakehouse storage start` and `eval "$(lakehouse storage env)"`, or point LAKEHOUSE_S3_ENDPOINT at your S3\n'
    )
