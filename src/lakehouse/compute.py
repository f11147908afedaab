"""DuckDB as stateless compute over Iceberg.

Every connection is in-memory and sees each Iceberg table as a view ``<namespace>.<table>`` over
``iceberg_scan(<current metadata file>)``. Nothing is kept in a .duckdb file, so any number of tasks
can read and compute in parallel without DuckDB's one-writer file lock; every write goes through
PyIceberg (see writes.py).

During a write-audit-publish run (lakehouse.release) the dbt plugin registers with the run's branch:
a table that has that branch is read at the branch head (``iceberg_scan(..., snapshot_from_id=...)``),
every other one at main, so the run's models and tests see what the run built and nothing else does.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from .catalog import current_metadata_locations, get_catalog, load_table
from .identifiers import NAMESPACES, quote, split_table_name
from .objectstore import s3_options
from .settings import Settings, load_settings

DUCKDB_VERSION = "1.5.5"
# avro must be loaded before iceberg: the iceberg extension reads manifests through it.
_EXTENSIONS = ("avro", "iceberg", "httpfs")


def _extension_path(name: str) -> Path:
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"duckdb_extension_{name}=={DUCKDB_VERSION} is not installed; run `make install` "
            "(DuckDB extensions are loaded from PyPI packages because INSTALL needs the network)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "extensions" / f"v{DUCKDB_VERSION}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: duckdb must be exactly {DUCKDB_VERSION} for its extensions to load")
    return path


def load_extensions(con: duckdb.DuckDBPyConnection, settings: Settings | None = None) -> None:
    """Load DuckDB's extensions and, when S3 is configured, the secret that reads s3:// with it."""
    for name in _EXTENSIONS:
        con.execute(f"LOAD '{_extension_path(name)}'")
    # Sessions in UTC whatever the machine's zone: a cast of a timestamptz to timestamp (and every
    # date taken from one) then means the same on every machine, and the same as on Spark (UTC).
    con.execute("SET TimeZone = 'UTC'")
    configure_s3(con, settings)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def configure_s3(con: duckdb.DuckDBPyConnection, settings: Settings | None = None) -> bool:
    """A temporary (in-memory, never persisted) S3 secret from settings and the AWS_* keys.

    Made when an endpoint or keys are set, or the warehouse or raw zone is on s3://. Returns whether
    it was made. The statement holds the secret key, so a failure is reported without it.
    """
    settings = settings or load_settings()
    options = s3_options(settings)
    on_s3 = any(str(uri).startswith("s3://") for uri in (settings.warehouse, settings.raw_zone))
    if not (on_s3 or "s3.endpoint" in options or "s3.access-key-id" in options):
        return False
    parts = ["TYPE s3", f"REGION {_literal(settings.s3_region)}"]
    if "s3.access-key-id" in options:
        parts.append(f"KEY_ID {_literal(options['s3.access-key-id'])}")
    if "s3.secret-access-key" in options:
        parts.append(f"SECRET {_literal(options['s3.secret-access-key'])}")
    if settings.s3_endpoint:
        endpoint = urlparse(settings.s3_endpoint)
        # DuckDB wants host:port; an endpoint other than AWS (MinIO, SeaweedFS) wants path-style URLs.
        parts += [f"ENDPOINT {_literal(endpoint.netloc)}", "URL_STYLE 'path'",
                  f"USE_SSL {'true' if endpoint.scheme == 'https' else 'false'}"]
    try:
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET lakehouse_s3 ({', '.join(parts)})")
    except duckdb.Error as error:
        message = str(error)
        for value in (options.get("s3.secret-access-key"), options.get("s3.access-key-id")):
            if value:
                message = message.replace(value, "***")
        raise RuntimeError(f"could not configure DuckDB for S3: {message}") from None
    return True


def _create_view(con: duckdb.DuckDBPyConnection, full_name: str, metadata_location: str, deferred: bool = False,
                 snapshot_id: int | None = None) -> None:
    namespace, name = split_table_name(full_name)
    location = metadata_location.replace("'", "''")
    at = f", snapshot_from_id={int(snapshot_id)}" if snapshot_id is not None else ""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(namespace)}")
    con.execute(
        f"CREATE OR REPLACE VIEW {quote(namespace)}.{quote(name)} AS SELECT * FROM iceberg_scan('{location}'{at})"
    )
    # The comment marks the view as an Iceberg table for dbt's relation cache (see the dbt package). A
    # deferred one (production's table, read by a slim CI build) is not this build's table: dbt sees a
    # view, so an incremental model it selects builds in full here instead of merging into production.
    con.execute(f"COMMENT ON VIEW {quote(namespace)}.{quote(name)} IS '{'iceberg_deferred' if deferred else 'iceberg'}'")


