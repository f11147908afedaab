"""`lakehouse ci PIPELINE`: build what the working tree changed, beside production, reading the rest where it is.

Production state. When a run's dbt nodes all succeed, its manifest is kept as the pipeline's
production state (``<dbt target dir>/production/<pipeline>/manifest.json``, with ``run.json`` naming
the run): the project as it was when the tables readers see were built.

A CI build then:
1. selects ``state:modified+`` against that manifest (dbt's own state comparison: a model whose SQL,
   config, contract or macros changed, a new one, and everything downstream of them);
2. builds them, with their tests, into an isolated environment: its own Iceberg catalog and
   warehouse under ``<home>/ci/<pipeline>/`` (emptied first), so production is never written;
3. defers every unselected parent to production (``--defer``): the build's DuckDB reads production's
   tables through views over production's own metadata and data files (lakehouse.compute.
   register_catalog with LAKEHOUSE_DEFER_CATALOG_URI), so nothing is copied. A deferred table is a
   view to dbt: an incremental model that CI selects is built in full in the CI catalog, never merged
   into production's table;
4. reports what it built and why (new, which part changed, or downstream of which change) and each
   test's status. It fails (exit 1) when a build or a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from .settings import load_settings

PRODUCTION = "production"
# What dbt's state:modified looks at, by the name its sub-selectors use; checked one by one for the report.
CHANGE_KINDS = ("body", "configs", "contract", "relation", "persisted_descriptions", "macros")


class CiError(RuntimeError):
    pass


def production_dir(pipeline_name: str) -> Path:
    return load_settings().dbt_target_dir / PRODUCTION / pipeline_name


def keep_production_state(pipeline_name: str, run_id: str, manifest: Path) -> Path:
    """Make ``manifest`` (of a run whose dbt nodes all succeeded) the pipeline's production state."""
    folder = production_dir(pipeline_name)
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".manifest.")
    os.close(handle)
    shutil.copyfile(manifest, temporary)
    os.replace(temporary, folder / "manifest.json")  # whole, or the previous one
    (folder / "run.json").write_text(json.dumps({"run_id": run_id}))
    return folder


@dataclass
class Built:
    unique_id: str
    reason: str  # "new", "changed: body, configs", or "downstream of model.x.y"
    status: str


@dataclass
class CiReport:
    pipeline: str
    production_run: str | None
    environment: Path
    built: list[Built] = field(default_factory=list)  # models, seeds, snapshots
    tests: dict[str, str] = field(default_factory=dict)  # unique id -> status
    deferred: list[str] = field(default_factory=list)  # production tables read, not built

    @property
    def success(self) -> bool:
        return all(item.status == "success" for item in self.built) and all(
            status in ("pass", "warn") for status in self.tests.values())


def _ls(project_dir: Path, selector: str, state: Path) -> list[str]:
    from .testing import dbt

    result = dbt(project_dir, "ls", "--select", selector, "--state", str(state), "--output", "json",
                 "--output-keys", "unique_id", "--quiet")
    if not result.success:
        raise CiError(f"dbt ls --select {selector} failed: {result.exception}")
    return sorted(json.loads(line)["unique_id"] for line in result.result or [])


@contextlib.contextmanager
def _environment(environment: Path):
    """The CI catalog and warehouse for this process, production deferred to; restored afterwards."""
    from .catalog import _catalog_for

    settings = load_settings()
    values = {
        "LAKEHOUSE_CATALOG_URI": f"sqlite:///{environment / 'catalog.db'}",
        "LAKEHOUSE_WAREHOUSE": (environment / "warehouse").as_uri(),
        "LAKEHOUSE_DEFER_CATALOG_URI": settings.catalog_uri,
        "LAKEHOUSE_DEFER_WAREHOUSE": settings.warehouse,
    }
    with mock.patch.dict(os.environ, values):  # restored as it was, whatever happens
        _catalog_for.cache_clear()
        try:
            yield
        finally:
            _catalog_for.cache_clear()


def _reasons(modified: list[str], selected: list[str], changes: dict[str, set[str]], production: dict[str, Any],
             parents: dict[str, list[str]]) -> dict[str, str]:
    """Why each selected node is built: new, what changed in it, or which changes it is downstream of."""
    reasons = {}
    for unique_id in modified:
        if unique_id not in production.get("nodes", {}):
            reasons[unique_id] = "new"
        else:
            changed = [kind for kind in CHANGE_KINDS if unique_id in changes[kind]]
            reasons[unique_id] = "changed: " + (", ".join(changed) or "modified")
    for unique_id in selected:
        if unique_id not in reasons:
            upstream = _ancestors(unique_id, parents) & set(modified)
            reasons[unique_id] = "downstream of " + ", ".join(sorted(upstream))
    return reasons


def _ancestors(unique_id: str, parents: dict[str, list[str]]) -> set[str]:
    seen, stack = set(), [unique_id]
    while stack:
        for parent in parents.get(stack.pop(), []):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def run_ci(pipeline_name: str) -> CiReport:
    """Build ``state:modified+`` of the pipeline's working-tree dbt project against production; see above."""
    from . import dbt_artifacts
    from .pipeline import get_pipeline
    from .testing import dbt

    pipeline = get_pipeline(pipeline_name)
    project_dir = pipeline.dbt_project_dir
    state = production_dir(pipeline_name)
    if not (state / "manifest.json").exists():
        raise CiError(f"{pipeline_name} has no production state yet ({state / 'manifest.json'}): run the pipeline "
                      "once; the manifest of its last run whose dbt nodes all succeeded is kept as production")
    production = dbt_artifacts.read_json(state / "manifest.json")
    production_run = json.loads((state / "run.json").read_text())["run_id"] if (state / "run.json").exists() else None
    environment = load_settings().home / "ci" / pipeline_name
    shutil.rmtree(environment, ignore_errors=True)
    environment.mkdir(parents=True)
    report = CiReport(pipeline_name, production_run, environment)
    with _environment(environment):
        selected = _ls(project_dir, "state:modified+", state)
        modified = _ls(project_dir, "state:modified", state)
        changes = {kind: set(_ls(project_dir, f"state:modified.{kind}", state)) for kind in CHANGE_KINDS}
        current = dbt_artifacts.read_json(project_dir / "target" / "manifest.json")
        parents = {uid: list(node.get("depends_on", {}).get("nodes", [])) for uid, node in current.get("nodes", {}).items()}
        reasons = _reasons(modified, selected, changes, production, parents)
        if selected:
            result = dbt(project_dir, "build", "--select", "state:modified+", "--defer", "--state", str(state))
            if result.exception:
                raise CiError(f"dbt build failed to run: {result.exception}")
            for item in result.result or []:
                unique_id = item.node.unique_id
                if item.node.resource_type in ("model", "seed", "snapshot"):
                    report.built.append(Built(unique_id, reasons.get(unique_id, "selected"), str(item.status)))
                elif item.node.resource_type in ("test", "unit_test"):
                    report.tests[unique_id] = str(item.status)
        built_tables = {dbt_artifacts.node_table(current["nodes"][b.unique_id]) for b in report.built}
        report.deferred = sorted(
            table for uid, node in current.get("nodes", {}).items()
            if node.get("resource_type") in ("model", "seed", "snapshot")
            for table in [dbt_artifacts.node_table(node, strict=False)]
            if table and table not in built_tables and any(uid in parents.get(b.unique_id, []) for b in report.built))
    return report
