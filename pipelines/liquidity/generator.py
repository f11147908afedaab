"""Seeded synthetic source extracts for the liquidity pipeline (see pipelines/liquidity/README.md).

For one as-of date (the batch date) this generates what the three upstream systems deliver: the
market data feed (one row per instrument), the loan system extract and the core banking deposit
extract. Every column is a string, as in a raw file extract, and ``bad_row_rate`` mixes in extra
malformed rows, one defect each, so that staging validation and quarantine have work to do.

The output depends only on (seed, batch_date, scale, bad_row_rate): every random draw comes from a
``random.Random`` seeded with a string built from those values (string seeds go through SHA-512, so
unlike ``hash()`` they are the same in every process).

Positions live in *slots*: a slot rolls one position of a fixed tenor over and over from an epoch,
so exactly ``round(scale * N)`` positions are alive on any date, a position keeps its id and terms
for its whole life, and a date's positions are found without replaying history.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

INSTRUMENT_SEED_FILE = (
    Path(__file__).resolve().parent / "dbt/seeds/instrument_reference.csv"
)
MARKET_COLUMNS = (
    "instrument_id", "as_of_date", "bid_price", "ask_price", "avg_daily_volume", "haircut_class",
    "published_at",
)
POSITION_COLUMNS = (
    "position_id", "portfolio_id", "instrument_id", "notional_cents", "currency", "maturity_date",
    "interest_rate", "as_of_date", "extracted_at",
)

EPOCH = dt.date(2000, 1, 1)
MAX_TENOR_DAYS = 1826  # five years
PORTFOLIOS = tuple(f"PF{i:02d}" for i in range(1, 9))
PORTFOLIO_WEIGHTS = (0.20, 0.16, 0.14, 0.12, 0.12, 0.10, 0.08, 0.08)
CURRENCIES = ("USD", "EUR", "GBP", "CHF")
CURRENCY_WEIGHTS = (0.60, 0.20, 0.12, 0.08)
# About 27% of slots roll short money-market tenors; with the long ones (1-5 years) this puts
# roughly 20% of the live book inside the 30-day cash-flow window.
SHORT_SHARE = 0.27
SHORT_TENORS = (7, 14, 30, 60, 90, 180)
SHORT_TENOR_WEIGHTS = (0.10, 0.10, 0.30, 0.20, 0.20, 0.10)
HAIRCUT_SHARES = (("A", 0.30), ("B", 0.30), ("C", 0.25))  # the rest is D
SPREAD_BY_CLASS = {"A": (0.0005, 0.003), "B": (0.001, 0.006), "C": (0.004, 0.012), "D": (0.008, 0.02)}

Row = dict[str, str | None]
Corruption = Callable[[Row, random.Random], Row]


@dataclass(frozen=True)
class Book:
    """One position source system and the shape of its book."""

    source: str
    id_prefix: str
    positions_per_day: int
    notional_median: float
    notional_min: float
    notional_max: float
    rate_min: float
    rate_max: float


LOANS = Book("positions_loans", "LN", 2000, 400_000, 10_000, 50_000_000, 0.02, 0.09)
DEPOSITS = Book("positions_deposits", "DP", 1500, 40_000, 1_000, 10_000_000, 0.0, 0.04)


@dataclass(frozen=True)
class Instrument:
    instrument_id: str
    haircut_class: str
    base_mid: float
    spread: float
    base_adv: float
    phase: float


@dataclass(frozen=True)
class Slot:
    tenor_days: int
    phase_days: int


# ---------------------------------------------------------------- arguments and randomness


def _rng(*parts: object) -> random.Random:
    return random.Random("|".join(str(part) for part in parts))


def _coerce(batch_date, seed, scale, bad_row_rate) -> tuple[dt.date, int, float, float]:
    """Airflow templates hand everything over as strings."""
    if isinstance(batch_date, dt.datetime):
        batch_date = batch_date.date()
    elif not isinstance(batch_date, dt.date):
        batch_date = dt.date.fromisoformat(str(batch_date).strip()[:10])
    if batch_date < EPOCH + dt.timedelta(days=MAX_TENOR_DAYS):
        raise ValueError(f"batch_date {batch_date} is before the generator's history starts")
    if not float(seed).is_integer():
        raise ValueError(f"seed must be a whole number, got {seed!r}")
    seed, scale, rate = int(float(seed)), float(scale), float(bad_row_rate)
    if scale <= 0 or not 0 <= rate <= 1:
        raise ValueError(f"need scale > 0 and 0 <= bad_row_rate <= 1, got {scale}, {rate}")
    return batch_date, seed, scale, rate


def _evening(day: dt.date, start: dt.time, offset_ms: int) -> str:
    moment = dt.datetime.combine(day, start) + dt.timedelta(milliseconds=offset_ms)
    return moment.isoformat(timespec="milliseconds")


def _to_table(rows: list[Row], columns: tuple[str, ...]) -> pa.Table:
    schema = pa.schema([(name, pa.string()) for name in columns])
    return pa.Table.from_pydict({name: [row[name] for row in rows] for name in columns}, schema=schema)


# ---------------------------------------------------------------- instruments and market data


@functools.lru_cache(maxsize=1)
def instrument_reference() -> tuple[dict[str, str], ...]:
    """The dbt seed is the one source of truth for the instrument universe."""
    with INSTRUMENT_SEED_FILE.open(newline="") as handle:
        return tuple(csv.DictReader(handle))


@functools.lru_cache(maxsize=8)
def _instruments(seed: int) -> tuple[Instrument, ...]:
    rng = _rng(seed, "instruments")
    reference = instrument_reference()
    # Sovereigns lean to class A and equities/corporates to C/D, with noise, in fixed shares.
    lean = {"GOVERNMENT_BOND": 0.0, "COVERED_BOND": 1.0, "EQUITY": 1.5, "CORPORATE_BOND": 2.0}
    scores = {row["instrument_id"]: lean.get(row["asset_class"], 1.0) + rng.uniform(0, 2.5) for row in reference}
    ranked = sorted(scores, key=scores.get)
    classes, start = {}, 0
    for haircut_class, share in HAIRCUT_SHARES:
        count = round(share * len(ranked))
        classes.update(dict.fromkeys(ranked[start:start + count], haircut_class))
        start += count
    classes.update(dict.fromkeys(ranked[start:], "D"))
    return tuple(_instrument(row, classes[row["instrument_id"]], rng) for row in reference)


def _instrument(row: dict[str, str], haircut_class: str, rng: random.Random) -> Instrument:
    if row["asset_class"] == "EQUITY":
        base_mid = min(480.0, max(6.0, rng.lognormvariate(math.log(60), 1.0)))
    else:
        base_mid = rng.uniform(85, 115)  # bonds trade near par
    return Instrument(
        instrument_id=row["instrument_id"],
        haircut_class=haircut_class,
        base_mid=base_mid,
        spread=rng.uniform(*SPREAD_BY_CLASS[haircut_class]),
        base_adv=min(4e6, max(1.5e3, rng.lognormvariate(math.log(7e4), 1.3))),
        phase=rng.uniform(0, 2 * math.pi),
    )


def _quote(instrument: Instrument, day: dt.date, rng: random.Random) -> Row:
    drift = 1 + 0.04 * math.sin(2 * math.pi * day.toordinal() / 90 + instrument.phase)
    mid = min(500.0, max(5.0, instrument.base_mid * drift * (1 + rng.gauss(0, 0.004))))
    spread = min(0.02, max(0.0005, instrument.spread * rng.uniform(0.9, 1.1)))
    volume = min(5e6, max(1e3, instrument.base_adv * rng.lognormvariate(0, 0.15)))
    return {
        "instrument_id": instrument.instrument_id,
        "as_of_date": day.isoformat(),
        "bid_price": f"{mid * (1 - spread / 2):.4f}",
        "ask_price": f"{mid * (1 + spread / 2):.4f}",
        "avg_daily_volume": str(int(volume)),
        "haircut_class": instrument.haircut_class,
        "published_at": None,
    }


def _republished(row: Row, rng: random.Random) -> Row:
    factor = rng.choice((0.997, 0.998, 1.002, 1.003))  # a corrected quote, still a valid one
    row["bid_price"] = f"{float(row['bid_price']) * factor:.4f}"
    row["ask_price"] = f"{float(row['ask_price']) * factor:.4f}"
    return row


def _bad_volume(row: Row, rng: random.Random) -> Row:
    row["avg_daily_volume"] = rng.choice(("0", "-" + str(row["avg_daily_volume"])))
    return row


def _bad_bid_ask(row: Row, rng: random.Random) -> Row:
    if rng.random() < 0.5:
        row["bid_price"], row["ask_price"] = row["ask_price"], row["bid_price"]
    else:
        row["ask_price"] = f"{float(row['bid_price']) * 0.99:.4f}"
    return row


def _set(column: str, *choices: str | None) -> Corruption:
    def corrupt(row: Row, rng: random.Random) -> Row:
        row[column] = rng.choice(choices)
        return row

    return corrupt


def _set_price(row: Row, rng: random.Random) -> Row:
    row[rng.choice(("bid_price", "ask_price"))] = rng.choice(("N/A", "1,234.50", "abc"))
    return row


MARKET_BAD_KINDS: tuple[tuple[str, Corruption], ...] = (
    ("missing instrument_id", _set("instrument_id", "", None, "  ")),
    ("unparsable as_of_date", _set("as_of_date", "2026-02-30", "today", "2026-13-45")),
    ("non-numeric price", _set_price),
    ("invalid bid/ask", _bad_bid_ask),
    ("invalid avg_daily_volume", _bad_volume),
    ("unknown haircut_class", _set("haircut_class", "Z")),
    ("duplicate", _republished),
)


def market_data(
    batch_date: dt.date, *, seed: int = 42, scale: float = 1.0, bad_row_rate: float = 0.0
) -> pa.Table:
    """Closing quotes for every instrument on the as-of date; ``scale`` does not change the universe."""
    day, seed, _, rate = _coerce(batch_date, seed, scale, bad_row_rate)
    rng = _rng(seed, "market_data", day.toordinal())
    rows = _mix_in_bad_rows([_quote(i, day, rng) for i in _instruments(seed)], MARKET_BAD_KINDS, rate, rng)
    for index, row in enumerate(rows):
        row["published_at"] = _evening(day, dt.time(17, 30), index * 20_000)
    return _to_table(rows, MARKET_COLUMNS)


# ---------------------------------------------------------------- positions


@functools.lru_cache(maxsize=8)
def _slots(seed: int, source: str, count: int) -> tuple[Slot, ...]:
    rng = _rng(seed, source, "slots")
    slots = []
    for _ in range(count):
        if rng.random() < SHORT_SHARE:
            tenor = rng.choices(SHORT_TENORS, SHORT_TENOR_WEIGHTS)[0]
        else:
            tenor = rng.randint(365, MAX_TENOR_DAYS)
        slots.append(Slot(tenor, rng.randrange(tenor)))
    return tuple(slots)


def _live_position(book: Book, seed: int, slot_index: int, slot: Slot, slots: int, day: dt.date) -> Row:
    """The position a slot holds on ``day``: its terms depend only on which roll of the slot it is."""
    roll = ((day - EPOCH).days - slot.phase_days) // slot.tenor_days
    start = EPOCH + dt.timedelta(days=slot.phase_days + roll * slot.tenor_days)
    rng = _rng(seed, book.source, slot_index, roll)
    notional = rng.lognormvariate(math.log(book.notional_median), 1.6)
    notional = min(book.notional_max, max(book.notional_min, notional))
    decimals = rng.choice((4, 5, 6))
    return {
        "position_id": f"{book.id_prefix}-{roll * slots + slot_index + 1:08d}",
        "portfolio_id": rng.choices(PORTFOLIOS, PORTFOLIO_WEIGHTS)[0],
        "instrument_id": rng.choice(instrument_reference())["instrument_id"],
        "notional_cents": str(round(notional * 100)),
        "currency": rng.choices(CURRENCIES, CURRENCY_WEIGHTS)[0],
        "maturity_date": (start + dt.timedelta(days=slot.tenor_days)).isoformat(),
        "interest_rate": f"{rng.uniform(book.rate_min, book.rate_max):.{decimals}f}",
        "as_of_date": day.isoformat(),
        "extracted_at": None,
    }


def _resent(row: Row, rng: random.Random) -> Row:
    row["notional_cents"] = str(round(int(row["notional_cents"]) * rng.choice((0.9, 1.05, 1.1, 1.25))))
    return row


def _negative_notional(row: Row, rng: random.Random) -> Row:
    row["notional_cents"] = "-" + str(row["notional_cents"])
    return row


POSITION_BAD_KINDS: tuple[tuple[str, Corruption], ...] = (
    ("missing position_id", _set("position_id", "", None)),
    ("missing portfolio_id", _set("portfolio_id", "", None, " ")),
    ("unknown instrument_id", _set("instrument_id", "INS9999")),
    ("unparsable as_of_date", _set("as_of_date", "2026-13-45", "yesterday")),
    ("unparsable maturity_date", _set("maturity_date", "2031-02-30", "N/A", "31/12/2030")),
    ("non-numeric notional_cents", _set("notional_cents", "12,5O0", "n/a", "1.5k")),
    ("negative notional_cents", _negative_notional),
    ("unknown currency", _set("currency", "XXX")),
    ("non-numeric interest_rate", _set("interest_rate", "4.5%", "n/a", "0,045")),
    ("duplicate", _resent),
)


def _positions(book: Book, batch_date, seed, scale, bad_row_rate, bad_kinds) -> pa.Table:
    day, seed, scale, rate = _coerce(batch_date, seed, scale, bad_row_rate)
    count = max(1, round(scale * book.positions_per_day))
    good = [_live_position(book, seed, i, slot, count, day) for i, slot in enumerate(_slots(seed, book.source, count))]
    good.sort(key=lambda row: row["position_id"])
    rows = _mix_in_bad_rows(good, bad_kinds, rate, _rng(seed, book.source, day.toordinal()))
    step_ms = 3 * 3600 * 1000 // len(rows)  # the extract runs 19:00-22:00, one row after another
    for index, row in enumerate(rows):
        row["extracted_at"] = _evening(day, dt.time(19), index * step_ms)
    return _to_table(rows, POSITION_COLUMNS)


def positions_loans(
    batch_date: dt.date, *, seed: int = 42, scale: float = 1.0, bad_row_rate: float = 0.0
) -> pa.Table:
    """The loan system's extract of loans alive on the as-of date (2,000 at scale 1.0)."""
    return _positions(LOANS, batch_date, seed, scale, bad_row_rate, POSITION_BAD_KINDS)


