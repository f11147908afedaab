"""Download a source file into the raw zone: parallel ranged HTTP, resumable, verified.

``fetch(source, destination)`` takes an http(s):// URL, a local path / file:// URI or an s3:// URI
and puts the file at a local path / file:// URI or an s3:// URI.

HTTP(S): one probe (``GET`` with ``Range: bytes=0-0``) gives the size, whether ranges work and the
validators (ETag, Last-Modified). With ranges and a known size the file is split into ``connections``
ranges fetched by as many threads, each streaming at most ``chunk_size`` bytes at a time into
``<dest>.partial`` at its own offsets; otherwise one connection streams the whole body.

Resume: ``<dest>.partial.json`` records, for each range, the bytes written (only after they are on
disk), with the source's size, ETag and Last-Modified. The next fetch of the same source asks only for
the missing bytes if the validators are unchanged, and starts over if they changed. Within a call, a
dropped connection is retried from the byte where it stopped (``retries`` consecutive failures
without progress at most, with a short backoff); range requests carry If-Range, so a source that
changes meanwhile is noticed and the download starts over once.

When complete, the size (and ``sha256`` when given) is checked and the ``.partial`` renamed atomically
to the destination; a mismatch raises :class:`DownloadError` and removes the bad file. The sha256 of
the result is always computed (streaming).

An s3:// destination is downloaded into a staging file under ``<home>/downloads`` (resumable the same
way), then streamed to S3 and the staging file deleted. A local or s3:// source is read through
:func:`lakehouse.objectstore.filesystem` (s3:// in parallel ranges, like HTTP); to an s3://
destination it is streamed directly, without staging (so not resumable), and a bad result deleted.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import queue
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pyarrow import fs as pafs

from .. import objectstore
from ..settings import load_settings

log = logging.getLogger(__name__)

_STATE_VERSION = 1
_MIN_RANGE = 64 * 1024  # no range smaller than this (a tiny file is one range)
_SAVE_EVERY = 0.5  # seconds between saves of the resume state
_PROGRESS_EVERY = 0.1  # seconds between progress calls
_STOP_GRACE = 5.0  # seconds a stopping worker gets to finish its current read
_USER_AGENT = "lakehouse-fetch/1"
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class Fetched:
    source: str  # what was asked for
    destination: str  # the URI it is at now (file:// or s3://)
    size: int  # bytes
    sha256: str  # hex digest of the whole file
    resumed_bytes: int  # bytes that were already there from an interrupted earlier attempt
    connections: int  # ranged connections used (1 if the server does not support ranges; 0 if nothing was missing)
    seconds: float
    retries: int = 0  # failed requests (dropped connections, timeouts, 5xx) that were retried


class DownloadError(RuntimeError):
    """The download failed, or its result does not match what was expected (size, sha256)."""


class _SourceChanged(Exception):
    """The source no longer matches the probe (If-Range answered with the whole file, another size)."""


def fetch(
    source: str,
    destination: str,
    *,
    connections: int = 4,
    expected_size: int | None = None,
    sha256: str | None = None,
    chunk_size: int = 1 << 20,
    retries: int = 5,
    timeout: float = 30.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> Fetched:
    """Fetch source (http(s):// URL, local path or file:// URI, or s3:// URI) to destination (local path/file:// or s3:// URI).

    A destination ending in "/" (or an existing local folder) gets the source's file name.
    ``progress(done_bytes, total_bytes)`` is called from the calling thread, at most ten times a
    second and once at the end; ``total_bytes`` is None while the size is unknown. An exception it
    raises stops the download (the partial file is kept for the next call) and is re-raised.
    """
    started = time.monotonic()
    source = str(source)
    destination = _with_file_name(str(destination), source)
    if connections < 1 or chunk_size < 1 or retries < 0:
        raise ValueError("connections and chunk_size must be at least 1, retries at least 0")
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256.strip()):
        raise ValueError(f"sha256 must be 64 hex digits, not {sha256!r}")
    scheme = urlparse(source).scheme.lower()
    if scheme in ("http", "https"):
        reader: _Source = _HttpSource(source, timeout)
    elif scheme in ("", "file", "s3"):
        reader = _ArrowSource(source)
    else:
        raise DownloadError(f"{source}: unsupported source (http(s)://, s3://, file:// or a local path)")
    to_s3 = urlparse(destination).scheme == "s3"
    if to_s3 and isinstance(reader, _ArrowSource):
        return _stream_copy(reader, destination, started, expected_size, sha256, chunk_size, progress)

    if to_s3:
        key = hashlib.sha256(f"{source}\n{destination}".encode()).hexdigest()[:32]
        target = load_settings().home / "downloads" / key
        final_uri = destination
    else:
        target = Path(_local_path(destination))
        final_uri = target.as_uri()
        if isinstance(reader, _ArrowSource) and reader.local_path() == target:
            raise DownloadError(f"{source}: source and destination are the same file")
    target.parent.mkdir(parents=True, exist_ok=True)

    options = dict(connections=connections, chunk_size=chunk_size, retries=retries, progress=progress)
    transfer = _Transfer(reader, source, target, **options)
    try:
        transfer.run(expected_size)
    except _SourceChanged as change:  # changed while we fetched: start over once
        log.warning("%s changed during the download (%s); starting over", source, change)
        transfer.discard()
        previous_retries = transfer.retries
        transfer = _Transfer(reader, source, target, **options)
        transfer.retries += previous_retries + 1
        try:
            transfer.run(expected_size)
        except _SourceChanged as again:
            transfer.discard()
            raise DownloadError(f"{source}: the source keeps changing during the download ({again})") from None

    size = transfer.partial.stat().st_size
    if expected_size is not None and size != expected_size:
        transfer.discard()
        raise DownloadError(f"{source}: size mismatch: expected {expected_size} bytes, got {size} bytes")
    digest = _sha256_of(transfer.partial, chunk_size)
    if sha256 is not None and digest != sha256.strip().lower():
        transfer.discard()
        raise DownloadError(f"{source}: sha256 mismatch: expected {sha256.strip().lower()}, got {digest} ({size} bytes)")

    if to_s3:
        _upload(transfer.partial, destination, chunk_size)
        transfer.discard()
    else:
        os.replace(transfer.partial, target)
        transfer.state_path.unlink(missing_ok=True)
    return Fetched(
        source=source, destination=final_uri, size=size, sha256=digest, resumed_bytes=transfer.resumed,
        connections=transfer.threads, seconds=time.monotonic() - started, retries=transfer.retries,
    )


# -- sources -------------------------------------------------------------------------------------


@dataclass
class _Info:
    size: int | None
    etag: str | None
    last_modified: str | None
    ranges: bool  # byte ranges can be requested


class _Source:
    parallel = True  # worth several connections

    def probe(self) -> tuple[_Info, Any]:
        """What the source is, and possibly an open stream of the whole file (or None)."""
        raise NotImplementedError

    def open(self, start: int, end: int | None, info: _Info) -> Any:
        """A stream (with read1(n) and close()) of bytes [start, end), or of the whole file if end is None."""
        raise NotImplementedError


class _HttpSource(_Source):
    def __init__(self, url: str, timeout: float):
        self.url = url
        self.timeout = timeout

    def _get(self, headers: dict[str, str]) -> http.client.HTTPResponse:
        request = urllib.request.Request(
            self.url, headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity", **headers}
        )
        return urllib.request.urlopen(request, timeout=self.timeout)

    def probe(self) -> tuple[_Info, Any]:
        try:
            response = self._get({"Range": "bytes=0-0"})
        except urllib.error.HTTPError as error:
            if error.code == 416:  # an empty file has no byte 0
                _, _, total = _content_range(error.headers.get("Content-Range", ""))
                error.close()
                if total == 0:
                    return _Info(0, error.headers.get("ETag"), error.headers.get("Last-Modified"), True), None
            raise
        etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
        if response.status == 206:
            response.read()
            response.close()
            _, _, total = _content_range(response.headers.get("Content-Range", ""))
            if total is not None:
                return _Info(total, etag, modified, True), None
            return _Info(None, etag, modified, False), None  # ranges, but of an unknown size: one stream
        length = response.headers.get("Content-Length")
        # The server ignored the range: this response is the whole file, use it.
        return _Info(int(length) if length else None, etag, modified, False), response

    def open(self, start: int, end: int | None, info: _Info) -> Any:
        if end is None:
            return self._get({})
        headers = {"Range": f"bytes={start}-{end - 1}"}
        validator = info.etag if info.etag and not info.etag.startswith("W/") else info.last_modified
        if validator:
            headers["If-Range"] = validator
        response = self._get(headers)
        first, _, total = _content_range(response.headers.get("Content-Range", "")) if response.status == 206 else (None,) * 3
        if response.status != 206 or first != start or total != info.size:
            response.close()
            raise _SourceChanged(f"asked for bytes {start}-{end - 1} of {info.size}, got HTTP {response.status} "
                                 f"{response.headers.get('Content-Range') or 'without Content-Range'}")
        return response


class _ArrowRange:
    def __init__(self, handle: Any, length: int):
        self.handle = handle
        self.left = length

    def read1(self, size: int) -> bytes:
        data = self.handle.read(min(size, self.left))
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.handle.close()


class _ArrowSource(_Source):
    def __init__(self, uri: str):
        self.uri = uri
        try:
            self.fs, self.path = objectstore.filesystem(uri)
        except ValueError as error:
            raise DownloadError(str(error)) from None
        self.parallel = not isinstance(self.fs, pafs.LocalFileSystem)  # local disk: one reader is enough

    def local_path(self) -> Path | None:
        return Path(self.path) if isinstance(self.fs, pafs.LocalFileSystem) else None

    def file_info(self) -> pafs.FileInfo:
        info = self.fs.get_file_info(self.path)
        if info.type == pafs.FileType.NotFound:
            raise DownloadError(f"{self.uri}: no such file")
        if info.type != pafs.FileType.File:
            raise DownloadError(f"{self.uri}: not a file")
        return info

    def probe(self) -> tuple[_Info, Any]:
        info = self.file_info()
        return _Info(info.size, None, str(info.mtime_ns) if info.mtime_ns else None, True), None

    def open(self, start: int, end: int | None, info: _Info) -> Any:
        handle = self.fs.open_input_file(self.path)
        handle.seek(start)
        return _ArrowRange(handle, (end if end is not None else info.size or 0) - start)


# -- the transfer --------------------------------------------------------------------------------


class _Transfer:
    """Fill ``<target>.partial`` from a source, in ranges, resumable through ``<target>.partial.json``."""

    def __init__(self, source: _Source, label: str, target: Path, *, connections: int, chunk_size: int,
                 retries: int, progress: Callable[[int, int | None], None] | None):
        self.source = source
        self.label = label
        self.partial = target.with_name(target.name + ".partial")
        self.state_path = target.with_name(target.name + ".partial.json")
        self.connections = connections if source.parallel else 1
        self.chunk_size = chunk_size
        self.max_retries = retries
        self.progress = progress
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.ranges: list[list[Any]] = []  # [start, end (exclusive, None if unknown), done]
        self.info: _Info | None = None
        self.first_response: Any = None
        self.resumed = 0
        self.threads = 0
        self.retries = 0

    # public steps

    def run(self, expected_size: int | None) -> None:
        self.info, self.first_response = self._with_retries("probe", self.source.probe)
        if expected_size is not None and self.info.size is not None and self.info.size != expected_size:
            if self.first_response is not None:
                self.first_response.close()
            self.discard()
            raise DownloadError(f"{self.label}: size mismatch: expected {expected_size} bytes, "
                                f"the source has {self.info.size} bytes")
        self._resume_or_start()
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index, (start, end, done) in enumerate(self.ranges):
            if end is None or done < end - start:
                todo.put(index)
        self.threads = min(self.connections, todo.qsize())
        workers = [threading.Thread(target=self._worker, args=(todo,), daemon=True, name=f"fetch-{i}")
                   for i in range(self.threads)]
        for worker in workers:
            worker.start()
        last_save = time.monotonic()
        try:
            while self.error is None and any(worker.is_alive() for worker in workers):
                next(worker for worker in workers if worker.is_alive()).join(_PROGRESS_EVERY)
                self._report()
                if time.monotonic() - last_save >= _SAVE_EVERY:
                    self._save()
                    last_save = time.monotonic()
        finally:  # also on KeyboardInterrupt or an exception from progress: keep what is done
            self.stop.set()
            deadline = time.monotonic() + _STOP_GRACE
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
            if self.first_response is not None:
                self.first_response.close()
            self._save()
        if self.error is not None:
            raise self.error
        done = sum(r[2] for r in self.ranges)
        if self.info.size is not None and done != self.info.size:
            raise DownloadError(f"{self.label}: incomplete: {done} of {self.info.size} bytes")
        self._report(force=True)

    def discard(self) -> None:
        self.partial.unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)

    # state

    def _resume_or_start(self) -> None:
        info = self.info
        state = self._load_state()
        if state is not None:
            same = (
                state.get("version") == _STATE_VERSION and state.get("source") == self.label
                and info.ranges and info.size is not None and (info.etag or info.last_modified)
                and state.get("size") == info.size and state.get("etag") == info.etag
                and state.get("last_modified") == info.last_modified
                and self.partial.exists() and self.partial.stat().st_size == info.size
                and _covers(state.get("ranges"), info.size)
            )
            if same:
                self.ranges = [list(r) for r in state["ranges"]]
                self.resumed = sum(r[2] for r in self.ranges)
                log.info("%s: resuming, %d of %d bytes already there", self.label, self.resumed, info.size)
                return
            log.info("%s: the source changed or cannot be resumed; starting over", self.label)
        self.discard()
        fd = os.open(self.partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if info.size:
                try:
                    os.posix_fallocate(fd, 0, info.size)
                except (AttributeError, OSError):
                    os.ftruncate(fd, info.size)
        finally:
            os.close(fd)
        if info.size is None:
            self.ranges = [[0, None, 0]]
        elif info.ranges:
            count = max(1, min(self.connections, info.size // _MIN_RANGE))
            self.ranges = [[i * info.size // count, (i + 1) * info.size // count, 0] for i in range(count)]
        else:
            self.ranges = [[0, info.size, 0]]
        self._save()

    def _load_state(self) -> dict | None:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("%s: unreadable %s, starting over", self.label, self.state_path)
            return None

    def _save(self) -> None:
        """Record the bytes done; only after they are on disk, so the record never runs ahead of the data."""
        with self.lock:
            ranges = [list(r) for r in self.ranges]
        if not self.partial.exists():
            return
        fd = os.open(self.partial, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        state = {
            "version": _STATE_VERSION, "source": self.label, "size": self.info.size, "etag": self.info.etag,
            "last_modified": self.info.last_modified, "ranges": ranges,
        }
        temporary = self.state_path.with_name(self.state_path.name + ".tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.state_path)

    def _report(self, force: bool = False) -> None:
        if self.progress is not None:
            with self.lock:
                done = sum(r[2] for r in self.ranges)
            total = self.info.size if self.info.size is not None else (done if force else None)
            self.progress(done, total)

    # workers

    def _worker(self, todo: queue.SimpleQueue) -> None:
        try:
            fd = os.open(self.partial, os.O_WRONLY)
            try:
                while not self.stop.is_set():
                    try:
                        index = todo.get_nowait()
                    except queue.Empty:
                        return
                    self._fetch_range(fd, self.ranges[index])
            finally:
                os.close(fd)
        except BaseException as error:  # noqa: BLE001 - kept for the caller's thread, which re-raises it
            with self.lock:
                if self.error is None:
                    self.error = error
            self.stop.set()

    def _fetch_range(self, fd: int, byte_range: list) -> None:
        start, end, _ = byte_range
        failures = 0
        while not self.stop.is_set():
            done = byte_range[2]
            if end is not None and done >= end - start:
                return
            progressed = False
            try:
                response = self._take_first_response()
                if response is None:
                    if not self.info.ranges and done:  # no ranges: a retry starts from the beginning
                        with self.lock:
                            byte_range[2] = done = 0
                    ranged = self.info.ranges and end is not None
                    response = self.source.open(start + done, end if ranged else None, self.info)
                try:
                    while not self.stop.is_set():
                        want = self.chunk_size if end is None else min(self.chunk_size, end - start - byte_range[2])
                        if want <= 0:
                            return
                        data = response.read1(want)
                        if not data:
                            if end is None:  # an unknown size ends where the body ends
                                with self.lock:
                                    byte_range[1] = end = byte_range[2]
                                    self.info.size = end
                                return
                            raise ConnectionError(f"connection closed at byte {start + byte_range[2]} "
                                                  f"of range {start}-{end - 1}")
                        os.pwrite(fd, data, start + byte_range[2])
                        with self.lock:
                            byte_range[2] += len(data)
                        progressed = True
                finally:
                    response.close()
            except (_SourceChanged, DownloadError):
                raise
            except Exception as error:
                if not _retryable(error):
                    raise DownloadError(f"{self.label}: {_describe(error)}") from error
                failures = 1 if progressed else failures + 1
                with self.lock:
                    self.retries += 1
                if failures > self.max_retries:
                    raise DownloadError(f"{self.label}: gave up after {self.max_retries} retries without progress "
                                        f"at byte {start + byte_range[2]}: {_describe(error)}") from error
                log.warning("%s: %s; retrying from byte %d (%d of %d)", self.label, _describe(error),
                            start + byte_range[2], failures, self.max_retries)
                self.stop.wait(min(0.2 * 2 ** (failures - 1), 5.0))

    def _take_first_response(self) -> Any:
        with self.lock:
            response, self.first_response = self.first_response, None
            return response

    def _with_retries(self, what: str, action: Callable[[], Any]) -> Any:
        for attempt in range(self.max_retries + 1):
            try:
                return action()
            except DownloadError:
                raise
            except Exception as error:
                if not _retryable(error):
                    raise DownloadError(f"{self.label}: {_describe(error)}") from error
                if attempt == self.max_retries:
                    raise DownloadError(f"{self.label}: {what}: gave up after {self.max_retries} retries: "
                                        f"{_describe(error)}") from error
                self.retries += 1
                log.warning("%s: %s failed (%s); retrying", self.label, what, _describe(error))
                time.sleep(min(0.2 * 2 ** attempt, 5.0))
        raise AssertionError("unreachable")


# -- helpers -------------------------------------------------------------------------------------


def _retryable(error: BaseException) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code >= 500 or error.code in (408, 429)
    return isinstance(error, (OSError, http.client.HTTPException, urllib.error.URLError))


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _content_range(value: str) -> tuple[int | None, int | None, int | None]:
    match = _CONTENT_RANGE.match(value.strip())
    if not match:
        if value.strip().startswith("bytes */") and value.strip()[8:].isdigit():
            return None, None, int(value.strip()[8:])
        return None, None, None
    return int(match[1]), int(match[2]), None if match[3] == "*" else int(match[3])


def _covers(ranges: Any, size: int) -> bool:
    """The recorded ranges tile [0, size) and their done counts are possible."""
    try:
        position = 0
        for start, end, done in ranges:
            if start != position or end < start or not 0 <= done <= end - start:
                return False
            position = end
        return position == size
    except (TypeError, ValueError):
        return False


def _sha256_of(path: Path, chunk_size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _local_path(destination: str) -> str:
    try:
        return objectstore.filesystem(destination)[1]
    except ValueError as error:
        raise DownloadError(str(error)) from None


def _with_file_name(destination: str, source: str) -> str:
    """A destination folder ("…/" or an existing local folder) plus the source's file name."""
    is_folder = destination.endswith("/")
    if not is_folder and urlparse(destination).scheme in ("", "file"):
        try:
            is_folder = Path(_local_path(destination)).is_dir()
        except DownloadError:
            return destination
    if not is_folder:
        return destination
    name = unquote(urlparse(source).path.rstrip("/").rsplit("/", 1)[-1]) or Path(source).name
    if not name:
        raise DownloadError(f"{source}: no file name to put in the folder {destination}")
    return destination.rstrip("/") + "/" + name


def _upload(path: Path, destination: str, chunk_size: int) -> None:
    filesystem, key = objectstore.filesystem(destination)
    with open(path, "rb") as reader, filesystem.open_output_stream(key) as writer:
        while chunk := reader.read(chunk_size):
            writer.write(chunk)


def _stream_copy(reader: _ArrowSource, destination: str, started: float, expected_size: int | None,
                 sha256: str | None, chunk_size: int, progress: Callable[[int, int | None], None] | None) -> Fetched:
    """A local or s3:// file to s3://, streamed through both filesystems; a bad result is deleted."""
    size = reader.file_info().size
    if expected_size is not None and size != expected_size:
        raise DownloadError(f"{reader.uri}: size mismatch: expected {expected_size} bytes, the source has {size} bytes")
    filesystem, key = objectstore.filesystem(destination)
    digest = hashlib.sha256()
    copied = 0
    reported = 0.0
    with reader.fs.open_input_stream(reader.path) as source, filesystem.open_output_stream(key) as target:
        while chunk := source.read(chunk_size):
            digest.update(chunk)
            target.write(chunk)
            copied += len(chunk)
            if progress is not None and time.monotonic() - reported >= _PROGRESS_EVERY:
                progress(copied, size)
                reported = time.monotonic()
    if progress is not None:
        progress(copied, size)
    expected = sha256.strip().lower() if sha256 else None
    problem = None
    if copied != size or (expected_size is not None and copied != expected_size):
        problem = f"size mismatch: expected {expected_size if expected_size is not None else size} bytes, got {copied} bytes"
    elif expected is not None and digest.hexdigest() != expected:
        problem = f"sha256 mismatch: expected {expected}, got {digest.hexdigest()} ({copied} bytes)"
    if problem:
        filesystem.delete_file(key)
        raise DownloadError(f"{reader.uri}: {problem}")
    return Fetched(source=reader.uri, destination=f"s3://{key}", size=copied, sha256=digest.hexdigest(),
                   resumed_bytes=0, connections=1, seconds=time.monotonic() - started)
