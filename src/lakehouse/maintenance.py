"""Table maintenance: compact small files, expire old snapshots, remove orphan files.

Every daily append and every partition overwrite leaves small Parquet files and one more snapshot;
reads slow down with the file count and metadata grows with the snapshot count. PyIceberg 0.12 has no
compaction, so it is done here: the small files of a partition are read and written again as files of
the target size, replacing exactly those files in one commit per table. Rows never change.
Expiry is metadata only (PyIceberg never deletes files): old snapshots can no longer be time-travelled
to. Orphan removal then deletes the files under the table's data/ and metadata/ that nothing retained
refers to (expired snapshots' files, files of failed writes, metadata files fallen off the log), once
they are older than a grace period, so the files of a write that has not committed yet are left alone.

Write-audit-publish (lakehouse.release): expiry never removes the head of a branch or tag, so every
``published-<run id>`` set stays whole (its files are never orphans) and rollback to it keeps working;
a ``wap_<run id>`` branch a failed run left for inspection is removed once its head is older than the
snapshot retention, and its snapshots then expire like any other.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import posixpath
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlparse

from pyarrow import fs
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.manifest import ManifestFile
from pyiceberg.table import FileScanTask, Table, TableProperties
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import Snapshot, ancestors_of
from pyiceberg.table.update import AssertRefSnapshotId, AssertTableUUID, RemoveSnapshotRefUpdate, RemoveSnapshotsUpdate
from pyiceberg.utils.concurrent import ExecutorFactory

from . import objectstore
from .catalog import list_tables, load_table
from .dbt_artifacts import pipeline_tables
from .pipeline import Maintenance, discover_pipelines, get_pipeline
from .settings import load_settings

MB = 1024 * 1024
COMMIT_ATTEMPTS = 3
DEFAULT_ORPHAN_GRACE_HOURS = Maintenance.orphan_grace_hours


@dataclass
class TableReport:
    """What maintenance did to a table (dry run: would do; bytes_after is then bytes_before, not an estimate).

    files/bytes: the data files of the current snapshot. stored_*: every file under the table's data/
    and metadata/ folders (data, delete, manifest, manifest list, metadata and statistics files,
    referenced or not); a dry run's stored_*_after subtracts the orphans it would remove and does not
    count the files a compaction would add.
    """

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
    stored_files_before: int = 0
    stored_bytes_before: int = 0
    stored_files_after: int = 0
    stored_bytes_after: int = 0
    orphans_found: int = 0  # files nothing retained refers to, removed or not
    orphans_removed: int = 0  # those older than the grace period
    orphan_bytes_removed: int = 0


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
    with (
        table.transaction() as tx,
        tx.update_snapshot(snapshot_properties={"lakehouse.operation": "compaction"}).overwrite() as rewrite,
    ):
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


def _expire(table: Table, snapshot_ids: list[int]) -> None:
    """Remove the snapshots from the table's metadata in one commit.

    What table.maintenance.expire_snapshots().by_ids() commits, without its cost: it deep-copies the
    whole table metadata twice per id, quadratic in the snapshot count (seconds for 200 snapshots).
    The ids come from snapshots_to_expire, which never picks a branch or tag head.
    """
    table.catalog.commit_table(
        table,
        requirements=(AssertTableUUID(uuid=table.metadata.table_uuid),),
        updates=(RemoveSnapshotsUpdate(snapshot_ids=snapshot_ids),),
    )


def stale_wap_branches(metadata: TableMetadata, older_than: dt.datetime) -> list[str]:
    """The wap_ branches (of unpublished WAP runs) whose head is older than ``older_than``."""
    from .release import BRANCH_PREFIX

    cutoff_ms = int(older_than.timestamp() * 1000)
    stale = []
    for name, ref in metadata.refs.items():
        snapshot = metadata.snapshot_by_id(ref.snapshot_id)
        old = snapshot is None or snapshot.timestamp_ms < cutoff_ms
        if ref.snapshot_ref_type == "branch" and name.startswith(BRANCH_PREFIX) and old:
            stale.append(name)
    return sorted(stale)


def _remove_branches(table: Table, names: list[str]) -> None:
    """Remove the branches in one commit, each asserted to be where it was when chosen."""
    table.catalog.commit_table(
        table,
        requirements=(AssertTableUUID(uuid=table.metadata.table_uuid),
                      *(AssertRefSnapshotId(ref=name, snapshot_id=table.metadata.refs[name].snapshot_id) for name in names)),
        updates=tuple(RemoveSnapshotRefUpdate(ref_name=name) for name in names),
    )


# --- orphan files --------------------------------------------------------------------------------

# Layout properties that move data or metadata files out of <location>/data and <location>/metadata:
# those places may hold other tables' files, so a table using them is not cleaned.
_CUSTOM_PATHS = (
    TableProperties.WRITE_DATA_PATH,
    TableProperties.WRITE_METADATA_PATH,
    "write.object-storage.path",
    "write.folder-storage.path",
)


def _key(uri: str) -> str:
    """A file's URI in one spelling, to compare a listed file with the paths metadata holds.

    Lexical only (no symlink resolution, no unquoting: PyIceberg writes a path as it is spelled), so
    a listed file's key is built from the table location's spelling, never from the listed path.
    """
    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a", "s3n"):
        return f"s3://{parsed.netloc}{posixpath.normpath(parsed.path or '/')}"
    if parsed.scheme == "file":
        return "file://" + posixpath.normpath(f"{parsed.netloc}{parsed.path}")
    if not parsed.scheme:
        return "file://" + posixpath.normpath(os.path.abspath(uri))
    return uri


@dataclass(frozen=True)
class StoredFile:
    key: str  # _key() of its URI
    path: str  # on the filesystem
    size: int
    mtime_ns: int | None


def list_stored_files(location: str) -> tuple[fs.FileSystem, list[StoredFile]]:
    """Every file under <location>/data and <location>/metadata, on local disk or S3."""
    location = location.rstrip("/")
    filesystem, base = objectstore.filesystem(location)
    base, prefix = base.rstrip("/"), _key(location)
    files = []
    for folder in ("data", "metadata"):
        selector = fs.FileSelector(f"{base}/{folder}", recursive=True, allow_not_found=True)
        for info in filesystem.get_file_info(selector):
            if info.type != fs.FileType.File:
                continue
            if not info.path.startswith(base + "/"):  # never guess which file a listed path is
                raise RuntimeError(f"listing {location} returned {info.path}, outside {base}")
            files.append(StoredFile(f"{prefix}/{info.path[len(base) + 1:]}", info.path, info.size or 0, info.mtime_ns))
    return filesystem, files


@dataclass
class References:
    """Keys of the files a table still needs (``required``: each must exist) or keeps if present."""

    required: set[str] = field(default_factory=set)
    optional: set[str] = field(default_factory=set)

    def __contains__(self, key: str) -> bool:
        return key in self.required or key in self.optional


def _live_paths(manifest: ManifestFile, io: FileIO) -> list[str]:
    # Live entries only (added, existing), as Iceberg's own orphan removal: a 'deleted' entry records
    # a file the snapshot no longer has; a retained snapshot that still has it lists it live.
    return [entry.data_file.file_path for entry in manifest.fetch_manifest_entry(io, discard_deleted=True)]


def references(
    metadata: TableMetadata,
    metadata_location: str,
    io: FileIO,
    *,
    snapshots: Iterable[Snapshot] | None = None,
    metadata_files: Iterable[str] | None = None,
    extra_manifests: Iterable[ManifestFile] = (),
    extra_files: Iterable[str] = (),
) -> References:
    """The files ``metadata`` refers to: the current metadata file, those its log lists, statistics
    files, and every manifest list, manifest, data and delete file of a snapshot it keeps.

    ``snapshots``, ``metadata_files`` and the extras describe a state to come (a dry run's).
    """
    snapshots = metadata.snapshots if snapshots is None else list(snapshots)
    if metadata_files is None:
        metadata_files = [entry.metadata_file for entry in metadata.metadata_log]
    refs = References(required={metadata_location})
    refs.optional.update(metadata_files)  # an old log entry may already be gone
    refs.optional.update(s.statistics_path for s in [*metadata.statistics, *metadata.partition_statistics])
    manifests: dict[str, ManifestFile] = {}
    for snapshot in snapshots:
        refs.required.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            manifests.setdefault(manifest.manifest_path, manifest)
    for manifest in extra_manifests:
        manifests.setdefault(manifest.manifest_path, manifest)
    refs.required.update(manifests)
    for paths in ExecutorFactory.get_or_create().map(lambda m: _live_paths(m, io), manifests.values()):
        refs.required.update(paths)
    refs.required.update(extra_files)
    refs.required = {_key(path) for path in refs.required}
    refs.optional = {_key(path) for path in refs.optional}
    return refs


@dataclass
class OrphanScan:
    found: int = 0  # files under data/ and metadata/ that nothing retained refers to
    removed: int = 0  # those older than the grace period, deleted (dry run: would be)
    removed_bytes: int = 0
    notes: list[str] = field(default_factory=list)


def _custom_layout(metadata: TableMetadata) -> str | None:
    location = metadata.location.rstrip("/")
    defaults = {_key(f"{location}/data"), _key(f"{location}/metadata")}
    for name in _CUSTOM_PATHS:
        value = metadata.properties.get(name)
        if value and _key(value.rstrip("/")) not in defaults:
            return f"orphan files not removed: {name}={value} may hold files of other tables"
    return None


def remove_orphans(
    metadata: TableMetadata,
    refs: References,
    listing: tuple[fs.FileSystem, list[StoredFile]],
    grace_hours: float,
    dry_run: bool = False,
) -> OrphanScan:
    """Delete the listed files ``refs`` does not hold that were last modified more than ``grace_hours`` ago.

    ``refs`` must come from metadata loaded before the listing: a commit after that load references
    only files it wrote itself (or files already referenced), which are younger than the grace period.
    Nothing is removed when a required file is not in the listing: the listing and the metadata
    disagree on where files are, so every file could look orphaned.
    """
    scan = OrphanScan()
    if note := _custom_layout(metadata):
        scan.notes.append(note)
        return scan
    filesystem, files = listing
    location = _key(metadata.location.rstrip("/"))
    listed = {f.key for f in files}
    missing = sorted(k for k in refs.required if k.startswith(location + "/") and k not in listed)
    if missing:
        scan.notes.append(
            f"orphan files not removed: {len(missing)} referenced file(s) are not in the listing of "
            f"{metadata.location}, e.g. {missing[0]}"
        )
        return scan
    cutoff_ns = time.time_ns() - int(grace_hours * 3600 * 1e9)
    orphans = [f for f in files if f.key not in refs]
    old = [f for f in orphans if f.mtime_ns is not None and f.mtime_ns < cutoff_ns]
    scan.found = len(orphans)
    if dry_run:
        scan.removed, scan.removed_bytes = len(old), sum(f.size for f in old)
        return scan

    def delete(stored: StoredFile) -> OSError | None:
        try:
            filesystem.delete_file(stored.path)
        except FileNotFoundError:
            return None  # removed meanwhile: nothing left to do
        except OSError as error:
            return error
        return None

    errors = []
    for stored, error in zip(old, ExecutorFactory.get_or_create().map(delete, old)):
        if error is None:
            scan.removed += 1
            scan.removed_bytes += stored.size
        else:
            errors.append(f"{stored.path}: {error}")
    if errors:
        scan.notes.append(f"{len(errors)} orphan file(s) could not be removed, e.g. {errors[0]}")
    return scan


def remove_orphan_files(table: Table, grace_hours: float, dry_run: bool = False) -> OrphanScan:
    """Orphan removal on its own, against the table as loaded (reload it right before)."""
    refs = references(table.metadata, table.metadata_location, table.io)
    return remove_orphans(table.metadata, refs, list_stored_files(table.metadata.location), grace_hours, dry_run)


def _predicted_references(
    table: Table, plan: dict[str, list[list[FileScanTask]]], expired: list[int]
) -> References:
    """What the table will refer to after the compaction of ``plan`` and the expiry of ``expired``.

    The compaction snapshot keeps the current snapshot's manifests that hold none of the rewritten
    files (PyIceberg's overwrite rewrites only the others) and every live file not rewritten; each
    commit moves the current metadata file into the log, which drops its oldest entries past
    write.metadata.previous-versions-max.
    """
    metadata = table.metadata
    gone = set(expired)
    snapshots = [s for s in metadata.snapshots if s.snapshot_id not in gone]
    extra_manifests: list[ManifestFile] = []
    extra_files: list[str] = []
    current = table.current_snapshot()
    if plan and current is not None:
        rewritten = {task.file.file_path for bins in plan.values() for files in bins for task in files}
        for manifest in current.manifests(table.io):
            paths = _live_paths(manifest, table.io)
            extra_files.extend(p for p in paths if p not in rewritten)
            if rewritten.isdisjoint(paths):
                extra_manifests.append(manifest)
    commits = (1 if plan else 0) + (1 if expired else 0)
    logged = [entry.metadata_file for entry in metadata.metadata_log] + [table.metadata_location]
    if commits:
        most = max(1, int(metadata.properties.get(TableProperties.METADATA_PREVIOUS_VERSIONS_MAX,
                                                  TableProperties.METADATA_PREVIOUS_VERSIONS_MAX_DEFAULT)))
        keep = most - commits + 1
        logged = logged[-keep:] if keep > 0 else []
    refs = references(metadata, table.metadata_location, table.io, snapshots=snapshots, metadata_files=logged,
                      extra_manifests=extra_manifests, extra_files=extra_files)
    if commits:  # the current metadata file is replaced: kept only while the log holds it
        refs.required.discard(_key(table.metadata_location))
    return refs


# --- one table -----------------------------------------------------------------------------------


def maintain_table(
    full_name: str,
    *,
    retention_hours: float,
    min_snapshots_to_keep: int,
    target_file_size_mb: float,
    orphan_grace_hours: float = DEFAULT_ORPHAN_GRACE_HOURS,
    dry_run: bool = False,
) -> TableReport:
    """Compact the table's small files, expire its old snapshots, then remove its orphan files older
    than ``orphan_grace_hours``; ``dry_run`` reports what would change."""
    if orphan_grace_hours < 0:
        raise ValueError(f"orphan_grace_hours must be 0 or more, not {orphan_grace_hours}")
    started = time.perf_counter()
    table = load_table(full_name)
    if table is None:
        raise LookupError(f"no Iceberg table {full_name}")
    target_bytes = int(target_file_size_mb * MB)
    before = _live_files(table)
    listing = list_stored_files(table.metadata.location)
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
        stored_files_before=len(listing[1]),
        stored_bytes_before=sum(f.size for f in listing[1]),
    )
    plan, report.notes = plan_compaction(table, target_bytes)
    report.compacted_partitions = len(plan)
    older_than = dt.datetime.now(dt.UTC) - dt.timedelta(hours=retention_hours)
    stale = stale_wap_branches(table.metadata, older_than)
    if stale:
        report.notes.append(f"{'would remove' if dry_run else 'removed'} the branch(es) of unpublished WAP run(s) "
                            f"older than the retention: {', '.join(stale)}")
        if not dry_run:
            _remove_branches(table, stale)
            table = load_table(full_name)

    if not dry_run and load_settings().engine == "spark":
        return _maintain_on_spark(table, report, listing, target_bytes, older_than, min_snapshots_to_keep,
                                  orphan_grace_hours, started)
    if dry_run:
        bins = [files for partition in plan.values() for files in partition]
        report.files_after -= sum(len(files) for files in bins) - len(bins)
        pending = 1 if plan else 0  # the compaction snapshot a real run would add first
        expired = snapshots_to_expire(table.metadata, older_than, min_snapshots_to_keep, pending_commits=pending)
        report.expired_snapshots = len(expired)
        report.snapshots_after += pending - len(expired)
        refs = _predicted_references(table, plan, expired)
        orphans = remove_orphans(table.metadata, refs, listing, orphan_grace_hours, dry_run=True)
        report.stored_files_after = report.stored_files_before - orphans.removed
        report.stored_bytes_after = report.stored_bytes_before - orphans.removed_bytes
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
            _expire(table, expired)
            table = load_table(full_name)
        after = _live_files(table)
        report.files_after = len(after)
        report.bytes_after = sum(t.file.file_size_in_bytes for t in after)
        report.snapshots_after = len(table.metadata.snapshots)
        report.expired_snapshots = len(expired)
        # References first, listing second (see remove_orphans).
        refs = references(table.metadata, table.metadata_location, table.io)
        listing = list_stored_files(table.metadata.location)
        orphans = remove_orphans(table.metadata, refs, listing, orphan_grace_hours)
        report.stored_files_after = len(listing[1]) - orphans.removed
        report.stored_bytes_after = sum(f.size for f in listing[1]) - orphans.removed_bytes
    report.orphans_found, report.orphans_removed = orphans.found, orphans.removed
    report.orphan_bytes_removed = orphans.removed_bytes
    report.notes.extend(orphans.notes)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _maintain_on_spark(table: Table, report: TableReport, listing, target_bytes: int, older_than: dt.datetime,
                       min_snapshots_to_keep: int, orphan_grace_hours: float, started: float) -> TableReport:
    """The same maintenance with Iceberg's procedures on the Spark engine (lakehouse.spark.maintenance);
    the report is measured the same way, from the table before and after."""
    from .engines import get_engine
    from .spark.maintenance import run_procedures

    settings = load_settings()
    full_name = report.table
    before_paths = {t.file.file_path for t in _live_files(table)}
    sizes = {stored.key: stored.size for stored in listing[1]}
    snapshots_before = {snapshot.snapshot_id for snapshot in table.metadata.snapshots}
    session = get_engine(settings).connect()
    try:
        done = run_procedures(session, settings.catalog_name, full_name, target_bytes=target_bytes, older_than=older_than,
                              min_snapshots_to_keep=min_snapshots_to_keep,
                              orphans_older_than=dt.datetime.now(dt.UTC) - dt.timedelta(hours=orphan_grace_hours))
    finally:
        session.close()
    table = load_table(full_name)
    after = _live_files(table)
    replaced = [t for t in after if t.file.file_path not in before_paths]
    report.compacted_partitions = len({_partition_label(table, t) for t in replaced})
    report.files_after = len(after)
    report.bytes_after = sum(t.file.file_size_in_bytes for t in after)
    report.snapshots_after = len(table.metadata.snapshots)
    report.expired_snapshots = len(snapshots_before - {snapshot.snapshot_id for snapshot in table.metadata.snapshots})
    orphans = [row["orphan_file_location"] for row in done["remove_orphan_files"]]
    report.orphans_found = report.orphans_removed = len(orphans)
    report.orphan_bytes_removed = sum(sizes.get(_key(path), 0) for path in orphans)
    stored = list_stored_files(table.metadata.location)[1]
    report.stored_files_after, report.stored_bytes_after = len(stored), sum(f.size for f in stored)
    report.notes.append("maintained on Spark with Iceberg's procedures")
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _maintain(full_name: str, settings: Maintenance, dry_run: bool, orphan_grace_hours: float | None) -> TableReport:
    return maintain_table(
        full_name,
        retention_hours=settings.snapshot_retention_hours,
        min_snapshots_to_keep=settings.min_snapshots_to_keep,
        target_file_size_mb=settings.target_file_size_mb,
        orphan_grace_hours=settings.orphan_grace_hours if orphan_grace_hours is None else orphan_grace_hours,
        dry_run=dry_run,
    )


def maintain_pipeline(
    pipeline_name: str, *, dry_run: bool = False, orphan_grace_hours: float | None = None
) -> list[TableReport]:
    """Maintain every existing table of the pipeline with the pipeline's maintenance settings
    (``orphan_grace_hours`` overrides the pipeline's)."""
    pipeline = get_pipeline(pipeline_name)
    names = [name for name in pipeline_tables(pipeline) if load_table(name) is not None]
    if pipeline.publish == "wap":
        # First the sets past what is kept lose their tags, so the expiry below can remove their snapshots.
        from .release import pipeline_release_tables, prune_published

        untagged = prune_published(pipeline_release_tables(pipeline.name), pipeline.maintenance.published_sets_to_keep,
                                   dry_run=dry_run)
        if untagged:
            logging.getLogger(__name__).info("%s: %s the published set(s) of %s", pipeline.name,
                                             "would untag" if dry_run else "untagged", ", ".join(untagged))
    return [_maintain(name, pipeline.maintenance, dry_run, orphan_grace_hours) for name in names]


def maintain_tables(
    names: list[str] | None = None, *, dry_run: bool = False, orphan_grace_hours: float | None = None
) -> list[TableReport]:
    """Maintain the named tables (default: every table), each with its pipeline's settings or the
    defaults (``orphan_grace_hours`` overrides them all)."""
    owners = {table: p.maintenance for p in discover_pipelines() for table in pipeline_tables(p)}
    return [
        _maintain(name, owners.get(name, Maintenance()), dry_run, orphan_grace_hours) for name in names or list_tables()
    ]


def _utc(timestamp_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC)


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
