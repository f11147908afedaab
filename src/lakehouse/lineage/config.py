"""The OpenLineage configuration of Airflow, from the lakehouse settings, as environment variables.

lakehouse.runner.airflow_environment (in-process and LocalExecutor runs) and `lakehouse ui` (airflow
standalone) both add ``lineage_environment(settings)`` to the environment Airflow starts with, so every
process that runs a task (and the provider's listener in it) emits to the same place:

    LAKEHOUSE_LINEAGE=file     (default) <home>/lineage/events.jsonl, one event per line
    LAKEHOUSE_LINEAGE=http     that file, and LAKEHOUSE_LINEAGE_URL (Marquez: http://host:5000; DataHub:
                               http://gms:8080/openapi/openlineage/), bearer LAKEHOUSE_LINEAGE_API_KEY if set
    LAKEHOUSE_LINEAGE=console  that file, and every event in the task's log (debugging)
    LAKEHOUSE_LINEAGE=off      the provider is disabled: no listener, no events

The file is always written when lineage is on, so `lakehouse lineage` works whatever else receives the
events. Emission runs in a thread of the task's process (``execute_in_thread``), bounded by
``execution_timeout``: an unreachable endpoint delays a task by at most that, never fails it. Runs of
`lakehouse run` emit the tasks' events only, not the DAG run's own (see NO_DAG_EVENTS).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

from ..settings import Settings

# Not imported from .dbt: this module is read before Airflow is (runner._prepare_airflow), and .dbt imports it.
COSMOS_EXTRACTOR = "lakehouse.lineage.dbt.CosmosLineageExtractor"

# The OpenLineage namespace of the jobs (a DAG's tasks are jobs <dag id>.<task id> in it).
JOB_NAMESPACE = "lakehouse"
HTTP_TIMEOUT_SECONDS = 5
# Few, quick retries: the default (5 with backoff) holds a task for seconds per event when the endpoint is down.
HTTP_RETRY = {"total": 2, "connect": 2, "read": 2, "backoff_factor": 0.2, "status_forcelist": [500, 502, 503, 504],
              "allowed_methods": ["HEAD", "POST"]}
EMIT_TIMEOUT_SECONDS = 15


def http_target(url: str) -> tuple[str, str]:
    """(url, endpoint) for the HTTP transport: a URL ending in .../lineage is the endpoint itself; any other
    is a base that gets OpenLineage's api/v1/lineage (Marquez at its root, DataHub under /openapi/openlineage/)."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"LAKEHOUSE_LINEAGE_URL={url!r} is not an http(s) URL")
    if parts.path.rstrip("/").endswith("/lineage"):
        return urlunsplit((parts.scheme, parts.netloc, "/", "", "")), parts.path.lstrip("/")
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/", "", ""))
    return base, "api/v1/lineage"


def transport_config(settings: Settings) -> dict:
    """The OpenLineage client transport (JSON-serializable; it never holds the API key)."""
    file = {"type": "lakehouse.lineage.transport.JsonLinesTransport", "path": str(settings.lineage_file)}
    if settings.lineage == "file":
        return file
    if settings.lineage == "http":
        if not settings.lineage_url:
            raise ValueError("LAKEHOUSE_LINEAGE=http needs LAKEHOUSE_LINEAGE_URL")
        url, endpoint = http_target(settings.lineage_url)
        second = {"type": "http", "url": url, "endpoint": endpoint, "timeout": HTTP_TIMEOUT_SECONDS,
                  "retry": HTTP_RETRY, "auth": {"type": "lakehouse.lineage.transport.EnvApiKeyTokenProvider"}}
    elif settings.lineage == "console":
        second = {"type": "console"}
    else:
        raise ValueError(f"no transport for LAKEHOUSE_LINEAGE={settings.lineage!r}")
    # The file first: it is written even when the endpoint is slow or down.
    return {"type": "composite", "continue_on_failure": True, "continue_on_success": True,
            "transports": {"file": file, settings.lineage: second}}


# The DAG run's own events come from a process pool of the provider's listener. In a scheduler (`lakehouse ui`)
# that pool lives as long as the scheduler; in a dag.test() run the listener shuts it down after every task
# and forks it again for the next DAG event, and the first task waits for it: 1.5 s of a 20 s run. There,
# the tasks' events (each names its DAG run in its parent facet) are emitted, the DAG run's are not.
NO_DAG_EVENTS = [{"scope": {}, "controls": {"emit_dag_events": False}}]


def lineage_environment(settings: Settings, dag_events: bool = True) -> dict[str, str]:
    """AIRFLOW__OPENLINEAGE__* for Airflow's OpenLineage provider (see the module docstring); ``dag_events``
    False for the in-process runner (see NO_DAG_EVENTS)."""
    if settings.lineage == "off":
        return {"AIRFLOW__OPENLINEAGE__DISABLED": "True"}
    settings.lineage_file.parent.mkdir(parents=True, exist_ok=True)
    policy = {} if dag_events else {"AIRFLOW__OPENLINEAGE__EMISSION_POLICY": json.dumps(NO_DAG_EVENTS)}
    return {
        **policy,
        "AIRFLOW__OPENLINEAGE__DISABLED": "False",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": JOB_NAMESPACE,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport_config(settings)),
        # Cosmos's dbt tasks: their lineage mapped onto the lakehouse identity (lineage/dbt.py).
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": COSMOS_EXTRACTOR,
        # A thread, not a fork of the task process: dag.test() runs tasks in a process with other threads.
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
        "AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT": str(EMIT_TIMEOUT_SECONDS),
    }
