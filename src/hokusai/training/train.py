"""Train a classifier, log it to MLflow as run ``ml_<model_type>``, write the pickle fallback.

One call of :func:`train` is, in order:

1. load and validate the data (:mod:`hokusai.training.datasets`), before anything is written;
2. a stratified 75/25 split and a fit with fixed seeds, so the same data gives the same model;
3. accuracy, AUROC, F1 and log-loss on the held-out quarter (macro F1 and one-vs-rest AUROC
   when there are more than two classes);
4. one MLflow run named ``ml_<model_type>`` in the ``config.yaml`` experiment holding the
   parameters, the metrics and the model (its flavor, signature, input example and pinned
   requirements, from :func:`hokusai.registry.flavors.plan_flavor`);
5. optionally the registration of that logged model as a Hokusai version through the registry
   (:meth:`hokusai.registry.ModelRegistry.register_from_uri`: exactly one new version of
   ``hokusai_<type>_baseline``, or of ``hokusai_<type>_improved`` with ``improves``, with its
   attribution tags, its ``model_registered`` event, lineage and aliases), and an alias on it
   (:meth:`~hokusai.registry.ModelRegistry.set_alias`, which announces ``model_promoted``);
6. the local fallback: a plain pickle of the fitted model, replaced atomically, written only
   once everything above succeeded so a failed training never replaces a working fallback.

Every registration option is checked before anything is trained or written: the model type
by the registry's rules, the alias, the contributor's address, and that ``improves`` names a
Hokusai version whose run recorded metrics to compare with.

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
from hokusai.errors import (
    BaselineNotFoundError,
    HokusaiError,
    InvalidMetricsError,
    InvalidModelTypeError,
    ValidationError,
)
from hokusai.registry import ModelRegistry, RegistrationResult
from hokusai.registry.backend import mlflow_scope, translate_mlflow_error
from hokusai.registry.records import baseline_model_name, improved_model_name, split_run_metrics
from hokusai.registry.validation import (
    normalize_contributor,
    parse_model_id,
    validate_model_type,
)
from hokusai.training.datasets import Dataset, load_dataset

__all__ = [
    "METRIC_NAMES",
    "MODEL_TYPES",
    "ModelType",
    "ProgressCallback",
    "RegistryFactory",
    "TrainResult",
    "build_model",
    "default_fallback_path",
    "hokusai_model_type",
    "run_name_for",
    "store_settings",
    "train",
]

ModelType = Literal["xgboost", "random_forest", "logistic_regression"]
MODEL_TYPES: tuple[str, ...] = get_args(ModelType)

RegistryFactory = Callable[[Settings], ModelRegistry]
"""Builds the registry a training registers through, from the settings of the store the
training logs to (see :func:`store_settings`)."""

METRIC_NAMES: tuple[str, ...] = ("accuracy", "auroc", "f1", "log_loss")
"""The held-out metrics every training measures (and an improvement's deltas are over)."""

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

_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,255}")
_RESERVED_ALIAS = re.compile(r"latest|v[0-9]+", re.IGNORECASE)
_HOKUSAI_NAME = re.compile(r"hokusai_(?P<type>.+)_(?P<kind>baseline|improved)")


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
    """``hokusai_<type>_baseline`` (or ``_improved``) when the model was registered."""
    registered_version: int | None = None
    alias: str | None = None
    classes: list[Any] = field(default_factory=list)
    """Original labels; the model predicts indices into this list."""
    registered_model_id: str | None = None
    """``hokusai_<type>_baseline/<version>``: the Hokusai version registered."""
    serving_uri: str | None = None
    """What to serve it by: ``models:/<name>@<alias>``, or ``models:/<name>/<version>``
    without an alias (``MODEL_VARIANT`` of the prediction server)."""
    registration: RegistrationResult | None = None
    """The registry's result for the version (model_uuid, metadata, metrics, and for an
    improvement baseline_id, contributor and delta_metrics)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (paths as strings)."""
        data = asdict(self)
        data["fallback_path"] = str(self.fallback_path)
        return data


