"""Seeded synthetic parquet files for the energy pipeline: eight sources, a file set per day.

What an energy supplier's landing bucket receives (layout under the root URI, one folder per source):

    meter_readings/date=YYYY-MM-DD/readings_HH.parquet   hourly kWh per customer, 4 files a day (00/06/12/18 h blocks)
    demand_forecast/date=YYYY-MM-DD/forecast.parquet     the predictive demand model's kWh per segment, region, hour
    day_ahead_prices/date=YYYY-MM-DD/prices.parquet      day-ahead auction price per price zone and hour (EUR/MWh)
    weather/date=YYYY-MM-DD/weather.parquet              temperature, wind, cloud cover per region and hour
    customers/customers.parquet                          customer master: id, segment, region, tariff (full extract)
    tariffs/tariffs.parquet                              tariff catalogue (full extract)
    calendar/calendar_YYYY.parquet                       one row per day of the year: weekday, ISO week, holidays
    price_zones/price_zones.parquet                      which bidding (price) zone each region belongs to

Reference extracts (customers, tariffs, price zones, the calendar of a year) are one file each that a
new extract replaces in place; the time-based sources get new files every day. Every hour is UTC and
stored as a timestamp without time zone.

THE PLANTED PRICE ELASTICITY. Customer i of segment s in region r (price zone z) uses, in hour t:

    kwh[i,t] = size[i] * BASE_KWH[s] * SHAPE[s][day type][hour of day]
               * exp(HEATING[s] * hdd[r,t])                   weather: heating degrees, hdd = max(0, 18 - temperature_c)
               * (price[z,t] / REF_PRICE) ** ELASTICITY[s]     the planted price response
               * exp(N(0, NOISE_SIGMA))                        metering/behaviour noise, independent per customer and hour

with REF_PRICE = 100 EUR/MWh, NOISE_SIGMA = 0.10, size[i] ~ lognormal(0, 0.35) per customer, day type =
working day or weekend/holiday (from the calendar), and the planted elasticities

    residential -0.12    commercial -0.28    industrial -0.45

Prices are ``REF_PRICE * hourly shape * exp(national day level + zone day level + 0.02 * (zone heating
degrees - 10) + N(0, 0.20) per zone and hour)``: they follow the hour of day, the day and the weather
(realistic, and the reason a naive regression of demand on price is biased), and differ between the
three zones hour by hour, which identifies the elasticity once hour and weather are controlled for.

The demand model's forecast for (segment, region, hour) is the expected total of its customers'
use (the formula without its noise, times exp(NOISE_SIGMA^2 / 2)) times exp(FORECAST_BIAS[s] + N(0,
FORECAST_SIGMA[s])): residential +3%, commercial -2%, industrial +1% biased in log terms.

BAD ROWS. With ``bad_row_rate`` r, each file of meter readings, forecasts, prices, weather and the
customer extract gets round(r * rows) EXTRA rows, each with one defect (a missing or negative value, an
unknown reference, an implausible temperature, or an exact duplicate of a good row). Good rows are
never altered, so the valid data (and the planted elasticity) do not depend on r.

Everything depends only on (seed, day, scale, bad_row_rate): every draw comes from a random.Random
seeded with a string (SHA-512, the same in every process), so each ingest task can regenerate exactly
the files of its own source, and writing a day twice writes the same bytes (``write_source`` leaves an
identical file untouched, so an incremental loader sees no change).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import math
import random
from dataclasses import dataclass

import click
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

from lakehouse.objectstore import filesystem, join

SOURCES = (
    "meter_readings", "demand_forecast", "day_ahead_prices", "weather",
    "customers", "tariffs", "calendar", "price_zones",
)
REF_PRICE = 100.0  # EUR/MWh: the price at which demand is "base"
HDD_BASE_C = 18.0  # heating degrees = max(0, HDD_BASE_C - temperature_c)
NOISE_SIGMA = 0.10
SIZE_SIGMA = 0.35
PRICE_HOURLY_SIGMA = 0.20
PRICE_ZONE_DAY_SIGMA = 0.10
PRICE_NATIONAL_DAY_SIGMA = 0.15
PRICE_HDD_COEFFICIENT = 0.02
METER_BLOCK_HOURS = 6  # a meter readings file covers 6 hours: 4 files a day
MODEL_VERSION = "dpm-2.3"

# Region -> (price zone, temperature offset in degrees C from the national mean).
REGIONS = {
    "north": ("NZ1", -3.0), "east": ("NZ1", -1.0),
    "south": ("NZ2", 2.5), "coast": ("NZ2", 1.0),
    "west": ("NZ3", 0.0), "central": ("NZ3", -0.5),
}
ZONE_NAMES = {"NZ1": "North-East", "NZ2": "South-Coast", "NZ3": "West-Central"}
ZONES = tuple(sorted(ZONE_NAMES))

# Relative load by hour of day, 0..23 (working day, weekend/holiday).
_RESIDENTIAL = (
    (0.55, 0.48, 0.45, 0.44, 0.46, 0.58, 0.85, 1.10, 1.00, 0.82, 0.76, 0.76,
     0.80, 0.76, 0.74, 0.82, 1.02, 1.38, 1.58, 1.52, 1.34, 1.12, 0.88, 0.68),
    (0.62, 0.52, 0.47, 0.45, 0.45, 0.50, 0.62, 0.82, 1.02, 1.12, 1.10, 1.08,
     1.10, 1.02, 0.96, 0.98, 1.10, 1.40, 1.58, 1.52, 1.36, 1.16, 0.94, 0.74),
)
_COMMERCIAL = (
    (0.34, 0.32, 0.31, 0.31, 0.33, 0.40, 0.62, 0.95, 1.25, 1.35, 1.38, 1.40,
     1.36, 1.38, 1.38, 1.35, 1.28, 1.12, 0.85, 0.62, 0.48, 0.42, 0.38, 0.36),
    (0.33, 0.31, 0.30, 0.30, 0.31, 0.33, 0.36, 0.40, 0.48, 0.55, 0.58, 0.60,
     0.60, 0.58, 0.56, 0.54, 0.50, 0.46, 0.42, 0.40, 0.38, 0.36, 0.35, 0.34),
)
_INDUSTRIAL = (
    (0.82, 0.80, 0.80, 0.80, 0.82, 0.88, 1.02, 1.12, 1.16, 1.18, 1.18, 1.16,
     1.12, 1.16, 1.18, 1.18, 1.14, 1.06, 0.98, 0.94, 0.90, 0.88, 0.86, 0.84),
    (0.70, 0.70, 0.69, 0.69, 0.69, 0.70, 0.72, 0.74, 0.76, 0.76, 0.76, 0.75,
     0.74, 0.74, 0.74, 0.74, 0.73, 0.72, 0.72, 0.71, 0.71, 0.70, 0.70, 0.70),
)
# Day-ahead price shape by hour of day (working day, weekend/holiday).
_PRICE_SHAPE = (
    (0.72, 0.66, 0.63, 0.62, 0.65, 0.76, 0.98, 1.22, 1.26, 1.14, 1.04, 0.98,
     0.94, 0.92, 0.94, 1.02, 1.16, 1.38, 1.46, 1.36, 1.18, 1.02, 0.90, 0.80),
    (0.72, 0.66, 0.62, 0.60, 0.60, 0.62, 0.68, 0.76, 0.86, 0.90, 0.88, 0.84,
     0.80, 0.78, 0.80, 0.88, 1.02, 1.24, 1.32, 1.24, 1.08, 0.96, 0.86, 0.78),
)


@dataclass(frozen=True)
class Segment:
    name: str
    elasticity: float  # the planted price elasticity of demand
    base_kwh: float  # kWh per hour of a size-1 customer at REF_PRICE, 0 heating degrees, shape 1
    heating: float  # log change of demand per heating degree
    shape: tuple[tuple[float, ...], tuple[float, ...]]
    customers_per_region: int  # at scale 1.0
    forecast_bias: float  # the demand model's bias, in log terms
    forecast_sigma: float  # the demand model's error, in log terms
    tariffs: tuple[str, ...]


SEGMENTS = {
    "residential": Segment("residential", -0.12, 0.40, 0.045, _RESIDENTIAL, 20, 0.03, 0.05, ("HOME-DYN", "HOME-GREEN")),
    "commercial": Segment("commercial", -0.28, 6.0, 0.025, _COMMERCIAL, 8, -0.02, 0.06, ("BIZ-DYN",)),
    "industrial": Segment("industrial", -0.45, 90.0, 0.006, _INDUSTRIAL, 3, 0.01, 0.07, ("IND-SPOT",)),
}
# The values the pipeline must recover (tests/test_energy.py).
PLANTED_ELASTICITY = {name: segment.elasticity for name, segment in SEGMENTS.items()}

TARIFFS = (
    # tariff_id, name, segment, markup EUR/kWh, standing charge EUR/day
    ("HOME-DYN", "Home Dynamic", "residential", 0.095, 0.42),
    ("HOME-GREEN", "Home Dynamic Green", "residential", 0.112, 0.45),
    ("BIZ-DYN", "Business Dynamic", "commercial", 0.061, 2.10),
    ("IND-SPOT", "Industrial Spot Pass-through", "industrial", 0.018, 38.00),
)
# (month, day) -> name; fixed-date public holidays.
HOLIDAYS = {
    (1, 1): "New Year's Day", (5, 1): "Labour Day", (10, 3): "Unity Day",
    (11, 11): "Armistice Day", (12, 25): "Christmas Day", (12, 26): "Boxing Day",
}
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

SCHEMAS = {
    "meter_readings": pa.schema([
        ("customer_id", pa.string()), ("reading_hour", pa.timestamp("us")), ("kwh", pa.float64()),
        ("read_at", pa.timestamp("us")),
    ]),
    "demand_forecast": pa.schema([
        ("segment", pa.string()), ("region", pa.string()), ("forecast_hour", pa.timestamp("us")),
        ("forecast_kwh", pa.float64()), ("model_version", pa.string()), ("issued_at", pa.timestamp("us")),
    ]),
    "day_ahead_prices": pa.schema([
        ("zone", pa.string()), ("delivery_hour", pa.timestamp("us")), ("price_eur_mwh", pa.float64()),
        ("auction_date", pa.date32()), ("published_at", pa.timestamp("us")),
    ]),
    "weather": pa.schema([
        ("region", pa.string()), ("observation_hour", pa.timestamp("us")), ("temperature_c", pa.float64()),
        ("wind_speed_ms", pa.float64()), ("cloud_cover_pct", pa.float64()),
    ]),
    "customers": pa.schema([
        ("customer_id", pa.string()), ("segment", pa.string()), ("region", pa.string()), ("tariff_id", pa.string()),
        ("contracted_kw", pa.float64()), ("signup_date", pa.date32()),
    ]),
    "tariffs": pa.schema([
        ("tariff_id", pa.string()), ("tariff_name", pa.string()), ("segment", pa.string()),
        ("pricing", pa.string()), ("markup_eur_kwh", pa.float64()), ("standing_charge_eur_day", pa.float64()),
    ]),
    "calendar": pa.schema([
        ("calendar_date", pa.date32()), ("iso_weekday", pa.int32()), ("weekday_name", pa.string()),
        ("iso_week", pa.int32()), ("week_start", pa.date32()), ("is_weekend", pa.bool_()),
        ("is_holiday", pa.bool_()), ("holiday_name", pa.string()),
    ]),
    "price_zones": pa.schema([("region", pa.string()), ("zone", pa.string()), ("zone_name", pa.string())]),
}


# ---------------------------------------------------------------- arguments and randomness


def _rng(*parts: object) -> random.Random:
    return random.Random("|".join(str(part) for part in parts))


def _day(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value).strip()[:10])


def _arguments(seed, scale, bad_row_rate) -> tuple[int, float, float]:
    """Airflow templates hand everything over as strings."""
    if not float(seed).is_integer():
        raise ValueError(f"seed must be a whole number, got {seed!r}")
    seed, scale, rate = int(float(seed)), float(scale), float(bad_row_rate)
    if scale <= 0 or not 0 <= rate <= 1:
        raise ValueError(f"need scale > 0 and 0 <= bad_row_rate <= 1, got {scale}, {rate}")
    return seed, scale, rate


def _hours(day: dt.date) -> list[dt.datetime]:
    start = dt.datetime.combine(day, dt.time())
    return [start + dt.timedelta(hours=h) for h in range(24)]


def is_off_day(day: dt.date) -> bool:
    """Weekend or holiday: the second load and price shape applies."""
    return day.isoweekday() >= 6 or (day.month, day.day) in HOLIDAYS


# ---------------------------------------------------------------- the latent world


@dataclass(frozen=True)
class Customer:
    customer_id: str
    segment: str
    region: str
    tariff_id: str
    size: float
    signup_date: dt.date


@functools.lru_cache(maxsize=8)
def customers(seed: int, scale: float) -> tuple[Customer, ...]:
    """Every (segment, region) has at least one customer, so each segment is seen in every zone."""
    result = []
    number = 0
    for segment in SEGMENTS.values():
        count = max(1, round(segment.customers_per_region * scale))
        for region in REGIONS:
            for _ in range(count):
                number += 1
                customer_id = f"C{number:06d}"
                rng = _rng(seed, "customer", customer_id)
                result.append(Customer(
                    customer_id=customer_id,
                    segment=segment.name,
                    region=region,
                    tariff_id=rng.choice(segment.tariffs),
                    size=rng.lognormvariate(0.0, SIZE_SIGMA),
                    signup_date=dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(0, 2190)),
                ))
    return tuple(result)


@functools.lru_cache(maxsize=64)
def weather(seed: int, day: dt.date) -> dict[tuple[str, int], tuple[float, float, float]]:
    """(region, hour of day) -> (temperature_c, wind_speed_ms, cloud_cover_pct)."""
    seasonal = 10.0 + 8.0 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 200) / 365.25)
    national = _rng(seed, "weather", "national", day).gauss(0.0, 2.5)
    result = {}
    for region, (_, offset) in REGIONS.items():
        rng = _rng(seed, "weather", region, day)
        anomaly = rng.gauss(0.0, 1.8)
        wind_level = rng.uniform(2.0, 9.0)
        cloud_level = rng.uniform(10.0, 95.0)
        for hour in range(24):
            diurnal = 3.5 * math.sin(2 * math.pi * (hour - 9) / 24)
            temperature = seasonal + offset + national + anomaly + diurnal + rng.gauss(0.0, 0.5)
            wind = max(0.0, wind_level + rng.gauss(0.0, 1.2))
            cloud = min(100.0, max(0.0, cloud_level + rng.gauss(0.0, 8.0)))
            result[(region, hour)] = (round(temperature, 2), round(wind, 2), round(cloud, 1))
    return result


def heating_degrees(temperature_c: float) -> float:
    return max(0.0, HDD_BASE_C - temperature_c)


@functools.lru_cache(maxsize=64)
def prices(seed: int, day: dt.date) -> dict[tuple[str, int], float]:
    """(zone, hour of day) -> day-ahead price in EUR/MWh."""
    conditions = weather(seed, day)
    shape = _PRICE_SHAPE[is_off_day(day)]
    national = _rng(seed, "price", "national", day).gauss(0.0, PRICE_NATIONAL_DAY_SIGMA)
    result = {}
    for zone in ZONES:
        rng = _rng(seed, "price", zone, day)
        zone_level = rng.gauss(0.0, PRICE_ZONE_DAY_SIGMA)
        regions = [region for region, (z, _) in REGIONS.items() if z == zone]
        for hour in range(24):
            hdd = sum(heating_degrees(conditions[(r, hour)][0]) for r in regions) / len(regions)
            log_price = (math.log(REF_PRICE * shape[hour]) + national + zone_level
                         + PRICE_HDD_COEFFICIENT * (hdd - 10.0) + rng.gauss(0.0, PRICE_HOURLY_SIGMA))
            result[(zone, hour)] = round(math.exp(log_price), 2)
    return result


def expected_kwh(customer: Customer, day: dt.date, hour: int, seed: int) -> float:
    """The planted formula without its noise term."""
    segment = SEGMENTS[customer.segment]
    zone = REGIONS[customer.region][0]
    temperature = weather(seed, day)[(customer.region, hour)][0]
    price = prices(seed, day)[(zone, hour)]
    return (customer.size * segment.base_kwh * segment.shape[is_off_day(day)][hour]
            * math.exp(segment.heating * heating_degrees(temperature))
            * (price / REF_PRICE) ** segment.elasticity)


@functools.lru_cache(maxsize=16)
def _metered(seed: int, scale: float, day: dt.date) -> tuple[tuple[Customer, tuple[float, ...]], ...]:
    result = []
    for customer in customers(seed, scale):
        rng = _rng(seed, "meter", customer.customer_id, day)
        result.append((customer, tuple(
            round(expected_kwh(customer, day, hour, seed) * math.exp(rng.gauss(0.0, NOISE_SIGMA)), 4)
            for hour in range(24)
        )))
    return tuple(result)


# ---------------------------------------------------------------- good rows per source


def _meter_rows(seed, scale, day, first_hour) -> list[dict]:
    hours = _hours(day)
    rows = []
    for hour in range(first_hour, first_hour + METER_BLOCK_HOURS):
        for customer, kwh in _metered(seed, scale, day):
            delay = _rng(seed, "read_at", customer.customer_id, hours[hour]).randrange(60, 5400)
            rows.append({"customer_id": customer.customer_id, "reading_hour": hours[hour], "kwh": kwh[hour],
                         "read_at": hours[hour] + dt.timedelta(hours=1, seconds=delay)})
    return rows


def _forecast_rows(seed, scale, day) -> list[dict]:
    hours = _hours(day)
    issued = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(10, 30))
    cells: dict[tuple[str, str], list[Customer]] = {}
    for customer in customers(seed, scale):
        cells.setdefault((customer.segment, customer.region), []).append(customer)
    rows = []
    for (segment_name, region), members in cells.items():
        segment = SEGMENTS[segment_name]
        rng = _rng(seed, "forecast", segment_name, region, day)
        for hour in range(24):
            expected = sum(expected_kwh(c, day, hour, seed) for c in members) * math.exp(NOISE_SIGMA ** 2 / 2)
            forecast = expected * math.exp(segment.forecast_bias + rng.gauss(0.0, segment.forecast_sigma))
            rows.append({"segment": segment_name, "region": region, "forecast_hour": hours[hour],
                         "forecast_kwh": round(forecast, 3), "model_version": MODEL_VERSION, "issued_at": issued})
    return rows


def _price_rows(seed, day) -> list[dict]:
    hours = _hours(day)
    published = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(12, 45))
    return [{"zone": zone, "delivery_hour": hours[hour], "price_eur_mwh": price,
             "auction_date": day - dt.timedelta(days=1), "published_at": published}
            for (zone, hour), price in sorted(prices(seed, day).items(), key=lambda item: (item[0][1], item[0][0]))]


def _weather_rows(seed, day) -> list[dict]:
    hours = _hours(day)
    return [{"region": region, "observation_hour": hours[hour], "temperature_c": t, "wind_speed_ms": w,
             "cloud_cover_pct": c}
            for (region, hour), (t, w, c) in sorted(weather(seed, day).items(), key=lambda item: (item[0][1], item[0][0]))]


def _customer_rows(seed, scale) -> list[dict]:
    return [{"customer_id": c.customer_id, "segment": c.segment, "region": c.region, "tariff_id": c.tariff_id,
             "contracted_kw": round(c.size * SEGMENTS[c.segment].base_kwh * 3.0, 1), "signup_date": c.signup_date}
            for c in customers(seed, scale)]


def _tariff_rows() -> list[dict]:
    return [{"tariff_id": t, "tariff_name": name, "segment": segment, "pricing": "dynamic",
             "markup_eur_kwh": markup, "standing_charge_eur_day": standing}
            for t, name, segment, markup, standing in TARIFFS]


def calendar_rows(year: int) -> list[dict]:
    rows = []
    day = dt.date(year, 1, 1)
    while day.year == year:
        holiday = HOLIDAYS.get((day.month, day.day))
        rows.append({"calendar_date": day, "iso_weekday": day.isoweekday(), "weekday_name": WEEKDAY_NAMES[day.weekday()],
                     "iso_week": day.isocalendar()[1], "week_start": day - dt.timedelta(days=day.weekday()),
                     "is_weekend": day.isoweekday() >= 6, "is_holiday": holiday is not None, "holiday_name": holiday})
        day += dt.timedelta(days=1)
    return rows


def _zone_rows() -> list[dict]:
    return [{"region": region, "zone": zone, "zone_name": ZONE_NAMES[zone]} for region, (zone, _) in REGIONS.items()]


# ---------------------------------------------------------------- bad rows


def _with_bad_rows(source: str, rows: list[dict], rate: float, rng: random.Random) -> list[dict]:
    """rows plus round(rate * len(rows)) extra rows, one defect each (kinds in turn, from a random start)."""
    count = round(rate * len(rows))
    if not count or not rows:
        return rows
    kinds = _BAD_KINDS[source]
    start = rng.randrange(len(kinds))
    bad = []
    for n in range(count):
        row = dict(rng.choice(rows))
        kind = kinds[(start + n) % len(kinds)]
        if kind == "duplicate":
            pass  # an exact copy of a good row, sent twice
        elif kind.startswith("null:"):
            row[kind[5:]] = None
        elif kind.startswith("negative:"):
            column = kind[9:]
            row[column] = -abs(row[column]) - 0.001
        elif kind.startswith("unknown:"):
            column, value = kind[8:].split("=")
            row[column] = value
        elif kind == "implausible_temperature":
            row["temperature_c"] = rng.choice((-99.9, 99.9))
        else:  # pragma: no cover - a kind without a defect
            raise AssertionError(kind)
        bad.append(row)
    # Bad rows sit among the good ones, as in a real file.
    mixed = list(rows)
    for row in bad:
        mixed.insert(rng.randrange(len(mixed) + 1), row)
    return mixed


_BAD_KINDS = {
    "meter_readings": ("null:customer_id", "null:reading_hour", "null:kwh", "negative:kwh",
                       "unknown:customer_id=C999999", "duplicate"),
    "demand_forecast": ("null:forecast_kwh", "negative:forecast_kwh", "unknown:segment=household", "duplicate"),
    "day_ahead_prices": ("null:price_eur_mwh", "unknown:zone=NZ9", "duplicate"),
    "weather": ("null:temperature_c", "implausible_temperature", "unknown:region=atlantis", "duplicate"),
    "customers": ("null:customer_id", "unknown:segment=household", "unknown:tariff_id=LEGACY", "duplicate"),
}


# ---------------------------------------------------------------- files


def source_files(source: str, day, seed=42, scale=1.0, bad_row_rate=0.0) -> dict[str, pa.Table]:
    """The files ``source`` delivers for ``day``: {path relative to the root: table}."""
    if source not in SOURCES:
        raise ValueError(f"unknown energy source {source!r}; sources: {', '.join(SOURCES)}")
    day = _day(day)
    seed, scale, rate = _arguments(seed, scale, bad_row_rate)
    folder = f"{source}/date={day.isoformat()}"
    if source == "meter_readings":
        files = {}
        for first in range(0, 24, METER_BLOCK_HOURS):
            rows = _meter_rows(seed, scale, day, first)
            rows = _with_bad_rows(source, rows, rate, _rng(seed, "bad", source, day, first))
            files[f"{folder}/readings_{first:02d}.parquet"] = rows
    elif source == "demand_forecast":
        files = {f"{folder}/forecast.parquet": _with_bad_rows(source, _forecast_rows(seed, scale, day), rate,
                                                               _rng(seed, "bad", source, day))}
    elif source == "day_ahead_prices":
        files = {f"{folder}/prices.parquet": _with_bad_rows(source, _price_rows(seed, day), rate,
                                                             _rng(seed, "bad", source, day))}
    elif source == "weather":
        files = {f"{folder}/weather.parquet": _with_bad_rows(source, _weather_rows(seed, day), rate,
                                                              _rng(seed, "bad", source, day))}
    elif source == "customers":
        # The master extract does not depend on the day: the same file every day.
        files = {"customers/customers.parquet": _with_bad_rows(source, _customer_rows(seed, scale), rate,
                                                                _rng(seed, "bad", source))}
    elif source == "tariffs":
        files = {"tariffs/tariffs.parquet": _tariff_rows()}
    elif source == "calendar":
        files = {f"calendar/calendar_{day.year}.parquet": calendar_rows(day.year)}
    else:
        files = {"price_zones/price_zones.parquet": _zone_rows()}
    schema = SCHEMAS[source]
    return {path: pa.Table.from_pylist(rows, schema=schema) for path, rows in files.items()}


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def write_file(uri: str, content: bytes) -> bool:
    """Write ``content`` at ``uri`` unless an identical file is there; True when written."""
    filesystem_, path = filesystem(uri)
    info = filesystem_.get_file_info(path)
    if info.type == fs.FileType.File and info.size == len(content):
        with filesystem_.open_input_file(path) as existing:
            if existing.read() == content:
                return False
    if isinstance(filesystem_, fs.LocalFileSystem):
        filesystem_.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with filesystem_.open_output_stream(path) as out:
        out.write(content)
    return True


def write_source(source: str, day, root: str, seed=42, scale=1.0, bad_row_rate=0.0) -> dict[str, bool]:
    """Write ``source``'s files for ``day`` under ``root`` (file:// or s3:// URI, or a path).

    Returns {uri: written}; a file already there with the same bytes is left alone (written False),
    so generating a day again changes nothing a loader would notice. The ``table_map`` ingest kind
    calls this when its ``simulate`` option is on (generator: generator.py:write_source).
    """
    return {
        join(root, path): write_file(join(root, path), _parquet_bytes(table))
        for path, table in source_files(source, day, seed, scale, bad_row_rate).items()
    }


def generate(root: str, end, days: int = 1, seed=42, scale=1.0, bad_row_rate=0.0,
             sources: tuple[str, ...] = SOURCES) -> dict[str, int]:
    """Every source's files for the ``days`` days ending with ``end``; returns counts by source and what was written."""
    end = _day(end)
    summary = {"files": 0, "files_written": 0, "files_unchanged": 0}
    for offset in range(days - 1, -1, -1):
        day = end - dt.timedelta(days=offset)
        for source in sources:
            for written in write_source(source, day, root, seed, scale, bad_row_rate).values():
                summary["files"] += 1
                summary["files_written" if written else "files_unchanged"] += 1
    return summary


@click.command("energy")
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True, help="Days of files, ending with --end.")
@click.option("--end", "end_date", type=click.DateTime(formats=["%Y-%m-%d"]), help="Last day (default: yesterday, UTC).")
@click.option("--out", help="Root URI (file:// or s3://) or a path [default: <raw_zone>/energy/incoming].")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--bad-row-rate", type=click.FloatRange(0, 1), default=0.01, show_default=True)
def command(days: int, end_date: dt.datetime | None, out: str | None, seed: int, scale: float, bad_row_rate: float) -> None:
    """Parquet files of the energy pipeline's eight sources, a set per day (pipelines/energy/README.md)."""
    import time

    from lakehouse.cli import emit
    from lakehouse.settings import load_settings

    root = out or join(load_settings().raw_zone, "energy", "incoming")
    end = end_date.date() if end_date else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    started = time.monotonic()
    summary = generate(root, end, days, seed=seed, scale=scale, bad_row_rate=bad_row_rate)
    rows = [["root", root], *([name.replace("_", " "), count] for name, count in summary.items()),
            ["seconds", f"{time.monotonic() - started:.1f}"]]
    emit(["generated", "value"], rows, title="energy")
