"""The spark_job ingest kind: a pipeline's PySpark script, run with spark-submit through Airflow's Spark
provider, lands its source in Iceberg in one commit per batch date; a rerun replaces, never duplicates."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from lakehouse import compute
from lakehouse.ingest import build_ingest
from lakehouse.pipeline import InvalidPipeline, load_pipeline

SCRIPT = textwrap.dedent('''
    from lakehouse.spark import job

    args = job.arguments(extra=["--source"])
    spark = job.session()
    rows = spark.read.option("sep", "\\\\t").option("header", True).csv(args.source)
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
              args: {{source: "{source}"}}
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
