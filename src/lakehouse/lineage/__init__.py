"""Data lineage of the lakehouse: OpenLineage events from every task of every pipeline, and a graph of them.

- naming.py      the one identity of each dataset (an Iceberg table is iceberg://<catalog> + <ns>.<table>)
- facets.py      datasets with their facets (schema from Iceberg, version, catalog, statistics)
- operators.py   LineagePythonOperator: the ingest, delivery, quality and maintenance tasks
- tasks.py       what each of those tasks reads and writes
- dbt.py         the provider extractor for Cosmos's dbt tasks (Cosmos lineage mapped onto the identity)
- columns.py     column lineage of dbt models from their compiled SQL
- transport.py   the JSON-lines file transport and the API-key token provider
- config.py      the provider's configuration from the settings (LAKEHOUSE_LINEAGE, ...)
- graph.py       the graph of jobs and datasets built from the events; render.py draws it

Nothing here is imported by the DAG file except operators.py (light); the rest loads when a task runs.
"""
