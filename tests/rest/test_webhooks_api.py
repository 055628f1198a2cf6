"""``/api/v1/webhooks``: endpoints CRUD, test ping, deliveries, attempts, redelivery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hokusai.config import Settings
from hokusai.webhooks.endpoints import EndpointStore
from hokusai.webhooks.signing import standard_webhook
from hokusai.webhooks.urlpolicy import DestinationPolicy
from tests.rest.conftest import bearer
from tests.webhooks.helpers import fake_result
from tests.webhooks.receiver import running_receiver


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    """This module's receivers listen on loopback: the app allows private networks, except in
    the tests on ``default_app``, which keep the default policy."""
    return Settings(
        home=tmp_path / "home", webhook_background=False, webhook_allow_private_networks=True
    )


@pytest.fixture
def default_app(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    """The app with the default destination policy, its client and an admin header."""
    from hokusai.rest.app import create_app

    app = create_app(Settings(home=tmp_path / "default", webhook_background=False))
    admin = app.state.components.keys.create(name="test-admin", scope="admin")[1]
    with TestClient(app) as client:
        yield client, bearer(admin), app


def test_webhook_endpoints_deliveries_and_redelivery(client: TestClient, keys, app):
    admin = bearer(keys["admin"])
    with running_receiver(None) as receiver:
        created = client.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["model_registered"], "description": "mkt"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        endpoint = created.json()
        secret = endpoint["secret"]
        assert secret.startswith("whsec_")

        listed = client.get("/api/v1/webhooks", headers=admin).json()
        assert [e["id"] for e in listed["data"]] == [endpoint["id"]]
        assert "secret" not in listed["data"][0]
        assert client.get(f"/api/v1/webhooks/{endpoint['id']}", headers=admin).json()["url"] == (
            receiver.url
        )

        ping = client.post(f"/api/v1/webhooks/{endpoint['id']}/test", headers=admin)
        assert ping.status_code == 200
        assert ping.json()["status_code"] == 200
        standard_webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)

        receiver.always((400, {}, 0, "nope"))
        hooks = app.state.components.webhooks
        event_id = hooks.announce_registration(fake_result(1))
        hooks.dispatcher().run_once()
        failed = client.get("/api/v1/webhooks/deliveries?state=failed", headers=admin).json()
        assert [d["event_id"] for d in failed["data"]] == [event_id]
        delivery_id = failed["data"][0]["delivery_id"]
        attempts = client.get(
            f"/api/v1/webhooks/deliveries/{delivery_id}/attempts", headers=admin
        ).json()
        assert attempts["data"][0]["status_code"] == 400
        assert attempts["data"][0]["response_snippet"] == "nope"

        receiver.always((200, {}, 0, "ok"))
        again = client.post(f"/api/v1/webhooks/deliveries/{event_id}/redeliver", headers=admin)
        assert again.json() == {"requeued": 1}
        hooks.dispatcher().run_once()
        delivered = client.get("/api/v1/webhooks/deliveries?state=delivered", headers=admin)
        assert event_id in [d["event_id"] for d in delivered.json()["data"]]

        assert client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=admin).status_code == (
            204
        )
        gone = client.get(f"/api/v1/webhooks/{endpoint['id']}", headers=admin)
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "endpoint_not_found"


def test_bad_webhook_requests_are_4xx(client: TestClient, keys):
    admin = bearer(keys["admin"])
    cases = [
        ({"url": "ftp://x/y"}, 422, "invalid_webhook_url"),
        ({"url": "https://x.example/y", "events": ["nope"]}, 422, "validation_error"),
        ({"url": "https://x.example/y", "secret": "short"}, 422, "validation_error"),
        ({"url": "https://x.example/y", "extra": 1}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        response = client.post("/api/v1/webhooks", json=body, headers=admin)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code
    missing = client.post("/api/v1/webhooks/deliveries/evt_missing/redeliver", headers=admin)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "event_not_found"
    bad_state = client.get("/api/v1/webhooks/deliveries?state=lost", headers=admin)
    assert bad_state.status_code == 422


REFUSED = [
    ("https://2130706433/", "resolves to 127.0.0.1, a loopback address"),
    ("https://127.1:1/", "resolves to 127.0.0.1, a loopback address"),
    ("https://0x7f000001/", "resolves to 127.0.0.1, a loopback address"),
    ("https://0/", "resolves to 0.0.0.0, the unspecified address"),
    ("https://100.64.0.1/", "is a carrier-grade NAT (shared) address"),
    ("https://localhost:8080/", "a loopback address"),
    ("https://[::1]/", "is a loopback address"),
    ("https://[::ffff:127.0.0.1]/", "IPv4-mapped 127.0.0.1, a loopback address"),
    ("https://169.254.169.254/latest/meta-data", "is a link-local address"),
]


def test_non_public_destinations_are_refused_when_added(default_app):
    client, admin, _ = default_app
    for url, reason in REFUSED:
        response = client.post("/api/v1/webhooks", json={"url": url}, headers=admin)
        assert response.status_code == 422, (url, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_webhook_url"
        assert reason in error["message"], (url, error)
    assert client.get("/api/v1/webhooks", headers=admin).json()["count"] == 0


def test_a_ping_to_a_refused_destination_returns_no_internal_body(default_app):
    """An endpoint stored before the policy was tightened (or by another tool): the ping is a
    failed attempt that never connects, so nothing of the internal service leaks."""
    client, admin, app = default_app
    with running_receiver(None) as internal:
        internal.always((200, {}, 0, "internal-only: db password is hunter2"))
        engine = app.state.components.webhooks.engine
        lenient = DestinationPolicy(allow_http=True, allow_private_networks=True)
        endpoint = EndpointStore(engine, policy=lenient).add(internal.url, secret="s" * 32)

        ping = client.post(f"/api/v1/webhooks/{endpoint.id}/test", headers=admin)
        assert ping.status_code == 200, ping.text
        answer = ping.json()
        assert answer["status_code"] is None
        assert answer["response_snippet"] is None
        assert answer["error"].startswith("refused: 127.0.0.1 is a loopback address")
        assert "hunter2" not in ping.text
        assert internal.received == []

        failed = client.get("/api/v1/webhooks/deliveries?state=failed", headers=admin).json()
        assert [d["event_type"] for d in failed["data"]] == ["ping"]


def test_bad_secrets_and_replays_are_4xx(client: TestClient, keys):
    admin = bearer(keys["admin"])
    bad = client.post(
        "/api/v1/webhooks",
        json={"url": "https://x.example/y", "secret": "whsec_AAAAAAAAAAAAAAAAA"},
        headers=admin,
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_webhook_secret"
    assert "whsec_AAAA" not in bad.json()["error"]["message"]

    endpoint = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=admin)
    replay = f"/api/v1/webhooks/{endpoint.json()['id']}/replay"
    cases = [
        (
            "/api/v1/webhooks/ep_missing/replay",
            {"since": "2026-01-01T00:00:00Z"},
            404,
            "endpoint_not_found",
        ),
        (replay, {}, 422, "validation_error"),
        (replay, {"since": "yesterday"}, 422, "validation_error"),
        (
            replay,
            {"since": "2026-01-01T00:00:00Z", "event_types": ["ping"]},
            422,
            "validation_error",
        ),
        (
            replay,
            {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            422,
            "validation_error",
        ),
        (replay, {"since": "2026-01-01T00:00:00Z", "extra": 1}, 422, "validation_error"),
    ]
    for path, body, status, code in cases:
        response = client.post(path, json=body, headers=admin)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code
    missing = client.post("/api/v1/webhooks/ep_missing/enable", headers=admin)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "endpoint_not_found"
    write = bearer(keys["write"])
    assert client.post(
        replay, json={"since": "2026-01-01T00:00:00Z"}, headers=write
    ).status_code == (403)


def test_410_then_enable_then_replay_over_the_api(client: TestClient, keys, app):
    """A 410 disables the endpoint; an event recorded meanwhile reaches it after enable +
    replay, with its original webhook-id and a valid signature."""
    admin = bearer(keys["admin"])
    hooks = app.state.components.webhooks
    with running_receiver(None) as receiver:
        created = client.post("/api/v1/webhooks", json={"url": receiver.url}, headers=admin).json()
        receiver.answer((410, {}, 0, "gone"))
        gone = hooks.announce_registration(fake_result(1))
        hooks.dispatcher().run_once()
        endpoint = client.get(f"/api/v1/webhooks/{created['id']}", headers=admin).json()
        assert endpoint["enabled"] is False
        disabled_at = endpoint["disabled_reason"].rsplit(" at ", 1)[1]
        missed = hooks.announce_registration(fake_result(2))

        refused = client.post(
            f"/api/v1/webhooks/{created['id']}/replay", json={"since": disabled_at}, headers=admin
        )
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "conflict"

        enabled = client.post(f"/api/v1/webhooks/{created['id']}/enable", headers=admin)
        assert enabled.status_code == 200
        assert (enabled.json()["enabled"], enabled.json()["disabled_reason"]) == (True, None)

        replayed = client.post(
            f"/api/v1/webhooks/{created['id']}/replay",
            json={"since": disabled_at, "event_types": ["model_registered"]},
            headers=admin,
        )
        assert replayed.status_code == 200, replayed.text
        assert replayed.json() == {"queued": 1}
        again = client.post(
            f"/api/v1/webhooks/{created['id']}/replay", json={"since": disabled_at}, headers=admin
        )
        assert again.json() == {"queued": 0}
        hooks.dispatcher().run_once()
        assert receiver.ids() == [gone, missed]
        delivery = receiver.received[1]
        standard_webhook(created["secret"]).verify(delivery.body, delivery.headers)


def test_endpoints_subscribe_to_verification_events_over_the_api(client: TestClient, keys, app):
    from tests.webhooks.helpers import verification_result

    admin = bearer(keys["admin"])
    created = client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:1/hook", "events": ["deltaone.accepted"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.json()["events"] == ["deltaone.accepted"]
    unknown = client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:1/other", "events": ["deltaone"]},
        headers=admin,
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "validation_error"

    hooks = app.state.components.webhooks
    ids = hooks.announce_verification(verification_result())
    queued = {d["event_id"] for d in hooks.outbox.deliveries(limit=10)}
    assert queued == {ids[1]}  # the deltaone.accepted only

    everything = client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:1/late"}, headers=admin
    ).json()
    replayed = client.post(
        f"/api/v1/webhooks/{everything['id']}/replay",
        json={"since": "2020-01-01T00:00:00Z", "event_types": ["improvement.verified"]},
        headers=admin,
    )
    assert replayed.status_code == 200, replayed.text
    assert replayed.json() == {"queued": 1}
