"""The liquidity source generator: deterministic, shaped like the real extracts, and its bad rows
are exactly the defects the README's validation rules reject (checked with the independent oracle).

Expected rejections are counted here from the raw values alone (one defect per bad row), not from
the generator's list of kinds, so a generator that corrupts the wrong field or a good row fails.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.loader import pipeline_module

try:
    import oracle_liquidity as oracle
except ImportError:  # tests/ became a package
    from tests import oracle_liquidity as oracle

liquidity = pipeline_module("liquidity")
SEEDS = Path(__file__).resolve().parents[1] / "pipelines/liquidity/dbt/seeds"
DAY = dt.date(2026, 11, 1)
GENERATORS = {
    "market_data": liquidity.market_data,
    "positions_loans": liquidity.positions_loans,
    "positions_deposits": liquidity.positions_deposits,
}
POSITION_COLUMNS = ["position_id", "portfolio_id", "instrument_id", "notional_cents", "currency",
                    "maturity_date", "interest_rate", "as_of_date", "extracted_at"]
MARKET_COLUMNS = ["instrument_id", "as_of_date", "bid_price", "ask_price", "avg_daily_volume",
                  "haircut_class", "published_at"]
POSITION_REASONS = {
    "missing position_id", "missing portfolio_id", "unknown instrument_id", "unparsable as_of_date",
    "unparsable maturity_date", "non-numeric notional_cents", "negative notional_cents",
    "unknown currency", "non-numeric interest_rate", "duplicate position_id: superseded by a later record",
}
MARKET_REASONS = {
    "missing instrument_id", "unparsable as_of_date", "non-numeric price", "invalid bid/ask",
    "invalid avg_daily_volume", "unknown haircut_class", "duplicate instrument_id: superseded by a later record",
}


def _seed(name: str) -> list[dict]:
    with (SEEDS / name).open(newline="") as handle:
        return list(csv.DictReader(handle))


INSTRUMENTS = _seed("instrument_reference.csv")
CURRENCIES = _seed("currencies.csv")
INSTRUMENT_IDS = {row["instrument_id"] for row in INSTRUMENTS}


def _raw(table: pa.Table, day: dt.date = DAY) -> list[dict]:
    """What the ingest task lands: the extract plus its batch metadata."""
    return [{**row, "_batch_date": day, "_source_row": n} for n, row in enumerate(table.to_pylist(), 1)]


def _marts(day: dt.date, **options) -> tuple[dict, dict]:
    raws = {name: _raw(generate(day, **options), day) for name, generate in GENERATORS.items()}
    marts = oracle.expected_marts(raws["market_data"], raws["positions_loans"], raws["positions_deposits"],
                                  INSTRUMENTS, CURRENCIES)
    return raws, marts


def _is_float(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _is_day(value) -> bool:
    try:
        return len(value) == 10 and dt.date.fromisoformat(value) is not None
    except (TypeError, ValueError):
        return False


def _position_defects(row: dict) -> list[str]:
    cents = row["notional_cents"] or ""
    checks = {
        "missing position_id": not (row["position_id"] or "").strip(),
        "missing portfolio_id": not (row["portfolio_id"] or "").strip(),
        "unknown instrument_id": row["instrument_id"] not in INSTRUMENT_IDS,
        "unparsable as_of_date": row["as_of_date"] != DAY.isoformat(),
        "unparsable maturity_date": not _is_day(row["maturity_date"]),
        "non-numeric notional_cents": not cents.removeprefix("-").isdigit(),
        "negative notional_cents": cents.startswith("-") and cents[1:].isdigit() and int(cents[1:]) > 0,
        "unknown currency": row["currency"] not in {"USD", "EUR", "GBP", "CHF"},
        "non-numeric interest_rate": not _is_float(row["interest_rate"]),
    }
    return [reason for reason, failed in checks.items() if failed]


def _market_defects(row: dict) -> list[str]:
    prices_ok = _is_float(row["bid_price"]) and _is_float(row["ask_price"])
    volume = row["avg_daily_volume"] or ""
    checks = {
        "missing instrument_id": not (row["instrument_id"] or "").strip(),
        "unparsable as_of_date": row["as_of_date"] != DAY.isoformat(),
        "non-numeric price": not prices_ok,
        "invalid bid/ask": prices_ok and not 0 < float(row["bid_price"]) <= float(row["ask_price"]),
        "invalid avg_daily_volume": not (volume.isdigit() and int(volume) > 0),
        "unknown haircut_class": row["haircut_class"] not in {"A", "B", "C", "D"},
    }
    return [reason for reason, failed in checks.items() if failed]


def _expected_rejections(raw: list[dict], defects, key: str, stamp: str, duplicate_reason: str):
    """(reason counts, the rows that must win among re-sent copies), from the raw values alone."""
    reasons, clean = collections.Counter(), collections.defaultdict(list)
    for row in raw:
        found = defects(row)
        assert len(found) <= 1, f"a bad row must carry one defect: {row} {found}"
        if found:
            reasons[found[0]] += 1
        else:
            clean[row[key]].append(row)
    winners = {}
    for copies in clean.values():
        if len(copies) > 1:
            reasons[duplicate_reason] += len(copies) - 1
            winners[copies[0][key]] = max(copies, key=lambda row: row[stamp])
    return reasons, winners


@pytest.mark.parametrize("name", GENERATORS)
def test_same_arguments_give_the_same_table_and_another_seed_another(name):
    generate = GENERATORS[name]
    table = generate(DAY, seed=7, scale=0.1, bad_row_rate=0.05)
    assert table.equals(generate(DAY, seed=7, scale=0.1, bad_row_rate=0.05))
    assert not table.equals(generate(DAY, seed=8, scale=0.1, bad_row_rate=0.05))
    assert not table.equals(generate(DAY + dt.timedelta(days=1), seed=7, scale=0.1, bad_row_rate=0.05))


@pytest.mark.parametrize("name", GENERATORS)
def test_template_strings_are_coerced(name):
    generate = GENERATORS[name]
    expected = generate(DAY, seed=42, scale=0.05, bad_row_rate=0.01)
    assert generate("2026-11-01", seed="42", scale="0.05", bad_row_rate="0.01").equals(expected)
    assert generate(dt.datetime(2026, 11, 1, 0, 0), seed=42, scale=0.05, bad_row_rate=0.01).equals(expected)


DIGEST = """
import hashlib, datetime
from lakehouse.loader import pipeline_module

