"""Every model route answers for Hokusai versions only: another team's model, registered with
plain MLflow in the same store, is a 404 ``model_not_found`` for reads and, for alias changes, a
404 ``not_a_hokusai_model`` (a ``model_not_found``) saying plainly that MLflow has it but
Hokusai did not register it — whatever the key, even when its run and tags look like a
pre-upgrade Hokusai version. A name MLflow does not have at all stays ``model_not_found``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from hokusai.errors import ModelNotFoundError, NotAHokusaiModelError
from tests.conftest import CONTRIBUTOR
from tests.rest.conftest import bearer

FOREIGN = "other_team_model"


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    return str(response.json()["error"]["message"])


@pytest.fixture
def stores(app: Any, client: TestClient, keys: dict[str, str], logged_uris: list[str]) -> Any:
    """A Hokusai baseline from one logged model, and another team's model registered from the
    other directly with ``MlflowClient``: its run logged ``model_type`` and ``is_baseline``
    params and its version carries a ``contributor`` tag, as plenty of teams' models do."""
    registered = client.post(
        "/api/v1/models",
        json={"model_uri": logged_uris[0], "model_type": "classification"},
        headers=bearer(keys["write"]),
    )
    assert registered.status_code == 201, registered.text
    mlflow_client = app.state.components.registry.client
    foreign_uuid = logged_uris[1].removeprefix("models:/")
    logged = mlflow_client.get_logged_model(foreign_uuid)
    mlflow_client.log_param(logged.source_run_id, "model_type", "classification")
    mlflow_client.log_param(logged.source_run_id, "is_baseline", "True")
    mlflow_client.create_registered_model(FOREIGN)
    version = mlflow_client.create_model_version(
        FOREIGN,
        source=logged.artifact_location,
        run_id=logged.source_run_id,
        model_id=foreign_uuid,
        tags={"contributor": CONTRIBUTOR},
    )
    assert str(version.version) == "1"
    mlflow_client.set_registered_model_alias(FOREIGN, "champion", "1")
    return {"hokusai": registered.json(), "foreign_uuid": foreign_uuid, "mlflow": mlflow_client}


def test_reads_of_a_foreign_model_are_404_not_a_hokusai_model(client, keys, stores):
    for scope in ("read", "admin"):
        headers = bearer(keys[scope])
        for path in (
            f"/api/v1/models/{FOREIGN}/versions/1",
            f"/api/v1/models/{FOREIGN}/versions/1/lineage",
            f"/api/v1/models/{FOREIGN}%2F1/lineage",
            f"/api/v1/models/{FOREIGN}/lineage",
        ):
            message = _error(client.get(path, headers=headers), 404, "model_not_found")
            assert "is not a Hokusai model" in message, (path, message)
            assert FOREIGN in message
        by_uuid = client.get(f"/api/v1/models/by-uuid/{stores['foreign_uuid']}", headers=headers)
        assert "is not a Hokusai model" in _error(by_uuid, 404, "model_not_found")
    # The Hokusai version next to it answers as before.
    read = bearer(keys["read"])
    hokusai = stores["hokusai"]
    assert (
        client.get(
            f"/api/v1/models/{hokusai['model_id'].replace('/', '/versions/')}", headers=read
        ).status_code
        == 200
    )
    found = client.get(f"/api/v1/models/by-uuid/{hokusai['model_uuid']}", headers=read)
    assert found.status_code == 200 and found.json()["model_id"] == hokusai["model_id"]
    listed = client.get("/api/v1/models", headers=read).json()
    assert [m["model_id"] for m in listed["data"]] == [hokusai["model_id"]]


