"""Seeded order traffic driven through real SQL, so the audit trigger and the WAL see every change.

A batch is one simulated business day, as several transactions:
1. (at ``add_column_at_batch``) ALTER TABLE orders ADD COLUMN discount_amount: schema evolution;
   from then on new and updated rows carry it.
2. New orders (status 'created'), ids from the table's identity: unique across batches and runs.
3. Two lifecycle rounds: created -> paid -> shipped -> delivered (-> returned), or -> cancelled,
   plus customer e-mail corrections; so an order is updated several times, sometimes twice a day.
4. Some cancelled or returned orders are deleted; some deleted ids are re-created (same id) a later day.
5. "Churn": orders inserted, updated twice and deleted in ONE transaction (one key, I+U+U+D in one batch).
6. (``bad_events_per_batch``) rows written straight into audit_log_dml that staging must quarantine:
   an unknown operation, an unknown table, a row without its key, malformed row data (null).
Every count returned is what PostgreSQL reported (rowcount), so tests can compare it with the audit log.
The content depends only on the seed and what the database held before (ids come from PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import click
from faker import Faker
from psycopg2.extras import execute_values

from lakehouse.cdc.source import apply_schema
from lakehouse.sources.postgres_server import connect

# The source's tables, audit trigger and publication (applied before every capture and generator run).
SCHEMA_FILE = Path(__file__).with_name("source_schema.sql")
NEW_COLUMN = "discount_amount"
CURRENCIES = ("USD", "EUR", "GBP", "CHF")
CURRENCY_WEIGHTS = (0.55, 0.25, 0.12, 0.08)
TAX_RATES = {"USD": Decimal("0.07"), "EUR": Decimal("0.20"), "GBP": Decimal("0.20"), "CHF": Decimal("0.081")}
# Next status and its probability, per round; whatever is left over keeps the status.
LIFECYCLE = {
    "created": (("paid", 0.65), ("cancelled", 0.10)),
    "paid": (("shipped", 0.70), ("cancelled", 0.04)),
    "shipped": (("delivered", 0.80),),
    "delivered": (("returned", 0.04),),
}
OPEN = tuple(LIFECYCLE)
DELETE_PROBABILITY = 0.5  # of a cancelled or returned order, each day
RECREATE_PROBABILITY = 0.3  # of a deleted id, each later day
EMAIL_FIX_PROBABILITY = 0.03
CHURN_SHARE = 0.02  # of the day's new orders, at least one
CHURN_COLUMNS = ("customer_id", "customer_name", "customer_email", "status", "quantity", "unit_price", "amount",
                 "tax_amount", "currency", "shipping_country", "created_at", "updated_at")


@dataclass
class GenerateResult:
    batches: int = 0
    inserts: int = 0  # rows inserted, re-created ones and churn included
    updates: int = 0
    deletes: int = 0
    recreated: int = 0  # inserts that reused a deleted id
    churned: int = 0  # keys inserted, updated and deleted in one transaction
    bad_events: int = 0  # audit rows written without the trigger
    statements: int = 0  # DML statements executed
    transactions: int = 0
    new_order_ids: tuple[int, int] | None = None  # lowest and highest id given to a new (not re-created) order
    added_column: str | None = None

    @property
    def row_changes(self) -> int:
        return self.inserts + self.updates + self.deletes

    @property
    def audit_events(self) -> int:
        return self.row_changes + self.bad_events


class _Generator:
    def __init__(self, conn, seed: int, start_date: dt.date):
        self.conn, self.cur = conn, conn.cursor()
        self.rng = random.Random(f"orders:{seed}")
        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)
        self.customers = [(i, self.fake.name(), self.fake.email()) for i in range(1, 501)]
        self.start = dt.datetime.combine(start_date, dt.time(), dt.UTC)
        self.deleted: list[int] = []  # ids deleted by this run, candidates for re-creation
        self.result = GenerateResult()
        self.cur.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'orders'"
            " AND column_name = %s", (NEW_COLUMN,))
        self.has_new_column = self.cur.fetchone() is not None

    # -- helpers -----------------------------------------------------------------------------
    def _commit(self) -> None:
        self.conn.commit()
        self.result.transactions += 1

    def _execute(self, sql: str, args=None) -> int:
        self.cur.execute(sql, args)
        self.result.statements += 1
        return self.cur.rowcount

    def _values(self, sql: str, rows: list[tuple], fetch: bool = False):
        # One statement for all rows (page_size), so rowcount is the statement's whole count.
        out = execute_values(self.cur, sql, rows, page_size=max(1, len(rows)), fetch=fetch)
        self.result.statements += 1
        return out if fetch else self.cur.rowcount

    def _time(self, day: int) -> dt.datetime:
        return self.start + dt.timedelta(days=day, seconds=self.rng.randrange(86400), microseconds=self.rng.randrange(10**6))

    def _order(self, day: int) -> dict:
        customer_id, name, email = self.rng.choice(self.customers)
        currency = self.rng.choices(CURRENCIES, CURRENCY_WEIGHTS)[0]
        quantity = self.rng.randint(1, 20)
        unit_price = Decimal(self.rng.randint(199, 49999)) / 100
        amount = unit_price * quantity
        created = self._time(day)
        row = {
            "customer_id": customer_id, "customer_name": name, "customer_email": email, "status": "created",
            "quantity": quantity, "unit_price": unit_price, "amount": amount,
            "tax_amount": (amount * TAX_RATES[currency]).quantize(Decimal("0.01")), "currency": currency,
            "shipping_country": self.fake.country_code(), "created_at": created, "updated_at": created,
        }
        if self.has_new_column:
            row[NEW_COLUMN] = self._discount()
        return row

    def _discount(self) -> Decimal:
        return Decimal(self.rng.choice((0, 0, 0, 500, 1000, 2500))) / 100

    def _insert(self, rows: list[dict], ids: list[int] | None = None) -> list[int]:
        if not rows:
            return []
        columns = list(rows[0]) if ids is None else ["order_id", *rows[0]]
        values = [tuple(r.values()) if ids is None else (i, *r.values()) for r, i in zip(rows, ids or rows)]
        returned = self._values(
            f"INSERT INTO public.orders ({', '.join(columns)}) VALUES %s RETURNING order_id", values, fetch=True)
        self.result.inserts += len(returned)
        new_ids = [r[0] for r in returned]
        if ids is None:
            low, high = self.result.new_order_ids or (min(new_ids), max(new_ids))
            self.result.new_order_ids = (min(low, *new_ids), max(high, *new_ids))
        return new_ids

    # -- a day ---------------------------------------------------------------------------------
    def batch(self, day: int, orders: int, add_column: bool, bad_events: int) -> None:
        if add_column:
            self.cur.execute(f"ALTER TABLE public.orders ADD COLUMN IF NOT EXISTS {NEW_COLUMN} numeric(12,2)")
            self._commit()
            self.has_new_column = True
            self.result.added_column = NEW_COLUMN
        self._insert([self._order(day) for _ in range(orders)])
        self._commit()
        for _ in range(2):
            self._lifecycle(day)
            self._commit()
        self._delete_and_recreate(day)
        self._churn(day, max(1, round(orders * CHURN_SHARE)))
        if bad_events:
            self._bad_events(bad_events)
        self.result.batches += 1

    def _lifecycle(self, day: int) -> None:
        self.cur.execute("SELECT order_id, status FROM public.orders WHERE status = ANY(%s) ORDER BY order_id", (list(OPEN),))
        changes = []
        for order_id, status in self.cur.fetchall():
            draw = self.rng.random()
            for target, probability in LIFECYCLE[status]:
                if draw < probability:
                    changes.append((order_id, target, self._time(day), None))
                    break
                draw -= probability
            else:
                if self.rng.random() < EMAIL_FIX_PROBABILITY:
                    changes.append((order_id, status, self._time(day), self.fake.email()))
        if not changes:
            return
        discount = f", {NEW_COLUMN} = coalesce(o.{NEW_COLUMN}, v.discount)" if self.has_new_column else ""
        rows = [(*c, self._discount()) for c in changes]
        self.result.updates += self._values(
            "UPDATE public.orders o SET status = v.status, updated_at = v.updated_at,"
            f" customer_email = coalesce(v.email, o.customer_email){discount}"
            " FROM (VALUES %s) AS v(order_id, status, updated_at, email, discount) WHERE o.order_id = v.order_id",
            rows)

    def _delete_and_recreate(self, day: int) -> None:
        self.cur.execute("SELECT order_id FROM public.orders WHERE status IN ('cancelled', 'returned') ORDER BY order_id")
        doomed = [r[0] for r in self.cur.fetchall() if self.rng.random() < DELETE_PROBABILITY]
        reborn = [i for i in self.deleted if self.rng.random() < RECREATE_PROBABILITY]
        if doomed:
            self.result.deletes += self._execute("DELETE FROM public.orders WHERE order_id = ANY(%s)", (doomed,))
            self._commit()
        if reborn:
            self._insert([self._order(day) for _ in reborn], reborn)
            self.result.recreated += len(reborn)
            self._commit()
        reborn_set = set(reborn)
        self.deleted = [i for i in self.deleted if i not in reborn_set] + doomed

    def _churn(self, day: int, count: int) -> None:
        ids = self._insert([self._order(day) for _ in range(count)])
        for status in ("paid", "cancelled"):
            self.result.updates += self._execute(
                "UPDATE public.orders SET status = %s, updated_at = updated_at + interval '1 minute'"
                " WHERE order_id = ANY(%s)", (status, ids))
        self.result.deletes += self._execute("DELETE FROM public.orders WHERE order_id = ANY(%s)", (ids,))
        self.result.churned += len(ids)
        self._commit()

    def _bad_events(self, count: int) -> None:
        kinds = [
            ("X", "public", "orders", '{"order_id": -1, "status": "created"}'),  # unknown operation
            ("I", "public", "customers_legacy", '{"customer_id": 7}'),  # unknown table
            ("U", "public", "orders", '{"status": "paid"}'),  # no order_id
            ("D", "public", "orders", None),  # no row at all
        ]
        rows = [kinds[i % len(kinds)] for i in range(count)]  # every kind once a day from 4 on
        self.result.bad_events += self._values(
            "INSERT INTO public.audit_log_dml (audit_operation, tbl_schema, tbl_name, raw_data) VALUES %s", rows)
        self._commit()


def generate_orders(
    dsn: str,
    *,
    batches: int,
    orders_per_batch: int,
    seed: int = 42,
    add_column_at_batch: int | None = None,
    bad_events_per_batch: int = 0,
    start_date: dt.date = dt.date(2026, 1, 1),
) -> GenerateResult:
    """Run ``batches`` simulated days of order traffic against the source; returns what was done."""
    if batches < 0 or orders_per_batch < 0 or bad_events_per_batch < 0:
        raise ValueError("batches, orders_per_batch and bad_events_per_batch must not be negative")
    if add_column_at_batch is not None and not 1 <= add_column_at_batch <= max(batches, 1):
        raise ValueError(f"add_column_at_batch must be between 1 and {batches}")
    apply_schema(dsn, SCHEMA_FILE)
    conn = connect(dsn, options="-c timezone=UTC")
    try:
        generator = _Generator(conn, seed, start_date)
        for day in range(batches):
            generator.batch(day, orders_per_batch, add_column_at_batch == day + 1, bad_events_per_batch)
        return generator.result
    finally:
        conn.close()


def simulate_day(dsn: str, day: dt.date, rows: int, seed: int) -> GenerateResult:
    """The postgres_cdc ingest's demo traffic (option ``generator``): one day of ``rows`` new orders,
    a new seed per day so each simulated day has its own traffic. Only ever run on the embedded server."""
    return generate_orders(dsn, batches=1, orders_per_batch=rows, seed=seed + day.toordinal(), start_date=day)


@click.command("orders_cdc")
@click.option("--batches", type=click.IntRange(min=0), default=5, show_default=True, help="Simulated days.")
@click.option("--orders", "orders_per_batch", type=click.IntRange(min=0), default=1000, show_default=True,
              help="New orders per batch.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--add-column-at-batch", type=click.IntRange(min=1), help="ALTER TABLE orders ADD COLUMN at this batch.")
@click.option("--bad-events", "bad_events_per_batch", type=click.IntRange(min=0), default=0, show_default=True,
              help="Malformed audit rows per batch, for staging's quarantine.")
def command(batches: int, orders_per_batch: int, seed: int, add_column_at_batch: int | None,
            bad_events_per_batch: int) -> None:
    """Orders created, updated, deleted and re-created through SQL on the CDC source."""
    from lakehouse.cli import emit
    from lakehouse.sources.postgres_server import source_dsn

    started = time.monotonic()
    result = generate_orders(source_dsn(), batches=batches, orders_per_batch=orders_per_batch, seed=seed,
                             add_column_at_batch=add_column_at_batch, bad_events_per_batch=bad_events_per_batch)
    names = ["batches", "inserts", "updates", "deletes", "recreated", "churned", "bad_events", "audit_events",
             "transactions"]
    rows = [[name, getattr(result, name)] for name in names] + [["seconds", f"{time.monotonic() - started:.1f}"]]
    if result.added_column:
        rows.append(["added column", result.added_column])
    emit(["generated", "count"], rows, title="orders")
