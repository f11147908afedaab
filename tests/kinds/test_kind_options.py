"""Every ingest and delivery kind checks its options when the pipeline loads: a wrong option fails with
the pipeline file, the entry and the option in the message, before any task runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lakehouse.ingest import build_ingest
from lakehouse.kinds import DELIVERY_KINDS, INGEST_KINDS, InvalidOptions
from lakehouse.pipeline import InvalidPipeline, load_pipeline


def declare(tmp_path: Path, body: str, files: dict[str, str] | None = None) -> Path:
    """A throwaway pipeline folder 'demo' with the given declaration body (after `name:`)."""
    folder = tmp_path / "demo"
    (folder / "dbt").mkdir(parents=True)
    (folder / "dbt" / "dbt_project.yml").write_text("name: demo\nprofile: lakehouse\n")
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    (folder / "pipeline.yml").write_text("name: demo\n" + textwrap.dedent(body))
    return folder


def refused(tmp_path: Path, body: str, files: dict[str, str] | None = None) -> str:
    folder = declare(tmp_path, body, files)
    with pytest.raises(InvalidPipeline) as error:
        load_pipeline(folder)
    message = str(error.value)
    assert message.startswith(f"{folder / 'pipeline.yml'} "), message  # names the file first
    return message[len(str(folder / "pipeline.yml")) + 1:]


GENERATOR = "generator.py"
ROWS = "import pyarrow as pa\ndef rows(day, **kw):\n    return pa.table({'x': [1]})\n"


def ingest(kind: str, options: str, table: str = "raw.demo_things") -> str:
    return f"ingest:\n  - name: things\n    table: {table}\n    kind: {kind}\n    options: {options}\n"


def test_every_registered_kind_is_a_class_named_as_registered():
    from lakehouse.kinds import delivery_kind, ingest_kind

    for name in INGEST_KINDS:
        assert ingest_kind(name).name == name
    for name in DELIVERY_KINDS:
        assert delivery_kind(name).name == name


def test_an_unknown_kind_names_the_known_ones(tmp_path):
    message = refused(tmp_path, ingest("ftp", "{}"))
    assert message == ("ingest 'things': unknown ingest kind 'ftp'; "
                       "known kinds: generator, postgres_cdc, delimited_file, table_map, spark_job, sql_database, rest_api")


def test_generator_needs_a_callable_that_exists(tmp_path):
    assert refused(tmp_path / "a", ingest("generator", "{seed: 1}")) == (
        "ingest 'things': option 'callable' is required for kind 'generator' ('file.py:function' or 'module:function')")
    assert refused(tmp_path / "b", ingest("generator", "{callable: 'rows'}")) == (
        "ingest 'things' option 'callable': callable 'rows' must be 'module:function' or 'file.py:function'")
    message = refused(tmp_path / "c", ingest("generator", "{callable: 'missing.py:rows'}"))
    assert message.startswith("ingest 'things' option 'callable': callable 'missing.py:rows': ")
    assert message.endswith("missing.py does not exist")
    assert refused(tmp_path / "d", ingest("generator", "{callable: 'no_such_module_xyz:rows'}")) == (
        "ingest 'things' option 'callable': callable 'no_such_module_xyz:rows': no module named 'no_such_module_xyz'")
    # A good one loads, and passes its other options to the callable.
    pipeline = load_pipeline(declare(tmp_path / "e", ingest("generator", "{callable: 'generator.py:rows', seed: 3}"),
                                     {GENERATOR: ROWS}))
    assert pipeline.ingest[0].options == {"callable": "generator.py:rows", "seed": 3}


FORMAT = "{columns: [{name: id, type: long}]}"


def test_delimited_file_checks_its_format_and_option_types(tmp_path):
    assert refused(tmp_path / "a", ingest("delimited_file", "{source: x.tsv, format: {columns: [{name: id, type: lng}]}}")) == (
        "ingest 'things' option 'format': column id: type 'lng' is not one of string, long, int, double, timestamp, date")
    assert refused(tmp_path / "b", ingest("delimited_file", f"{{sorce: x.tsv, format: {FORMAT}}}")).startswith(
        "ingest 'things': unknown option 'sorce' for kind 'delimited_file'; its options: connections, format, ")
    assert refused(tmp_path / "c", ingest("delimited_file", f"{{source: x.tsv, connections: four, format: {FORMAT}}}")) == (
        "ingest 'things' option 'connections': must be a whole number, got 'four'")
    assert refused(tmp_path / "d", ingest("delimited_file", f"{{source: x.tsv, simulate: true, format: {FORMAT}}}")) == (
        "ingest 'things': option 'simulate' is on, so option 'generator' is required")


def test_a_template_is_checked_when_rendered_at_run_time(tmp_path):
    folder = declare(
        tmp_path, ingest("delimited_file", f"{{source: x.tsv, connections: '{{{{ params.c }}}}', format: {FORMAT}}}")
    )
    pipeline = load_pipeline(folder)  # "{{ params.c }}" cannot be checked before Airflow renders it
    source = pipeline.ingest[0]
    assert build_ingest(pipeline, source, {**source.options, "connections": "8"}).options["connections"] == 8
    with pytest.raises(InvalidOptions, match=r"ingest 'things' option 'connections': must be a whole number, got 'eight'"):
        build_ingest(pipeline, source, {**source.options, "connections": "eight"})


def test_table_map_needs_its_map_file(tmp_path):
    assert refused(tmp_path / "a", "ingest:\n  - {name: files, kind: table_map, options: {}}\n") == (
        "ingest 'files': option 'map' is required for kind 'table_map' (the map file)")
    message = refused(tmp_path / "b", "ingest:\n  - {name: files, kind: table_map, options: {map: nope.yml}}\n")
    assert message.startswith("ingest 'files' option 'map': ") and message.endswith("nope.yml does not exist")
    mapped = {"map.yml": "tables:\n  things: {table: raw.demo_things, files: '*.parquet'}\n"}
    assert refused(tmp_path / "c", "ingest:\n  - {name: files, kind: table_map, options: {map: map.yml, max_files: -1}}\n",
                   mapped) == "ingest 'things' option 'max_files': must be at least 0, got -1"
    pipeline = load_pipeline(declare(tmp_path / "d", "ingest:\n  - {name: files, kind: table_map, options: {map: map.yml}}\n",
                                     mapped))
    assert [(s.name, s.table, s.options["entry"]) for s in pipeline.ingest] == [("things", "raw.demo_things", "things")]


def test_postgres_cdc_checks_mode_schema_file_and_names(tmp_path):
    assert refused(tmp_path / "a", ingest("postgres_cdc", "{mode: wal2json}")) == (
        "ingest 'things' option 'mode': must be one of audit_log, logical, got 'wal2json'")
    message = refused(tmp_path / "b", ingest("postgres_cdc", "{source_schema: schema.sql}"))
    assert message.startswith("ingest 'things' option 'source_schema': ") and message.endswith("schema.sql does not exist")
    assert refused(tmp_path / "c", ingest("postgres_cdc", "{audit_table: 'public.audit; drop'}")) == (
        "ingest 'things': invalid table name 'audit; drop': use letters, digits and underscores, "
        "starting with a letter or underscore")


def test_postgres_delivery_checks_its_target(tmp_path):
    files = {GENERATOR: ROWS}
    base = ingest("generator", "{callable: 'generator.py:rows'}")
    message = refused(
        tmp_path / "a", base + "deliver:\n  - {name: out, table: marts.x, kind: postgres, options: {target_table: x}}\n", files
    )
    assert message == "deliver 'out' option 'target_table': target_table 'x' must be 'schema.table'"
    message = refused(tmp_path / "b", base + "deliver:\n  - {name: out, table: marts.x, kind: postgres, options: {conn: a}}\n",
                      files)
    assert message == "deliver 'out': unknown option 'conn' for kind 'postgres'; its options: conn_id, grants, target_table"
