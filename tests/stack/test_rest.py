"""The REST service on the stack: models logged by a CI job to the tracking server, registered
and read back through the API, with Hokusai's tables in MLflow's PostgreSQL database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.stack.conftest import log_model


@pytest.fixture
def api(stack_settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    from hokusai.rest.app import create_app

    app = create_app(stack_settings.model_copy(update={"webhook_background": False}))
    store = app.state.components.keys
    keys = {
        scope: store.create(name=f"stack-{scope}", scope=scope)[1] for scope in ("read", "write")
    }
    with TestClient(app) as client:
        yield client, keys


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_register_and_read_through_the_api(api, tracking, loopback_stack, logistic, model_type):
    client, keys = api
    write, read = _bearer(keys["write"]), _bearer(keys["read"])
    uris = [log_model(tracking, logistic) for _ in range(2)]

    response = client.post(
        "/api/v1/models",
        json={"model_uri": uris[0], "model_type": model_type, "metadata": {"job": "ci"}},
        headers=write,
    )
    assert response.status_code == 201, response.text
    base = response.json()
    contributor = "0x" + secrets.token_hex(20)
    response = client.post(
        "/api/v1/models",
        json={
            "model_uri": uris[1],
            "model_type": model_type,
            "baseline_id": base["model_id"],
            "contributor": contributor,
            "delta_metrics": {"accuracy": 0.01},
        },
        headers=write,
    )
    assert response.status_code == 201, response.text
    improved = response.json()

    found = client.get(f"/api/v1/models/by-uuid/{base['model_uuid']}", headers=read)
    assert found.status_code == 200, found.text
    assert found.json()["model_id"] == base["model_id"]
    assert found.json()["metadata"] == {"job": "ci"}
    lineage = client.get(
        f"/api/v1/models/{improved['model_name']}/versions/{improved['version']}/lineage",
        headers=read,
    )
    assert [entry["model_id"] for entry in lineage.json()["data"]] == [
        base["model_id"],
        improved["model_id"],
    ]
    mine = client.get(f"/api/v1/contributors/{contributor}/models", headers=read)
    assert [m["model_id"] for m in mine.json()["data"]] == [improved["model_id"]]
    # The logged models' files are in the bucket, wherever the CI job's client put them.
    keys_in_bucket = loopback_stack.s3.keys(tracking.artifact_prefix)
    for result in (base, improved):
        assert any(f"/models/{result['model_uuid']}/" in key for key in keys_in_bucket)

    health = client.get("/health")
    assert health.status_code == 200, health.text
    assert _state(health.json(), "mlflow") in {"ok", "healthy"}


def _state(body: dict[str, Any], service: str) -> str:
    """A service's state in /health, whether it is a string or an object with a status."""
    value = body["services"][service]
    return str(value["status"] if isinstance(value, dict) else value)
