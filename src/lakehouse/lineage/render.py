"""The lineage graph for people: a text tree for the terminal (rich) and a drawing (SVG, or HTML around it).

The drawing is laid out here, without graphviz: layers left to right (each node one layer after the
latest of its inputs, a source pulled next to its first reader), edges that skip layers routed through
placeholder points, the order within a layer improved by barycenter sweeps, then boxes (datasets:
rectangles colored by layer; jobs: rounded, bordered by the state of their latest run) and arrows as
smooth curves. Hovering a dataset shows its identity, columns, checks and maintenance.
"""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from rich.markup import escape as markup
from rich.tree import Tree

from .graph import Dataset, DatasetKey, Job, JobKey, LineageGraph

# --- text tree -----------------------------------------------------------------------------------

STATE_STYLE = {"COMPLETE": "green", "FAIL": "red", "ABORT": "red", "START": "yellow"}


def _checks(dataset: Dataset) -> str:
    if not dataset.assertions:
        return ""
    failed = sum(1 for ok in dataset.assertions.values() if not ok)
    total = len(dataset.assertions)
    return f"[red]✗ {failed}/{total} checks failed[/red]" if failed else f"[green]✓ {total} checks[/green]"


def dataset_text(dataset: Dataset, root: bool = False) -> str:
    parts = []
    if dataset.columns:
        parts.append(f"{len(dataset.columns)} cols")
    if checks := _checks(dataset):
        parts.append(checks)
    if dataset.maintained_by:
        parts.append("⟲ " + ", ".join(markup(n) for _, n in sorted(dataset.maintained_by)) if root else "⟲")
    if root and dataset.version:
        parts.append(f"snapshot {dataset.version}")
    name = f"[bold]{markup(dataset.label)}[/bold]" if root else f"[cyan]{markup(dataset.label)}[/cyan]"
    namespace = f" [dim]{markup(dataset.namespace)}[/dim]" if root else ""
    return name + namespace + (f" [dim]· {' · '.join(parts)}[/dim]" if parts else "")


def job_text(job: Job, arrow: str) -> str:
    style = STATE_STYLE.get(job.state, "white")
    return f"{arrow} [magenta]{markup(job.name)}[/magenta] [{style}]{job.state.lower()}[/{style}]"


def _grow(tree: Tree, graph: LineageGraph, key: DatasetKey, direction: str, seen: set, depth: int) -> None:
    jobs = graph.writers(key) if direction == "up" else graph.readers(key)
    for job in jobs:
        branch = tree.add(job_text(job, "◀" if direction == "up" else "▶"))
        if job.key in seen:
            branch.add("[dim]… shown above[/dim]")
            continue
        seen.add(job.key)
        for nxt in sorted(job.inputs if direction == "up" else job.outputs, key=lambda k: graph.datasets[k].label):
            node = branch.add(dataset_text(graph.datasets[nxt]))
            if depth > 1:
                _grow(node, graph, nxt, direction, seen, depth - 1)


def _column_label(column: tuple[DatasetKey, str], graph: LineageGraph) -> str:
    (namespace, name), field = column
    dataset = graph.datasets.get((namespace, name))
    return f"{dataset.label if dataset else name}.{field}"


def text_tree(graph: LineageGraph, table: str | None, depth: int = 50, columns: bool = True) -> Tree:
    """Upstream and downstream of ``table`` (or every dataset without a writer, downstream, for None)."""
    if table is None:
        tree = Tree(f"[bold]lineage[/bold] [dim]({graph.summary()['jobs']} jobs, {graph.summary()['datasets']} datasets)[/dim]")
        seen: set = set()
        roots = [d for d in graph.datasets.values() if not graph.writers(d.key) and graph.readers(d.key)]
        for dataset in sorted(roots, key=lambda d: d.label):
            _grow(tree.add(dataset_text(dataset)), graph, dataset.key, "down", seen, depth)
        return tree
    dataset = graph.find(table)
    tree = Tree(dataset_text(dataset, root=True))
    _grow(tree.add("[bold]upstream[/bold]"), graph, dataset.key, "up", set(), depth)
    _grow(tree.add("[bold]downstream[/bold]"), graph, dataset.key, "down", set(), depth)
    if dataset.checked_by:
        tree.add("[bold]checked by[/bold] " + ", ".join(markup(n) for _, n in sorted(dataset.checked_by)))
    if columns and dataset.columns:
        branch = tree.add("[bold]columns[/bold] [dim](← from; ⇐ origin)[/dim]")
        for name, kind in dataset.columns:
            parents = sorted(graph.column_parents.get((dataset.key, name), set()))
            label = f"{markup(name)} [dim]{markup(str(kind or ''))}[/dim]"
            if parents:
                label += " ← " + ", ".join(markup(_column_label(p, graph)) for p in parents)
                origins = sorted(graph.column_origins((dataset.key, name)))
                if origins != parents:
                    label += " [dim]⇐ " + ", ".join(markup(_column_label(o, graph)) for o in origins) + "[/dim]"
            else:
                label += " [dim](no known source)[/dim]"
            branch.add(label)
    return tree


