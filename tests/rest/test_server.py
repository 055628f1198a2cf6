"""``hokusai server`` as a real uvicorn process: bootstrap key, requests over a socket,
registration through ``hokusai quickstart --server``, clean shutdown."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env["HOKUSAI_HOME"] = str(home)
    return env


def test_real_server_end_to_end(tmp_path: Path):
    port = _free_port()
    home = tmp_path / "home"
    server = subprocess.Popen(
        [sys.executable, "-m", "hokusai.cli.main", "server", "--port", str(port)],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        key = None
        deadline = time.monotonic() + 60
        assert server.stdout is not None
        while key is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            output.append(line)
            match = re.search(r"export HOKUSAI_API_KEY=(hk_\S+)", line)
            key = match.group(1) if match else None
        assert key, "".join(output)
        url = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        health = httpx.get(f"{url}/health", timeout=10)
        assert health.status_code == 200
        assert health.json()["services"]["mlflow"] == "healthy"
        assert httpx.get(f"{url}/api/v1/models", timeout=10).status_code == 401

        quickstart = subprocess.run(
            [
                sys.executable,
                "-m",
                "hokusai.cli.main",
                "quickstart",
                "--server",
                url,
                "--api-key",
                key,
            ],
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=180,
            cwd=tmp_path,
        )
        assert quickstart.returncode == 0, quickstart.stdout + quickstart.stderr
        assert "hokusai_quickstart_cancer_improved/1" in quickstart.stdout
        assert not (tmp_path / "mlruns").exists()  # artifacts went under HOKUSAI_HOME

        headers = {"Authorization": f"Bearer {key}"}
        listed = httpx.get(f"{url}/api/v1/models", headers=headers, timeout=10).json()
        assert listed["count"] == 2
        uuid = listed["data"][0]["model_uuid"]
        found = httpx.get(f"{url}/api/v1/models/by-uuid/{uuid}", headers=headers, timeout=10)
        assert found.json()["contributor"] == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            rest, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit status -15).
    assert server.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in rest


def test_bootstrap_key_is_printed_only_on_first_start(tmp_path: Path):
    from hokusai.auth.keys import ApiKeyStore
    from hokusai.cli.server import _bootstrap_admin_key
    from hokusai.config import Settings
    from hokusai.db import open_database

    settings = Settings(home=tmp_path)
    _bootstrap_admin_key(settings)
    _bootstrap_admin_key(settings)
    store = ApiKeyStore(open_database(settings.resolved_database_url))
    assert [(k.name, k.scope) for k in store.list()] == [("bootstrap-admin", "admin")]
    not_embedded = Settings(home=tmp_path / "x", tracking_uri="http://mlflow:5000")
    _bootstrap_admin_key(not_embedded)
    assert ApiKeyStore(open_database(not_embedded.resolved_database_url)).list() == []
