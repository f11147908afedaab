"""Dashboard files (lakehouse.bi.dashboards) without a BI server: what a wrong file says, and the bundle."""

from __future__ import annotations

import io
import textwrap
import zipfile

import duckdb
import pytest
import yaml

from lakehouse.bi import dashboards as specs

GOOD = """
title: Sales
datasets:
  sales: {sql: "select * from marts.sales"}
charts:
  revenue:
    type: big_number
    dataset: sales
    metric: {metric: sum(amount), label: Revenue}
    format: ",.2f"
  by_region:
    type: bar
    dataset: sales
    x: sold_on
    metrics: [sum(amount), count(*)]
    series: [region]
filters:
  - {name: Region, column: region}
layout:
  - [revenue]
"""


@pytest.fixture
def marts():
    con = duckdb.connect(":memory:")
    con.execute("create schema marts; create table marts.sales (sold_on date, region varchar, amount decimal(12, 2))")
    yield con
    con.close()


def write(tmp_path, text, name="sales.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_good_file_becomes_a_bundle_with_stable_ids(tmp_path, marts):
    dashboard = specs.load_dashboard(write(tmp_path, GOOD), "shop")
    specs.check_columns(dashboard, marts)
    assert dashboard.columns["sales"] == {"sold_on": "DATE", "region": "VARCHAR", "amount": "DECIMAL(12,2)"}
    # A chart left out of the layout still shows, on a row of its own.
    assert dashboard.layout == [["revenue"], ["by_region"]]
    files = specs.bundle_files(dashboard, tmp_path / "lakehouse.duckdb")
    again = specs.load_dashboard(write(tmp_path, GOOD), "shop")
    specs.check_columns(again, marts)
    assert specs.bundle_digest(specs.bundle_files(again, tmp_path / "lakehouse.duckdb")) == specs.bundle_digest(files)

    chart = files["charts/shop__sales__by_region.yaml"]
    assert chart["viz_type"] == "echarts_timeseries_bar" and chart["params"]["x_axis"] == "sold_on"
    assert chart["params"]["time_grain_sqla"] == "P1D"  # a date axis is bucketed by day
    assert [m["label"] for m in chart["params"]["metrics"]] == ["sum(amount)", "count(*)"]
    big = files["charts/shop__sales__revenue.yaml"]["params"]
    assert big["metric"] == {"expressionType": "SIMPLE", "column": {"column_name": "amount"}, "aggregate": "SUM",
                             "label": "Revenue"}
    assert big["y_axis_format"] == ",.2f"
    dataset = files["datasets/lakehouse/shop__sales__sales.yaml"]
    assert dataset["main_dttm_col"] == "sold_on" and dataset["database_uuid"] == specs.DATABASE_UUID
    database = files["databases/lakehouse.yaml"]
    assert database["allow_dml"] is False and database["extra"]["engine_params"]["connect_args"]["read_only"] is True
    board = files["dashboards/shop__sales.yaml"]
    assert board["slug"] == "shop-sales"
    (native,) = board["metadata"]["native_filter_configuration"]
    assert native["targets"] == [{"datasetUuid": dashboard.dataset_uuids()["sales"], "column": {"name": "region"}}]
    charts_in_layout = [v["meta"]["uuid"] for v in board["position"].values() if isinstance(v, dict) and v.get("type") == "CHART"]
    assert sorted(charts_in_layout) == sorted(dashboard.chart_uuids().values())

    archive = zipfile.ZipFile(io.BytesIO(specs.bundle_zip(files)))
    assert yaml.safe_load(archive.read("bundle/metadata.yaml"))["type"] == "assets"
    assert yaml.safe_load(archive.read("bundle/charts/shop__sales__revenue.yaml"))["uuid"] == dashboard.chart_uuids()["revenue"]


@pytest.mark.parametrize(("change", "message"), [
    (("x: sold_on", "x: sold_at"),
     "chart 'by_region': x column 'sold_at' is not a column of dataset 'sales' (its columns: sold_on, region, amount)"),
    (("sum(amount), count(*)", "sum(amount), avg(price)"),
     "chart 'by_region': metric column 'price' is not a column of dataset 'sales'"),
    (("series: [region]", "series: [country]"), "chart 'by_region': series column 'country' is not a column"),
    (("column: region", "column: country"), "filter 'Region': column 'country' is in no dataset"),
    (("from marts.sales", "from marts.sale"), "dataset 'sales': its SQL fails on the marts: Catalog Error: "
                                              "Table with name sale does not exist"),
])
def test_a_wrong_name_fails_with_the_file_chart_and_column(tmp_path, marts, change, message):
    path = write(tmp_path, GOOD.replace(*change))
    dashboard = specs.load_dashboard(path, "shop")
    with pytest.raises(specs.DashboardError) as error:
        specs.check_columns(dashboard, marts)
    assert str(error.value).startswith(f"{path}: {message}"), str(error.value)


@pytest.mark.parametrize(("change", "message"), [
    (("type: bar", "type: donut"), "chart 'by_region': type 'donut' is not one of big_number, bar, line, scatter, pie"),
    (("dataset: sales\n    x:", "dataset: orders\n    x:"), "chart 'by_region': dataset 'orders' is not declared"),
    (("count(*)", "median(amount)"), "chart 'by_region': metric 'median(amount)' is not AGGREGATE(column)"),
    (("[revenue]", "[revenue, margin]"), "layout: chart 'margin' is not declared under charts"),
    (("    x: sold_on\n", ""), "chart 'by_region': a bar chart needs x:"),
])
def test_a_malformed_file_fails_before_any_query(tmp_path, change, message):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(specs.DashboardError) as error:
        specs.load_dashboard(path, "shop")
    assert str(error.value).startswith(f"{path}: {message}"), str(error.value)
