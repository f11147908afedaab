"""Every write to an Iceberg table: one atomic PyIceberg commit per call.

Strategies (the same names dbt uses):
- ``overwrite``: replace the whole table (dbt ``table``).
- ``append``: add the rows.
- ``merge``: upsert on ``unique_key``; rows whose key exists are replaced, others added.
- ``insert_overwrite``: replace exactly the partitions present in the new rows.
- ``delete_insert``: replace every row whose ``unique_key`` appears in the new rows (the key need not
  be unique: all of a key's rows go, e.g. an SCD2 history). With ``tombstone_column``, rows where it is
  true only delete their key: the change-data-capture merge, where a 'D' event removes the row.
New columns are added by schema evolution in the same commit; a failure leaves the previous snapshot.

``branch`` (write-audit-publish, lakehouse.release): every strategy reads and commits that Iceberg
branch instead of main. A table's first write to a branch that does not exist creates it from main's
current snapshot in the same commit; a table that does not exist is created empty on main and its
first rows go to the branch, so readers of main see an empty table until the publish. Schema and
partition spec are table-wide in Iceberg: a column a branch write adds is in main's schema at once
(null in main's rows), main's snapshot and rows stay as they were.
"""

from __future__ import annotations

import warnings
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo, In, IsNull, Or
from pyiceberg.io.pyarrow import (
    ArrowScan,
    _check_pyarrow_schema_compatible,
    _dataframe_to_data_files,
    _pyarrow_to_schema_without_ids,
)
from pyiceberg.partitioning import _to_partition_representation
from pyiceberg.schema import Schema, assign_fresh_schema_ids
from pyiceberg.table import Table, Transaction
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.upsert_util import create_match_filter
from pyiceberg.transforms import IdentityTransform

from .catalog import get_catalog, load_table
from .identifiers import split_table_name, validate_identifier
from .partitioning import build_partition_spec, parse_partition_field, requested_signature, spec_signature

Strategy = Literal["overwrite", "append", "merge", "insert_overwrite", "delete_insert"]
STRATEGIES = ("overwrite", "append", "merge", "insert_overwrite", "delete_insert")


class WriteError(RuntimeError):
    pass


def _normalize(data: pa.Table) -> pa.Table:
    """Arrow types Iceberg has no equivalent for become their nearest Iceberg type."""
    fields = []
    changed = False
    for field in data.schema:
        kind = field.type
        target = kind
        if pa.types.is_unsigned_integer(kind):
            target = pa.int64()
        elif pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            target = pa.string()
        elif pa.types.is_timestamp(kind) and kind.unit == "ns":
            target = pa.timestamp("us", tz=kind.tz)
        elif pa.types.is_dictionary(kind):
            target = kind.value_type
        elif pa.types.is_null(kind):
            target = pa.string()
        validate_identifier(field.name, "column name")
        changed |= target != kind
        fields.append(pa.field(field.name, target, nullable=True))
    return data.cast(pa.schema(fields)) if changed else data


def _without_tombstones(full_name: str, data: pa.Table, column: str) -> pa.Table:
    """The rows to insert: those whose tombstone is false, without the tombstone column itself."""
    if column not in data.column_names:
        raise WriteError(f"{full_name}: tombstone_column {column!r} is not in the result")
    if not pa.types.is_boolean(data.schema.field(column).type):
        raise WriteError(f"{full_name}: tombstone_column {column!r} must be boolean, not {data.schema.field(column).type}")
    dead = pc.fill_null(data.column(column), False)
    return data.filter(pc.invert(dead)).drop_columns([column])


def _create(catalog: Catalog, full_name: str, data: pa.Table, partition_by, properties, branch: str) -> Table:
    # Give the schema real field ids before building the spec on it.
    schema = assign_fresh_schema_ids(Schema(*_pyarrow_to_schema_without_ids(data.schema).fields))
    spec = build_partition_spec(schema, partition_by)
    namespace, table = split_table_name(full_name)
    tx = catalog.create_table_transaction((namespace, table), schema=schema, partition_spec=spec)
    if branch != MAIN_BRANCH:
        # Iceberg writes a branch only of a table with a snapshot: main gets an empty one (readers of
        # main see an empty table until the publish) and the branch starts there, in the same commit.
        tx.append(data.schema.empty_table(), snapshot_properties=properties)
        _start_branch(tx, branch)
    if data.num_rows:
        tx.append(data, snapshot_properties=properties, branch=branch)
    tx.commit_transaction()
    return catalog.load_table((namespace, table))


