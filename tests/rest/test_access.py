"""Who gets in, and what a refused or failed request costs and reveals.

- The key and the rate limit are checked from the headers before a byte of the body is read.
- Requests without a key are rate-limited per address, like unknown keys.
- With Redis down the API limits per replica (default) or refuses with 503, as configured.
- A 5xx answers a generic message with an ``error_id``; the details are in the log under it.
- ``/health`` names stores by scheme and host, never a path or a password.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hokusai.config import Settings
from hokusai.errors import RateLimiterUnavailableError
from hokusai.rest.ratelimit import RedisRateLimiter
from tests.rest.conftest import bearer

BODY_BYTES = 3_900_000  # under the 4 MiB default limit: only the key can refuse it
CHUNK = 64 * 1024


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


def _post_streamed(app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, Any], int]:
    """POST a 3.9 MB JSON body to ``/api/v1/models`` straight through the ASGI interface, its
    body offered in 64 KiB chunks; returns (status, JSON answer, body bytes the app took)."""
    filler = json.dumps({"model_uri": "x", "model_type": "x", "metadata": {"blob": ""}})
    padding = BODY_BYTES - len(filler)
    body = filler.replace('"blob": ""', '"blob": "' + "x" * padding + '"').encode()
    chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    consumed = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        if not chunks:
            await asyncio.sleep(3600)  # a client that has sent everything waits for the answer
        chunk = chunks.pop(0)
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/models",
        "raw_path": b"/api/v1/models",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("203.0.113.7", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=120))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(answer), consumed


def test_a_huge_body_without_a_valid_key_is_refused_unread(app: Any, keys: dict[str, str]):
    status, answer, consumed = _post_streamed(app, [])
    assert (status, answer["error"]["code"], consumed) == (401, "unauthenticated", 0)
    invalid = [(b"authorization", b"Bearer hk_AAAAAAAAAAAA_" + b"B" * 43)]
    status, answer, consumed = _post_streamed(app, invalid)
    assert (status, answer["error"]["code"], consumed) == (401, "invalid_api_key", 0)
    valid = [(b"authorization", f"Bearer {keys['write']}".encode())]
    # A valid key gets its body read (and here refused by validation): the counter counts.
    status, answer, consumed = _post_streamed(app, valid)
    assert status == 422 and consumed == BODY_BYTES


def test_a_key_over_its_rate_limit_is_refused_before_its_body(tmp_path: Path):
    from hokusai.rest.app import create_app

    app = create_app(
        Settings(
            home=tmp_path, webhook_background=False, rate_limit_per_minute=1, rate_limit_burst=1
        )
    )
    key = app.state.components.keys.create(name="w", scope="write")[1]
    headers = [(b"authorization", f"Bearer {key}".encode())]
    assert _post_streamed(app, headers)[0] == 422  # the burst of one
    status, answer, consumed = _post_streamed(app, headers)
    assert (status, answer["error"]["code"], consumed) == (429, "rate_limited", 0)


def test_requests_without_a_key_are_rate_limited_per_address(tmp_path: Path):
    from hokusai.rest.app import create_app

    app = create_app(
        Settings(
            home=tmp_path, webhook_background=False, rate_limit_per_minute=60, rate_limit_burst=3
        )
    )
    with TestClient(app) as client:
        codes = [client.get("/api/v1/models").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        limited = _error(client.get("/api/v1/models"), 429, "rate_limited")
        assert "Rate limit exceeded" in limited["message"]
        # Unknown keys share the address's budget; a valid key has its own.
        _error(client.get("/api/v1/models", headers=bearer("hk_nope")), 429, "rate_limited")
        key = app.state.components.keys.create(name="r", scope="read")[1]
        assert client.get("/api/v1/models", headers=bearer(key)).status_code == 200
        assert client.get("/health").status_code == 200  # never limited


def test_a_scope_too_small_is_still_403_after_authentication(client: TestClient, keys):
    # Everything under /api/ needs a key first, known route or not.
    _error(client.get("/api/v1/nothing-here"), 401, "unauthenticated")
    _error(client.get("/api/v1/nothing-here", headers=bearer(keys["read"])), 404, "not_found")
    _error(client.get("/api/v1/webhooks", headers=bearer(keys["write"])), 403, "forbidden")
    _error(
        client.get("/api/v1/models?token=x", headers=bearer(keys["read"])), 400, "api_key_in_query"
    )


# Redis down --------------------------------------------------------------------------------------


def test_redis_down_refuses_with_503_when_configured(tmp_path: Path):
    from hokusai.rest.app import create_app

    settings = Settings(
        home=tmp_path,
        webhook_background=False,
        redis_url="redis://127.0.0.1:9/0",
        rate_limit_redis_down="refuse",
    )
    app = create_app(settings)
    with TestClient(app) as client:
        key = app.state.components.keys.create(name="r", scope="read")[1]
        refused = client.get("/api/v1/models", headers=bearer(key))
        error = _error(refused, 503, "rate_limiter_unavailable")
        assert error["message"].startswith("The rate limiter (Redis) is unavailable")
        assert error["error_id"] in error["message"]
        assert refused.headers["retry-after"] == "1"
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unhealthy"
        assert health.json()["services"]["redis"] == "unhealthy"
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["services"]["redis"] == "unhealthy"
        assert client.get("/live").status_code == 200


def test_redis_down_limits_per_replica_by_default(tmp_path: Path):
    assert Settings(home=tmp_path).rate_limit_redis_down == "memory"
    limiter = RedisRateLimiter("redis://127.0.0.1:9/0", rate_per_minute=60, burst=2)
    try:
        assert [limiter.hit("k").allowed for _ in range(3)] == [True, True, False]
    finally:
        limiter.close()


def test_a_refusing_limiter_refuses_fast_while_redis_is_down():
    limiter = RedisRateLimiter(
        "redis://127.0.0.1:9/0", rate_per_minute=60, burst=2, when_down="refuse"
    )
    try:
        started = time.monotonic()
        for _ in range(20):
            with pytest.raises(RateLimiterUnavailableError, match="unreachable") as info:
                limiter.hit("k")
            assert info.value.code == "rate_limiter_unavailable"
        assert time.monotonic() - started < 2
    finally:
        limiter.close()
    with pytest.raises(ValueError, match="when_down"):
        RedisRateLimiter("redis://127.0.0.1:9/0", rate_per_minute=1, burst=1, when_down="open")  # type: ignore[arg-type]


# 5xx: a generic message and an error id ---------------------------------------------------------


def _logged(caplog: pytest.LogCaptureFixture, error_id: str) -> str:
    lines = [r.getMessage() for r in caplog.records if error_id in r.getMessage()]
    assert len(lines) == 1, caplog.text
    return lines[0]


def test_a_backend_error_names_the_service_not_its_internals(app, client, keys, caplog):
    import sqlite3

    caplog.set_level(logging.ERROR, logger="hokusai.http.errors")
    # A real store failure (MLflow's table gone): its SQL text once reached the client.
    path = app.state.components.registry.tracking_uri.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE model_versions RENAME TO model_versions_away")
    response = client.get(
        "/api/v1/models/hokusai_x_baseline/versions/1", headers=bearer(keys["read"])
    )
    error = _error(response, 502, "backend_error")
    assert re.fullmatch(r"err_[0-9a-f]{16}", error["error_id"])
    assert error["message"] == f"MLflow answered with an error (reference {error['error_id']})."
    logged = _logged(caplog, error["error_id"])
    assert "MlflowException" in logged  # the details, in the log under the reference
    assert "MlflowException" not in response.text and "upgrade" not in response.text


def test_an_unexpected_error_is_a_reference_and_a_logged_traceback(tmp_path: Path, caplog):
    from hokusai.registry import ModelRegistry
    from hokusai.rest.app import create_app

    settings = Settings(home=tmp_path, webhook_background=False)

    class Broken(ModelRegistry):
        def list_models(self, **_: Any) -> Any:
            raise RuntimeError(
                f"boom in {tmp_path}/secret.db via postgresql://app:hunter2@db/hokusai"
            )

    caplog.set_level(logging.DEBUG)
    app = create_app(settings, registry=Broken(settings=settings))
    key = app.state.components.keys.create(name="r", scope="read")[1]
    # Nothing escapes the app (TestClient would raise it): no server logs it unmasked.
    with TestClient(app) as client:
        response = client.get("/api/v1/models", headers=bearer(key))
    error = _error(response, 500, "internal_error")
    assert error["message"] == f"Internal error; reference {error['error_id']}"
    assert "boom" not in response.text and str(tmp_path) not in response.text
    logged = _logged(caplog, error["error_id"])
    assert "GET /api/v1/models -> 500" in logged
    assert "RuntimeError: boom" in logged and "Traceback" in logged
    assert "hunter2" not in caplog.text and "postgresql://app:***@db" in logged


@pytest.mark.parametrize(
    ("error", "said"),
    [
        ("RegistrationError", "Registration failed and was rolled back: no version was created"),
        ("RollbackIncompleteError", "undoing it did not finish; what is left is never read"),
    ],
)
def test_a_failed_registration_says_what_happened_without_internals(tmp_path: Path, error, said):
    from hokusai import errors
    from hokusai.registry import ModelRegistry
    from hokusai.rest.app import create_app

    settings = Settings(home=tmp_path, webhook_background=False)

    class Failing(ModelRegistry):
        def register_from_uri(self, *_: Any, **__: Any) -> Any:
            raise getattr(errors, error)(f"Registering failed: {tmp_path}/mlflow.db is locked")

    app = create_app(settings, registry=Failing(settings=settings))
    key = app.state.components.keys.create(name="w", scope="write")[1]
    with TestClient(app) as client:
        response = client.post(
            "/api/v1/models",
            json={"model_uri": "models:/m-0123456789abcdef0123456789abcdef", "model_type": "x"},
            headers=bearer(key),
        )
    body = _error(response, 500, getattr(errors, error).code)
    assert said in body["message"]
    assert str(tmp_path) not in response.text


def test_backend_messages_name_the_service(caplog):
    import sqlalchemy as sa

    from hokusai.errors import BackendError, BackendUnavailableError
    from hokusai.http.errors import response_for

    caplog.set_level(logging.ERROR, logger="hokusai.http.errors")
    try:
        try:
            raise sa.exc.OperationalError("SELECT 1", {}, Exception("no route to db.internal"))
        except sa.exc.OperationalError as exc:
            raise BackendUnavailableError(f"Checking an API key failed: {exc}") from exc
    except BackendUnavailableError as exc:
        database = json.loads(response_for(exc).body)["error"]
    assert database["message"] == (
        f"The project database is unavailable; retry later (reference {database['error_id']})."
    )
    assert "db.internal" in _logged(caplog, database["error_id"])
    unknown = json.loads(response_for(BackendError("something")).body)["error"]
    assert unknown["message"].startswith("A backend service answered with an error")


# /health ---------------------------------------------------------------------------------------


def test_health_shows_no_path_and_no_password(client: TestClient, api_settings: Settings):
    response = client.get("/health")
    assert response.status_code == 200
    details = response.json()["details"]
    assert details["mlflow"]["detail"] == "sqlite (embedded)"
    assert details["database"]["detail"] == "sqlite (embedded)"
    assert str(api_settings.home_path) not in response.text
    assert "/tmp" not in response.text