def test_a_write_key_cannot_move_or_delete_a_foreign_alias(client, keys, stores):
    mlflow_client = stores["mlflow"]
    for scope in ("write", "admin"):
        headers = bearer(keys[scope])
        url = f"/api/v1/models/{FOREIGN}/aliases/champion"
        deleted = client.delete(url, headers=headers)
        message = _error(deleted, 404, "not_a_hokusai_model")
        assert f"Model {FOREIGN!r} is not a Hokusai model" in message
        assert "exists in MLflow but was not registered by Hokusai" in message
        moved = client.put(url, json={"version": "1"}, headers=headers)
        message = _error(moved, 404, "not_a_hokusai_model")
        assert f"Model '{FOREIGN}/1' is not a Hokusai model" in message
        assert "exists in MLflow but was not registered by Hokusai" in message
        assert f"model_uri models:/{FOREIGN}/1" in message  # how to register it
        created = client.put(
            url.replace("champion", "staging"), json={"version": "1"}, headers=headers
        )
        _error(created, 404, "not_a_hokusai_model")
        # A version MLflow does not have, of a model it has: still that model is not Hokusai's.
        missing = client.put(url, json={"version": "7"}, headers=headers)
        assert f"Model {FOREIGN!r} is not a Hokusai model" in _error(
            missing, 404, "not_a_hokusai_model"
        )
    assert mlflow_client.get_registered_model(FOREIGN).aliases == {"champion": 1}


def test_an_alias_of_a_name_mlflow_does_not_have_is_model_not_found(client, keys, stores):
    headers = bearer(keys["write"])
    url = "/api/v1/models/no_such_model/aliases/champion"
    message = _error(
        client.put(url, json={"version": "1"}, headers=headers), 404, "model_not_found"
    )
    assert message == "Model no_such_model/1 not found."
    message = _error(client.delete(url, headers=headers), 404, "model_not_found")
    assert "'no_such_model' not found" in message


def test_hokusai_aliases_still_move_and_go(client, keys, stores):
    headers = bearer(keys["write"])
    url = "/api/v1/models/hokusai_classification_baseline/aliases/champion"
    assert client.put(url, json={"version": "1"}, headers=headers).status_code == 200
    assert client.delete(url, headers=headers).status_code == 204
    _error(client.delete(url, headers=headers), 404, "model_not_found")
    _error(client.put(url, json={"version": "7"}, headers=headers), 404, "model_not_found")
    _error(
        client.put(url, json={"version": "1x"}, headers=headers), 422, "validation_error"
    )  # the body's own schema
    _error(
        client.get("/api/v1/models/hokusai_classification_baseline/versions/1x", headers=headers),
        422,
        "invalid_model_id",
    )


def test_the_library_refuses_to_delete_a_foreign_alias(app, stores):
    registry = app.state.components.registry
    with pytest.raises(NotAHokusaiModelError, match="is not a Hokusai model") as info:
        registry.delete_alias(FOREIGN, "champion")
    assert info.value.code == "not_a_hokusai_model"
    assert isinstance(info.value, ModelNotFoundError)  # callers catching not-found still do
    with pytest.raises(NotAHokusaiModelError, match="exists in MLflow but was not registered"):
        registry.set_alias(FOREIGN, "champion", "1")
    # A Hokusai-named model whose alias points at a version Hokusai did not register.
    mlflow_client = stores["mlflow"]
    improved = "hokusai_classification_improved"
    mlflow_client.create_registered_model(improved)
    mlflow_client.create_model_version(improved, source="file:///nowhere")
    mlflow_client.set_registered_model_alias(improved, "champion", "1")
    with pytest.raises(NotAHokusaiModelError, match="which is not a Hokusai model") as info:
        registry.delete_alias(improved, "champion")
    assert info.value.code == "not_a_hokusai_model"
    with pytest.raises(NotAHokusaiModelError, match=f"Model '{improved}/1' is not a Hokusai"):
        registry.set_alias(improved, "champion", "1")
    assert mlflow_client.get_registered_model(improved).aliases == {"champion": 1}
    assert mlflow_client.get_registered_model(FOREIGN).aliases == {"champion": 1}
