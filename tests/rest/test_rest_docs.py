"""docs/rest-api.md cannot rot: its curl walkthrough is replayed against a real server, and its
route list, error table and settings are checked against the app, ``hokusai.errors`` and
``hokusai.config``. A bug the replay found (a ping lost to the background sender) has a
regression test at the end."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "rest-api.md"
CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
SECOND_CONTRIBUTOR = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"


def bash_blocks(text: str) -> list[str]:
    """The ```bash blocks of a Markdown text, in order."""
    return re.findall(r"^```bash\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(home: Path, **extra: str) -> dict[str, str]:
    """The test's environment without Hokusai/MLflow settings, on ``home``, the venv first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env["HOKUSAI_HOME"] = str(home)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return {**env, **extra}


def _wait_for(predicate: Any, *, timeout: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout:g}s; server log:\n{log.read_text()}")


class Server:
    """``hokusai server`` as a subprocess on a free port, its output in a file."""

    def __init__(self, home: Path, log: Path) -> None:
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.home = home
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hokusai.cli.main",
                "server",
                "--port",
                self.url.rsplit(":", 1)[1],
                # As the walkthrough says: deliveries wait in the outbox where it shows them.
                "--no-webhook-worker",
            ],
            env=_env(home),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            self.key: str = _wait_for(self._bootstrap_key, timeout=60, what="admin key", log=log)
            _wait_for(self._live, timeout=60, what="/live", log=log)
        except BaseException:
            self.stop()
            raise

    def _bootstrap_key(self) -> str | None:
        assert self.process.poll() is None, self.log.read_text()
        match = re.search(r"^\s*export HOKUSAI_API_KEY=(hk_\S+)$", self.log.read_text(), re.M)
        return match.group(1) if match else None

    def _live(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/live", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> int:
        """SIGTERM, then the exit status (killed, and the test failed, if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"server ignored SIGTERM; log:\n{self.log.read_text()}") from None
        finally:
            self._log_file.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "home", tmp_path / "server.log")
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.slow
def test_the_walkthrough_runs_against_a_real_server(server: Server, tmp_path: Path):
    script = "\n".join(bash_blocks(DOC.read_text()))
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work,
        env=_env(server.home, HOKUSAI_URL=server.url, HOKUSAI_API_KEY=server.key),
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, f"{out}\n--- stderr\n{result.stderr}"
    assert out.rstrip().endswith("walkthrough complete"), out
    expected = [
        # 1. keys: 401 without one, 403 with a write key on an admin route
        "no key: 401",
        "write key on /webhooks: 403",
        # 3-5. registration, lookup, improvements, the 422 of a bad contributor
        "baseline hokusai_iris_baseline/1 uuid m-",
        "unknown uuid: 404",
        f"improved: hokusai_iris_improved/1 by {CONTRIBUTOR}, hokusai_iris_improved/2 on top",
        '"code":"invalid_contributor"',
        # 6. lineage: the chain, each credited, improvements adding up
        "0 hokusai_iris_baseline/1 None {'total_improvements': 0",
        f"1 hokusai_iris_improved/1 {CONTRIBUTOR} {{'accuracy': 0.04, 'total_improvements': 1",
        f"2 hokusai_iris_improved/2 {SECOND_CONTRIBUTOR} {{'accuracy': 0.06",
        # 7. promote then roll back
        '"alias":"champion","version":"2","previous_version":null',
        '"alias":"champion","version":"1","previous_version":"2"',
        "deleted alias: 204",
        # 8. webhooks: a ping that could not connect, the promotion's delivery, redelivery
        '"status_code":null',
        "model_promoted hokusai_iris_improved/2 pending 0 None",
        "ping None dead 1 ",
        '{"requeued":1}',
        "deleted endpoint: 204",
        '{"data":[],"count":0}',
        'hokusai_registrations_total{kind="baseline"} 1.0',
        'hokusai_registrations_total{kind="improved"} 2.0',
    ]
    missing = [line for line in expected if line not in out]
    assert not missing, f"missing {missing} in:\n{out}"
    assert httpx.get(f"{server.url}/ready", timeout=10).status_code == 200

    status = server.stop()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert status in (0, -signal.SIGTERM), server.log.read_text()
    assert "Application shutdown complete" in server.log.read_text()


def test_every_route_is_in_the_doc(app: Any):
    text = DOC.read_text()
    operations = [
        f"{method.upper()} {path}"
        for path, methods in app.openapi()["paths"].items()
        for method in methods
    ]
    assert any(op.startswith("POST /api/v1/") for op in operations)
    missing = [op for op in operations if f"`{op}`" not in text]
    assert not missing, missing


def test_the_error_table_is_hokusai_errors_http_status():
    from hokusai.errors import HTTP_STATUS

    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", DOC.read_text(), flags=re.M))
    assert {code: int(status) for code, status in rows.items()} == HTTP_STATUS


def test_every_api_setting_is_in_the_doc():
    from hokusai.config import Settings

    text = DOC.read_text()
    names = [n for n in Settings.model_fields if n.startswith(("api_", "rate_limit_", "redis_"))]
    assert len(names) >= 7
    missing = [f"HOKUSAI_{name.upper()}" for name in names if f"HOKUSAI_{name.upper()}" not in text]
    assert not missing, missing


def test_only_bash_blocks_are_run():
    """The server start lines are ``console`` blocks: a ``bash`` one would hang the replay."""
    blocks = bash_blocks(DOC.read_text())
    assert len(blocks) >= 8
    assert not [b for b in blocks if re.search(r"^\s*(hokusai server|make run)", b, re.M)]


def test_a_ping_is_not_lost_to_the_background_sender(
    client: Any, keys: dict[str, str], app: Any, monkeypatch: pytest.MonkeyPatch
):
    """Found replaying the walkthrough on the default server (14 of 20 pings were 409 there).
    The sender thread winning the race is made deterministic: it claims just before the route."""
    from tests.rest.conftest import bearer

    admin = bearer(keys["admin"])
    created = client.post(
        "/api/v1/webhooks", json={"url": "https://hooks.example.invalid/h"}, headers=admin
    )
    outbox = app.state.components.webhooks.outbox
    record = outbox.record
    competing: list[Any] = []

    def sender_polls_right_after_the_write(**kwargs: Any) -> Any:
        created = record(**kwargs)
        competing.extend(outbox.claim(owner="api-sender", limit=10, lease_seconds=60))
        return created

    monkeypatch.setattr(outbox, "record", sender_polls_right_after_the_write)
    response = client.post(f"/api/v1/webhooks/{created.json()['id']}/test", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["error"].startswith("ConnectError")
    assert competing == []  # the ping was never claimable by anyone else
