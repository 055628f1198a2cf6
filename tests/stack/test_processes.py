"""The registry API as a deployment runs it: ``hokusai server`` in a process of its own,
configured by its environment alone, against the stack."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from hokusai.auth import ApiKeyStore
from hokusai.db import open_database
from tests.stack.conftest import log_model
from tests.stack.stack import PROXIED, LoopbackStack, free_port, server_environment


def test_hokusai_server_registers_through_the_tracking_server(
    tmp_path: Path, loopback_stack: LoopbackStack, logistic, model_type
):
    tracking = loopback_stack.tracking(PROXIED)
    port = free_port()
    env = server_environment(
        {
            **tracking.client_env,
            "HOKUSAI_DATABASE_URL": tracking.database_url,
            "HOKUSAI_HOME": str(tmp_path / "home"),
        }
    )
    api = loopback_stack.run_server(
        "hokusai server",
        [sys.executable, "-m", "hokusai.cli.main", "server", "--port", str(port)],
        env=env,
        ready_url=f"http://127.0.0.1:{port}/health",
    )
    try:
        key = ApiKeyStore(open_database(tracking.database_url)).create(name="ci", scope="write")[1]
        uri = log_model(tracking, logistic)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            created = client.post(
                "/api/v1/models",
                json={"model_uri": uri, "model_type": model_type},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert created.status_code == 201, created.text
            found = client.get(
                f"/api/v1/models/by-uuid/{created.json()['model_uuid']}",
                headers={"Authorization": f"Bearer {key}"},
            )
            assert found.status_code == 200, found.text
            assert found.json()["model_id"] == created.json()["model_id"]
    finally:
        api.stop()
    assert "Hokusai registry API on" in api.log_path.read_text()
