"""`lakehouse lineage [TABLE] [--out PATH]`: the lineage of a table from the events file, in the terminal and drawn."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console

from ..settings import load_settings
from .graph import LineageGraph
from .render import text_tree, write_drawing


def default_drawing(table: str | None) -> Path:
    """<home>/lineage/<table>.svg (lineage.svg for the whole graph)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", table) if table else "lineage"
    return load_settings().lineage_file.parent / f"{name}.svg"


def show_lineage(table: str | None, out: Path | None = None, depth: int = 50, console: Console | None = None) -> Path:
    """Print the tree of ``table`` (upstream, downstream, columns) and write its drawing; returns the drawing's path."""
    settings = load_settings()
    console = console or Console()
    events = settings.lineage_file
    graph = LineageGraph.from_file(events)
    if not graph.events:
        hint = " (LAKEHOUSE_LINEAGE=off)" if settings.lineage == "off" else ""
        raise LookupError(f"no lineage events in {events}{hint}: run a pipeline first (lakehouse run)")
    console.print(text_tree(graph, table, depth=depth))
    path = write_drawing(graph, table, Path(out) if out else default_drawing(table))
    summary = graph.summary()
    console.print(f"[dim]{summary['events']} events, {summary['jobs']} jobs, {summary['datasets']} datasets, "
                  f"{summary['column_edges']} column links from {events}[/dim]")
    console.print(f"drawing: {path}")
    return path
