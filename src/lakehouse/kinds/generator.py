"""The ``generator`` ingest kind: a Python callable produces the date's batch, which replaces that date.

Options: ``callable`` ('file.py:function' in the pipeline folder, or 'module:function'); every other
option is passed to it as a keyword argument. The callable is called as ``callable(batch_date, **options)``
and returns a pyarrow.Table. A batch is keyed by ``_batch_date``: every run of a date replaces exactly
that date's rows in one commit, so reruns and backfills are idempotent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .base import IngestKind, Option


class GeneratorIngest(IngestKind):
    name = "generator"
    OPTIONS = {"callable": Option(str, required=True, help="'file.py:function' or 'module:function'")}
    CODE_OPTIONS = ("callable",)
    PASS_ON_OTHER_OPTIONS = True

    def land(self, day: dt.date, run_id: str | None) -> dict[str, Any]:
        import pyarrow as pa
        from pyiceberg.expressions import EqualTo

        from ..ingest import IngestError, add_lineage_columns
        from ..loader import load_callable
        from ..writes import write

        arguments = {k: v for k, v in self.options.items() if k != "callable"}
        data = load_callable(self.options["callable"], self.pipeline.folder)(day, **arguments)
        if not isinstance(data, pa.Table):
            raise IngestError(f"{self.source.name}: the generator returned {type(data).__name__}, not a pyarrow.Table")
        data = add_lineage_columns(data, day, dt.datetime.now(dt.UTC))
        table = write(
            self.source.table,
            data,
            "overwrite",
            overwrite_filter=EqualTo("_batch_date", day.isoformat()),
            partition_by=self.source.partition_by,
            snapshot_properties={
                "lakehouse.pipeline": self.pipeline.name,
                "lakehouse.ingest": self.source.name,
                "lakehouse.batch_date": day.isoformat(),
                "lakehouse.run_id": run_id or "",
            },
        )
        snapshot = table.current_snapshot()
        return {"table": self.source.table, "rows": data.num_rows,
                "snapshot_id": snapshot.snapshot_id if snapshot else None}

    def lineage_inputs(self, day: dt.date, result: dict[str, Any] | None) -> list:
        from openlineage.client.event_v2 import InputDataset

        from ..lineage import naming

        reference = str(self.options["callable"])
        if reference.split(":")[0].endswith(".py"):  # a file of this pipeline: name it with its folder
            reference = f"pipelines/{self.pipeline.name}/{reference}"
        namespace, name = naming.generator_identity(reference)
        return [InputDataset(namespace=namespace, name=name)]