def _partition_filter(table: Table, data: pa.Table) -> BooleanExpression:
    """A filter matching exactly the identity partitions present in ``data``."""
    spec = table.spec()
    schema = table.schema()
    if not spec.fields:
        raise WriteError(f"insert_overwrite needs a partitioned table; {table.name()} is not partitioned")
    columns = []
    for field in spec.fields:
        if not isinstance(field.transform, IdentityTransform):
            raise WriteError(
                f"insert_overwrite replaces identity partitions only; {table.name()} is partitioned by "
                f"{field.transform}({schema.find_column_name(field.source_id)}): partition by the column itself"
            )
        columns.append(schema.find_column_name(field.source_id))
    combos = data.select(columns).group_by(columns).aggregate([]).to_pylist()
    if len(columns) == 1:
        # One column: a compact In() (plus IsNull when a partition value is null).
        values = [combo[columns[0]] for combo in combos if combo[columns[0]] is not None]
        nulls = len(values) < len(combos)
        expr: BooleanExpression = In(columns[0], values) if values else IsNull(columns[0])
        return Or(expr, IsNull(columns[0])) if nulls and values else expr
    clauses = []
    for combo in combos:
        terms = [IsNull(c) if v is None else EqualTo(c, v) for c, v in combo.items()]
        clause = terms[0]
        for term in terms[1:]:
            clause = And(clause, term)
        clauses.append(clause)
    expr = clauses[0]
    for clause in clauses[1:]:
        expr = Or(expr, clause)
    return expr

def _key_partitions(metadata, keys: pa.Table) -> set[tuple] | None:
    """The partitions (as data files record them) that rows with these keys live in, or None when
    the partition of a key cannot be told from the key alone (unpartitioned, or partitioned by a
    column that is not part of the key)."""
    spec, schema = metadata.spec(), metadata.schema()
    if not spec.fields:
        return None
    values = []
    for field in spec.fields:
        column = schema.find_column_name(field.source_id)
        if column not in keys.column_names:
            return None
        source_type = schema.find_field(field.source_id).field_type
        transformed = field.transform.pyarrow_transform(source_type)(keys.column(column).combine_chunks())
        result_type = field.transform.result_type(source_type)
        values.append([_to_partition_representation(result_type, v) for v in transformed.to_pylist()])
    return set(zip(*values))


def _replace_keys_in_partitions(tx, table: Table, keys: pa.Table, data: pa.Table, unique_key: list[str],
                                properties: dict[str, str], branch: str = MAIN_BRANCH) -> bool:
    """delete_insert as one rewrite of the data files in the partitions the keys live in: their rows
    minus the replaced keys, plus ``data``, in one overwrite snapshot. Its cost follows the size of
    those partitions, where a delete predicate listing every key costs PyIceberg Python work per key
    per manifest and per file (1.2 s for 10,000 keys). False (nothing done) when it does not apply:
    the partition is not a function of the key, files of an older spec or delete files are present.
    """
    metadata = tx.table_metadata
    wanted = _key_partitions(metadata, keys)
    head = metadata.snapshot_by_name(branch)
    if wanted is None or head is None:
        return False
    spec_id = metadata.default_spec_id
    arity = len(metadata.spec().fields)
    tasks = list(table.scan(snapshot_id=head.snapshot_id).plan_files())
    if any(task.file.spec_id != spec_id or task.delete_files for task in tasks):
        return False
    touched = [task for task in tasks if tuple(task.file.partition[i] for i in range(arity)) in wanted]
    schema = metadata.schema()
    kept = ArrowScan(metadata, table.io, schema, AlwaysTrue()).to_table(touched) if touched else None
    if kept is not None:
        kept = kept.join(keys, unique_key, join_type="left anti")
        # The same types as the rows read back (e.g. DuckDB's 'Etc/UTC' is Iceberg's 'UTC').
        types = {f.name: f.type for f in kept.schema}
        data = data.cast(pa.schema([f.with_type(types.get(f.name, f.type)) for f in data.schema]))
    if not touched and not data.num_rows:
        return True  # tombstones of keys the table does not hold: nothing to write
    rows = pa.concat_tables([t for t in (kept, data) if t is not None], promote_options="permissive")
    rows = rows.select([name for name in schema.column_names if name in rows.column_names])
    _check_pyarrow_schema_compatible(schema, provided_schema=rows.schema, format_version=metadata.format_version)
    with tx.update_snapshot(snapshot_properties=properties, branch=branch).overwrite() as rewrite:
        for data_file in _dataframe_to_data_files(metadata, rows, table.io, rewrite.commit_uuid):
            rewrite.append_data_file(data_file)
        for task in touched:
            rewrite.delete_data_file(task.file)
    return True


