"""The ``postgres_cdc`` ingest kind: a PostgreSQL source's new change events, landed exactly once.

Which server: an Airflow connection (``conn_id``) when one is defined, else ``LAKEHOUSE_SOURCE_DSN``,
else the embedded PostgreSQL under the lakehouse home, started when it is not running
(lakehouse.sources.postgres_server.resolve_dsn). What is captured is the pipeline's, not the
platform's: ``source_schema`` (a SQL file of the pipeline folder, applied idempotently before each
capture: the tables, the audit trigger, the publication), ``audit_table`` (audit_log mode) or
``publication``/``slot`` and ``tables`` (logical mode). Only on the embedded server, and only when
``simulate_rows`` > 0, the task first calls ``generator(dsn, day, rows, seed)``: the demo's stand-in for
a shop's traffic, so `make run` shows CDC on a fresh machine. The work is lakehouse.cdc.capture.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from .base import IngestKind, InvalidOptions, Option, is_template

log = logging.getLogger(__name__)


class PostgresCdcIngest(IngestKind):
    name = "postgres_cdc"
    OPTIONS = {
        "mode": Option(str, default="audit_log", choices=("audit_log", "logical"),
                       help="audit_log: the trigger-filled audit table; logical: a pgoutput replication slot"),
        "conn_id": Option(str, default="lakehouse_source", help="the Airflow connection of the source"),
        "page_size": Option(int, default=10000, minimum=1, help="events per landing commit"),
        "source_schema": Option(str, help="a SQL file of the pipeline folder, applied before each capture"),
        "audit_table": Option(str, default="public.audit_log_dml", help="audit_log mode: the table read"),
        "publication": Option(str, default="lakehouse_cdc", help="logical mode: the publication decoded"),
        "slot": Option(str, default="lakehouse_cdc", help="logical mode: the replication slot"),
        "tables": Option(list, default=[], help="logical mode: the published tables ('schema.table'), for lineage"),
        "generator": Option(str, help="demo traffic on the embedded server: 'file.py:function(dsn, day, rows, seed)'"),
        "simulate_rows": Option(int, default=0, minimum=0, help="demo: rows the generator makes before each capture"),
        "seed": Option(int, default=42),
    }
    CODE_OPTIONS = ("generator",)
    FILE_OPTIONS = ("source_schema",)

    @classmethod
    def check(cls, options: dict[str, Any], where: str, rendered: bool) -> None:
        from ..identifiers import InvalidIdentifier, split_table_name, validate_identifier

        try:
            for name in (options["audit_table"], *(options["tables"] or [])):
                if not is_template(name):
                    split_table_name(str(name))
            for name in (options["publication"], options["slot"]):
                if not is_template(name):
                    validate_identifier(str(name), "publication or slot name")
        except InvalidIdentifier as error:
            raise InvalidOptions(f"{where}: {error}") from None


    def land(self, day: dt.date, run_id: str | None) -> dict[str, Any]:
        from ..cdc.capture import capture
        from ..cdc.source import prepare_source
        from ..loader import load_callable
        from ..sources.postgres_server import mask_dsn, resolve_dsn

        options = self.options
        dsn, embedded = resolve_dsn(options["conn_id"])
        schema = self.pipeline.folder / options["source_schema"] if options["source_schema"] else None
        prepare_source(dsn, schema, options["slot"])
        if options["simulate_rows"] and embedded and options["generator"]:
            generate = load_callable(options["generator"], self.pipeline.folder, "generator")
            done = generate(dsn, day, options["simulate_rows"], options["seed"])
            log.info("simulated traffic on the embedded source: %s", done)
        result = capture(options["mode"], dsn=dsn, table=self.source.table, page_size=options["page_size"],
                         slot=options["slot"], publication=options["publication"], audit_table=options["audit_table"])
        log.info("captured %s events from %s (%s mode)", result.events, mask_dsn(dsn), options["mode"])
        return {"table": self.source.table, "events": result.events, "last_position": result.last_position,
                "snapshot_id": result.snapshot_id}

    def lineage_inputs(self, day: dt.date, result: dict[str, Any] | None) -> list:
        """The tables read: the audit table (audit_log mode) or the published tables (logical mode)."""
        from openlineage.client.event_v2 import InputDataset

        from ..identifiers import split_table_name
        from ..lineage import naming
        from ..sources.postgres_server import resolve_dsn

        dsn, embedded = resolve_dsn(self.options["conn_id"], start_embedded=False)
        read = [self.options["audit_table"]] if self.options["mode"] == "audit_log" else self.options["tables"]
        inputs = []
        for full_name in read:
            schema, table = split_table_name(str(full_name))
            namespace, name = naming.postgres_identity(dsn, schema, table, embedded=embedded)
            inputs.append(InputDataset(namespace=namespace, name=name))
        return inputs
