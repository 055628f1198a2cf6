"""The tracking server unreachable: a closed port, a partition between requests, a partition in
the middle of a registration (a TCP proxy the test cuts, as the Redis outage tests do).

What must hold: the failure is a typed error within seconds (MLflow's default is minutes of
retries), the API answers 503 naming MLflow and needs no restart once the server is back, and
the outbox holds exactly one event per registration that succeeded — none for a failed one,
whose leftovers are never read or announced.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from hokusai.config import Settings
from hokusai.errors import BackendUnavailableError
from hokusai.services.model_registry import HokusaiModelRegistry
from tests.stack.conftest import log_model
from tests.stack.stack import PROXIED, LoopbackStack, TcpProxy, TrackingServer, free_port

# MLflow's own HTTP settings are what the registry bounds when nobody set them: no test here
# may inherit them from the environment.
MLFLOW_HTTP = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
)
# MLflow's defaults retry a refused connection for over four minutes; a failure that takes
# longer than this means the bound is gone (a guard against hanging, not a speed assertion).
HANG = 90


@pytest.fixture
def server(loopback_stack: LoopbackStack) -> TrackingServer:
    return loopback_stack.tracking(PROXIED)


@pytest.fixture
def proxy(server: TrackingServer) -> Iterator[TcpProxy]:
    with TcpProxy(("127.0.0.1", server.port)) as relay:
        yield relay


@pytest.fixture
def _unbounded(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in MLFLOW_HTTP:
        monkeypatch.delenv(key, raising=False)


@pytest.mark.timeout(HANG)
@pytest.mark.usefixtures("_unbounded")
def test_a_closed_port_is_backend_unavailable_naming_mlflow(tmp_path: Path, logistic):
    settings = Settings(home=tmp_path / "home", tracking_uri=f"http://127.0.0.1:{free_port()}")
    registry = HokusaiModelRegistry(settings=settings)
    with pytest.raises(BackendUnavailableError, match="MLflow is unreachable") as info:
        registry.register_baseline(logistic, "unreachable")
    assert info.value.code == "backend_unavailable"


@pytest.fixture
def api(
    tmp_path: Path, proxy: TcpProxy, project_database: str
) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    """The REST service reaching MLflow through the proxy; its own database is a fresh one
    (so its outbox holds this test's events only)."""
    from hokusai.rest.app import create_app

    settings = Settings(
        home=tmp_path / "home",
        tracking_uri=proxy.url,
        database_url=project_database,
        webhook_background=False,
    )
    app = create_app(settings)
    store = app.state.components.keys
    write = store.create(name="writer", scope="write")[1]
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {write}"}, app.state.components


def _register(client: TestClient, headers: dict[str, str], uri: str, model_type: str) -> Any:
    return client.post(
        "/api/v1/models", json={"model_uri": uri, "model_type": model_type}, headers=headers
    )


def _unavailable(response: Any) -> str:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "backend_unavailable"
    assert "MLflow" in error["message"]
    return str(error["message"])


def _events(components: Any, model_name: str) -> list[str]:
    with components.webhooks.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT model_version FROM hokusai_webhook_events "
                "WHERE model_name = :name AND event_type = 'model_registered' "
                "ORDER BY model_version"
            ),
            {"name": model_name},
        )
        return [str(version) for version in rows.scalars()]


def _versions(server: TrackingServer, model_name: str) -> dict[str, str | None]:
    """Every version MLflow has of ``model_name`` (asked directly, not through the proxy),
    with its Hokusai registration state."""
    from mlflow import MlflowClient

    found = MlflowClient(server.url).search_model_versions(f"name = '{model_name}'")
    return {str(v.version): v.tags.get("hokusai.registration_state") for v in found}


def _healthy_again(client: TestClient, *, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while client.get("/health").status_code != 200:
        assert time.monotonic() < deadline, "the API did not see MLflow again"
        time.sleep(0.2)


@pytest.mark.timeout(HANG * 3)
@pytest.mark.usefixtures("_unbounded")
def test_the_api_answers_503_while_mlflow_is_cut_and_recovers_by_itself(
    api, proxy, server, logistic, model_type
):
    client, write, components = api
    name = f"hokusai_{model_type}_baseline"
    uris = [log_model(server, logistic) for _ in range(3)]
    assert _register(client, write, uris[0], model_type).status_code == 201

    proxy.stop()
    _unavailable(_register(client, write, uris[1], model_type))
    health = client.get("/health")
    assert health.status_code == 503
    assert "mlflow" in health.json()["services"]

    proxy.start()
    _healthy_again(client)
    again = _register(client, write, uris[2], model_type)
    assert again.status_code == 201, again.text
    assert again.json()["version"] == "2"

    # One event per registration that succeeded; nothing half-written in MLflow.
    assert _events(components, name) == ["1", "2"]
    assert _versions(server, name) == {"1": "complete", "2": "complete"}


@pytest.mark.timeout(HANG * 3)
@pytest.mark.usefixtures("_unbounded")
def test_a_cut_in_the_middle_of_a_registration_leaves_nothing_visible(
    api, proxy, server, logistic, model_type
):
    """The cut lands after MLflow created the version and before the client heard of it: the
    rollback cannot reach MLflow either. The client gets a 503; the version MLflow holds stays
    'registering' — never read, never announced, not even by the reconciler."""
    client, write, components = api
    name = f"hokusai_{model_type}_baseline"
    uris = [log_model(server, logistic) for _ in range(2)]

    proxy.cut_at(b"/model-versions/create")
    message = _unavailable(_register(client, write, uris[0], model_type))
    assert proxy.cut.is_set()
    assert _versions(server, name) == {"1": "registering"}

    proxy.start()
    _healthy_again(client)
    registry = components.registry
    assert registry.list_models(model_type=model_type)[0] == []
    with pytest.raises(Exception, match="not found"):
        registry.get_model(f"{name}/1")
    components.webhooks.reconcile(registry.queries, min_age_seconds=0)
    assert _events(components, name) == []

    again = _register(client, write, uris[1], model_type)
    assert again.status_code == 201, again.text
    assert _events(components, name) == [again.json()["version"]]
    assert message  # the client was told which service failed, and to retry
