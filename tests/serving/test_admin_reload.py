"""``POST /admin/reload`` fails closed, and what the server says about its model shows no path.

The prediction server's key database is the project database of its settings (by default
``./.hokusai/hokusai.db``, empty on a fresh serving host): with no active admin key in it,
nobody may reload.
"""

from __future__ import annotations

from typing import Any

import pytest

from hokusai.auth.keys import ApiKeyStore
from hokusai.db import open_database
from tests.serving.conftest import Store, write_pickle


def _keys(store: Store) -> ApiKeyStore:
    return ApiKeyStore(open_database(store.settings.resolved_database_url))


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    return str(response.json()["error"]["message"])


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_reload_is_closed_while_there_is_no_admin_key(store: Store, make_client: Any):
    client = make_client()
    for headers in ({}, _bearer("hk_AAAAAAAAAAAA_" + "B" * 43), {"Authorization": "Basic x"}):
        message = _error(client.post("/admin/reload", headers=headers), 403, "admin_key_required")
        assert "hokusai keys create --scope admin" in message
    keys = _keys(store)
    reader = keys.create(name="dash", scope="read")[1]
    writer = keys.create(name="ci", scope="write")[1]
    for key in (reader, writer):  # keys exist, but none is an admin key: still closed
        _error(client.post("/admin/reload", headers=_bearer(key)), 403, "admin_key_required")


def test_reload_needs_an_active_admin_key(store: Store, make_client: Any):
    client = make_client()
    keys = _keys(store)
    admin_key, admin = keys.create(name="ops", scope="admin")
    reader = keys.create(name="dash", scope="read")[1]
    _error(client.post("/admin/reload"), 401, "unauthenticated")
    _error(client.post("/admin/reload", headers=_bearer(admin[:-1] + "x")), 401, "invalid_api_key")
    _error(client.post("/admin/reload", headers=_bearer(reader)), 403, "forbidden")
    reloaded = client.post("/admin/reload", headers=_bearer(admin))
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["action"] == "none"
    keys.revoke(admin_key.id)  # the last admin key gone: closed to everyone again
    _error(client.post("/admin/reload", headers=_bearer(admin)), 403, "admin_key_required")


def test_the_reload_route_can_be_removed(store: Store, make_client: Any):
    admin = _keys(store).create(name="ops", scope="admin")[1]
    client = make_client(admin_reload=False)
    _error(client.post("/admin/reload", headers=_bearer(admin)), 404, "not_found")
    assert client.get("/live").status_code == 200


@pytest.mark.parametrize("route", ["/health", "/ready", "/model"])
def test_what_the_server_says_about_its_model_shows_no_path(
    store: Store, models: list[Any], make_client: Any, tmp_path: Any, route: str
):
    write_pickle(store, models[0])
    client = make_client(model_variant="models:/missing@champion")
    response = client.get(route)
    assert response.status_code == 200, response.text
    assert str(tmp_path) not in response.text
    assert "…/xgb_model.pkl" in response.text
    if route == "/health":
        body = response.json()
        assert body["model"]["source"] == "pickle"
        assert body["model"]["uri"] == "…/xgb_model.pkl"
        assert "MODEL_VARIANT" in [s["source"] for s in body["skipped"]]


def test_a_server_with_no_model_answers_without_internals(store: Store, make_client: Any, tmp_path):
    client = make_client()
    health = client.get("/health")
    assert health.status_code == 503
    assert str(tmp_path) not in health.text
    assert "…/xgb_model.pkl does not exist" in health.text
    refused = client.post("/invocations", json={"inputs": [[1.0]]})
    assert refused.status_code == 503
    error = refused.json()["error"]
    assert error["code"] == "model_not_loaded"
    assert (
        error["message"]
        == f"No model is loaded; GET /health says why (reference {error['error_id']})."
    )
    assert str(tmp_path) not in refused.text
