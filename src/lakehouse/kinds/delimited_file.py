"""The ``delimited_file`` ingest kind: one delimited text file, fetched to the raw zone, typed, bad lines
quarantined. The options and the rules are in lakehouse.files.delimited's docstring; the format is
checked when the pipeline loads, so a wrong ``format:`` fails the DAG-loading test, not a run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .base import IngestKind, InvalidOptions, Option, is_template


class DelimitedFileIngest(IngestKind):
    name = "delimited_file"
    OPTIONS = {
        "source": Option(str, required=True, help="an http(s) URL, a path, file:// or s3://; {date} and {home} are filled in"),
        "format": Option(dict, required=True, help="delimiter, header, escape, columns, deduplicate"),
        "simulate": Option(bool, default=False, help="demo: write the day's file first when it does not exist"),
        "generator": Option(str, help="'file.py:function' writing the day's file (with simulate)"),
        "simulate_rows": Option(int, default=2000, minimum=0),
        "simulate_bad_rate": Option(float, default=0.0, minimum=0),
        "seed": Option(int, default=42),
        "connections": Option(int, default=4, minimum=1, help="parallel ranged connections of the download"),
        "max_rejected_ratio": Option(float, default=0.5, minimum=0,
                                     help="more rejected lines than this share fails the task"),
    }
    CODE_OPTIONS = ("generator",)

    @classmethod
    def check(cls, options: dict[str, Any], where: str, rendered: bool) -> None:
        from ..files.delimited import FileFormat, FileFormatError

        try:
            if not is_template(options["format"]):
                FileFormat.from_options(options["format"])
        except (FileFormatError, ValueError) as error:
            raise InvalidOptions(f"{where} option 'format': {error}") from None

    def land(self, day: dt.date, run_id: str | None) -> dict[str, Any]:
        from ..files.delimited import land_delimited_file

        return land_delimited_file(self.pipeline.name, self.source, day, self.options, run_id, self.pipeline.folder)

    def lineage_inputs(self, day: dt.date, result: dict[str, Any] | None) -> list:
        """The file read, with the declared columns as its schema."""
        from openlineage.client.event_v2 import InputDataset
        from openlineage.client.facet_v2 import schema_dataset

        from ..files.delimited import resolve_source
        from ..lineage import naming

        location = (result or {}).get("file") or resolve_source(str(self.options["source"]).strip(), day)
        columns = [c for c in self.options["format"].get("columns") or [] if isinstance(c, dict) and "name" in c]
        facets = {"schema": schema_dataset.SchemaDatasetFacet(fields=[
            schema_dataset.SchemaDatasetFacetFields(name=str(c["name"]), type=str(c.get("type", "")) or None)
            for c in columns])} if columns else {}
        namespace, name = naming.file_identity(str(location))
        return [InputDataset(namespace=namespace, name=name, facets=facets)]
