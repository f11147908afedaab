"""Seeded stand-ins for the marketing pipeline's two sources: the shop's PostgreSQL and the ad platform.

``simulate_day(day, seed, customers)`` writes one business day, once (a rerun of the day writes
nothing; ``public.marketing_simulated_days`` remembers it):
- the first day loads the shop's history: customers of four PLANTED segments with a year of orders
  (the segmentation model must recover them; the truth is kept in public.marketing_planted_segments),
  the catalogue, and the ad platform's campaigns, ad groups and ads with 30 days of daily stats;
- every day: orders from each segment at its own rate, order lifecycle updates (shipped, delivered,
  returned), price changes, accounts migrated from a partner shop WITH their order history (the
  customers who arrive after the model was trained, for the scoring step), a GDPR erasure (a customer
  and their orders deleted: the ingest must detect deletes), the day's ad stats (a paused campaign
  keeps zero spend, impressions and clicks: the metrics' zero denominators), yesterday's stats
  restated for some ads, conversions: a share of the day's orders attributed to an ad by clicks, and
  two malformed records (a count that is not a number, a conversion without its id) to quarantine.
The shop goes to PostgreSQL through SQL; the ad platform's records go to JSON-lines files per resource
and day under ``<lakehouse home>/sources/ad_platform``, which its API server (lakehouse.sources.
json_api_server) serves. Everything depends only on the seed and the day.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from psycopg2.extras import execute_values

from lakehouse.cdc.source import apply_schema
from lakehouse.sources.postgres_server import connect, resolve_dsn

SCHEMA_FILE = Path(__file__).with_name("source_schema.sql")
AD_PLATFORM_FOLDER = "sources/ad_platform"


@dataclass(frozen=True)
class Segment:
    share: float
    orders: tuple[int, int]  # how many orders in the year of history
    recency_days: tuple[int, int]  # days since the last order, at arrival
    order_value: tuple[float, float]  # EUR per order
    daily_order_probability: float  # after arrival


# Far apart in recency, frequency and monetary value: KMeans on the three must find them again.
SEGMENTS = {
    "champions": Segment(0.2, (10, 14), (1, 15), (150.0, 220.0), 0.25),
    "loyal": Segment(0.3, (5, 7), (20, 45), (55.0, 85.0), 0.03),
    "at_risk": Segment(0.2, (4, 6), (150, 240), (60.0, 95.0), 0.0),
    "occasional": Segment(0.3, (1, 2), (90, 300), (12.0, 30.0), 0.002),
}
CATEGORIES = ("apparel", "shoes", "accessories", "home", "beauty")
COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "AT", "BE")
FIRST_NAMES = ("Ada", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gia", "Hugo", "Ida", "Jon", "Kim", "Lea", "Max", "Nia")
LAST_NAMES = ("Meyer", "Dubois", "Jansen", "Garcia", "Rossi", "Huber", "Peeters", "Novak", "Berg", "Costa")
CHANNELS = ("search", "social", "display")
CAMPAIGNS = 5
AD_GROUPS_PER_CAMPAIGN = 2
ADS_PER_GROUP = 2
PAUSED_CAMPAIGN = 5  # never spends: every metric of it has a zero denominator
HISTORY_DAYS = 365
AD_HISTORY_DAYS = 30
MIGRATED_SHARE = 0.02  # of the first day's customers, arriving each later day with their history
ATTRIBUTED_SHARE = 0.4  # of orders, credited to an ad
RESTATED_ADS = 3  # ads whose yesterday's stats are corrected each day


def _bookkeeping(cur) -> None:
    cur.execute("""
        CREATE TABLE IF NOT EXISTS public.marketing_planted_segments (
            customer_id bigint PRIMARY KEY, segment text NOT NULL, arrived_on date NOT NULL)""")


def _at(day: dt.date, rng: random.Random) -> dt.datetime:
    """A time during ``day`` (UTC), to the microsecond."""
    start = dt.datetime.combine(day, dt.time(6), dt.UTC)
    return start + dt.timedelta(microseconds=rng.randrange(16 * 3600 * 10**6))


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


class _Day:
    """One simulated day on an open transaction."""

    def __init__(self, cur, day: dt.date, rng: random.Random, out: Path):
        self.cur, self.day, self.rng, self.out = cur, day, rng, out
        self.counts: dict[str, int] = {}
        self.new_orders: list[tuple[int, int, dt.datetime, Decimal]] = []  # order, customer, at, value
        self.records: dict[str, list[dict]] = {}
        self._pending: list[tuple] = []  # orders made, inserted together by _flush_orders

    def _next_id(self, table: str, column: str) -> int:
        self.cur.execute(f"SELECT coalesce(max({column}), 0) + 1 FROM shop.{table}")  # noqa: S608 - constant names
        return self.cur.fetchone()[0]

    def _count(self, name: str, rows: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + rows

    def products(self, count: int) -> None:
        first = self._next_id("products", "product_id")
        rows = []
        for product_id in range(first, first + count):
            category = CATEGORIES[product_id % len(CATEGORIES)]
            rows.append((product_id, f"SKU-{product_id:05d}", f"{category.title()} item {product_id}", category,
                         _money(self.rng.uniform(8, 90)), _at(self.day, self.rng)))
        execute_values(self.cur, "INSERT INTO shop.products VALUES %s", rows)
        self._count("products_inserted", len(rows))

    def customers(self, count: int, *, migrated: bool) -> None:
        """``count`` customers of planted segments, each with their history of orders."""
        self.cur.execute("SELECT product_id, price FROM shop.products ORDER BY product_id")
        catalogue = self.cur.fetchall()
        first = self._next_id("customers", "customer_id")
        segments = list(SEGMENTS)
        weights = [SEGMENTS[name].share for name in segments]
        customers, planted = [], []
        for customer_id in range(first, first + count):
            segment = self.rng.choices(segments, weights)[0]
            spec = SEGMENTS[segment]
            orders = self.rng.randint(*spec.orders)
            last = self.rng.randint(*spec.recency_days)
            days_ago = sorted({last, *(self.rng.randint(last, HISTORY_DAYS) for _ in range(orders - 1))})
            while len(days_ago) < orders:  # distinct order days, so frequency is exactly the planted count
                days_ago = sorted({*days_ago, self.rng.randint(last, HISTORY_DAYS)})
            signed_up = self.day - dt.timedelta(days=days_ago[-1] + self.rng.randint(0, 30))
            first_name, last_name = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            customers.append((customer_id, f"{first_name}.{last_name}.{customer_id}@example.com".lower(),
                              first_name, last_name, self.rng.choice(COUNTRIES),
                              _at(signed_up, self.rng), _at(self.day, self.rng) if migrated else None))
            planted.append((customer_id, segment, self.day))
            for ago in days_ago:
                self._order(customer_id, self.day - dt.timedelta(days=ago), spec, catalogue, history=True,
                            arrived=migrated)
        # A first-day customer's row last changed when they signed up; a migrated one on the day it arrived.
        execute_values(self.cur, "INSERT INTO shop.customers VALUES %s",
                       [row[:6] + (row[6] or row[5],) for row in customers])
        execute_values(self.cur, "INSERT INTO public.marketing_planted_segments VALUES %s", planted)
        self._count("customers_inserted", len(customers))
        self._flush_orders()

    def _order(self, customer_id: int, day: dt.date, spec: Segment, catalogue, *, history: bool,
               arrived: bool = False) -> None:
        """An order of ``day``; ``arrived``: imported today with its account, so its rows are written today."""
        target = self.rng.uniform(*spec.order_value)
        lines, total = [], Decimal("0")
        while total < Decimal(str(target)) * Decimal("0.8") or not lines:
            product_id, price = self.rng.choice(catalogue)
            quantity = self.rng.randint(1, 3)
            lines.append((product_id, quantity, price))
            total += price * quantity
        at = _at(day, self.rng)
        # History is settled (delivered, a few returned); a new order starts as placed.
        status = ("returned" if self.rng.random() < 0.03 else "delivered") if history else "placed"
        self._pending.append((customer_id, at, status, lines, total, history, arrived))

    def _flush_orders(self) -> None:
        if not self._pending:
            return
        order_id = self._next_id("orders", "order_id")
        item_id = self._next_id("order_items", "order_item_id")
        orders, items = [], []
        for customer_id, at, status, lines, total, history, arrived in self._pending:
            # A settled order's row last changed when it was delivered; stamped by this day at the latest.
            # An imported history was written today: a copy by updated_at must see it as new.
            updated = min(at + dt.timedelta(days=3), _at(self.day, self.rng)) if history else at
            updated = _at(self.day, self.rng) if arrived else max(updated, at)
            orders.append((order_id, customer_id, status, at, updated))
            for product_id, quantity, price in lines:
                items.append((item_id, order_id, product_id, quantity, price, updated if arrived else at))
                item_id += 1
            if at.date() >= self.day - dt.timedelta(days=AD_HISTORY_DAYS):
                self.new_orders.append((order_id, customer_id, at, total if status != "returned" else Decimal(0)))
            order_id += 1
        execute_values(self.cur, "INSERT INTO shop.orders VALUES %s", orders)
        execute_values(self.cur, "INSERT INTO shop.order_items VALUES %s", items)
        self._count("orders_inserted", len(orders))
        self._count("order_items_inserted", len(items))
        self._pending.clear()

    def traffic(self) -> None:
        """Orders of the existing customers, each at their segment's rate."""
        self.cur.execute("SELECT customer_id, segment FROM public.marketing_planted_segments "
                         "JOIN shop.customers USING (customer_id) ORDER BY customer_id")
        members = self.cur.fetchall()
        self.cur.execute("SELECT product_id, price FROM shop.products ORDER BY product_id")
        catalogue = self.cur.fetchall()
        for customer_id, segment in members:
            spec = SEGMENTS[segment]
            if self.rng.random() < spec.daily_order_probability:
                self._order(customer_id, self.day, spec, catalogue, history=False)
        self._flush_orders()

    def lifecycle(self) -> None:
        """placed -> shipped the next day, shipped -> delivered two days later, a few delivered returned."""
        now = _at(self.day, self.rng)
        for old, new, age, probability in (("shipped", "delivered", 2, 1.0), ("placed", "shipped", 1, 1.0),
                                           ("delivered", "returned", 0, 0.01)):
            self.cur.execute("SELECT order_id FROM shop.orders WHERE status = %s AND updated_at < %s ORDER BY order_id",
                             (old, now - dt.timedelta(days=age)))
            chosen = [row[0] for row in self.cur.fetchall() if self.rng.random() < probability]
            if chosen:
                self.cur.execute("UPDATE shop.orders SET status = %s, updated_at = %s WHERE order_id = ANY(%s)",
                                 (new, now, chosen))
                self._count("orders_updated", self.cur.rowcount)

    def price_changes(self, count: int) -> None:
        self.cur.execute("SELECT product_id FROM shop.products ORDER BY product_id")
        ids = [row[0] for row in self.cur.fetchall()]
        for product_id in self.rng.sample(ids, min(count, len(ids))):
            self.cur.execute("UPDATE shop.products SET price = round(price * %s, 2), updated_at = %s "
                             "WHERE product_id = %s",
                             (Decimal(str(round(self.rng.uniform(0.85, 1.15), 2))), _at(self.day, self.rng), product_id))
            self._count("products_updated", self.cur.rowcount)

    def erasure(self) -> None:
        """One customer asks to be forgotten: the account and its orders go (ON DELETE CASCADE)."""
        self.cur.execute("SELECT customer_id FROM shop.customers ORDER BY customer_id")
        ids = [row[0] for row in self.cur.fetchall()]
        victim = self.rng.choice(ids)
        self.cur.execute("SELECT count(*) FROM shop.order_items JOIN shop.orders USING (order_id) WHERE customer_id = %s",
                         (victim,))
        self._count("order_items_deleted", self.cur.fetchone()[0])
        self.cur.execute("DELETE FROM shop.orders WHERE customer_id = %s", (victim,))
        self._count("orders_deleted", self.cur.rowcount)
        self.cur.execute("DELETE FROM shop.customers WHERE customer_id = %s", (victim,))
        self._count("customers_deleted", self.cur.rowcount)
        self.cur.execute("DELETE FROM public.marketing_planted_segments WHERE customer_id = %s", (victim,))
        self.new_orders = [order for order in self.new_orders if order[1] != victim]

    # The ad platform ---------------------------------------------------------------------------------

    def _record(self, resource: str, record: dict) -> None:
        self.records.setdefault(resource, []).append(record)

    def ad_entities(self) -> None:
        created = _at(self.day - dt.timedelta(days=AD_HISTORY_DAYS + 1), self.rng).isoformat()
        ad_id = group_id = 0
        for campaign_id in range(1, CAMPAIGNS + 1):
            status = "paused" if campaign_id == PAUSED_CAMPAIGN else "active"
            self._record("campaigns", {"id": campaign_id, "name": f"Campaign {campaign_id}",
                                       "channel": CHANNELS[campaign_id % len(CHANNELS)], "status": status,
                                       "daily_budget": round(self.rng.uniform(50, 200), 2), "updated_at": created})
            for _ in range(AD_GROUPS_PER_CAMPAIGN):
                group_id += 1
                self._record("ad_groups", {"id": group_id, "campaign_id": campaign_id,
                                           "name": f"Group {group_id}", "status": status, "updated_at": created})
                for _ in range(ADS_PER_GROUP):
                    ad_id += 1
                    self._record("ads", {"id": ad_id, "ad_group_id": group_id, "campaign_id": campaign_id,
                                         "headline": f"Ad {ad_id}", "status": status, "updated_at": created})

    def _ads(self) -> list[tuple[int, int]]:
        """(ad, campaign) of every ad the platform has."""
        per_campaign = AD_GROUPS_PER_CAMPAIGN * ADS_PER_GROUP
        return [(ad, (ad - 1) // per_campaign + 1) for ad in range(1, CAMPAIGNS * per_campaign + 1)]

    def _stats(self, day: dt.date, ad_id: int, campaign_id: int) -> dict:
        if campaign_id == PAUSED_CAMPAIGN:
            impressions = clicks = 0
        else:
            impressions = self.rng.randint(800, 5000)
            clicks = sum(self.rng.random() < 0.03 for _ in range(impressions // 10)) if ad_id % 7 else 0
        cost_per_click = 0.4 + 0.1 * (campaign_id % 3)
        return {"ad_id": ad_id, "date": day.isoformat(), "impressions": impressions, "clicks": clicks,
                "spend": round(clicks * cost_per_click, 2), "updated_at": _at(self.day, self.rng).isoformat()}

    def ad_stats(self, days: list[dt.date]) -> dict[tuple[int, dt.date], int]:
        clicks = {}
        for day in days:
            for ad_id, campaign_id in self._ads():
                stats = self._stats(day, ad_id, campaign_id)
                clicks[(ad_id, day)] = stats["clicks"]
                self._record("ad_stats", stats)
        return clicks

    def restate_yesterday(self) -> None:
        """Platforms correct recent stats: some ads' yesterday comes again, with a later updated_at."""
        yesterday = self.day - dt.timedelta(days=1)
        active = [pair for pair in self._ads() if pair[1] != PAUSED_CAMPAIGN]
        for ad_id, campaign_id in self.rng.sample(active, RESTATED_ADS):
            self._record("ad_stats", self._stats(yesterday, ad_id, campaign_id))

    def conversions(self, clicks: dict[tuple[int, dt.date], int]) -> None:
        """A share of the orders credited to one of that day's ads, weighted by its clicks."""
        conversion = self.day.toordinal() * 100_000
        for order_id, customer_id, at, value in self.new_orders:
            day_clicks = [(ad, count) for (ad, day), count in clicks.items() if day == at.date() and count]
            if not day_clicks or self.rng.random() >= ATTRIBUTED_SHARE:
                continue
            ad_id = self.rng.choices([ad for ad, _ in day_clicks], [count for _, count in day_clicks])[0]
            conversion += 1
            self._record("conversions", {"id": conversion, "ad_id": ad_id, "customer_id": customer_id,
                                         "order_id": order_id, "converted_at": at.isoformat(),
                                         "revenue": float(value), "updated_at": at.isoformat()})

    def bad_records(self) -> None:
        """What a real platform sends now and then: a count that is not a number, a conversion without its id."""
        at = _at(self.day, self.rng).isoformat()
        self._record("ad_stats", {"ad_id": 900_000 + self.day.toordinal() % 1000, "date": self.day.isoformat(),
                                  "impressions": 10, "clicks": "n/a", "spend": 0.5, "updated_at": at})
        self._record("conversions", {"id": None, "ad_id": 1, "customer_id": None, "order_id": None,
                                     "converted_at": at, "revenue": 10.0, "updated_at": at})
        self._count("ad_bad_records", 2)

    def write_records(self) -> None:
        for resource, records in self.records.items():
            folder = self.out / resource
            folder.mkdir(parents=True, exist_ok=True)
            part = folder / f".{self.day.isoformat()}.jsonl.part"
            part.write_text("".join(json.dumps(record, sort_keys=True) + "\n" for record in records))
            part.rename(folder / f"{self.day.isoformat()}.jsonl")  # whole or not at all
            self._count(f"ad_{resource}", len(records))


def ad_platform_folder() -> Path:
    from lakehouse.settings import load_settings

    return load_settings().home / AD_PLATFORM_FOLDER


def simulate_day(day: dt.date, seed: int = 42, customers: int = 400, dsn: str | None = None,
                 out: Path | None = None) -> dict[str, int]:
    """Write ``day`` of the shop (to PostgreSQL) and the ad platform (to files), once; what was written."""
    dsn = dsn or resolve_dsn("lakehouse_source")[0]
    out = Path(out) if out else ad_platform_folder()
    apply_schema(dsn, SCHEMA_FILE)
    conn = connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            # Parallel ingest tasks each ask for the day: the first writes it, the others find it done.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('lakehouse.marketing_generator'))")
            _bookkeeping(cur)
            cur.execute("SELECT max(day), count(*) FROM public.marketing_simulated_days")
            last, days = cur.fetchone()
            if last is not None and day <= last:
                return {"skipped": 1}
            rng = random.Random(f"{seed}:{day.isoformat()}")
            today = _Day(cur, day, rng, out)
            if not days:
                today.products(60)
                today.customers(int(customers), migrated=False)
                today.ad_entities()
                clicks = today.ad_stats([day - dt.timedelta(days=n) for n in range(AD_HISTORY_DAYS, 0, -1)] + [day])
            else:
                today.lifecycle()
                today.price_changes(2)
                today.traffic()
                today.customers(max(1, round(int(customers) * MIGRATED_SHARE)), migrated=True)
                today.erasure()
                clicks = today.ad_stats([day])
                today.restate_yesterday()
                today.bad_records()
            today.conversions(clicks)
            today.write_records()
            cur.execute("INSERT INTO public.marketing_simulated_days (day) VALUES (%s)", (day,))
            return today.counts
    finally:
        conn.close()
