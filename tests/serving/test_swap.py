"""Hot swap under load with zero failed requests, a broken version that never serves,
rollback by moving the alias back, and the admin reload."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hokusai.config import Settings
from tests.serving.conftest import MODEL, LiveServer, serving_settings

pytestmark = pytest.mark.slow


def _wait(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def _break(store: Any, version: str) -> None:
    """Remove the model file of a registered version: it can no longer load."""
    location = store.client.get_model_version_download_uri(MODEL, version)
    folder = Path(location.removeprefix("file://"))
    for item in folder.iterdir():
        if item.name.startswith("model.") and item.is_file():
            item.unlink()
        elif item.is_dir() and item.name == "data":
            shutil.rmtree(item)


def test_swap_and_rollback_under_load_without_a_failed_request(store, models, data):
    from hokusai.serving.app import create_app

    features, _ = data
    v1 = store.register(store.log(models[0], example=features.head(3)), alias="champion")
    app = create_app(
        serving_settings(
            store, model_variant=f"models:/{MODEL}@champion", model_refresh_seconds=0.1
        ),
        store.settings,
    )
    records = features.head(1).to_dict(orient="records")
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def hammer(url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.is_set():
                response = client.post("/predict", json=records)
                seen.append((response.status_code, response.headers.get("x-model-version", "")))

    with LiveServer(app) as server:
        workers = [threading.Thread(target=hammer, args=(server.url,)) for _ in range(4)]
        for worker in workers:
            worker.start()
        try:
            _wait(lambda: len(seen) > 50)
            v2 = store.register(store.log(models[1], example=features.head(3)), alias="champion")
            _wait(lambda: any(v == v2 for _, v in seen[-20:]))
            swapped_at = len(seen)
            store.client.set_registered_model_alias(MODEL, "champion", v1)  # roll back
            _wait(lambda: all(v == v1 for _, v in seen[-20:]) and len(seen) > swapped_at + 20)
        finally:
            stop.set()
            for worker in workers:
                worker.join(10)
        health = httpx.get(f"{server.url}/health").json()
        metrics = httpx.get(f"{server.url}/metrics").text
    statuses = {status for status, _ in seen}
    assert statuses == {200}, f"failed requests during swaps: {statuses}"
    versions = [v for _, v in seen]
    assert versions[0] == v1
    assert v2 in versions
    assert versions[-1] == v1
    assert health["swaps"] == 2
    assert health["model"]["version"] == v1
    # One model_info series, the one serving: the swapped-out version's is gone.
    info = [line for line in metrics.splitlines() if line.startswith("hokusai_serving_model_info")]
    assert len(info) == 1 and f'version="{v1}"' in info[0] and info[0].endswith(" 1.0"), info
    assert "hokusai_serving_swaps 2.0" in metrics


def test_a_broken_version_never_replaces_the_serving_one(store, models, data, tmp_path):
    from fastapi.testclient import TestClient

    from hokusai.serving.app import create_app

    features, _ = data
    v1 = store.register(store.log(models[0], example=features.head(3)), alias="champion")
    app = create_app(
        serving_settings(store, model_variant=f"models:/{MODEL}@champion"), store.settings
    )
    admin = _admin_key(store.settings)
    with TestClient(app, headers=admin) as client:
        v2 = store.register(store.log(models[1], example=features.head(3)))
        _break(store, v2)
        store.client.set_registered_model_alias(MODEL, "champion", v2)
        outcome = client.post("/admin/reload").json()
        assert outcome["action"] == "failed"
        assert outcome["identity"] == f"{MODEL}/{v2}"
        response = client.post("/predict", json=features.head(2).to_dict(orient="records"))
        assert response.status_code == 200
        assert response.headers["x-model-version"] == v1
        health = client.get("/health").json()
        assert health["model"]["version"] == v1
        assert health["last_error"]
        assert any("failed to load" in s["reason"] for s in health["skipped"])
        assert "hokusai_serving_load_failures 1.0" in client.get("/metrics").text
        # the broken identity is not retried on every refresh, only when forced or changed
        assert client.post("/admin/reload").json()["action"] == "failed"
        store.client.set_registered_model_alias(MODEL, "champion", v1)
        assert client.post("/admin/reload").json()["action"] == "unchanged"


def test_admin_reload_is_closed_until_an_admin_key_exists(store, models, data):
    from fastapi.testclient import TestClient

    from hokusai.auth.keys import ApiKeyStore
    from hokusai.db import open_database
    from hokusai.serving.app import create_app

    features, _ = data
    store.register(store.log(models[0], example=features.head(3)), alias="champion")
    settings: Settings = store.settings
    app = create_app(serving_settings(store, model_variant=f"models:/{MODEL}@champion"), settings)
    with TestClient(app) as client:
        closed = client.post("/admin/reload")  # no keys at all: closed, not open
        assert closed.status_code == 403
        assert closed.json()["error"]["code"] == "admin_key_required"
        keys = ApiKeyStore(open_database(settings.resolved_database_url))
        admin = keys.create(name="ops", scope="admin")[1]
        reader = keys.create(name="dash", scope="read")[1]
        assert client.post("/admin/reload").json()["error"]["code"] == "unauthenticated"
        forbidden = client.post("/admin/reload", headers={"Authorization": f"Bearer {reader}"})
        assert forbidden.status_code == 403
        ok = client.post("/admin/reload", headers={"Authorization": f"Bearer {admin}"})
        assert ok.status_code == 200
        assert ok.json()["action"] == "unchanged"


def _admin_key(settings: Settings) -> dict[str, str]:
    """Headers with a new admin key of the server's project database."""
    from hokusai.auth.keys import ApiKeyStore
    from hokusai.db import open_database

    key = ApiKeyStore(open_database(settings.resolved_database_url)).create(
        name="ops", scope="admin"
    )[1]
    return {"Authorization": f"Bearer {key}"}
