"""The ``sql_database`` ingest kind: an incremental copy of the tables of a SQL schema, as Fivetran makes one.

One declared entry names a schema and its tables and stands for one ingest task per table
(``expand``), each landing ``<schema>.<table>`` in ``raw.<prefix><table>`` (default prefix ``<schema>_``):
new and changed rows after the cursor column (default ``updated_at``), merged by the primary key (read
from the database unless declared), and, with ``deletes: detect``, the keys the source no longer has
removed, all in one Iceberg commit with the cursor (lakehouse.sync.landing, lakehouse.sync.state).
Rows without a key or a cursor go to ``quarantine.rejected_<ingest name>`` with the reason.

``deletes: detect`` scans the key column of the source table each run (the cost of one index scan);
``deletes: none`` states that the table's rows are never deleted, or that deletes should be kept.
Which server: as for CDC (lakehouse.sources.postgres_server.resolve_dsn): the Airflow connection
``conn_id``, else LAKEHOUSE_SOURCE_DSN, else the embedded PostgreSQL. ``source_schema`` (a SQL file of
the pipeline folder) is applied first when given; on the embedded server only, with ``simulate``, the
pipeline's ``generator(day, **generator_args)`` writes the day's demo traffic first.

A table is declared by name, or as ``{name:, primary_key: [...], cursor_column:, deletes:}`` to
override the entry's settings for it.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from .base import IngestKind, InvalidOptions, Option, is_template

log = logging.getLogger(__name__)
TABLE_SETTINGS = ("primary_key", "cursor_column", "deletes")


class SqlDatabaseIngest(IngestKind):
    name = "sql_database"
    OPTIONS = {
        "conn_id": Option(str, default="lakehouse_source", help="the Airflow connection of the database"),
        "schema": Option(str, required=True, help="the database schema copied"),
        "tables": Option(list, default=[], help="the tables copied: names, or {name:, primary_key:, cursor_column:, deletes:}"),
        "source_table": Option(str, help="the one table of this task (set by the expansion)"),
        "prefix": Option(str, help="of the raw tables' names; default '<schema>_'"),
        "cursor_column": Option(str, default="updated_at", help="the column a change moves forward"),
        "primary_key": Option(list, default=[], help="default: the table's primary key constraint"),
        "deletes": Option(str, default="detect", choices=("detect", "none"),
                          help="detect: keys gone from the source are removed; none: deletes are not looked for"),
        "chunk_size": Option(int, default=50_000, minimum=1, help="rows per read from the database"),
        "lookback_seconds": Option(int, default=0, minimum=0,
                                   help="ask again this far before a timestamp cursor: rows of transactions that "
                                        "committed after the last run with an older updated_at (now() is a "
                                        "transaction's start)"),
        "max_delete_fraction": Option(float, default=0.5, minimum=0,
                                      help="more of the copied keys than this share gone from the source fails the run"),
        "source_schema": Option(str, help="a SQL file of the pipeline folder, applied before each copy"),
        "simulate": Option(bool, default=False, help="demo: the generator writes the day's rows first (embedded server only)"),
        "generator": Option(str, help="'file.py:function(day, **generator_args)' of the demo traffic"),
        "generator_args": Option(dict, default={}, help="keyword arguments of the generator"),
    }
    CODE_OPTIONS = ("generator",)
    FILE_OPTIONS = ("source_schema",)

    @classmethod
    def check(cls, options: dict[str, Any], where: str, rendered: bool) -> None:
        from ..identifiers import InvalidIdentifier, validate_identifier

        try:
            for option in ("schema", "prefix", "source_table", "cursor_column"):
                value = options.get(option)
                if value and not is_template(value):
                    validate_identifier(str(value).rstrip("_") or "_", f"option {option!r}")
            for column in options["primary_key"] or []:
                validate_identifier(str(column), "primary_key column")
            for table in options["tables"] or []:
                spec = table if isinstance(table, dict) else {"name": table}
                unknown = set(spec) - {"name", *TABLE_SETTINGS}
                if unknown or not spec.get("name"):
                    raise InvalidOptions(f"{where} option 'tables': {table!r} must be a name or a mapping "
                                         f"with 'name' and any of {', '.join(TABLE_SETTINGS)}")
                validate_identifier(str(spec["name"]), "table name")
        except InvalidIdentifier as error:
            raise InvalidOptions(f"{where}: {error}") from None


    @classmethod
    def expand(cls, entry: dict[str, Any], folder: Path, where: str) -> list[dict[str, Any]]:
        """One ingest entry per table: named ``<entry>_<table>``, landing in ``raw.<prefix><table>``."""
        options = dict(entry.get("options") or {})
        if "table" in entry or options.get("source_table"):
            return [entry]
        label = f"{where} ingest '{entry.get('name')}'"
        tables = options.get("tables")
        if not tables or not isinstance(tables, list):
            raise InvalidOptions(f"{label}: option 'tables' must list the tables of schema "
                                 f"{options.get('schema')!r} to copy")
        prefix = options.get("prefix")
        prefix = f"{options.get('schema')}_" if prefix is None else prefix
        expanded = []
        for table in tables:
            spec = table if isinstance(table, dict) else {"name": table}
            name = str(spec.get("name"))
            overrides = {key: spec[key] for key in TABLE_SETTINGS if key in spec}
            expanded.append({
                "name": f"{entry.get('name')}_{name}",
                "table": f"raw.{prefix}{name}",
                "kind": cls.name,
                "options": {**options, **overrides, "source_table": name},
                "partition_by": entry.get("partition_by"),
                "engines": entry.get("engines"),
            })
        return expanded

    def land(self, day: dt.date, run_id: str | None) -> dict[str, Any]:
        from ..cdc.source import apply_schema
        from ..loader import load_callable
        from ..sources.postgres_server import resolve_dsn
        from ..sync import landing, sql_tables

        options = self.options
        dsn, embedded = resolve_dsn(options["conn_id"])
        if options["source_schema"]:
            apply_schema(dsn, self.pipeline.folder / options["source_schema"])
        if options["simulate"] and embedded:
            generate = load_callable(options["generator"], self.pipeline.folder, "generator")
            log.info("simulated the day on the embedded source: %s", generate(day, **(options["generator_args"] or {})))
        schema, table = options["schema"], options["source_table"]
        key = list(options["primary_key"] or sql_tables.primary_key(dsn, schema, table))
        cursor = options["cursor_column"]
        target = landing.Target(
            table=self.source.table, key=key, cursor_column=cursor, quarantine=f"quarantine.rejected_{self.source.name}",
            partition_by=self.source.partition_by,
            properties={"lakehouse.pipeline": self.pipeline.name, "lakehouse.ingest": self.source.name,
                        "lakehouse.run_id": run_id or "", "lakehouse.sync.source": f"{schema}.{table}"},
            lookback=dt.timedelta(seconds=options["lookback_seconds"]) if options["lookback_seconds"] else None,
            max_delete_fraction=options["max_delete_fraction"])

        def extract(state):
            return sql_tables.extract(dsn, schema, table, cursor, key, state, chunk_size=options["chunk_size"],
                                      detect_deletes=options["deletes"] == "detect")

        return landing.land_increment(target, extract, day)

    def lineage_inputs(self, day: dt.date, result: dict[str, Any] | None) -> list:
        from openlineage.client.event_v2 import InputDataset

        from ..lineage import naming
        from ..sources.postgres_server import resolve_dsn

        dsn, embedded = resolve_dsn(self.options["conn_id"], start_embedded=False)
        namespace, name = naming.postgres_identity(dsn, self.options["schema"], self.options["source_table"],
                                                   embedded=embedded)
        return [InputDataset(namespace=namespace, name=name)]
