"""``hokusai quickstart``: the 2-minute tour on the embedded default.

Trains a baseline on part of a dataset that ships with scikit-learn, then an improved model on
all of it (as if a contributor had supplied the rest), registers both, and shows what was
recorded: uuids, the lineage and the contributor's models.
"""

from __future__ import annotations

from typing import Any

import typer

from hokusai.cli._common import console, format_metrics, registry
from hokusai.config import mask_secrets

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
    server: str | None = typer.Option(
        None, "--server", help="Register through this Hokusai API instead of the library."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", help="API key for --server (default: HOKUSAI_API_KEY)."
    ),
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

    if server is not None:
        _through_server(
            ctx,
            server,
            api_key,
            model_type,
            contributor,
            baseline=(baseline, baseline_metrics),
            improved=(improved, improved_metrics),
            example=x_test.head(3),
        )
        return
    reg = registry(ctx)
    console.print(f"MLflow store: [bold]{mask_secrets(reg.tracking_uri)}[/bold]")
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


def _through_server(
    ctx: typer.Context,
    server: str,
    api_key: str | None,
    model_type: str,
    contributor: str,
    *,
    baseline: tuple[Any, dict[str, float]],
    improved: tuple[Any, dict[str, float]],
    example: Any,
) -> None:
    """Log both models with MLflow (the server's store), then register them over HTTP."""
    import httpx
    import mlflow
    import mlflow.sklearn

    from hokusai.cli._common import CliState, print_json
    from hokusai.errors import UnauthenticatedError

    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    settings = state.settings()
    key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
    if not key:
        raise UnauthenticatedError("--server needs an API key: --api-key or HOKUSAI_API_KEY.")
    from hokusai.registry.backend import mlflow_scope

    tracking_uri = settings.resolved_tracking_uri
    mlflow_client = mlflow.MlflowClient(tracking_uri)
    name = f"{settings.experiment_name}-quickstart"
    found = mlflow_client.get_experiment_by_name(name)
    experiment_id = (
        found.experiment_id
        if found is not None
        # artifacts under HOKUSAI_HOME (embedded) or the server's root, never ./mlruns
        else mlflow_client.create_experiment(
            name, artifact_location=settings.resolved_artifact_location
        )
    )
    uris = []
    for model, _metrics in (baseline, improved):
        with (
            mlflow_scope(tracking_uri, tracking_uri),
            mlflow.start_run(experiment_id=experiment_id),
        ):
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=example,
                serialization_format="cloudpickle",
                pip_requirements=["scikit-learn", "cloudpickle"],
            )
        uris.append(info.model_uri)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=60) as client:
        base = _post(
            client,
            {
                "model_uri": uris[0],
                "model_type": model_type,
                "metadata": {"dataset": "sklearn.breast_cancer", "rows": 60},
                "metrics": baseline[1],
            },
        )
        console.print(f"baseline  [bold]{base['model_id']}[/bold]  uuid {base['model_uuid']}")
        deltas = {k: improved[1][k] - baseline[1][k] for k in baseline[1]}
        better = _post(
            client,
            {
                "model_uri": uris[1],
                "model_type": model_type,
                "baseline_id": base["model_id"],
                "contributor": contributor,
                "delta_metrics": deltas,
                "metrics": improved[1],
            },
        )
        console.print(f"improved  [bold]{better['model_id']}[/bold]  uuid {better['model_uuid']}")
        lineage = client.get(
            f"/api/v1/models/{better['model_name']}/versions/{better['version']}/lineage"
        )
        print_json(
            [
                {
                    "model_id": e["model_id"],
                    "contributor": e["contributor"],
                    "cumulative_improvement": e["cumulative_improvement"],
                }
                for e in lineage.json()["data"]
            ]
        )


def _post(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    from hokusai.errors import BackendError

    response = client.post("/api/v1/models", json=body)
    if response.status_code != 201:
        error = response.json().get("error", {})
        raise BackendError(
            f"server answered {response.status_code} {error.get('code')}: {error.get('message')}"
        )
    result: dict[str, Any] = response.json()
    return result
