"""lakehouse: a local-first lakehouse pipeline platform (Iceberg + DuckDB + dbt + Airflow 3 + Cosmos)."""

__version__ = "0.1.0"
