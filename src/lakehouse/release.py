"""Write-audit-publish releases and instant rollback, with no data copied.

A pipeline declaring ``publish: wap`` builds on an Iceberg branch named for the run
(``wap_<run id>``, see branch_for_run): the DAG sets LAKEHOUSE_WRITE_BRANCH on its dbt tasks, the dbt
plugin commits every model to that branch and reads every table that has it at the branch head, so
the run's downstream models and every dbt test audit exactly what the run built. Main, what every
other reader sees, does not move. Only when every dbt task succeeded does ``publish`` run: main of
every table the project built moves to its branch head (a pointer move: no file is read or written
but one metadata file per table), each table gets the tag ``published-<run id>`` (also on the tables
the run did not change, so the tags describe the whole set) and loses the branch. A failed test
means no publish: main is exactly as it was and the branch stays for inspection, until maintenance
removes ``wap_`` branches older than the snapshot retention (lakehouse.maintenance).

``rollback`` sets main of every table of a published set back to that set's tag, the same way.

What a reader sees while a publish or rollback commits
------------------------------------------------------
PyIceberg's SQL catalog commits one table per call. Here, for a SQL catalog, every table's new
metadata file is written first, then ONE database transaction swaps every table's pointer
(``iceberg_tables.metadata_location``), each checked against the pointer the change was staged on.
If any table moved meanwhile, nothing is swapped (ReleaseConflict) and readers never saw a thing. So:

- A reader that resolves its tables through the catalog in one query (every DuckDB connection of the
  platform: lakehouse.compute.register_catalog, `lakehouse query`, the dbt plugin) sees every mart
  of the old set or every mart of the new one, never a mix.
- A reader that loads tables one at a time (PyIceberg's load_table per table, Spark resolving each
  table as a query reaches it) can load one mart before the swap and the next one after it: it then
  sees the old version of the first and the new version of the second. The window is the time
  between its two loads; the swap itself is one SQLite/PostgreSQL commit (milliseconds).
- A query already running keeps reading the files of the snapshots it resolved: those are never
  rewritten (publish copies nothing) and snapshot expiry keeps every branch and tag head.
- A REST (non-SQL) catalog: its pointers are not ours to swap in one transaction, so each table is
  committed on its own, one after the other (publish_report.atomic is False): during those calls a
  reader of two marts can see one new and one old.

New tables: a table a WAP run creates exists on main at once, empty (Iceberg writes a branch only
of a table with a snapshot), until the publish moves main to the run's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import IcebergTables, SqlCatalog
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import ancestors_of
from pyiceberg.table.update import (
    AssertRefSnapshotId,
    AssertTableUUID,
    RemoveSnapshotRefUpdate,
    SetSnapshotRefUpdate,
    TableRequirement,
    TableUpdate,
)
from sqlalchemy import update
from sqlalchemy.orm import Session

from .catalog import get_catalog, load_table
from .settings import ref_name

BRANCH_PREFIX = "wap_"
TAG_PREFIX = "published-"


class ReleaseError(RuntimeError):
    """A publish or rollback that cannot be done as asked; nothing was changed."""


class ReleaseConflict(ReleaseError):
    """A table moved between staging and the swap: no table was changed."""


def branch_for_run(run_id: str) -> str:
    """The branch a WAP run builds on (what LAKEHOUSE_WRITE_BRANCH=wap_<run id> becomes in settings)."""
    return ref_name(BRANCH_PREFIX + run_id)


def tag_for_run(run_id: str) -> str:
    return TAG_PREFIX + run_id


@dataclass
class Move:
    table: str
    before: int | None  # main's snapshot id before
    after: int  # main's snapshot id after (== before: only tagged)


@dataclass
class ReleaseReport:
    run_id: str
    moved: list[Move] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    atomic: bool = True  # every pointer swapped in one catalog transaction


@dataclass
class PublishedSet:
    run_id: str
    snapshots: dict[str, int]  # table -> snapshot id of its published-<run id> tag
    timestamp_ms: int  # the newest of those snapshots: the order sets were published in


# --- committing several tables together ----------------------------------------------------------


@dataclass
class _Change:
    table: Table
    requirements: tuple[TableRequirement, ...]
    updates: tuple[TableUpdate, ...]


def _commit_together(catalog: Catalog, changes: list[_Change]) -> bool:
    """Commit every change or none; True when it was one catalog transaction (a SQL catalog)."""
    if not changes:
        return True
    if not isinstance(catalog, SqlCatalog) or not catalog.engine.dialect.supports_sane_rowcount:
        for change in changes:  # one commit per table: see the module docstring
            catalog.commit_table(change.table, change.requirements, change.updates)
        return False
    staged = []
    for change in changes:
        # What SqlCatalog.commit_table does before its UPDATE: check the requirements against the
        # table as loaded, apply the updates, write the new metadata file (nobody points at it yet).
        new = catalog._update_and_stage_table(change.table, change.table.name(), change.requirements, change.updates)
        catalog._write_metadata(new.metadata, new.io, new.metadata_location)
        staged.append((change.table, new.metadata_location))
    with Session(catalog.engine) as session, session.begin():
        for table, new_location in staged:
            namespace = Catalog.namespace_to_string(Catalog.namespace_from(table.name()))
            name = Catalog.table_name_from(table.name())
            result = session.execute(
                update(IcebergTables)
                .where(
                    IcebergTables.catalog_name == catalog.name,
                    IcebergTables.table_namespace == namespace,
                    IcebergTables.table_name == name,
                    IcebergTables.metadata_location == table.metadata_location,
                )
                .values(metadata_location=new_location, previous_metadata_location=table.metadata_location)
            )
            if result.rowcount < 1:
                # Leaving the block rolls back every pointer already swapped in it.
                raise ReleaseConflict(f"{namespace}.{name} was committed to while the release was staged; "
                                      "no table was changed: run it again")
    return True


def _main_id(table: Table) -> int | None:
    snapshot = table.current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def _ref(table: Table, name: str, kind: str) -> int | None:
    ref = table.metadata.refs.get(name)
    return ref.snapshot_id if ref is not None and ref.snapshot_ref_type == kind else None


def _set_ref(name: str, snapshot_id: int, kind: str) -> SetSnapshotRefUpdate:
    return SetSnapshotRefUpdate(ref_name=name, type=kind, snapshot_id=snapshot_id)


# --- publish -------------------------------------------------------------------------------------


def publish(tables: list[str], run_id: str, *, branch: str | None = None, catalog: Catalog | None = None) -> ReleaseReport:
    """Move main of every table that has the run's branch to the branch head, tag every table
    ``published-<run id>`` and remove the branch: in one catalog transaction (module docstring)."""
    catalog = catalog or get_catalog()
    branch = branch or branch_for_run(run_id)
    tag = tag_for_run(run_id)
    report = ReleaseReport(run_id)
    changes = []
    for full_name in sorted(set(tables)):
        table = load_table(full_name, catalog)
        if table is None:
            report.notes.append(f"{full_name}: no such table, nothing to publish")
            continue
        main, head, tagged = _main_id(table), _ref(table, branch, SnapshotRefType.BRANCH), _ref(table, tag, SnapshotRefType.TAG)
        if head is None and tagged is not None and tagged == main:
            continue  # published already (a retried publish task)
        if branch in table.metadata.refs and head is None:
            raise ReleaseError(f"{full_name}: {branch!r} is a tag, not the run's branch")
        target = head if head is not None else main
        if target is None:
            report.notes.append(f"{full_name}: no snapshot on main or {branch}, nothing to tag")
            continue
        lineage = {s.snapshot_id for s in ancestors_of(table.snapshot_by_id(head), table.metadata)} if head else set()
        if main is not None and head is not None and main not in lineage:
            raise ReleaseError(f"{full_name}: main moved since {branch} was started (snapshot {main} is not an "
                               f"ancestor of the branch head {head}); nothing was published: run the pipeline again")
        requirements: tuple[TableRequirement, ...] = (
            AssertTableUUID(uuid=table.metadata.table_uuid),
            AssertRefSnapshotId(ref=MAIN_BRANCH, snapshot_id=main),
        )
        updates: list[TableUpdate] = [_set_ref(tag, target, SnapshotRefType.TAG)]
        if head is not None:
            updates = [_set_ref(MAIN_BRANCH, head, SnapshotRefType.BRANCH), *updates, RemoveSnapshotRefUpdate(ref_name=branch)]
        changes.append(_Change(table, requirements, tuple(updates)))
        report.moved.append(Move(full_name, main, target))
    report.atomic = _commit_together(catalog, changes)
    return report


# --- published sets and rollback -----------------------------------------------------------------


def published_sets(tables: list[str], catalog: Catalog | None = None) -> list[PublishedSet]:
    """Every published set among ``tables`` (their published-* tags), oldest first."""
    catalog = catalog or get_catalog()
    sets: dict[str, PublishedSet] = {}
    for full_name in sorted(set(tables)):
        table = load_table(full_name, catalog)
        if table is None:
            continue
        for name, ref in table.metadata.refs.items():
            if ref.snapshot_ref_type != SnapshotRefType.TAG or not name.startswith(TAG_PREFIX):
                continue
            run_id = name.removeprefix(TAG_PREFIX)
            found = sets.setdefault(run_id, PublishedSet(run_id, {}, 0))
            found.snapshots[full_name] = ref.snapshot_id
            snapshot = table.snapshot_by_id(ref.snapshot_id)
            found.timestamp_ms = max(found.timestamp_ms, snapshot.timestamp_ms if snapshot else 0)
    return sorted(sets.values(), key=lambda s: (s.timestamp_ms, s.run_id))


def current_set(tables: list[str], catalog: Catalog | None = None) -> PublishedSet | None:
    """The newest published set main of every one of its tables is at, or None."""
    catalog = catalog or get_catalog()
    mains = {name: _main_id(table) for name in tables if (table := load_table(name, catalog)) is not None}
    for candidate in reversed(published_sets(tables, catalog)):
        if all(mains.get(name) == snapshot_id for name, snapshot_id in candidate.snapshots.items()):
            return candidate
    return None


def rollback(tables: list[str], to_run_id: str | None = None, catalog: Catalog | None = None) -> ReleaseReport:
    """Set main of every table of a published set to its ``published-<run id>`` tag, in one catalog
    transaction, no data copied. Default: the set published before the current one."""
    catalog = catalog or get_catalog()
    sets = published_sets(tables, catalog)
    if not sets:
        raise ReleaseError("no published set to roll back to: nothing was ever published with `publish: wap`")
    if to_run_id is None:
        current = current_set(tables, catalog)
        if current is None:
            raise ReleaseError("main matches no published set (written since?); name one with --to: "
                               + ", ".join(s.run_id for s in sets))
        index = [s.run_id for s in sets].index(current.run_id)
        if index == 0:
            raise ReleaseError(f"{current.run_id} is the first published set: there is none before it")
        target = sets[index - 1]
    else:
        target = next((s for s in sets if s.run_id == to_run_id), None)
        if target is None:
            raise ReleaseError(f"run {to_run_id!r} has no published set; published runs: "
                               + ", ".join(s.run_id for s in sets))
    report = ReleaseReport(target.run_id)
    changes = []
    for full_name in sorted(set(tables)):
        table = load_table(full_name, catalog)
        if table is None:
            continue
        snapshot_id = target.snapshots.get(full_name)
        if snapshot_id is None:
            report.notes.append(f"{full_name}: not in the set of {target.run_id} (newer?), left as it is")
            continue
        main = _main_id(table)
        report.moved.append(Move(full_name, main, snapshot_id))
        if main == snapshot_id:
            continue
        requirements = (AssertTableUUID(uuid=table.metadata.table_uuid), AssertRefSnapshotId(ref=MAIN_BRANCH, snapshot_id=main))
        changes.append(_Change(table, requirements, (_set_ref(MAIN_BRANCH, snapshot_id, SnapshotRefType.BRANCH),)))
    report.atomic = _commit_together(catalog, changes)
    return report


# --- a pipeline's release ------------------------------------------------------------------------


def pipeline_release_tables(pipeline_name: str, manifest: dict | None = None) -> list[str]:
    """The tables a pipeline's dbt project builds: what a release moves (raw tables are ingest's, on main)."""
    from .dbt_artifacts import built_tables, load_manifest

    return built_tables(manifest if manifest is not None else load_manifest(pipeline_name))


def publish_run(pipeline_name: str, run_id: str) -> ReleaseReport:
    """The DAG's publish task of a `publish: wap` pipeline: publish the run's branch, then keep the
    run's manifest as slim CI's production state (what readers now see)."""
    from .dbt_artifacts import read_json, run_dir
    from .slim_ci import keep_production_state

    manifest_file = run_dir(pipeline_name, run_id) / "manifest.json"
    manifest = read_json(manifest_file) if manifest_file.exists() else None
    report = publish(pipeline_release_tables(pipeline_name, manifest), run_id)
    if manifest is not None:
        keep_production_state(pipeline_name, run_id, manifest_file)
    return report


def rollback_pipeline(pipeline_name: str, to_run_id: str | None = None) -> ReleaseReport:
    """`lakehouse rollback PIPELINE [--to RUN_ID]`: rollback() over the tables the pipeline's dbt project builds."""
    from .pipeline import get_pipeline

    pipeline = get_pipeline(pipeline_name)
    tables = pipeline_release_tables(pipeline.name)
    if not tables:
        raise ReleaseError(f"{pipeline.name}: its dbt project has not been parsed on this home yet, so its tables "
                           "are unknown; run the pipeline (or `lakehouse run`) first")
    return rollback(tables, to_run_id)


