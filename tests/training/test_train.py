"""Training against a real MLflow store on a temp SQLite file, the CLI, and models/train.py."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hokusai.cli.main import app
from hokusai.config import ProjectConfig, Settings
from hokusai.errors import ValidationError
from hokusai.training import MODEL_TYPES, TrainResult, train
from hokusai.training.datasets import load_default_dataset
from tests.conftest import CONTRIBUTOR

REPO = Path(__file__).resolve().parents[2]
METRICS = {"accuracy", "auroc", "f1", "log_loss"}
NATIVE_TYPES = {
    "xgboost": "XGBClassifier",
    "random_forest": "RandomForestClassifier",
    "logistic_regression": "Pipeline",
}
runner = CliRunner()


def _store(tmp: Path) -> tuple[Settings, ProjectConfig]:
    settings = Settings(home=tmp / "home")
    project = ProjectConfig(
        experiment_name="training-tests", fallback_model_path=tmp / "artifacts" / "xgb_model.pkl"
    )
    return settings, project


def _client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.resolved_tracking_uri)


@pytest.fixture(scope="module", autouse=True)
def _repository_models_folder_untouched() -> Iterator[None]:
    """Every test points the fallback into tmp; the default one is models/artifacts/."""
    before = _snapshot(REPO / "models")
    yield
    assert _snapshot(REPO / "models") == before


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, ProjectConfig]:
    return _store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module", params=MODEL_TYPES)
def trained(request: pytest.FixtureRequest, store) -> TrainResult:
    settings, project = store
    steps: list[tuple[str, int, int]] = []
    result = train(
        request.param,
        settings=settings,
        project=project,
        on_progress=lambda *step: steps.append(step),
    )
    assert steps[-1][0] == "Done" and steps[-1][1] == steps[-1][2] == 5
    assert [s[1] for s in steps] == list(range(6))
    return result


@pytest.fixture(scope="module")
def test_frame() -> pd.DataFrame:
    return load_default_dataset().features


# --- each model type on the default dataset -----------------------------------------------------


def test_run_is_named_and_logged(trained, store):
    settings, project = store
    client = _client(settings)
    run = client.get_run(trained.run_id)
    assert trained.run_name == run.info.run_name == f"ml_{trained.model_type}"
    assert run.info.status == "FINISHED"
    experiment = client.get_experiment(trained.experiment_id)
    assert experiment.name == project.experiment_name
    assert experiment.artifact_location == (settings.home_path / "artifacts").as_uri()
    assert trained.tracking_uri == settings.resolved_tracking_uri

    params = run.data.params
    assert params["model_type"] == trained.model_type
    assert params["dataset"] == "sklearn.breast_cancer"
    assert params["n_classes"] == "2" and params["classes"] == "[0, 1]"
    assert params["n_features"] == "30" and params["split_seed"] == "42"
    if trained.model_type in {"xgboost", "random_forest"}:
        assert params["n_estimators"] == "50"
    if trained.model_type == "xgboost":
        assert params["max_depth"] == "4"
    assert {k: str(v) for k, v in trained.params.items()} == params

    assert set(run.data.metrics) == METRICS
    assert run.data.metrics == pytest.approx(trained.metrics)
    assert trained.metrics["accuracy"] > 0.9
    assert trained.metrics["auroc"] > 0.95
    assert 0.9 < trained.metrics["f1"] <= 1.0
    assert 0.0 < trained.metrics["log_loss"] < 0.5


def test_logged_model_has_signature_example_and_predicts(trained, store, test_frame):
    import mlflow.pyfunc
    from mlflow.models import Model

    settings, _ = store
    assert trained.model_uri == f"models:/{trained.model_uuid}"
    local = _download(trained, settings)
    card = Model.load(local)
    inputs = card.signature.inputs
    assert inputs.input_names() == list(test_frame.columns)
    assert {spec.type.name for spec in inputs.inputs} == {"double"}
    example = card.load_input_example(local)
    assert list(example.columns) == list(test_frame.columns) and len(example) == 5
    assert card.metadata["hokusai_training"]["classes"] == [0, 1]

    model = mlflow.pyfunc.load_model(local)
    predicted = np.asarray(model.predict(test_frame))
    assert set(np.unique(predicted)) <= {0, 1}

    # The pickle fallback: the native model, predicting the same labels.
    assert trained.fallback_path.is_absolute()
    with trained.fallback_path.open("rb") as handle:
        native = pickle.load(handle)
    assert type(native).__name__ == NATIVE_TYPES[trained.model_type]
    assert np.array_equal(native.predict(test_frame), predicted)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        assert np.array_equal(native.predict(test_frame.to_numpy()), predicted)


def test_fallback_path_defaults(trained, store):
    _, project = store
    if trained.model_type == "xgboost":
        assert trained.fallback_path == project.fallback_model_path
    else:
        expected = project.fallback_model_path.parent / f"{trained.model_type}_model.pkl"
        assert trained.fallback_path == expected


def test_training_is_reproducible(store, test_frame, tmp_path):
    settings, project = store
    first = train("xgboost", settings=settings, project=project, fallback_path=tmp_path / "a.pkl")
    second = train("xgboost", settings=settings, project=project, fallback_path=tmp_path / "b.pkl")
    assert first.metrics == second.metrics
    assert first.run_id != second.run_id
    models = [pickle.loads(p.read_bytes()) for p in (tmp_path / "a.pkl", tmp_path / "b.pkl")]
    assert np.array_equal(models[0].predict_proba(test_frame), models[1].predict_proba(test_frame))


# --- CSV data --------------------------------------------------------------------------------


def _write_csv(path: Path, *, n_classes: int, labels: list[Any], rows: int = 240) -> Path:
    from sklearn.datasets import make_classification

    features, codes = make_classification(
        n_samples=rows,
        n_features=6,
        n_informative=4,
        n_redundant=0,
        n_classes=n_classes,
        class_sep=2.0,
        random_state=3,
    )
    frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(6)])
    frame["count"] = (np.abs(features[:, 0]) * 10).astype(int)  # an integer column
    frame["label"] = [labels[c] for c in codes]
    frame.to_csv(path, index=False)
    return path


def test_binary_csv_with_string_labels(store, tmp_path):
    settings, project = store
    data = _write_csv(tmp_path / "binary.csv", n_classes=2, labels=["no", "yes"])
    result = train(
        "logistic_regression",
        data=data,
        target="label",
        settings=settings,
        project=project,
        fallback_path=tmp_path / "binary.pkl",
    )
    assert result.fallback_path == tmp_path / "binary.pkl"
    assert result.classes == ["no", "yes"]
    assert result.params["dataset"] == str(data) and result.params["target"] == "label"
    assert result.metrics["accuracy"] > 0.8 and result.metrics["auroc"] > 0.85
    from mlflow.models import Model

    signature = Model.load(_download(result, settings)).signature
    types = {spec.name: spec.type.name for spec in signature.inputs.inputs}
    assert types["count"] == "double" and "label" not in types
    native = pickle.loads(result.fallback_path.read_bytes())
    frame = pd.read_csv(data).drop(columns="label").astype("float64")
    assert set(np.unique(native.predict(frame))) == {0, 1}


def test_three_class_csv(store, tmp_path):
    import mlflow.pyfunc

    settings, project = store
    data = _write_csv(tmp_path / "three.csv", n_classes=3, labels=[10, 20, 30])
    result = train(
        "xgboost",
        data=data,
        target="label",
        settings=settings,
        project=project,
        fallback_path=tmp_path / "three.pkl",
    )
    assert result.classes == [10, 20, 30] and result.params["n_classes"] == 3
    assert set(result.metrics) == METRICS
    assert result.metrics["accuracy"] > 0.7
    assert 0.8 < result.metrics["auroc"] <= 1.0  # one-vs-rest
    assert 0.6 < result.metrics["f1"] <= 1.0  # macro
    assert result.metrics["log_loss"] > 0
    frame = pd.read_csv(data).drop(columns="label").astype("float64")
    predicted = np.asarray(mlflow.pyfunc.load_model(_download(result, settings)).predict(frame))
    assert set(np.unique(predicted)) == {0, 1, 2}
    native = pickle.loads(result.fallback_path.read_bytes())
    assert native.predict_proba(frame).shape == (len(frame), 3)
    assert np.array_equal(native.predict(frame), predicted)


def _download(result: TrainResult, settings: Settings) -> str:
    """The logged model's local folder (the process's own tracking URI is never set)."""
    from urllib.parse import unquote, urlparse

    location = _client(settings).get_logged_model(result.model_uuid).artifact_location
    assert location.startswith("file://")
    return unquote(urlparse(location).path)


# --- registration ---------------------------------------------------------------------------


def _assembled(built: list[Any]) -> Any:
    """What ``hokusai train`` passes: the registry with the webhook layer, on the store."""
    from hokusai.services.model_registry import HokusaiModelRegistry

    def factory(store_settings: Settings) -> Any:
        registry = HokusaiModelRegistry(settings=store_settings)
        built.append(registry)
        return registry

    return factory


def _events(registry: Any) -> list[tuple[str, str, str]]:
    import sqlalchemy as sa

    from hokusai.webhooks.tables import events

    columns = (events.c.event_type, events.c.model_name, events.c.model_version)
    with registry.webhooks.engine.connect() as conn:
        rows = conn.execute(sa.select(*columns).order_by(events.c.created_at))
        return [tuple(row) for row in rows]


@pytest.fixture(scope="module")
def registered(store, tmp_path_factory) -> dict[str, Any]:
    """A baseline registered by training, then an improvement on it by a contributor."""
    settings, project = store
    folder = tmp_path_factory.mktemp("registered")
    built: list[Any] = []
    base = train(
        "random_forest",
        settings=settings,
        project=project,
        register_as="cancer",
        alias="champion",
        registry=_assembled(built),
        fallback_path=folder / "base.pkl",
    )
    better = train(
        "xgboost",
        settings=settings,
        project=project,
        improves=base.registered_model_id,
        contributor=CONTRIBUTOR.lower(),
        alias="candidate",
        registry=_assembled(built),
        fallback_path=folder / "better.pkl",
    )
    return {"base": base, "better": better, "registry": built[0]}


def test_register_as_registers_a_hokusai_baseline(registered, store):
    settings, _ = store
    result, registry = registered["base"], registered["registry"]
    assert result.registered_name == "hokusai_cancer_baseline"
    assert result.registered_version == 1
    assert result.registered_model_id == "hokusai_cancer_baseline/1"
    assert result.alias == "champion"
    assert result.serving_uri == "models:/hokusai_cancer_baseline@champion"

    # The training run's logged model is the version: one version, no second copy.
    client = _client(settings)
    versions = client.search_model_versions("name = 'hokusai_cancer_baseline'")
    assert len(versions) == 1
    assert versions[0].source == result.model_uri and versions[0].run_id == result.run_id
    logged = client.search_logged_models(
        experiment_ids=[e.experiment_id for e in client.search_experiments()],
        filter_string=f"source_run_id = '{result.run_id}'",
    )
    assert [m.model_id for m in logged] == [result.model_uuid]
    assert client.get_run(result.run_id).info.status == "FINISHED"
    assert int(client.get_model_version_by_alias(result.registered_name, "champion").version) == 1

    # A Hokusai version: found by uuid, with its attribution, metadata and metrics.
    found = registry.get_model_by_uuid(result.model_uuid)
    assert found is not None and found["model_id"] == "hokusai_cancer_baseline/1"
    assert found["model_type"] == "cancer" and found["is_baseline"] is True
    assert found["aliases"] == ["champion"]
    training = found["metadata"]["training"]
    assert training["dataset"] == "sklearn.breast_cancer" and training["rows"] == 569
    assert (
        training["dataset_digest"].startswith("sha256:") and len(training["dataset_digest"]) == 71
    )
    assert training["target"] == "target" and training["model_type"] == "random_forest"
    assert training["params"]["n_estimators"] == 50 and training["run_id"] == result.run_id
    assert result.registration is not None
    assert result.registration["metrics"] == pytest.approx(result.metrics)
    lineage = registry.get_model_lineage(result.registered_model_id)
    assert lineage[0]["model_id"] == "hokusai_cancer_baseline/1" and lineage[0]["depth"] == 0
    assert lineage[0]["metrics"] == pytest.approx(result.metrics)

    # Its events are in the outbox before train() returned.
    events = _events(registry)
    assert ("model_registered", "hokusai_cancer_baseline", "1") in events
    assert ("model_promoted", "hokusai_cancer_baseline", "1") in events


def test_improves_registers_an_improved_version_with_deltas(registered):
    base, better, registry = registered["base"], registered["better"], registered["registry"]
    assert better.registered_model_id == "hokusai_cancer_improved/1"
    assert better.serving_uri == "models:/hokusai_cancer_improved@candidate"
    found = registry.get_model("hokusai_cancer_improved/1")
    assert found["baseline_id"] == "hokusai_cancer_baseline/1"
    assert found["contributor"] == CONTRIBUTOR  # EIP-55, from the lowercase address given
    assert found["model_uuid"] == better.model_uuid and found["aliases"] == ["candidate"]
    expected = {k: better.metrics[k] - base.metrics[k] for k in METRICS}
    assert found["delta_metrics"] == pytest.approx(expected)
    assert better.registration is not None
    assert better.registration["delta_metrics"] == pytest.approx(expected)
    lineage = registry.get_model_lineage("hokusai_cancer_improved/1")
    assert [(e["model_id"], e["parent_id"]) for e in lineage] == [
        ("hokusai_cancer_baseline/1", None),
        ("hokusai_cancer_improved/1", "hokusai_cancer_baseline/1"),
    ]
    assert [m["model_id"] for m in registry.get_contributor_models(CONTRIBUTOR)] == [
        "hokusai_cancer_improved/1"
    ]
    assert ("model_registered", "hokusai_cancer_improved", "1") in _events(registry)


def test_register_as_accepts_the_registered_model_name(store, registered, tmp_path):
    settings, project = store
    result = train(
        "logistic_regression",
        settings=settings,
        project=project,
        register_as="hokusai_cancer_baseline",
        fallback_path=tmp_path / "again.pkl",
    )
    assert result.registered_model_id == "hokusai_cancer_baseline/2"
    assert result.alias is None
    assert result.serving_uri == "models:/hokusai_cancer_baseline/2"


@pytest.fixture(scope="module")
def refusing(tmp_path_factory) -> tuple[Settings, Any]:
    """A store with a Hokusai baseline and a model registered with plain MLflow."""
    from hokusai.services.model_registry import HokusaiModelRegistry

    settings, _ = _store(tmp_path_factory.mktemp("refusing"))
    registry = HokusaiModelRegistry(settings=settings)
    base = registry.register_baseline(
        _fitted_forest(), "cancer", {}, metrics={"accuracy": 0.9, "f1": 0.8}
    )
    assert base["model_id"] == "hokusai_cancer_baseline/1"
    _register_plain_model(settings, "plain_model")
    return settings, registry


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"register_as": "a/b"}, "invalid_model_type", r"--register-as 'a/b': name a Hokusai"),
        ({"register_as": "Fraud"}, "invalid_model_type", r"lowercase identifier"),
        (
            {"register_as": "hokusai_fraud_improved"},
            "validation_error",
            r"needs --improves MODEL_ID and --contributor",
        ),
        (
            {"improves": "hokusai_cancer_baseline/1", "contributor": "0x1234"},
            "invalid_contributor",
            r"Invalid contributor address '0x1234'",
        ),
        (
            {
                "improves": "hokusai_cancer_baseline/1",
                "contributor": "0x" + CONTRIBUTOR[2:].swapcase(),
            },
            "invalid_contributor",
            r"EIP-55 checksum",
        ),
        ({"improves": "hokusai_cancer_baseline/1"}, "validation_error", r"needs --contributor"),
        ({"contributor": CONTRIBUTOR}, "validation_error", r"--contributor needs --improves"),
        (
            {"improves": "hokusai_cancer_baseline", "contributor": CONTRIBUTOR},
            "invalid_model_id",
            r"expected '\{model_name\}/\{version\}'",
        ),
        (
            {"improves": "hokusai_cancer_baseline/9", "contributor": CONTRIBUTOR},
            "baseline_not_found",
            r"names no registered version",
        ),
        (
            {"improves": "plain_model/1", "contributor": CONTRIBUTOR},
            "baseline_not_found",
            r"'plain_model/1' is not a Hokusai version",
        ),
        (
            {
                "improves": "hokusai_cancer_baseline/1",
                "contributor": CONTRIBUTOR,
                "register_as": "x",
            },
            "validation_error",
            r"differs from the model type of hokusai_cancer_baseline/1 \('cancer'\)",
        ),
    ],
)
def test_bad_registration_options_fail_before_training_and_register_nothing(
    refusing, tmp_path, options, error, match
):
    from hokusai.errors import HokusaiError

    settings, registry = refusing
    project = ProjectConfig(
        experiment_name="training-tests", fallback_model_path=tmp_path / "out" / "model.pkl"
    )
    before = _registry_state(settings)
    steps: list[str] = []
    with pytest.raises(HokusaiError, match=match) as caught:
        train(
            "logistic_regression",
            settings=settings,
            project=project,
            registry=registry,
            on_progress=lambda description, *_: steps.append(description),
            **options,
        )
    assert caught.value.code == error
    assert "Training logistic_regression" not in steps  # refused before training
    assert _registry_state(settings) == before  # no run, no version, no event
    assert not project.fallback_model_path.parent.exists()


def test_an_improvement_needs_metrics_it_can_compare(tmp_path):
    from hokusai.errors import InvalidMetricsError
    from hokusai.services.model_registry import HokusaiModelRegistry

    settings, project = _store(tmp_path)
    registry = HokusaiModelRegistry(settings=settings)
    registry.register_baseline(_fitted_forest(), "cancer", {}, metrics={"rmse": 1.5})
    with pytest.raises(InvalidMetricsError, match=r"recorded none of the metrics"):
        train(
            "logistic_regression",
            settings=settings,
            project=project,
            registry=registry,
            improves="hokusai_cancer_baseline/1",
            contributor=CONTRIBUTOR,
        )
    assert _registry_state(settings)["versions"] == ["hokusai_cancer_baseline/1"]


def test_the_registry_must_use_the_training_store(tmp_path):
    from hokusai.registry import ModelRegistry

    settings, project = _store(tmp_path)
    elsewhere = ModelRegistry(settings=Settings(home=tmp_path / "elsewhere"))
    with pytest.raises(ValidationError, match=r"another MLflow store"):
        train(
            "logistic_regression",
            settings=settings,
            project=project,
            register_as="cancer",
            registry=elsewhere,
        )
    assert not project.fallback_model_path.parent.exists()


def _fitted_forest() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    data = load_default_dataset()
    return RandomForestClassifier(n_estimators=3, random_state=0).fit(data.features, data.target)


def _register_plain_model(settings: Settings, name: str) -> None:
    """A model registered with plain MLflow (what the pre-fix ``--register-as`` made)."""
    import mlflow
    import mlflow.sklearn

    from hokusai.registry.backend import mlflow_scope

    uri = settings.resolved_tracking_uri
    experiment = _client(settings).create_experiment(
        "plain", artifact_location=(settings.home_path / "plain").as_uri()
    )
    with mlflow_scope(uri, uri), mlflow.start_run(experiment_id=experiment):
        info = mlflow.sklearn.log_model(
            _fitted_forest(),
            name="model",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
        mlflow.register_model(info.model_uri, name)


def _registry_state(settings: Settings) -> dict[str, Any]:
    import sqlalchemy as sa

    from hokusai.db import open_database
    from hokusai.webhooks.tables import events

    client = _client(settings)
    experiments = [e.experiment_id for e in client.search_experiments()]
    with open_database(settings.resolved_database_url).connect() as conn:
        recorded = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
    return {
        "runs": sorted(r.info.run_id for r in client.search_runs(experiments)),
        "versions": sorted(f"{v.name}/{v.version}" for v in client.search_model_versions()),
        "events": recorded,
    }


# --- validation -----------------------------------------------------------------------------


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    return path


GOOD_ROWS = "".join(f"{i},{i * 2}.5,{i % 2}\n" for i in range(12))


@pytest.mark.parametrize(
    ("kind", "content", "options", "match"),
    [
        ("missing", None, {"target": "y"}, r"nope\.csv does not exist"),
        ("directory", None, {"target": "y"}, r"is not a file"),
        ("empty", "", {"target": "y"}, r"is empty"),
        ("csv", "a,b,y\n" + GOOD_ROWS, {"target": "label"}, r"target column 'label' not found"),
        ("csv", "a,b,y\n" + "1,2,0\n" * 8, {"target": "y"}, r"at least 2 classes; found only 0"),
        (
            "csv",
            "a,color,y\n" + GOOD_ROWS.replace("3,6.5,1", "3,red,1"),
            {"target": "y"},
            r"feature column 'color' is not numeric \(found 'red'\)",
        ),
        (
            "csv",
            "a,b,y\n" + GOOD_ROWS.replace("3,6.5,1", "3,,1"),
            {"target": "y"},
            r"column 'b' has 1 missing value\(s\) \(first in data row 4\)",
        ),
        (
            "csv",
            "a,b,y\n" + GOOD_ROWS.replace("3,6.5,1", "3,6.5,"),
            {"target": "y"},
            r"column 'y' has 1 missing value",
        ),
        (
            "csv",
            "a,b,y\n" + "".join(f"{i},{i},{i}.5\n" for i in range(8)),
            {"target": "y"},
            r"target column 'y' holds continuous values",
        ),
        (
            "csv",
            "a,b,y\n" + GOOD_ROWS + "1,1,7\n",
            {"target": "y"},
            r"class 7 of target column 'y' has 1 row",
        ),
        ("csv", "y\n0\n1\n0\n1\n", {"target": "y"}, r"no feature columns besides 'y'"),
        (
            "csv",
            "a,b,y\n" + GOOD_ROWS.replace("3,6.5,1", "3,inf,1"),
            {"target": "y"},
            r"feature column 'b' has an infinite value",
        ),
        ("csv", "a,b,y\n" + GOOD_ROWS, {}, r"needs --target"),
        ("none", None, {"target": "y"}, r"--target 'y' needs --data"),
        ("none", None, {"model_type": "svm"}, r"Unknown model type 'svm'"),
        ("none", None, {"alias": "champion"}, r"--alias needs --register-as"),
        ("none", None, {"register_as": "m", "alias": "latest"}, r"reserved by MLflow"),
        ("none", None, {"register_as": "m", "alias": "v3"}, r"reserved by MLflow"),
    ],
)
def test_bad_input_is_a_validation_error_and_writes_nothing(
    tmp_path, kind, content, options, match
):
    settings, project = _store(tmp_path)
    data: Path | None = None
    if kind == "missing":
        data = tmp_path / "nope.csv"
    elif kind == "directory":
        data = tmp_path
    elif kind in {"empty", "csv"}:
        data = _csv(tmp_path, content)
    options = dict(options)
    model_type = options.pop("model_type", "logistic_regression")
    with pytest.raises(ValidationError, match=match) as caught:
        train(model_type, data=data, settings=settings, project=project, **options)
    assert caught.value.code == "validation_error"
    assert not project.fallback_model_path.parent.exists()
    assert not (settings.home_path / "mlflow.db").exists()


def test_stratified_split_needs_every_class_in_the_test_quarter(tmp_path):
    settings, project = _store(tmp_path)
    rows = "".join(f"{i},{i},{i % 4}\n" for i in range(8))  # 4 classes x 2 rows: 2 test rows
    with pytest.raises(ValidationError, match=r"too few rows") as caught:
        train(
            "random_forest",
            data=_csv(tmp_path, "a,b,y\n" + rows),
            target="y",
            settings=settings,
            project=project,
        )
    assert caught.value.code == "validation_error"


# --- the example dataset --------------------------------------------------------------------


def test_the_transactions_example_is_deterministic_and_learnable(store, tmp_path):
    import runpy

    csv = REPO / "examples" / "data" / "transactions.csv"
    generator = runpy.run_path(str(csv.with_name("make_transactions.py")))
    assert generator["write"](tmp_path / "again.csv").read_bytes() == csv.read_bytes()

    frame = pd.read_csv(csv)
    assert list(frame.columns) == ["age", "income", "amount", "is_fraud"] and len(frame) == 1000
    assert set(frame["is_fraud"]) == {0, 1}
    features = csv.read_text(encoding="utf-8").splitlines()[1].split(",")[:3]
    assert all("." in value for value in features)  # written as floats
    majority = max(frame["is_fraud"].mean(), 1 - frame["is_fraud"].mean())

    settings, project = store
    result = train(
        "xgboost",
        data=csv,
        target="is_fraud",
        settings=settings,
        project=project,
        fallback_path=tmp_path / "fraud.pkl",
    )
    assert result.metrics["accuracy"] > majority + 0.05, (result.metrics, majority)
    assert result.metrics["auroc"] > 0.9


# --- the command line -----------------------------------------------------------------------


def _config(tmp_path: Path, **values: Any) -> Path:
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({k: str(v) for k, v in values.items()}), encoding="utf-8")
    return path


def test_cli_train_json(tmp_path, monkeypatch):
    fallback = tmp_path / "out" / "xgb_model.pkl"
    config = _config(tmp_path, experiment_name="cli-tests", fallback_model_path=fallback)
    monkeypatch.setenv("CONFIG_PATH", str(config))
    result = runner.invoke(
        app,
        ["train", "--model-type", "logistic_regression", "--register-as", "lr", "--json"],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["run_name"] == "ml_logistic_regression"
    assert body["fallback_path"] == str(fallback.parent / "logistic_regression_model.pkl")
    assert Path(body["fallback_path"]).is_file()
    assert set(body["metrics"]) == METRICS
    assert body["registered_name"] == "hokusai_lr_baseline" and body["registered_version"] == 1
    assert body["registered_model_id"] == "hokusai_lr_baseline/1"
    assert body["serving_uri"] == "models:/hokusai_lr_baseline/1"
    assert body["registration"]["model_uuid"] == body["model_uuid"]
    assert body["tracking_uri"] == Settings(home=tmp_path / "home").resolved_tracking_uri
    client = _client(Settings(home=tmp_path / "home"))
    assert client.get_experiment(body["experiment_id"]).name == "cli-tests"


def test_cli_train_registers_the_fraud_example_with_its_event(tmp_path, monkeypatch):
    """The documented flow: transactions.csv, --register-as fraud --alias champion."""
    from hokusai.services.model_registry import HokusaiModelRegistry

    config = _config(tmp_path, fallback_model_path=tmp_path / "out" / "xgb_model.pkl")
    monkeypatch.setenv("CONFIG_PATH", str(config))
    monkeypatch.chdir(REPO)
    args = ["--data", "examples/data/transactions.csv", "--target", "is_fraud"]
    result = runner.invoke(app, ["train", *args, "--register-as", "fraud", "--alias", "champion"])
    assert result.exit_code == 0, result.output
    for shown in (
        "hokusai_fraud_baseline/1",
        "champion",
        "MODEL_VARIANT=models:/hokusai_fraud_baseline@champion",
    ):
        assert shown in result.stdout
    registry = HokusaiModelRegistry(settings=Settings(home=tmp_path / "home"))
    found = registry.get_model("hokusai_fraud_baseline/1")
    assert found["model_uuid"] is not None and found["model_uuid"] in result.stdout
    assert found["aliases"] == ["champion"]
    training = found["metadata"]["training"]
    assert training["dataset"] == "examples/data/transactions.csv" and training["rows"] == 1000
    digest = hashlib.sha256((REPO / "examples/data/transactions.csv").read_bytes()).hexdigest()
    assert training["dataset_digest"] == f"sha256:{digest}"
    assert ("model_registered", "hokusai_fraud_baseline", "1") in _events(registry)

    # An improvement by a contributor, from the same command line.
    improved = runner.invoke(
        app,
        [
            "train",
            *args,
            "--model-type",
            "random_forest",
            "--improves",
            "hokusai_fraud_baseline/1",
            "--contributor",
            CONTRIBUTOR,
            "--json",
        ],
    )
    assert improved.exit_code == 0, improved.output
    body = json.loads(improved.stdout)
    assert body["registered_model_id"] == "hokusai_fraud_improved/1"
    assert body["registration"]["contributor"] == CONTRIBUTOR
    assert set(body["registration"]["delta_metrics"]) == METRICS
    assert ("model_registered", "hokusai_fraud_improved", "1") in _events(registry)


@pytest.mark.parametrize(
    ("options", "line"),
    [
        (
            ["--improves", "hokusai_fraud_baseline/1", "--contributor", "0xnot-an-address"],
            "error[invalid_contributor]: Invalid contributor address '0xnot-an-address'",
        ),
        (
            ["--register-as", "Fraud Model"],
            "error[invalid_model_type]: --register-as 'Fraud Model'",
        ),
        (
            ["--improves", "hokusai_fraud_baseline/3", "--contributor", CONTRIBUTOR],
            "error[baseline_not_found]: --improves 'hokusai_fraud_baseline/3' names no registered",
        ),
    ],
)
def test_cli_refuses_bad_registration_options_in_one_line(
    tmp_path, monkeypatch, capsys, options, line
):
    from hokusai.cli.train import main

    config = _config(tmp_path, fallback_model_path=tmp_path / "artifacts" / "xgb_model.pkl")
    monkeypatch.setenv("CONFIG_PATH", str(config))
    with pytest.raises(SystemExit) as exited:
        main(["--model-type", "logistic_regression", *options])
    assert exited.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), lines
    assert not (tmp_path / "artifacts").exists()
    store = tmp_path / "home" / "mlflow.db"
    if store.exists():  # the --improves lookup opened the store: it holds nothing
        client = _client(Settings(home=tmp_path / "home"))
        assert client.search_model_versions() == []
        experiments = [e.experiment_id for e in client.search_experiments()]
        assert client.search_runs(experiments) == []


def test_cli_train_table_with_fallback_path(store, tmp_path, monkeypatch):
    settings, _ = store  # an already-created database: no schema migrations to wait for
    config = _config(
        tmp_path,
        tracking_uri=settings.resolved_tracking_uri,
        fallback_model_path=tmp_path / "unused.pkl",
    )
    monkeypatch.setenv("CONFIG_PATH", str(config))
    target = tmp_path / "chosen.pkl"
    result = runner.invoke(
        app, ["train", "--model-type", "random_forest", "--fallback-path", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert "ml_random_forest" in result.stdout and "accuracy=" in result.stdout
    assert target.is_file()


def test_cli_rejects_an_unknown_model_type(tmp_path, monkeypatch):
    config = _config(tmp_path, fallback_model_path=tmp_path / "artifacts" / "xgb_model.pkl")
    monkeypatch.setenv("CONFIG_PATH", str(config))
    result = runner.invoke(app, ["train", "--model-type", "svm"])
    assert result.exit_code == 2
    assert "svm" in result.output


# --- the documented entry point ------------------------------------------------------------


def _snapshot(*folders: Path) -> dict[str, int]:
    found = [p for folder in folders if folder.exists() for p in [folder, *folder.rglob("*")]]
    return {str(p): p.stat().st_mtime_ns for p in found}


@pytest.mark.slow
def test_models_train_py_from_the_repository_root(store, tmp_path):
    settings, _ = store  # an already-created database: no schema migrations to wait for
    fallback = tmp_path / "artifacts" / "xgb_model.pkl"
    config = _config(
        tmp_path,
        tracking_uri=settings.resolved_tracking_uri,
        experiment_name="script-tests",
        fallback_model_path=fallback,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env.update(HOKUSAI_HOME=str(tmp_path / "home"), CONFIG_PATH=str(config))
    watched = [REPO / "models"]  # where the default fallback would land
    before = _snapshot(*watched)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "models/train.py", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = run("--model-type", "xgboost", "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["run_name"] == "ml_xgboost" and body["fallback_path"] == str(fallback)
    assert body["tracking_uri"] == settings.resolved_tracking_uri
    run = _client(settings).get_run(body["run_id"])
    assert run.info.run_name == "ml_xgboost" and run.info.status == "FINISHED"
    native = pickle.loads(fallback.read_bytes())
    assert type(native).__name__ == "XGBClassifier"
    assert (tmp_path / "home" / "artifacts").is_dir()  # embedded store: artifacts under home

    assert _snapshot(*watched) == before


def test_models_train_py_main_fails_with_one_line(tmp_path, monkeypatch, capsys):
    from hokusai.cli.train import main

    config = _config(tmp_path, fallback_model_path=tmp_path / "artifacts" / "xgb_model.pkl")
    monkeypatch.setenv("CONFIG_PATH", str(config))
    with pytest.raises(SystemExit) as exited:
        main(["--data", str(tmp_path / "nope.csv"), "--target", "y"])
    assert exited.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error[validation_error]: "), lines
    assert "nope.csv does not exist" in lines[0]
    assert not (tmp_path / "artifacts").exists()


def test_a_webhook_misconfiguration_is_refused_before_training(tmp_path, monkeypatch, capsys):
    from hokusai.cli.train import main

    config = _config(tmp_path, fallback_model_path=tmp_path / "artifacts" / "xgb_model.pkl")
    monkeypatch.setenv("CONFIG_PATH", str(config))
    monkeypatch.setenv("HOKUSAI_WEBHOOK_URL", "https://hooks.example.com/hokusai")
    with pytest.raises(SystemExit) as exited:
        main(["--model-type", "logistic_regression", "--register-as", "fraud"])
    assert exited.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "error[validation_error]: HOKUSAI_WEBHOOK_URL is set but HOKUSAI_WEBHOOK_SECRET is "
        "not: unsigned webhooks are never sent."
    ]
    assert not (tmp_path / "artifacts").exists()  # nothing trained
