"""The REST service through TestClient: routes, auth matrix, errors, limits, health, metrics."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from hokusai.config import Settings
from tests.conftest import CONTRIBUTOR
from tests.rest.conftest import bearer


def _register(
    client: TestClient, key: str, uri: str, model_type: str = "classification", **extra: Any
) -> dict[str, Any]:
    body = {"model_uri": uri, "model_type": model_type, "metadata": {"k": [1, 2]}, **extra}
    response = client.post("/api/v1/models", json=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    return response.json()


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    return str(body["error"]["message"])


@pytest.mark.backends
def test_register_look_up_lineage_and_contributors(client, keys, logged_uris, backend):
    model_type = backend.model_type("classification")
    contributor = backend.address(CONTRIBUTOR)
    base = _register(client, keys["write"], logged_uris[0], model_type)
    assert base["model_id"] == f"hokusai_{model_type}_baseline/1"
    assert base["metadata"] == {"k": [1, 2]}
    improved = _register(
        client,
        keys["write"],
        logged_uris[1],
        model_type,
        baseline_id=base["model_id"],
        contributor=contributor.lower(),
        delta_metrics={"accuracy": 0.02},
    )
    assert improved["contributor"] == contributor
    read = bearer(keys["read"])

    found = client.get(f"/api/v1/models/by-uuid/{base['model_uuid']}", headers=read)
    assert found.status_code == 200
    assert found.json()["model_id"] == base["model_id"]
    assert found.json()["metadata"] == {"k": [1, 2]}

    improved_name = f"hokusai_{model_type}_improved"
    version = client.get(f"/api/v1/models/{improved_name}/versions/1", headers=read)
    assert version.json()["baseline_id"] == base["model_id"]

    for path in (
        f"/api/v1/models/{improved_name}%2F1/lineage",
        f"/api/v1/models/{improved_name}/versions/1/lineage",
        f"/api/v1/models/hokusai_{model_type}_baseline/lineage",
    ):
        lineage = client.get(path, headers=read)
        assert lineage.status_code == 200, (path, lineage.text)
        assert [e["model_id"] for e in lineage.json()["data"]] == [
            base["model_id"],
            improved["model_id"],
        ]
    assert lineage.json()["data"][1]["cumulative_improvement"] == {
        "accuracy": 0.02,
        "total_improvements": 1,
    }

    mine = client.get(
        f"/api/v1/contributors/{contributor.upper()[2:].join(['0x', ''])}/models", headers=read
    )
    assert [m["model_id"] for m in mine.json()["data"]] == [improved["model_id"]]

    listed = client.get(f"/api/v1/models?kind=baseline&model_type={model_type}", headers=read)
    assert [m["model_id"] for m in listed.json()["data"]] == [base["model_id"]]
    paged = client.get("/api/v1/models?max_results=1", headers=read).json()
    assert paged["count"] == 1
    assert paged["next_page_token"]


@pytest.mark.backends
def test_aliases_promote_and_roll_back(client, keys, logged_uris, backend):
    _register(client, keys["write"], logged_uris[0], backend.model_type("classification"))
    _register(client, keys["write"], logged_uris[1], backend.model_type("classification"))
    write = bearer(keys["write"])
    url = f"/api/v1/models/{backend.model_name('classification')}/aliases/champion"
    promoted = client.put(url, json={"version": "2"}, headers=write)
    assert promoted.status_code == 200
    assert promoted.json()["previous_version"] is None
    assert promoted.json()["event_id"].startswith("evt_")
    back = client.put(url, json={"version": "1"}, headers=write)
    assert back.json()["previous_version"] == "2"
    assert client.delete(url, headers=write).status_code == 204
    _error(client.delete(url, headers=write), 404, "model_not_found")
    _error(client.put(url, json={"version": "9"}, headers=write), 404, "model_not_found")
    _error(
        client.put(url.replace("champion", "latest"), json={"version": "1"}, headers=write),
        422,
        "validation_error",
    )


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/api/v1/models", "read"),
        ("GET", "/api/v1/models/by-uuid/m-00000000000000000000000000000000", "read"),
        ("POST", "/api/v1/models", "write"),
        ("PUT", "/api/v1/models/hokusai_x_baseline/aliases/a", "write"),
        ("GET", "/api/v1/webhooks", "admin"),
        ("GET", "/api/v1/webhooks/deliveries", "admin"),
    ],
)
@pytest.mark.backends
def test_auth_matrix(client, keys, method, path, scope):
    body = {"version": "1"} if method == "PUT" else {"model_uri": "x", "model_type": "x"}
    kwargs: dict[str, Any] = {"json": body} if method in ("POST", "PUT") else {}
    missing = client.request(method, path, **kwargs)
    _error(missing, 401, "unauthenticated")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    _error(
        client.request(method, path, headers=bearer("hk_nope"), **kwargs), 401, "invalid_api_key"
    )
    _error(
        client.request(method, path, headers={"Authorization": f"Basic {keys['admin']}"}, **kwargs),
        401,
        "invalid_api_key",
    )
    order = ["read", "write", "admin"]
    for held in order:
        response = client.request(method, path, headers=bearer(keys[held]), **kwargs)
        if order.index(held) < order.index(scope):
            _error(response, 403, "forbidden")
        else:
            assert response.status_code not in (401, 403), (held, response.text)


def test_revoked_keys_and_keys_in_the_query_string_are_refused(client, keys, app):
    _error(client.get(f"/api/v1/models?api_key={keys['admin']}"), 400, "api_key_in_query")
    store = app.state.components.keys
    (key,) = [k for k in store.list() if k.name == "test-read"]
    store.revoke(key.id)
    _error(client.get("/api/v1/models", headers=bearer(keys["read"])), 401, "invalid_api_key")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"model_uri": "x", "model_type": "classification", "surprise": 1},
            422,
            "validation_error",
        ),
        ({"model_type": "classification"}, 422, "validation_error"),
        ({"model_uri": "s3://b/m", "model_type": "classification"}, 422, "validation_error"),
        (
            {
                "model_uri": "models:/m-00000000000000000000000000000000",
                "model_type": "classification",
            },
            422,
            "validation_error",
        ),
        ({"model_uri": "LOGGED", "model_type": "Bad Type"}, 422, "invalid_model_type"),
        (
            {"model_uri": "LOGGED", "model_type": "classification", "metadata": [1]},
            422,
            "validation_error",
        ),
        (
            {
                "model_uri": "LOGGED",
                "model_type": "classification",
                "contributor": "0x1",
                "baseline_id": "hokusai_classification_baseline/1",
                "delta_metrics": {"a": 1},
            },
            422,
            "invalid_contributor",
        ),
        (
            {
                "model_uri": "LOGGED",
                "model_type": "classification",
                "contributor": CONTRIBUTOR,
                "baseline_id": "hokusai_classification_baseline/7",
                "delta_metrics": {"a": 1},
            },
            422,
            "baseline_not_found",
        ),
        (
            {
                "model_uri": "LOGGED",
                "model_type": "classification",
                "contributor": CONTRIBUTOR,
                "baseline_id": "nope",
                "delta_metrics": {"a": 1},
            },
            422,
            "invalid_model_id",
        ),
    ],
)
def test_bad_registrations_are_4xx_with_a_code(client, keys, logged_uri, body, status, code):
    body = {k: (logged_uri if v == "LOGGED" else v) for k, v in body.items()}
    _error(client.post("/api/v1/models", json=body, headers=bearer(keys["write"])), status, code)


def test_malformed_json_unknown_routes_and_methods(client, keys):
    headers = {**bearer(keys["write"]), "content-type": "application/json"}
    message = _error(
        client.post("/api/v1/models", content=b"{not json", headers=headers),
        400,
        "invalid_json",
    )
    assert message.startswith("The body is not valid JSON: ")
    assert "line 1 column 2" in message
    _error(client.get("/api/v1/nothing-here", headers=headers), 404, "not_found")
    _error(client.patch("/api/v1/models", headers=headers), 405, "method_not_allowed")
    _error(
        client.get(
            "/api/v1/models/by-uuid/m-00000000000000000000000000000000",
            headers=bearer(keys["read"]),
        ),
        404,
        "model_not_found",
    )
    _error(
        client.get(
            "/api/v1/models/hokusai_x_baseline/versions/1/lineage", headers=bearer(keys["read"])
        ),
        404,
        "model_not_found",
    )
    _error(
        client.get("/api/v1/contributors/0xnope/models", headers=bearer(keys["read"])),
        422,
        "invalid_contributor",
    )


def test_body_size_limit(tmp_path, forest):
    from hokusai.rest.app import create_app

    app = create_app(Settings(home=tmp_path, webhook_background=False, api_max_body_bytes=2048))
    with TestClient(app) as client:
        key = app.state.components.keys.create(name="w", scope="write")[1]
        big = {"model_uri": "x", "model_type": "x", "metadata": {"blob": "x" * 5000}}
        _error(
            client.post("/api/v1/models", json=big, headers=bearer(key)), 413, "payload_too_large"
        )


def test_rate_limit_is_per_key_with_retry_after(tmp_path):
    from hokusai.rest.app import create_app

    app = create_app(
        Settings(
            home=tmp_path, webhook_background=False, rate_limit_per_minute=60, rate_limit_burst=3
        )
    )
    with TestClient(app) as client:
        first = app.state.components.keys.create(name="a", scope="read")[1]
        second = app.state.components.keys.create(name="b", scope="read")[1]
        codes = [client.get("/api/v1/models", headers=bearer(first)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = client.get("/api/v1/models", headers=bearer(first))
        _error(limited, 429, "rate_limited")
        assert 1 <= int(limited.headers["retry-after"]) <= 2
        assert client.get("/api/v1/models", headers=bearer(second)).status_code == 200
        assert client.get("/health").status_code == 200  # never limited


@pytest.mark.backends
def test_health_live_ready_and_metrics(client, keys, backend):
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "healthy"
    assert set(body) == {"status", "version", "services", "details"}
    # the deployment's names; no Redis configured, so no redis entry
    assert body["services"] == {
        "mlflow": "healthy",
        backend.database_service: "healthy",
        "message_queue": "healthy",
    }
    assert set(body["details"]) == set(body["services"])
    assert body["details"]["message_queue"]["pending"] == 0
    assert body["details"]["message_queue"]["dead"] == 0
    assert client.get("/live").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "healthy"
    assert ready.json()["services"] == {"mlflow": "healthy", backend.database_service: "healthy"}
    client.get(
        "/api/v1/models/by-uuid/m-00000000000000000000000000000000", headers=bearer(keys["read"])
    )
    text = client.get("/metrics").text
    assert (
        'hokusai_http_requests_total{method="GET",'
        'route="/api/v1/models/by-uuid/{model_uuid}",status="404"} 1.0'
    ) in text
    assert "hokusai_lookup_duration_seconds_count 1.0" in text
    assert 'hokusai_webhook_deliveries{state="dead"} 0.0' in text


def test_health_with_mlflow_down_is_503_naming_it_quickly(tmp_path):
    import time

    from hokusai.rest.app import create_app

    settings = Settings(home=tmp_path, tracking_uri="http://127.0.0.1:9", webhook_background=False)
    with TestClient(create_app(settings)) as client:
        started = time.monotonic()
        health = client.get("/health")
        assert time.monotonic() - started < 10
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "unhealthy"
        assert body["services"]["mlflow"] == "unhealthy"
        assert body["services"]["database"] == "healthy"
        assert "http://127.0.0.1:9" in body["details"]["mlflow"]["detail"], body
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["services"]["mlflow"] == "unhealthy"
        assert client.get("/live").status_code == 200


def test_health_names_a_postgresql_database_postgres(tmp_path):
    """The deployment's name for the project database when it is PostgreSQL."""
    from hokusai.rest.app import create_app
    from tests.webhooks.pg import temporary_database

    with temporary_database() as url:
        settings = Settings(home=tmp_path, database_url=url, webhook_background=False)
        with TestClient(create_app(settings)) as client:
            body = client.get("/health").json()
            assert body["services"] == {
                "mlflow": "healthy",
                "postgres": "healthy",
                "message_queue": "healthy",
            }
            assert body["details"]["postgres"]["detail"] == "postgresql+psycopg://127.0.0.1:5432"
            assert client.get("/ready").json()["services"]["postgres"] == "healthy"
        from hokusai.db import dispose_engines

        dispose_engines()  # before the database is dropped


def test_redis_down_is_degraded_not_fatal(tmp_path):
    from hokusai.rest.app import create_app

    settings = Settings(home=tmp_path, redis_url="redis://127.0.0.1:9/0", webhook_background=False)
    app = create_app(settings)
    with TestClient(app) as client:
        key = app.state.components.keys.create(name="r", scope="read")[1]
        assert client.get("/api/v1/models", headers=bearer(key)).status_code == 200
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["services"]["redis"] == "degraded"
        assert health.json()["details"]["redis"]["detail"] == (
            "redis://127.0.0.1:9 unreachable; limiting per replica"
        )
        ready = client.get("/ready")  # a per-replica limit still serves: not a readiness matter
        assert ready.status_code == 200
        assert "redis" not in ready.json()["services"]


def test_openapi_documents_every_route_with_examples(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/models",
        "/api/v1/models/by-uuid/{model_uuid}",
        "/api/v1/contributors/{address}/models",
        "/api/v1/webhooks",
        "/api/v1/webhooks/deliveries/{event_id}/redeliver",
        "/health",
    ):
        assert path in paths
    create = schema["components"]["schemas"]["ModelCreate"]
    assert create["examples"]
    assert client.get("/docs").status_code == 200
