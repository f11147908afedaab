"""Incremental copies of operational sources into raw Iceberg tables, in the shape of Fivetran/Airbyte.

The sources (lakehouse.sync.sql_tables: every table of a SQL schema; lakehouse.sync.rest: a paginated
JSON API) only extract: dlt's sql_database and rest_api machinery reads new and changed rows after a
cursor, with its pagination, retries and type mapping. What they extract is committed by the platform
(lakehouse.sync.landing), one Iceberg commit per table per run, and the cursor lives in that commit's
snapshot summary (lakehouse.sync.state): data and cursor cannot disagree, so a rerun or a crash never
duplicates or drops rows.
"""

from __future__ import annotations

import os


class SyncError(RuntimeError):
    """A sync cannot go on; the message names the source and what to do."""


def quiet_dlt() -> None:
    """dlt settings for a library use inside Airflow tasks, set before dlt is imported."""
    # No usage telemetry from a user's machine.
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    # dlt would read its config from Airflow Variables whenever Airflow is importable (and log a
    # traceback where the metadata DB has no variable table): our options come from pipeline.yml.
    os.environ.setdefault("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")
