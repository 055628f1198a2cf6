"""Registration against a real MLflow store (temp SQLite + temp artifact folder)."""

from __future__ import annotations

import importlib.metadata
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hokusai.errors import (
    BaselineNotFoundError,
    InvalidContributorError,
    InvalidMetadataError,
    InvalidModelIdError,
    InvalidModelTypeError,
    ModelPredictionError,
    SignatureMismatchError,
    UnsupportedModelError,
    ValidationError,
)
from tests.conftest import CONTRIBUTOR

BASE_FIELDS = {
    "model_id",
    "model_name",
    "version",
    "model_type",
    "is_baseline",
    "run_id",
    "registration_timestamp",
    "model_uri",
    "model_uuid",
    "artifact_path",
    "mlflow_version",
    "flavors",
    "signature",
    "metadata",
}
IMPROVED_FIELDS = BASE_FIELDS | {"baseline_id", "contributor", "delta_metrics"}


def _versions(registry: Any, name: str) -> list[Any]:
    return list(registry.client.search_model_versions(f"name = '{name}'"))


def _local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


@pytest.mark.backends
def test_baseline_result_carries_model_info_and_model_version(registry, backend, forest, iris):
    features, _ = iris
    model_type = backend.model_type("classification")
    result = registry.register_baseline(
        forest, model_type, {"dataset": "iris"}, input_example=features.head(3)
    )
    assert BASE_FIELDS <= set(result)
    assert result["model_name"] == f"hokusai_{model_type}_baseline"
    assert result["version"] == "1"
    assert result["model_id"] == f"hokusai_{model_type}_baseline/1"
    assert result["is_baseline"] is True
    assert result["model_type"] == model_type
    assert result["model_uuid"].startswith("m-") and len(result["model_uuid"]) == 34
    assert result["model_uri"] == f"models:/{result['model_uuid']}"
    assert result["artifact_path"].startswith(backend.artifact_scheme)
    assert result["mlflow_version"] == importlib.metadata.version("mlflow")
    assert result["flavors"] == ["python_function", "sklearn"]
    assert "sepal length (cm)" in result["signature"]
    assert result["metadata"] == {"dataset": "iris"}
    assert datetime.fromisoformat(result["registration_timestamp"]).tzinfo is not None
    assert "contributor" not in result


@pytest.mark.backends
def test_exactly_one_version_per_registration(registry, backend, forest):
    first = registry.register_baseline(forest, backend.model_type("classification"), {})
    second = registry.register_baseline(forest, backend.model_type("classification"), {})
    assert [first["version"], second["version"]] == ["1", "2"]
    assert len(_versions(registry, backend.model_name("classification"))) == 2
    for result in (first, second):
        by_run = list(registry.client.search_model_versions(f"run_id = '{result['run_id']}'"))
        assert len(by_run) == 1


