"""Spark as the distributed engine: its jars (jars.py), its configuration over the lakehouse's Iceberg
catalog (config.py) and the long-lived Thrift server every dbt task and query talks to (server.py)."""
