"""SVG geometry drawn on the server: the lineage graph of a family and time plots.

The lineage of a family is a tree (every improvement is built on one version), so it is drawn
as a layered tree: one column per depth, and the first improvement of a version continues its
row while every further one opens a new row below the subtrees already drawn (smaller subtrees
first, so the edges that run down stay short). No two edges cross, a chain of 200 improvements
is one row and 200 improvements on one baseline are one column, one row per leaf: the graph
grows in one direction and scrolls, instead of knotting.

Only numbers and text come out of here; the templates write the SVG (Jinja escapes the text).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from hokusai.rest.ui.figures import Gain, gain_of, improvement, timestamp_ms

__all__ = [
    "Edge",
    "Lineage",
    "Node",
    "Plot",
    "Series",
    "cumulative_series",
    "lineage_graph",
    "time_plot",
]

NODE_WIDTH = 176
NODE_HEIGHT = 46
COLUMN_GAP = 176
ROW_PITCH = 80
MARGIN = 16
ELBOW = 18
"""How far right of its parent an edge turns down to a later child's row."""


@dataclass
class Node:
    model_id: str
    x: float
    y: float
    title: str
    subtitle: str
    serving: bool
    baseline: bool
    href: str


@dataclass
class Edge:
    path: str
    label_x: float
    label_y: float
    gain: Gain | None
    contributor: str | None
    contributor_short: str


@dataclass
class Lineage:
    width: float
    height: float
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


def short_address(address: str | None) -> str:
    """``0x5aAe…eAed``."""
    if not address:
        return ""
    return f"{address[:6]}…{address[-4:]}" if len(address) > 12 else address


def lineage_graph(
    entries: Sequence[Mapping[str, Any]], *, serving_alias: str, href: Any
) -> Lineage:
    """The layered tree of one or more families (``get_model_lineage`` entries).

    ``href(model_id)`` is each node's link.
    """
    by_id = {str(e["model_id"]): e for e in entries}
    children: dict[str, list[str]] = {}
    roots: list[str] = []
    for model_id, entry in by_id.items():
        parent = entry.get("parent_id")
        if parent and parent in by_id and parent != model_id:
            children.setdefault(str(parent), []).append(model_id)
        else:
            roots.append(model_id)
    # Smaller subtrees first: a later sibling's edge runs down past the rows of the earlier
    # siblings' subtrees, so this keeps those edges short (the row count, one per leaf, and the
    # width, one column per depth, do not depend on the order). Ties: registration order.
    leaves = _leaf_counts(roots, children)
    for kids in children.values():
        kids.sort(key=lambda k: (leaves[k], timestamp_ms(by_id[k]) or 0, k))
    place: dict[str, tuple[int, int]] = {}
    next_row = -1
    for root in roots:
        next_row += 1
        # Depth first, without recursion (a chain may be thousands deep): the first child
        # keeps its parent's row; a later child takes the next free row when it is reached,
        # after the subtrees of its elder siblings took theirs.
        stack: list[tuple[str, int, int | None]] = [(root, 0, next_row)]
        while stack:
            model_id, depth, maybe_row = stack.pop()
            if model_id in place:
                continue
            if maybe_row is None:
                next_row += 1
                maybe_row = next_row
            place[model_id] = (depth, maybe_row)
            kids = children.get(model_id, [])
            for kid in reversed(kids[1:]):
                stack.append((kid, depth + 1, None))
            if kids:
                stack.append((kids[0], depth + 1, maybe_row))
    max_depth = max((d for d, _ in place.values()), default=0)
    rows = max((r for _, r in place.values()), default=0) + 1
    lineage = Lineage(
        width=MARGIN * 2 + (max_depth + 1) * NODE_WIDTH + max_depth * COLUMN_GAP,
        height=MARGIN * 2 + rows * ROW_PITCH - (ROW_PITCH - NODE_HEIGHT),
    )

    def corner(model_id: str) -> tuple[float, float]:
        depth, row = place[model_id]
        return (MARGIN + depth * (NODE_WIDTH + COLUMN_GAP), MARGIN + row * ROW_PITCH)

    for model_id in sorted(place, key=lambda m: (place[m][1], place[m][0])):
        entry = by_id[model_id]
        x, y = corner(model_id)
        aliases = list(entry.get("aliases") or [])
        type_name = entry.get("model_type") or str(entry.get("model_name", ""))
        subtitle_parts = ["baseline" if entry.get("is_baseline") else "improved"]
        subtitle_parts += [f"@{a}" for a in aliases]
        lineage.nodes.append(
            Node(
                model_id=model_id,
                x=x,
                y=y,
                title=f"{type_name} v{entry.get('version', '')}",
                subtitle=" ".join(subtitle_parts),
                serving=serving_alias in aliases,
                baseline=bool(entry.get("is_baseline")),
                href=href(model_id),
            )
        )
        parent = entry.get("parent_id")
        if parent and parent in place and parent != model_id:
            px, py = corner(str(parent))
            start_x, start_y = px + NODE_WIDTH, py + NODE_HEIGHT / 2
            end_y = y + NODE_HEIGHT / 2
            if start_y == end_y:
                path = f"M{start_x:.0f},{start_y:.0f} H{x:.0f}"
            else:
                turn = start_x + ELBOW
                path = f"M{start_x:.0f},{start_y:.0f} H{turn:.0f} V{end_y:.0f} H{x:.0f}"
            lineage.edges.append(
                Edge(
                    path=path,
                    label_x=x - (COLUMN_GAP - ELBOW) / 2,
                    label_y=end_y,
                    gain=gain_of(entry),
                    contributor=entry.get("contributor"),
                    contributor_short=short_address(entry.get("contributor")),
                )
            )
    return lineage


