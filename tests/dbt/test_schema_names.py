"""A dbt project that ships its own generate_schema_name keeps it beside the linked routing file
(dbt/lakehouse_dbt/project_macros/lakehouse_platform.sql routes schema names through dbt's dispatch,
duckdb__generate_schema_name, so the two no longer collide), and the materializations still keep
every table in a lakehouse layer: a schema that is not one fails before anything is written.
Project: tests/fixtures/own_schema_name_project."""

from __future__ import annotations

from pathlib import Path

from quality_project import dbt, install_packages

from lakehouse import compute
from lakehouse.catalog import get_catalog

PROJECT = Path(__file__).parents[1] / "fixtures" / "own_schema_name_project"


def run(tmp_path: Path, **dbt_vars):
    install_packages(PROJECT)
    result = dbt(tmp_path / "target", "run", project=PROJECT, dbt_vars=dbt_vars or None)
    messages = " ".join(str(r.message or "") for r in result.result or [])
    return result, messages + " " + str(result.exception or "")


def test_the_project_s_own_macro_names_the_layers(lakehouse_home, tmp_path):
    # With generate_schema_name in the routing file too, dbt refused to parse the project:
    # "dbt found two macros named generate_schema_name in the project".
    result, message = run(tmp_path)
    assert result.success, message
    con = compute.connect()
    assert con.sql("select account_id from marts.open_accounts").fetchall() == [(1,)]
    assert con.sql("select count(*) from staging.stg_accounts").fetchall() == [(2,)]


def test_a_schema_that_is_not_a_layer_fails_before_anything_is_written(lakehouse_home, tmp_path):
    result, message = run(tmp_path, naive_schema_names=True)  # dbt's default: main_staging, main_marts
    assert not result.success
    assert "would be written to the Iceberg namespace 'main_staging', which is not a lakehouse layer" in message
    assert "although its +schema is 'staging'" in message and "lakehouse.layer_schema_name" in message
    catalog = get_catalog()
    namespaces = [".".join(ns) for ns in catalog.list_namespaces()]
    assert set(namespaces) <= {"raw", "staging", "marts", "audit", "quarantine"}
    assert [t for ns in namespaces for t in catalog.list_tables(ns)] == []
