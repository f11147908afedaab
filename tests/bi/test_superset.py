"""The BI layer as a person meets it: `lakehouse bi start` on a small lakehouse of every pipeline,
each dashboard opened in headless Chromium, its headline figure read off the page and compared with the
same figure computed here from the Iceberg marts; what Superset reads equals the marts after each run."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import requests
import yaml

from lakehouse import compute
from lakehouse.bi import dashboards as specs
from lakehouse.bi import provision, server
from lakehouse.catalog import _catalog_for
from lakehouse.settings import REPO_ROOT, load_settings
from lakehouse.sources import postgres_server

pytestmark = pytest.mark.e2e
LAKEHOUSE = str(Path(sys.executable).with_name("lakehouse"))
DAY, NEXT_DAY = "2026-11-20", "2026-11-21"
# A small lakehouse: every pipeline, fewer rows than `make run`.
SMALL = ("--conf", "scale=0.2", "--conf", "simulate_orders=60", "--conf", "simulate_rows=800")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Each dashboard's headline: the big number chart's title, and the same figure computed here from the
# Iceberg marts, independently of the dashboard's own SQL.
HEADLINES = {
    "liquidity-liquidity-risk": (
        "Liquidity-adjusted value (USD)",
        "select sum(liquidity_adjusted_value_usd) from marts.mart_liquidity_risk "
        "where as_of_date = (select max(as_of_date) from marts.mart_liquidity_risk)"),
}


def lakehouse(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "LAKEHOUSE_HOME": str(home), "LAKEHOUSE_BI_PORT": "0", **(env or {})}
    for name in ("AIRFLOW_HOME", postgres_server.DSN_VARIABLE):
        full.pop(name, None)
    return subprocess.run([LAKEHOUSE, *args], env=full, capture_output=True, text=True, timeout=900)


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def bi():
    # Outside pytest's tmp folder: the embedded PostgreSQL runs as another account that must reach it.
    home = Path(tempfile.mkdtemp(prefix="lakehouse-test-bi-"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_HOME", str(home))
        patch.delenv(postgres_server.DSN_VARIABLE, raising=False)
        _catalog_for.cache_clear()
        try:
            ok(lakehouse(home, "run", "--date", DAY, *SMALL))
            started = ok(lakehouse(home, "bi", "start"))
            yield {"home": home, "start_output": started, "status": server.status()}
        finally:
            lakehouse(home, "bi", "stop")
            lakehouse(home, "source", "stop")
            _catalog_for.cache_clear()
            shutil.rmtree(home, ignore_errors=True)


def client() -> provision.SupersetClient:
    return provision.SupersetClient(server.status().url, server.ADMIN, server.admin_password())


def slugs() -> dict[str, Path]:
    from lakehouse.pipeline import discover_pipelines

    found = {}
    for pipeline in discover_pipelines():
        for file in specs.dashboard_files(pipeline.folder):
            found[specs.load_dashboard(file, pipeline.name).slug] = file
    return found


def test_start_prints_the_login_once_serves_localhost_and_keeps_secrets_private(bi):
    password = server.admin_password()
    assert f"login: admin / {password}" in bi["start_output"]
    assert re.search(r"dashboards: \d+ provisioned, 0 unchanged", bi["start_output"]), bi["start_output"]
    assert bi["status"].url.startswith("http://127.0.0.1:")
    files = server.paths(load_settings())
    for name in ("password", "secret"):
        assert stat.S_IMODE(files[name].stat().st_mode) == 0o600, name
    again = ok(lakehouse(bi["home"], "bi", "start"))
    assert password not in again and "the password is kept in" in again
    assert password not in files["log"].read_text() and files["secret"].read_text().strip() not in files["log"].read_text()
    login = requests.post(f"{bi['status'].url}/api/v1/security/login", timeout=30,
                          json={"username": "admin", "password": "admin", "provider": "db"})
    assert login.status_code == 401  # no default password
    assert ok(lakehouse(bi["home"], "bi", "status")).startswith(f"Superset: running at {bi['status'].url}")


def checksums(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, tuple]:
    return {table: con.execute(f"select count(*), sum(hash(t)::hugeint) from {table} t").fetchone() for table in tables}


def assert_serving_copy_equals_the_marts() -> None:
    lake = compute.connect()
    tables = [row[0] for row in lake.execute(
        "select table_schema || '.' || table_name from information_schema.tables where table_schema = 'marts'").fetchall()]
    assert len(tables) >= 12
    copy = duckdb.connect(str(load_settings().home / "bi" / "lakehouse.duckdb"), read_only=True)
    assert checksums(copy, tables) == checksums(lake, tables)
    assert sum(count for count, _ in checksums(copy, tables).values()) > 1000


def test_what_superset_reads_equals_the_marts(bi):
    assert_serving_copy_equals_the_marts()


def open_dashboards(names: list[str], shots: Path) -> dict[str, dict[str, str]]:
    """Open each dashboard logged in, wait for every chart to render, screenshot it; returns each
    dashboard's {chart title: text of its big number}."""
    from playwright.sync_api import sync_playwright

    url, seen = server.status().url, {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.goto(f"{url}/login/")
            page.fill("#username", server.ADMIN)
            page.fill("#password", server.admin_password())
            page.keyboard.press("Enter")
            page.wait_for_url(re.compile(r".*/superset/welcome/.*|.*/dashboard/list.*|.*/superset/.*"))
            for slug in names:
                charts = len(specs.load_dashboard(slugs()[slug], slug.split("-")[0]).charts)
                page.goto(f"{url}/superset/dashboard/{slug}/?standalone=1")
                page.wait_for_function(
                    """(n) => { const boxes = document.querySelectorAll('[data-test="chart-grid-component"]');
                       return boxes.length === n && Array.from(boxes).every(b =>
                         b.querySelector('canvas, svg, table, .header-line') && !b.querySelector('.loading')); }""",
                    arg=charts, timeout=60_000)
                errors = page.locator('[data-test="chart-grid-component"] [role="alert"]').all_inner_texts()
                assert not errors, f"{slug}: {errors}"
                page.screenshot(path=str(shots / f"{slug}.png"), full_page=True)
                seen[slug] = page.evaluate(
                    """() => Object.fromEntries(Array.from(document.querySelectorAll('[data-test="chart-grid-component"]'))
                         .filter(b => b.querySelector('.header-line'))
                         .map(b => [b.getAttribute('data-test-chart-name'), b.querySelector('.header-line').textContent]))""")
        finally:
            browser.close()
    return seen


def shown(text: str) -> Decimal:
    return Decimal(text.replace(",", "").strip())


def test_every_dashboard_renders_in_chromium_with_the_figures_of_the_marts(bi, tmp_path):
    shots = Path(os.environ.get("LAKEHOUSE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    names = sorted(slugs())
    assert {"liquidity-liquidity-risk"} <= set(names) and len(names) == 5, names
    seen = open_dashboards(names, shots)
    lake = compute.connect()
    for slug, (title, sql) in HEADLINES.items():
        [(expected,)] = lake.execute(sql).fetchall()
        assert shown(seen[slug][title]) == round(Decimal(str(expected)), 2), (slug, seen[slug])
    for slug in names:
        assert (shots / f"{slug}.png").stat().st_size > 20_000, slug  # a picture with charts, not a blank page


def sql_lab(sql: str) -> requests.Response:
    session = client()
    database = session.find("database", specs.DATABASE_UUID)
    return session.session.post(f"{session.url}/api/v1/sqllab/execute/", timeout=60, json={
        "database_id": database, "sql": sql, "schema": "marts", "runAsync": False,
        "client_id": os.urandom(5).hex(), "tab": "test"})


def test_the_connection_superset_uses_can_only_read_the_marts(bi):
    done = sql_lab("select count(*) as n from marts.mart_positions")
    assert done.status_code == 200, done.text
    [(expected,)] = compute.connect().execute("select count(*) from marts.mart_positions").fetchall()
    assert done.json()["data"] == [{"n": expected}]
    # Superset refuses DML on this database; DuckDB underneath is read-only and reaches no other file.
    refused = sql_lab("create table marts.mine as select 1 as a")
    assert refused.status_code >= 400 and "DML" in refused.text, refused.text
    for sql, because in (("select * from read_csv('/etc/passwd')", "file system operations are disabled"),
                         ("attach '/tmp/other.duckdb' as other", "file system operations are disabled"),
                         ("set enable_external_access = true", "Cannot change configuration option")):
        refused = sql_lab(sql)
        assert refused.status_code >= 400 and because in refused.text, (sql, refused.text)


def copy_of_pipelines(tmp_path: Path) -> Path:
    target = tmp_path / "pipelines"
    shutil.copytree(REPO_ROOT / "pipelines", target,
                    ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "__pycache__"))
    return target


def test_provisioning_is_idempotent_a_removed_chart_disappears_and_a_bad_file_stops_only_itself(bi, tmp_path):
    superset = client()
    board = superset.dashboard("liquidity-liquidity-risk")
    again = ok(lakehouse(bi["home"], "bi", "provision"))
    assert "dashboards: 0 provisioned, 5 unchanged" in again, again
    assert superset.dashboard("liquidity-liquidity-risk")["changed_on"] == board["changed_on"]

    pipelines = copy_of_pipelines(tmp_path)
    liquidity = pipelines / "liquidity" / "dashboards" / "liquidity_risk.yml"
    spec = specs.load_dashboard(liquidity, "liquidity")
    removed = spec.chart_uuids()["positions_count"]
    assert superset.find("chart", removed) is not None
    document = yaml.safe_load(liquidity.read_text())
    del document["charts"]["positions_count"]
    document["layout"][0].remove("positions_count")
    liquidity.write_text(yaml.safe_dump(document, sort_keys=False))
    # Two broken files beside it: a column and a table that do not exist.
    tweets = next((pipelines / "tweets" / "dashboards").glob("*.yml"))
    tweets.write_text(tweets.read_text().replace("marts.tweets_per_day", "marts.tweets_per_week", 1))
    (pipelines / "energy" / "dashboards" / "broken.yml").write_text(
        "title: Broken\ndatasets:\n  prices: {sql: select * from marts.energy_price_elasticity}\n"
        "charts:\n  by_zone:\n    type: bar\n    dataset: prices\n    x: zone\n    metric: avg(elasticity)\n")
    done = lakehouse(bi["home"], "bi", "provision", env={"LAKEHOUSE_PIPELINES_DIR": str(pipelines)})
    assert done.returncode == 1
    assert "dashboards: 1 provisioned, 3 unchanged, 1 removed charts deleted" in done.stdout, done.stdout
    assert (f"error: {pipelines}/energy/dashboards/broken.yml: chart 'by_zone': x column 'zone' is not a column of "
            "dataset 'prices'") in done.stdout, done.stdout
    assert f"error: {tweets}: dataset " in done.stdout and "tweets_per_week does not exist" in done.stdout, done.stdout
    assert superset.find("chart", removed) is None
    charts = superset.get(f"/api/v1/dashboard/{board['id']}/charts")["result"]
    assert sorted(c["slice_name"] for c in charts) == sorted(
        c.title for name, c in spec.charts.items() if name != "positions_count")
    # Back to the repository's files: the chart is made again.
    assert "dashboards: 1 provisioned, 4 unchanged" in ok(lakehouse(bi["home"], "bi", "provision"))
    assert superset.find("chart", removed) is not None
