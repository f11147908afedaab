"""Spark's configuration over the SAME Iceberg catalog and warehouse as PyIceberg and DuckDB.

The lakehouse's SQL catalog becomes Iceberg's JDBC catalog on the same database (SQLite file or
PostgreSQL), under the same catalog name, as Spark's default catalog: ``raw.market_data`` in Spark SQL is
the table PyIceberg writes. Everything here is one dict of Spark properties, used by the Thrift server
(server.py writes it to a 0600 properties file, as a catalog password may be in it) and by a Spark session.
"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from ..settings import Settings
from . import jars

POSTGRES_JDBC = jars.Path("/usr/share/java/postgresql.jar")  # Debian's libpostgresql-jdbc-java
AWS_BUNDLE_HINT = (
    "Spark reads and writes an s3:// warehouse through Iceberg's S3FileIO, whose AWS SDK (Iceberg's "
    "iceberg-aws-bundle jar) neither PyPI nor Debian ships: where Maven Central is reachable, set "
    "LAKEHOUSE_SPARK_PACKAGES=org.apache.iceberg:iceberg-aws-bundle:1.10.2"
)


class SparkConfigError(ValueError):
    pass


def jdbc_catalog(catalog_uri: str) -> dict[str, str]:
    """The JDBC catalog properties for the lakehouse's SQLAlchemy catalog URI (sqlite:/// or postgresql://)."""
    parsed = urlparse(catalog_uri)
    scheme = parsed.scheme.split("+")[0]
    if scheme == "sqlite":
        path = catalog_uri.split(":///", 1)[1] if ":///" in catalog_uri else ""
        if not path:
            raise SparkConfigError(f"LAKEHOUSE_CATALOG_URI {catalog_uri!r}: Spark needs a SQLite file, not an in-memory database")
        return {"uri": f"jdbc:sqlite:/{path.lstrip('/')}" if path.startswith("/") else f"jdbc:sqlite:{path}"}
    if scheme in ("postgresql", "postgres"):
        port = f":{parsed.port}" if parsed.port else ""
        properties = {"uri": f"jdbc:postgresql://{parsed.hostname}{port}{parsed.path}"}
        if parsed.username:
            properties["jdbc.user"] = unquote(parsed.username)
        if parsed.password:
            properties["jdbc.password"] = unquote(parsed.password)
        return properties
    raise SparkConfigError(
        f"LAKEHOUSE_CATALOG_URI: Spark reaches a {scheme or 'this'} catalog only as a JDBC (SQLite, PostgreSQL) "
        "catalog here; point a REST catalog at Spark with spark.sql.catalog.* settings of your own"
    )


def spark_properties(settings: Settings) -> dict[str, str]:
    """Every Spark property the lakehouse sets: master, memory, jars, the Iceberg catalog, session defaults."""
    name = settings.catalog_name
    catalog = f"spark.sql.catalog.{name}"
    classpath = [str(j) for j in jars.iceberg_jars()]
    properties = {
        "spark.master": settings.spark_master,
        "spark.app.name": "lakehouse",
        "spark.driver.memory": settings.spark_driver_memory,
        # On the driver's own class path as well as spark.jars: the Thrift server's worker threads load
        # Iceberg's classes through the system class loader (spark.jars alone: NoClassDefFoundError).
        "spark.jars": ",".join(classpath),
        "spark.driver.extraClassPath": ":".join(classpath),
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        catalog: "org.apache.iceberg.spark.SparkCatalog",
        f"{catalog}.type": "jdbc",
        # The schema version PyIceberg's SQL catalog writes (V1 knows views; PyIceberg reads both).
        f"{catalog}.jdbc.schema-version": "V1",
        f"{catalog}.warehouse": settings.warehouse,
        # SQLite allows one writer: one pooled connection (two in one JVM locked each other out on a
        # CREATE OR REPLACE), and wait for another process's commit (PyIceberg's) instead of failing.
        f"{catalog}.clients": "1",
        f"{catalog}.jdbc.busy_timeout": "60000",
        # PyIceberg has made the catalog's tables (server.start opens the catalog first). Iceberg's own
        # check for them leaves a JDBC result set open, whose SQLite read lock then blocks every writer,
        # PyIceberg's commits included, for as long as the server runs.
        f"{catalog}.jdbc.init-catalog-tables": "false",
        # Other engines commit to the same tables (PyIceberg lands every raw batch): a long-lived server
        # must load each table's current metadata, not the copy Iceberg's CachingCatalog kept from an
        # earlier query (with the cache, staging read the landing before last).
        f"{catalog}.cache-enabled": "false",
        "spark.sql.defaultCatalog": name,
        # No Hive metastore (and no metastore_db/ folder): every table lives in the Iceberg catalog.
        "spark.sql.catalogImplementation": "in-memory",
        # Spark's own (unused) warehouse folder under the home, not spark-warehouse/ in the working folder.
        "spark.sql.warehouse.dir": (settings.home / "spark" / "spark-warehouse").as_uri(),
        # UTC, as DuckDB and PyIceberg: a timestamp means the same instant on every engine.
        "spark.sql.session.timeZone": "UTC",
        # `timestamp` in SQL means what it means on DuckDB: a local date-time (TIMESTAMP_NTZ, Iceberg's
        # timestamp); an instant is timestamp_ltz (Iceberg's timestamptz). Spark's own default would
        # turn every cast(... as timestamp) of a model into a timestamptz column on Spark only.
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        # Small local data: a few shuffle partitions, not Spark's 200 (tiny files, slow stages).
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.adaptive.enabled": "true",
        "spark.ui.enabled": "false",
        # Every Thrift connection shares one Spark session, so one Iceberg catalog (one JDBC connection to
        # the SQLite file) serves them all; dbt's temporary relations have names of their own per model.
        "spark.sql.hive.thriftServer.singleSession": "true",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
    }
    for key, value in jdbc_catalog(settings.catalog_uri).items():
        properties[f"{catalog}.{key}"] = value
    if settings.catalog_uri.startswith("postgres"):
        if not POSTGRES_JDBC.is_file():
            raise SparkConfigError(f"{POSTGRES_JDBC} not found: a PostgreSQL catalog needs Debian's libpostgresql-jdbc-java")
        properties["spark.jars"] += f",{POSTGRES_JDBC}"
        properties["spark.driver.extraClassPath"] += f":{POSTGRES_JDBC}"
    if settings.warehouse.startswith("s3://"):
        if "iceberg-aws-bundle" not in settings.spark_packages:
            raise SparkConfigError(AWS_BUNDLE_HINT)
        # Keys from the standard AWS_* variables of the server's environment (the SDK's default chain).
        properties[f"{catalog}.io-impl"] = "org.apache.iceberg.aws.s3.S3FileIO"
        properties[f"{catalog}.client.region"] = settings.s3_region
        if settings.s3_endpoint:
            properties[f"{catalog}.s3.endpoint"] = settings.s3_endpoint
            properties[f"{catalog}.s3.path-style-access"] = "true"
    if settings.spark_packages:
        properties["spark.jars.packages"] = settings.spark_packages
    return properties