@pytest.mark.backends
def test_version_tags_make_attribution_searchable_in_mlflow(registry, backend, forest):
    contributor = backend.address(CONTRIBUTOR)
    base = registry.register_baseline(forest, backend.model_type("lead_scoring"), {})
    improved = registry.register_improved_model(
        forest, base["model_id"], {"accuracy": 0.02}, contributor.lower()
    )
    mv = registry.client.get_model_version(improved["model_name"], improved["version"])
    assert mv.tags == {
        "hokusai.model_uuid": improved["model_uuid"],
        "hokusai.model_type": backend.model_type("lead_scoring"),
        "hokusai.is_baseline": "false",
        "hokusai.baseline_id": base["model_id"],
        "hokusai.contributor": contributor,
        "hokusai.delta_metrics": '{"accuracy":0.02}',
        "hokusai.registration_run_id": improved["registration_run_id"],
        "hokusai.registration_state": "complete",
    }
    found = registry.client.search_model_versions(f"tags.`hokusai.contributor` = '{contributor}'")
    assert [str(v.version) for v in found] == [improved["version"]]
    run = registry.client.get_run(improved["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["baseline_model_id"] == base["model_id"]
    assert run.data.metrics == {"delta.accuracy": 0.02}


def test_existing_callers_passing_model_type_and_metadata_keep_working(registry, forest):
    result = registry.register_baseline(forest, "regression", {"owner": "team-a", "n": 3})
    for key in ("model_id", "model_name", "version", "model_type", "run_id"):
        assert key in result
    with pytest.raises(ValueError, match="Invalid model_type"):
        registry.register_baseline(forest, "Not Valid", {})


def test_random_forest_is_saved_with_skops_and_loads_back(registry, forest, iris):
    import mlflow.pyfunc
    import yaml

    features, _ = iris
    result = registry.register_baseline(forest, "classification", {})
    mlmodel = yaml.safe_load((_local(result["artifact_path"]) / "MLmodel").read_text())
    assert mlmodel["flavors"]["sklearn"]["serialization_format"] == "skops"
    assert "sklearn.tree._tree.Tree" in mlmodel["flavors"]["sklearn"]["skops_trusted_types"]
    loaded = mlflow.pyfunc.load_model(result["artifact_path"])
    assert list(loaded.predict(features.head(5))) == list(forest.predict(features.head(5)))


def test_pip_requirements_are_exact_pins_without_inference(registry, forest):
    result = registry.register_baseline(forest, "classification", {})
    lines = (_local(result["artifact_path"]) / "requirements.txt").read_text().split()
    expected = {
        f"{dist}=={importlib.metadata.version(dist)}"
        for dist in ("mlflow", "scikit-learn", "skops", "numpy", "scipy", "pandas")
    }
    assert set(lines) == expected


def test_explicit_pip_requirements_win(registry, forest):
    result = registry.register_baseline(
        forest, "classification", {}, pip_requirements=["scikit-learn", "skops"]
    )
    lines = (_local(result["artifact_path"]) / "requirements.txt").read_text().split()
    assert "scikit-learn" in lines and "skops" in lines
    with pytest.raises(ValidationError, match="not both"):
        registry.register_baseline(
            forest, "classification", {}, pip_requirements=["a"], extra_pip_requirements=["b"]
        )


def test_signature_is_inferred_from_the_input_example(registry, forest, iris):
    features, _ = iris
    result = registry.register_baseline(
        forest, "classification", {}, input_example=features.head(2)
    )
    assert "petal width (cm)': double" in result["signature"]
    assert (_local(result["artifact_path"]) / "input_example.json").exists()


def test_no_signature_without_example(registry, forest):
    assert registry.register_baseline(forest, "classification", {})["signature"] is None


@pytest.fixture
def iris_signature(forest, iris) -> Any:
    from mlflow.models import infer_signature

    features, _ = iris
    return infer_signature(features.head(), forest.predict(features.head()))


@pytest.mark.parametrize(
    ("mutate", "column", "message"),
    [
        (lambda f: f.drop(columns=["petal width (cm)"]), "petal width (cm)", "missing column"),
        (lambda f: f.assign(extra=1.0), "extra", "does not declare"),
        (
            lambda f: f.assign(**{"sepal width (cm)": "wide"}),
            "sepal width (cm)",
            "does not match the signature",
        ),
    ],
    ids=["missing", "extra", "mistyped"],
)
def test_example_violating_the_signature_names_the_column_and_registers_nothing(
    registry, forest, iris, iris_signature, mutate, column, message
):
    features, _ = iris
    example = mutate(features.head(3).copy())
    with pytest.raises(SignatureMismatchError, match=message) as info:
        registry.register_baseline(
            forest, "classification", {}, signature=iris_signature, input_example=example
        )
    assert info.value.column == column
    assert info.value.code == "signature_mismatch"
    assert column in str(info.value)
    assert _versions(registry, "hokusai_classification_baseline") == []


def test_matching_example_and_signature_register(registry, forest, iris, iris_signature):
    features, _ = iris
    result = registry.register_baseline(
        forest, "classification", {}, signature=iris_signature, input_example=features.head(3)
    )
    assert result["signature"] == str(iris_signature)


def test_model_that_cannot_predict_on_its_example_is_refused(registry, iris, iris_signature):
    features, _ = iris

    def broken(model_input: Any) -> Any:
        raise RuntimeError("feature store offline")

    with pytest.raises(ModelPredictionError, match="feature store offline") as info:
        registry.register_baseline(
            broken, "classification", {}, signature=iris_signature, input_example=features.head()
        )
    assert info.value.code == "prediction_failed"


def test_xgboost_model_uses_the_xgboost_flavor(registry, iris):
    import xgboost

    features, target = iris
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(features, target)
    result = registry.register_baseline(model, "classification", {}, input_example=features.head(2))
    assert result["flavors"] == ["python_function", "xgboost"]
    lines = (_local(result["artifact_path"]) / "requirements.txt").read_text().split()
    assert f"xgboost=={importlib.metadata.version('xgboost')}" in lines
    assert not any(line.startswith("scikit-learn") for line in lines)


def test_lightgbm_model_uses_the_lightgbm_flavor(registry, iris):
    lightgbm = pytest.importorskip("lightgbm")
    features, target = iris
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(features, target)
    result = registry.register_baseline(model, "classification", {})
    assert result["flavors"] == ["lightgbm", "python_function"]


class _Doubler:
    """A plain object with predict(model_input): wrapped as pyfunc."""

    def predict(self, model_input: Any) -> Any:
        return model_input * 2


def test_python_model_callable_and_predict_object_are_logged_as_pyfunc(registry, iris):
    import mlflow.pyfunc
    import pandas as pd

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return [1] * len(model_input)

    def identity(model_input: Any) -> Any:
        return model_input

    frame = pd.DataFrame({"x": [1.0, 2.0]})
    for model in (Constant(), identity, _Doubler()):
        result = registry.register_baseline(
            model, "ranking", {}, input_example=frame, pip_requirements=["pandas"]
        )
        assert result["flavors"] == ["python_function"]
        loaded = mlflow.pyfunc.load_model(result["artifact_path"])
        assert len(loaded.predict(frame)) == 2


@pytest.mark.parametrize("model", [None, "a string", 42, object(), lambda a, b: a])
def test_unsupported_models_are_refused_before_anything_is_written(registry, model):
    with pytest.raises(UnsupportedModelError) as info:
        registry.register_baseline(model, "classification", {})
    assert info.value.code == "unsupported_model"
    assert _versions(registry, "hokusai_classification_baseline") == []


@pytest.mark.backends
def test_large_nested_metadata_round_trips_everywhere(registry, backend, forest):
    metadata = {
        "rows": [{"id": i, "text": "x" * 180, "tags": ["a", {"b": i}]} for i in range(1000)],
        "nested": {"deep": {"deeper": [1, 2.5, None, True]}},
    }
    base = registry.register_baseline(forest, backend.model_type("classification"), metadata)
    assert base["metadata"] == metadata
    assert registry.get_model_by_uuid(base["model_uuid"])["metadata"] == metadata
    improved = registry.register_improved_model(
        forest, base["model_id"], {"auc": 0.01}, backend.address(CONTRIBUTOR), metadata={"small": 1}
    )
    lineage = registry.get_model_lineage(improved["model_id"])
    assert lineage[0]["metadata"] == metadata
    assert lineage[1]["metadata"] == {"small": 1}


def test_non_serialisable_metadata_is_refused(registry, forest):
    with pytest.raises(InvalidMetadataError, match="not JSON-serialisable"):
        registry.register_baseline(forest, "classification", {"when": datetime.now()})
    assert _versions(registry, "hokusai_classification_baseline") == []


def test_code_paths_are_logged_with_the_model(registry, tmp_path):
    helper = tmp_path / "feature_helpers.py"
    helper.write_text("def double(x):\n    return x * 2\n")

    def model(model_input: Any) -> Any:
        return model_input

    result = registry.register_baseline(model, "ranking", {}, code_paths=[str(helper)])
    assert result["code_paths"] == ["code/feature_helpers.py"]
    assert (_local(result["artifact_path"]) / "code" / "feature_helpers.py").exists()
    assert registry.get_model_by_uuid(result["model_uuid"])["code_paths"] == [
        "code/feature_helpers.py"
    ]
    with pytest.raises(ValidationError, match="does not exist"):
        registry.register_baseline(model, "ranking", {}, code_paths=[str(tmp_path / "nope.py")])


@pytest.mark.backends
def test_improved_model_result_and_checksummed_contributor(registry, backend, forest):
    contributor = backend.address(CONTRIBUTOR)
    base = registry.register_baseline(forest, backend.model_type("classification"), {})
    result = registry.register_improved_model(
        forest, base["model_id"], {"accuracy": 0.03, "f1": 0.01}, contributor.lower()
    )
    assert IMPROVED_FIELDS <= set(result)
    assert result["model_name"] == backend.model_name("classification", "improved")
    assert result["is_baseline"] is False
    assert result["baseline_id"] == base["model_id"]
    assert result["contributor"] == contributor
    assert result["delta_metrics"] == {"accuracy": 0.03, "f1": 0.01}


def test_improvements_can_chain(registry, forest):
    base = registry.register_baseline(forest, "classification", {})
    first = registry.register_improved_model(forest, base["model_id"], {"a": 0.1}, CONTRIBUTOR)
    second = registry.register_improved_model(forest, first["model_id"], {"a": 0.2}, CONTRIBUTOR)
    assert second["model_name"] == first["model_name"]
    assert second["baseline_id"] == first["model_id"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"baseline_id": "hokusai_classification_baseline/99"},
            BaselineNotFoundError,
            "does not name an existing",
        ),
        ({"baseline_id": "not-a-model-id"}, InvalidModelIdError, "Invalid model id"),
        ({"contributor": "0xnothex"}, InvalidContributorError, "Invalid contributor"),
        ({"delta_metrics": {}}, ValidationError, "at least one metric"),
        ({"delta_metrics": {"acc": float("nan")}}, ValidationError, "not a finite number"),
    ],
)
def test_improved_model_validation_errors_register_nothing(
    registry, forest, kwargs, error, message
):
    base = registry.register_baseline(forest, "classification", {})
    arguments = {
        "baseline_id": base["model_id"],
        "delta_metrics": {"accuracy": 0.01},
        "contributor": CONTRIBUTOR,
        **kwargs,
    }
    with pytest.raises(error, match=message):
        registry.register_improved_model(forest, **arguments)
    assert _versions(registry, "hokusai_classification_improved") == []