def prune_published(tables: list[str], keep: int, *, dry_run: bool = False, catalog: Catalog | None = None) -> list[str]:
    """Untag all but the newest ``keep`` published sets (never the current one); the run ids untagged.

    A tag keeps its snapshot, and so its files and its rows, from expiring: without this, storage grows
    with every publish and a row deleted for good (an erased customer) stays readable in old sets."""
    from pyiceberg.table.update import AssertRefSnapshotId, AssertTableUUID, RemoveSnapshotRefUpdate

    catalog = catalog or get_catalog()
    sets = published_sets(tables, catalog)
    current = current_set(tables, catalog)
    kept = {s.run_id for s in sets[-keep:]} if keep > 0 else set()
    dropped = [s for s in sets if s.run_id not in kept and (current is None or s.run_id != current.run_id)]
    if dry_run or not dropped:
        return [s.run_id for s in dropped]
    for full_name in sorted({name for s in dropped for name in s.snapshots}):
        table = load_table(full_name, catalog)
        names = [tag_for_run(s.run_id) for s in dropped if tag_for_run(s.run_id) in table.metadata.refs]
        if names:
            catalog.commit_table(table, requirements=(
                AssertTableUUID(uuid=table.metadata.table_uuid),
                *(AssertRefSnapshotId(ref=name, snapshot_id=table.metadata.refs[name].snapshot_id) for name in names)),
                updates=tuple(RemoveSnapshotRefUpdate(ref_name=name) for name in names))
    return [s.run_id for s in dropped]
