"""Hokusai's PostgreSQL database unreachable mid-run: a TCP proxy between it and both the REST
service and a webhook worker (``hokusai webhooks worker``, its own process), cut and restored.

What must hold: while the database is cut, every request that needs it answers 503
``backend_unavailable`` naming the project database, and /health says ``postgres`` is unhealthy
(MLflow, on its own connection, stays healthy); once it is back, the service and the worker
recover by themselves — same process, no restart; and every registration that succeeded has its
``model_registered`` event delivered exactly once: those before and after the cut, and the one
whose event write the cut interrupted after MLflow's commit point (the reconciler records it).

The tracking server here is one of the module's own: the worker reconciles with no minimum age,
and on the session's shared registry it would adopt every other test's versions.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hokusai.config import Settings
from tests.stack.conftest import log_model
from tests.stack.stack import (
    POSTGRES_HOST,
    LoopbackStack,
    ServerProcess,
    TcpProxy,
    TrackingServer,
    server_environment,
)
from tests.webhooks.receiver import Receiver, running_receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# A guard against hanging (an unbounded connect or retry loop), not a speed assertion.
HANG = 240


@pytest.fixture(scope="module")
def server(loopback_stack: LoopbackStack) -> Iterator[TrackingServer]:
    tracking = loopback_stack.private_tracking("pg-outage")
    try:
        yield tracking
    finally:
        tracking.process.stop()


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    host, port = POSTGRES_HOST.split(":")
    with TcpProxy((host, int(port))) as relay:
        yield relay


@pytest.fixture
def database(project_database: str, proxy: TcpProxy) -> str:
    """This test's project database, reached through the proxy."""
    return project_database.replace(POSTGRES_HOST, f"127.0.0.1:{proxy.port}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(SECRET) as found:
        yield found


@pytest.fixture
def settings(tmp_path: Path, server: TrackingServer, database: str, receiver: Receiver) -> Settings:
    return Settings(
        home=tmp_path / "home",
        tracking_uri=server.url,
        database_url=database,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        webhook_allow_http=True,
        webhook_allow_private_networks=True,
        webhook_background=False,  # the worker delivers
    )


@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    from hokusai.rest.app import create_app

    app = create_app(settings)
    components = app.state.components
    write = components.keys.create(name="writer", scope="write")[1]
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {write}"}, components


@pytest.fixture
def worker(
    tmp_path: Path, settings: Settings, server: TrackingServer, database: str
) -> Iterator[ServerProcess]:
    """``hokusai webhooks worker`` through the proxy, reconciling every half second with no
    minimum age (so a missing event is recorded as soon as the database is back)."""
    env = server_environment(
        {
            "MLFLOW_TRACKING_URI": server.url,
            "HOKUSAI_HOME": str(tmp_path / "worker-home"),
            "HOKUSAI_DATABASE_URL": database,
            "HOKUSAI_WEBHOOK_URL": str(settings.webhook_url),
            "HOKUSAI_WEBHOOK_SECRET": SECRET,
            "HOKUSAI_WEBHOOK_ALLOW_HTTP": "true",
            "HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
            "HOKUSAI_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2,0.2",
            "HOKUSAI_WEBHOOK_POLL_SECONDS": "0.05",
            "HOKUSAI_WEBHOOK_RECONCILE_MIN_AGE_SECONDS": "0",
        }
    )
    argv = [sys.executable, "-m", "hokusai.cli.main", "webhooks", "worker"]
    process = ServerProcess(
        "webhook worker",
        [*argv, "--reconcile-every", "0.5"],
        env=env,
        log_path=tmp_path / "worker.log",
    )
    process.start()
    try:
        # Started — the database opened, its schema checked — before any test cuts anything.
        _wait_for(
            lambda: "delivering from" in process.log_tail(), "the worker started", log=process
        )
        yield process
    finally:
        process.stop()


def _wait_for(
    condition: Callable[[], bool], what: str, *, within: float = 60.0, log: Any = None
) -> None:
    deadline = time.monotonic() + within
    while not condition():
        tail = log.log_tail() if log is not None else ""
        assert time.monotonic() < deadline, f"{what}: not within {within:.0f}s\n{tail}"
        time.sleep(0.1)


def _register(client: TestClient, headers: dict[str, str], uri: str, model_type: str) -> Any:
    return client.post(
        "/api/v1/models", json={"model_uri": uri, "model_type": model_type}, headers=headers
    )


def _database_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "backend_unavailable"
    assert "project database" in error["message"]
    assert response.headers["retry-after"]


def _delivered(receiver: Receiver, model_name: str) -> Counter[str]:
    """How many deliveries each version of ``model_name`` got."""
    return Counter(
        str(r.json["version"])
        for r in list(receiver.received)
        if r.json["model_name"] == model_name
    )


def _versions(server: TrackingServer, model_name: str) -> dict[str, str | None]:
    """Every version MLflow has of ``model_name``, with its Hokusai registration state."""
    from mlflow import MlflowClient

    found = MlflowClient(server.url).search_model_versions(f"name = '{model_name}'")
    return {str(v.version): v.tags.get("hokusai.registration_state") for v in found}


def _healthy_again(client: TestClient, *, within: float = 60.0) -> None:
    _wait_for(
        lambda: client.get("/health").status_code == 200, "/health back to 200", within=within
    )


@pytest.mark.timeout(HANG)
def test_the_api_answers_503_naming_the_database_while_it_is_cut_and_recovers_by_itself(
    api, proxy, server, worker, receiver, logistic, model_type
):
    client, write, components = api
    name = f"hokusai_{model_type}_baseline"
    uris = [log_model(server, logistic) for _ in range(3)]
    assert _register(client, write, uris[0], model_type).status_code == 201
    _wait_for(
        lambda: _delivered(receiver, name) == {"1": 1}, "the first event delivered", log=worker
    )

    proxy.stop()
    _database_unavailable(_register(client, write, uris[1], model_type))
    _database_unavailable(client.get("/api/v1/models", headers=write))
    health = client.get("/health")
    assert health.status_code == 503, health.text
    body = health.json()
    assert body["status"] == "unhealthy"
    assert body["services"]["postgres"] == "unhealthy"
    assert body["services"]["mlflow"] == "healthy"
    assert client.get("/ready").status_code == 503
    assert client.get("/live").status_code == 200
    # The refused registration never reached MLflow.
    assert _versions(server, name) == {"1": "complete"}
    # The library needs no key: its registration completes in MLflow, the source of truth,
    # and its event — which cannot be written now — is the reconciler's to record.
    during = components.registry.register_baseline(logistic, model_type)
    assert during["version"] == "2"
    assert _versions(server, name) == {"1": "complete", "2": "complete"}
    assert worker.running(), worker.log_tail()

    proxy.start()
    _healthy_again(client)
    again = _register(client, write, uris[2], model_type)
    assert again.status_code == 201, again.text
    assert again.json()["version"] == "3"
    _wait_for(
        lambda: _delivered(receiver, name) == {"1": 1, "2": 1, "3": 1},
        "the events of the cut and after it delivered by the same worker",
        log=worker,
    )
    assert worker.running(), worker.log_tail()
    assert _versions(server, name) == {"1": "complete", "2": "complete", "3": "complete"}
    assert components.webhooks.outbox.stats()["dead"] == 0


@pytest.mark.timeout(HANG)
def test_a_cut_after_mlflows_commit_point_loses_no_event(
    api, proxy, server, worker, receiver, logistic, model_type, caplog
):
    """The cut lands on the event's INSERT (MLflow already holds the version complete): the
    transaction of the index row and the event dies with the connection. The version is
    registered — MLflow is the source of truth — and its event is recorded by the reconciler
    once the database is back: delivered once, like every other."""
    client, write, _ = api
    name = f"hokusai_{model_type}_baseline"
    uris = [log_model(server, logistic) for _ in range(2)]

    proxy.cut_at(b"INSERT INTO hokusai_webhook_events")
    during = _register(client, write, uris[0], model_type)
    assert proxy.cut.is_set()
    assert during.status_code == 201, during.text  # a 503 would make the client register twice
    assert during.json()["version"] == "1"
    assert _versions(server, name) == {"1": "complete"}
    assert "could not be recorded now" in caplog.text  # the cut hit the registration's write

    proxy.start()
    _healthy_again(client)
    _wait_for(
        lambda: _delivered(receiver, name) == {"1": 1},
        "the interrupted registration's event recorded by the reconciler and delivered",
        log=worker,
    )
    after = _register(client, write, uris[1], model_type)
    assert after.status_code == 201, after.text
    _wait_for(
        lambda: _delivered(receiver, name) == {"1": 1, "2": 1}, "both events delivered", log=worker
    )
    found = client.get(f"/api/v1/models/{name}/versions/1", headers=write)
    assert found.status_code == 200, found.text
    assert worker.running(), worker.log_tail()


@pytest.mark.timeout(HANG)
def test_a_cut_after_the_key_check_is_never_a_500(api, proxy, server, logistic, model_type):
    """The database goes between the key check and the route's own use of it. A registry read
    is answered from MLflow (the index is derived from it); a webhook route, which has nothing
    else to ask, answers 503 naming the database."""
    client, write, components = api
    admin = {"Authorization": f"Bearer {components.keys.create(name='admin', scope='admin')[1]}"}
    response = _register(client, write, log_model(server, logistic), model_type)
    assert response.status_code == 201, response.text
    registered = response.json()
    index = components.registry.index
    index.reindex()  # the module's registry has other tests' versions: build it to answer
    assert index.answers()

    proxy.cut_at(b"hokusai_index_versions.model_uuid")
    found = client.get(f"/api/v1/models/by-uuid/{registered['model_uuid']}", headers=write)
    assert proxy.cut.is_set()
    assert found.status_code == 200, found.text
    assert found.json()["model_id"] == registered["model_id"]

    proxy.start()
    _healthy_again(client)
    proxy.cut_at(b"FROM hokusai_webhook_endpoints")
    listed = client.get("/api/v1/webhooks", headers=admin)
    assert proxy.cut.is_set()
    _database_unavailable(listed)

    proxy.start()
    _healthy_again(client)
    assert client.get("/api/v1/webhooks", headers=admin).status_code == 200


@pytest.mark.timeout(HANG)
def test_a_database_that_stops_answering_is_a_503_in_seconds_not_a_hang(api, proxy):
    """Connections accepted and never answered (a hung server, a half-open path): without a
    connect timeout every request needing the database would wait forever."""
    client, write, _ = api
    assert client.get("/api/v1/models", headers=write).status_code == 200

    proxy.silence()
    _database_unavailable(client.get("/api/v1/models", headers=write))
    health = client.get("/health")
    assert health.status_code == 503, health.text
    assert health.json()["services"]["postgres"] == "unhealthy"

    proxy.stop()
    proxy.start()
    _healthy_again(client)
    assert client.get("/api/v1/models", headers=write).status_code == 200


@pytest.mark.timeout(HANG)
def test_a_worker_started_while_the_database_hangs_says_so(tmp_path, proxy, database):
    """A worker cannot start without its database: it exits within its connect timeout,
    non-zero, with the typed error naming the database (a supervisor restarts it) — not
    minutes later with a generic backend error."""
    proxy.silence()
    env = server_environment(
        {"HOKUSAI_HOME": str(tmp_path / "home"), "HOKUSAI_DATABASE_URL": database}
    )
    done = subprocess.run(
        [sys.executable, "-m", "hokusai.cli.main", "webhooks", "worker", "--reconcile-every", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "backend_unavailable" in output, output
    assert "Project database is unreachable" in output, output


REGISTER = """
import sys
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from hokusai.errors import BackendUnavailableError
from hokusai.services.model_registry import HokusaiModelRegistry

x, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=300).fit(x, y)
try:
    HokusaiModelRegistry().register_baseline(model, sys.argv[1])
except BackendUnavailableError as exc:
    print(exc.code, exc.message)
    sys.exit(3)
"""


@pytest.mark.timeout(HANG)
def test_a_process_registering_while_the_database_is_cut_writes_nothing(
    tmp_path, proxy, server, database, model_type
):
    """A script that first opens the project database during the cut: the registration is
    refused, typed and naming the database, before anything is written to MLflow."""
    proxy.stop()
    env = server_environment(
        {
            "MLFLOW_TRACKING_URI": server.url,
            "HOKUSAI_HOME": str(tmp_path / "home"),
            "HOKUSAI_DATABASE_URL": database,
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", REGISTER, model_type],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.startswith("backend_unavailable Project database is unreachable"), (
        done.stdout
    )
    assert _versions(server, f"hokusai_{model_type}_baseline") == {}
