"""The energy pipeline: files in, the planted price elasticity out (pipelines/energy/README.md).

- The generator plants a price elasticity per segment; the pipeline's estimate recovers it within
  TOLERANCE (the main correctness test).
- Forecast error metrics (daily, weekly) equal a plain-Python computation from the parquet files
  themselves, with the validation rules of the README applied again here.
- File-by-file incremental ingest: a second run loads no file again (no new snapshot); a changed file
  is reloaded with its old rows replaced; every raw row is staged or quarantined, before and after.
- All of it on local disk and, when tests/conftest.py provides the s3_server fixture, on S3.
- The table_map ingest kind on its own: crash before the commit, schema drift, glob patterns.
- End to end through Airflow's LocalExecutor: the ingest tasks run at the same time, none fails.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dbt.adapters.duckdb.connections import DuckDBConnectionManager

from lakehouse import compute
from lakehouse.catalog import _catalog_for, load_table
from lakehouse.files import table_map
from lakehouse.ingest import IngestError, run_ingest
from lakehouse.loader import pipeline_module
from lakehouse.objectstore import filesystem, join
from lakehouse.pipeline import IngestSource, get_pipeline
from lakehouse.settings import load_settings
from lakehouse.testing import dbt as run_dbt

energy = pipeline_module("energy")

# Monday 9 to Sunday 15 November 2026: working days, a holiday (the 11th) and a weekend.
DAYS = [dt.date(2026, 11, 9) + dt.timedelta(days=n) for n in range(7)]
NEXT = DAYS[-1] + dt.timedelta(days=1)
OPTIONS = {"seed": 42, "scale": 1.0, "bad_row_rate": 0.02}
# |estimate - planted| for every segment. Why 0.04: with 7 days at scale 1.0 each segment's panel has
# 1,008 (region, hour) cells; the noise left in a cell's log demand after aggregating its customers
# is about NOISE_SIGMA / sqrt(customers in the cell) (0.025 residential, 0.04 commercial, 0.065
# industrial), and the price varies across zones within an hour by about 0.2 in log terms, so the OLS
# standard error is about 0.004 / 0.007 / 0.010 (the mart reports it; 20 seeds gave standard
# deviations of 0.004 / 0.008 / 0.008 and a largest error of 0.02). 0.04 is 4 standard errors of the
# noisiest segment: a correct pipeline fails it about once in 15,000 seeds; a pipeline that drops the
# controls is off by 0.19 (industrial) to 0.5 (the naive slope is positive for two segments).
TOLERANCE = 0.04
MAX_STD_ERROR = 0.015
SOURCES = energy.SOURCES
RELATIVE = 1e-9  # DuckDB and Python sum doubles in different orders


def dbt(*args: str, interval: dt.date | None = None) -> None:
    argv = list(args)
    if interval:
        argv += ["--vars", f"{{data_interval_start: '{interval}', data_interval_end: '{interval + dt.timedelta(days=1)}'}}"]
    result = run_dbt(get_pipeline("energy").dbt_project_dir, *argv)
    failed = [(r.node.name, r.message) for r in (result.result or []) if str(r.status) in ("error", "fail")]
    assert result.success, f"dbt {args[0]} failed: {failed or result.exception}"


def ingest_all(day: dt.date, simulate: bool = True) -> dict[str, dict]:
    """Every ingest task of the pipeline for `day`, as Airflow would call them (options rendered)."""
    return {
        source.name: run_ingest("energy", source.name, day, {**source.options, "root": "", "simulate": simulate, **OPTIONS})
        for source in get_pipeline("energy").ingest
    }


def read(sql: str, con=None) -> list[dict]:
    """Rows of a query; pass one connection for several queries (each new one registers every table)."""
    return (con or compute.connect()).sql(sql).to_arrow_table().to_pylist()


def count(table: str, con=None) -> int:
    return read(f"select count(*) as n from {table}", con)[0]["n"]


def snapshots(source: str) -> int:
    return len(load_table(f"raw.energy_{source}").snapshots())


# --------------------------------------------------------------------------- the oracle


def source_rows(root: str, source: str) -> list[dict]:
    """Every row of every file of a source, in file then row order (what the ingest loads)."""
    content = table_map.read_map(get_pipeline("energy").folder / "table_map.yml")
    rows = []
    for listed in table_map.list_files(root, content["tables"][source]["files"]):
        filesystem_, path = filesystem(listed.uri)
        with filesystem_.open_input_file(path) as handle:
            data = pq.read_table(handle)
        for number, row in enumerate(data.to_pylist(), start=1):
            rows.append({**row, "_file": listed.uri, "_row": number})
    return rows


def blank(value) -> bool:
    return value is None or str(value).strip() == ""


def latest(rows: list[dict], key, order) -> list[dict]:
    """One row per key: the greatest by `order` (the README's "later" rule)."""
    best = {}
    for row in rows:
        k = key(row)
        if k not in best or order(row) > order(best[k]):
            best[k] = row
    return list(best.values())


def oracle_forecast_errors(root: str) -> tuple[dict, dict]:
    """(daily, weekly) forecast error metrics from the files, with the README's validation rules."""
    zones = {r["region"]: r["zone"] for r in source_rows(root, "price_zones") if not blank(r["region"]) and not blank(r["zone"])}
    tariffs = {r["tariff_id"] for r in source_rows(root, "tariffs") if not blank(r["tariff_id"])}
    customers = latest(
        [
            r
            for r in source_rows(root, "customers")
            if not blank(r["customer_id"])
            and r["segment"] in energy.SEGMENTS
            and r["region"] in zones
            and r["tariff_id"] in tariffs
        ],
        key=lambda r: r["customer_id"],
        order=lambda r: (r["_file"], r["_row"]),
    )
    segment_region = {r["customer_id"]: (r["segment"], r["region"]) for r in customers}
    readings = latest(
        [r for r in source_rows(root, "meter_readings")
         if not blank(r["customer_id"]) and r["reading_hour"] is not None and r["kwh"] is not None
         and r["kwh"] >= 0 and r["customer_id"] in segment_region],
        key=lambda r: (r["customer_id"], r["reading_hour"]),
        order=lambda r: (r["read_at"] is not None, r["read_at"] or dt.datetime.min, r["_file"], r["_row"]),
    )
    forecasts = latest(
        [
            r
            for r in source_rows(root, "demand_forecast")
            if not blank(r["segment"])
            and not blank(r["region"])
            and r["forecast_hour"] is not None
            and r["forecast_kwh"] is not None
            and r["forecast_kwh"] >= 0
            and r["segment"] in energy.SEGMENTS
            and r["region"] in zones
        ],
        key=lambda r: (r["segment"], r["region"], r["forecast_hour"]),
        order=lambda r: (r["issued_at"] is not None, r["issued_at"] or dt.datetime.min, r["_file"], r["_row"]),
    )
    actual = defaultdict(float)
    for r in readings:
        segment, region = segment_region[r["customer_id"]]
        actual[(segment, region, r["reading_hour"])] += r["kwh"]
    predicted = {(r["segment"], r["region"], r["forecast_hour"]): r["forecast_kwh"] for r in forecasts}
    cells = defaultdict(list)  # (period, segment) -> [(actual, forecast)]
    for (segment, region, hour), kwh in actual.items():
        if (segment, region, hour) in predicted and kwh > 0:
            cells[("day", hour.date(), segment)].append((kwh, predicted[(segment, region, hour)]))
            monday = hour.date() - dt.timedelta(days=hour.date().weekday())
            cells[("week", monday, segment)].append((kwh, predicted[(segment, region, hour)]))
    daily, weekly = {}, {}
    for (period, start, segment), pairs in cells.items():
        a = sum(x for x, _ in pairs)
        f = sum(y for _, y in pairs)
        metrics = {
            "cells": len(pairs),
            "metered_kwh": a,
            "forecast_kwh": f,
            "mae_kwh": statistics.fmean(abs(y - x) for x, y in pairs),
            "rmse_kwh": math.sqrt(statistics.fmean((y - x) ** 2 for x, y in pairs)),
            "mape_pct": 100 * statistics.fmean(abs(y - x) / x for x, y in pairs),
            "wape_pct": 100 * sum(abs(y - x) for x, y in pairs) / a,
            "bias_pct": 100 * (f - a) / a,
        }
        (daily if period == "day" else weekly)[(start, segment)] = metrics
    return daily, weekly


def assert_metrics_equal(actual_rows: list[dict], period_column: str, expected: dict) -> None:
    actual = {(row[period_column], row["segment"]): row for row in actual_rows}
    assert actual.keys() == expected.keys()
    differences = [
        (key, name, value, actual[key][name])
        for key, metrics in expected.items()
        for name, value in metrics.items()
        if not math.isclose(actual[key][name], value, rel_tol=RELATIVE, abs_tol=1e-9)
    ]
    assert differences == [], f"{len(differences)} values differ, first: {differences[:5]}"


# --------------------------------------------------------------------------- the pipeline, once per storage


@dataclass
class Lake:
    storage: str
    root: str = ""
    first: dict = field(default_factory=dict)
    elasticity: dict = field(default_factory=dict)
    daily: list = field(default_factory=list)
    weekly: list = field(default_factory=list)
    oracle: tuple = ()
    counts: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)
    snapshots_before: dict = field(default_factory=dict)
    second: dict = field(default_factory=dict)
    snapshots_after: dict = field(default_factory=dict)
    changed_file: str = ""
    file_rows_before: dict = field(default_factory=dict)
    raw_before: int = 0
    rows_in_changed_file: int = 0
    third: dict = field(default_factory=dict)
    file_rows_after: dict = field(default_factory=dict)
    raw_after: int = 0
    counts_after: dict = field(default_factory=dict)
    daily_after: list = field(default_factory=list)
    weekly_after: list = field(default_factory=list)
    oracle_after: tuple = ()
    cell_after: dict = field(default_factory=dict)