def _leaf_counts(roots: list[str], children: Mapping[str, list[str]]) -> dict[str, int]:
    """How many leaves each version's subtree has (iterative: chains may be thousands deep)."""
    counts: dict[str, int] = {}
    stack: list[tuple[str, bool]] = [(root, False) for root in roots]
    while stack:
        node, expanded = stack.pop()
        kids = children.get(node, [])
        if expanded or not kids:
            counts[node] = sum(counts.get(k, 0) for k in kids) or 1
            continue
        stack.append((node, True))
        stack.extend((kid, False) for kid in kids if kid not in counts)
    return counts


@dataclass
class Series:
    name: str
    css: str
    points: list[tuple[float, float]]
    """(ms since the epoch, value)."""
    step: bool = True


@dataclass
class PlottedSeries:
    name: str
    css: str
    path: str
    dots: list[tuple[float, float, str]]


@dataclass
class Plot:
    width: int
    height: int
    left: int
    top: int
    inner_width: int
    inner_height: int
    series: list[PlottedSeries]
    x_ticks: list[tuple[float, str, str]]
    """(x, label, text-anchor)"""
    y_ticks: list[tuple[float, str]]
    y_label: str
    empty: bool


def time_plot(
    series: Sequence[Series], *, y_label: str, width: int = 720, height: int = 260
) -> Plot:
    """Series over time on shared axes: steps (the value holds until the next point) or
    straight lines, each point a dot with its time and value for the tooltip."""
    left, top, right, bottom = 64, 12, 16, 36
    inner_w, inner_h = width - left - right, height - top - bottom
    points = [p for s in series for p in s.points]
    plot = Plot(width, height, left, top, inner_w, inner_h, [], [], [], y_label, not points)
    if not points:
        return plot
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    if t1 == t0:
        t0, t1 = t0 - 60_000, t1 + 60_000
    v0, v1 = min(0.0, *(p[1] for p in points)), max(0.0, *(p[1] for p in points))
    if v1 == v0:
        v1 = v0 + 1.0
    y_step = _nice_step((v1 - v0) / 4)
    v0, v1 = math.floor(v0 / y_step) * y_step, math.ceil(v1 / y_step) * y_step

    def sx(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * inner_w

    def sy(v: float) -> float:
        return top + inner_h - (v - v0) / (v1 - v0) * inner_h

    for s in series:
        ordered = sorted(s.points)
        if not ordered:
            continue
        commands = [f"M{sx(ordered[0][0]):.1f},{sy(ordered[0][1]):.1f}"]
        for _before, (tb, vb) in itertools.pairwise(ordered):
            if s.step:
                commands.append(f"H{sx(tb):.1f} V{sy(vb):.1f}")
            else:
                commands.append(f"L{sx(tb):.1f},{sy(vb):.1f}")
        dots = [(sx(t), sy(v), f"{_when(t)}: {v:+.4g}") for t, v in ordered]
        plot.series.append(PlottedSeries(s.name, s.css, " ".join(commands), dots))
    plot.y_ticks = [(sy(v), f"{v:+.4g}" if v else "0") for v in _range(v0, v1, y_step)]
    span = t1 - t0
    pattern = (
        "%H:%M:%S" if span < 3_600_000 else "%m-%d %H:%M" if span < 172_800_000 else "%Y-%m-%d"
    )
    ticks = _linspace(t0, t1, 5)
    plot.x_ticks = [
        (
            sx(t),
            _format(t, pattern),
            "start" if i == 0 else "end" if i == len(ticks) - 1 else "middle",
        )
        for i, t in enumerate(ticks)
    ]
    return plot


def cumulative_series(
    entries: Sequence[Mapping[str, Any]],
) -> tuple[str | None, list[Series]]:
    """For a family: the metric most of its improvements claimed, and the cumulative claimed
    improvement of that metric (positive when better, whatever its direction) from the baseline
    to each version over time — plus the cumulative verified improvement (in the metric's
    units) when any version was verified."""
    counts: dict[str, int] = {}
    for entry in entries:
        for name in entry.get("delta_metrics") or {}:
            counts[name] = counts.get(name, 0) + 1
    verified_any = any(isinstance(e.get("verification"), Mapping) for e in entries)
    metric = max(sorted(counts), key=lambda m: counts[m]) if counts else None
    claimed: list[tuple[float, float]] = []
    verified: list[tuple[float, float]] = []
    by_id = {str(e["model_id"]): e for e in entries}
    verified_total: dict[str, float] = {}
    for entry in entries:  # baseline first, then breadth-first: parents come before children
        moment = timestamp_ms(entry)
        if moment is None:
            continue
        if metric is not None:
            cumulative = entry.get("cumulative_improvement") or {}
            claimed.append((moment, improvement(metric, cumulative.get(metric, 0.0))))
        if verified_any:
            parent = entry.get("parent_id")
            base = verified_total.get(str(parent), 0.0) if parent in by_id else 0.0
            gain = gain_of(entry)
            own = gain.value if gain is not None and gain.verified and gain.accepted else 0.0
            verified_total[str(entry["model_id"])] = base + own
            verified.append((moment, base + own))
    result = []
    if claimed:
        result.append(Series(f"claimed {metric}", "claimed", _running_best(claimed)))
    if verified:
        result.append(Series("verified (accepted)", "verified", _running_best(verified)))
    return metric, result


def _running_best(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The best cumulative improvement reached by each moment."""
    best: float | None = None
    result = []
    for moment, value in sorted(points):
        best = value if best is None else max(best, value)
        result.append((moment, best))
    return result


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    magnitude: float = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _range(start: float, stop: float, step: float) -> list[float]:
    count = round((stop - start) / step)
    return [round(start + i * step, 12) for i in range(count + 1)]


def _linspace(start: float, stop: float, count: int) -> list[float]:
    return [start + (stop - start) * i / (count - 1) for i in range(count)]


def _when(ms: float) -> str:
    return _format(ms, "%Y-%m-%d %H:%M:%S UTC")


def _format(ms: float, pattern: str) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime(pattern)
