"""The BI layer: Apache Superset over every pipeline's marts, with the dashboards kept in the repository.

- serving.py: the marts copied to the read-only DuckDB file Superset reads, after every run.
- server.py: Superset's process (``lakehouse bi start|stop|status``, ``make bi``).
- dashboards.py: a pipeline's ``dashboards/*.yml``, checked against the marts, as a Superset bundle.
- provision.py: the bundles imported over Superset's REST API, idempotently.
"""

from __future__ import annotations

from ..settings import Settings, load_settings
from .provision import ProvisionReport


def refresh_and_provision(settings: Settings | None = None, pipelines: list[str] | None = None,
                          require_server: bool = False) -> ProvisionReport:
    """What a run ends with: the BI copy of the marts made anew, then, when this home's Superset runs,
    the dashboards (of ``pipelines``, default all) provisioned. Without a running Superset only the copy
    is made (the next ``lakehouse bi start`` provisions), unless ``require_server``."""
    from ..processes import file_lock
    from . import provision, server, serving

    settings = settings or load_settings()
    # One at a time (parallel DAG runs end together): the copy made last is then the newest, and the
    # provision state file is never written by two processes.
    with file_lock(server.paths(settings)["root"] / ".refresh.lock"):
        serving.refresh(settings)
        state = server.status(settings)
        if not state.running:
            if require_server:
                raise server.BIServerError("Superset is not running: `lakehouse bi start`")
            return ProvisionReport(skipped=True)
        client = provision.SupersetClient(state.url, server.ADMIN, server.admin_password(settings))
        return provision.provision(client, settings, pipelines)
