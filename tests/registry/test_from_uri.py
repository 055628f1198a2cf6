"""Registering an already-logged model by URI, listing, and aliases (promote / roll back)."""

from __future__ import annotations

from typing import Any

import pytest

from hokusai.errors import (
    BaselineNotFoundError,
    InvalidModelTypeError,
    ModelNotFoundError,
    NotAHokusaiModelError,
    ValidationError,
)
from tests.conftest import CONTRIBUTOR


@pytest.fixture
def logged(registry, forest, settings) -> Any:
    """A model logged with plain MLflow into the registry's store (as a CI job would)."""
    import mlflow
    import mlflow.sklearn

    mlflow.set_tracking_uri(registry.tracking_uri)
    try:
        experiment = registry.client.create_experiment(
            "ci", artifact_location=(settings.home_path / "ci").as_uri()
        )
        with mlflow.start_run(experiment_id=experiment) as run:
            info = mlflow.sklearn.log_model(
                forest,
                name="model",
                serialization_format="cloudpickle",
                pip_requirements=["scikit-learn"],
            )
    finally:
        mlflow.set_tracking_uri(None)
    return {"info": info, "run_id": run.info.run_id}


@pytest.mark.parametrize("form", ["models", "runs"])
def test_register_from_uri_as_baseline(registry, logged, form):
    info = logged["info"]
    uri = info.model_uri if form == "models" else f"runs:/{logged['run_id']}/model"
    result = registry.register_from_uri(uri, "classification", {"source": "ci", "n": [1, 2]})
    assert result["model_id"] == "hokusai_classification_baseline/1"
    assert result["model_uuid"] == info.model_uuid
    assert result["model_uri"] == f"models:/{info.model_uuid}"
    assert result["flavors"] == ["python_function", "sklearn"]
    assert result["metadata"] == {"source": "ci", "n": [1, 2]}
    found = registry.get_model_by_uuid(info.model_uuid)
    assert found["model_id"] == result["model_id"]
    assert found["metadata"] == {"source": "ci", "n": [1, 2]}


def test_register_from_uri_as_improvement_and_by_version_uri(registry, logged, forest):
    base = registry.register_baseline(forest, "classification", {})
    result = registry.register_from_uri(
        logged["info"].model_uri,
        "classification",
        baseline_id=base["model_id"],
        contributor=CONTRIBUTOR.lower(),
        delta_metrics={"accuracy": 0.01},
    )
    assert result["contributor"] == CONTRIBUTOR
    again = registry.register_from_uri(f"models:/{result['model_name']}/1", "classification")
    assert again["model_uuid"] == result["model_uuid"]


@pytest.mark.parametrize(
    ("uri", "kwargs", "error", "message"),
    [
        ("s3://bucket/model", {}, ValidationError, "not an MLflow model URI"),
        ("models:/m-00000000000000000000000000000000", {}, ValidationError, "does not name"),
        ("runs:/0123456789abcdef0123456789abcdef/model", {}, ValidationError, "does not name"),
        ("models:/nope/1", {}, ValidationError, "does not name"),
        ("", {}, ValidationError, "non-empty"),
        ("LOGGED", {"model_type": "Bad Type"}, InvalidModelTypeError, "Invalid model_type"),
        (
            "LOGGED",
            {"baseline_id": "hokusai_classification_baseline/1"},
            ValidationError,
            "together",
        ),
        (
            "LOGGED",
            {
                "baseline_id": "hokusai_x_baseline/9",
                "contributor": CONTRIBUTOR,
                "delta_metrics": {"a": 1},
            },
            BaselineNotFoundError,
            "does not name",
        ),
    ],
)
def test_register_from_uri_refuses_bad_input_and_writes_nothing(
    registry, logged, uri, kwargs, error, message
):
    uri = logged["info"].model_uri if uri == "LOGGED" else uri
    model_type = kwargs.pop("model_type", "classification")
    with pytest.raises(error, match=message):
        registry.register_from_uri(uri, model_type, **kwargs)
    assert list(registry.client.search_model_versions("name LIKE 'hokusai_%'")) == []


def test_improvement_must_keep_the_baseline_type(registry, logged, forest):
    base = registry.register_baseline(forest, "ranking", {})
    with pytest.raises(ValidationError, match="keeps its baseline's type"):
        registry.register_from_uri(
            logged["info"].model_uri,
            "classification",
            baseline_id=base["model_id"],
            contributor=CONTRIBUTOR,
            delta_metrics={"a": 0.1},
        )


