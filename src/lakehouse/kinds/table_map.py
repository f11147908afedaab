"""The ``table_map`` ingest kind: the files a table map assigns to one raw table, each loaded once.

One declared entry names a map file instead of a table (``options: {map: table_map.yml, ...}``) and
stands for one ingest task per table of the map (``expand``). The work is lakehouse.files.table_map
(its docstring has the rules: change detection, one commit, schema drift).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from ..errors import InvalidPipeline, read_yaml
from .base import IngestKind, InvalidOptions, Option


class TableMapIngest(IngestKind):
    name = "table_map"
    OPTIONS = {
        "map": Option(str, required=True, help="the map file, relative to the pipeline folder"),
        "entry": Option(str, help="the table's name in the map (set by the expansion)"),
        "root": Option(str, default="", help="where the files are; default the map's root, else <raw_zone>/<pipeline>/incoming"),
        "simulate": Option(bool, default=False, help="demo: the generator writes the day's files first"),
        "generator": Option(str, help="'file.py:function' writing a day's files of one entry"),
        "max_files": Option(int, default=0, minimum=0, help="files loaded by one run at most (0: no limit)"),
    }
    CODE_OPTIONS = ("generator",)
    # Every other option goes to the generator.
    PASS_ON_OTHER_OPTIONS = True

    @classmethod
    def expand(cls, entry: dict[str, Any], folder: Path, where: str) -> list[dict[str, Any]]:
        """An entry without a `table` names a map: one ingest entry per table it maps, each with the map's
        absolute path and its own `entry` name; an entry with a `table` is already one of them."""
        if "table" in entry:
            return [entry]
        options = dict(entry.get("options") or {})
        label = f"{where} ingest '{entry.get('name')}'"
        if not options.get("map"):
            raise InvalidOptions(f"{label}: option 'map' is required for kind 'table_map' (the map file)")
        map_file = (folder / str(options["map"])).resolve()
        if not map_file.exists():
            raise InvalidOptions(f"{label} option 'map': {map_file} does not exist")
        tables = (read_yaml(map_file) or {}).get("tables") or {}
        if not isinstance(tables, dict) or not tables:
            raise InvalidPipeline(f"{map_file}: 'tables' must map each raw table's name to its files")
        expanded = []
        for name, spec in tables.items():
            if not isinstance(spec, dict) or not spec.get("table"):
                raise InvalidPipeline(f"{map_file} table '{name}': 'table' is required")
            if not spec.get("files"):
                raise InvalidPipeline(f"{map_file} table '{name}': 'files' (a glob relative to the root) is required")
            expanded.append({
                "name": name,
                "table": spec["table"],
                "kind": cls.name,
                "options": {**options, "map": str(map_file), "entry": name},
                "partition_by": spec.get("partition_by") or entry.get("partition_by"),
            })
        return expanded

    def land(self, day: dt.date, run_id: str | None) -> dict[str, Any]:
        from ..files.table_map import land_mapped_files

        return land_mapped_files(self.pipeline.name, self.source, day, self.options, run_id, self.pipeline.folder)

    def lineage_inputs(self, day: dt.date, result: dict[str, Any] | None) -> list:
        """The folder the entry loads its files from: <root>/<the pattern's directory>."""
        import logging
        import posixpath

        from openlineage.client.event_v2 import InputDataset

        from ..files.table_map import map_entry, resolve_root
        from ..lineage import naming

        try:
            content, entry = map_entry(self.options)
            root = str((result or {}).get("root") or resolve_root(self.pipeline.name, self.options, content))
            folder = posixpath.dirname(str(entry.get("files") or ""))
        except Exception:  # noqa: BLE001 - a map that cannot be read: the task reports that itself
            logging.getLogger(__name__).debug("no folder for the table map entry %s", self.options.get("entry"),
                                              exc_info=True)
            return []
        namespace, name = naming.file_identity(root.rstrip("/") + (f"/{folder}" if folder else ""))
        return [InputDataset(namespace=namespace, name=name)]