def reconcile(con) -> tuple[dict, dict]:
    counts, reasons = {}, {}
    for source in SOURCES:
        counts[source] = (count(f"raw.energy_{source}", con), count(f"staging.stg_energy_{source}", con),
                          count(f"quarantine.rejected_energy_{source}", con))
        rejected = read(f"select distinct rejection_reason from quarantine.rejected_energy_{source}", con)
        reasons[source] = {r["rejection_reason"] for r in rejected}
    return counts, reasons


def change_a_file(root: str) -> str:
    """Rewrite one meter readings file: customer C000001's rows gone, C000002's kWh doubled."""
    uri = join(root, f"meter_readings/date={DAYS[2]}/readings_06.parquet")
    filesystem_, path = filesystem(uri)
    with filesystem_.open_input_file(path) as handle:
        rows = pq.read_table(handle).to_pylist()
    changed = []
    for row in rows:
        if row["customer_id"] == "C000001":
            continue
        if row["customer_id"] == "C000002" and row["kwh"] is not None:
            row["kwh"] = round(row["kwh"] * 2, 4)
        changed.append(row)
    with filesystem_.open_output_stream(path) as out:
        pq.write_table(pa.Table.from_pylist(changed, schema=energy.SCHEMAS["meter_readings"]), out)
    return uri


