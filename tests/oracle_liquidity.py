"""The liquidity pipeline rules (pipelines/liquidity/README.md), implemented again in plain Python.

This is the test oracle: it shares no code with the dbt models or the generator, so a test that
compares the two catches a rule implemented wrongly on either side. Inputs are lists of dicts (or
anything with ``to_pylist()``, such as a pyarrow table) holding the raw string columns plus
``_batch_date`` and ``_source_row``.

Interpretations where the README leaves room:

- "blank" means empty after ``str.strip()``. Ids, instrument ids, currencies and haircut classes
  are otherwise compared exactly as given: no trimming, no case folding.
- A valid date is exactly ``YYYY-MM-DD`` and accepted by ``date.fromisoformat``.
- An "integer" is an optional ``-`` then digits; a "number" is an optional ``-``, digits and an
  optional ``.digits``. No whitespace, ``+``, exponents or thousands separators.
- Staging casts round half-up to the declared scale: prices decimal(18,6), ``interest_rate``
  decimal(9,6), ``mid_price`` = round((bid + ask) / 2, 6). Market rule 4 compares the cast prices.
- Only valid rows (rules 1-10, resp. 1-6) take part in de-duplication: an invalid row never
  supersedes a valid one. Keys are (``position_id`` as given, parsed ``as_of_date``), resp.
  (``instrument_id``, parsed ``as_of_date``).
- "Later" compares ``extracted_at`` / ``published_at`` as parsed timestamps (offsets converted to
  UTC); a missing or unparsable one is the earliest (SQL: descending with NULLS LAST).
- Staged and rejected rows keep the metadata columns (``_batch_date``, ``_source_row``, ...).
  Staged positions carry ``notional_amount`` instead of ``notional_cents``.
- ``days_to_maturity`` may be negative or zero; no rule rejects a matured position.
- ``mart_liquidity_risk`` inner-joins staged market data: a position without a quote for its
  instrument on its as-of date has no row. ``adv_value_usd`` is not rounded (it has at most 6
  decimals); ``days_to_liquidate`` is rounded before the tier is chosen.
- Cash flows are rounded per position, then summed per day. The cash-flow amount is computed
  exactly (notional × (360 + rate × days) / 360) so a half cent rounds up, never by accident of
  intermediate precision.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal, localcontext

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
INTEGER = re.compile(r"-?\d+")
NUMBER = re.compile(r"-?\d+(\.\d+)?")
CENT, SIX_PLACES, FOUR_PLACES = Decimal("0.01"), Decimal("0.000001"), Decimal("0.0001")
HAIRCUT = {tier: Decimal(pct) for tier, pct in
           (("LEVEL_1", "0.00"), ("LEVEL_2A", "0.15"), ("LEVEL_2B", "0.50"), ("ILLIQUID", "1.00"))}
FORECAST_DAYS = 30


def _rows(rows) -> list[dict]:
    return rows.to_pylist() if hasattr(rows, "to_pylist") else list(rows)


def _round(value: Decimal, places: Decimal) -> Decimal:
    return value.quantize(places, rounding=ROUND_HALF_UP)


def _blank(value) -> bool:
    return value is None or str(value).strip() == ""


def _date(value) -> dt.date | None:
    if not isinstance(value, str) or not DATE.fullmatch(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _timestamp(value) -> dt.datetime | None:
    try:
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _is(pattern: re.Pattern, value) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _later_key(row: dict, timestamp_column: str):
    moment = _timestamp(row.get(timestamp_column))
    return (moment is not None, moment or dt.datetime.min, str(row.get("_batch_date")), row.get("_source_row") or 0)


def _keep_latest(candidates: list[tuple[dict, dict]], key, timestamp_column: str, reason: str):
    """candidates: (raw, staged) pairs of valid rows. Returns (staged winners, rejected losers)."""
    groups = defaultdict(list)
    for raw, staged in candidates:
        groups[key(staged)].append((raw, staged))
    staged, rejected = [], []
    for group in groups.values():
        group.sort(key=lambda pair: _later_key(pair[0], timestamp_column))
        staged.append(group[-1][1])
        rejected.extend({**raw, "rejection_reason": reason} for raw, _ in group[:-1])
    return staged, rejected


# ---------------------------------------------------------------- staging


def _position_defect(row: dict, instruments: set[str], currencies: set[str]) -> str | None:
    if _blank(row.get("position_id")):
        return "missing position_id"
    if _blank(row.get("portfolio_id")):
        return "missing portfolio_id"
    if _blank(row.get("instrument_id")):
        return "missing instrument_id"
    if row["instrument_id"] not in instruments:
        return "unknown instrument_id"
    if _date(row.get("as_of_date")) is None:
        return "unparsable as_of_date"
    if _date(row.get("maturity_date")) is None:
        return "unparsable maturity_date"
    if not _is(INTEGER, row.get("notional_cents")):
        return "non-numeric notional_cents"
    if int(row["notional_cents"]) < 0:
        return "negative notional_cents"
    if row.get("currency") not in currencies:
        return "unknown currency"
    if not _is(NUMBER, row.get("interest_rate")):
        return "non-numeric interest_rate"
    return None


def _staged_position(row: dict) -> dict:
    business = {"position_id", "portfolio_id", "instrument_id", "notional_cents", "currency",
                "maturity_date", "interest_rate", "as_of_date", "extracted_at"}
    return {
        **{name: value for name, value in row.items() if name not in business},
        "position_id": row["position_id"],
        "portfolio_id": row["portfolio_id"],
        "instrument_id": row["instrument_id"],
        "notional_amount": _round(Decimal(int(row["notional_cents"])) / 100, CENT),
        "currency": row["currency"],
        "maturity_date": _date(row["maturity_date"]),
        "interest_rate": _round(Decimal(row["interest_rate"]), SIX_PLACES),
        "as_of_date": _date(row["as_of_date"]),
        "extracted_at": _timestamp(row.get("extracted_at")),
    }


def validate_positions(rows, instruments: set[str], currencies: set[str]) -> tuple[list[dict], list[dict]]:
    valid, rejected = [], []
    for row in _rows(rows):
        reason = _position_defect(row, instruments, currencies)
        if reason:
            rejected.append({**row, "rejection_reason": reason})
        else:
            valid.append((row, _staged_position(row)))
    staged, superseded = _keep_latest(
        valid, lambda r: (r["position_id"], r["as_of_date"]), "extracted_at",
        "duplicate position_id: superseded by a later record",
    )
    return staged, rejected + superseded


def _market_defect(row: dict) -> str | None:
    if _blank(row.get("instrument_id")):
        return "missing instrument_id"
    if _date(row.get("as_of_date")) is None:
        return "unparsable as_of_date"
    if not (_is(NUMBER, row.get("bid_price")) and _is(NUMBER, row.get("ask_price"))):
        return "non-numeric price"
    bid, ask = _round(Decimal(row["bid_price"]), SIX_PLACES), _round(Decimal(row["ask_price"]), SIX_PLACES)
    if bid <= 0 or ask < bid:
        return "invalid bid/ask"
    if not _is(INTEGER, row.get("avg_daily_volume")) or int(row["avg_daily_volume"]) <= 0:
        return "invalid avg_daily_volume"
    if row.get("haircut_class") not in ("A", "B", "C", "D"):
        return "unknown haircut_class"
    return None


def _staged_quote(row: dict) -> dict:
    bid, ask = _round(Decimal(row["bid_price"]), SIX_PLACES), _round(Decimal(row["ask_price"]), SIX_PLACES)
    business = {"instrument_id", "as_of_date", "bid_price", "ask_price", "avg_daily_volume",
                "haircut_class", "published_at"}
    return {
        **{name: value for name, value in row.items() if name not in business},
        "instrument_id": row["instrument_id"],
        "as_of_date": _date(row["as_of_date"]),
        "bid_price": bid,
        "ask_price": ask,
        "mid_price": _round((bid + ask) / 2, SIX_PLACES),
        "avg_daily_volume": int(row["avg_daily_volume"]),
        "haircut_class": row["haircut_class"],
        "published_at": _timestamp(row.get("published_at")),
    }


def validate_market_data(rows) -> tuple[list[dict], list[dict]]:
    valid, rejected = [], []
    for row in _rows(rows):
        reason = _market_defect(row)
        if reason:
            rejected.append({**row, "rejection_reason": reason})
        else:
            valid.append((row, _staged_quote(row)))
    staged, superseded = _keep_latest(
        valid, lambda r: (r["instrument_id"], r["as_of_date"]), "published_at",
        "duplicate instrument_id: superseded by a later record",
    )
    return staged, rejected + superseded


# ---------------------------------------------------------------- marts


def _mart_positions(staged_by_system: dict[str, list[dict]], asset_class: dict, usd_rate: dict) -> list[dict]:
    rows = []
    for system, positions in staged_by_system.items():
        for p in positions:
            rows.append({
                "as_of_date": p["as_of_date"], "source_system": system, "position_id": p["position_id"],
                "portfolio_id": p["portfolio_id"], "instrument_id": p["instrument_id"],
                "asset_class": asset_class[p["instrument_id"]], "currency": p["currency"],
                "notional_amount": p["notional_amount"],
                "notional_usd": _round(p["notional_amount"] * usd_rate[p["currency"]], CENT),
                "maturity_date": p["maturity_date"], "interest_rate": p["interest_rate"],
                "days_to_maturity": (p["maturity_date"] - p["as_of_date"]).days,
            })
    return sorted(rows, key=lambda r: (r["as_of_date"], r["source_system"], r["position_id"]))


def _tier(haircut_class: str, days: Decimal) -> str:
    if haircut_class == "A" and days <= 1:
        return "LEVEL_1"
    if haircut_class in ("A", "B") and days <= 5:
        return "LEVEL_2A"
    if haircut_class in ("A", "B", "C") and days <= 20:
        return "LEVEL_2B"
    return "ILLIQUID"


def _mart_liquidity_risk(positions: list[dict], quotes: list[dict], participation: Decimal) -> list[dict]:
    quote_of = {(q["instrument_id"], q["as_of_date"]): q for q in quotes}
    rows = []
    for p in positions:
        quote = quote_of.get((p["instrument_id"], p["as_of_date"]))
        if quote is None:
            continue
        adv_value = quote["avg_daily_volume"] * quote["mid_price"]
        days = _round(p["notional_usd"] / (adv_value * participation), FOUR_PLACES)
        tier = _tier(quote["haircut_class"], days)
        rows.append({
            **{k: p[k] for k in ("as_of_date", "source_system", "position_id", "portfolio_id", "instrument_id")},
            "haircut_class": quote["haircut_class"], "notional_usd": p["notional_usd"],
            "mid_price": quote["mid_price"], "avg_daily_volume": quote["avg_daily_volume"],
            "adv_value_usd": adv_value, "days_to_liquidate": days, "liquidity_tier": tier,
            "haircut_pct": HAIRCUT[tier],
            "liquidity_adjusted_value_usd": _round(p["notional_usd"] * (1 - HAIRCUT[tier]), CENT),
        })
    return rows


def _mart_cashflow_forecast(positions: list[dict]) -> list[dict]:
    portfolios = {(p["as_of_date"], p["portfolio_id"]) for p in positions}
    inflow, outflow = defaultdict(Decimal), defaultdict(Decimal)
    for p in positions:
        if 1 <= p["days_to_maturity"] <= FORECAST_DAYS:
            amount = p["notional_usd"] * (360 + p["interest_rate"] * p["days_to_maturity"]) / 360
            flows = inflow if p["source_system"] == "LOANS" else outflow
            flows[(p["as_of_date"], p["portfolio_id"], p["maturity_date"])] += _round(amount, CENT)
    rows = []
    for as_of, portfolio in sorted(portfolios):
        cumulative = Decimal("0.00")
        for offset in range(1, FORECAST_DAYS + 1):
            day = as_of + dt.timedelta(days=offset)
            key = (as_of, portfolio, day)
            flow_in, flow_out = _round(inflow[key], CENT), _round(outflow[key], CENT)
            cumulative += flow_in - flow_out
            rows.append({
                "as_of_date": as_of, "portfolio_id": portfolio, "forecast_date": day, "day_offset": offset,
                "inflow_usd": flow_in, "outflow_usd": flow_out, "net_flow_usd": flow_in - flow_out,
                "cumulative_net_flow_usd": cumulative,
            })
    return rows


def expected_marts(market_rows_raw, loans_raw, deposits_raw, instrument_ref, currencies,
                   adv_participation_rate=Decimal("0.25")) -> dict[str, list[dict]]:
    """Every staging, quarantine and mart table the pipeline should produce from these raw rows."""
    instrument_ref, currencies = _rows(instrument_ref), _rows(currencies)
    asset_class = {r["instrument_id"]: r["asset_class"] for r in instrument_ref}
    usd_rate = {r["currency_code"]: Decimal(str(r["usd_rate"])) for r in currencies}
    with localcontext() as context:
        context.prec = 60  # far beyond decimal(38, x): intermediate results stay exact
        quotes, rejected_quotes = validate_market_data(market_rows_raw)
        loans, rejected_loans = validate_positions(loans_raw, set(asset_class), set(usd_rate))
        deposits, rejected_deposits = validate_positions(deposits_raw, set(asset_class), set(usd_rate))
        positions = _mart_positions({"LOANS": loans, "DEPOSITS": deposits}, asset_class, usd_rate)
        risk = _mart_liquidity_risk(positions, quotes, Decimal(str(adv_participation_rate)))
        forecast = _mart_cashflow_forecast(positions)
    by_source_row = lambda r: (str(r.get("_batch_date")), r.get("_source_row") or 0)  # noqa: E731
    return {
        "stg_market_data": sorted(quotes, key=lambda r: (r["instrument_id"], r["as_of_date"])),
        "stg_positions_loans": sorted(loans, key=lambda r: (r["position_id"], r["as_of_date"])),
        "stg_positions_deposits": sorted(deposits, key=lambda r: (r["position_id"], r["as_of_date"])),
        "rejected_market_data": sorted(rejected_quotes, key=by_source_row),
        "rejected_positions_loans": sorted(rejected_loans, key=by_source_row),
        "rejected_positions_deposits": sorted(rejected_deposits, key=by_source_row),
        "mart_positions": positions,
        "mart_liquidity_risk": risk,
        "mart_cashflow_forecast": forecast,
    }
