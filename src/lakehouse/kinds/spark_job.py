"""The ``spark_job`` ingest kind: a PySpark script of the pipeline lands a source too big for one process.

Options: ``script`` (a .py file in the pipeline folder), ``args`` (a mapping passed as ``--name value``),
``conn_id`` (the Airflow Spark connection whose host is the master; default ``lakehouse_spark``, which,
when not defined, is the settings' ``LAKEHOUSE_SPARK_MASTER``), ``inputs`` (what the job reads, for
lineage: URIs or table names). The script runs with ``spark-submit`` through Airflow's Spark provider
(SparkSubmitHook), with the lakehouse's Spark properties (the same Iceberg catalog as every engine), and
gets ``--table``, ``--batch-date``, ``--run-id``, ``--pipeline``, ``--folder``, ``--source`` and
``--partition-by`` (JSON), then its ``args`` (``split_bytes: 4096`` as ``--split-bytes 4096``; a
mapping or list value as JSON). It writes through
``lakehouse.spark.job.replace_batch`` (one Iceberg commit that replaces exactly the batch date's rows)
or ``lakehouse.spark.delimited.land`` (a delimited file under the delimited_file kind's rules), so
reruns and backfills are idempotent.
On Kubernetes the same script is a SparkApplication (deploy/kubernetes/spark-application.yaml).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

from .base import IngestKind, InvalidOptions, Option, is_template

# Properties of the long-lived Thrift server that a batch job does not want.
_SERVER_ONLY = ("spark.sql.hive.thriftServer.singleSession", "spark.app.name")


class SparkJobIngest(IngestKind):
    name = "spark_job"
    OPTIONS = {
        "script": Option(str, required=True, help="a PySpark script in the pipeline folder, e.g. spark/bronze.py"),
        "args": Option(dict, default={}, help="passed to the script as --name value (name_x as --name-x)"),
        "conn_id": Option(str, default="lakehouse_spark", help="the Airflow Spark connection (its host is the master)"),
        "inputs": Option(list, default=[], help="what the job reads, for lineage"),
    }

    @classmethod
    def check_references(cls, options: dict[str, Any], folder, where: str) -> None:
        script = options.get("script")
        if script and not is_template(script):
            path = (folder / script).resolve()
            if not str(script).endswith(".py") or folder.resolve() not in path.parents:
                raise InvalidOptions(f"{where} option 'script': {script!r} is not a .py file inside the pipeline folder")
            if not path.is_file():
                raise InvalidOptions(f"{where} option 'script': {path} does not exist")

    def _environment(self) -> dict[str, str]:
        import sys

        from ..spark import jars

        spark_home = jars.pyspark_jars_dir().parent
        # The driver and executors run this venv's Python, so the script can import lakehouse.spark.job.
        return {"SPARK_HOME": str(spark_home), "PATH": f"{spark_home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}

    def land(self, day: dt.date, run_id: str | None) -> dict[str, Any]:
        from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
        from pyiceberg.expressions import EqualTo

        from ..catalog import load_table
        from ..settings import load_settings
        from ..spark.config import spark_properties

        settings = load_settings()
        conn_id = self.options["conn_id"]
        variable = f"AIRFLOW_CONN_{conn_id.upper()}"
        if conn_id == "lakehouse_spark" and variable not in os.environ:
            # No connection of the user's: the master of the settings, as the Thrift server has.
            os.environ[variable] = json.dumps({"conn_type": "spark", "host": settings.spark_master})
        conf = {k: v for k, v in spark_properties(settings).items() if k not in _SERVER_ONLY and k != "spark.master"}
        arguments = ["--table", self.source.table, "--batch-date", day.isoformat(), "--run-id", run_id or "",
                     "--pipeline", self.pipeline.name, "--folder", str(self.pipeline.folder), "--source",
                     self.source.name, "--partition-by", json.dumps(self.source.partition_by)]
        for key, value in self.options["args"].items():
            arguments += [f"--{key.replace('_', '-')}", json.dumps(value) if isinstance(value, (dict, list)) else str(value)]
        hook = SparkSubmitHook(conf=conf, conn_id=conn_id, name=f"{self.pipeline.name}.{self.source.name}",
                               application_args=arguments, env_vars=self._environment(),
                               driver_memory=settings.spark_driver_memory)
        hook.submit(str(self.pipeline.folder / self.options["script"]))
        table = load_table(self.source.table)
        if table is None:
            from ..ingest import IngestError

            raise IngestError(f"{self.source.name}: {self.options['script']} ended without writing {self.source.table}")
        rows = table.scan(row_filter=EqualTo("_batch_date", day.isoformat())).to_arrow().num_rows
        snapshot = table.current_snapshot()
        return {"table": self.source.table, "rows": rows, "snapshot_id": snapshot.snapshot_id if snapshot else None}

    def lineage_inputs(self, day: dt.date, result: dict[str, Any] | None) -> list:
        from openlineage.client.event_v2 import InputDataset

        from ..lineage import naming

        datasets = [InputDataset(*naming.generator_identity(f"pipelines/{self.pipeline.name}/{self.options['script']}"))]
        for item in self.options["inputs"]:
            namespace, _, name = str(item).rpartition("://")
            datasets.append(InputDataset(namespace=namespace or "lakehouse", name=name))
        return datasets