def deferred_locations(settings: Settings | None = None) -> dict[str, str]:
    """{table: metadata file} of the production catalog a slim CI build defers to (empty: no deferral)."""
    from .catalog import _catalog_for

    settings = settings or load_settings()
    if not settings.defer_catalog_uri:
        return {}
    s3 = tuple(sorted(s3_options(settings).items()))
    production = _catalog_for(settings.catalog_name, settings.defer_catalog_uri,
                              settings.defer_warehouse or settings.warehouse, s3)
    return current_metadata_locations(production)


def branch_head(table: Table, branch: str | None) -> int | None:
    """The snapshot id at the head of ``branch`` when the table has that branch, else None (read main)."""
    ref = table.metadata.refs.get(branch) if branch else None
    return ref.snapshot_id if ref is not None and ref.snapshot_ref_type == "branch" else None


def register_table(con: duckdb.DuckDBPyConnection, full_name: str, table: Table, branch: str | None = None) -> None:
    """(Re)point the view <namespace>.<table> at the table's current metadata file (at ``branch``'s
    head when the table has that branch)."""
    _create_view(con, full_name, table.metadata_location, snapshot_id=branch_head(table, branch))


def register_catalog(
    con: duckdb.DuckDBPyConnection, catalog: Catalog | None = None, known: dict[str, str] | None = None,
    branch: str | None = None,
) -> dict[str, str]:
    """Point a view at every table's current snapshot; returns {table: metadata file} registered.

    With ``known`` (what this connection registered before), only tables whose metadata changed
    since are re-pointed, so refreshing a long-lived connection costs one catalog query. With
    ``branch``, a table of this catalog that has the branch is read at its head (each re-pointed
    table's metadata is then loaded, to see its branches); pass no ``known`` when the branch changed.
    """
    catalog = catalog or get_catalog()
    known = known if known is not None else {}
    if not known:
        for namespace in NAMESPACES:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(namespace)}")
    own = current_metadata_locations(catalog)
    # Slim CI: production's tables this build has not (yet) written are read where they are.
    locations = {**deferred_locations(), **own}
    for full_name in set(known) - set(locations):
        # Dropped, or a connection that outlived its catalog (another LAKEHOUSE_HOME).
        namespace, name = split_table_name(full_name)
        con.execute(f"DROP VIEW IF EXISTS {quote(namespace)}.{quote(name)}")
    for full_name, location in locations.items():
        if known.get(full_name) != location:
            snapshot_id = None
            if branch and full_name in own:
                table = load_table(full_name, catalog)
                snapshot_id = branch_head(table, branch) if table is not None else None
            _create_view(con, full_name, location, deferred=full_name not in own, snapshot_id=snapshot_id)
    return locations