def run_the_pipeline(lake: Lake) -> Lake:
    if not (get_pipeline("energy").dbt_project_dir / "dbt_packages" / "lakehouse").exists():
        dbt("deps")
    lake.root = join(load_settings().raw_zone, "energy", "incoming")
    # A bucket with six days of history; the first run generates the seventh and loads all seven.
    energy.generate(lake.root, DAYS[-2], days=len(DAYS) - 1, **OPTIONS)
    lake.first = ingest_all(DAYS[-1])
    dbt("build")
    con = compute.connect()
    lake.elasticity = {r["segment"]: r for r in read("select * from marts.energy_price_elasticity", con)}
    lake.daily = read("select * from marts.energy_forecast_error_daily", con)
    lake.weekly = read("select * from marts.energy_forecast_error_weekly", con)
    lake.oracle = oracle_forecast_errors(lake.root)
    lake.counts, lake.reasons = reconcile(con)
    lake.raw_before = count("raw.energy_meter_readings", con)

    # The same day again: every file is loaded already.
    lake.snapshots_before = {source: snapshots(source) for source in SOURCES}
    lake.second = ingest_all(DAYS[-1])
    lake.snapshots_after = {source: snapshots(source) for source in SOURCES}

    # A file changes in the bucket; the next day's run reloads it (and loads that day's new files).
    lake.file_rows_before = table_map.rows_per_file("raw.energy_meter_readings")
    lake.changed_file = change_a_file(lake.root)
    filesystem_, path = filesystem(lake.changed_file)
    with filesystem_.open_input_file(path) as handle:
        lake.rows_in_changed_file = pq.read_metadata(handle).num_rows
    lake.third = ingest_all(NEXT)
    lake.file_rows_after = table_map.rows_per_file("raw.energy_meter_readings")
    dbt("build", interval=NEXT)
    con = compute.connect()
    lake.raw_after = count("raw.energy_meter_readings", con)
    lake.counts_after, _ = reconcile(con)
    lake.daily_after = read("select * from marts.energy_forecast_error_daily", con)
    lake.weekly_after = read("select * from marts.energy_forecast_error_weekly", con)
    lake.oracle_after = oracle_forecast_errors(lake.root)
    [lake.cell_after] = read(
        "select d.customers_metered from marts.demand_price_elasticity d inner join staging.stg_energy_customers c"
        " on d.segment = c.segment and d.region = c.region"
        f" where c.customer_id = 'C000001' and d.reading_hour = timestamp '{DAYS[2]} 06:00:00'", con,
    )
    return lake


