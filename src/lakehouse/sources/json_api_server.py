"""A small JSON API in the shape of an ad platform's reporting API: the demo's and the tests' stand-in.

    with JsonApiServer(folder, keys={"ad_stats": ("ad_id", "date")}) as api:
        GET {api.url}/v1/campaigns?updated_since=2026-11-01T00:00:00+00:00&limit=100
            Authorization: Bearer {api.token}
        -> {"data": [...], "paging": {"next_cursor": "..." | null}}

The records of a resource are the JSON-lines files ``<folder>/<resource>/*.jsonl`` (a pipeline's
generator writes them, one file per day); a later version of a key replaces an earlier one. A page
holds the records with ``updated_at >= updated_since`` ordered by (updated_at, key); ``next_cursor``
is opaque (the filter and the last record served), so a client pages until it is null; a record
changed meanwhile moves behind the cursor and comes again on a later page, and none is skipped.
``limit`` is capped at ``max_page_size``.

Like real APIs it refuses a missing or wrong token (401), limits the request rate (429 with
``Retry-After``, a token bucket of ``rate`` requests per second and ``burst``), and, for tests, can
misbehave on purpose; every attribute may be changed while it runs:
- ``malformed_pages``: {(resource, page number)}: that page's body is cut short (not JSON), always;
- ``fail_pages``: {(resource, page number): times}: that page answers 503 the first ``times`` times;
- ``die_after_pages``: after this many pages in all, every connection is closed without an answer.
It binds 127.0.0.1 on a free port and logs nothing (no tokens in logs).
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import re
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

API_PREFIX = "/v1/"


class JsonApiServer:
    def __init__(self, folder: str | Path, *, keys: dict[str, tuple[str, ...]] | None = None,
                 token: str | None = None, max_page_size: int = 500, rate: float = 50.0, burst: int = 20,
                 retry_after: int = 1):
        self.folder = Path(folder)
        self.keys = dict(keys or {})  # resource -> key fields; default ("id",)
        self.token = token or secrets.token_urlsafe(24)
        self.max_page_size = max_page_size
        self.rate, self.burst, self.retry_after = rate, burst, retry_after
        self.malformed_pages: set[tuple[str, int]] = set()
        self.fail_pages: dict[tuple[str, int], int] = {}
        self.die_after_pages: int | None = None
        self.pages_served = 0
        self.rate_limited = 0  # 429s answered
        self.requests = 0
        self._tokens = float(burst)
        self._refilled = time.monotonic()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Life ----------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the API server is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> JsonApiServer:
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        # A short poll: stop() returns within 50 ms, not serve_forever's default half second.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="json-api-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> JsonApiServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # Data ----------------------------------------------------------------------------------------------

    def records(self, resource: str) -> list[dict]:
        """The current version of every record of ``resource``, ordered by (updated_at, key)."""
        folder = self.folder / resource
        if not folder.is_dir():
            raise KeyError(resource)
        key_fields = self._key_fields(resource)
        latest: dict[str, dict] = {}
        for path in sorted(folder.glob("*.jsonl")):
            for line in path.read_text().splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                latest[json.dumps([record.get(k) for k in key_fields], default=str)] = record
        return sorted(latest.values(), key=lambda record: self._position(resource, record))

    def _key_fields(self, resource: str) -> tuple[str, ...]:
        return tuple(self.keys.get(resource, ("id",)))

    def _position(self, resource: str, record: dict) -> tuple:
        """Where ``record`` sorts: (updated_at, key), by the key's values themselves, not their JSON
        text, as which id 10 would sort before id 9."""
        return _instant(record.get("updated_at")), [_sortable(record.get(k)) for k in self._key_fields(resource)]

    def _take_token(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            self.rate_limited += 1
            return False


def _instant(value) -> dt.datetime:
    """An ISO timestamp as an aware datetime (naive: UTC); a record without one sorts first."""
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _sortable(value) -> tuple:
    """A key value comparable with any other: numbers by value, then anything else by its text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value, "")
    return (0, 0, "") if value is None else (2, 0, str(value))


def _encode(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, sort_keys=True).encode()).decode().rstrip("=")


def _decode(token: str) -> dict:
    padded = token + "=" * (-len(token) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode()))


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # A client that hangs up (a reset keep-alive connection, a retry after a timeout) is not an
        # error of the server: socketserver would print a traceback to stderr for each. Others still do.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    api: JsonApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002 - the signature of the base class
        pass  # quiet: the access log would show query strings to whoever reads the test output

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps({"error": message}).encode(), headers)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        api = self.api
        with api._lock:
            api.requests += 1
            dead = api.die_after_pages is not None and api.pages_served >= api.die_after_pages
        if dead:  # the server went away: no answer at all
            self.close_connection = True
            self.connection.close()
            return
        given = self.headers.get("Authorization") or ""
        if not hmac.compare_digest(given.encode(), f"Bearer {api.token}".encode()):  # no timing hints
            return self._error(401, "missing or wrong bearer token")
        if not api._take_token():
            return self._error(429, "rate limit exceeded", {"Retry-After": str(api.retry_after)})
        url = urlparse(self.path)
        if not url.path.startswith(API_PREFIX):
            return self._error(404, f"no such endpoint {url.path}")
        resource = url.path[len(API_PREFIX):].strip("/")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", resource):  # a name, never a path out of the folder
            return self._error(404, "no such resource")
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        try:
            records = api.records(resource)
        except KeyError:
            return self._error(404, f"no such resource {resource!r}")
        try:
            state = _decode(query["cursor"]) if query.get("cursor") else {
                "since": query.get("updated_since") or "", "after": None, "page": 1}
            limit = max(1, min(int(query.get("limit") or 100), api.max_page_size))
            since = _instant(state["since"]) if state["since"] else None
            served = state["after"]  # [updated_at, key values] of the last record served, or None
            after = (_instant(served[0]), [_sortable(value) for value in served[1]]) if served else None
            page_number = int(state["page"])
        except (ValueError, TypeError, KeyError, IndexError):  # JSONDecodeError and binascii.Error are ValueErrors
            return self._error(400, "bad cursor or limit")
        if state["since"] and since == dt.datetime.min.replace(tzinfo=dt.UTC):
            return self._error(400, f"updated_since must be an ISO timestamp, got {state['since']!r}")
        selected = [r for r in records if _instant(r.get("updated_at")) >= since] if since else records
        # After the last record served, not at an offset: an offset skips a record whenever one served
        # before it is updated (and so moves behind it) while the client pages; the next run's cursor is
        # past the skipped one, so it would never be copied.
        if after is not None:
            selected = [r for r in selected if api._position(resource, r) > after]
        with api._lock:
            failures = api.fail_pages.get((resource, page_number), 0)
            if failures:
                api.fail_pages[(resource, page_number)] = failures - 1
        if failures:
            return self._error(503, "temporarily unavailable")
        page = selected[:limit]
        # The filter as the client sent it (text): the parsed datetime is not JSON and broke every
        # next page of a filtered request.
        next_cursor = _encode({
            "since": state["since"], "page": page_number + 1,
            "after": [_instant(page[-1].get("updated_at")).isoformat(),
                      [page[-1].get(k) for k in api._key_fields(resource)]],
        }) if len(selected) > limit else None
        body = json.dumps({"data": page, "paging": {"next_cursor": next_cursor}}).encode()
        if (resource, page_number) in api.malformed_pages:
            body = body[: max(1, len(body) // 2)]  # a page cut short: not JSON
        with api._lock:
            api.pages_served += 1
        self._send(200, body)
