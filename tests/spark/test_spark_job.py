"""The spark_job ingest kind: a pipeline's PySpark script, run with spark-submit through Airflow's Spark
provider, lands its source in Iceberg in one commit per batch date; a rerun replaces, never duplicates."""

from __future__ import annotations

import datetime as dt
import sys
import textwrap
from pathlib import Path

import pyarrow.compute as pc
import pytest

from lakehouse import compute
from lakehouse.ingest import build_ingest
from lakehouse.pipeline import InvalidPipeline, load_pipeline

SCRIPT = textwrap.dedent('''
    from lakehouse.spark import job

    args = job.arguments(extra=["--path"])
    spark = job.session()
    rows = spark.read.option("sep", "\\\\t").option("header", True).csv(args.path)
    job.replace_batch(spark, rows.selectExpr("cast(id as bigint) as id", "word"), args.table, args.batch_date)
''')


def declare(folder, source):
    (folder / "dbt").mkdir(parents=True)
    (folder / "dbt" / "dbt_project.yml").write_text("name: demo\nprofile: lakehouse\n")
    (folder / "spark").mkdir()
    (folder / "spark" / "words.py").write_text(SCRIPT)
    (folder / "pipeline.yml").write_text(textwrap.dedent(f"""\
        name: demo
        ingest:
          - name: words
            table: raw.demo_words
            kind: spark_job
            options:
              script: spark/words.py
              args: {{path: "{source}"}}
              inputs: ["file://{source}"]
        """))
    return load_pipeline(folder)


def test_a_spark_job_lands_its_batch_once_per_date(spark_home, tmp_path):
    source = tmp_path / "words.tsv"
    source.write_text("id\tword\n1\talpha\n2\tbeta\n3\tgamma\n")
    pipeline = declare(tmp_path / "demo", source)
    [entry] = pipeline.ingest
    kind = build_ingest(pipeline, entry, dict(entry.options))
    day = dt.date(2026, 11, 19)
    assert kind.land(day, "manual__1")["rows"] == 3
    assert kind.land(day, "manual__2")["rows"] == 3  # the rerun replaced the date
    assert kind.land(day + dt.timedelta(days=1), "manual__3")["rows"] == 3
    rows = compute.connect().sql(
        "select _batch_date, count(*), string_agg(word, ',' order by id) from raw.demo_words group by 1 order by 1").fetchall()
    assert rows == [(day, 3, "alpha,beta,gamma"), (day + dt.timedelta(days=1), 3, "alpha,beta,gamma")]
    names = [d.name for d in kind.lineage_inputs(day, None)]
    assert names == ["pipelines/demo/spark/words.py", str(source)]


def test_a_script_outside_the_pipeline_folder_is_refused_at_load(tmp_path):
    folder = tmp_path / "demo"
    declare(folder, tmp_path / "x.tsv")
    text = (folder / "pipeline.yml").read_text().replace("script: spark/words.py", "script: ../elsewhere.py")
    (folder / "pipeline.yml").write_text(text)
    with pytest.raises(InvalidPipeline, match="option 'script': '../elsewhere.py' is not a .py file inside the pipeline"):
        load_pipeline(folder)


# --- the tweets bronze layer: the pipeline's own spark_job entry ------------------------------------

TWEETS = Path(__file__).parents[2] / "pipelines" / "tweets"
EDGE_LINES = [  # appended to a generated export: (bytes, the reason the rules give, or None when good)
    (b"", "expected 7 fields, got 1"),
    (b"9000000000000000001\tcr_user\tThu Nov 19 10:00:00 +0000 2026\tends with CRLF\ten\t1\t2\r", None),
    (b"9000000000000000002\tlatin1\tThu Nov 19 10:00:00 +0000 2026\tcaf\xe9\ten\t1\t2", "invalid UTF-8"),
    (b"9000000000000000001\tcr_user\tThu Nov 19 11:00:00 +0000 2026\tthe same id, later: kept\ten\t5\t6", None),
]


