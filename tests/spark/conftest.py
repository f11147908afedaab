"""The Spark tests: one lakehouse home and one Spark Thrift server per test file (module scope), so the
JVM starts once per file, not once per test. They are marked `spark` and run in `make test`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from lakehouse.catalog import _catalog_for
from lakehouse.engines import get_engine
from lakehouse.settings import load_settings
from lakehouse.sources import postgres_server
from lakehouse.spark import server


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/spark/" in str(item.fspath):
            item.add_marker(pytest.mark.spark)


@pytest.fixture(scope="module")
def spark_home():
    """A fresh home on LAKEHOUSE_ENGINE=spark with its Thrift server running (stopped at the end)."""
    # Outside pytest's tmp folder: the embedded PostgreSQL of a pipeline run must reach its data.
    home = Path(tempfile.mkdtemp(prefix="lakehouse-test-spark-"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAKEHOUSE_HOME", str(home))
        env.setenv("LAKEHOUSE_ENGINE", "spark")
        for name in ("LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_WAREHOUSE", "LAKEHOUSE_CATALOG_NAME", "LAKEHOUSE_RAW_ZONE",
                     "LAKEHOUSE_S3_ENDPOINT", "LAKEHOUSE_SPARK_THRIFT", postgres_server.DSN_VARIABLE):
            env.delenv(name, raising=False)
        _catalog_for.cache_clear()
        # What a run does first: the server runs, and dbt finds it through LAKEHOUSE_SPARK_ENDPOINT.
        for name, value in get_engine(load_settings()).prepare().items():
            env.setenv(name, value)
        try:
            yield home
        finally:
            env.delenv("LAKEHOUSE_SPARK_ENDPOINT")
            server.stop()
            _catalog_for.cache_clear()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def spark(spark_home):
    """A session on the Thrift server (the engine's own connect())."""
    session = get_engine(load_settings()).connect()
    yield session
    session.close()
