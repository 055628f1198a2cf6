"""Training against a real MLflow store on a temp SQLite file, the CLI, and models/train.py."""

from __future__ import annotations

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


# --- registration --------------------------------------------------------------------------


def test_register_as_with_alias(store, tmp_path):
    settings, project = store
    result = train(
        "random_forest",
        settings=settings,
        project=project,
        register_as="cancer-classifier",
        alias="champion",
        fallback_path=tmp_path / "registered.pkl",
    )
    assert result.registered_name == "cancer-classifier"
    assert result.registered_version == 1 and result.alias == "champion"
    client = _client(settings)
    versions = client.search_model_versions("name = 'cancer-classifier'")
    assert len(versions) == 1
    version = versions[0]
    assert version.source == result.model_uri and version.run_id == result.run_id
    assert int(client.get_model_version_by_alias("cancer-classifier", "champion").version) == 1
    assert client.get_run(result.run_id).info.status == "FINISHED"


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
        ("none", None, {"register_as": "a/b"}, r"must not contain '/'"),
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
    assert body["registered_name"] == "lr" and body["registered_version"] == 1
    assert body["tracking_uri"] == Settings(home=tmp_path / "home").resolved_tracking_uri
    client = _client(Settings(home=tmp_path / "home"))
    assert client.get_experiment(body["experiment_id"]).name == "cli-tests"


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
