"""Skipped sources are never silent: a WARNING per skip (at start-up, on reload, and on a
refresh when they change), one ERROR when nothing loads, ``degraded`` in /health while a
configured source is skipped, and strict mode, which refuses to start instead."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hokusai.serving.app import StartupRefused
from tests.serving.conftest import MODEL, Store, serving_settings, write_pickle

ROOT = Path(__file__).resolve().parents[2]
SWAP_LOGGER = "hokusai.serving.swap"


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == SWAP_LOGGER and r.levelno == level]


def test_a_pinned_model_that_does_not_resolve_is_a_warning_and_degraded(
    store: Store, models: Any, data: Any, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    features, _ = data
    run = store.log(models[0], example=features.head(3))  # the ml_xgboost run
    client = make_client(model_variant="models:/nope@champion", model_run_name="ml_xgboost")
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "degraded"
    assert body["model"]["source"] == "MODEL_RUN_NAME"
    assert body["model"]["run_id"] == run.run_id
    (warning,) = _messages(caplog, logging.WARNING)
    assert warning.startswith(
        "start-up: model source MODEL_VARIANT=models:/nope@champion skipped: "
    )
    assert "nope" in warning.split("skipped: ", 1)[1]
    assert _messages(caplog, logging.ERROR) == []  # a model serves
    # Predictions still work: degraded is a warning to people, not a refusal.
    assert client.post("/predict", json=features.head(1).to_dict(orient="records")).is_success


def test_a_skipped_default_source_is_logged_but_not_degraded(
    store: Store, models: Any, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    write_pickle(store, models[0])
    body = make_client(model_run_name="ml_xgboost").get("/health").json()
    assert body["status"] == "ok"  # nothing was configured on purpose: the pickle is the plan
    assert body["model"]["source"] == "pickle"
    (warning,) = _messages(caplog, logging.WARNING)
    assert warning.startswith("start-up: model source MODEL_RUN_NAME=ml_xgboost skipped: ")


def test_a_run_id_that_does_not_resolve_is_degraded_too(
    store: Store, models: Any, make_client: Any
) -> None:
    write_pickle(store, models[0])
    body = make_client(model_run_id="0123456789abcdef0123456789abcdef").get("/health").json()
    assert body["status"] == "degraded"
    assert body["model"]["source"] == "pickle"


def test_nothing_loadable_is_one_error_naming_every_source(
    store: Store, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(model_variant="models:/nope@champion", model_run_name="ml_xgboost")
    assert client.get("/health").json()["status"] == "down"
    assert len(_messages(caplog, logging.WARNING)) == 3  # variant, run name, pickle
    (error,) = _messages(caplog, logging.ERROR)
    assert error.startswith("start-up: no model could be loaded; tried: ")
    assert "MODEL_VARIANT=models:/nope@champion (" in error
    assert "MODEL_RUN_NAME=ml_xgboost (" in error
    assert "xgb_model.pkl does not exist" in error
    assert error.endswith("; requests get 503 until one loads")


def test_refreshes_log_changes_and_reloads_log_always(
    store: Store, models: Any, data: Any, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SWAP_LOGGER)
    features, _ = data
    write_pickle(store, models[0])
    client = make_client(model_variant=f"models:/{MODEL}@champion")
    manager = client.app.state.manager
    assert len(_messages(caplog, logging.WARNING)) == 1
    for _ in range(3):  # the periodic refresh, skips unchanged: silent
        manager.refresh()
    assert len(_messages(caplog, logging.WARNING)) == 1
    version = store.register(store.log(models[1], example=features.head(3)))  # no alias yet
    manager.refresh()  # the reason changed (the model exists now, the alias does not)
    warnings = _messages(caplog, logging.WARNING)
    assert len(warnings) == 2 and warnings[1].startswith("refresh: model source MODEL_VARIANT")
    assert warnings[1] != warnings[0].replace("start-up", "refresh")
    manager.refresh(force=True, trigger="reload")  # an explicit reload: always
    assert _messages(caplog, logging.WARNING)[2].startswith("reload: model source MODEL_VARIANT")
    assert client.get("/health").json()["status"] == "degraded"
    store.client.set_registered_model_alias(MODEL, "champion", version)
    assert manager.refresh().action == "swapped"
    assert len(_messages(caplog, logging.WARNING)) == 3
    assert "refresh: no model source is skipped any more" in _messages(caplog, logging.INFO)
    body = client.get("/health").json()
    assert (body["status"], body["model"]["version"]) == ("ok", version)


def test_strict_mode_refuses_to_start_when_the_first_source_does_not_load(
    store: Store, models: Any
) -> None:
    from fastapi.testclient import TestClient

    from hokusai.serving.app import create_app

    write_pickle(store, models[0])  # a lower source that would load: not used
    app = create_app(
        serving_settings(store, model_variant="models:/nope@champion", strict_sources=True),
        store.settings,
    )
    with (
        pytest.raises(StartupRefused, match=r"^HOKUSAI_SERVING_STRICT is set and ") as info,
        TestClient(app),
    ):
        pass
    assert "MODEL_VARIANT=models:/nope@champion did not load (" in str(info.value)
    assert str(info.value).endswith("); refusing to start")


def test_strict_mode_never_moves_down_to_a_lower_source(
    store: Store, models: Any, data: Any, make_client: Any
) -> None:
    features, _ = data
    version = store.register(store.log(models[0], example=features.head(3)), alias="champion")
    write_pickle(store, models[1])
    client = make_client(
        model_variant=f"models:/{MODEL}@champion",
        model_run_name="ml_xgboost",
        strict_sources=True,
    )
    body = client.get("/health").json()
    assert (body["status"], body["model"]["version"]) == ("ok", version)
    reasons = {s["source"]: s["reason"] for s in body["skipped"]}
    assert reasons["pickle"] == "not used: HOKUSAI_SERVING_STRICT serves MODEL_VARIANT only"
    store.client.delete_registered_model_alias(MODEL, "champion")
    manager = client.app.state.manager
    assert manager.refresh().action == "none"  # the run and the pickle would load: not tried
    body = client.get("/health").json()
    assert body["status"] == "degraded"
    assert body["model"]["source"] == "MODEL_VARIANT"
    assert body["model"]["version"] == version
    response = client.post("/predict", json=features.head(1).to_dict(orient="records"))
    assert response.headers["x-model-version"] == version


# ---- the real process ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(store: Store, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env.update(
        CONFIG_PATH=str(store.config),
        HOKUSAI_HOME=str(store.settings.home),
        MLFLOW_TRACKING_URI=store.tracking_uri,
        MODEL_REFRESH_SECONDS="0",
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]),
        **values,
    )
    return env


SERVE_COMMANDS = {
    "hokusai serve": [sys.executable, "-m", "hokusai.cli.main", "serve", "--port"],
    "uvicorn api.app:app": [sys.executable, "-m", "uvicorn", "api.app:app", "--port"],
}


@pytest.mark.slow
@pytest.mark.parametrize("command", list(SERVE_COMMANDS))
def test_a_strict_server_process_exits_non_zero_with_one_line(store: Store, command: str) -> None:
    result = subprocess.run(
        [*SERVE_COMMANDS[command], str(_free_port())],
        cwd=ROOT,
        env=_env(store, MODEL_VARIANT="models:/nope@champion", HOKUSAI_SERVING_STRICT="true"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    refusals = [line for line in result.stderr.splitlines() if "HOKUSAI_SERVING_STRICT" in line]
    assert len(refusals) == 1, result.stderr
    assert "MODEL_VARIANT=models:/nope@champion did not load (" in refusals[0]
    assert refusals[0].endswith("); refusing to start")


@pytest.mark.slow
def test_a_real_server_shows_its_skips_and_says_degraded(store: Store, models: Any) -> None:
    write_pickle(store, models[0])
    port = _free_port()
    server = subprocess.Popen(
        [*SERVE_COMMANDS["hokusai serve"], str(port)],
        cwd=ROOT,
        env=_env(store, MODEL_VARIANT="models:/nope@champion", MODEL_RUN_NAME=""),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        health = None
        while health is None and time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None, "the server did not start"
        assert (health["status"], health["model"]["source"]) == ("degraded", "pickle")
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=30)
    warnings = [line for line in stderr.splitlines() if line.startswith("WARNING:")]
    assert len(warnings) == 1, stderr
    assert "start-up: model source MODEL_VARIANT=models:/nope@champion skipped: " in warnings[0]
