"""A small verification world on a real store: a benchmark of held-out rows and a baseline and
an improved model (trained on more rows) registered through the registry.

Breast cancer rows, eight features named ``x0``…``x7``: the baseline sees 40 training rows, the
candidate 300, the benchmark is the 229 rows neither saw (accuracy, with an ROC AUC guardrail).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import CONTRIBUTOR

BENCHMARK = "cancer-holdout"


@dataclass(frozen=True)
class World:
    benchmark: str
    baseline_id: str
    candidate_id: str
    contributor: str


def _frames() -> tuple[Any, Any, Any]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    features = data.data.iloc[:, :8].copy()
    features.columns = [f"x{i}" for i in range(8)]
    shuffled = features.sample(frac=1.0, random_state=0)
    target = data.target.loc[shuffled.index]
    return shuffled, target, data


def build_world(
    registry: Any,
    benchmarks: Any,
    folder: Path,
    *,
    model_type: str = "cancer",
    contributor: str = CONTRIBUTOR,
    benchmark: str = BENCHMARK,
) -> World:
    from sklearn.linear_model import LogisticRegression

    features, target, _ = _frames()
    train_small, train_big = features.iloc[:40], features.iloc[:300]
    held_out = features.iloc[340:].copy()
    held_out["label"] = target.loc[held_out.index].to_numpy()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{benchmark}.csv"
    held_out.to_csv(path, index=False)
    benchmarks.add(benchmark, path, target="label", metric="accuracy", guardrails={"roc_auc": 0.05})

    base_model = LogisticRegression(max_iter=2000).fit(train_small, target.loc[train_small.index])
    better_model = LogisticRegression(max_iter=2000).fit(train_big, target.loc[train_big.index])
    base = registry.register_baseline(
        base_model, model_type, {"rows": 40}, input_example=train_small.head(3)
    )
    better = registry.register_improved_model(
        better_model,
        base["model_id"],
        {"accuracy": 0.02},
        contributor,
        input_example=train_big.head(3),
    )
    return World(benchmark, base["model_id"], better["model_id"], better["contributor"])


def more_candidates(registry: Any, world: World, count: int) -> list[str]:
    """``count`` more improved models on the world's baseline (trained on 100, 120, … rows)."""
    from sklearn.linear_model import LogisticRegression

    features, target, _ = _frames()
    found = []
    for n in range(count):
        rows = features.iloc[: 100 + 20 * n]
        model = LogisticRegression(max_iter=2000).fit(rows, target.loc[rows.index])
        registered = registry.register_improved_model(
            model,
            world.baseline_id,
            {"accuracy": 0.01},
            world.contributor,
            input_example=rows.head(3),
        )
        found.append(registered["model_id"])
    return found