def connect(catalog: Catalog | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB with the extensions loaded and every Iceberg table visible."""
    con = duckdb.connect(":memory:")
    load_extensions(con)
    register_catalog(con, catalog)
    return con


# --- Read-only queries (`lakehouse query`) ------------------------------------------------------------
# A connection like connect()'s, then shut in: DuckDB may read only the warehouse (enable_external_access
# off, allowed_directories = the warehouse), load or install nothing more, and change no setting back
# (lock_configuration). allowed_directories also lets DuckDB *write* there (COPY TO, ATTACH of a new file,
# a log file), so every statement is checked before it runs: only SELECT and EXPLAIN of one, without the
# table functions that write or run SQL from a string.

READ_ONLY = "lakehouse query is read-only over the lakehouse tables"
_READ_ONLY_STATEMENTS = (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN)
# Table functions a SELECT can call that write files (log and profile output land in allowed directories),
# change state (Iceberg catalog properties) or run SQL given as a string (which hides what it calls); and
# duckdb_secrets(), which redacts the S3 secret key but shows its key id and endpoint.
_REFUSED_FUNCTIONS = frozenset({
    "enable_logging", "disable_logging", "truncate_duckdb_logs", "enable_profiling", "disable_profiling",
    "set_iceberg_table_properties", "remove_iceberg_table_properties", "set_iceberg_schema_properties",
    "remove_iceberg_schema_properties", "iceberg_to_ducklake", "query", "query_table", "json_execute_serialized_sql",
    "duckdb_secrets",
})  # fmt: skip
_EXPLAIN = re.compile(r"\s*explain\s+(?:analyze\s+)?", re.IGNORECASE)


class ReadOnlyQueryError(RuntimeError):
    """A statement `lakehouse query` refuses: it would write, reach beyond the warehouse or change a setting."""


def _folder(uri: str) -> str:
    """A warehouse or table location as DuckDB's allowed_directories wants it: a path or s3:// prefix, with '/'."""
    if uri.startswith("file://"):
        uri = unquote(urlparse(uri).path)
    return uri.rstrip("/") + "/"


def readable_locations(settings: Settings, metadata_locations: dict[str, str]) -> list[str]:
    """The warehouse, plus the folder of any table whose metadata lives outside it (created with a location)."""
    folders = [_folder(settings.warehouse)]
    for location in metadata_locations.values():
        parent = location.rsplit("/", 1)[0]  # <table location>/metadata
        folder = _folder(parent.removesuffix("/metadata"))
        if not any(folder.startswith(known) for known in folders):
            folders.append(folder)
    return folders


def lock_down(con: duckdb.DuckDBPyConnection, readable: list[str]) -> None:
    """From now on the connection reads only ``readable`` and can change no setting (not even these)."""
    # httpfs copies AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN into these settings as it
    # loads, where duckdb_settings() and current_setting() show them in clear; the S3 secret has the keys.
    for name in ("s3_access_key_id", "s3_secret_access_key", "s3_session_token"):
        con.execute(f"SET {name} = ''")
    con.execute(f"SET allowed_directories = [{', '.join(_literal(folder) for folder in readable)}]")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def connect_read_only(catalog: Catalog | None = None, settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """connect(), locked down: every Iceberg table readable as a view, nothing else reachable.

    Run statements through check_read_only() (or use read_only_query()): DuckDB itself still lets a
    statement write inside the warehouse.
    """
    settings = settings or load_settings()
    con = duckdb.connect(":memory:")
    load_extensions(con, settings)
    locations = register_catalog(con, catalog or get_catalog(settings))
    lock_down(con, readable_locations(settings, locations))
    return con


def _function_names(tree: object) -> set[str]:
    names: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("function_name"), str):
                names.add(node["function_name"].lower())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise ReadOnlyQueryError unless every statement of ``sql`` is a SELECT (or EXPLAIN of one) that
    calls none of the table functions that write. DuckDB's own syntax errors are raised as they are."""
    for statement in con.extract_statements(sql):
        text = statement.query
        if statement.type not in _READ_ONLY_STATEMENTS:
            if statement.type == duckdb.StatementType.CREATE and not text.strip():
                raise ReadOnlyQueryError(f"{READ_ONLY}: a PIVOT without an IN list creates a type first; "
                                         "name the values: PIVOT ... ON column IN (...)")
            words = text.split(None, 1)
            keyword = words[0].upper() if words and words[0].isalpha() else statement.type.name
            raise ReadOnlyQueryError(f"{READ_ONLY}: {keyword} statements are refused (only SELECT, and EXPLAIN of one)")
        if statement.type == duckdb.StatementType.EXPLAIN:
            match = _EXPLAIN.match(text)
            text = text[match.end():] if match else text
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [text]).fetchone()[0])
        if tree.get("error"):
            raise ReadOnlyQueryError(f"{READ_ONLY}: this statement cannot be checked ({tree.get('error_message')}); "
                                     "write it as a SELECT")
        refused = sorted(_function_names(tree) & _REFUSED_FUNCTIONS)
        if refused:
            raise ReadOnlyQueryError(f"{READ_ONLY}: {', '.join(refused)}() is refused")


def read_only_query(sql: str, catalog: Catalog | None = None) -> pa.Table | None:
    """Run ``sql`` read-only over every Iceberg table; its last statement's rows, None if it has none.

    DuckDB's refusals (Permission Error, a locked setting) come back as ReadOnlyQueryError with its message.
    """
    con = connect_read_only(catalog)
    try:
        return run_read_only(con, sql)
    finally:
        con.close()


def run_read_only(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pa.Table | None:
    """``sql`` on a connect_read_only() connection, checked first (check_read_only)."""
    try:
        check_read_only(con, sql)
        result = con.execute(sql, params or [])
        return None if result.description is None else result.to_arrow_table()
    except duckdb.PermissionException as error:
        raise ReadOnlyQueryError(f"{READ_ONLY}: {error}") from None
    except duckdb.InvalidInputException as error:
        if "configuration has been locked" not in str(error):
            raise
        raise ReadOnlyQueryError(f"{READ_ONLY}: {error}") from None
