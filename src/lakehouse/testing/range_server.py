"""A small threaded HTTP file server with byte ranges, for tests and the download benchmark.

    with RangeServer({"data.bin": b"..."}, bandwidth=1_000_000) as server:
        fetch(server.url("data.bin"), "/tmp/data.bin")
        server.bytes_served  # body bytes sent so far

It answers HEAD and GET with Content-Length, ETag, Last-Modified and (unless ``ranges=False``)
``Accept-Ranges: bytes``, single ``Range: bytes=a-b`` requests with 206 and Content-Range, 416 for
ranges past the end, and honours If-Range. To imitate real servers it can cap the bandwidth of each
connection (``bandwidth`` bytes/s) and drop connections after ``drop_after`` body bytes, either for
the first ``drop_requests`` responses or at random (``drop_probability`` with ``seed``).
Every attribute may be changed while it runs (e.g. lift the cap for a second download).
"""

from __future__ import annotations

import email.utils
import hashlib
import random
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_SLICE = 16 * 1024  # bytes written at a time (the unit of throttling and dropping)


def generated(size: int, seed: int = 0) -> bytes:
    """``size`` pseudo-random bytes, the same for the same seed."""
    return random.Random(seed).randbytes(size)


class RangeServer:
    def __init__(
        self,
        files: dict[str, bytes | Path | str] | None = None,
        *,
        ranges: bool = True,
        bandwidth: float | None = None,
        drop_after: int | None = None,
        drop_requests: int | None = None,
        drop_probability: float = 0.0,
        seed: int = 0,
    ):
        self.ranges = ranges
        self.bandwidth = bandwidth  # bytes per second per connection; None: as fast as possible
        self.drop_after = drop_after  # close the connection after this many body bytes ...
        self.drop_requests = drop_requests  # ... for this many responses (None: every one, if no probability)
        self.drop_probability = drop_probability  # ... or at random with this probability
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._files: dict[str, tuple[bytes | Path, str, str]] = {}
        self.bytes_served = 0
        self.drops = 0  # connections dropped so far
        self._drop_decisions = 0
        self._generation = 0  # requests started before the last reset_counters() are not counted
        self.requests: list[dict] = []  # method, name, range, status, bytes, dropped of every request
        for name, content in (files or {}).items():
            self.put(name, content)
        self._httpd: ThreadingHTTPServer | None = None

    # -- content -------------------------------------------------------------------------------

    def put(self, name: str, content: bytes | Path | str) -> None:
        """Serve ``content`` (bytes, or a file path) as ``name``; replacing a file changes its ETag."""
        if isinstance(content, (bytes, bytearray, memoryview)):
            content = bytes(content)
            tag = hashlib.sha256(content).hexdigest()[:20]
        else:
            content = Path(content)
            stat = content.stat()
            tag = f"{stat.st_size:x}-{stat.st_mtime_ns:x}"
        with self._lock:
            self._files[name] = (content, f'"{tag}"', email.utils.formatdate(time.time(), usegmt=True))

    def put_generated(self, name: str, size: int, seed: int = 0) -> bytes:
        data = generated(size, seed)
        self.put(name, data)
        return data

    def reset_counters(self) -> None:
        """Forget what was served so far (requests still running from before are not counted either)."""
        with self._lock:
            self._generation += 1
            self.bytes_served = 0
            self.drops = 0
            self._drop_decisions = 0
            self.requests = []

    # -- lifecycle -----------------------------------------------------------------------------

    def url(self, name: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/{quote(name)}"

    def __enter__(self) -> RangeServer:
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- used by the handler -------------------------------------------------------------------

    def _lookup(self, name: str):
        with self._lock:
            return self._files.get(name)

    def _should_drop(self, length: int) -> bool:
        if self.drop_after is None or length <= self.drop_after:
            return False
        with self._lock:
            if self.drop_probability:
                drop = self._random.random() < self.drop_probability
            else:
                drop = self.drop_requests is None or self._drop_decisions < self.drop_requests
            self._drop_decisions += drop
            return drop

    def _record(self, generation: int, **request) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self.requests.append(request)
            self.bytes_served += request["bytes"]
            self.drops += request["dropped"]


class _Handler(BaseHTTPRequestHandler):
    owner: RangeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        server = self.owner
        name = unquote(urlparse(self.path).path.lstrip("/"))
        entry = server._lookup(name)
        requested = self.headers.get("Range")
        record = {"generation": server._generation, "method": self.command, "name": name, "range": requested,
                  "bytes": 0, "dropped": False}
        if entry is None:
            self._reply(404, {}, record)
            return
        content, etag, modified = entry
        size = len(content) if isinstance(content, bytes) else content.stat().st_size
        headers = {"ETag": etag, "Last-Modified": modified, "Accept-Ranges": "bytes" if server.ranges else "none"}
        start, end = 0, size  # end exclusive
        status = 200
        if_range = self.headers.get("If-Range")
        if requested and server.ranges and (if_range is None or if_range in (etag, modified)):
            match = _RANGE.match(requested.strip())
            if match and (match[1] or match[2]):
                if match[1]:
                    start = int(match[1])
                    end = min(size, int(match[2]) + 1) if match[2] else size
                else:  # suffix: the last N bytes
                    start = max(0, size - int(match[2]))
                if start >= size or start >= end:
                    headers["Content-Range"] = f"bytes */{size}"
                    self._reply(416, headers, record)
                    return
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        self._reply(status, headers, record, length=end - start, send=body)
        if body:
            self._send_body(content, start, end, record)
        server._record(**record)

    def _reply(self, status: int, headers: dict, record: dict, length: int = 0, send: bool = True) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        record["status"] = status
        if status >= 400:
            self.owner._record(**record)

    def _send_body(self, content: bytes | Path, start: int, end: int, record: dict) -> None:
        server = self.owner
        limit = server.drop_after if server._should_drop(end - start) else None
        started = time.monotonic()
        sent = 0
        handle = None if isinstance(content, bytes) else open(content, "rb")
        try:
            while start + sent < end:
                size = min(_SLICE, end - start - sent)
                if limit is not None:
                    size = min(size, limit - sent)
                if handle is None:
                    piece = content[start + sent:start + sent + size]
                else:
                    handle.seek(start + sent)
                    piece = handle.read(size)
                self.wfile.write(piece)
                sent += len(piece)
                record["bytes"] = sent
                if limit is not None and sent >= limit:
                    record["dropped"] = True
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if server.bandwidth:  # sleep until the connection is back to its allowed pace
                    ahead = sent / server.bandwidth - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:  # the client went away
            self.close_connection = True
        finally:
            if handle is not None:
                handle.close()
