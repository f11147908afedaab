"""Every setting of the platform, read from ``LAKEHOUSE_*`` environment variables.

One place so that the embedded default (SQLite catalog, local warehouse, DuckDB) and a production
setup (shared catalog, S3 warehouse, Spark) differ by environment only, never by code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

# src/lakehouse/settings.py -> the repository root holds pipelines/ and dbt/.
REPO_ROOT = Path(__file__).resolve().parents[2]

# Where OpenLineage events go (lakehouse.lineage.config): a JSON-lines file under the home, that file and
# an HTTP endpoint (DataHub, Marquez), that file and the task logs, or nowhere.
LINEAGE_MODES = ("file", "http", "console", "off")


@dataclass(frozen=True)
class Settings:
    home: Path
    catalog_name: str
    catalog_uri: str
    warehouse: str
    engine: str
    pipelines_dir: Path
    dbt_dir: Path
    # Where fetched source files land before they are loaded (file:// or s3://).
    raw_zone: str = ""
    # S3-compatible storage for s3:// warehouse and raw zone URIs. Keys come from the standard
    # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables, never from a file.
    s3_endpoint: str = ""  # e.g. http://127.0.0.1:8333; empty means AWS itself
    s3_region: str = "us-east-1"
    # DataHub GMS (e.g. http://localhost:8080) that receives the dbt test results as assertions; empty
    # writes them as metadata change proposals to <home>/datahub/ instead. Its token is read from
    # LAKEHOUSE_DATAHUB_TOKEN when sending, never kept here (so it is never in a repr or a log).
    # Slim CI (lakehouse.slim_ci): the production catalog a build reads the tables it did not build
    # from (views over production's own files: zero copy), while it writes to its own catalog.
    defer_catalog_uri: str = ""
    defer_warehouse: str = ""
    datahub_gms_url: str = ""
    datahub_retries: int = 4
    # Write-audit-publish (lakehouse.release): the Iceberg branch dbt builds on (LAKEHOUSE_WRITE_BRANCH,
    # set by the DAG on the dbt tasks of a `publish: wap` pipeline); empty: main. Only the dbt plugin
    # reads it (writes and views); ingest always writes main.
    write_branch: str = ""  # retries of a request GMS answered 429/5xx, with DataHub's backoff

    @property
    def datahub_dir(self) -> Path:
        """Where assertions go as files when no GMS is set: <home>/datahub/<pipeline>/<run id>.json."""
        return self.home / "datahub"

    # OpenLineage: LAKEHOUSE_LINEAGE (a LINEAGE_MODES value), LAKEHOUSE_LINEAGE_URL (http mode),
    # LAKEHOUSE_LINEAGE_FILE (default <home>/lineage/events.jsonl). The API key is deliberately not a
    # setting: only the transport reads LAKEHOUSE_LINEAGE_API_KEY, when it sends an event.
    lineage: str = "file"
    lineage_url: str = ""
    lineage_path: str = ""
    # Spark (LAKEHOUSE_ENGINE=spark; lakehouse.spark): the master the Thrift server runs on, its memory,
    # a Thrift endpoint of your own (host:port) instead of the one the platform starts, and Maven
    # coordinates for spark.jars.packages (where Maven Central is reachable, e.g. Iceberg's AWS bundle).
    spark_master: str = "local[2]"
    spark_driver_memory: str = "4g"
    spark_thrift: str = ""
    spark_packages: str = ""
    spark_method: str = "thrift"  # or "session": dbt runs Spark in its own process (no server)

    @property
    def lineage_file(self) -> Path:
        """The JSON-lines file every OpenLineage event of this lakehouse is appended to."""
        return Path(self.lineage_path) if self.lineage_path else self.home / "lineage" / "events.jsonl"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def dbt_target_dir(self) -> Path:
        return self.home / "dbt"

    @property
    def profiles_dir(self) -> Path:
        return self.dbt_dir

    def manifest_dir(self, pipeline_name: str) -> Path:
        """Where the DAG factory keeps the pipeline's parsed dbt manifest (manifest.json)."""
        return self.dbt_target_dir / "manifests" / pipeline_name


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _int_env(name: str, default: int) -> int:
    value = _env(name, str(default))
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a whole number") from None
    if number < 0:
        raise ValueError(f"{name}={value!r} must be 0 or more")
    return number


