from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hokusai.config import Settings
from tests.backends import Backend


@pytest.fixture
def api_settings(backend: Backend) -> Settings:
    """The test's store (on the stack: the one-database deployment, MLflow's PostgreSQL
    database holding Hokusai's tables too)."""
    return backend.settings(webhook_background=False)


@pytest.fixture
def app(api_settings: Settings) -> Any:
    from hokusai.rest.app import create_app

    return create_app(api_settings)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def keys(app: Any) -> dict[str, str]:
    store = app.state.components.keys
    return {
        scope: store.create(name=f"test-{scope}", scope=scope)[1]
        for scope in ("read", "write", "admin")
    }


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def logged_uris(app: Any, forest: Any, backend: Backend) -> list[str]:
    """Two models logged with plain MLflow into the API's store, as a CI job would."""
    import mlflow
    import mlflow.sklearn

    registry = app.state.components.registry
    mlflow.set_tracking_uri(registry.tracking_uri)
    uris = []
    try:
        experiment = backend.experiment(registry.client, "ci")
        for _ in range(2):
            with mlflow.start_run(experiment_id=experiment):
                info = mlflow.sklearn.log_model(
                    forest,
                    name="model",
                    serialization_format="cloudpickle",
                    pip_requirements=["scikit-learn"],
                )
            uris.append(str(info.model_uri))
    finally:
        mlflow.set_tracking_uri(None)
    return uris


@pytest.fixture
def logged_uri(logged_uris: list[str]) -> str:
    return logged_uris[0]
