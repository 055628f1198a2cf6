"""``hokusai quickstart``: the 2-minute tour on the embedded default.

Trains a baseline on part of a dataset that ships with scikit-learn, then an improved model on
all of it (as if a contributor had supplied the rest), registers both, and shows what was
recorded: uuids, the lineage and the contributor's models.
"""

from __future__ import annotations

from typing import Any

import typer

from hokusai.cli._common import console, format_metrics, registry

SAMPLE_CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def _train(features: Any, target: Any, *, seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=25, max_depth=6, random_state=seed).fit(
        features, target
    )


def _score(model: Any, features: Any, target: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    return {
        "accuracy": float(accuracy_score(target, model.predict(features))),
        "f1": float(f1_score(target, model.predict(features))),
        "auroc": float(roc_auc_score(target, model.predict_proba(features)[:, 1])),
    }


def quickstart(
    ctx: typer.Context,
    model_type: str = typer.Option("quickstart_cancer", help="Model type to register under."),
    contributor: str = typer.Option(SAMPLE_CONTRIBUTOR, help="Sample contributor address."),
) -> None:
    """Train, register a baseline and an improved model, and show what was recorded."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    with console.status("Loading data and training…"):
        data = load_breast_cancer(as_frame=True)
        x_train, x_test, y_train, y_test = train_test_split(
            data.data, data.target, test_size=0.3, random_state=7, stratify=data.target
        )
        # The baseline sees a small slice; the "contributed" data completes the training set.
        baseline = _train(x_train.iloc[:60], y_train.iloc[:60], seed=1)
        improved = _train(x_train, y_train, seed=1)
        baseline_metrics = _score(baseline, x_test, y_test)
        improved_metrics = _score(improved, x_test, y_test)

    reg = registry(ctx)
    console.print(f"MLflow store: [bold]{reg.tracking_uri}[/bold]")
    with console.status("Registering the baseline…"):
        base = reg.register_baseline(
            baseline,
            model_type,
            {"dataset": "sklearn.breast_cancer", "rows": 60, "features": list(data.data.columns)},
            input_example=x_test.head(3),
            metrics=baseline_metrics,
        )
    console.print(f"baseline  [bold]{base['model_id']}[/bold]  uuid {base['model_uuid']}")
    deltas = {k: improved_metrics[k] - baseline_metrics[k] for k in baseline_metrics}
    with console.status("Registering the improved model…"):
        better = reg.register_improved_model(
            improved,
            base["model_id"],
            deltas,
            contributor,
            input_example=x_test.head(3),
            metadata={"contributed_rows": len(x_train) - 60},
            metrics=improved_metrics,
        )
    console.print(
        f"improved  [bold]{better['model_id']}[/bold]  uuid {better['model_uuid']}  "
        f"by {better['contributor']}  ({format_metrics(deltas)})"
    )

    from hokusai.cli.models import lineage

    lineage(ctx, better["model_id"], as_json=False)
    console.print(
        "\nNext: [bold]hokusai models get "
        f"{better['model_uuid']}[/bold]  ·  [bold]hokusai contributors models {contributor}[/bold]"
    )
