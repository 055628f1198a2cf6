"""``/api/v1/webhooks``: endpoints CRUD, test ping, deliveries, attempts, redelivery."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hokusai.webhooks.signing import standard_webhook
from tests.rest.conftest import bearer
from tests.webhooks.helpers import fake_result
from tests.webhooks.receiver import running_receiver


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