g = pipeline_module("liquidity")

tables = [f(datetime.date(2026, 11, 1), seed=3, scale=0.05, bad_row_rate=0.1)
          for f in (g.market_data, g.positions_loans, g.positions_deposits)]
print(hashlib.sha256(repr([t.to_pydict() for t in tables]).encode()).hexdigest())
"""


def test_output_does_not_depend_on_the_process(capsys):
    """Interpreters with other hash seeds must produce the same bytes (no hash(), no clock)."""
    exec(DIGEST, {})
    here = capsys.readouterr().out.strip()
    for hash_seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        other = subprocess.run([sys.executable, "-c", DIGEST], capture_output=True, text=True, env=env, check=True)
        assert other.stdout.strip() == here


@pytest.mark.parametrize("name", GENERATORS)
def test_columns_are_the_raw_extract_columns_all_strings(name):
    table = GENERATORS[name](DAY, scale=0.05, bad_row_rate=0.2)
    expected = MARKET_COLUMNS if name == "market_data" else POSITION_COLUMNS
    assert table.schema.names == expected
    assert all(field.type == pa.string() for field in table.schema)


@pytest.mark.parametrize("scale, loans, deposits", [(1.0, 2000, 1500), (0.02, 40, 30), (0.0001, 1, 1)])
def test_clean_extract_has_the_scaled_number_of_positions(scale, loans, deposits):
    assert liquidity.positions_loans(DAY, scale=scale).num_rows == loans
    assert liquidity.positions_deposits(DAY, scale=scale).num_rows == deposits
    assert liquidity.market_data(DAY, scale=scale).num_rows == len(INSTRUMENTS)


@pytest.mark.parametrize("name", ["positions_loans", "positions_deposits"])
def test_positions_keep_their_id_and_terms_from_one_day_to_the_next(name):
    today, tomorrow = (
        {row["position_id"]: row for row in GENERATORS[name](day, scale=0.5).to_pylist()}
        for day in (DAY, DAY + dt.timedelta(days=1))
    )
    kept = today.keys() & tomorrow.keys()
    assert len(kept) >= 0.9 * len(today)
    prefix = "LN-" if name == "positions_loans" else "DP-"
    assert all(position_id.startswith(prefix) for position_id in today)
    terms = ["portfolio_id", "instrument_id", "notional_cents", "currency", "maturity_date", "interest_rate"]
    assert all([today[i][t] for t in terms] == [tomorrow[i][t] for t in terms] for i in kept)
    # those that left matured today, so none of them is alive tomorrow
    assert all(today[i]["maturity_date"] == (DAY + dt.timedelta(days=1)).isoformat() for i in today.keys() - kept)


def test_instruments_are_the_seed_file_with_stable_haircut_classes():
    assert [row["instrument_id"] for row in INSTRUMENTS] == [f"INS{i:04d}" for i in range(1, 41)]
    classes = [
        {row["instrument_id"]: row["haircut_class"] for row in liquidity.market_data(day).to_pylist()}
        for day in (DAY, DAY + dt.timedelta(days=30))
    ]
    assert set(classes[0]) == INSTRUMENT_IDS and classes[0] == classes[1]
    assert collections.Counter(classes[0].values()) == {"A": 12, "B": 12, "C": 10, "D": 6}
    for name in ("positions_loans", "positions_deposits"):
        assert set(GENERATORS[name](DAY).column("instrument_id").to_pylist()) <= INSTRUMENT_IDS


def test_every_bad_row_kind_is_rejected_for_its_reason():
    raws, marts = _marts(DAY, scale=0.02, bad_row_rate=0.2)
    cases = [
        ("market_data", _market_defects, "instrument_id", "published_at", MARKET_REASONS),
        ("positions_loans", _position_defects, "position_id", "extracted_at", POSITION_REASONS),
        ("positions_deposits", _position_defects, "position_id", "extracted_at", POSITION_REASONS),
    ]
    seen = collections.Counter()
    for name, defects, key, stamp, reasons in cases:
        duplicate_reason = next(reason for reason in reasons if reason.startswith("duplicate"))
        expected, winners = _expected_rejections(raws[name], defects, key, stamp, duplicate_reason)
        bad = sum(expected.values())
        assert bad == max(1, round(0.2 * (len(raws[name]) - bad))), name
        rejected = marts[f"rejected_{name}"]
        assert collections.Counter(row["rejection_reason"] for row in rejected) == expected, name
        staged = {row[key]: row for row in marts[f"stg_{name}"]}
        for row_id, winner in winners.items():  # the re-sent or re-published copy wins
            assert staged[row_id]["_source_row"] == winner["_source_row"], name
        seen.update(expected)
    assert set(seen) == POSITION_REASONS | MARKET_REASONS


@pytest.mark.parametrize("name", GENERATORS)
def test_bad_rows_are_extra_and_a_resent_copy_is_the_later_changed_record(name):
    """The clean extract (rate 0) holds the originals: they must all survive, and lose to their copies."""
    generate = GENERATORS[name]
    key, stamp, defects = (("instrument_id", "published_at", _market_defects) if name == "market_data"
                           else ("position_id", "extracted_at", _position_defects))
    undated = lambda row: tuple(value for column, value in row.items() if column != stamp)  # noqa: E731
    originals = collections.Counter(map(undated, generate(DAY, scale=0.1).to_pylist()))
    dirty = generate(DAY, scale=0.1, bad_row_rate=0.2).to_pylist()
    assert not originals - collections.Counter(map(undated, dirty)), "a good row was removed or changed"
    clean_copies = collections.defaultdict(list)
    for row in dirty:
        if not defects(row):
            clean_copies[row[key]].append(row)
    resent = [copies for copies in clean_copies.values() if len(copies) > 1]
    assert resent
    for copies in resent:
        assert sum(undated(row) in originals for row in copies) == 1
        assert undated(max(copies, key=lambda row: row[stamp])) not in originals


def test_every_raw_row_is_staged_or_rejected_never_both():
    raws, marts = _marts(DAY, scale=0.1, bad_row_rate=0.05)
    for name, staged_name in [("market_data", "stg_market_data"), ("positions_loans", "stg_positions_loans"),
                              ("positions_deposits", "stg_positions_deposits")]:
        staged = [row["_source_row"] for row in marts[staged_name]]
        rejected = [row["_source_row"] for row in marts[f"rejected_{name}"]]
        assert len(staged) + len(rejected) == len(raws[name])
        assert set(staged) | set(rejected) == set(range(1, len(raws[name]) + 1))


def test_full_scale_day_has_every_liquidity_tier_and_cash_flows():
    _, marts = _marts(DAY, scale=1.0, bad_row_rate=0.01)
    positions, risk = marts["mart_positions"], marts["mart_liquidity_risk"]
    assert len(risk) == len(positions) == 3500  # every valid position found its market data
    assert {row["liquidity_tier"] for row in risk} == {"LEVEL_1", "LEVEL_2A", "LEVEL_2B", "ILLIQUID"}
    maturing = sum(1 for row in positions if row["days_to_maturity"] <= 30)
    assert 0.15 <= maturing / len(positions) <= 0.25
    assert max(row["days_to_maturity"] for row in positions) <= 1826
    forecast = marts["mart_cashflow_forecast"]
    assert len(forecast) == 30 * len({row["portfolio_id"] for row in positions})
    flowing = {row["portfolio_id"] for row in forecast if row["inflow_usd"] or row["outflow_usd"]}
    assert flowing


def test_oracle_picks_the_later_valid_record():
    """README tie-breaks: extracted_at, then _batch_date, then _source_row; invalid rows never win."""
    base = {"position_id": "LN-1", "portfolio_id": "PF01", "instrument_id": "INS0001", "notional_cents": "100",
            "currency": "USD", "maturity_date": "2026-11-05", "interest_rate": "0.05", "as_of_date": "2026-11-01",
            "extracted_at": "2026-11-01T19:00:00.000", "_batch_date": DAY, "_source_row": 1}
    rows = [
        base,
        {**base, "notional_cents": "200", "_batch_date": DAY + dt.timedelta(days=1)},  # same time, later batch
        {**base, "notional_cents": "300", "_source_row": 7},
        {**base, "notional_cents": "4OO", "extracted_at": "2026-11-01T23:00:00.000", "_source_row": 8},
    ]
    staged, rejected = oracle.validate_positions(rows, INSTRUMENT_IDS, {"USD"})
    assert [row["notional_amount"] for row in staged] == [Decimal("2.00")]
    assert sorted(row["rejection_reason"] for row in rejected) == [
        "duplicate position_id: superseded by a later record"] * 2 + ["non-numeric notional_cents"]