# --- drawing -------------------------------------------------------------------------------------

FONT = 12
CHAR = 7.3  # width of a monospace character at FONT px
GAP_X, GAP_Y = 56, 18
DATASET_H, JOB_H = 42, 30
MAX_CHARS = 48
LAYER_FILL = {"raw": "#e3f2fd", "staging": "#e8f5e9", "marts": "#fff8e1", "quarantine": "#fce4ec", "audit": "#ede7f6"}
OTHER_FILL = "#f1f3f4"
STATE_STROKE = {"COMPLETE": "#2e7d32", "FAIL": "#c62828", "ABORT": "#c62828", "START": "#f9a825"}


@dataclass
class _Box:
    key: tuple
    kind: str  # dataset | job | point
    layer: int = 0
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0


def _short(text: str, limit: int = MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short_left(text: str, limit: int = MAX_CHARS) -> str:
    """A path or a dotted name keeps its end, the part that tells it apart."""
    return text if len(text) <= limit else "…" + text[len(text) - limit + 1:]


def _dataset_label(dataset: Dataset) -> str:
    return _short_left(dataset.name if dataset.namespace in ("file", "generator") else dataset.label)


def _job_label(job: Job) -> str:
    return job.name.split(".", 1)[1] if "." in job.name else job.name


def _nodes(graph: LineageGraph, table: str | None) -> tuple[set[DatasetKey], dict[JobKey, set[DatasetKey]], DatasetKey | None]:
    """The datasets drawn, each job drawn with the datasets it is linked to in the drawing, and the root.
    Around a table: its upstream jobs linked within the upstream side, its downstream jobs within the
    downstream side (a quality job downstream reads upstream tables too: that is noted, not drawn)."""
    if table is None:
        datasets, jobs = graph.neighbourhood(None)
        return datasets, {k: graph.jobs[k].inputs | graph.jobs[k].outputs for k in jobs}, None
    root = graph.find(table).key
    up_d, up_j = graph.reach(root, "up")
    down_d, down_j = graph.reach(root, "down")
    links = {k: up_d for k in up_j}
    for k in down_j:
        links[k] = links.get(k, set()) | down_d
    return up_d | down_d, links, root


def _layers(nodes: list[tuple], edges: list[tuple[tuple, tuple]]) -> dict[tuple, int]:
    succ, pred = defaultdict(list), defaultdict(list)
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    # Depth-first order, ignoring edges that close a cycle.
    order, state = [], {}
    dag_edges = set()

    def visit(node):
        state[node] = 1
        for nxt in succ[node]:
            if state.get(nxt) == 1:
                continue  # a back edge: would make a cycle
            dag_edges.add((node, nxt))
            if nxt not in state:
                visit(nxt)
        state[node] = 2
        order.append(node)

    for node in sorted(nodes, key=str):
        if node not in state:
            visit(node)
    order.reverse()
    layer = {}
    for node in order:
        layer[node] = max((layer[p] + 1 for p in pred[node] if (p, node) in dag_edges and p in layer), default=0)
    for node in reversed(order):  # a source sits right before its earliest reader
        if not any((p, node) in dag_edges for p in pred[node]):
            after = [layer[s] for s in succ[node] if (node, s) in dag_edges]
            if after:
                layer[node] = min(after) - 1
    return layer


def layout(
    graph: LineageGraph, table: str | None = None
) -> tuple[dict[tuple, _Box], list[list[tuple]], DatasetKey | None, float, float]:
    """Boxes with positions, edges as lists of box keys (with placeholder points), the root, width, height."""
    datasets, jobs, root = _nodes(graph, table)
    nodes = [("d", *k) for k in datasets] + [("j", *k) for k in jobs]
    edges = []
    for key, linked in jobs.items():
        job = graph.jobs[key]
        edges += [(("d", *d), ("j", *key)) for d in job.inputs if d in linked]
        edges += [(("j", *key), ("d", *d)) for d in job.outputs if d in linked]
    layer = _layers(nodes, edges)
    boxes: dict[tuple, _Box] = {}
    for node in nodes:
        if node[0] == "d":
            dataset = graph.datasets[node[1:]]
            label = max(len(_dataset_label(dataset)), len(_subtitle(dataset)))
            boxes[node] = _Box(node, "dataset", layer[node], w=label * CHAR + 20, h=DATASET_H)
        else:
            job = graph.jobs[node[1:]]
            hidden = len(job.inputs - jobs[node[1:]]) + len(job.outputs - jobs[node[1:]])
            height = JOB_H + (12 if hidden else 0)
            boxes[node] = _Box(node, "job", layer[node], w=len(_short(_job_label(job))) * CHAR + 24, h=height)
    # Edges that skip layers go through a placeholder point per layer crossed.
    paths = []
    for a, b in edges:
        la, lb = boxes[a].layer, boxes[b].layer
        path = [a]
        if lb > la + 1:
            for step in range(la + 1, lb):
                point = ("p", a, b, step)
                boxes[point] = _Box(point, "point", step, w=0, h=10)
                path.append(point)
        path.append(b)
        paths.append(path)
    by_layer: dict[int, list[tuple]] = defaultdict(list)
    for key, box in sorted(boxes.items(), key=lambda kv: str(kv[0])):
        by_layer[box.layer].append(key)
    neighbours_left, neighbours_right = defaultdict(list), defaultdict(list)
    for path in paths:
        for u, v in zip(path, path[1:]):
            neighbours_right[u].append(v)
            neighbours_left[v].append(u)
    layers = sorted(by_layer)
    for _ in range(8):  # barycenter sweeps, left to right then right to left
        for sweep, neighbours in ((layers[1:], neighbours_left), (list(reversed(layers[:-1])), neighbours_right)):
            for index in sweep:
                position = {k: i for layer_keys in by_layer.values() for i, k in enumerate(layer_keys)}
                by_layer[index].sort(key=lambda k: (sum(position[n] for n in neighbours[k]) / len(neighbours[k])
                                                     if neighbours[k] else position[k]))
    # Coordinates: layers left to right, each centered vertically.
    x = 20.0
    heights = {i: sum(boxes[k].h for k in keys) + GAP_Y * (len(keys) - 1) for i, keys in by_layer.items()}
    height = max(heights.values(), default=0) + 40
    for index in layers:
        keys = by_layer[index]
        width = max(boxes[k].w for k in keys)
        y = 20 + (height - 40 - heights[index]) / 2
        for key in keys:
            box = boxes[key]
            box.x = x + (width - box.w) / 2 if box.kind != "point" else x + width / 2
            box.y = y
            y += box.h + GAP_Y
        x += width + GAP_X
    return boxes, paths, root, x - GAP_X + 20, height


def _subtitle(dataset: Dataset) -> str:
    parts = [dataset.namespace if not dataset.namespace.startswith("iceberg://") else dataset.namespace.split("://", 1)[1]]
    if dataset.columns:
        parts.append(f"{len(dataset.columns)} cols")
    if dataset.assertions:
        failed = sum(1 for ok in dataset.assertions.values() if not ok)
        parts.append(f"✗ {failed}/{len(dataset.assertions)}" if failed else f"✓ {len(dataset.assertions)}")
    if dataset.maintained_by:
        parts.append("⟲")
    return _short(" · ".join(parts))


def _fill(dataset: Dataset) -> str:
    if not dataset.namespace.startswith("iceberg://"):
        return OTHER_FILL
    return LAYER_FILL.get(dataset.name.split(".", 1)[0], OTHER_FILL)


def _tooltip(dataset: Dataset) -> str:
    lines = [f"{dataset.namespace} {dataset.name}"]
    if dataset.version:
        lines.append(f"snapshot {dataset.version}")
    lines += [f"  {name} {kind or ''}".rstrip() for name, kind in dataset.columns]
    if dataset.assertions:
        failed = [name for name, ok in dataset.assertions.items() if not ok]
        lines.append(f"checks: {len(dataset.assertions)}" + (f", failed: {', '.join(failed)}" if failed else ", all passed"))
    if dataset.maintained_by:
        lines.append("maintained by " + ", ".join(n for _, n in sorted(dataset.maintained_by)))
    return "\n".join(lines)


def _curve(points: list[tuple[float, float]]) -> str:
    d = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        dx = (x1 - x0) / 2
        d += f" C{x0 + dx:.1f},{y0:.1f} {x1 - dx:.1f},{y1:.1f} {x1:.1f},{y1:.1f}"
    return d


def svg(graph: LineageGraph, table: str | None = None, title: str | None = None) -> str:
    """The lineage of ``table`` (or of everything) as a standalone SVG document."""
    boxes, paths, root, width, height = layout(graph, table)
    top = 34 if title else 0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height + top:.0f}" '
        f'viewBox="0 0 {width:.0f} {height + top:.0f}" font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace" '
        f'font-size="{FONT}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#607d8b"/></marker></defs>',
        f'<rect x="0" y="0" width="{width:.0f}" height="{height + top:.0f}" fill="#ffffff"/>',
    ]
    if title:
        out.append(f'<text x="20" y="24" font-size="15" font-weight="bold" fill="#263238">{escape(title)}</text>')
    out.append(f'<g transform="translate(0,{top})">')
    out.append('<g class="edges" fill="none" stroke="#90a4ae" stroke-width="1.3">')
    for path in paths:
        points = []
        for i, key in enumerate(path):
            box = boxes[key]
            if box.kind == "point":
                points.append((box.x, box.y + box.h / 2))
            elif i == 0:
                points.append((box.x + box.w, box.y + box.h / 2))
            else:
                points.append((box.x - 2, box.y + box.h / 2))
        out.append(f'<path d="{_curve(points)}" marker-end="url(#arrow)"/>')
    out.append("</g>")
    for key, box in boxes.items():
        if box.kind == "dataset":
            dataset = graph.datasets[key[1:]]
            is_root = key[1:] == root
            out.append(
                f'<g class="node dataset" data-namespace={quoteattr(dataset.namespace)} data-name={quoteattr(dataset.name)}>'
            )
            out.append(f"<title>{escape(_tooltip(dataset))}</title>")
            out.append(f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="3" '
                       f'fill="{_fill(dataset)}" stroke="{"#263238" if is_root else "#90a4ae"}" '
                       f'stroke-width="{2.5 if is_root else 1}"/>')
            out.append(f'<text x="{box.x + 10:.1f}" y="{box.y + 17:.1f}" font-weight="bold" fill="#263238">'
                       f"{escape(_dataset_label(dataset))}</text>")
            out.append(f'<text x="{box.x + 10:.1f}" y="{box.y + 33:.1f}" font-size="10.5" fill="#546e7a">'
                       f"{escape(_subtitle(dataset))}</text>")
            out.append("</g>")
        elif box.kind == "job":
            job = graph.jobs[key[1:]]
            out.append(f'<g class="node job" data-namespace={quoteattr(job.namespace)} data-name={quoteattr(job.name)} '
                       f'data-state={quoteattr(job.state)}>')
            out.append(f"<title>{escape(f'{job.namespace} {job.name}: {job.state.lower()}')}</title>")
            out.append(f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="14" '
                       f'fill="#ffffff" stroke="{STATE_STROKE.get(job.state, "#607d8b")}" stroke-width="1.6"/>')
            out.append(f'<text x="{box.x + 12:.1f}" y="{box.y + 19:.1f}" fill="#4a148c">{escape(_short(_job_label(job)))}</text>')
            hidden = box.h > JOB_H
            if hidden:
                shown = {path[0][1:] for path in paths if path[-1] == key} | {path[-1][1:] for path in paths if path[0] == key}
                more_in, more_out = len(job.inputs - shown), len(job.outputs - shown)
                note = " ".join(p for p in (f"+{more_in} in" if more_in else "", f"+{more_out} out" if more_out else "") if p)
                out.append(f'<text x="{box.x + 12:.1f}" y="{box.y + 33:.1f}" font-size="10" fill="#78909c">{escape(note)}</text>')
            out.append("</g>")
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


def html_page(svg_text: str, title: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#263238}"
        ".legend span{display:inline-block;margin-right:16px}.svg{overflow:auto;border:1px solid #cfd8dc}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>"
        "<p class=\"legend\"><span>rectangles: datasets (Iceberg tables by layer, files, sources)</span>"
        "<span>rounded: tasks (green: complete, red: failed)</span><span>✓ checks passed · ⟲ maintained</span>"
        "<span>hover a dataset for its columns</span></p>"
        f"<div class=\"svg\">{svg_text}</div></body></html>\n"
    )


def write_drawing(graph: LineageGraph, table: str | None, path: Path) -> Path:
    """Write the SVG, or an HTML page around it when ``path`` ends in .html/.htm; returns the path."""
    title = f"lineage of {graph.find(table).label}" if table else "lineage"
    drawing = svg(graph, table, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".html", ".htm"):
        path.write_text(html_page(drawing, title), encoding="utf-8")
    else:
        path.write_text(drawing, encoding="utf-8")
    return path
