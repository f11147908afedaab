"""Every setting of the platform, read from ``LAKEHOUSE_*`` environment variables.

One place so that the embedded default (SQLite catalog, local warehouse, DuckDB) and a production
setup (shared catalog, S3 warehouse, Spark) differ by environment only, never by code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# src/lakehouse/settings.py -> the repository root holds pipelines/ and dbt/.
REPO_ROOT = Path(__file__).resolve().parents[2]

ENGINES = ("duckdb", "spark")


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


def load_settings() -> Settings:
    """Read the settings now (not at import), so tests and the CLI can point LAKEHOUSE_HOME elsewhere."""
    home = Path(_env("LAKEHOUSE_HOME", ".lakehouse")).expanduser().resolve()
    engine = _env("LAKEHOUSE_ENGINE", "duckdb").lower()
    if engine not in ENGINES:
        raise ValueError(f"LAKEHOUSE_ENGINE={engine!r} is not supported; choose one of {', '.join(ENGINES)}")
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
    )
