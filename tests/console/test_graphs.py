"""The lineage layout and the figures, on families built in memory: readable at 200 versions
(no overlapping nodes, no crossing edges, growing in one direction), gains verified before
claimed."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from hokusai.rest.ui.figures import gain_of, leaderboard
from hokusai.rest.ui.graphs import (
    COLUMN_GAP,
    NODE_HEIGHT,
    NODE_WIDTH,
    ROW_PITCH,
    cumulative_series,
    lineage_graph,
    time_plot,
)

A = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
B = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"


def entry(number: int, parent: int | None, **extra: Any) -> dict[str, Any]:
    return {
        "model_id": f"m/{number}",
        "model_name": "m",
        "version": str(number),
        "model_type": "cls",
        "is_baseline": parent is None,
        "parent_id": None if parent is None else f"m/{parent}",
        "contributor": None if parent is None else (A if number % 2 else B),
        "delta_metrics": {} if parent is None else {"accuracy": 0.001},
        "aliases": [],
        "created_at": 1_700_000_000_000 + number * 1000,
        **extra,
    }


def family(parents: list[int | None]) -> list[dict[str, Any]]:
    return [entry(i, p) for i, p in enumerate(parents)]


def graph(entries: list[dict[str, Any]], serving: str = "champion") -> Any:
    return lineage_graph(entries, serving_alias=serving, href=lambda m: f"/ui/models/{m}")


def segments(path: str) -> list[tuple[float, float, float, float]]:
    """The straight segments of an edge path of M, H and V commands."""
    x = y = 0.0
    found = []
    for command, a, b in re.findall(r"([MHV])(-?[\d.]+)(?:,(-?[\d.]+))?", path):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "H":
            found.append((x, y, float(a), y))
            x = float(a)
        else:
            found.append((x, y, x, float(a)))
            y = float(a)
    return found


def check_readable(layout: Any) -> None:
    boxes = [(n.x, n.y, n.x + NODE_WIDTH, n.y + NODE_HEIGHT) for n in layout.nodes]
    assert len({(b[0], b[1]) for b in boxes}) == len(boxes), "two nodes in one place"
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 and x1 <= layout.width and 0 <= y0 and y1 <= layout.height
    for edge in layout.edges:
        for sx0, sy0, sx1, sy1 in segments(edge.path):
            for x0, y0, x1, y1 in boxes:
                # No edge runs through a node (touching its border at the ends is fine).
                inside_x = min(sx0, sx1) < x1 - 1 and max(sx0, sx1) > x0 + 1
                inside_y = min(sy0, sy1) < y1 - 1 and max(sy0, sy1) > y0 + 1
                assert not (inside_x and inside_y), (edge.path, (x0, y0))
    horizontal = []
    vertical = []
    for edge in layout.edges:
        for seg in segments(edge.path):
            (horizontal if seg[1] == seg[3] else vertical).append(seg)
    for hx0, hy, hx1, _ in horizontal:
        for vx, vy0, _, vy1 in vertical:
            crosses = min(hx0, hx1) < vx < max(hx0, hx1) and min(vy0, vy1) < hy < max(vy0, vy1)
            assert not crosses, "two edges cross"


def test_a_chain_of_200_is_one_row():
    layout = graph(family([None, *range(199)]))
    assert len(layout.nodes) == 200 and len(layout.edges) == 199
    assert {n.y for n in layout.nodes} == {layout.nodes[0].y}
    assert layout.height < 2 * ROW_PITCH
    assert layout.width == pytest.approx(32 + 200 * NODE_WIDTH + 199 * COLUMN_GAP)
    check_readable(layout)


def test_200_improvements_of_one_baseline_are_one_column():
    layout = graph(family([None] + [0] * 199))
    assert {n.x for n in layout.nodes} == {16, 16 + NODE_WIDTH + COLUMN_GAP}
    assert layout.height == pytest.approx(32 + 198 * ROW_PITCH + NODE_HEIGHT)  # 199 rows
    check_readable(layout)


@pytest.mark.parametrize("seed", range(5))
def test_a_random_tree_of_200_has_no_overlap_and_no_crossing(seed: int):
    rng = random.Random(seed)
    parents: list[int | None] = [None] + [rng.randrange(i) for i in range(1, 200)]
    layout = graph(family(parents))
    assert len(layout.nodes) == 200
    check_readable(layout)
    # Rows are never wasted: each row holds at least one version.
    assert len({n.y for n in layout.nodes}) == (layout.height - 32 - NODE_HEIGHT) / ROW_PITCH + 1


def test_the_serving_alias_and_edge_labels():
    entries = family([None, 0, 1])
    entries[2]["aliases"] = ["champion", "latest"]
    layout = graph(entries)
    serving = [n for n in layout.nodes if n.serving]
    assert [n.model_id for n in serving] == ["m/2"]
    assert "@champion" in serving[0].subtitle
    labels = {e.contributor: e.gain.label for e in layout.edges if e.gain}
    assert labels == {A: "accuracy +0.0010", B: "accuracy +0.0010"}
    assert {e.contributor_short for e in layout.edges} == {"0x5aAe…eAed", "0xfB69…d359"}


def test_a_verified_gain_wins_over_the_claim():
    claimed = entry(1, 0, delta_metrics={"accuracy": 0.03, "f1": 0.01})
    assert (gain_of(claimed).kind, gain_of(claimed).bps, gain_of(claimed).metric) == (
        "claimed",
        300,
        "accuracy",
    )
    verified = dict(
        claimed,
        verification={
            "verification_id": "ver_1",
            "benchmark": "iris",
            "metric": "accuracy",
            "delta_bps": 120,
            "improvement_bps": 120,
            "accepted": True,
            "claim_status": "not_reproduced",
            "mlflow_run_id": "r",
            "verified_at": "2026-12-01T00:00:00Z",
        },
    )
    gain = gain_of(verified)
    assert (gain.kind, gain.bps, gain.value) == ("verified", 120, 0.012)
    rejected = dict(verified, verification={**verified["verification"], "accepted": False})
    assert gain_of(rejected).kind == "rejected"
    assert gain_of(entry(0, None)) is None


def test_the_leaderboard_ranks_verified_before_claimed():
    big_claim = entry(1, 0, contributor=A, delta_metrics={"accuracy": 0.5})
    small_verified = entry(
        2,
        0,
        contributor=B,
        verification={"metric": "accuracy", "improvement_bps": 10, "accepted": True},
    )
    rejected = entry(
        3,
        0,
        contributor=B,
        verification={"metric": "accuracy", "improvement_bps": 900, "accepted": False},
    )
    ranked = leaderboard([big_claim, small_verified, rejected])
    assert [s.address for s in ranked] == [B, A]
    assert (ranked[0].verified_bps, ranked[0].verified_versions, ranked[0].versions) == (10, 2, 2)
    assert (ranked[1].claimed_bps, ranked[1].verified_bps) == (5000, 0)


def test_the_cumulative_plot_follows_the_best_version_over_time():
    entries = family([None, 0, 1, 0])
    for e, total in zip(entries, (0.0, 0.001, 0.002, 0.001), strict=True):
        e["cumulative_improvement"] = {"accuracy": total}
    metric, series = cumulative_series(entries)
    assert metric == "accuracy"
    assert [s.name for s in series] == ["claimed accuracy"]
    assert [v for _, v in series[0].points] == [0.0, 0.001, 0.002, 0.002]
    plot = time_plot(series, y_label="cumulative accuracy")
    assert not plot.empty and len(plot.series[0].dots) == 4
    assert plot.y_ticks[0][1] == "0"
    assert time_plot([], y_label="x").empty
