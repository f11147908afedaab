"""The BI tool's copy of the marts: one DuckDB file, ``<home>/bi/lakehouse.duckdb``, rebuilt after every run.

Why a copy, and not views over the Iceberg files: the BI server is a separate process in its own virtual
environment (Superset pins its own SQLAlchemy and pandas). With a plain DuckDB file it needs no Iceberg
extension, no catalog and no object-store keys, and it opens the file read-only with file access turned
off (``DATABASE_OPTIONS`` in lakehouse.bi.superset): a dashboard or SQL Lab can read these tables and
nothing else on the machine. The copy is small (marts, not raw data), is made from each table's main
(what readers of the lakehouse see, so a write-audit-publish branch never shows before it is published),
and replaces the old file in one rename: a dashboard reads all of the previous run or all of this one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..catalog import get_catalog
from ..compute import load_extensions, register_catalog
from ..identifiers import quote, split_table_name
from ..settings import Settings, load_settings

# The namespaces the BI tool may read: the marts every pipeline publishes for people to look at.
SERVED_NAMESPACES = ("marts",)


@dataclass(frozen=True)
class ServingCopy:
    path: Path
    rows: dict[str, int]  # {namespace.table: rows copied}
    seconds: float


def serving_path(settings: Settings | None = None) -> Path:
    settings = settings or load_settings()
    return settings.home / "bi" / "lakehouse.duckdb"


def refresh(settings: Settings | None = None, namespaces: tuple[str, ...] = SERVED_NAMESPACES) -> ServingCopy:
    """Copy every table of ``namespaces`` (at its main) into a new DuckDB file and swap it in."""
    import duckdb

    settings = settings or load_settings()
    started = time.monotonic()
    target = serving_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(f".{target.name}.{os.getpid()}")
    building.unlink(missing_ok=True)
    con = duckdb.connect(":memory:")
    rows: dict[str, int] = {}
    try:
        load_extensions(con, settings)
        locations = register_catalog(con, get_catalog(settings))
        con.execute(f"ATTACH '{building}' AS serving")
        for namespace in namespaces:
            con.execute(f"CREATE SCHEMA serving.{quote(namespace)}")
        for full_name in sorted(locations):
            namespace, name = split_table_name(full_name)
            if namespace not in namespaces:
                continue
            table = f"{quote(namespace)}.{quote(name)}"
            con.execute(f"CREATE TABLE serving.{table} AS SELECT * FROM {table}")
            rows[full_name] = con.execute(f"SELECT count(*) FROM serving.{table}").fetchone()[0]
        con.execute("DETACH serving")  # checkpoints: the file is complete, with no write-ahead log beside it
    except BaseException:
        con.close()
        building.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(building, target)
    return ServingCopy(path=target, rows=rows, seconds=time.monotonic() - started)
