"""The dbt_utils and dbt_date stand-ins of the shared dbt package (dbt/lakehouse_dbt/macros/compat,
macros/tests, compat_packages/), through one real dbt run + test of tests/fixtures/compat_project
on a fresh LAKEHOUSE_HOME: the values each macro gives, computed again here in Python from the
tables the models read, and every generic test passing or failing with the failure count its
planted rows give. The models call both `lakehouse.<macro>` and the `dbt_utils.` / `dbt_date.` shims.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path

import pytest
from dbt_runs import module_home, results_by_name
from quality_project import dbt, install_packages

from lakehouse import compute

PROJECT = Path(__file__).parents[1] / "fixtures" / "compat_project"
NULL_KEY_PART = "_dbt_utils_surrogate_key_null_"


@pytest.fixture(scope="module")
def home(request, tmp_path_factory):
    yield from module_home(request, tmp_path_factory)


@pytest.fixture(scope="module")
def results(home, tmp_path_factory):
    """`dbt run`, then `dbt test` (data tests and unit tests); the test results by node name."""
    target = tmp_path_factory.mktemp("compat_target")
    install_packages(PROJECT)
    run = dbt(target, "run", project=PROJECT)
    assert run.success, f"dbt run failed: {run.exception or [str(r.message) for r in run.result or []]}"
    test = dbt(target, "test", project=PROJECT)
    assert test.exception is None, f"dbt test could not run: {test.exception}"
    return results_by_name(target)


@pytest.fixture(scope="module")
def lake(results):
    con = compute.connect()
    yield con
    con.close()


def table(lake, name: str) -> list[dict]:
    return lake.sql(f"select * from staging.{name}").to_arrow_table().to_pylist()


def columns(lake, name: str) -> list[str]:
    return [row[0] for row in lake.sql(f"describe staging.{name}").fetchall()]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# --- macros -------------------------------------------------------------------------------------

def test_surrogate_keys_are_the_md5_of_the_fields_as_text_joined_by_dashes(lake):
    people = {p["person_id"]: p for p in table(lake, "people")}
    keys = {k["person_id"]: k for k in table(lake, "surrogate_keys")}
    assert keys.keys() == people.keys() == {1, 2, 3, 4, 5}
    for person_id, person in people.items():
        last_name = person["last_name"] if person["last_name"] is not None else NULL_KEY_PART
        assert keys[person_id]["person_key"] == md5(f"{person_id}-{person['first_name']}-{last_name}")
        # through the dbt_utils shim; a date as text is its ISO form
        assert keys[person_id]["signup_key"] == md5(f"{person['first_name']}-{person['signup_date'].isoformat()}")
    assert keys[3]["person_key"] == md5(f"3-Grace-{NULL_KEY_PART}")  # Grace has no last name


def test_star_selects_every_column_but_the_excluded_ones(lake):
    people = table(lake, "people")
    assert columns(lake, "star_people") == ["person_id", "first_name", "last_name", "age", "signup_date"]
    assert table(lake, "star_people") == [
        {k: p[k] for k in ("person_id", "first_name", "last_name", "age", "signup_date")} for p in people
    ]
    # relation_alias, prefix and suffix (the shim, with from= as dbt_utils' callers write it)
    assert columns(lake, "star_prefixed") == ["person_person_id_x", "person_first_name_x", "person_last_name_x"]
    assert [r["person_last_name_x"] for r in table(lake, "star_prefixed")] == [p["last_name"] for p in people]


def test_union_relations_gives_every_row_with_the_columns_of_all_and_the_source(lake):
    sources = {name: table(lake, name) for name in ("orders_2025", "orders_2026")}
    union = ["order_id", "person_id", "amount", "status", "coupon", "channel"]  # first seen order
    assert columns(lake, "all_orders") == ["_dbt_source_relation", *union]
    expected = [
        {"_dbt_source_relation": f'"memory"."staging"."{name}"', **{c: row.get(c) for c in union}}
        for name, rows in sources.items() for row in rows
    ]
    assert sorted(table(lake, "all_orders"), key=lambda r: r["order_id"]) == sorted(expected, key=lambda r: r["order_id"])
    assert len(expected) == 5

    # exclude, source_column_name, where and column_override (the shim)
    large = table(lake, "large_orders")
    assert columns(lake, "large_orders") == ["source_table", "order_id", "person_id", "amount", "status", "channel"]
    assert sorted(r["order_id"] for r in large) == sorted(r["order_id"] for r in expected if r["amount"] > 10)
    # the same two tables found by name pattern (get_relations_by_pattern)
    assert sorted(table(lake, "orders_by_pattern"), key=lambda r: r["order_id"]) == sorted(expected, key=lambda r: r["order_id"])

    [(amount_type,)] = lake.sql("select data_type from information_schema.columns"
                                " where table_name = 'large_orders' and column_name = 'amount'").fetchall()
    assert amount_type == "DECIMAL(12,2)"


def add_months(day: dt.date, months: int) -> dt.date:
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return day.replace(year=year, month=month + 1, day=min(day.day, calendar.monthrange(year, month + 1)[1]))


def test_date_spine_gives_each_datepart_from_the_start_included_to_the_end_excluded(lake):
    spines: dict[str, list] = {}
    for row in sorted(table(lake, "spines"), key=lambda r: r["spine_value"]):
        spines.setdefault(row["datepart"], []).append(row["spine_value"])
    midnight = dt.datetime.combine
    days = [dt.date(2026, 2, 26) + dt.timedelta(days=n) for n in range(4)]  # 2026 is not a leap year
    assert spines["day"] == [midnight(d, dt.time()) for d in days]
    assert spines["week"] == [dt.datetime(2026, 1, 1) + dt.timedelta(weeks=n) for n in range(4)]  # the 29th is the end
    # each step from the start: Jan 31, Feb 28, Mar 31, Apr 30 (not Mar 28)
    assert spines["month"] == [midnight(add_months(dt.date(2026, 1, 31), n), dt.time()) for n in range(4)]
    assert spines["quarter"] == [midnight(add_months(dt.date(2026, 1, 15), 3 * n), dt.time()) for n in range(4)]
    assert spines["year"] == [dt.datetime(2024, 2, 29), dt.datetime(2025, 2, 28), dt.datetime(2026, 2, 28)]
    assert spines["hour"] == [dt.datetime(2026, 3, 29, 22) + dt.timedelta(hours=n) for n in range(3)]
    assert spines["minute"] == [dt.datetime(2026, 3, 29, 23, 58) + dt.timedelta(minutes=n) for n in range(4)]

    # the shim's spine as a model: date_day is a date
    assert lake.sql("describe staging.spine_days").fetchall()[0][:2] == ("date_day", "DATE")
    assert [r["date_day"] for r in table(lake, "spine_days")] == [
        dt.date(2026, 12, 30),
        dt.date(2026, 12, 31),
        dt.date(2027, 1, 1),
    ]


def test_generate_series_counts_from_one(lake):
    assert sorted(r["generated_number"] for r in table(lake, "series")) == [1, 2, 3, 4]


def test_get_base_dates_from_dates_or_the_last_n_dateparts(lake):
    rows = table(lake, "base_dates")
    by_kind = {kind: sorted(r["date_day"] for r in rows if r["kind"] == kind) for kind in ("range", "last_3_days")}
    assert by_kind["range"] == [
        dt.datetime(2028, 2, 27),
        dt.datetime(2028, 2, 28),
        dt.datetime(2028, 2, 29),
        dt.datetime(2028, 3, 1),
    ]
    # n_dateparts=3: three days back up to and including today (dbt_date:time_zone is UTC in the project)
    today = dt.datetime.now(dt.UTC).date()
    choices = [[dt.datetime.combine(t - dt.timedelta(days=n), dt.time()) for n in (3, 2, 1, 0)]
               for t in (today, today - dt.timedelta(days=1))]  # the run may have been before midnight
    assert by_kind["last_3_days"] in choices


def test_get_date_dimension_matches_python_calendar(lake):
    rows = sorted(table(lake, "calendar"), key=lambda r: r["date_day"])
    assert [r["date_day"] for r in rows] == [dt.date(2026, 12, 27) + dt.timedelta(days=n) for n in range(8)]
    for r in rows:
        day: dt.date = r["date_day"]
        quarter_start = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        iso_week_start = day - dt.timedelta(days=day.isoweekday() - 1)
        assert r == {
            "date_day": day,
            "prior_date_day": day - dt.timedelta(days=1),
            "next_date_day": day + dt.timedelta(days=1),
            "day_of_week": day.isoweekday() % 7 + 1,  # 1 = Sunday
            "day_of_week_iso": day.isoweekday(),
            "day_of_week_name": day.strftime("%A"),
            "day_of_week_name_short": day.strftime("%a"),
            "day_of_month": day.day,
            "day_of_year": day.timetuple().tm_yday,
            "iso_week_start_date": iso_week_start,
            "iso_week_end_date": iso_week_start + dt.timedelta(days=6),
            "iso_week_of_year": day.isocalendar().week,
            "month_of_year": day.month,
            "month_name": day.strftime("%B"),
            "month_name_short": day.strftime("%b"),
            "month_start_date": day.replace(day=1),
            "month_end_date": day.replace(day=calendar.monthrange(day.year, day.month)[1]),
            "quarter_of_year": (day.month - 1) // 3 + 1,
            "quarter_start_date": quarter_start,
            "quarter_end_date": add_months(quarter_start, 3) - dt.timedelta(days=1),
            "year_number": day.year,
            "year_start_date": dt.date(day.year, 1, 1),
            "year_end_date": dt.date(day.year, 12, 31),
        }, day
    assert rows[1]["iso_week_of_year"] == 53 and rows[0]["iso_week_of_year"] == 52  # 2026 has 53 ISO weeks


def test_deduplicate_keeps_the_first_row_of_each_group_whole(lake):
    events = table(lake, "events")

    def first(rows, key):
        best = {}
        for row in sorted(rows, key=key):
            best.setdefault(row["event_key"], row)
        return sorted(best.values(), key=lambda r: r["event_key"])

    latest = first(events, key=lambda r: -r["updated_at"].timestamp())
    assert sorted(table(lake, "latest_events"), key=lambda r: r["event_key"]) == latest
    assert [(r["event_key"], r["version"], r["state"]) for r in latest] == [("A", 2, "final"), ("B", 3, None), ("C", 1, "final")]
    # of a CTE, through the shim: events since Jan 2, lowest version first
    recent = [r for r in events if r["updated_at"] >= dt.datetime(2026, 1, 2)]
    assert sorted(table(lake, "latest_events_cte"), key=lambda r: r["event_key"]) == first(recent, key=lambda r: r["version"])


def test_pivot_of_the_column_values_with_safe_divide_and_safe_add(lake):
    orders = table(lake, "all_orders")
    statuses = sorted({o["status"] for o in orders})
    assert statuses == ["created", "returned", "shipped"]
    expected = []
    for person_id in sorted({o["person_id"] for o in orders}):
        mine = [o for o in orders if o["person_id"] == person_id]
        returns = sum(o["status"] == "returned" for o in mine)
        total = sum(o["amount"] for o in mine)
        expected.append({
            "person_id": person_id,
            **{f"orders_{s}": sum(o["status"] == s for o in mine) for s in statuses},
            **{f"{s}_amount": sum((o["amount"] for o in mine if o["status"] == s), Decimal("0")) for s in statuses},
            "amount_per_return": float(total / returns) if returns else None,
            "safe_total": total,
            "orders_in_all": len(orders),
        })
    assert columns(lake, "order_status_pivot") == list(expected[0])
    assert sorted(table(lake, "order_status_pivot"), key=lambda r: r["person_id"]) == expected


# --- generic tests ------------------------------------------------------------------------------

# name in models/_compat.yml -> (status, failures), from the rows of the fixture's models
CHECKS = {
    # measurements.reading: 5, 10, 20, 30, NULL, 50, -1 (id 8), 150 (id 9), NULL, 60
    "accepted_range_fails": ("fail", 2),  # [0, 100]: -1 and 150
    "accepted_range_passes": ("pass", 0),  # [-1, 150], bounds included
    "accepted_range_exclusive_fails": ("fail", 4),  # (5, 60): 5, 60, -1, 150
    "accepted_range_min_only_shim_fails": ("fail", 1),  # >= 0: -1
    "not_null_proportion_fails": ("fail", 1),  # 8 of 10 < 0.9: one failing row (the proportion)
    "not_null_proportion_passes": ("pass", 0),  # 0.8 >= 0.8
    "not_null_proportion_at_most_fails": ("fail", 1),  # 0.8 > 0.7
    "not_null_proportion_by_site_fails": ("fail", 1),  # south 2 of 3 < 0.7; north 1.0, east 3 of 4 pass
    "expression_is_true_fails": ("fail", 1),  # reading >= 0: -1 (NULL is not false)
    "expression_is_true_passes": ("pass", 0),
    "expression_is_true_where_passes": ("pass", 0),  # config where: id < 8 leaves -1 out
    "expression_is_true_shim_fails": ("fail", 1),  # reading < 100 or NULL: 150
    "not_constant_fails": ("fail", 1),  # unit is always 'mm'
    "not_constant_passes": ("pass", 0),
    "at_least_one_fails": ("fail", 1),  # note is always NULL
    "at_least_one_passes": ("pass", 0),
    "recency_fails": ("fail", 1),  # taken_at is in 2020
    "recency_passes": ("pass", 0),  # loaded_at is the run's now
    "sequential_values_fails": ("fail", 1),  # id 7 is missing: 8 follows 6
    "sequential_values_dates_pass": ("pass", 0),
    "not_empty_string_fails": ("fail", 1),  # id 3's label_text is two blanks
    "not_empty_string_untrimmed_passes": ("pass", 0),
    "equal_rowcount_fails": ("fail", 5),  # 10 measurements, 5 people: the difference
    "equal_rowcount_passes": ("pass", 0),  # 5 people, 5 surrogate keys (the shim)
    "fewer_rows_than_fails": ("fail", 5),  # 10 is not fewer than 5: 5 too many
    "fewer_rows_than_passes": ("pass", 0),
    "cardinality_equality_passes": ("pass", 0),
    "cardinality_equality_fails": ("fail", 2),  # orders hold person 9 (no person) and not person 4
    "relationships_where_fails": ("fail", 1),  # order 103's person 9
    "relationships_where_passes": ("pass", 0),  # from_condition leaves order 103 out
    "not_accepted_values_passes": ("pass", 0),
    "not_accepted_values_fails": ("fail", 2),  # returned and created occur
    # people_changed: every score + 0.004 (Edsger's stays NULL), Alan's last name changed
    "equality_fails": ("fail", 8),  # persons 1, 2, 3, 5 differ: 4 rows each way
    "equality_with_precision_fails": ("fail", 2),  # scores equal to 2 places: only Alan's row, each way
    "equality_excluding_the_changed_column_passes": ("pass", 0),
    "equality_of_some_columns_passes": ("pass", 0),
    "unique_combination_passes": ("pass", 0),  # the shim, quote_columns
    "unique_combination_fails": ("fail", 2),  # events A and B have several versions
}


@pytest.mark.parametrize("name", CHECKS)
def test_each_check_passes_or_fails_as_its_rows_say(results, name):
    result = results[name]
    assert (result["status"], result["failures"]) == CHECKS[name], result["message"]


def test_every_check_of_the_project_is_listed(results):
    data_tests = {name for name, r in results.items() if r["unique_id"].startswith("test.")}
    assert data_tests == set(CHECKS)


@pytest.mark.parametrize("name", ["order_state_writes_only_what_changed", "star_reads_the_fixture_columns",
                                  "union_relations_reads_the_fixture_columns"])
def test_unit_tests_see_the_columns_of_what_their_fixtures_stand_for(results, name):
    """Macros that read a relation's columns (CDC state comparison with `this`, star, union_relations)
    build the same SQL in a unit test as in a run: see dbt/lakehouse_dbt/macros/unit_testing.sql."""
    assert results[name]["status"] == "pass", results[name]["message"]
