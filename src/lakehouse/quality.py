"""Data-quality results: every dbt node result of a pipeline run, kept in the Iceberg table audit.dq_results.

dbt writes its results to ``run_results.json``; Cosmos runs one dbt invocation per Airflow task, so one
pipeline run leaves many of them. They are gathered into one row per node, so "which tests failed in
the last run" is a query, and the history of every test is kept like any other table.

dbt keeps no failing rows (store_failures would keep them in the task's in-memory DuckDB, gone when the
task ends), so for a test that failed or warned the first FAILING_ROWS_SAMPLE rows are read again at
publish time by running its compiled SQL over the lakehouse, and kept as JSON in ``failing_rows``. A
test whose rows carry a ``message`` column (lakehouse.daily_metric_zscore_within does) explains each
failure in words; `lakehouse quality` prints them.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import And, EqualTo

from . import writes
from .catalog import load_table
from .dbt_artifacts import load_run_artifacts, node, tested_table
from .engines import get_engine
from .settings import load_settings

TABLE = "audit.dq_results"

SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("pipeline", pa.string()),
        ("node_id", pa.string()),
        ("node_type", pa.string()),
        ("node_name", pa.string()),
        ("status", pa.string()),
        ("failures", pa.int64()),
        ("message", pa.string()),
        ("execution_time_s", pa.float64()),
        ("tested_model", pa.string()),
        ("completed_at", pa.timestamp("us", tz="UTC")),
        ("published_at", pa.timestamp("us", tz="UTC")),
        # JSON array of the first failing rows of a failed or warned test (see the module docstring).
        ("failing_rows", pa.string()),
    ]
)
FAILING_ROWS_SAMPLE = 5

# dbt statuses grouped the way a person reads a run.
PASSED = ("success", "pass")
WARNED = ("warn",)
FAILED = ("fail", "error", "runtime error")


def _timestamp(text: str | None) -> dt.datetime | None:
    """dbt writes naive UTC times, with or without a trailing Z."""
    if not text:
        return None
    value = dt.datetime.fromisoformat(text)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _freshness_message(result: dict) -> str | None:
    age = result.get("max_loaded_at_time_ago_in_s")
    return None if age is None else f"last loaded {age / 3600:.1f} h ago (max_loaded_at {result.get('max_loaded_at')})"


def test_counts(results: pa.Table) -> dict[str, int]:
    """summarize() of the checks only: data tests, unit tests and source freshness."""
    tests = results.filter(pc.is_in(results.column("node_type"), pa.array(["test", "unit_test", "source"])))
    return summarize(tests)


def _node_name(node: dict | None, unique_id: str) -> str:
    """A node's name; a source is '<source>.<table>'. Without a manifest, read it from the unique id:
    '<type>.<package>.<name>[.<hash>]', or 'source.<package>.<source>.<table>'."""
    parts = unique_id.split(".")
    if parts[0] == "source":
        return ".".join(parts[2:4])
    if node and node.get("name"):
        return node["name"]
    return parts[2] if len(parts) > 2 else unique_id


def _finished(row: dict) -> dt.datetime:
    return row["completed_at"] or dt.datetime.min.replace(tzinfo=dt.UTC)


class _FailingRows:
    """Reads the first failing rows of tests again, on one DuckDB over the lakehouse opened on first use."""

    def __init__(self) -> None:
        self._con = None

    def sample(self, compiled_sql: str) -> tuple[str | None, str | None]:
        """(JSON of up to FAILING_ROWS_SAMPLE rows, None) or (None, why they could not be read)."""
        try:
            if self._con is None:
                self._con = get_engine(load_settings()).connect()
            # The newline ends a trailing "-- comment" of the test SQL before the parenthesis.
            sql = f"select * from (\n{compiled_sql.strip().rstrip(';')}\n) as failing_rows limit {FAILING_ROWS_SAMPLE}"
            result = self._con.query(sql)
            # By column, not to_pylist(): a test's SQL may repeat a column name.
            rows = [dict(zip(result.column_names, values)) for values in zip(*(c.to_pylist() for c in result.columns))]
        except Exception as error:  # noqa: BLE001 - the sample is extra; the test's own result stands
            return None, f"failing rows could not be read again: {str(error).splitlines()[0][:300]}"
        return json.dumps(rows, default=str), None


def collect_results(pipeline_name: str, run_id: str, target_dir: str | Path, *, sample_failing_rows: bool = True) -> pa.Table:
    """The rows publish_run_results writes, one per dbt node (a retried node keeps its last result).

    With sample_failing_rows, each failed or warned data test's first rows are read again from the
    lakehouse (its compiled SQL from run_results.json) into ``failing_rows``.
    """
    artifacts, manifest = load_run_artifacts(Path(target_dir))
    published_at = dt.datetime.now(dt.UTC)
    rows: dict[str, dict] = {}
    compiled: dict[str, str | None] = {}
    for path, artifact in artifacts:
        generated_at = _timestamp((artifact.get("metadata") or {}).get("generated_at"))
        for result in artifact["results"]:
            unique_id = result.get("unique_id")
            if not unique_id:
                raise ValueError(f"{path}: a result has no unique_id")
            node_ = node(manifest, unique_id)
            node_type = (node_ or {}).get("resource_type") or unique_id.split(".")[0]
            ends = [_timestamp(t.get("completed_at")) for t in result.get("timing") or []]
            completed_at = max([t for t in ends if t], default=generated_at)
            row = {
                "run_id": run_id,
                "pipeline": pipeline_name,
                "node_id": unique_id,
                "node_type": node_type,
                "node_name": _node_name(node_, unique_id),
                "status": str(result.get("status")),
                # dbt reports failures=0 for models; only tests count failing rows.
                "failures": result.get("failures") if node_type in ("test", "unit_test") else None,
                "message": result.get("message") or _freshness_message(result),
                "execution_time_s": float(result.get("execution_time") or 0.0),
                "tested_model": tested_table(node_, manifest),
                "completed_at": completed_at,
                "published_at": published_at,
                "failing_rows": None,
            }
            previous = rows.get(unique_id)
            if previous is None or _finished(row) >= _finished(previous):
                rows[unique_id] = row
                compiled[unique_id] = result.get("compiled_code")
    if sample_failing_rows:
        reader = _FailingRows()
        for unique_id, row in rows.items():
            sql = compiled.get(unique_id)
            if row["node_type"] == "test" and row["status"] in ("fail", "warn") and sql:
                row["failing_rows"], problem = reader.sample(sql)
                if problem:
                    row["message"] = f"{row['message']} ({problem})" if row["message"] else problem
    return pa.Table.from_pylist(list(rows.values()), schema=SCHEMA)


def failing_row_lines(failing_rows: str | None) -> list[str]:
    """A failing-rows sample as lines for a person: a row's ``message`` column, else column=value pairs."""
    if not failing_rows:
        return []
    return [
        str(row["message"]) if row.get("message") else ", ".join(f"{k}={v}" for k, v in row.items())
        for row in json.loads(failing_rows)
    ]


