"""Train a classifier, log it to MLflow as run ``ml_<model_type>``, write the pickle fallback.

One call of :func:`train` is, in order:

1. load and validate the data (:mod:`hokusai.training.datasets`), before anything is written;
2. a stratified 75/25 split and a fit with fixed seeds, so the same data gives the same model;
3. accuracy, AUROC, F1 and log-loss on the held-out quarter (macro F1 and one-vs-rest AUROC
   when there are more than two classes);
4. one MLflow run named ``ml_<model_type>`` in the ``config.yaml`` experiment holding the
   parameters, the metrics and the model (its flavor, signature, input example and pinned
   requirements, from :func:`hokusai.registry.flavors.plan_flavor`);
5. optionally ``mlflow.register_model`` (exactly one new version) and an alias on it;
6. the local fallback: a plain pickle of the fitted model, replaced atomically, written only
   once everything above succeeded so a failed training never replaces a working fallback.

The run ends ``FINISHED`` only when steps 4–5 succeeded (the prediction server looks for the
latest finished run of that name); a failure leaves it ``FAILED``.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from hokusai.config import ProjectConfig, ServingSettings, Settings, get_settings
from hokusai.errors import HokusaiError, ValidationError
from hokusai.registry.backend import mlflow_scope, translate_mlflow_error
from hokusai.training.datasets import Dataset, load_dataset

__all__ = [
    "MODEL_TYPES",
    "ModelType",
    "ProgressCallback",
    "TrainResult",
    "build_model",
    "default_fallback_path",
    "run_name_for",
    "train",
]

ModelType = Literal["xgboost", "random_forest", "logistic_regression"]
MODEL_TYPES: tuple[str, ...] = get_args(ModelType)

ProgressCallback = Callable[[str, int, int], None]
"""``on_progress(description, completed_steps, total_steps)``: called as each step starts,
and once more with ``completed_steps == total_steps`` when training is done."""

SEED = 42
TEST_SIZE = 0.25
MODEL_ARTIFACT_NAME = "model"
_MAX_PARAM_CHARS = 500

_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "xgboost": {
        "n_estimators": 50,
        "max_depth": 4,
        "learning_rate": 0.1,
        "tree_method": "hist",
        # One thread: on data of this size OpenMP threads cost more than they save (0.04 s vs
        # 0.39 s for the default dataset on 2 busy cores), and the pickled model predicts single
        # rows for the server without waking a thread pool.
        "n_jobs": 1,
        "random_state": SEED,
    },
    "random_forest": {"n_estimators": 50, "random_state": SEED},
    "logistic_regression": {"scaler": "standard", "C": 1.0, "max_iter": 1000, "random_state": SEED},
}

_ALIAS = re.compile(r"[\w-]{1,255}")
_RESERVED_ALIAS = re.compile(r"latest|v\d+", re.IGNORECASE)


@dataclass(frozen=True)
class TrainResult:
    """What one training produced and where it was recorded."""

    model_type: str
    run_id: str
    run_name: str
    experiment_id: str
    tracking_uri: str
    model_uri: str
    """``models:/m-…``: the logged model (load it with ``mlflow.pyfunc.load_model``)."""
    model_uuid: str
    metrics: dict[str, float]
    params: dict[str, Any]
    fallback_path: Path
    """Absolute path of the pickle fallback that was written."""
    registered_name: str | None = None
    registered_version: int | None = None
    alias: str | None = None
    classes: list[Any] = field(default_factory=list)
    """Original labels; the model predicts indices into this list."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (paths as strings)."""
        data = asdict(self)
        data["fallback_path"] = str(self.fallback_path)
        return data


def run_name_for(model_type: str) -> str:
    """``ml_<model_type>``: the run name the prediction server looks up (``MODEL_RUN_NAME``)."""
    return f"ml_{model_type}"


def default_fallback_path(model_type: str, project: ProjectConfig) -> Path:
    """``fallback_model_path`` for XGBoost; ``<model_type>_model.pkl`` beside it otherwise.

    Only the XGBoost model replaces the fallback the prediction server loads by default; the
    other types land next to it, so trying them never changes what is served.
    """
    configured = project.fallback_model_path
    if model_type == "xgboost":
        return configured
    return configured.parent / f"{model_type}_model.pkl"


def build_model(model_type: str) -> Any:
    """An unfitted classifier of ``model_type`` with the fixed hyperparameters."""
    params = dict(_HYPERPARAMETERS[_check_model_type(model_type)])
    if model_type == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(**params)
    if model_type == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(**params)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    del params["scaler"]
    return Pipeline([("scaler", StandardScaler()), ("model", LogisticRegression(**params))])