def test_list_models_pages_and_filters(registry, forest):
    base = registry.register_baseline(forest, "classification", {})
    registry.register_baseline(forest, "ranking", {})
    registry.register_improved_model(forest, base["model_id"], {"a": 0.1}, CONTRIBUTOR)
    everything, token = registry.list_models()
    assert [m["model_id"] for m in everything] == [
        "hokusai_classification_improved/1",
        "hokusai_ranking_baseline/1",
        "hokusai_classification_baseline/1",
    ]
    assert token is None
    first, token = registry.list_models(max_results=2)
    assert len(first) == 2
    assert token is not None
    rest, _ = registry.list_models(max_results=2, page_token=token)
    assert [m["model_id"] for m in first + rest] == [m["model_id"] for m in everything]
    baselines, _ = registry.list_models(kind="baseline", model_type="classification")
    assert [m["model_id"] for m in baselines] == ["hokusai_classification_baseline/1"]
    with pytest.raises(ValidationError, match="kind"):
        registry.list_models(kind="other")
    for garbage in ("abc", "ü", "0000"):
        with pytest.raises(ValidationError, match="Invalid page_token"):
            registry.list_models(page_token=garbage)


def test_aliases_promote_roll_back_and_announce(registry, forest):
    from hokusai.webhooks.tables import events

    first = registry.register_baseline(forest, "classification", {})
    second = registry.register_baseline(forest, "classification", {})
    name = first["model_name"]
    promoted = registry.set_alias(name, "champion", "2")
    assert promoted["previous_version"] is None
    assert registry.get_model_by_uuid(second["model_uuid"])["aliases"] == ["champion"]
    rolled_back = registry.set_alias(name, "champion", "1")
    assert rolled_back["previous_version"] == "2"
    assert registry.get_model_by_uuid(first["model_uuid"])["aliases"] == ["champion"]
    import sqlalchemy as sa

    with registry.webhooks.engine.connect() as conn:
        types = conn.execute(sa.select(events.c.event_type).order_by(events.c.created_at))
        assert [t for (t,) in types] == [
            "model_registered",
            "model_registered",
            "model_promoted",
            "model_promoted",
        ]
    assert registry.delete_alias(name, "champion")["previous_version"] == "1"
    with pytest.raises(ModelNotFoundError):
        registry.delete_alias(name, "champion")
    with pytest.raises(ValidationError, match="reserved"):
        registry.set_alias(name, "latest", "1")
    with pytest.raises(ModelNotFoundError):
        registry.set_alias(name, "champion", "9")


def test_aliases_of_a_model_mlflow_has_but_hokusai_did_not_register(registry, forest, logged):
    """The rollback runbook's failure: an alias route on a plain MLflow model (``fraud/1``,
    what ``mlflow.register_model`` makes) refuses plainly, saying how to register it."""
    from hokusai.registry.records import TAG_REGISTRATION_STATE

    client = registry.client
    import mlflow

    from hokusai.registry.backend import mlflow_scope

    with mlflow_scope(registry.tracking_uri, registry.registry_uri):
        mlflow.register_model(logged["info"].model_uri, "fraud")  # as plain MLflow registers
    client.set_registered_model_alias("fraud", "champion", "1")
    for attempt in (
        lambda: registry.set_alias("fraud", "champion", "1"),
        lambda: registry.set_alias("fraud", "canary", "2"),  # no version 2: still not Hokusai's
        lambda: registry.delete_alias("fraud", "champion"),
    ):
        with pytest.raises(NotAHokusaiModelError) as info:
            attempt()
        assert info.value.code == "not_a_hokusai_model" and info.value.status == 404
        assert isinstance(info.value, ModelNotFoundError)
        assert "exists in MLflow but was not registered by Hokusai" in info.value.message
        assert "register_from_uri" in info.value.message
    assert client.get_registered_model("fraud").aliases == {"champion": 1}

    # A name MLflow does not have at all is plainly not found.
    for attempt in (
        lambda: registry.set_alias("fruad", "champion", "1"),
        lambda: registry.delete_alias("fruad", "champion"),
        lambda: registry.set_alias("hokusai_fraud_baseline", "champion", "1"),
    ):
        with pytest.raises(ModelNotFoundError) as info:
            attempt()
        assert type(info.value) is ModelNotFoundError
        assert info.value.code == "model_not_found"

    # Registering it through Hokusai makes a version the alias routes accept.
    base = registry.register_from_uri("models:/fraud/1", "fraud")
    assert registry.set_alias(base["model_name"], "champion", base["version"])["version"] == "1"

    # A Hokusai version whose registration has not completed is not found, not "foreign".
    second = registry.register_baseline(forest, "fraud", {})
    client.set_model_version_tag(
        second["model_name"], second["version"], TAG_REGISTRATION_STATE, "registering"
    )
    with pytest.raises(ModelNotFoundError) as info:
        registry.set_alias(second["model_name"], "champion", second["version"])
    assert type(info.value) is ModelNotFoundError