@pytest.fixture(scope="module", params=["local", "s3"])
def lake(request, tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAKEHOUSE_HOME", str(tmp_path_factory.mktemp(f"energy_{request.param}")))
        for name in ("LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_CATALOG_NAME", "LAKEHOUSE_RAW_ZONE",
                     "LAKEHOUSE_S3_ENDPOINT", "LAKEHOUSE_S3_REGION"):
            env.delenv(name, raising=False)
        server = bucket = None
        if request.param == "s3":
            try:
                server = request.getfixturevalue("s3_server")
            except pytest.FixtureLookupError:
                pytest.skip("tests/conftest.py has no s3_server fixture")
            bucket = server.make_bucket()
            for name, value in server.env.items():
                env.setenv(name, value)
            env.delenv("AWS_SESSION_TOKEN", raising=False)
            env.setenv("LAKEHOUSE_WAREHOUSE", f"s3://{bucket}/warehouse")
            env.setenv("LAKEHOUSE_RAW_ZONE", f"s3://{bucket}/raw_zone")
        # dbt-duckdb keeps its DuckDB connection for the whole process, with the S3 settings it started
        # with: start this lakehouse on a fresh one.
        DuckDBConnectionManager.close_all_connections()
        _catalog_for.cache_clear()
        try:
            yield run_the_pipeline(Lake(request.param))
        finally:
            DuckDBConnectionManager.close_all_connections()
            _catalog_for.cache_clear()
            if bucket:
                try:
                    server.delete_bucket(bucket)
                except OSError:
                    pass


def test_the_files_are_where_the_storage_says(lake):
    assert lake.root.startswith("s3://" if lake.storage == "s3" else "file://")
    first = lake.first["meter_readings"]
    assert first["files_seen"] == first["files_loaded"] == first["files_new"] == 4 * len(DAYS)
    assert all(lake.first[s]["files_loaded"] >= 1 for s in SOURCES)
    assert lake.first["calendar"]["files_loaded"] == 1 and lake.first["customers"]["files_loaded"] == 1


def test_the_planted_price_elasticity_is_recovered(lake):
    """The main correctness test: the estimate per segment is within TOLERANCE of the planted value."""
    assert set(lake.elasticity) == set(energy.PLANTED_ELASTICITY)
    for segment, planted in energy.PLANTED_ELASTICITY.items():
        row = lake.elasticity[segment]
        assert row["observations"] == 6 * 24 * len(DAYS), segment  # every region in every hour: a balanced panel
        assert row["std_error"] < MAX_STD_ERROR, (segment, row["std_error"])
        assert abs(row["elasticity"] - planted) <= TOLERANCE, (segment, row["elasticity"], planted)
        assert row["ci95_low"] < row["elasticity"] < row["ci95_high"]
        # Without the controls the slope is far off: hours of high demand are hours of high prices.
        assert abs(row["naive_elasticity"] - planted) > 3 * TOLERANCE, (segment, row["naive_elasticity"])


def test_forecast_error_metrics_equal_python_over_the_parquet_files(lake):
    daily, weekly = lake.oracle
    assert len(daily) == 3 * len(DAYS) and len(weekly) == 3
    assert_metrics_equal(lake.daily, "reading_date", daily)
    assert_metrics_equal(lake.weekly, "week_start", weekly)
    # The planted model bias shows: residential over-forecast by about 3%, commercial under by about 2%.
    week = {segment: metrics["bias_pct"] for (_, segment), metrics in weekly.items()}
    assert 1.5 < week["residential"] < 4.5 and -3.5 < week["commercial"] < -0.5


def test_every_raw_row_is_staged_or_quarantined_with_a_reason(lake):
    for counts in (lake.counts, lake.counts_after):
        for source, (raw, staged, quarantined) in counts.items():
            assert raw == staged + quarantined, (source, raw, staged, quarantined)
    assert lake.reasons["meter_readings"] == {
        "missing customer_id", "missing reading_hour", "missing kwh", "negative kwh", "unknown customer_id",
        "duplicate reading: superseded by a later one",
    }
    assert lake.reasons["weather"] == {"missing temperature_c", "implausible temperature_c", "unknown region",
                                       "duplicate observation: superseded by a later one"}
    assert lake.reasons["day_ahead_prices"] <= {
        "missing price_eur_mwh",
        "unknown zone",
        "duplicate price: superseded by a later one",
    }
    assert lake.reasons["demand_forecast"] and lake.reasons["customers"]
    assert lake.reasons["tariffs"] == lake.reasons["calendar"] == lake.reasons["price_zones"] == set()


def test_a_second_run_loads_no_file_again(lake):
    for source, summary in lake.second.items():
        assert summary["files_loaded"] == 0 and summary["rows"] == 0, (source, summary)
        assert summary["files_unchanged"] == summary["files_seen"] > 0
    assert lake.snapshots_after == lake.snapshots_before  # not even an empty commit


def test_a_changed_file_is_reloaded_and_its_old_rows_replaced(lake):
    readings = lake.third["meter_readings"]
    assert readings["files_changed"] == 1 and readings["files_new"] == 4 and readings["files_loaded"] == 5
    assert readings["rows_replaced"] == lake.file_rows_before[lake.changed_file]
    assert lake.file_rows_after[lake.changed_file] == lake.rows_in_changed_file < lake.file_rows_before[lake.changed_file]
    new_files = [uri for uri in lake.file_rows_after if f"date={NEXT}" in uri]
    assert lake.raw_after == (lake.raw_before - lake.file_rows_before[lake.changed_file] + lake.rows_in_changed_file
                              + sum(lake.file_rows_after[uri] for uri in new_files))
    assert {uri: n for uri, n in lake.file_rows_after.items() if uri != lake.changed_file and uri not in new_files} == {
        uri: n for uri, n in lake.file_rows_before.items() if uri != lake.changed_file}
    # The reference files did not change: nothing reloaded there.
    assert all(lake.third[s]["files_loaded"] == 0 for s in ("customers", "tariffs", "calendar", "price_zones"))
    # The incremental dbt run carried the change to the marts: C000001 is gone from that hour, C000002 doubled.
    daily, weekly = lake.oracle_after
    assert_metrics_equal(lake.daily_after, "reading_date", daily)
    assert_metrics_equal(lake.weekly_after, "week_start", weekly)
    before = {(r["reading_date"], r["segment"]): r["metered_kwh"] for r in lake.daily}
    after = {(r["reading_date"], r["segment"]): r["metered_kwh"] for r in lake.daily_after}
    assert after[(DAYS[2], "residential")] != before[(DAYS[2], "residential")]
    same_cell = [c for c in energy.customers(42, 1.0) if (c.segment, c.region) == ("residential", "north")]
    assert lake.cell_after["customers_metered"] == len(same_cell) - 1
    assert {k: v for k, v in after.items() if k[0] != DAYS[2] and k[0] != NEXT} == {
        k: v for k, v in before.items() if k[0] != DAYS[2]}


# --------------------------------------------------------------------------- the generator


def test_the_generator_is_deterministic_and_writes_a_file_only_when_it_changed(tmp_path):
    root = tmp_path.as_uri()
    first = energy.write_source("meter_readings", DAYS[0], root, **OPTIONS)
    assert len(first) == 4 and all(first.values())
    assert not any(energy.write_source("meter_readings", DAYS[0], root, **OPTIONS).values())
    changed = energy.write_source("meter_readings", DAYS[0], root, **{**OPTIONS, "seed": 43})
    assert all(changed.values())


def test_lakehouse_generate_energy_writes_a_file_set_per_day(tmp_path):
    from click.testing import CliRunner

    from lakehouse.cli import main

    done = CliRunner().invoke(main, ["generate", "energy", "--days", "2", "--end", str(DAYS[1]), "--out", str(tmp_path),
                                     "--scale", "0.2"])
    assert done.exit_code == 0, done.output
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet"))
    # Per day: 4 meter reading blocks, a forecast, prices, weather; once: customers, tariffs, calendar, zones.
    assert len(files) == 2 * 7 + 4
    assert f"meter_readings/date={DAYS[1]}/readings_18.parquet" in files and "calendar/calendar_2026.parquet" in files


def test_bad_rows_are_extra_rows_and_good_rows_do_not_depend_on_them():
    clean = energy.source_files("meter_readings", DAYS[0], seed=5, scale=0.5, bad_row_rate=0.0)
    dirty = energy.source_files("meter_readings", DAYS[0], seed=5, scale=0.5, bad_row_rate=0.1)
    for path, table in clean.items():
        good = table.to_pylist()
        mixed = dirty[path].to_pylist()
        assert len(mixed) == len(good) + round(0.1 * len(good))
        remaining = list(mixed)
        for row in good:
            remaining.remove(row)  # every good row is there, unchanged
        defects = [r for r in remaining if r["customer_id"] is None or r["reading_hour"] is None or r["kwh"] is None
                   or r["kwh"] < 0 or r["customer_id"] == "C999999" or r in good]
        assert defects == remaining


def test_meter_readings_follow_the_planted_formula():
    """log(kwh / formula without noise) is the noise term: mean 0, standard deviation NOISE_SIGMA."""
    customers = {c.customer_id: c for c in energy.customers(42, 1.0)}
    ratios = []
    for table in energy.source_files("meter_readings", DAYS[1], seed=42, scale=1.0).values():
        for row in table.to_pylist():
            expected = energy.expected_kwh(customers[row["customer_id"]], DAYS[1], row["reading_hour"].hour, 42)
            ratios.append(math.log(row["kwh"] / expected))
    assert len(ratios) == 24 * len(customers)
    assert abs(statistics.fmean(ratios)) < 0.01
    assert abs(statistics.stdev(ratios) - energy.NOISE_SIGMA) < 0.01


# --------------------------------------------------------------------------- the table_map kind on its own


@pytest.fixture
def mapped(lakehouse_home, tmp_path):
    """A one-table map over tmp_path/files/part_*.parquet and a function to land it."""
    root = tmp_path / "files"
    root.mkdir()
    map_file = tmp_path / "map.yml"
    map_file.write_text("tables:\n  things:\n    table: raw.t_things\n    files: 'part_*.parquet'\n    columns: [id]\n")
    source = IngestSource("things", "raw.t_things", "table_map", {}, ["_batch_date"])
    options = {"map": str(map_file), "entry": "things", "root": root.as_uri()}

    def land(day=DAYS[0]):
        return table_map.land_mapped_files("test", source, day, options, "run")

    land.options = options

    def put(name, **columns):
        pq.write_table(pa.table(columns), root / name)

    return land, put


def rows() -> list[dict]:
    return sorted(load_table("raw.t_things").scan().to_arrow().select(["id", "_source_file", "_source_row"]).to_pylist(),
                  key=lambda r: (r["_source_file"], r["_source_row"]))


def test_table_map_loads_each_file_once_and_reloads_a_changed_one(mapped):
    land, put = mapped
    put("part_1.parquet", id=[1, 2, 3])
    put("part_2.parquet", id=[4, 5])
    assert land()["files_loaded"] == 2
    table = load_table("raw.t_things")
    assert len(table.snapshots()) == 1
    assert json.loads(table.current_snapshot().summary["lakehouse.files"])[0]["rows"] == 3
    assert land()["files_loaded"] == 0 and len(load_table("raw.t_things").snapshots()) == 1
    put("part_2.parquet", id=[40, 50, 60])
    put("part_3.parquet", id=[7])
    commits = len(load_table("raw.t_things").metadata.metadata_log)
    summary = land(DAYS[1])
    assert (summary["files_new"], summary["files_changed"], summary["rows_replaced"]) == (1, 1, 2)
    # One commit (one new metadata file) holding the delete of the old rows and the append.
    assert len(load_table("raw.t_things").metadata.metadata_log) == commits + 1
    assert sorted(r["id"] for r in rows()) == [1, 2, 3, 7, 40, 50, 60]
    assert all(len(r["_source_file"]) and r["_source_row"] >= 1 for r in rows())


def test_a_large_backlog_is_loaded_over_several_runs_with_max_files(mapped):
    land, put = mapped
    for n in range(5):
        put(f"part_{n}.parquet", id=[n])
    loads = [table_map.land_mapped_files("test", IngestSource("things", "raw.t_things", "table_map", {}, ["_batch_date"]),
                                         DAYS[0], {**options, "max_files": 2}, "run") for options in [land.options] * 4]
    assert [(s["files_loaded"], s["files_deferred"]) for s in loads] == [(2, 3), (2, 1), (1, 0), (0, 0)]
    assert sorted(r["id"] for r in rows()) == [0, 1, 2, 3, 4]


def test_a_crash_before_the_commit_loses_nothing_and_duplicates_nothing(mapped):
    land, put = mapped
    put("part_1.parquet", id=[1, 2])
    land()
    put("part_1.parquet", id=[1, 2, 3])
    put("part_2.parquet", id=[4])

    def crash(*args, **kwargs):
        raise RuntimeError("killed before the commit")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(table_map, "write", crash)
        with pytest.raises(RuntimeError, match="killed"):
            land(DAYS[1])
    assert sorted(r["id"] for r in rows()) == [1, 2]  # the previous state, whole
    assert land(DAYS[1])["files_loaded"] == 2
    assert sorted(r["id"] for r in rows()) == [1, 2, 3, 4]
    assert land(DAYS[2])["files_loaded"] == 0


def test_schema_drift_adds_new_columns_and_refuses_a_changed_type(mapped):
    land, put = mapped
    put("part_1.parquet", id=pa.array([1, 2], pa.int64()), kwh=[0.5, 0.7])
    land()
    put("part_2.parquet", id=pa.array([3], pa.int32()), kwh=[0.9], meter_type=["smart"])  # a narrower int, a new column
    land()
    data = load_table("raw.t_things").scan().to_arrow()
    assert data.schema.field("id").type == pa.int64() and sorted(data.column("id").to_pylist()) == [1, 2, 3]
    assert sorted(data.column("meter_type").to_pylist(), key=str) == [None, None, "smart"]
    snapshots_before = len(load_table("raw.t_things").snapshots())
    put("part_3.parquet", id=[4], kwh=["a lot"])
    with pytest.raises(IngestError, match=r"schema drift in .*part_3.parquet: column 'kwh' is string"):
        land()
    assert len(load_table("raw.t_things").snapshots()) == snapshots_before
    put("part_3.parquet", kwh=[1.0])
    with pytest.raises(IngestError, match=r"part_3.parquet: missing required column\(s\) \['id'\]"):
        land()


def test_glob_patterns_stay_within_a_folder_unless_double_starred():
    match = lambda pattern, path: bool(table_map.pattern_regex(pattern).match(path))  # noqa: E731
    assert match("meter_readings/date=*/readings_*.parquet", "meter_readings/date=2026-11-09/readings_06.parquet")
    assert not match("meter_readings/date=*/readings_*.parquet", "meter_readings/date=2026-11-09/x/readings_06.parquet")
    assert not match("customers/*.parquet", "customers/old/customers.parquet")
    assert match("customers/**/*.parquet", "customers/old/customers.parquet")
    assert match("customers/**/*.parquet", "customers/customers.parquet")
    assert not match("calendar/calendar_????.parquet", "calendar/calendar_26.parquet")


def test_the_map_expands_to_one_ingest_task_per_table():
    pipeline = get_pipeline("energy")
    assert [s.name for s in pipeline.ingest] == list(SOURCES)
    assert {s.table for s in pipeline.ingest} == {f"raw.energy_{name}" for name in SOURCES}
    assert all(s.kind == "table_map" and s.options["entry"] == s.name for s in pipeline.ingest)