def _tweets_entry(engine):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAKEHOUSE_ENGINE", engine)
        pipeline = load_pipeline(TWEETS)
    [entry] = pipeline.ingest
    return pipeline, entry


def _without(table, *columns):
    return table.drop_columns([c for c in columns if c in table.column_names])


def test_the_tweets_bronze_job_on_spark_lands_what_the_delimited_file_kind_lands(spark_home, tmp_path):
    """Ranges of 16 KiB: some thirty tasks, lines cut at every kind of place, judged by the one rule book."""
    import dataclasses

    from pyiceberg.expressions import EqualTo

    from lakehouse.catalog import load_table
    from lakehouse.kinds.base import is_template
    from lakehouse.testing.compare import compare

    sys.path.insert(0, str(TWEETS))
    try:
        from generator import write_tweets
    finally:
        sys.path.remove(str(TWEETS))
    day = dt.date(2026, 11, 19)
    path = tmp_path / "tweets_2026-11-19.tsv"
    truth = write_tweets(str(path), rows=3000, day=day, seed=7, bad_rate=0.03)
    with path.open("ab") as out:  # the edge lines, the last without its LF
        out.write(b"\n".join(line for line, _ in EDGE_LINES))
    uri = f"file://{path}"

    pipeline, local = _tweets_entry("duckdb")
    reference = dataclasses.replace(local, name="tweets_reference", table="raw.tweets_reference")
    file_options = {k: v for k, v in local.options.items() if not is_template(v)} | {"source": uri}
    expected = build_ingest(pipeline, reference, file_options).land(day, "manual__reference")
    planted = len(truth.bad) + sum(reason is not None for _, reason in EDGE_LINES)
    assert (expected["lines"], expected["rejected"]) == (truth.lines + len(EDGE_LINES), planted)

    # Another file's rows already in the table: the Spark job must replace this file's rows only.
    other_day = day + dt.timedelta(days=1)
    write_tweets(str(tmp_path / "tweets_2026-11-20.tsv"), rows=200, day=other_day, seed=8)
    other = build_ingest(pipeline, local, file_options | {"source": f"file://{tmp_path}/tweets_2026-11-20.tsv"})
    other_rows = other.land(other_day, "manual__other")["rows"]

    pipeline, entry = _tweets_entry("spark")
    assert entry.kind == "spark_job" and entry.table == local.table and entry.partition_by == local.partition_by
    options = dict(entry.options) | {"args": {"file": file_options, "split_bytes": 16384}, "inputs": [uri]}
    spark_job = build_ingest(pipeline, entry, options)
    for attempt in ("manual__1", "manual__2"):  # the rerun replaces the file's rows: same tables
        assert spark_job.land(day, attempt)["rows"] == expected["rows"]
        landed = load_table("raw.tweets").scan(row_filter=EqualTo("_source_file", uri)).to_arrow()
        diff = compare("raw.tweets", _without(load_table("raw.tweets_reference").scan().to_arrow(), "_ingested_at"),
                       _without(landed, "_ingested_at"))
        assert diff.equal, str(diff)
        quarantined = load_table("quarantine.rejected_tweets").scan(row_filter=EqualTo("_source_file", uri)).to_arrow()
        diff = compare("quarantine", _without(load_table("quarantine.rejected_tweets_reference").scan().to_arrow(),
                                              "_ingested_at"), _without(quarantined, "_ingested_at"))
        assert diff.equal, str(diff)
        assert load_table("raw.tweets").scan().to_arrow().num_rows == expected["rows"] + other_rows
    # What came in is what landed, what was a re-export of an id and what was quarantined.
    assert expected["lines"] == landed.num_rows + expected["duplicates"] + quarantined.num_rows
    reasons = dict(zip(quarantined["line_number"].to_pylist(), quarantined["rejection_reason"].to_pylist(), strict=True))
    assert {b.line: reasons[b.line] for b in truth.bad} == {b.line: b.reason for b in truth.bad}
    kept = landed.filter(pc.equal(landed["id"], 9000000000000000001)).to_pylist()
    assert [(r["text"], r["like_count"]) for r in kept] == [("the same id, later: kept", 6)]
