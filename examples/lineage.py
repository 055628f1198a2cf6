"""Follow a model's lineage from its baseline through every improvement, with the cumulative
improvement at each step.

Shows ``HokusaiModelRegistry.get_model_lineage``: given any version of a family (here the newest
improvement), it returns the baseline first and then every improved version built on it, each
with its depth, parent, contributor, delta metrics and ``cumulative_improvement`` (the per-metric
sum of deltas from the baseline, plus ``total_improvements``).

Run it with ``python examples/lineage.py``; it writes to the embedded store under
``HOKUSAI_HOME`` (default ``./.hokusai``).
"""

from __future__ import annotations

from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from hokusai import HokusaiModelRegistry

CONTRIBUTORS = (
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
)


def main() -> None:
    features, target = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge(alpha=1.0).fit(features, target)

    registry = HokusaiModelRegistry()
    tip = registry.register_baseline(model, "regression", {"dataset": "diabetes"})
    # Each improvement names the version it improves and the deltas measured against it; the
    # registry records them as given (one model object stands in for retrained ones here).
    for contributor, r2_gain in zip(CONTRIBUTORS, (0.031, 0.012), strict=True):
        tip = registry.register_improved_model(
            model, tip["model_id"], {"r2": r2_gain, "mae": -1.5}, contributor
        )

    lineage = registry.get_model_lineage(tip["model_id"])
    print(f"lineage of {tip['model_id']}: {len(lineage)} versions")
    for entry in lineage:
        print(
            f"  depth {entry['depth']}  {entry['model_id']:<34} "
            f"parent={entry['parent_id']} contributor={entry['contributor']}"
        )
        print(f"           delta={entry['delta_metrics']}")
        print(f"           cumulative_improvement={entry['cumulative_improvement']}")


if __name__ == "__main__":
    main()
