"""Extraction from a paginated JSON API with dlt's REST client: the records changed since the cursor.

dlt's RESTClient follows the API's cursor pagination (``next_cursor_path`` in the body, sent back as
``cursor_request_param``) and its requests client retries what is worth retrying: 429 honouring
``Retry-After``, 5xx and dropped connections, with exponential backoff. The cursor is sent as
``cursor_param`` (``updated_since=<ISO timestamp>``, inclusive); the state it comes from is the raw
table's (lakehouse.sync.state).

A page that is not JSON cannot be paged past (the next cursor is inside it): the run stops, the page's
text is quarantined with the reason, and nothing else is landed, so the rerun asks for the same
window again. An API that stops answering fails the run the same way. Records that are JSON but not
of the declared columns are quarantined one by one and the run goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from . import SyncError, quiet_dlt
from .landing import Increment, Rejected
from .records import type_records
from .state import CursorState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Api:
    base_url: str
    token: str | None
    page_size: int = 100
    cursor_param: str = "updated_since"
    data_selector: str = "data"
    next_cursor_path: str = "paging.next_cursor"
    cursor_request_param: str = "cursor"
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    timeout_seconds: float = 30.0


def _cursor_text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def extract(api: Api, path: str, columns: dict[str, str], state: CursorState, key: list[str] = (),
            cursor: str | None = None) -> Increment:
    """Every page of ``path`` changed since ``state.cursor`` (all of it on a first run), typed by ``columns``."""
    quiet_dlt()
    from dlt.sources.helpers.requests import Client
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
    from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator

    session = Client(request_timeout=api.timeout_seconds, request_max_attempts=api.max_attempts,
                     request_backoff_factor=api.backoff_seconds, request_max_retry_delay=60,
                     raise_for_status=False).session
    client = RESTClient(base_url=api.base_url, auth=BearerTokenAuth(api.token) if api.token else None,
                        paginator=JSONResponseCursorPaginator(cursor_path=api.next_cursor_path,
                                                              cursor_param=api.cursor_request_param),
                        data_selector=api.data_selector, session=session)
    params: dict[str, Any] = {"limit": api.page_size}
    if state.cursor is not None:
        params[api.cursor_param] = _cursor_text(state.cursor)
    seen: list = []  # the last response, to quarantine a page that is not JSON

    def keep(response, *args, **kwargs):  # runs after dlt's retries, on the response they settled on
        seen[:] = [response]
        response.raise_for_status()

    records: list[Any] = []
    pages = 0
    where = f"{api.base_url.rstrip('/')}/{path.lstrip('/')}"
    try:
        for page in client.paginate(path, params=params, hooks={"response": [keep]}):
            pages += 1
            records.extend(page)
    except ValueError as error:  # the body of a 200 is not JSON (requests' JSONDecodeError is a ValueError)
        text = seen[0].text if seen else ""
        reason = f"page {pages + 1} of {where} is not JSON: {error}"
        return Increment(rows=type_records([], columns)[0], rejected=[Rejected(text, reason)],
                         details={"pages": pages}, failure=reason + "; nothing was landed, the next run asks again")
    except Exception as error:  # noqa: BLE001 - HTTP and connection errors after dlt's retries
        status = getattr(getattr(error, "response", None), "status_code", None)
        # dlt retries only 429, 5xx and dropped connections: any other answer (a 401) was asked once,
        # and saying "after 5 attempts" would send the reader looking for a flaky API.
        attempts = api.max_attempts if status is None or status == 429 or status >= 500 else 1
        hint = "; check the API's token" if status in (401, 403) else ""
        raise SyncError(f"{where} failed after {pages} page(s) and {attempts} attempt(s): "
                        f"{type(error).__name__}: {error}{hint}; nothing was landed (the next run starts from the "
                        "same cursor)") from error
    rows, rejected, undeclared = type_records(records, columns, tuple(key), cursor)
    if undeclared:
        log.warning("%s returns fields no column declares (not landed): %s", where, ", ".join(sorted(undeclared)))
    return Increment(rows=rows, rejected=rejected,
                     details={"pages": pages, "undeclared_fields": sorted(undeclared)})
