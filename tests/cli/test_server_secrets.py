"""``hokusai server``: the bootstrap admin key is made once per database, ever; what the server
prints and logs carries no credential."""

from __future__ import annotations

import logging
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

from hokusai.auth.keys import ApiKeyStore
from hokusai.cli.server import _bootstrap_admin_key
from hokusai.config import Settings
from hokusai.db import open_database
from hokusai.http.logs import RedactSecrets

KEY = "hk_AbCdEfGhIjKl_" + "s" * 43


def test_the_bootstrap_key_is_made_on_a_brand_new_database_only(tmp_path: Path, capsys):
    settings = Settings(home=tmp_path)
    _bootstrap_admin_key(settings)
    first = capsys.readouterr().out
    match = re.search(r"export HOKUSAI_API_KEY=(hk_\S+)", first)
    assert match, first
    store = ApiKeyStore(open_database(settings.resolved_database_url))
    (key,) = store.list()
    assert (key.name, key.scope) == ("bootstrap-admin", "admin")
    _bootstrap_admin_key(settings)  # a restart: no key, one line saying how to make one
    assert _restart_hint(capsys.readouterr().out)
    # Every key revoked, then a restart: no fresh admin key in the logs.
    store.revoke(key.id)
    assert store.count_active() == 0
    _bootstrap_admin_key(settings)
    assert _restart_hint(capsys.readouterr().out)
    assert [k.id for k in store.list()] == [key.id]


def _restart_hint(out: str) -> bool:
    """One line, no key in it, naming the command that makes an admin key."""
    return (
        out.count("\n") == 1
        and "hk_" not in out
        and "hokusai keys create --scope admin --name" in out
    )


def test_a_database_whose_keys_were_made_by_hand_gets_no_bootstrap_key(tmp_path: Path, capsys):
    settings = Settings(home=tmp_path)
    store = ApiKeyStore(open_database(settings.resolved_database_url))
    made, _ = store.create(name="ci", scope="read")
    store.revoke(made.id)
    _bootstrap_admin_key(settings)
    assert _restart_hint(capsys.readouterr().out)
    assert [k.id for k in store.list()] == [made.id]


def test_the_access_log_filter_masks_keys_and_secret_parameters():
    # The shape of uvicorn's access log record.
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "GET",
            f"/api/v1/models?api_key={KEY}&access_token=t0k3n&max_results=5",
            "1.1",
            400,
        ),
        None,
    )
    assert RedactSecrets().filter(record)
    line = record.getMessage()
    assert KEY not in line and "t0k3n" not in line
    assert "api_key=***&access_token=***&max_results=5" in line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_the_server_prints_and_logs_no_credential(tmp_path: Path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env["HOKUSAI_HOME"] = str(tmp_path / "home")
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hokusai.cli.main",
                "--tracking-uri",
                "http://ops:Sup3rS3cret@127.0.0.1:9",
                "server",
                "--port",
                str(port),
                "--no-webhook-worker",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            while True:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                try:
                    if httpx.get(f"{url}/live", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            refused = httpx.get(f"{url}/api/v1/models?api_key={KEY}&token=t0k3n", timeout=10)
            assert refused.status_code == 400
            httpx.get(f"{url}/live?password=hunter2", timeout=10)
            text = log.read_text()
            while "/live?password" not in text and time.monotonic() < deadline:
                time.sleep(0.1)
                text = log.read_text()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    text = log.read_text()
    assert "MLflow store: http://ops:***@127.0.0.1:9" in text
    assert "GET /api/v1/models?api_key=***&token=*** HTTP/1.1" in text
    assert "GET /live?password=*** HTTP/1.1" in text
    for secret in ("Sup3rS3cret", KEY, "s" * 43, "t0k3n", "hunter2"):
        assert secret not in text, secret