def positions_deposits(
    batch_date: dt.date, *, seed: int = 42, scale: float = 1.0, bad_row_rate: float = 0.0
) -> pa.Table:
    """Core banking's extract of deposits alive on the as-of date (1,500 at scale 1.0).

    Deposits walk the bad-row kinds from the other end, so that even tiny batches of loans and
    deposits together show every kind.
    """
    return _positions(DEPOSITS, batch_date, seed, scale, bad_row_rate, POSITION_BAD_KINDS[::-1])


# ---------------------------------------------------------------- bad rows


def _bad_row_count(good_rows: int, bad_row_rate: float) -> int:
    if bad_row_rate <= 0 or good_rows == 0:
        return 0
    return max(1, round(bad_row_rate * good_rows))


def _mix_in_bad_rows(good: list[Row], kinds, rate: float, rng: random.Random) -> list[Row]:
    """Extra rows, one defect each, copied from random good rows and placed at random.

    The good rows are never touched. A duplicate lands after its original: timestamps follow the
    row order, so the copy is the later record and supersedes the original.
    """
    keyed = [((index, 0), row) for index, row in enumerate(good)]
    for number in range(_bad_row_count(len(good), rate)):
        kind, corrupt = kinds[number % len(kinds)]
        original = rng.randrange(len(good))
        after = rng.randint(original, len(good) - 1) if kind == "duplicate" else rng.randint(-1, len(good) - 1)
        keyed.append(((after, number + 1), corrupt(dict(good[original]), rng)))
    keyed.sort(key=lambda item: item[0])
    return [row for _, row in keyed]