def test_a_non_hokusai_version_is_not_a_baseline(registry, forest):
    registry.client.create_registered_model("someone_elses_model")
    registry.client.create_model_version("someone_elses_model", source="file:///tmp/x")
    with pytest.raises(BaselineNotFoundError):
        registry.register_improved_model(forest, "someone_elses_model/1", {"acc": 0.1}, CONTRIBUTOR)


def test_model_type_is_validated_first(registry, forest):
    with pytest.raises(InvalidModelTypeError):
        registry.register_baseline(forest, "DROP TABLE", {})


def test_registering_inside_a_callers_active_run_nests_under_it(registry, forest, settings):
    import mlflow

    mlflow.set_tracking_uri(registry.tracking_uri)
    try:
        experiment = registry.client.create_experiment(
            "training", artifact_location=(settings.home_path / "training").as_uri()
        )
        with mlflow.start_run(experiment_id=experiment) as outer:
            result = registry.register_baseline(forest, "classification", {})
            assert mlflow.active_run().info.run_id == outer.info.run_id
        run = registry.client.get_run(result["run_id"])
        assert run.data.tags["mlflow.parentRunId"] == outer.info.run_id
    finally:
        mlflow.set_tracking_uri(None)


def test_skops_trusted_types_are_computed_once_per_model_shape(iris):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from hokusai.registry import flavors

    features, target = iris
    first = RandomForestClassifier(n_estimators=3, random_state=1).fit(features, target)
    second = RandomForestClassifier(n_estimators=7, random_state=2).fit(features, target)
    other = LogisticRegression(max_iter=300).fit(features, target)
    assert flavors._type_shape(first) == flavors._type_shape(second)
    assert flavors._type_shape(first) != flavors._type_shape(other)
    assert flavors._untrusted_types(first) == ["sklearn.tree._tree.Tree"]
    assert flavors._untrusted_types(second) == ["sklearn.tree._tree.Tree"]
    assert flavors._untrusted_types(other) == []
