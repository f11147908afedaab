"""fetch(): parallel ranged HTTP downloads that resume, retry and verify, against a local range server."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakehouse.files.download import DownloadError, Fetched, fetch
from lakehouse.testing.range_server import RangeServer

SIZE = 2_000_000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def body_bytes(server: RangeServer) -> int:
    """Body bytes the server sent for GET requests (the probe's single byte included)."""
    return sum(r["bytes"] for r in server.requests if r["method"] == "GET")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


class Stop(Exception):
    pass


def interrupt_after(limit: int):
    """A progress callback that stops the download once `limit` bytes are in, as a kill would."""
    def progress(done: int, total: int | None) -> None:
        if done >= limit:
            raise Stop(done)
    return progress


@pytest.fixture
def server():
    with RangeServer() as running:
        yield running


def test_parallel_ranged_download_is_byte_exact(server, tmp_path):
    data = server.put_generated("data.bin", SIZE, seed=1)
    calls = []
    result = fetch(server.url("data.bin"), tmp_path / "data.bin", connections=4, chunk_size=64 * 1024,
                   progress=lambda done, total: calls.append((done, total)))
    assert isinstance(result, Fetched)
    assert (tmp_path / "data.bin").read_bytes() == data
    assert (result.size, result.sha256, result.connections, result.resumed_bytes) == (SIZE, sha(data), 4, 0)
    assert result.destination == (tmp_path / "data.bin").as_uri()
    ranges = sorted(r["range"] for r in server.requests if r["status"] == 206 and r["range"] != "bytes=0-0")
    assert ranges == ["bytes=0-499999", "bytes=1000000-1499999", "bytes=1500000-1999999", "bytes=500000-999999"]
    assert calls[-1] == (SIZE, SIZE)
    assert leftovers(tmp_path) == []


def test_dropped_connections_are_retried_from_where_they_stopped(server, tmp_path, caplog):
    data = server.put_generated("data.bin", SIZE, seed=2)
    server.drop_after, server.drop_requests = 150_000, 6
    with caplog.at_level(logging.WARNING, logger="lakehouse.files.download"):
        result = fetch(server.url("data.bin"), tmp_path / "data.bin", connections=4)
    assert (tmp_path / "data.bin").read_bytes() == data
    assert server.drops == 6 and result.retries == 6
    assert sum("retrying from byte" in message for message in caplog.messages) == 6
    # Each retry asked only for the rest of its range: nothing was sent twice.
    assert body_bytes(server) == SIZE + 1


def test_random_drops_with_a_seed_still_give_the_exact_file(server, tmp_path):
    data = server.put_generated("data.bin", SIZE, seed=3)
    server.drop_after, server.drop_probability = 40_000, 0.5
    result = fetch(server.url("data.bin"), tmp_path / "data.bin", connections=3, retries=10)
    assert result.sha256 == sha(data) and result.retries == server.drops > 0


def test_too_many_failures_give_up_with_a_clear_error(server, tmp_path):
    server.put_generated("data.bin", SIZE, seed=4)
    server.drop_after = 0  # every body is cut before its first byte
    with pytest.raises(DownloadError, match="gave up after 2 retries"):
        fetch(server.url("data.bin"), tmp_path / "data.bin", retries=2)
    assert not (tmp_path / "data.bin").exists()


def test_an_interrupted_download_resumes_with_only_the_missing_bytes(server, tmp_path):
    data = server.put_generated("data.bin", SIZE, seed=5)
    server.bandwidth = 250_000  # per connection: slow enough to interrupt half-way
    with pytest.raises(Stop):
        fetch(server.url("data.bin"), tmp_path / "data.bin", chunk_size=16 * 1024, progress=interrupt_after(300_000))
    assert leftovers(tmp_path) == ["data.bin.partial", "data.bin.partial.json"]
    state = json.loads((tmp_path / "data.bin.partial.json").read_text())
    assert state["size"] == SIZE and state["etag"] and len(state["ranges"]) == 4
    already = sum(done for _, _, done in state["ranges"])
    assert 0 < already < SIZE

    server.bandwidth = None
    server.reset_counters()
    result = fetch(server.url("data.bin"), tmp_path / "data.bin")
    assert result.resumed_bytes == already
    assert result.sha256 == sha(data) and (tmp_path / "data.bin").read_bytes() == data
    assert body_bytes(server) == SIZE - already + 1
    assert leftovers(tmp_path) == []


def test_a_killed_process_resumes(server, tmp_path):
    data = server.put_generated("data.bin", SIZE, seed=6)
    server.bandwidth = 200_000
    state_file = tmp_path / "data.bin.partial.json"
    code = ("import sys; from lakehouse.files.download import fetch; "
            "fetch(sys.argv[1], sys.argv[2], connections=4, chunk_size=16384)")
    process = subprocess.Popen([sys.executable, "-c", code, server.url("data.bin"), str(tmp_path / "data.bin")])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if sum(done for _, _, done in json.loads(state_file.read_text())["ranges"]) > 100_000:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -9, "the download finished before it could be killed"
    assert not (tmp_path / "data.bin").exists()

    server.bandwidth = None
    server.reset_counters()
    result = fetch(server.url("data.bin"), tmp_path / "data.bin")
    assert result.resumed_bytes > 100_000
    assert body_bytes(server) < SIZE
    assert result.sha256 == sha(data)


def test_a_changed_source_starts_over(server, tmp_path):
    server.put_generated("data.bin", SIZE, seed=7)
    server.bandwidth = 250_000
    with pytest.raises(Stop):
        fetch(server.url("data.bin"), tmp_path / "data.bin", chunk_size=16 * 1024, progress=interrupt_after(200_000))
    assert (tmp_path / "data.bin.partial.json").exists()

    new = server.put_generated("data.bin", SIZE, seed=8)  # same size, new ETag
    server.bandwidth = None
    server.reset_counters()
    result = fetch(server.url("data.bin"), tmp_path / "data.bin")
    assert result.resumed_bytes == 0
    assert (tmp_path / "data.bin").read_bytes() == new
    assert body_bytes(server) == SIZE + 1


def test_wrong_sha256_raises_and_leaves_no_file(server, tmp_path):
    data = server.put_generated("data.bin", SIZE, seed=9)
    wrong = sha(b"something else")
    with pytest.raises(DownloadError, match=f"sha256 mismatch: expected {wrong}, got {sha(data)}"):
        fetch(server.url("data.bin"), tmp_path / "data.bin", sha256=wrong)
    assert list(tmp_path.iterdir()) == []
    # The right one passes.
    assert fetch(server.url("data.bin"), tmp_path / "data.bin", sha256=sha(data).upper()).sha256 == sha(data)


def test_wrong_size_raises_and_leaves_no_file(server, tmp_path):
    server.put_generated("data.bin", SIZE, seed=10)
    with pytest.raises(DownloadError, match=f"size mismatch: expected {SIZE + 1} bytes, the source has {SIZE} bytes"):
        fetch(server.url("data.bin"), tmp_path / "data.bin", expected_size=SIZE + 1)
    assert list(tmp_path.iterdir()) == []
    # Found only after the download when the server gives no size up front (no ranges, no validators).
    (tmp_path / "src.bin").write_bytes(b"x" * 1000)
    with pytest.raises(DownloadError, match="size mismatch: expected 999 bytes"):
        fetch(tmp_path / "src.bin", tmp_path / "out.bin", expected_size=999)
    assert not (tmp_path / "out.bin").exists() and leftovers(tmp_path) == []


def test_a_server_without_ranges_gets_one_connection(tmp_path):
    with RangeServer(ranges=False) as server:
        data = server.put_generated("data.bin", SIZE, seed=11)
        result = fetch(server.url("data.bin"), tmp_path / "data.bin", connections=4)
        assert result.connections == 1 and result.sha256 == sha(data)
        # The probe's answer (the whole file) was the download itself.
        assert len([r for r in server.requests if r["method"] == "GET"]) == 1
        assert body_bytes(server) == SIZE
        # A drop means starting again from the first byte, still exact.
        server.drop_after, server.drop_requests = 300_000, 1
        result = fetch(server.url("data.bin"), tmp_path / "again.bin")
        assert result.sha256 == sha(data) and result.retries == 1


def test_missing_file_is_a_clear_error(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(server.url("nothing.bin"), tmp_path / "x.bin")


def test_local_source_to_a_file_uri_and_a_folder(tmp_path):
    data = (tmp_path / "in.bin").write_bytes(b"local bytes " * 50_000) and (tmp_path / "in.bin").read_bytes()
    target = tmp_path / "out" / "copy.bin"
    result = fetch(str(tmp_path / "in.bin"), target.as_uri(), chunk_size=100_000)
    assert result.destination == target.as_uri() and target.read_bytes() == data
    assert (result.size, result.sha256, result.connections) == (len(data), sha(data), 1)
    # A folder destination keeps the source's name; a file:// source works too.
    result = fetch((tmp_path / "in.bin").as_uri(), str(tmp_path / "out") + "/")
    assert result.destination == (tmp_path / "out" / "in.bin").as_uri() and result.sha256 == sha(data)


def test_cli_fetch_end_to_end(server, tmp_path):
    data = server.put_generated("data.bin", SIZE, seed=12)
    command = [str(Path(sys.executable).with_name("lakehouse")), "fetch", server.url("data.bin"),
               str(tmp_path / "data.bin"), "--connections", "2", "--sha256", sha(data)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data.bin").read_bytes() == data
    line = done.stdout.strip()
    assert line.startswith((tmp_path / "data.bin").as_uri()) and "MB/s" in line and "resumed 0 B" in line
    assert "2 connections" in line and sha(data) in line

    wrong = subprocess.run(command[:-1] + ["0" * 64], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 1 and "sha256 mismatch" in wrong.stderr


def test_fetch_to_and_from_s3(server, s3_lakehouse, s3_server, tmp_path):
    from urllib.parse import urlparse

    from lakehouse.settings import load_settings

    settings = load_settings()
    bucket = urlparse(settings.warehouse).netloc
    data = server.put_generated("data.bin", SIZE, seed=13)
    s3 = s3_server.filesystem()

    # HTTP to s3://: staged under <home>/downloads, streamed up, the staging file removed.
    destination = f"{settings.raw_zone}/files/data.bin"
    result = fetch(server.url("data.bin"), destination, sha256=sha(data))
    assert result.destination == destination and result.connections == 4
    with s3.open_input_stream(f"{bucket}/raw_zone/files/data.bin") as stream:
        assert stream.read() == data
    assert list((settings.home / "downloads").iterdir()) == []

    # s3:// back to a local file (ranged reads), then a local file to s3:// (streamed both sides).
    back = fetch(destination, tmp_path / "back.bin", connections=3)
    assert back.sha256 == sha(data) and back.connections == 3 and (tmp_path / "back.bin").read_bytes() == data
    copy = fetch(tmp_path / "back.bin", f"s3://{bucket}/raw_zone/files/copy.bin")
    assert copy.sha256 == sha(data) and s3.get_file_info(f"{bucket}/raw_zone/files/copy.bin").size == SIZE

    # A wrong checksum leaves no object behind.
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fetch(tmp_path / "back.bin", f"s3://{bucket}/raw_zone/files/bad.bin", sha256="0" * 64)
    assert s3.get_file_info(f"{bucket}/raw_zone/files/bad.bin").type.name == "NotFound"


def test_a_source_changing_during_the_download_is_noticed_and_fetched_again(server, tmp_path):
    server.put_generated("data.bin", SIZE, seed=14)
    server.bandwidth, server.drop_after, server.drop_requests = 1_000_000, 200_000, 4
    replaced = []

    def replace_once(done: int, total: int | None) -> None:
        if not replaced:  # while the first requests run; their retries carry If-Range with the old ETag
            replaced.append(server.put_generated("data.bin", SIZE, seed=15))

    result = fetch(server.url("data.bin"), tmp_path / "data.bin", progress=replace_once)
    assert (tmp_path / "data.bin").read_bytes() == replaced[0]
    assert result.sha256 == sha(replaced[0]) and result.resumed_bytes == 0
    assert any(r["status"] == 200 and r["range"] != "bytes=0-0" for r in server.requests)  # If-Range said no
