"""The engine seam: the engine named by LAKEHOUSE_ENGINE, an unknown one refused when the platform starts,
and what the DuckDB engine tells the platform (its dbt target, which lakehouse table a dbt dataset is)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.engines import EngineError, engine_class, get_engine
from lakehouse.settings import load_settings


def test_an_unknown_engine_names_the_known_ones():
    with pytest.raises(EngineError, match="LAKEHOUSE_ENGINE='oracle' is not supported; choose one of duckdb, spark$"):
        engine_class("oracle")


def test_an_unknown_engine_stops_the_cli_before_any_work(lakehouse_home):
    cli = Path(sys.executable).with_name("lakehouse")
    done = subprocess.run([str(cli), "tables"], capture_output=True, text=True,
                          env={**os.environ, "LAKEHOUSE_ENGINE": "oracle"}, timeout=120)
    assert done.returncode == 1 and "LAKEHOUSE_ENGINE='oracle' is not supported" in done.stderr
    assert "Traceback" not in done.stderr


def test_duckdb_names_its_dbt_target_and_maps_the_datasets_dbt_reports(lakehouse_home):
    engine = get_engine(load_settings())
    assert engine.dbt_target == "duckdb"
    assert engine.lineage_table("duckdb://:memory:", "memory.raw.market_data") == "raw.market_data"
    assert engine.lineage_table("duckdb://:memory:", '"marts"."mart_positions"') == "marts.mart_positions"
    assert engine.lineage_table("duckdb://:memory:", "positions_cte") is None
    assert engine.lineage_table("postgres://db:5432", "shop.public.orders") is None


def test_a_session_sees_every_iceberg_table_and_a_read_only_one_cannot_write(lakehouse_home, tmp_path):
    from lakehouse.writes import write

    write("marts.engine_check", pa.table({"id": [1, 2, 3]}), "overwrite")
    engine = get_engine(load_settings())
    assert engine.query("select sum(id) as total from marts.engine_check").to_pylist() == [{"total": 6}]
    session = engine.connect(read_only=True)
    try:
        assert session.query("select count(*) as n from marts.engine_check").to_pylist() == [{"n": 3}]
        with pytest.raises(Exception, match="read-only"):
            session.query(f"copy (select 1) to '{tmp_path / 'out.csv'}'")
    finally:
        session.close()
    assert not (tmp_path / "out.csv").exists()
