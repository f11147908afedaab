"""Table maintenance on the Spark engine, with Iceberg's own procedures, for the same settings and the
same TableReport as the PyIceberg path (lakehouse.maintenance):

- rewrite_data_files: bin-packs the small files of each partition into files of the target size
  (min-input-files 2: a partition with one small file is left alone, as on the PyIceberg path);
- expire_snapshots: older than the retention, keeping at least min_snapshots_to_keep;
- remove_orphan_files: files nothing retained refers to, older than the grace period;
- rewrite_manifests: one manifest per partition spec instead of one per commit.

Each CALL is one Iceberg commit (or none when there is nothing to do). Spark's procedures take literal
arguments only, so the table name is validated (lakehouse.identifiers) before it is written into one.
"""

from __future__ import annotations

import datetime as dt

from ..identifiers import split_table_name


def _literal_time(moment: dt.datetime) -> str:
    return f"TIMESTAMP '{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S.%f}'"


def run_procedures(session, catalog_name: str, full_name: str, *, target_bytes: int, older_than: dt.datetime,
                   min_snapshots_to_keep: int, orphans_older_than: dt.datetime) -> dict[str, list]:
    """Call the four procedures on ``full_name``; what each returned, by name (orphans: their paths)."""
    namespace, table = split_table_name(full_name)  # validated identifiers: safe inside a literal
    name = f"'{namespace}.{table}'"
    system = f"{catalog_name}.system"
    results = {}
    results["rewrite_data_files"] = session.query(
        f"CALL {system}.rewrite_data_files(table => {name}, options => map("
        f"'target-file-size-bytes', '{target_bytes}', 'min-input-files', '2', 'rewrite-all', 'false'))").to_pylist()
    results["expire_snapshots"] = session.query(
        f"CALL {system}.expire_snapshots(table => {name}, older_than => {_literal_time(older_than)}, "
        f"retain_last => {max(1, int(min_snapshots_to_keep))})").to_pylist()
    results["remove_orphan_files"] = session.query(
        f"CALL {system}.remove_orphan_files(table => {name}, older_than => {_literal_time(orphans_older_than)})"
    ).to_pylist()
    results["rewrite_manifests"] = session.query(f"CALL {system}.rewrite_manifests({name})").to_pylist()
    return results
