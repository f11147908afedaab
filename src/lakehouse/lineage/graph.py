"""The lineage graph of the lakehouse, built from the OpenLineage events file: jobs, datasets, columns.

Each job contributes the datasets of its latest run (the START, COMPLETE or FAIL events sharing that
run's id), so a model that was removed or changed its inputs stops showing its old edges after its next
run. Datasets carry the facets of their latest report (schema, version, assertions).

Three kinds of job are not links between datasets:

- in-place jobs: an output that is also an input of the same run and whose column lineage names only
  itself (table maintenance rewrites files, rows unchanged): recorded on the dataset as "maintained by",
- checks: jobs with inputs and no outputs (dbt tests, source freshness): recorded on the dataset as
  "checked by", with their latest assertions,
- jobs with no datasets at all (ephemeral dbt models, the DAG run itself): left out.

Column lineage comes from the ``columnLineage`` facets of outputs: (dataset, column) <- (dataset, column).
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DatasetKey = tuple[str, str]  # (namespace, name)
JobKey = tuple[str, str]
Column = tuple[DatasetKey, str]

TERMINAL = ("COMPLETE", "FAIL", "ABORT")


@dataclass
class Dataset:
    namespace: str
    name: str
    columns: list[tuple[str, str | None]] = field(default_factory=list)  # (name, type)
    version: str | None = None
    assertions: dict[str, bool] = field(default_factory=dict)  # latest result of each check
    maintained_by: set[JobKey] = field(default_factory=set)
    checked_by: set[JobKey] = field(default_factory=set)

    @property
    def key(self) -> DatasetKey:
        return self.namespace, self.name

    @property
    def label(self) -> str:
        """The name, with the namespace when it is not a lakehouse table (whose namespace is iceberg://...)."""
        if self.namespace.startswith("iceberg://"):
            return self.name
        if self.namespace == "file":
            return f"file:{self.name}"
        return f"{self.namespace}/{self.name.lstrip('/')}"


@dataclass
class Job:
    namespace: str
    name: str
    state: str = "START"  # of its latest run: START (still running, or killed), COMPLETE, FAIL, ABORT
    run_id: str = ""
    event_time: str = ""
    inputs: set[DatasetKey] = field(default_factory=set)  # links (in-place datasets and checks excluded)
    outputs: set[DatasetKey] = field(default_factory=set)
    job_type: str | None = None

    @property
    def key(self) -> JobKey:
        return self.namespace, self.name

    @property
    def label(self) -> str:
        return self.name


def read_events(path: Path) -> Iterator[dict]:
    """The run events of a JSON-lines file (one event per line); an unreadable line (one being written
    right now, or cut by a crash) is skipped."""
    try:
        handle = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("job"), dict) and isinstance(event.get("run"), dict):
                yield event


def _lineage_sources(facets: dict) -> set[DatasetKey]:
    """Every dataset a columnLineage facet names (field level and dataset level)."""
    facet = (facets or {}).get("columnLineage") or {}
    sources = {(f.get("namespace"), f.get("name")) for spec in (facet.get("fields") or {}).values()
               for f in spec.get("inputFields") or []}
    sources |= {(f.get("namespace"), f.get("name")) for f in facet.get("dataset") or []}
    return sources


