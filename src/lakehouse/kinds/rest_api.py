"""The ``rest_api`` ingest kind: a paginated JSON API's resources, copied incrementally, as Airbyte does.

One declared entry names an API and its resources and stands for one ingest task per resource
(``expand``), landing in ``raw.<prefix><resource>`` (default prefix ``<entry name>_``). Each task asks
for the records changed since the cursor kept in the raw table (lakehouse.sync.state), follows the
pagination, retries 429 (honouring Retry-After), 5xx and dropped connections with backoff (dlt's REST
client: lakehouse.sync.rest), types the records by the resource's declared ``columns``
(lakehouse.sync.records), and commits them merged by ``primary_key`` with the new cursor in one
snapshot (lakehouse.sync.landing). Records that are not of the declared columns go to
``quarantine.rejected_<ingest name>`` with the reason. An API has no delete feed: deletes are stated
as not detected (an ad platform archives by status; its stats are restated, never removed).

Where the API is: ``base_url``, or the Airflow connection ``conn_id`` (its host, and its password as
the bearer token). The token otherwise comes from the environment variable ``token_variable``; it
never appears in pipeline.yml or a log. With ``base_url`` empty and ``simulate`` on, the task first
runs the pipeline's ``generator(day, **generator_args)`` and serves the records it wrote under
``<lakehouse home>/<demo_folder>`` with the embedded API server (lakehouse.sources.json_api_server) for
the task's duration: the demo's stand-in for the real platform, with a token made for the run.

A resource: ``{name:, path: (default /v1/<name>), primary_key: [id], cursor_field: updated_at, columns:
{field: type}}``; types are those of lakehouse.sync.records.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

from .base import IngestKind, InvalidOptions, Option, is_template

log = logging.getLogger(__name__)
RESOURCE_FIELDS = ("name", "path", "primary_key", "cursor_field", "columns")


class RestApiIngest(IngestKind):
    name = "rest_api"
    OPTIONS = {
        "base_url": Option(str, default="", help="the API's base URL; empty: the Airflow connection, else the demo server"),
        "conn_id": Option(str, default="", help="an Airflow HTTP connection: host as base URL, password as token"),
        "token_variable": Option(str, default="", help="the environment variable holding the bearer token"),
        "resources": Option(list, default=[], help="the resources copied: {name, path, primary_key, cursor_field, columns}"),
        "resource": Option(dict, help="the one resource of this task (set by the expansion)"),
        "prefix": Option(str, help="of the raw tables' names; default '<entry name>_'"),
        "page_size": Option(int, default=100, minimum=1, help="records asked for per page"),
        "cursor_param": Option(str, default="updated_since", help="the query parameter the cursor is sent as"),
        "data_selector": Option(str, default="data", help="where a page's records are in its body"),
        "next_cursor_path": Option(str, default="paging.next_cursor", help="where the next page's cursor is"),
        "cursor_request_param": Option(str, default="cursor", help="the query parameter the page cursor is sent as"),
        "max_attempts": Option(int, default=5, minimum=1, help="tries of a request (429, 5xx, connection errors)"),
        "lookback_seconds": Option(int, default=0, minimum=0,
                                   help="ask again this far before the cursor (an API that stamps records late)"),
        "backoff_seconds": Option(float, default=1.0, minimum=0, help="exponential backoff factor between tries"),
        "simulate": Option(bool, default=False,
                           help="demo: the generator writes the day's records, the embedded server serves them"),
        "generator": Option(str, help="'file.py:function(day, **generator_args)' writing the demo's records"),
        "generator_args": Option(dict, default={}, help="keyword arguments of the generator"),
        "demo_folder": Option(str, default="", help="under the lakehouse home: the records the demo server serves"),
    }
    CODE_OPTIONS = ("generator",)

    @classmethod
    def _resource(cls, spec: Any, where: str) -> dict[str, Any]:
        from ..identifiers import InvalidIdentifier, validate_identifier
        from ..sync import SyncError
        from ..sync.records import arrow_type

        if not isinstance(spec, dict) or not spec.get("name"):
            raise InvalidOptions(f"{where}: a resource must be a mapping with a 'name', got {spec!r}")
        unknown = set(spec) - set(RESOURCE_FIELDS)
        if unknown:
            raise InvalidOptions(f"{where} resource {spec['name']!r}: unknown field(s) {sorted(unknown)}; "
                                 f"its fields: {', '.join(RESOURCE_FIELDS)}")
        resource = {"path": f"/v1/{spec['name']}", "primary_key": ["id"], "cursor_field": "updated_at", **spec}
        columns = resource.get("columns")
        label = f"{where} resource {spec['name']!r}"
        if not isinstance(columns, dict) or not columns:
            raise InvalidOptions(f"{label}: 'columns' must map each field landed to its type")
        try:
            validate_identifier(str(resource["name"]), "resource name")
            for column, kind in columns.items():
                validate_identifier(str(column), "column name")
                arrow_type(kind)
        except (InvalidIdentifier, SyncError) as error:
            raise InvalidOptions(f"{label}: {error}") from None
        for column in (*resource["primary_key"], resource["cursor_field"]):
            if column not in columns:
                raise InvalidOptions(f"{label}: key or cursor field {column!r} is not among its columns")
        return resource

    @classmethod
    def check(cls, options: dict[str, Any], where: str, rendered: bool) -> None:
        for spec in options["resources"] or []:
            cls._resource(spec, where)
        if options.get("resource") and not is_template(options["resource"]):
            cls._resource(options["resource"], where)

    @classmethod
    def expand(cls, entry: dict[str, Any], folder: Path, where: str) -> list[dict[str, Any]]:
        """One ingest entry per resource: named ``<entry>_<resource>``, landing in ``raw.<prefix><resource>``."""
        options = dict(entry.get("options") or {})
        if "table" in entry or options.get("resource"):
            return [entry]
        label = f"{where} ingest '{entry.get('name')}'"
        resources = options.pop("resources", None)
        if not resources or not isinstance(resources, list):
            raise InvalidOptions(f"{label}: option 'resources' must list the API's resources to copy")
        prefix = options.get("prefix")
        prefix = f"{entry.get('name')}_" if prefix is None else prefix
        return [{
            "name": f"{entry.get('name')}_{spec.get('name')}" if isinstance(spec, dict) else str(entry.get("name")),
            "table": f"raw.{prefix}{spec.get('name') if isinstance(spec, dict) else spec}",
            "kind": cls.name,
            "options": {**options, "resource": spec},
            "partition_by": entry.get("partition_by"),
            "engines": entry.get("engines"),
        } for spec in resources]

    def _connection(self) -> tuple[str, str | None]:
        """(base URL, token) from the options, the Airflow connection or the environment."""
        options = self.options
        base_url, token = options["base_url"], None
        if options["conn_id"]:
            try:
                from airflow.sdk import BaseHook

                connection = BaseHook.get_connection(options["conn_id"])
                base_url = base_url or (connection.host or "")
                token = connection.password or None
            except Exception:  # noqa: BLE001 - not defined: the options and the environment decide
                log.debug("no Airflow connection %s", options["conn_id"])
        if options["token_variable"]:
            token = token or os.environ.get(options["token_variable"]) or None
        return base_url, token

    @contextlib.contextmanager
    def _api(self, day: dt.date):
        from ..loader import load_callable
        from ..settings import load_settings
        from ..sources.json_api_server import JsonApiServer

        base_url, token = self._connection()
        if base_url:
            yield base_url, token, base_url
            return
        options = self.options
        if not options["simulate"]:
            raise InvalidOptions(f"{self.pipeline.declaration} ingest '{self.source.name}': no API to read: set "
                                 "option 'base_url' or an Airflow connection 'conn_id' (or 'simulate' for the demo)")
        # Loud: with simulate on and no API configured, what lands is the demo's generated records.
        log.warning("%s: no API configured (base_url, Airflow connection %r): serving the demo's generated records; "
                    "set simulate: false for a real platform", self.source.name, options["conn_id"])
        generate = load_callable(options["generator"], self.pipeline.folder, "generator")
        log.info("simulated the day for the demo API: %s", generate(day, **(options["generator_args"] or {})))
        resource = self._resource(options["resource"], self.source.name)
        folder = load_settings().home / options["demo_folder"]
        with JsonApiServer(folder, keys={resource["name"]: tuple(resource["primary_key"])}) as server:
            # Named for lineage by what it serves, not by its port, which changes every run.
            yield server.url, server.token, f"http://lakehouse-demo-api/{options['demo_folder'].strip('/')}"

    def land(self, day: dt.date, run_id: str | None) -> dict[str, Any]:
        from ..sync import landing, rest

        options = self.options
        resource = self._resource(options["resource"], f"{self.pipeline.declaration} ingest '{self.source.name}'")
        target = landing.Target(
            table=self.source.table, key=list(resource["primary_key"]), cursor_column=resource["cursor_field"],
            quarantine=f"quarantine.rejected_{self.source.name}", partition_by=self.source.partition_by,
            properties={"lakehouse.pipeline": self.pipeline.name, "lakehouse.ingest": self.source.name,
                        "lakehouse.run_id": run_id or "", "lakehouse.sync.source": resource["path"]},
            lookback=dt.timedelta(seconds=options["lookback_seconds"]) if options["lookback_seconds"] else None)
        with self._api(day) as (base_url, token, identity):
            api = rest.Api(base_url=base_url, token=token, page_size=options["page_size"],
                           cursor_param=options["cursor_param"], data_selector=options["data_selector"],
                           next_cursor_path=options["next_cursor_path"],
                           cursor_request_param=options["cursor_request_param"],
                           max_attempts=options["max_attempts"], backoff_seconds=options["backoff_seconds"])
            summary = landing.land_increment(
                target, lambda state: rest.extract(api, resource["path"], resource["columns"], state,
                                                  resource["primary_key"], resource["cursor_field"]), day)
        return {**summary, "api": identity, "deletes": "not detected (the API has no delete feed)"}

    def lineage_inputs(self, day: dt.date, result: dict[str, Any] | None) -> list:
        """The resource's endpoint, as an http dataset (namespace the API's origin, name its path)."""
        from urllib.parse import urlparse

        from openlineage.client.event_v2 import InputDataset

        resource = self.options.get("resource") or {}
        base_url = (result or {}).get("api") or self._connection()[0] or "http://lakehouse-demo-api"
        origin = urlparse(base_url)
        endpoint = str(resource.get("path") or f"/v1/{resource.get('name')}").lstrip("/")
        path = f"{origin.path.rstrip('/')}/{endpoint}"
        return [InputDataset(namespace=f"{origin.scheme}://{origin.netloc}", name=path)]
