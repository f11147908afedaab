"""Dashboards as code: a pipeline's ``dashboards/*.yml``, checked against the marts and turned into a
Superset import bundle.

A dashboard file names its datasets (SQL over the marts), its charts, its filters and its layout::

    title: Liquidity risk
    datasets:
      positions: {sql: "select * from marts.mart_liquidity_risk"}
    charts:
      value_by_tier:
        title: Liquidity-adjusted value by tier
        type: bar                   # CHART_TYPES
        dataset: positions
        x: liquidity_tier
        metrics: [sum(liquidity_adjusted_value_usd)]   # or {metric: sum(...), label: Value}
        series: [portfolio_id]      # optional: one bar / line per value
        format: ",.2f"              # optional: d3 number format
    filters:
      - {name: Portfolio, column: portfolio_id}   # on every dataset that has the column
    layout:
      - [value_by_tier]             # rows of chart names, left to right

Every dataset's SQL is run (LIMIT 0) against the BI tool's copy of the marts (lakehouse.bi.serving) for
its columns, and every column a chart, metric or filter names must be one of them: a wrong name fails that
dashboard with the file, the chart and the column, before anything reaches Superset. Ids are uuid5 of the
pipeline, dashboard and name, so provisioning again updates the same objects in place.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DASHBOARDS_DIR = "dashboards"
NAMESPACE = uuid.UUID("5f0c7c1e-3a57-4d0e-9b8e-6c1d2a4b7e90")
DATABASE_NAME = "lakehouse"
DATABASE_UUID = str(uuid.uuid5(NAMESPACE, "database/lakehouse"))
# How the BI tool opens the marts: read-only, and DuckDB may touch no other file (no read_csv('/etc/...'),
# no ATTACH, no COPY TO, no extension install), a setting SQL Lab cannot switch back (lock_configuration).
CONNECT_ARGS = {"read_only": True, "config": {"enable_external_access": False, "lock_configuration": True}}
# Our chart types -> Superset's viz types (ECharts plugins of Superset 6).
CHART_TYPES = {
    "big_number": "big_number_total",
    "bar": "echarts_timeseries_bar",
    "line": "echarts_timeseries_line",
    "scatter": "echarts_timeseries_scatter",
    "pie": "pie",
    "histogram": "histogram_v2",
    "table": "table",
}
AGGREGATES = ("sum", "avg", "min", "max", "count", "count_distinct")
_METRIC = re.compile(r"^\s*(?P<aggregate>[a-z_]+)\s*\(\s*(?P<column>\*|[A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$")
_TEMPORAL = ("DATE", "TIMESTAMP")
GRID_COLUMNS = 12


class DashboardError(ValueError):
    """A dashboard file that cannot be provisioned; the message names the file, chart and column."""


@dataclass(frozen=True)
class Metric:
    aggregate: str
    column: str  # '*' for count(*)
    name: str = ""  # the label charts show (default: the expression)

    @property
    def label(self) -> str:
        return self.name or f"{self.aggregate}({self.column})"

    def superset(self) -> dict[str, Any]:
        if self.column == "*":
            return {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": self.label}
        return {"expressionType": "SIMPLE", "column": {"column_name": self.column},
                "aggregate": self.aggregate.upper(), "label": self.label}


@dataclass
class Chart:
    name: str
    title: str
    type: str
    dataset: str
    options: dict[str, Any]
    metrics: list[Metric] = field(default_factory=list)

    def columns(self) -> list[tuple[str, str]]:
        """(option, column) pairs this chart reads, metrics included."""
        named = []
        for option in ("x", "column"):
            if self.options.get(option):
                named.append((option, self.options[option]))
        for option in ("series", "columns"):
            named += [(option, column) for column in self.options.get(option) or []]
        named += [("metric", m.column) for m in self.metrics if m.column != "*"]
        return named


@dataclass
class Dashboard:
    pipeline: str
    name: str
    file: Path
    title: str
    description: str
    datasets: dict[str, str]  # {name: SQL}
    charts: dict[str, Chart]
    filters: list[dict[str, Any]]
    layout: list[list[str]]
    columns: dict[str, dict[str, str]] = field(default_factory=dict)  # {dataset: {column: DuckDB type}}

    @property
    def slug(self) -> str:
        return f"{self.pipeline}-{self.name}".replace("_", "-")

    def uuid(self, *parts: str) -> str:
        return str(uuid.uuid5(NAMESPACE, "/".join((self.pipeline, self.name, *parts))))

    @property
    def dashboard_uuid(self) -> str:
        return self.uuid("dashboard")

    def chart_uuids(self) -> dict[str, str]:
        return {name: self.uuid("chart", name) for name in self.charts}

    def dataset_uuids(self) -> dict[str, str]:
        return {name: self.uuid("dataset", name) for name in self.datasets}


def _fail(file: Path, where: str, message: str) -> DashboardError:
    return DashboardError(f"{file}: {where}: {message}")


def _metric(entry: Any, file: Path, where: str) -> Metric:
    # 'sum(spend)', or {metric: 'sum(spend)', label: 'Spend'}
    text, label = (entry.get("metric"), entry.get("label")) if isinstance(entry, dict) else (entry, None)
    match = _METRIC.match(str(text))
    if not match or match["aggregate"] not in AGGREGATES or (match["column"] == "*" and match["aggregate"] != "count"):
        raise _fail(file, where, f"metric {text!r} is not AGGREGATE(column) with AGGREGATE one of {', '.join(AGGREGATES)}"
                                 " (or count(*))")
    return Metric(match["aggregate"], match["column"], str(label or ""))


def _chart(name: str, entry: Any, datasets: dict[str, str], file: Path) -> Chart:
    where = f"chart {name!r}"
    if not isinstance(entry, dict):
        raise _fail(file, where, "is not a mapping")
    kind = entry.get("type")
    if kind not in CHART_TYPES:
        raise _fail(file, where, f"type {kind!r} is not one of {', '.join(CHART_TYPES)}")
    dataset = entry.get("dataset")
    if dataset not in datasets:
        raise _fail(file, where, f"dataset {dataset!r} is not declared under datasets ({', '.join(datasets)})")
    raw = entry.get("metrics") or ([entry["metric"]] if entry.get("metric") else [])
    metrics = [_metric(m, file, where) for m in (raw if isinstance(raw, list) else [raw])]
    needs = {"big_number": ("metric",), "bar": ("x", "metric"), "line": ("x", "metric"), "scatter": ("x", "metric"),
             "pie": ("x", "metric"), "histogram": ("column",), "table": ()}[kind]
    for need in needs:
        if need == "metric" and not metrics:
            raise _fail(file, where, f"a {kind} chart needs metric: or metrics:")
        if need != "metric" and not entry.get(need):
            raise _fail(file, where, f"a {kind} chart needs {need}:")
    options = {key: value for key, value in entry.items() if key not in ("type", "dataset", "title", "metric", "metrics")}
    return Chart(name=name, title=str(entry.get("title") or name.replace("_", " ").capitalize()), type=kind,
                 dataset=dataset, options=options, metrics=metrics)


def load_dashboard(file: Path, pipeline: str) -> Dashboard:
    """Parse one dashboard file; the shape is checked here, the columns by ``check_columns``."""
    try:
        spec = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise DashboardError(f"{file}: not YAML: {error}") from error
    if not isinstance(spec, dict) or not spec.get("title"):
        raise DashboardError(f"{file}: a dashboard needs at least title:, datasets: and charts:")
    datasets = {}
    for name, entry in (spec.get("datasets") or {}).items():
        sql = entry.get("sql") if isinstance(entry, dict) else None
        if not sql:
            raise _fail(file, f"dataset {name!r}", "needs sql:")
        datasets[str(name)] = str(sql).strip().rstrip(";")
    if not datasets:
        raise DashboardError(f"{file}: no datasets:")
    charts = {str(name): _chart(str(name), entry, datasets, file) for name, entry in (spec.get("charts") or {}).items()}
    if not charts:
        raise DashboardError(f"{file}: no charts:")
    layout = spec.get("layout") or [[name] for name in charts]
    placed = [name for row in layout for name in row]
    for name in placed:
        if name not in charts:
            raise _fail(file, "layout", f"chart {name!r} is not declared under charts")
    for name in charts:
        if name not in placed:
            layout.append([name])  # a chart left out of the layout still shows, on a row of its own
    filters = []
    for index, entry in enumerate(spec.get("filters") or []):
        if not isinstance(entry, dict) or not entry.get("column"):
            raise _fail(file, f"filter {index + 1}", "needs column:")
        filters.append({"name": str(entry.get("name") or entry["column"]), "column": str(entry["column"]),
                        "datasets": list(entry.get("datasets") or [])})
    return Dashboard(pipeline=pipeline, name=file.stem, file=file, title=str(spec["title"]),
                     description=str(spec.get("description") or "").strip(), datasets=datasets, charts=charts,
                     filters=filters, layout=[list(row) for row in layout])


def dashboard_files(pipeline_folder: Path) -> list[Path]:
    return sorted((pipeline_folder / DASHBOARDS_DIR).glob("*.yml"))


def check_columns(dashboard: Dashboard, con: Any) -> None:
    """Run each dataset's SQL (no rows) on ``con`` (the BI copy of the marts) and check every column the
    charts and filters name. Fills ``dashboard.columns``."""
    for name, sql in dashboard.datasets.items():
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM ({sql}) AS dataset LIMIT 0").fetchall()
        except Exception as error:  # noqa: BLE001 - DuckDB's binder error names the missing table or column
            raise _fail(dashboard.file, f"dataset {name!r}", f"its SQL fails on the marts: {error}") from error
        dashboard.columns[name] = {row[0]: row[1] for row in described}
    for chart in dashboard.charts.values():
        known = dashboard.columns[chart.dataset]
        for option, column in chart.columns():
            if column not in known:
                raise _fail(dashboard.file, f"chart {chart.name!r}",
                            f"{option} column {column!r} is not a column of dataset {chart.dataset!r} "
                            f"(its columns: {', '.join(known)})")
    for spec in dashboard.filters:
        named = spec["datasets"] or [d for d, cols in dashboard.columns.items() if spec["column"] in cols]
        if not named:
            raise _fail(dashboard.file, f"filter {spec['name']!r}", f"column {spec['column']!r} is in no dataset")
        for dataset in named:
            if dataset not in dashboard.columns:
                raise _fail(dashboard.file, f"filter {spec['name']!r}", f"dataset {dataset!r} is not declared")
            if spec["column"] not in dashboard.columns[dataset]:
                raise _fail(dashboard.file, f"filter {spec['name']!r}",
                            f"column {spec['column']!r} is not a column of dataset {dataset!r}")
        spec["datasets"] = named


# --- The Superset import bundle (its v1 export format: YAML files in a zip) --------------------------------

def _is_temporal(duckdb_type: str) -> bool:
    return duckdb_type.upper().startswith(_TEMPORAL)


def database_config(serving_file: Path) -> dict[str, Any]:
    return {
        "database_name": DATABASE_NAME, "sqlalchemy_uri": f"duckdb:///{serving_file}", "cache_timeout": None,
        "expose_in_sqllab": True, "allow_run_async": False, "allow_ctas": False, "allow_cvas": False,
        "allow_dml": False, "allow_file_upload": False,
        "extra": {"engine_params": {"connect_args": CONNECT_ARGS}, "allows_virtual_table_explore": True},
        "uuid": DATABASE_UUID, "version": "1.0.0",
    }


def _dataset_config(dashboard: Dashboard, name: str) -> dict[str, Any]:
    columns = dashboard.columns[name]
    temporal = [column for column, kind in columns.items() if _is_temporal(kind)]
    return {
        "table_name": f"{dashboard.pipeline}__{dashboard.name}__{name}", "main_dttm_col": temporal[0] if temporal else None,
        "description": f"{dashboard.file.name}: dataset {name}", "default_endpoint": None, "offset": 0,
        "cache_timeout": None, "catalog": None, "schema": "marts", "sql": dashboard.datasets[name], "params": None,
        "template_params": None, "filter_select_enabled": True, "fetch_values_predicate": None,
        "extra": None, "normalize_columns": False, "always_filter_main_dttm": False,
        "uuid": dashboard.dataset_uuids()[name], "metrics": [{
            "metric_name": "count", "verbose_name": "COUNT(*)", "metric_type": "count", "expression": "COUNT(*)",
            "description": None, "d3format": None, "currency": None, "extra": None, "warning_text": None}],
        "columns": [{"column_name": column, "verbose_name": None, "is_dttm": _is_temporal(kind), "is_active": True,
                     "type": kind, "advanced_data_type": None, "groupby": True, "filterable": True,
                     "expression": None, "description": None, "python_date_format": None, "extra": None}
                    for column, kind in columns.items()],
        "version": "1.0.0", "database_uuid": DATABASE_UUID,
    }


def chart_params(dashboard: Dashboard, chart: Chart) -> dict[str, Any]:
    """The chart's form data (what Superset's Explore view would save for it)."""
    options, metrics = chart.options, [m.superset() for m in chart.metrics]
    params: dict[str, Any] = {"viz_type": CHART_TYPES[chart.type], "adhoc_filters": [], "row_limit": 10000,
                              "time_range": "No filter", "color_scheme": "supersetColors"}
    number_format = options.get("format", "SMART_NUMBER")
    if chart.type == "big_number":
        params.update(metric=metrics[0], header_font_size=0.4, subheader_font_size=0.15,
                      y_axis_format=number_format, subheader=options.get("subheader", ""))
    elif chart.type in ("bar", "line", "scatter"):
        x = options["x"]
        params.update(x_axis=x, metrics=metrics, groupby=list(options.get("series") or []),
                      x_axis_sort_asc=True, y_axis_format=number_format, show_legend=True, rich_tooltip=True,
                      truncate_metric=True, orientation="vertical", stack=bool(options.get("stack")),
                      x_axis_title=options.get("x_title", ""), y_axis_title=options.get("y_title", ""))
        if _is_temporal(dashboard.columns[chart.dataset][x]):
            params["time_grain_sqla"] = options.get("time_grain", "P1D")
        else:
            params["x_axis_sort"] = x
    elif chart.type == "pie":
        params.update(metric=metrics[0], groupby=[options["x"]], show_labels=True, label_type="key_percent",
                      number_format=number_format, donut=bool(options.get("donut")), show_legend=True)
    elif chart.type == "histogram":
        params.update(column=options["column"], groupby=list(options.get("series") or []),
                      bins=int(options.get("bins", 20)), normalize=False, show_legend=True)
    elif chart.type == "table":
        if metrics:
            params.update(query_mode="aggregate", groupby=list(options.get("columns") or []), metrics=metrics,
                          order_desc=True)
        else:
            params.update(query_mode="raw", all_columns=list(options.get("columns") or []))
        params["row_limit"] = int(options.get("rows", 100))
    return params


def _native_filters(dashboard: Dashboard) -> list[dict[str, Any]]:
    datasets = dashboard.dataset_uuids()
    return [{
        "id": f"NATIVE_FILTER-{dashboard.uuid('filter', spec['name'])[:12]}", "name": spec["name"],
        "filterType": "filter_select", "type": "NATIVE_FILTER", "description": "",
        "targets": [{"datasetUuid": datasets[spec["datasets"][0]], "column": {"name": spec["column"]}}],
        "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
        "controlValues": {"enableEmptyFilter": False, "defaultToFirstItem": False, "multiSelect": True,
                          "searchAllOptions": False, "inverseSelection": False},
        "cascadeParentIds": [], "scope": {"rootPath": ["ROOT_ID"], "excluded": []},
    } for spec in dashboard.filters]


def _position(dashboard: Dashboard) -> dict[str, Any]:
    position: dict[str, Any] = {"DASHBOARD_VERSION_KEY": "v2",
                                "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
                                "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
                                "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": dashboard.title}}}
    uuids = dashboard.chart_uuids()
    names = list(dashboard.charts)
    for row_number, row in enumerate(dashboard.layout, start=1):
        row_id = f"ROW-{row_number}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {"type": "ROW", "id": row_id, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                            "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        width = max(1, GRID_COLUMNS // len(row))
        for name in row:
            chart = dashboard.charts[name]
            chart_id = f"CHART-{name}"
            position[row_id]["children"].append(chart_id)
            height = 30 if chart.type == "big_number" else 60
            position[chart_id] = {"type": "CHART", "id": chart_id, "children": [],
                                  "parents": ["ROOT_ID", "GRID_ID", row_id],
                                  "meta": {"chartId": names.index(name) + 1, "uuid": uuids[name], "width": width,
                                           "height": height, "sliceName": chart.title}}
    return position


def bundle_files(dashboard: Dashboard, serving_file: Path) -> dict[str, dict[str, Any]]:
    """{path in the zip: YAML document} of one dashboard's bundle (without the timestamped metadata.yaml)."""
    files = {f"databases/{DATABASE_NAME}.yaml": database_config(serving_file)}
    for name in dashboard.datasets:
        files[f"datasets/{DATABASE_NAME}/{dashboard.pipeline}__{dashboard.name}__{name}.yaml"] = _dataset_config(dashboard, name)
    for name, chart in dashboard.charts.items():
        files[f"charts/{dashboard.pipeline}__{dashboard.name}__{name}.yaml"] = {
            "slice_name": chart.title, "description": chart.options.get("description"), "certified_by": None,
            "certification_details": None, "viz_type": CHART_TYPES[chart.type], "params": chart_params(dashboard, chart),
            "query_context": None, "cache_timeout": None, "uuid": dashboard.chart_uuids()[name], "version": "1.0.0",
            "dataset_uuid": dashboard.dataset_uuids()[chart.dataset]}
    files[f"dashboards/{dashboard.pipeline}__{dashboard.name}.yaml"] = {
        "dashboard_title": dashboard.title, "description": dashboard.description or None, "css": "",
        "slug": dashboard.slug, "certified_by": None, "certification_details": None, "published": True,
        "uuid": dashboard.dashboard_uuid, "position": _position(dashboard),
        "metadata": {"native_filter_configuration": _native_filters(dashboard), "color_scheme": "supersetColors",
                     "refresh_frequency": 0, "expanded_slices": {}, "label_colors": {}, "shared_label_colors": [],
                     "timed_refresh_immune_slices": [], "cross_filters_enabled": True, "default_filters": "{}",
                     "chart_configuration": {}},
        "version": "1.0.0"}
    return files


def bundle_digest(files: dict[str, dict[str, Any]]) -> str:
    """What the dashboard is, independent of when it was built: provisioning skips an unchanged one."""
    return hashlib.sha256(json.dumps(files, sort_keys=True, default=str).encode()).hexdigest()


def bundle_zip(files: dict[str, dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bundle/metadata.yaml", yaml.safe_dump(
            {"version": "1.0.0", "type": "assets", "timestamp": "2026-01-01T00:00:00+00:00"}))
        for path, document in files.items():
            archive.writestr(f"bundle/{path}", yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return buffer.getvalue()
