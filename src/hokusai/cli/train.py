"""``hokusai train`` (and ``python models/train.py``): train, log to MLflow, write the fallback,
and with ``--register-as TYPE`` register the model as a Hokusai version."""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hokusai.cli._common import (
    CliState,
    JsonOption,
    console,
    format_metrics,
    key_value_table,
    print_json,
)

if TYPE_CHECKING:
    from hokusai.training.train import TrainResult


class ModelTypeChoice(str, Enum):
    """The model types ``--model-type`` accepts."""

    xgboost = "xgboost"
    random_forest = "random_forest"
    logistic_regression = "logistic_regression"


def train(
    ctx: typer.Context,
    model_type: Annotated[
        ModelTypeChoice, typer.Option("--model-type", help="Classifier to train.")
    ] = ModelTypeChoice.xgboost,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="CSV with a header row and numeric features (default: scikit-learn's "
            "breast_cancer dataset).",
        ),
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="Label column of --data.")] = None,
    register_as: Annotated[
        str | None,
        typer.Option(
            "--register-as",
            metavar="TYPE",
            help="Register the trained model as a Hokusai baseline of this model type: a new "
            "version of hokusai_TYPE_baseline ('hokusai_TYPE_baseline' means the same).",
        ),
    ] = None,
    improves: Annotated[
        str | None,
        typer.Option(
            "--improves",
            metavar="MODEL_ID",
            help="Register an improved version of this Hokusai version (name/version) instead, "
            "with delta_metrics against its metrics; needs --contributor.",
        ),
    ] = None,
    contributor: Annotated[
        str | None,
        typer.Option(
            "--contributor",
            metavar="ADDRESS",
            help="Ethereum address whose data made the --improves improvement.",
        ),
    ] = None,
    alias: Annotated[
        str | None,
        typer.Option("--alias", help="Point this alias at the registered version."),
    ] = None,
    fallback_path: Annotated[
        Path | None,
        typer.Option(
            "--fallback-path",
            help="Where to write the pickle fallback (default: config.yaml fallback_model_path "
            "for xgboost, <model_type>_model.pkl beside it otherwise).",
        ),
    ] = None,
    as_json: bool = JsonOption,
) -> None:
    """Train a classifier, log it to MLflow as run ml_<model-type>, write the pickle fallback;
    with --register-as (or --improves) register it as a Hokusai version."""
    import mlflow  # noqa: F401 - configures MLflow's loggers on import; adjusted below
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from hokusai.config import ServingSettings, Settings
    from hokusai.services.model_registry import HokusaiModelRegistry
    from hokusai.training.train import train as run_training

    def assembled_registry(store: Settings) -> HokusaiModelRegistry:
        # The registry with the webhook layer: the version's model_registered (and an alias's
        # model_promoted) event is in the outbox before this command exits.
        return HokusaiModelRegistry(settings=store)

    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    logging.getLogger("mlflow").setLevel(logging.INFO if state.verbose else logging.WARNING)
    settings = state.settings()
    project = ServingSettings().project()
    if state.tracking_uri:  # the explicit --tracking-uri wins over config.yaml
        project = project.model_copy(update={"tracking_uri": state.tracking_uri})

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,  # a failure leaves only the one-line error
        disable=as_json,
    )
    with progress:
        task = progress.add_task("Starting", total=None)

        def on_progress(description: str, completed: int, total: int) -> None:
            progress.update(task, description=description, completed=completed, total=total)

        result = run_training(
            model_type.value,
            data=data,
            target=target,
            settings=settings,
            project=project,
            register_as=register_as,
            alias=alias,
            improves=improves,
            contributor=contributor,
            registry=assembled_registry,
            fallback_path=fallback_path,
            on_progress=on_progress,
        )
    if as_json:
        print_json(result.to_dict())
        return
    _print_result(result)


def _print_result(result: TrainResult) -> None:
    from hokusai.config import mask_secrets

    values: dict[str, str | None] = {
        "run": f"{result.run_name}  ({result.run_id})",
        "experiment": result.experiment_id,
        "tracking_uri": mask_secrets(result.tracking_uri),
        "model_uri": result.model_uri,
        "metrics": "  ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items())),
        "fallback": str(result.fallback_path),
    }
    keys = list(values)
    registered = result.registration
    if registered is not None:
        values.update(
            registered=result.registered_model_id,
            model_uuid=registered["model_uuid"],
            alias=result.alias,
            serve=f"MODEL_VARIANT={result.serving_uri}",
        )
        keys += ["registered", "model_uuid", "alias"]
        if not registered["is_baseline"]:
            values.update(
                improves=registered.get("baseline_id"),
                contributor=registered.get("contributor"),
                delta_metrics=format_metrics(registered.get("delta_metrics")),
            )
            keys += ["improves", "contributor", "delta_metrics"]
        keys.append("serve")
    console.print(key_value_table(f"Trained {result.model_type}", values, keys))


def main(argv: list[str] | None = None) -> None:
    """``python models/train.py``: this command on its own, failing like ``hokusai`` does."""
    from hokusai.cli._errors import run

    standalone = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    standalone.command()(train)
    run(standalone, argv, prog_name="models/train.py")
