"""The README's "Adding a pipeline" and "Adding an ingest kind", true as written: a throwaway pipeline
folder with a throwaway kind, a seed its model reads through source(), run through Airflow on an empty
home; then the same pipeline with a broken model, whose error the run reports."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lakehouse.settings import REPO_ROOT

DAY = dt.date(2026, 11, 20)
# The throwaway kind: one file with one class (what "Adding an ingest kind" asks for).
KIND = '''
"""The `csv_rows` kind: rows of a CSV file in the pipeline folder, replacing the run's date."""
import csv
import datetime as dt

from lakehouse.kinds import IngestKind, Option


class CsvRowsIngest(IngestKind):
    name = "csv_rows"
    OPTIONS = {"file": Option(str, required=True, help="a CSV file of the pipeline folder")}

    def land(self, day, run_id):
        import pyarrow as pa
        from pyiceberg.expressions import EqualTo

        from lakehouse.ingest import add_lineage_columns
        from lakehouse.writes import write

        with open(self.pipeline.folder / self.options["file"], newline="") as handle:
            rows = list(csv.DictReader(handle))
        data = pa.table({"store_id": [int(r["store_id"]) for r in rows], "amount": [int(r["amount"]) for r in rows]})
        data = add_lineage_columns(data, day, dt.datetime.now(dt.UTC))
        write(self.source.table, data, "overwrite", overwrite_filter=EqualTo("_batch_date", day.isoformat()),
              partition_by=self.source.partition_by)
        return {"table": self.source.table, "rows": data.num_rows}