def store_settings(settings: Settings, project: ProjectConfig) -> Settings:
    """``settings`` bound to the MLflow store a training logs to (``config.yaml``'s
    ``tracking_uri`` when set): the registry a training registers through must use it too."""
    tracking_uri = project.tracking_uri or settings.resolved_tracking_uri
    return settings.model_copy(update={"tracking_uri": tracking_uri})


def hokusai_model_type(register_as: str) -> str:
    """The Hokusai model type ``--register-as`` names: ``fraud``, or the same written as the
    registered model name ``hokusai_fraud_baseline`` (``hokusai_fraud_improved``, too)."""
    value = register_as.strip() if isinstance(register_as, str) else register_as
    named = _HOKUSAI_NAME.fullmatch(value) if isinstance(value, str) else None
    model_type = named.group("type") if named else value
    try:
        return validate_model_type(model_type)
    except InvalidModelTypeError:
        raise InvalidModelTypeError(
            f"--register-as {register_as!r}: name a Hokusai model type, a lowercase identifier "
            "matching [a-z][a-z0-9_]* of at most 64 characters (e.g. 'fraud'); the model is "
            "registered as hokusai_<type>_baseline."
        ) from None


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
    improves: str | None = None,
    contributor: str | None = None,
    registry: ModelRegistry | RegistryFactory | None = None,
    fallback_path: str | Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train ``model_type`` on ``data`` (a CSV with label column ``target``) or the default
    dataset, log it to MLflow, optionally register it as a Hokusai version, and write the
    pickle fallback.

    ``register_as`` (a Hokusai model type such as ``"fraud"``, or ``"hokusai_fraud_baseline"``)
    registers the logged model as a new version of ``hokusai_<type>_baseline`` whose metadata
    says what it was trained on and whose metrics are the held-out ones. ``improves`` (the
    ``model_id`` of a Hokusai version) with ``contributor`` (an Ethereum address) registers an
    improved version of that version's type instead, with ``delta_metrics`` = the new
    held-out metrics minus those the improved version's run recorded (for the metrics both
    have). ``alias`` then points at the new version.

    ``registry`` is the :class:`~hokusai.registry.ModelRegistry` to register through, or a
    callable building it from the store's settings (:func:`store_settings`); it must use the
    store the training logs to. Default: a bare ``ModelRegistry``, which records no webhook
    event itself (a reconciler pass does, later); ``hokusai train`` passes the assembled
    ``HokusaiModelRegistry``, which records it at once.

    ``settings`` default to the environment's, ``project`` to ``config.yaml`` at
    ``CONFIG_PATH``. The tracking URI is ``project.tracking_uri`` or else the settings' one.
    Raises :class:`~hokusai.errors.ValidationError` (or a narrower class) for bad options or
    data, before anything is trained or written, and :class:`~hokusai.errors.BackendError`
    when MLflow fails.
    """
    model_type = _check_model_type(model_type)
    options = _check_registration(register_as, alias, improves, contributor)
    settings = settings or get_settings()
    project = project or ServingSettings().project()
    store = store_settings(settings, project)
    tracking_uri = store.resolved_tracking_uri
    registry_uri = store.resolved_registry_uri
    target_path = Path(fallback_path or default_fallback_path(model_type, project)).resolve()

    steps = ["Loading data", f"Training {model_type}", "Evaluating", "Logging to MLflow"]
    if options is not None:
        steps.append("Registering the Hokusai version")
    steps.append("Writing the fallback pickle")
    progress = _Steps(steps, on_progress)

    progress.start(0)
    dataset = load_dataset(data, target)
    x_train, x_test, y_train, y_test = _split(dataset)
    plan: _Registration | None = None
    if options is not None:  # the registry's checks: after the data's, before training
        plan = _plan_registration(options, _registry_for(registry, store))
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
        artifact_location=store.resolved_artifact_location,
        registration=plan,
        on_register=lambda: progress.start(4),
    )

    progress.start(len(steps) - 1)
    _write_pickle(model, target_path)
    progress.finish()
    registered = logged.registration
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
        registered_name=registered["model_name"] if registered else None,
        registered_version=int(registered["version"]) if registered else None,
        alias=plan.alias if plan else None,
        classes=list(dataset.classes),
        registered_model_id=registered["model_id"] if registered else None,
        serving_uri=_serving_uri(registered, plan.alias) if registered and plan else None,
        registration=registered,
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


@dataclass(frozen=True)
class _Options:
    """The registration options, checked without reading anything."""

    model_type: str | None
    """From --register-as (None: take the improved version's type)."""
    alias: str | None
    improves: str | None
    contributor: str | None
    """EIP-55 checksum form."""


@dataclass(frozen=True)
class _Registration:
    """What will be registered, once the registry confirmed it can be."""

    registry: ModelRegistry
    model_type: str
    model_name: str
    alias: str | None
    baseline_id: str | None = None
    contributor: str | None = None
    baseline_metrics: dict[str, float] = field(default_factory=dict)

    def delta_metrics(self, metrics: dict[str, float]) -> dict[str, float] | None:
        """New minus the improved version's, for the metrics both have (None: a baseline)."""
        if self.baseline_id is None:
            return None
        return {
            k: metrics[k] - self.baseline_metrics[k] for k in metrics if k in self.baseline_metrics
        }


def _check_registration(
    register_as: str | None,
    alias: str | None,
    improves: str | None,
    contributor: str | None,
) -> _Options | None:
    """Every registration option that can be checked without MLflow; None: no registration."""
    model_type: str | None = None
    if register_as is not None:
        model_type = hokusai_model_type(register_as)
        named = _HOKUSAI_NAME.fullmatch(register_as.strip())
        if named and named.group("kind") == "improved" and improves is None:
            raise ValidationError(
                f"--register-as {register_as!r}: an improved version needs --improves MODEL_ID "
                "and --contributor ADDRESS; --register-as TYPE registers a baseline."
            )
    if improves is None and contributor is not None:
        raise ValidationError(
            "--contributor needs --improves MODEL_ID: the Hokusai version the contributor's "
            "data improves."
        )
    if improves is not None:
        if contributor is None:
            raise ValidationError(
                "--improves needs --contributor ADDRESS: the Ethereum address whose data made "
                "the improvement."
            )
        contributor = normalize_contributor(contributor)
        name, version = parse_model_id(improves)
        improves = f"{name}/{version}"
    if alias is not None:
        if register_as is None and improves is None:
            raise ValidationError(
                "--alias needs --register-as (or --improves): an alias points at a registered "
                "version."
            )
        if not _ALIAS.fullmatch(alias) or _RESERVED_ALIAS.fullmatch(alias):
            raise ValidationError(
                f"--alias {alias!r}: use letters, digits, '_' and '-' (at most 255); "
                "'latest' and 'v<number>' are reserved by MLflow."
            )
    if model_type is None and improves is None:
        return None
    return _Options(model_type, alias, improves, contributor)


def _registry_for(
    registry: ModelRegistry | RegistryFactory | None, store: Settings
) -> ModelRegistry:
    """The registry to register through, on the store the training logs to."""
    if registry is None:
        return ModelRegistry(settings=store)
    if not isinstance(registry, ModelRegistry):
        registry = registry(store)
    if (registry.tracking_uri, registry.registry_uri) != (
        store.resolved_tracking_uri,
        store.resolved_registry_uri,
    ):
        raise ValidationError(
            "The registry given to train() uses another MLflow store than the training logs "
            f"to ({store.resolved_tracking_uri}); the version must come from the training run's "
            "own logged model."
        )
    return registry


def _plan_registration(options: _Options, registry: ModelRegistry) -> _Registration:
    """What will be registered; raises before training when the registry would refuse it."""
    if registry.announcer is not None:
        # Its configuration errors (a webhook URL without a secret, an unmigrated database)
        # must not cost a training.
        registry.announcer.prepare()
    if options.improves is None:
        assert options.model_type is not None
        return _Registration(
            registry=registry,
            model_type=options.model_type,
            model_name=baseline_model_name(options.model_type),
            alias=options.alias,
        )
    name, version = parse_model_id(options.improves)
    parent = registry.queries.record(name, version)
    if parent is None or not parent.is_hokusai or parent.model_type is None:
        what = "names no registered version" if parent is None else "is not a Hokusai version"
        raise BaselineNotFoundError(
            f"--improves {options.improves!r} {what}; it must name an existing Hokusai version "
            "(hokusai_<type>_baseline/N or hokusai_<type>_improved/N)."
        )
    if options.model_type is not None and options.model_type != parent.model_type:
        raise ValidationError(
            f"--register-as {options.model_type!r} differs from the model type of "
            f"{options.improves} ({parent.model_type!r}); an improvement keeps its type."
        )
    baseline_metrics = _run_metrics(
        registry, parent.run_id, legacy_improved=(parent.pre_upgrade and not parent.is_baseline)
    )
    if not set(baseline_metrics) & set(METRIC_NAMES):
        raise InvalidMetricsError(
            f"--improves {options.improves}: its run recorded none of the metrics training "
            f"measures ({', '.join(METRIC_NAMES)}), so the improvement's delta_metrics cannot "
            "be computed."
        )
    return _Registration(
        registry=registry,
        model_type=parent.model_type,
        model_name=improved_model_name(parent.model_type),
        alias=options.alias,
        baseline_id=parent.model_id,
        contributor=options.contributor,
        baseline_metrics=baseline_metrics,
    )


def _run_metrics(
    registry: ModelRegistry, run_id: str | None, *, legacy_improved: bool
) -> dict[str, float]:
    """The absolute metrics a version's run recorded (what its lineage entry shows)."""
    if run_id is None or legacy_improved:  # legacy improved runs logged only their deltas
        return {}
    try:
        run = registry.client.get_run(run_id)
    except Exception as exc:
        raise translate_mlflow_error(exc, f"reading run {run_id}") from exc
    metrics, _deltas = split_run_metrics(dict(run.data.metrics))
    return metrics


def _serving_uri(registered: RegistrationResult, alias: str | None) -> str:
    name = registered["model_name"]
    return f"models:/{name}@{alias}" if alias else f"models:/{name}/{registered['version']}"


def _registration_metadata(
    dataset: Dataset, model_type: str, params: dict[str, Any], run_id: str
) -> dict[str, Any]:
    """What a registered version records about its training."""
    return {
        "training": {
            "dataset": dataset.name,
            "dataset_digest": dataset.digest,
            "rows": len(dataset.target),
            "target": dataset.target_name,
            "features": dataset.feature_names,
            "classes": dataset.classes,
            "model_type": model_type,
            "params": params,
            "run_id": run_id,
            "run_name": run_name_for(model_type),
        }
    }


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
    registration: RegistrationResult | None


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
    registration: _Registration | None,
    on_register: Callable[[], None],
) -> _Logged:
    """One MLflow run with params, metrics and the model; the registration inside it, so the
    run is ``FINISHED`` only when the registration (and the alias) succeeded too."""
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
            registered: RegistrationResult | None = None
            if registration is not None:
                on_register()
                action = f"Registering {registration.model_name}"
                registered = _register(
                    registration,
                    info.model_uri,
                    metrics,
                    metadata=_registration_metadata(dataset, model_type, params, run.info.run_id),
                )
    except HokusaiError:
        raise
    except Exception as exc:
        raise translate_mlflow_error(exc, action) from exc
    return _Logged(
        run_id=run.info.run_id,
        experiment_id=str(experiment_id),
        model_uri=info.model_uri,
        model_uuid=info.model_uuid,
        registration=registered,
    )


def _register(
    registration: _Registration,
    model_uri: str,
    metrics: dict[str, float],
    *,
    metadata: dict[str, Any],
) -> RegistrationResult:
    """The training run's logged model as one new Hokusai version (no second copy of the
    model), then the alias on it."""
    registry = registration.registry
    deltas = registration.delta_metrics(metrics)
    if deltas is None:
        result = registry.register_from_uri(
            model_uri, registration.model_type, metadata, metrics=metrics
        )
    else:
        assert registration.baseline_id is not None
        assert registration.contributor is not None
        result = registry.register_from_uri(
            model_uri,
            registration.model_type,
            metadata,
            baseline_id=registration.baseline_id,
            contributor=registration.contributor,
            delta_metrics=deltas,
            metrics=metrics,
        )
    if registration.alias is not None:
        registry.set_alias(result["model_name"], registration.alias, result["version"])
    return result


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
