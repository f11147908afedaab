"""The embedded JSON API server alone, over JSON-lines files this module writes: what a client paging
through it gets, and how it refuses and misbehaves. Expected records come from the test's own data,
never from the server's code."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from lakehouse.sources.json_api_server import JsonApiServer

# Two days of one resource: key 2 is updated on the second day; ids 9 and 10 tie on updated_at, so the
# key decides their order (as numbers: 9 before 10).
DAY_ONE = [
    {"id": 1, "name": "a", "updated_at": "2026-11-01T08:00:00+00:00"},
    {"id": 10, "name": "j", "updated_at": "2026-11-01T09:00:00+00:00"},
    {"id": 2, "name": "b", "updated_at": "2026-11-01T09:00:00+00:00"},
    {"id": 9, "name": "i", "updated_at": "2026-11-01T09:00:00+00:00"},
    {"id": 3, "name": "c", "updated_at": "2026-11-01T07:00:00+00:00"},
    {"id": 4, "name": "d", "updated_at": "2026-11-01T10:00:00+00:00"},
]
DAY_TWO = [
    {"id": 2, "name": "b, renamed", "updated_at": "2026-11-02T06:00:00+00:00"},
    {"id": 5, "name": "e", "updated_at": "2026-11-02T05:00:00+02:00"},  # 03:00 UTC
    {"id": 6, "name": "f", "updated_at": "2026-11-02T12:00:00"},  # no offset: UTC
]
# The current version of each key, in (updated_at, id) order, worked out by hand.
EXPECTED_IDS = [3, 1, 9, 10, 4, 5, 2, 6]


def write_jsonl(folder: Path, resource: str, day: str, records: list[dict]) -> None:
    (folder / resource).mkdir(parents=True, exist_ok=True)
    (folder / resource / f"{day}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def folder(tmp_path) -> Path:
    write_jsonl(tmp_path, "things", "2026-11-01", DAY_ONE)
    write_jsonl(tmp_path, "things", "2026-11-02", DAY_TWO)
    return tmp_path


@pytest.fixture
def api(folder):
    with JsonApiServer(folder, token="s3cret-token") as server:
        yield server


def get(api: JsonApiServer, path: str = "/v1/things", token: str | None = "", **params) -> requests.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token or api.token}"}
    return requests.get(f"{api.url}{path}", params=params, headers=headers, timeout=5)


def pages(api: JsonApiServer, **params) -> list[list[dict]]:
    """Every page of /v1/things with ``params``, following next_cursor until it is null."""
    found, cursor = [], None
    while True:
        response = get(api, **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        found.append(body["data"])
        cursor = body["paging"]["next_cursor"]
        if cursor is None:
            return found
        assert len(found) < 50, "the server pages forever"


def test_paging_returns_every_current_record_once_in_updated_at_then_key_order(api):
    got = pages(api, limit=3)
    assert [len(page) for page in got] == [3, 3, 2]
    records = [record for page in got for record in page]
    assert [r["id"] for r in records] == EXPECTED_IDS
    # The later version of key 2 replaced the earlier one.
    assert [r["name"] for r in records if r["id"] == 2] == ["b, renamed"]
    assert api.pages_served == 3 and api.rate_limited == 0


def test_updated_since_is_inclusive_and_kept_across_pages(api):
    # 09:00 is exactly the updated_at of ids 9 and 10 (and of 2's replaced first version).
    got = pages(api, limit=2, updated_since="2026-11-01T09:00:00+00:00")
    assert [r["id"] for page in got for r in page] == [9, 10, 4, 5, 2, 6]
    # An offset other than UTC means the same instant.
    got = pages(api, limit=1, updated_since="2026-11-02T08:00:00+02:00")  # 06:00 UTC: 2's new version
    assert [r["id"] for page in got for r in page] == [2, 6]
    assert pages(api, updated_since="2027-01-01T00:00:00+00:00") == [[]]


def test_a_record_updated_while_a_client_pages_is_not_skipped(api, folder):
    first = get(api, limit=3).json()
    assert [r["id"] for r in first["data"]] == [3, 1, 9]
    # Record 3, already served, changes: it moves to the end. Nothing after the cursor may shift past it.
    write_jsonl(folder, "things", "2026-11-03", [{"id": 3, "name": "c2", "updated_at": "2026-11-03T00:00:00+00:00"}])
    rest, cursor = [], first["paging"]["next_cursor"]
    while cursor:
        body = get(api, limit=3, cursor=cursor).json()
        rest += body["data"]
        cursor = body["paging"]["next_cursor"]
    assert [r["id"] for r in rest] == [10, 4, 5, 2, 6, 3]
    assert rest[-1]["name"] == "c2"


def test_a_missing_or_wrong_token_is_refused_without_echoing_it(api):
    missing = get(api, token=None)
    wrong = get(api, token="not-the-token")
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json() == {"error": "missing or wrong bearer token"}
    assert "not-the-token" not in wrong.text and api.token not in wrong.text
    assert api.pages_served == 0


def test_an_empty_bucket_answers_429_with_retry_after(folder):
    with JsonApiServer(folder, burst=2, rate=0.01, retry_after=7) as api:
        assert [get(api, limit=1).status_code for _ in range(3)] == [200, 200, 429]
        limited = get(api, limit=1)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
        assert api.rate_limited == 2 and api.pages_served == 2


def test_a_malformed_page_is_cut_short_every_time(api):
    api.malformed_pages = {("things", 2)}
    first = get(api, limit=3)
    assert first.status_code == 200 and len(first.json()["data"]) == 3
    for _ in range(2):
        second = get(api, limit=3, cursor=first.json()["paging"]["next_cursor"])
        assert second.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(second.text)
        assert second.text.startswith('{"data": [')


def test_a_failing_page_answers_503_the_given_number_of_times(api):
    api.fail_pages = {("things", 1): 2}
    assert [get(api, limit=3).status_code for _ in range(3)] == [503, 503, 200]
    assert api.fail_pages == {("things", 1): 0}


def test_after_die_after_pages_every_connection_is_closed_unanswered(api):
    api.die_after_pages = 1
    assert get(api, limit=3).status_code == 200
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            get(api, limit=3)
    assert api.requests == 3 and api.pages_served == 1


def test_limit_is_capped_at_max_page_size(folder):
    with JsonApiServer(folder, max_page_size=2) as api:
        assert len(get(api, limit=500).json()["data"]) == 2
        assert len(get(api, limit=0).json()["data"]) == 1  # at least one


def test_unknown_resources_and_bad_parameters_are_refused(api):
    assert get(api, path="/v1/nothing").status_code == 404
    assert get(api, path="/v2/things").status_code == 404
    bad_since = get(api, updated_since="yesterday")
    assert bad_since.status_code == 400 and "updated_since must be an ISO timestamp" in bad_since.text
    assert get(api, limit="ten").status_code == 400
    assert get(api, cursor="not-a-cursor").status_code == 400


def test_it_is_quick_to_stop(folder):
    started = time.monotonic()
    with JsonApiServer(folder) as api:
        get(api)
    assert time.monotonic() - started < 1
