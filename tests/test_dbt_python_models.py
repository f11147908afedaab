"""dbt Python models on the DuckDB engine: committed to Iceberg by the same materializations and plugin
as SQL models, through real dbt runs of tests/fixtures/python_model_project on a fresh LAKEHOUSE_HOME.

The project: customer_orders (SQL), py_customer_segments (Python: dbt.ref, dbt.source, a pandas
groupby and a scikit-learn KMeans), segment_sizes (SQL over the Python model) and py_scoring_runs (an incremental
Python model returning a pyarrow Table). The expected values are worked out here from the rows
customer_orders.sql holds, not read back from the models.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from quality_project import dbt as run_dbt
from quality_project import install_packages

from lakehouse import compute, writes
from lakehouse.catalog import load_table

PROJECT = Path(__file__).parent / "fixtures" / "python_model_project"
CONFTEST = Path(__file__).parent / "conftest.py"

# customer_orders.sql: (customer_id, region, orders, spend)
CUSTOMERS = [
    (1, "north", 1, 20.0), (2, "north", 2, 35.0), (3, "south", 1, 25.0), (4, "south", 3, 40.0),
    (5, "north", 20, 900.0), (6, "south", 22, 950.0), (7, "south", 25, 1000.0), (8, "north", 21, 980.0),
]
SMALL_SPENDERS = {1, 2, 3, 4}  # the cluster of lower spend is segment 0
MANAGERS = {"north": "Ada", "south": "Grace"}  # the source raw.region_managers


def dbt(target: Path, *args: str, **dbt_vars) -> tuple[bool, str]:
    result = run_dbt(target, *args, dbt_vars=dbt_vars or None, project=PROJECT)
    messages = " ".join(str(getattr(r, "message", "") or "") for r in (result.result or []))
    return result.success, messages + " " + str(result.exception or "")


def rows(sql: str) -> list[tuple]:
    return compute.connect().sql(sql).fetchall()


@pytest.fixture(scope="module")
def home(request, tmp_path_factory):
    """tests/conftest.py's lakehouse_home for the whole module (one first build for every test)."""
    conftest = request.config.pluginmanager.get_plugin(str(CONFTEST))
    with pytest.MonkeyPatch.context() as patch:
        yield from conftest.lakehouse_home.__wrapped__(tmp_path_factory.mktemp("lakehouse"), patch)


@pytest.fixture(scope="module")
def target(home, tmp_path_factory) -> Path:
    """The first `dbt run` of the project; its target folder (run_results.json)."""
    target = tmp_path_factory.mktemp("python_models_target")
    writes.write("raw.region_managers", pa.table({"region": list(MANAGERS), "manager": list(MANAGERS.values())}))
    install_packages(PROJECT)
    ok, message = dbt(target, "run")
    if "only supports languages ['sql']" in message:
        pytest.fail("dbt/lakehouse_dbt/project_macros/lakehouse_platform.sql must declare "
                    "supported_languages=['sql', 'python'] on the duckdb table and incremental wrappers: " + message)
    assert ok, message
    return target


def test_the_python_model_is_an_iceberg_table_with_the_computed_values(target):
    region_spend = {}
    for _, region, _, spend in CUSTOMERS:
        region_spend[region] = region_spend.get(region, 0.0) + spend
    expected = [
        (customer_id, region, spend, region_spend[region], 0 if customer_id in SMALL_SPENDERS else 1, MANAGERS[region])
        for customer_id, region, _, spend in CUSTOMERS
    ]
    assert rows("select * from marts.py_customer_segments order by customer_id") == expected
    schema = load_table("marts.py_customer_segments").schema()
    assert [(f.name, str(f.field_type)) for f in schema.fields] == [
        ("customer_id", "long"), ("region", "string"), ("spend", "double"), ("region_spend", "double"),
        ("segment", "int"), ("manager", "string"),
    ]


def test_the_snapshot_names_the_node_and_the_invocation_like_a_sql_model(target):
    invocation_id = json.loads((target / "run_results.json").read_text())["metadata"]["invocation_id"]
    for name in ("customer_orders", "py_customer_segments", "segment_sizes"):
        summary = load_table(f"marts.{name}").current_snapshot().summary.additional_properties
        assert summary["dbt.node"] == f"model.python_model_fixture.{name}"
        assert summary["dbt.invocation_id"] == invocation_id


def test_a_sql_model_reads_the_python_model(target):
    small = sum(c[3] for c in CUSTOMERS if c[0] in SMALL_SPENDERS)
    large = sum(c[3] for c in CUSTOMERS if c[0] not in SMALL_SPENDERS)
    assert rows("select segment, customers, spend from marts.segment_sizes order by 1") == [(0, 4, small), (1, 4, large)]


def test_a_rerun_replaces_the_rows(target):
    before = load_table("marts.py_customer_segments").current_snapshot().snapshot_id
    ok, message = dbt(target, "run", "--select", "py_customer_segments")
    assert ok, message
    table = load_table("marts.py_customer_segments")
    assert table.current_snapshot().snapshot_id != before
    assert rows("select count(*), count(distinct customer_id) from marts.py_customer_segments") == [(8, 8)]


def test_a_python_model_that_raises_keeps_the_previous_snapshot(target):
    before = load_table("marts.py_customer_segments").current_snapshot().snapshot_id
    ok, message = dbt(target, "run", "--select", "py_customer_segments", fail_on_purpose="yes")
    assert not ok
    assert "Python model failed" in message
    assert "ValueError: segmentation refused on purpose: no customers to score" in message
    assert load_table("marts.py_customer_segments").current_snapshot().snapshot_id == before
    assert rows("select count(*) from marts.py_customer_segments") == [(8,)]


def test_an_incremental_python_model_appends_and_reads_its_own_table(target):
    assert rows("select run_number, customers from marts.py_scoring_runs") == [(1, 8)]
    ok, message = dbt(target, "run", "--select", "py_scoring_runs")
    assert ok, message
    assert rows("select run_number, customers from marts.py_scoring_runs order by 1") == [(1, 8), (2, 8)]
    ok, message = dbt(target, "run", "--select", "py_scoring_runs", "--full-refresh")
    assert ok, message
    assert rows("select run_number, customers from marts.py_scoring_runs") == [(1, 8)]
