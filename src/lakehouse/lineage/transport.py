"""OpenLineage transports of the lakehouse (the client builds them from the transport JSON by class path).

- JsonLinesTransport: every event as one line of a JSON-lines file, appended under an exclusive lock in a
  single write, so the task processes of a LocalExecutor or `lakehouse ui` run never interleave lines
  (the client's own file transport writes through a buffered file object, in pieces for large events).
- EnvApiKeyTokenProvider: the HTTP transport's bearer token, read from LAKEHOUSE_LINEAGE_API_KEY when
  an event is sent. The key is never part of any configuration, so it cannot reach Airflow's config
  dumps, the transport's debug log or a process listing; it is also handed to Airflow's secrets
  masker, so a log line that contained it would show *** instead.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import attr
from openlineage.client.serde import Serde
from openlineage.client.transport.http import TokenProvider
from openlineage.client.transport.transport import Config, Transport

API_KEY_VARIABLE = "LAKEHOUSE_LINEAGE_API_KEY"


@attr.define
class JsonLinesConfig(Config):
    path: str = ""

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> JsonLinesConfig:
        if not params.get("path"):
            raise ValueError("the lakehouse JSON-lines transport needs a 'path'")
        return cls(path=str(params["path"]))


class JsonLinesTransport(Transport):
    kind = "lakehouse_jsonl"
    config_class = JsonLinesConfig

    def __init__(self, config: JsonLinesConfig) -> None:
        self.config = config

    def emit(self, event: Any) -> None:
        append_line(Path(self.config.path), Serde.to_json(event))


def append_line(path: Path, text: str) -> None:
    """Append ``text`` and a newline to ``path`` atomically with respect to other writers of this function."""
    data = memoryview((text.replace("\n", " ") + "\n").encode())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)  # also releases the lock


def _mask(secret: str) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # outside Airflow: nothing to register with
        return
    try:
        mask_secret(secret, API_KEY_VARIABLE)
    except Exception:  # noqa: BLE001 - masking is a safety net, never a reason to lose an event
        pass


class EnvApiKeyTokenProvider(TokenProvider):
    """``Authorization: Bearer <LAKEHOUSE_LINEAGE_API_KEY>`` (DataHub personal access tokens, Marquez
    behind a proxy); no header when the variable is empty."""

    def __init__(self, config: dict[str, str]) -> None:
        self.variable = str(config.get("variable") or API_KEY_VARIABLE)

    def get_bearer(self) -> str | None:
        key = os.environ.get(self.variable, "").strip()
        if not key:
            return None
        _mask(key)
        return f"Bearer {key}"

    def __repr__(self) -> str:
        return f"EnvApiKeyTokenProvider(variable={self.variable!r})"