def _start_branch(tx: Transaction, branch: str) -> None:
    """Create ``branch`` at main's current snapshot in this transaction, unless it exists. The commit
    then asserts that the branch still does not exist: two writers starting it at once, one fails."""
    metadata = tx.table_metadata
    if branch in metadata.refs and metadata.refs[branch].snapshot_ref_type != SnapshotRefType.BRANCH:
        raise WriteError(f"{branch!r} is a tag of this table, not a branch")
    if branch == MAIN_BRANCH or branch in metadata.refs:
        return
    main = metadata.current_snapshot()
    if main is not None:  # else the first write makes the branch (a table with no rows on main)
        tx._stage(*tx._set_ref_snapshot(snapshot_id=main.snapshot_id, ref_name=branch, type=SnapshotRefType.BRANCH))


def write(
    full_name: str,
    data: pa.Table,
    strategy: Strategy = "overwrite",
    *,
    unique_key: list[str] | None = None,
    partition_by: list[str] | None = None,
    overwrite_filter: BooleanExpression | None = None,
    snapshot_properties: dict[str, str] | None = None,
    tombstone_column: str | None = None,
    catalog: Catalog | None = None,
    branch: str | None = None,
) -> Table:
    """Commit ``data`` to the Iceberg table ``full_name`` in one atomic snapshot; returns the table.

    ``branch`` (None: main) is the Iceberg branch read and written (see the module docstring). It is
    never taken from the environment here: the dbt plugin passes LAKEHOUSE_WRITE_BRANCH, ingest does not.
    """
    if strategy not in STRATEGIES:
        raise WriteError(f"unknown write strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if strategy in ("merge", "delete_insert") and not unique_key:
        raise WriteError(f"{strategy} into {full_name} needs a unique_key")
    if tombstone_column and strategy not in ("delete_insert", "overwrite"):
        raise WriteError(f"tombstone_column works with the delete_insert and overwrite strategies, not {strategy}")
    catalog = catalog or get_catalog()
    branch = branch or MAIN_BRANCH
    properties = {k: str(v) for k, v in (snapshot_properties or {}).items()}
    if strategy in ("merge", "delete_insert"):
        missing = [k for k in unique_key if k not in data.column_names]
        if missing:
            raise WriteError(f"{strategy} into {full_name}: unique_key column(s) {missing} are not in the result")
    replaced_keys = None
    if strategy == "delete_insert":
        replaced_keys = data.select(unique_key).group_by(unique_key).aggregate([])
    if tombstone_column:
        # A full build of a CDC table too: a key whose last event is a delete has no row.
        data = _without_tombstones(full_name, data, tombstone_column)
    data = _normalize(data)
    for text in partition_by or []:
        parse_partition_field(text)  # refuse a bad expression before anything is written

    table = load_table(full_name, catalog)
    if table is None:
        return _create(catalog, full_name, data, partition_by, properties, branch)
    if replaced_keys is not None and replaced_keys.num_rows == 0:
        return table

    if strategy == "merge":
        keys = data.select(unique_key)
        if keys.num_rows and keys.group_by(unique_key).aggregate([]).num_rows != keys.num_rows:
            raise WriteError(
                f"merge into {full_name}: the new rows hold duplicate values of unique_key {unique_key}; "
                "deduplicate the model's result before merging"
            )

    with warnings.catch_warnings(), table.transaction() as tx:
        # A filtered overwrite of a partition seen for the first time deletes nothing: expected here.
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        _start_branch(tx, branch)
        existing = {f.name for f in table.schema().fields}
        incoming = set(data.column_names)
        new_columns = incoming - existing
        # Only a whole-table overwrite (a dbt `table`) may drop columns or start a new layout; a
        # filtered overwrite replaces some rows and must leave every other row and column alone.
        full_overwrite = strategy == "overwrite" and overwrite_filter is None
        dropped_columns = existing - incoming if full_overwrite else set()
        spec_changes = partition_by is not None and (
            spec_signature(table.schema(), table.spec()) != requested_signature(partition_by)
        )
        rebuild = full_overwrite and bool(spec_changes or dropped_columns)
        if branch != MAIN_BRANCH and (dropped_columns or spec_changes):
            # Schema and partition spec are the whole table's, not a branch's: dropping a column or
            # re-partitioning here would change what main's readers see before the audit, and no
            # rollback of pointers would bring it back.
            raise WriteError(
                f"{full_name}: a write on branch {branch!r} cannot "
                + ("drop column(s) " + ", ".join(sorted(dropped_columns)) if dropped_columns else "change the partitioning")
                + ": that changes main's table too. Run this change once with `publish: direct` "
                "(or --full-refresh on a pipeline without WAP), then go back to write-audit-publish")
        if rebuild:
            # A full rebuild with a new layout: remove the old rows while the old spec and columns
            # still describe them, then change the layout; all of it is still one commit.
            tx.delete(AlwaysTrue(), snapshot_properties=properties, branch=branch)
        # Order matters: add columns, then re-partition (the new spec may use a new column and the
        # old one may use a column that is about to go), then drop what the model no longer has.
        if new_columns:
            with tx.update_schema() as update:
                update.union_by_name(data.schema)
        if spec_changes:
            with tx.update_spec() as spec_update:
                for field in tx.table_metadata.spec().fields:
                    spec_update.remove_field(field.name)
                for text in partition_by:
                    column, transform, name = parse_partition_field(text)
                    spec_update.add_field(column, transform, name)
        if dropped_columns:
            with tx.update_schema(allow_incompatible_changes=True) as update:
                for name in sorted(dropped_columns):
                    update.delete_column(name)
        if rebuild:
            if data.num_rows:
                tx.append(data, snapshot_properties=properties, branch=branch)
        elif strategy == "overwrite":
            tx.overwrite(data, overwrite_filter=overwrite_filter or AlwaysTrue(), snapshot_properties=properties,
                         branch=branch)
        elif strategy == "append":
            if data.num_rows:
                tx.append(data, snapshot_properties=properties, branch=branch)
        elif strategy == "insert_overwrite":
            if data.num_rows:
                tx.overwrite(data, overwrite_filter=_partition_filter(table, data), snapshot_properties=properties,
                             branch=branch)
        elif strategy == "delete_insert":
            if not _replace_keys_in_partitions(tx, table, replaced_keys, data, list(unique_key), properties, branch):
                tx.delete(create_match_filter(replaced_keys, list(unique_key)), snapshot_properties=properties,
                          branch=branch)
                if data.num_rows:
                    tx.append(data, snapshot_properties=properties, branch=branch)
        elif strategy == "merge" and data.num_rows:
            if new_columns:
                # PyIceberg's upsert compares against the table as committed, which lacks the new
                # columns: replace the matched keys instead (same result, still one commit).
                tx.delete(create_match_filter(data, list(unique_key)), snapshot_properties=properties, branch=branch)
                tx.append(data, snapshot_properties=properties, branch=branch)
            else:
                tx.upsert(data, join_cols=list(unique_key), snapshot_properties=properties, branch=branch)
    return catalog.load_table(split_table_name(full_name))
