"""Loading pipeline folders: one bad folder never stops another, YAML errors name their place, and a table
has one owner (two pipelines writing the same table are refused, naming both)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lakehouse.pipeline import InvalidPipeline, discover, get_pipeline, load_pipeline

ROWS = "import pyarrow as pa\ndef rows(day, **kw):\n    return pa.table({'x': [1]})\n"


def folder(root: Path, name: str, ingest_table: str = "", models: dict[str, str] | None = None, yaml: str = "") -> Path:
    path = root / name
    (path / "dbt" / "models").mkdir(parents=True)
    (path / "dbt" / "dbt_project.yml").write_text(textwrap.dedent(f"""
        name: {name}
        profile: lakehouse
        models:
          {name}:
            +schema: marts
            +materialized: table
    """))
    for model, sql in (models or {}).items():
        (path / "dbt" / "models" / f"{model}.sql").write_text(sql)
    (path / "generator.py").write_text(ROWS)
    body = yaml or f"name: {name}\n" + (
        f"ingest:\n  - {{name: src, table: {ingest_table}, kind: generator, options: {{callable: 'generator.py:rows'}}}}\n"
        if ingest_table else "")
    (path / "pipeline.yml").write_text(body)
    return path


@pytest.fixture
def pipelines_dir(tmp_path, monkeypatch, lakehouse_home):
    root = tmp_path / "pipelines"
    root.mkdir()
    monkeypatch.setenv("LAKEHOUSE_PIPELINES_DIR", str(root))
    return root


def test_a_yaml_syntax_error_names_the_file_line_and_column(pipelines_dir):
    path = folder(pipelines_dir, "demo", yaml="name: demo\ningest:\n  - name: a\n   kind: generator\n")
    with pytest.raises(InvalidPipeline) as error:
        load_pipeline(path)
    assert str(error.value).startswith(f"{path / 'pipeline.yml'}:4:4: YAML syntax error: ")


def test_a_bad_folder_is_reported_and_the_others_still_load(pipelines_dir):
    folder(pipelines_dir, "good", "raw.good_src")
    folder(pipelines_dir, "broken", yaml="name: broken\ningest: [\n")
    folder(pipelines_dir, "typo", yaml="name: typo\ningets: []\n")
    assert get_pipeline("good").raw_tables == ["raw.good_src"]  # loads its own folder only
    found = discover()
    assert [p.name for p in found.pipelines] == ["good"]
    assert set(found.failures) == {"broken", "typo"}
    assert "pipeline.yml:3:1: YAML syntax error" in found.failures["broken"]
    assert "unknown key(s) ['ingets']" in found.failures["typo"]
    with pytest.raises(InvalidPipeline, match="no pipeline named 'nope'; known pipelines: broken, good, typo"):
        get_pipeline("nope")


def test_two_pipelines_landing_the_same_raw_table_are_refused_naming_both(pipelines_dir):
    folder(pipelines_dir, "first", "raw.shared")
    folder(pipelines_dir, "second", "raw.shared")
    found = discover()
    assert [p.name for p in found.pipelines] == ["first"]
    assert found.failures["second"].startswith("pipelines 'first' and 'second' both write raw.shared")


def test_a_dbt_model_writing_another_pipelines_table_is_refused_naming_both(pipelines_dir, lakehouse_home, monkeypatch,
                                                                          lakehouse_logs):
    """The outside project's `orders` model mapped to marts.orders, which another pipeline owns."""
    monkeypatch.setenv("AIRFLOW_HOME", str(lakehouse_home / "airflow"))
    from lakehouse.dag_factory import build_all_dags

    folder(pipelines_dir, "alpha", "raw.alpha_src", {"orders": "select 1 as id"})
    folder(pipelines_dir, "beta", "raw.beta_src", {"orders": "select 2 as id", "beta_only": "select 3 as id"})
    dags = build_all_dags()
    assert list(dags) == ["alpha"]
    messages = [str(r.exc_info[1]) if r.exc_info else r.getMessage() for r in lakehouse_logs]
    # (Without the platform's routing macros dbt names the schema main_marts: the clash is the same.)
    assert any("pipelines 'alpha' and 'beta' both write main_marts.orders: a table has one owner" in m
               for m in messages), messages


def test_an_ingest_entry_for_one_engine_is_left_out_on_the_other_and_a_bad_engine_is_named(pipelines_dir, monkeypatch):
    entry = "{{name: {name}, table: raw.events, kind: generator, engines: {engines}, options: {{callable: 'generator.py:rows'}}}}"
    both = folder(pipelines_dir, "both", yaml="name: both\ningest:\n"
                  + "".join(f"  - {entry.format(name=engine, engines=[engine])}\n" for engine in ("duckdb", "spark")))
    for engine in ("duckdb", "spark"):
        monkeypatch.setenv("LAKEHOUSE_ENGINE", engine)
        assert [(source.name, source.engines) for source in load_pipeline(both).ingest] == [(engine, (engine,))]
    bad = folder(pipelines_dir, "bad", yaml=f"name: bad\ningest:\n  - {entry.format(name='src', engines='[trino]')}\n")
    with pytest.raises(InvalidPipeline, match=r"ingest 'src'.*: 'engines' lists engines among duckdb, spark; got \['trino'\]"):
        load_pipeline(bad)


def test_a_pipeline_for_one_engine_is_left_out_of_the_others_dags_and_named_when_asked_for(pipelines_dir, monkeypatch):
    from lakehouse.dag_factory import build_all_dags, build_dag

    only = folder(pipelines_dir, "duck_only", "raw.duck_events",
                  yaml="name: duck_only\nengines: [duckdb]\ningest:\n"
                       "  - {name: src, table: raw.duck_events, kind: generator, options: {callable: 'generator.py:rows'}}\n")
    pipeline = load_pipeline(only)
    assert pipeline.engines == ("duckdb",) and pipeline.runs_on("duckdb") and not pipeline.runs_on("spark")
    monkeypatch.setenv("LAKEHOUSE_ENGINE", "spark")
    assert "duck_only" not in build_all_dags()
    with pytest.raises(InvalidPipeline, match="duck_only runs on the duckdb engine only .* not on spark"):
        build_dag(pipeline, {})
    bad = folder(pipelines_dir, "bad_engines", yaml="name: bad_engines\nengines: [trino]\n")
    with pytest.raises(InvalidPipeline, match=r"'engines' lists engines among duckdb, spark; got \['trino'\]"):
        load_pipeline(bad)
