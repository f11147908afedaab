"""Provision every pipeline's dashboards into Superset over its REST API, idempotently.

Per dashboard file: check it against the BI copy of the marts (lakehouse.bi.dashboards), and if what it
describes changed since the last provision (a digest kept in ``<home>/bi/provisioned.json``) or Superset
lost it, import its bundle as assets (the same uuids: the same objects, updated in place) and delete
the charts and datasets it no longer has. An unchanged dashboard is not touched at all. A file that fails
its check is reported with its file, chart and column; the other dashboards still provision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..processes import read_json, write_json
from ..settings import Settings, load_settings
from . import dashboards as specs
from .serving import serving_path

TIMEOUT = 60


class SupersetError(RuntimeError):
    pass


@dataclass
class ProvisionReport:
    imported: list[str] = field(default_factory=list)  # dashboard slugs (re)imported
    unchanged: list[str] = field(default_factory=list)
    removed_charts: list[str] = field(default_factory=list)  # chart uuids deleted
    errors: list[str] = field(default_factory=list)  # one message per dashboard file that failed
    skipped: bool = False  # Superset was not running: nothing provisioned

    @property
    def ok(self) -> bool:
        return not self.errors

    def describe(self) -> str:
        if self.skipped:
            return "dashboards: Superset is not running; `lakehouse bi start` provisions them"
        lines = [f"dashboards: {len(self.imported)} provisioned, {len(self.unchanged)} unchanged"
                 + (f", {len(self.removed_charts)} removed charts deleted" if self.removed_charts else "")]
        return "\n".join(lines + [f"error: {message}" for message in self.errors])


class SupersetClient:
    """A logged-in session on Superset's REST API (JWT plus the CSRF token its POST/PUT/DELETE need)."""

    def __init__(self, url: str, username: str, password: str):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        login = self.session.post(f"{self.url}/api/v1/security/login", timeout=TIMEOUT,
                                  json={"username": username, "password": password, "provider": "db", "refresh": False})
        if login.status_code != 200:
            raise SupersetError(f"login to {self.url} as {username} failed: HTTP {login.status_code}")
        self.session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        csrf = self.get("/api/v1/security/csrf_token/")["result"]
        self.session.headers.update({"X-CSRFToken": csrf, "Referer": self.url})

    def _check(self, response: requests.Response, what: str) -> dict[str, Any]:
        if response.status_code >= 400:
            raise SupersetError(f"{what}: HTTP {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else {}

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self._check(self.session.get(f"{self.url}{path}", params=params, timeout=TIMEOUT), f"GET {path}")

    def delete(self, path: str) -> None:
        self._check(self.session.delete(f"{self.url}{path}", timeout=TIMEOUT), f"DELETE {path}")

    def import_assets(self, bundle: bytes) -> None:
        # The assets import, not the dashboard import: that one overwrites the dashboard but keeps the
        # charts and datasets it already has (Superset 6.1), so an edited chart would never change.
        response = self.session.post(f"{self.url}/api/v1/assets/import/", timeout=TIMEOUT,
                                     files={"bundle": ("bundle.zip", bundle, "application/zip")})
        self._check(response, "import")

    def find(self, resource: str, uuid: str) -> int | None:
        """The id of the chart / dataset / dashboard with this uuid, or None."""
        query = f"(filters:!((col:uuid,opr:eq,value:'{uuid}')),columns:!(id))"
        found = self.get(f"/api/v1/{resource}/", q=query)["result"]
        return found[0]["id"] if found else None

    def dashboard(self, slug: str) -> dict[str, Any] | None:
        response = self.session.get(f"{self.url}/api/v1/dashboard/{slug}", timeout=TIMEOUT)
        if response.status_code == 404:
            return None
        return self._check(response, f"GET dashboard {slug}")["result"]


def _state_file(settings: Settings) -> Path:
    return settings.home / "bi" / "provisioned.json"


def load_dashboards(settings: Settings, report: ProvisionReport, pipelines: list[str] | None = None) -> list[specs.Dashboard]:
    """Every pipeline's dashboard files, checked against the BI copy of the marts; failures go to report."""
    import duckdb

    from ..pipeline import discover_pipelines

    loaded = []
    con = duckdb.connect(str(serving_path(settings)), read_only=True, config=dict(specs.CONNECT_ARGS["config"]))
    try:
        for pipeline in discover_pipelines(settings):
            if pipelines is not None and pipeline.name not in pipelines:
                continue
            for file in specs.dashboard_files(pipeline.folder):
                try:
                    dashboard = specs.load_dashboard(file, pipeline.name)
                    specs.check_columns(dashboard, con)
                except specs.DashboardError as error:
                    report.errors.append(str(error))
                    continue
                loaded.append(dashboard)
    finally:
        con.close()
    return loaded


def provision(client: SupersetClient, settings: Settings | None = None, pipelines: list[str] | None = None) -> ProvisionReport:
    settings = settings or load_settings()
    report = ProvisionReport()
    state_file = _state_file(settings)
    state = read_json(state_file)
    for dashboard in load_dashboards(settings, report, pipelines):
        files = specs.bundle_files(dashboard, serving_path(settings))
        digest = specs.bundle_digest(files)
        before = state.get(dashboard.dashboard_uuid, {})
        if before.get("digest") == digest and client.dashboard(dashboard.slug) is not None:
            report.unchanged.append(dashboard.slug)
            continue
        try:
            client.import_assets(specs.bundle_zip(files))
        except SupersetError as error:
            report.errors.append(f"{dashboard.file}: Superset refused the import: {error}")
            continue
        charts, datasets = dashboard.chart_uuids(), dashboard.dataset_uuids()
        for resource, gone in (("chart", set(before.get("charts", [])) - set(charts.values())),
                               ("dataset", set(before.get("datasets", [])) - set(datasets.values()))):
            for uuid in sorted(gone):
                found = client.find(resource, uuid)
                if found is not None:
                    client.delete(f"/api/v1/{resource}/{found}")
                if resource == "chart":
                    report.removed_charts.append(uuid)
        state[dashboard.dashboard_uuid] = {"slug": dashboard.slug, "file": str(dashboard.file), "digest": digest,
                                           "charts": sorted(charts.values()), "datasets": sorted(datasets.values())}
        write_json(state_file, state)
        report.imported.append(dashboard.slug)
    return report