'''
SALES = "store_id,amount\n1,10\n2,5\n1,7\n3,4\n"
REGIONS = "store_id,region\n1,north\n2,south\n3,south\n"
MODEL = """
select
    regions.region,
    cast(sum(sales.amount) as bigint) as amount
from {{ source('raw', 'shop_sales') }} as sales
inner join {{ source('raw', 'shop_regions') }} as regions on sales.store_id = regions.store_id
group by regions.region
"""


def make_pipeline(root: Path) -> Path:
    folder = root / "pipelines" / "shop"
    (folder / "dbt" / "models").mkdir(parents=True)
    (folder / "dbt" / "seeds").mkdir()
    (folder / "dbt" / "macros").mkdir()
    (folder / "sales.csv").write_text(SALES)
    (folder / "pipeline.yml").write_text(textwrap.dedent("""
        name: shop
        schedule: "@daily"
        start_date: 2026-11-01
        ingest:
          - name: sales
            table: raw.shop_sales
            kind: csv_rows
            options: {file: sales.csv}
    """))
    dbt = folder / "dbt"
    (dbt / "dbt_project.yml").write_text(textwrap.dedent("""
        name: shop
        profile: lakehouse
        models:
          shop:
            +schema: marts
            +materialized: table
        seeds:
          shop:
            +schema: raw
    """))
    (dbt / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT / 'dbt' / 'lakehouse_dbt'}\n")
    (dbt / "macros" / "lakehouse_platform.sql").symlink_to(REPO_ROOT / "dbt/lakehouse_dbt/project_macros/lakehouse_platform.sql")
    (dbt / "seeds" / "shop_regions.csv").write_text(REGIONS)
    (dbt / "models" / "__sources.yml").write_text(textwrap.dedent("""
        version: 2
        sources:
          - name: raw
            schema: raw
            tables:
              - name: shop_sales
              - name: shop_regions   # the seed, read as raw data
    """))
    (dbt / "models" / "shop_sales_by_region.sql").write_text(MODEL)
    (dbt / "models" / "shop_sales_by_region.yml").write_text(
        "version: 2\nmodels:\n  - name: shop_sales_by_region\n    columns:\n      - name: region\n"
        "        data_tests: [not_null, unique]\n")
    kinds = root / "kinds"
    kinds.mkdir()
    (kinds / "csv_rows_kind.py").write_text(KIND)
    return folder


RUN = """
import datetime as dt, json, sys
sys.path.insert(0, {kinds!r})
from lakehouse.kinds import INGEST_KINDS
INGEST_KINDS["csv_rows"] = "csv_rows_kind:CsvRowsIngest"  # the registry line
from dataclasses import asdict
from lakehouse.catalog import load_table
from lakehouse.runner import run_pipelines
events = []
results = run_pipelines(None, dt.date.fromisoformat({day!r}), None, events.append)  # every folder
result = next(r for r in results if r.pipeline == "shop")
table = load_table("marts.shop_sales_by_region")
rows = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["region"]) if table else None
others = {{r.pipeline: asdict(r) for r in results if r.pipeline != "shop"}}
print(json.dumps({{"result": asdict(result), "rows": rows, "events": events, "others": others}}, default=str))
"""


def run(root: Path) -> dict:
    env = {**os.environ, "LAKEHOUSE_HOME": str(root / "home"), "LAKEHOUSE_PIPELINES_DIR": str(root / "pipelines")}
    env.pop("AIRFLOW_HOME", None)
    code = RUN.format(kinds=str(root / "kinds"), day=DAY.isoformat())
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.e2e
def test_a_new_pipeline_and_kind_run_on_an_empty_home_and_errors_are_shown(tmp_path):
    make_pipeline(tmp_path)
    # A broken folder beside it: reported in the run's results, and the other pipeline still runs.
    (tmp_path / "pipelines" / "broken").mkdir()
    (tmp_path / "pipelines" / "broken" / "pipeline.yml").write_text("name: broken\ningest: [\n")
    out = run(tmp_path)
    broken = out["others"]["broken"]
    assert broken["state"] == "failed" and "pipeline.yml:3:1: YAML syntax error" in broken["error"], broken
    result = out["result"]
    assert result["state"] == "success", (result["task_errors"], result["error"], result["task_states"])
    # The seed ran before the model that reads it through source(), on a lakehouse that had neither.
    assert out["rows"] == [{"region": "north", "amount": 17}, {"region": "south", "amount": 9}]
    assert result["mart_rows"] == {"marts.shop_sales_by_region": 2}
    assert result["tests_failed"] == 0 and result["tests_passed"] >= 2
    assert result["tasks_failed"] == 0 and result["tasks_succeeded"] == len(result["task_states"])
    # Progress: every task reported as it finished, the last event with all of them done.
    finished = {e["task_id"] for e in out["events"] if e["state"] == "success"}
    assert finished == set(result["task_states"]) and out["events"][-1]["done"] == out["events"][-1]["total"]

    # A broken model: the run fails and says why, naming the task, without opening the log.
    model = tmp_path / "pipelines/shop/dbt/models/shop_sales_by_region.sql"
    model.write_text(MODEL.replace("sales.amount", "sales.amount_typo"))
    result = run(tmp_path)["result"]
    assert result["state"] == "failed"
    (task,) = result["task_errors"]
    assert task.startswith("dbt.shop_sales_by_region"), result["task_errors"]
    assert "amount_typo" in result["task_errors"][task], result["task_errors"]
    assert Path(result["log_file"]).exists()


@pytest.mark.e2e
def test_a_pipeline_that_cannot_load_says_why_in_the_run_result(tmp_path):
    """dbt deps cannot reach the hub here: the run names that cause, not just 'did not produce DAG'."""
    folder = make_pipeline(tmp_path)
    (folder / "dbt" / "packages.yml").write_text(
        f"packages:\n  - local: {REPO_ROOT / 'dbt' / 'lakehouse_dbt'}\n"
        "  - package: dbt-labs/no_such_package\n    version: 1.0.0\n")
    result = run(tmp_path)["result"]
    assert result["state"] == "failed" and result["task_states"] == {}
    assert result["error"].startswith("RuntimeError: pipeline 'shop' could not be loaded as a DAG: "), result["error"]
    assert "`dbt deps` failed" in result["error"], result["error"]
    assert "the dbt package hub (hub.getdbt.com) cannot be reached; use the local stand-ins" in result["error"]