def load_settings() -> Settings:
    """Read the settings now (not at import), so tests and the CLI can point LAKEHOUSE_HOME elsewhere."""
    home = Path(_env("LAKEHOUSE_HOME", ".lakehouse")).expanduser().resolve()
    engine = _env("LAKEHOUSE_ENGINE", "duckdb").lower()
    from .engines import engine_class

    engine_class(engine)  # an engine not built yet fails here, when the platform starts, not inside dbt
    return Settings(
        home=home,
        catalog_name=_env("LAKEHOUSE_CATALOG_NAME", "lakehouse"),
        catalog_uri=_env("LAKEHOUSE_CATALOG_URI", f"sqlite:///{home / 'catalog.db'}"),
        warehouse=_env("LAKEHOUSE_WAREHOUSE", (home / "warehouse").as_uri()),
        engine=engine,
        pipelines_dir=Path(_env("LAKEHOUSE_PIPELINES_DIR", str(REPO_ROOT / "pipelines"))).resolve(),
        dbt_dir=REPO_ROOT / "dbt",
        raw_zone=_env("LAKEHOUSE_RAW_ZONE", (home / "raw_zone").as_uri()).rstrip("/"),
        s3_endpoint=_env("LAKEHOUSE_S3_ENDPOINT", ""),
        s3_region=_env("LAKEHOUSE_S3_REGION", "us-east-1"),
        defer_catalog_uri=_env("LAKEHOUSE_DEFER_CATALOG_URI", ""),
        defer_warehouse=_env("LAKEHOUSE_DEFER_WAREHOUSE", ""),
        datahub_gms_url=_env("LAKEHOUSE_DATAHUB_GMS_URL", "").rstrip("/"),
        datahub_retries=_int_env("LAKEHOUSE_DATAHUB_RETRIES", 4),
        write_branch=_branch_env("LAKEHOUSE_WRITE_BRANCH"),
        lineage=_lineage_mode(_env("LAKEHOUSE_LINEAGE", "file")),
        lineage_url=_env("LAKEHOUSE_LINEAGE_URL", ""),
        spark_master=_env("LAKEHOUSE_SPARK_MASTER", "local[2]"),
        spark_driver_memory=_env("LAKEHOUSE_SPARK_DRIVER_MEMORY", "4g"),
        spark_thrift=_env("LAKEHOUSE_SPARK_THRIFT", ""),
        spark_packages=_env("LAKEHOUSE_SPARK_PACKAGES", ""),
        spark_method=_choice("LAKEHOUSE_SPARK_METHOD", "thrift", ("thrift", "session")),
        lineage_path=str(Path(_env("LAKEHOUSE_LINEAGE_FILE", "")).expanduser().resolve())
        if _env("LAKEHOUSE_LINEAGE_FILE", "")
        else "",
    )


def ref_name(text: str) -> str:
    """``text`` as an Iceberg branch name every engine can spell unquoted: letters, digits, '_', '.', '-'
    (an Airflow run id like manual__2026-11-18T00:00:00+00:00 has ':' and '+')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _branch_env(name: str) -> str:
    # The DAG sets it to "wap_{{ run_id }}": made a branch name here, the same way lakehouse.release does.
    value = ref_name(_env(name, ""))
    return "" if value == "main" else value


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _env(name, default).lower()
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(choices)}")
    return value


def _lineage_mode(value: str) -> str:
    mode = value.lower()
    if mode in ("none", "false", "0", "disabled"):
        mode = "off"
    if mode not in LINEAGE_MODES:
        raise ValueError(f"LAKEHOUSE_LINEAGE={value!r} is not supported; choose one of {', '.join(LINEAGE_MODES)}")
    return mode
