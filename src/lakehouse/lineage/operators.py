"""A PythonOperator that tells Airflow's OpenLineage listener what it reads and writes.

Why a subclass rather than inlets/outlets: the provider turns inlets/outlets into OpenLineage datasets
only for Asset URI schemes a provider registered a converter for (file, s3, postgres, ...), and
``iceberg://`` has none, so they would be dropped; they are fixed when the DAG is parsed, while what a task
touches depends on its rendered arguments (a file URL with the run's date), on the server a connection
resolves to, and on what it did (the tables maintenance rewrote, the tables the run's checks tested); and
they carry no facets (schema, version, row counts, column lineage). The listener calls the
``get_openlineage_facets_on_start/complete/failure`` methods below on START, COMPLETE and FAIL; each
delegates to lakehouse.lineage.tasks, which imports nothing heavy until a task runs. (The provider's own
extractor for PythonOperator reports the source code only: a subclass has its own task type and gets
the provider's DefaultExtractor, which calls these methods.)
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.python import PythonOperator


class LineagePythonOperator(PythonOperator):
    """``lineage_kind``: ingest, deliver, publish or maintain (lakehouse.lineage.tasks.task_lineage)."""

    def __init__(self, *, lineage_kind: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lineage_kind = lineage_kind
        self._lineage_result: Any = None

    def execute(self, context: Any) -> Any:
        self._lineage_result = super().execute(context)
        return self._lineage_result

    def _lineage(self, phase: str):
        from lakehouse.lineage.tasks import task_lineage

        return task_lineage(self.lineage_kind, dict(self.op_kwargs or {}), self._lineage_result, phase)

    def get_openlineage_facets_on_start(self):
        return self._lineage("start")

    def get_openlineage_facets_on_complete(self, task_instance: Any = None):
        return self._lineage("complete")

    def get_openlineage_facets_on_failure(self, task_instance: Any = None):
        return self._lineage("failure")