class LineageGraph:
    def __init__(self) -> None:
        self.datasets: dict[DatasetKey, Dataset] = {}
        self.jobs: dict[JobKey, Job] = {}
        self.column_parents: dict[Column, set[Column]] = defaultdict(set)
        self.events = 0

    # --- building --------------------------------------------------------------------------------

    @classmethod
    def from_events(cls, events: Iterable[dict]) -> LineageGraph:
        runs: dict[str, list[dict]] = defaultdict(list)
        first_seen: dict[str, str] = {}  # run id -> its earliest event time
        job_runs: dict[JobKey, set[str]] = defaultdict(set)
        graph = cls()
        for event in events:
            graph.events += 1
            job, run_id = event["job"], str(event["run"].get("runId") or "")
            key = (str(job.get("namespace") or ""), str(job.get("name") or ""))
            time = str(event.get("eventTime") or "")
            runs[run_id].append(event)
            first_seen[run_id] = min(first_seen.get(run_id, time), time)
            job_runs[key].add(run_id)
        for key, run_ids in job_runs.items():
            latest = max(run_ids, key=lambda r: (first_seen[r], r))
            graph._add_run(key, sorted(runs[latest], key=lambda e: str(e.get("eventTime") or "")))
        return graph

    @classmethod
    def from_file(cls, path: Path) -> LineageGraph:
        return cls.from_events(read_events(path))

    def _dataset(self, item: dict) -> Dataset:
        key = (str(item.get("namespace") or ""), str(item.get("name") or ""))
        dataset = self.datasets.get(key)
        if dataset is None:
            dataset = self.datasets[key] = Dataset(*key)
        facets = item.get("facets") or {}
        schema = facets.get("schema") or {}
        if schema.get("fields"):
            dataset.columns = [(str(f.get("name")), f.get("type")) for f in schema["fields"]]
        version = (facets.get("version") or {}).get("datasetVersion")
        if version:
            dataset.version = str(version)
        return dataset

    def _add_run(self, key: JobKey, events: list[dict]) -> None:
        job = Job(*key)
        inputs: dict[DatasetKey, dict] = {}
        outputs: dict[DatasetKey, dict] = {}
        for event in events:
            job.run_id = str(event["run"].get("runId") or "")
            job.event_time = str(event.get("eventTime") or job.event_time)
            if event.get("eventType") in TERMINAL or job.state == "START":
                job.state = str(event.get("eventType") or job.state)
            job_type = ((event["job"].get("facets") or {}).get("jobType") or {}).get("jobType")
            job.job_type = job_type or job.job_type
            for item in event.get("inputs") or []:
                dataset = self._dataset(item)
                inputs[dataset.key] = {**inputs.get(dataset.key, {}), **item}
            for item in event.get("outputs") or []:
                dataset = self._dataset(item)
                outputs[dataset.key] = {**outputs.get(dataset.key, {}), **item}
        if not inputs and not outputs:
            return  # nothing to draw: an ephemeral model, the DAG run itself
        in_place = {k for k, item in outputs.items() if k in inputs and _lineage_sources(item.get("facets") or {}) == {k}}
        for k in in_place:
            self.datasets[k].maintained_by.add(key)
        links_out = {k: item for k, item in outputs.items() if k not in in_place}
        links_in = {k: item for k, item in inputs.items() if k not in in_place}
        for k, item in links_in.items():
            if links_out:
                break  # assertions are recorded from the checks themselves (a job that writes may relay them)
            assertions = ((item.get("inputFacets") or {}).get("dataQualityAssertions")
                          or (item.get("facets") or {}).get("dataQualityAssertions") or {}).get("assertions") or []
            for assertion in assertions:
                name = str(assertion.get("assertion"))
                if assertion.get("column"):
                    name = f"{name}({assertion['column']})"
                self.datasets[k].assertions[name] = bool(assertion.get("success"))
        if not links_out:
            for k in links_in:
                self.datasets[k].checked_by.add(key)  # a check: it reads, it writes nothing
            return
        job.inputs, job.outputs = set(links_in), set(links_out)
        self.jobs[key] = job
        for k, item in links_out.items():
            facet = (item.get("facets") or {}).get("columnLineage") or {}
            for column, spec in (facet.get("fields") or {}).items():
                for source in spec.get("inputFields") or []:
                    parent = ((str(source.get("namespace")), str(source.get("name"))), str(source.get("field")))
                    self.column_parents[(k, str(column))].add(parent)

    # --- queries ---------------------------------------------------------------------------------

    def writers(self, dataset: DatasetKey) -> list[Job]:
        return sorted((j for j in self.jobs.values() if dataset in j.outputs), key=lambda j: j.name)

    def readers(self, dataset: DatasetKey) -> list[Job]:
        return sorted((j for j in self.jobs.values() if dataset in j.inputs), key=lambda j: j.name)

    def find(self, text: str) -> Dataset:
        """The dataset named ``text``: exact name, 'namespace/name' or label, else a unique suffix match."""
        for dataset in self.datasets.values():
            if text in (dataset.name, dataset.label, f"{dataset.namespace}/{dataset.name}"):
                return dataset
        matches = [d for d in self.datasets.values() if d.name.endswith(text) or d.label.endswith(text)]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(sorted(d.label for d in self.datasets.values())[:30])
        what = "is ambiguous" if matches else "is not in the lineage"
        raise LookupError(f"{text!r} {what}; datasets: {known or 'none (no events yet: run a pipeline)'}")

    def reach(self, start: DatasetKey, direction: str) -> tuple[set[DatasetKey], set[JobKey]]:
        """Datasets and jobs upstream ('up') or downstream ('down') of ``start`` (itself included)."""
        datasets, jobs = {start}, set()
        queue = deque([start])
        while queue:
            current = queue.popleft()
            for job in (self.writers(current) if direction == "up" else self.readers(current)):
                if job.key in jobs:
                    continue
                jobs.add(job.key)
                for nxt in (job.inputs if direction == "up" else job.outputs):
                    if nxt not in datasets:
                        datasets.add(nxt)
                        queue.append(nxt)
        return datasets, jobs

    def neighbourhood(self, start: DatasetKey | None) -> tuple[set[DatasetKey], set[JobKey]]:
        """Everything upstream and downstream of ``start``, or the whole graph."""
        if start is None:
            used = {k for j in self.jobs.values() for k in j.inputs | j.outputs}
            return used | {k for k, d in self.datasets.items() if d.maintained_by or d.checked_by}, set(self.jobs)
        up_d, up_j = self.reach(start, "up")
        down_d, down_j = self.reach(start, "down")
        return up_d | down_d, up_j | down_j

    def column_origins(self, column: Column, _seen: set | None = None) -> set[Column]:
        """The furthest known upstream columns of ``column`` (itself when nothing feeds it)."""
        seen = _seen if _seen is not None else set()
        if column in seen:
            return set()
        seen.add(column)
        parents = self.column_parents.get(column)
        if not parents:
            return {column}
        return {origin for parent in parents for origin in self.column_origins(parent, seen)}

    def summary(self) -> dict[str, Any]:
        return {"events": self.events, "jobs": len(self.jobs), "datasets": len(self.datasets),
                "column_edges": sum(len(v) for v in self.column_parents.values())}
