"""Table maintenance: compact small files and expire old snapshots.

Every daily append and every partition overwrite leaves small Parquet files and one more snapshot;
reads slow down with the file count and metadata grows with the snapshot count. PyIceberg 0.12 has no
compaction, so it is done here: the small files of a partition are read and written again as files of
the target size, replacing exactly those files in one commit per table. Rows never change.
Expiry is metadata only (PyIceberg never deletes files): old snapshots can no longer be time-travelled
to, but their files stay on disk.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from dataclasses import dataclass, field

from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.table import FileScanTask, Table, TableProperties
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import ancestors_of

from .catalog import list_tables, load_table
from .identifiers import InvalidIdentifier, split_table_name
from .pipeline import Maintenance, Pipeline, discover_pipelines, get_pipeline
from .settings import load_settings

MB = 1024 * 1024
COMMIT_ATTEMPTS = 3


@dataclass
class TableReport:
    """What maintenance did to a table (dry run: would do; bytes_after is then bytes_before, not an estimate)."""

    table: str
    files_before: int
    files_after: int
    bytes_before: int
    bytes_after: int
    snapshots_before: int
    snapshots_after: int
    rows: int
    compacted_partitions: int
    expired_snapshots: int = 0
    dry_run: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _live_files(table: Table) -> list[FileScanTask]:
    return list(table.scan().plan_files()) if table.current_snapshot() else []


def _partition_label(table: Table, task: FileScanTask) -> str:
    spec = table.specs()[task.file.spec_id]
    values = [f"{f.name}={task.file.partition[i]}" for i, f in enumerate(spec.fields)]
    return ", ".join(values) or "(unpartitioned)"


def _bins(files: list[FileScanTask], target_bytes: int) -> list[list[FileScanTask]]:
    """First-fit decreasing: group small files into bins of at most the target size, one output file each."""
    bins: list[list[FileScanTask]] = []
    sizes: list[int] = []
    for task in sorted(files, key=lambda t: t.file.file_size_in_bytes, reverse=True):
        size = task.file.file_size_in_bytes
        slot = next((i for i, used in enumerate(sizes) if used + size <= target_bytes), None)
        if slot is None:
            bins.append([task])
            sizes.append(size)
        else:
            bins[slot].append(task)
            sizes[slot] += size
    # A bin of one file would rewrite a file into itself.
    return [b for b in bins if len(b) > 1]


def plan_compaction(table: Table, target_bytes: int) -> tuple[dict[str, list[list[FileScanTask]]], list[str]]:
    """The bins of small files to merge, by partition label, and notes on partitions left alone."""
    partitions: dict[tuple, list[FileScanTask]] = {}
    for task in _live_files(table):
        if task.file.file_size_in_bytes < target_bytes:
            partitions.setdefault((task.file.spec_id, task.file.partition), []).append(task)
    plan, notes = {}, []
    for tasks in partitions.values():
        label = _partition_label(table, tasks[0])
        if any(task.delete_files for task in tasks):
            # Merge-on-read deletes (written by Spark) would be left pointing at removed files.
            notes.append(f"{label}: skipped, it has delete files; compact it with Spark's rewrite_data_files")
            continue
        bins = _bins(tasks, target_bytes)
        if bins:
            plan[label] = bins
    return plan, notes


def _rewrite(table: Table, plan: dict[str, list[list[FileScanTask]]]) -> None:
    """Replace every planned bin by one file holding the same rows, all in one snapshot and one commit.

    Not writes.write: it replaces the rows a predicate matches, so it would need an exact predicate per
    partition (there is none for bucket or truncate partitions), would rewrite big files along with the
    small ones, and commits a delete snapshot then an append snapshot, the first a state no reader ever
    saw. Here one overwrite snapshot deletes exactly the planned files and adds their rewritten copies,
    whatever the partition transform. If anything else committed to the table since it was loaded,
    PyIceberg refuses the commit (CommitFailedException/ValidationException) and nothing changes.
    """
    counter = itertools.count()  # one counter: file names are <counter>-<commit uuid>, so calls must not reuse numbers
    with table.transaction() as tx:
        with tx.update_snapshot(snapshot_properties={"lakehouse.operation": "compaction"}).overwrite() as rewrite:
            metadata: TableMetadata = tx.table_metadata
            read, written = 0, 0
            for bins in plan.values():
                for files in bins:
                    rows = ArrowScan(metadata, table.io, metadata.schema(), AlwaysTrue()).to_table(files)
                    # PyIceberg splits output by in-memory Arrow size; a bin was sized on disk to make
                    # one file, so raise the split size above the bin's Arrow size.
                    split_at = {TableProperties.WRITE_TARGET_FILE_SIZE_BYTES: str(rows.nbytes + MB)}
                    sized = metadata.model_copy(update={"properties": {**metadata.properties, **split_at}})
                    for data_file in _dataframe_to_data_files(sized, rows, table.io, rewrite.commit_uuid, counter):
                        rewrite.append_data_file(data_file)
                        written += data_file.record_count
                    for task in files:
                        rewrite.delete_data_file(task.file)
                        read += task.file.record_count
            if read != written:  # raising here abandons the transaction: nothing is committed
                raise RuntimeError(f"compaction of {table.name()} read {read} rows but wrote {written}")


def snapshots_to_expire(
    metadata: TableMetadata, older_than: dt.datetime, min_snapshots_to_keep: int, pending_commits: int = 0
) -> list[int]:
    """Snapshots older than ``older_than``, except the newest ``min_snapshots_to_keep`` of the current
    branch and every branch or tag head (the current snapshot is main's head).

    PyIceberg's ExpireSnapshots.older_than() has no minimum to keep, so the ids are chosen here.
    ``pending_commits`` snapshots about to be added on top of main (a dry run's compaction) count
    towards the newest kept and move main's head off the current snapshot.
    """
    ancestry = [s.snapshot_id for s in ancestors_of(metadata.current_snapshot(), metadata)]
    kept = set(ancestry[: max(min_snapshots_to_keep - pending_commits, 0)])
    kept |= {ref.snapshot_id for name, ref in metadata.refs.items() if not (pending_commits and name == MAIN_BRANCH)}
    cutoff_ms = int(older_than.timestamp() * 1000)
    return sorted(s.snapshot_id for s in metadata.snapshots if s.timestamp_ms < cutoff_ms and s.snapshot_id not in kept)


def maintain_table(
    full_name: str,
    *,
    retention_hours: float,
    min_snapshots_to_keep: int,
    target_file_size_mb: float,
    dry_run: bool = False,
) -> TableReport:
    """Compact the table's small files, then expire its old snapshots; ``dry_run`` reports what would change."""
    started = time.perf_counter()
    table = load_table(full_name)
    if table is None:
        raise LookupError(f"no Iceberg table {full_name}")
    target_bytes = int(target_file_size_mb * MB)
    before = _live_files(table)
    report = TableReport(
        table=full_name,
        files_before=len(before),
        files_after=len(before),
        bytes_before=sum(t.file.file_size_in_bytes for t in before),
        bytes_after=sum(t.file.file_size_in_bytes for t in before),
        snapshots_before=len(table.metadata.snapshots),
        snapshots_after=len(table.metadata.snapshots),
        rows=sum(t.file.record_count for t in before),
        compacted_partitions=0,
        dry_run=dry_run,
    )
    plan, report.notes = plan_compaction(table, target_bytes)
    report.compacted_partitions = len(plan)
    older_than = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=retention_hours)

    if dry_run:
        bins = [files for partition in plan.values() for files in partition]
        report.files_after -= sum(len(files) for files in bins) - len(bins)
        pending = 1 if plan else 0  # the compaction snapshot a real run would add first
        expired = snapshots_to_expire(table.metadata, older_than, min_snapshots_to_keep, pending_commits=pending)
        report.expired_snapshots = len(expired)
        report.snapshots_after += pending - len(expired)
    else:
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            if not plan:
                break
            try:
                _rewrite(table, plan)
                break
            except (CommitFailedException, ValidationException):
                if attempt == COMMIT_ATTEMPTS:
                    raise
                # Another writer committed meanwhile: plan again against the new state.
                table = load_table(full_name)
                plan, report.notes = plan_compaction(table, target_bytes)
        table = load_table(full_name)
        report.compacted_partitions = len(plan)
        expired = snapshots_to_expire(table.metadata, older_than, min_snapshots_to_keep)
        if expired:
            table.maintenance.expire_snapshots().by_ids(expired).commit()
            table = load_table(full_name)
        after = _live_files(table)
        report.files_after = len(after)
        report.bytes_after = sum(t.file.file_size_in_bytes for t in after)
        report.snapshots_after = len(table.metadata.snapshots)
        report.expired_snapshots = len(expired)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def dbt_built_tables(pipeline: Pipeline) -> list[str]:
    """The tables the pipeline's dbt project builds, from its manifest (none before dbt has parsed it).

    The DAG factory parses into <dbt target dir>/manifests/<pipeline>/; a `dbt parse` run by hand in
    the project writes <project>/target/.
    """
    places = [load_settings().manifest_dir(pipeline.name), pipeline.dbt_project_dir / "target"]
    manifest = next((p / "manifest.json" for p in places if (p / "manifest.json").exists()), None)
    if manifest is None:
        return []
    names = set()
    for node in (json.loads(manifest.read_text()).get("nodes") or {}).values():
        materialized = (node.get("config") or {}).get("materialized")
        if node.get("resource_type") not in ("model", "seed", "snapshot") or materialized in ("view", "ephemeral"):
            continue
        name = f"{node.get('schema')}.{node.get('alias') or node.get('name')}"
        try:
            split_table_name(name)
        except InvalidIdentifier:
            continue  # not a lakehouse table name (e.g. a quoted or database-qualified relation)
        names.add(name)
    return sorted(names)


def pipeline_tables(pipeline: Pipeline) -> list[str]:
    return sorted(set(pipeline.raw_tables) | set(dbt_built_tables(pipeline)))


def _maintain(full_name: str, settings: Maintenance, dry_run: bool) -> TableReport:
    return maintain_table(
        full_name,
        retention_hours=settings.snapshot_retention_hours,
        min_snapshots_to_keep=settings.min_snapshots_to_keep,
        target_file_size_mb=settings.target_file_size_mb,
        dry_run=dry_run,
    )


def maintain_pipeline(pipeline_name: str, *, dry_run: bool = False) -> list[TableReport]:
    """Maintain every existing table of the pipeline with the pipeline's maintenance settings."""
    pipeline = get_pipeline(pipeline_name)
    names = [name for name in pipeline_tables(pipeline) if load_table(name) is not None]
    return [_maintain(name, pipeline.maintenance, dry_run) for name in names]


def maintain_tables(names: list[str] | None = None, *, dry_run: bool = False) -> list[TableReport]:
    """Maintain the named tables (default: every table), each with its pipeline's settings or the defaults."""
    owners = {table: p.maintenance for p in discover_pipelines() for table in pipeline_tables(p)}
    return [_maintain(name, owners.get(name, Maintenance()), dry_run) for name in names or list_tables()]


def _utc(timestamp_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.timezone.utc)


def describe_tables() -> list[dict]:
    """Rows, snapshots, data files, bytes and last commit of every table, from snapshot summaries (no file listing)."""
    described = []
    for name in list_tables():
        table = load_table(name)
        snapshot = table.current_snapshot() if table is not None else None
        summary = snapshot.summary if snapshot is not None and snapshot.summary is not None else {}
        described.append(
            {
                "table": name,
                "rows": int(summary.get("total-records") or 0),
                "snapshots": len(table.metadata.snapshots) if table is not None else 0,
                "data_files": int(summary.get("total-data-files") or 0),
                "bytes": int(summary.get("total-files-size") or 0),
                "last_commit": _utc(snapshot.timestamp_ms) if snapshot else None,
            }
        )
    return described