def publish_run_results(pipeline_name: str, run_id: str, target_dir: str | Path, *, results: pa.Table | None = None) -> int:
    """Replace the rows of (pipeline, run_id) in audit.dq_results with this run's results; returns rows written.

    ``results``: what collect_results returned for this run, when the caller has it already.
    """
    rows = collect_results(pipeline_name, run_id, target_dir) if results is None else results
    # Both keys: Airflow run ids ("scheduled__<date>") repeat across DAGs, so run_id alone would
    # replace another pipeline's results of the same date.
    this_run = And(EqualTo("pipeline", pipeline_name), EqualTo("run_id", run_id))
    writes.write(TABLE, rows, "overwrite", overwrite_filter=this_run)
    return rows.num_rows


def _query(sql: str, params: list) -> pa.Table | None:
    """Run SQL over audit.dq_results (as view ``r``); None when nothing was published yet."""
    if load_table(TABLE) is None:
        return None
    session = get_engine(load_settings()).connect()
    try:
        session.execute("CREATE TEMP VIEW r AS SELECT * FROM audit.dq_results")
        return session.query(sql, params)
    finally:
        session.close()


_LATEST_RUNS = """
    WITH runs AS (
        SELECT pipeline, run_id, max(completed_at) AS completed_at, max(published_at) AS published_at
        FROM r WHERE ($1 IS NULL OR pipeline = $1) GROUP BY ALL
    ), ranked AS (
        SELECT *, row_number() OVER (
            PARTITION BY pipeline ORDER BY completed_at DESC NULLS LAST, published_at DESC
        ) AS n
        FROM runs
    )
"""


def latest_results(pipeline: str | None = None) -> pa.Table:
    """One row per node of the latest run of each pipeline (or of ``pipeline`` only)."""
    sql = _LATEST_RUNS + """
        SELECT r.* FROM r JOIN ranked USING (pipeline, run_id)
        WHERE ranked.n = 1
        ORDER BY r.pipeline, r.node_type, r.status, r.node_name
    """
    result = _query(sql, [pipeline])
    return SCHEMA.empty_table() if result is None else result


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def run_history(pipeline: str | None = None, runs: int = 10) -> pa.Table:
    """The last ``runs`` runs of each pipeline, newest first, with their counts of passed/warned/failed nodes."""
    sql = _LATEST_RUNS + f"""
        SELECT r.pipeline, r.run_id, ranked.completed_at, count(*) AS nodes,
            count(*) FILTER (WHERE status IN {_sql_list(PASSED)}) AS passed,
            count(*) FILTER (WHERE status IN {_sql_list(WARNED)}) AS warned,
            count(*) FILTER (WHERE status IN {_sql_list(FAILED)}) AS failed,
            count(*) FILTER (WHERE status = 'skipped') AS skipped
        FROM r JOIN ranked USING (pipeline, run_id)
        WHERE ranked.n <= $2
        GROUP BY ALL ORDER BY r.pipeline, ranked.completed_at DESC
    """
    result = _query(sql, [pipeline, runs])
    if result is None:
        columns = ("pipeline", "run_id", "completed_at", "nodes", "passed", "warned", "failed", "skipped")
        return pa.table({c: [] for c in columns})
    return result


def summarize(results: pa.Table) -> dict[str, int]:
    """Counts of passed / warned / failed / skipped nodes in a results table."""
    statuses = results.column("status").to_pylist() if results.num_rows else []
    return {
        "passed": sum(s in PASSED for s in statuses),
        "warned": sum(s in WARNED for s in statuses),
        "failed": sum(s in FAILED for s in statuses),
        "skipped": sum(s == "skipped" for s in statuses),
    }