def train(
    model_type: str,
    *,
    data: str | Path | None = None,
    target: str | None = None,
    settings: Settings | None = None,
    project: ProjectConfig | None = None,
    register_as: str | None = None,
    alias: str | None = None,
    fallback_path: str | Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train ``model_type`` on ``data`` (a CSV with label column ``target``) or the default
    dataset, log it to MLflow, optionally register it, and write the pickle fallback.

    ``settings`` default to the environment's, ``project`` to ``config.yaml`` at
    ``CONFIG_PATH``. The tracking URI is ``project.tracking_uri`` or else the settings' one.
    Raises :class:`~hokusai.errors.ValidationError` for bad options or data (nothing written)
    and :class:`~hokusai.errors.BackendError` when MLflow fails.
    """
    model_type = _check_model_type(model_type)
    register_as = _check_registration(register_as, alias)
    settings = settings or get_settings()
    project = project or ServingSettings().project()
    tracking_uri = project.tracking_uri or settings.resolved_tracking_uri
    registry_uri = settings.registry_uri or tracking_uri
    # The artifact root for a new experiment follows the store actually used.
    store_settings = settings.model_copy(update={"tracking_uri": tracking_uri})
    target_path = Path(fallback_path or default_fallback_path(model_type, project)).resolve()

    steps = ["Loading data", f"Training {model_type}", "Evaluating", "Logging to MLflow"]
    if register_as:
        steps.append(f"Registering {register_as}")
    steps.append("Writing the fallback pickle")
    progress = _Steps(steps, on_progress)

    progress.start(0)
    dataset = load_dataset(data, target)
    x_train, x_test, y_train, y_test = _split(dataset)
    _prepare_folder(target_path.parent, "the fallback model")  # fail before the long part

    progress.start(1)
    model = build_model(model_type)
    model.fit(x_train, y_train)

    progress.start(2)
    metrics = evaluate(model, x_test, y_test, n_classes=len(dataset.classes))
    params = _params(model_type, dataset, n_train=len(x_train), n_test=len(x_test))

    progress.start(3)
    logged = _log_run(
        model,
        model_type=model_type,
        dataset=dataset,
        x_train=x_train,
        metrics=metrics,
        params=params,
        tracking_uri=tracking_uri,
        registry_uri=registry_uri,
        experiment_name=project.experiment_name,
        artifact_location=store_settings.resolved_artifact_location,
        register_as=register_as,
        alias=alias,
        on_register=lambda: progress.start(4),
    )

    progress.start(len(steps) - 1)
    _write_pickle(model, target_path)
    progress.finish()
    return TrainResult(
        model_type=model_type,
        run_id=logged.run_id,
        run_name=run_name_for(model_type),
        experiment_id=logged.experiment_id,
        tracking_uri=tracking_uri,
        model_uri=logged.model_uri,
        model_uuid=logged.model_uuid,
        metrics=metrics,
        params=params,
        fallback_path=target_path,
        registered_name=register_as,
        registered_version=logged.version,
        alias=alias if register_as else None,
        classes=list(dataset.classes),
    )


def evaluate(model: Any, features: Any, target: Any, *, n_classes: int) -> dict[str, float]:
    """Accuracy, AUROC, F1 and log-loss of a fitted classifier on held-out data."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    labels = list(range(n_classes))
    predicted = model.predict(features)
    proba = model.predict_proba(features)
    binary = n_classes == 2
    if binary:
        auroc = roc_auc_score(target, proba[:, 1])
        f1 = f1_score(target, predicted)
    else:
        auroc = roc_auc_score(target, proba, multi_class="ovr", labels=labels)
        f1 = f1_score(target, predicted, average="macro", labels=labels)
    return {
        "accuracy": float(accuracy_score(target, predicted)),
        "auroc": float(auroc),
        "f1": float(f1),
        "log_loss": float(log_loss(target, proba, labels=labels)),
    }


class _Steps:
    """Reports step starts to an optional progress callback."""

    def __init__(self, steps: list[str], callback: ProgressCallback | None) -> None:
        self._steps = steps
        self._callback = callback

    def start(self, index: int) -> None:
        if self._callback is not None:
            self._callback(self._steps[index], index, len(self._steps))

    def finish(self) -> None:
        if self._callback is not None:
            self._callback("Done", len(self._steps), len(self._steps))


def _check_model_type(model_type: str) -> str:
    if model_type not in MODEL_TYPES:
        raise ValidationError(
            f"Unknown model type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}."
        )
    return model_type


def _check_registration(register_as: str | None, alias: str | None) -> str | None:
    if register_as is not None:
        register_as = register_as.strip()
        if not register_as or "/" in register_as:
            raise ValidationError(
                f"--register-as {register_as!r}: a registered model name must be non-empty "
                "and must not contain '/'."
            )
    if alias is not None:
        if register_as is None:
            raise ValidationError("--alias needs --register-as: an alias points at a version.")
        if not _ALIAS.fullmatch(alias) or _RESERVED_ALIAS.fullmatch(alias):
            raise ValidationError(
                f"--alias {alias!r}: use letters, digits, '_' and '-' (at most 255); "
                "'latest' and 'v<number>' are reserved by MLflow."
            )
    return register_as


def _prepare_folder(folder: Path, purpose: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationError(f"Cannot create {folder} for {purpose}: {exc}") from exc


def _split(dataset: Dataset) -> tuple[Any, Any, Any, Any]:
    """Stratified 75/25 split with a fixed seed; every class must reach the test quarter."""
    from sklearn.model_selection import train_test_split

    try:
        x_train, x_test, y_train, y_test = train_test_split(
            dataset.features,
            dataset.target,
            test_size=TEST_SIZE,
            random_state=SEED,
            stratify=dataset.target,
        )
    except ValueError as exc:
        raise ValidationError(
            f"{dataset.name}: too few rows for a stratified train/test split over "
            f"{len(dataset.classes)} classes ({len(dataset.target)} rows): {exc}"
        ) from exc
    missing = sorted(set(range(len(dataset.classes))) - set(y_test.tolist()))
    if missing:
        raise ValidationError(
            f"{dataset.name}: class {dataset.classes[missing[0]]!r} has too few rows to appear "
            "in the held-out quarter; add rows of that class."
        )
    return x_train, x_test, y_train, y_test


def _params(model_type: str, dataset: Dataset, *, n_train: int, n_test: int) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model_type": model_type,
        "dataset": dataset.name,
        "target": dataset.target_name,
        "n_features": len(dataset.feature_names),
        "n_classes": len(dataset.classes),
        "n_train": n_train,
        "n_test": n_test,
        "test_size": TEST_SIZE,
        "split_seed": SEED,
        **_HYPERPARAMETERS[model_type],
    }
    classes = json.dumps(dataset.classes)
    if len(classes) <= _MAX_PARAM_CHARS:  # always in the model's metadata; here when short
        params["classes"] = classes
    return params


@dataclass(frozen=True)
class _Logged:
    run_id: str
    experiment_id: str
    model_uri: str
    model_uuid: str
    version: int | None


def _log_run(
    model: Any,
    *,
    model_type: str,
    dataset: Dataset,
    x_train: Any,
    metrics: dict[str, float],
    params: dict[str, Any],
    tracking_uri: str,
    registry_uri: str,
    experiment_name: str,
    artifact_location: str | None,
    register_as: str | None,
    alias: str | None,
    on_register: Callable[[], None],
) -> _Logged:
    """One MLflow run with params, metrics and the model; registration inside it."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from hokusai.registry.experiments import ensure_experiment
    from hokusai.registry.flavors import plan_flavor

    plan = plan_flavor(model)
    example = x_train.head(5).reset_index(drop=True)
    signature = infer_signature(x_train, model.predict(x_train))
    metadata = {
        "hokusai_training": {
            "model_type": model_type,
            "dataset": dataset.name,
            "target": dataset.target_name,
            "classes": dataset.classes,
        }
    }
    _prepare_sqlite_folder(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    action = f"Logging run {run_name_for(model_type)!r} to {tracking_uri}"
    try:
        experiment_id = ensure_experiment(client, experiment_name, artifact_location)
        with (
            mlflow_scope(tracking_uri, registry_uri),
            mlflow.start_run(
                experiment_id=experiment_id,
                run_name=run_name_for(model_type),
                nested=mlflow.active_run() is not None,
            ) as run,
        ):
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
            info = plan.log_model(
                name=MODEL_ARTIFACT_NAME,
                signature=signature,
                input_example=example,
                pip_requirements=plan.pip_requirements,
                metadata=metadata,
            )
            version: int | None = None
            if register_as:
                on_register()
                action = f"Registering {register_as!r}"
                registered = mlflow.register_model(info.model_uri, register_as)
                version = int(registered.version)
                if alias:
                    action = f"Setting alias {alias!r} on {register_as}/{version}"
                    client.set_registered_model_alias(register_as, alias, str(version))
    except HokusaiError:
        raise
    except Exception as exc:
        raise translate_mlflow_error(exc, action) from exc
    return _Logged(
        run_id=run.info.run_id,
        experiment_id=str(experiment_id),
        model_uri=info.model_uri,
        model_uuid=info.model_uuid,
        version=version,
    )


def _prepare_sqlite_folder(tracking_uri: str) -> None:
    """SQLite creates the database file but not the folder it lives in."""
    prefix = "sqlite:///"
    if tracking_uri.startswith(prefix):
        database = tracking_uri[len(prefix) :].split("?", 1)[0]
        if database and database != ":memory:":
            _prepare_folder(Path(database).parent, "the MLflow database")


def _write_pickle(model: Any, path: Path) -> None:
    """Pickle ``model`` to ``path`` atomically: a reader sees the old file or the new one."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before the rename
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(handle.name, 0o644)  # NamedTemporaryFile is 0600; a server may run as another user
        os.replace(handle.name, path)
    except BaseException as exc:
        Path(handle.name).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise HokusaiError(f"Writing the fallback model {path} failed: {exc}") from exc
        raise
