"""The deployed split: ``hokusai server --no-verify-worker`` answers and queues, a separate
``hokusai verifications worker`` process evaluates (real processes, real sockets, one store)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hokusai.config import Settings
from tests.rest.verify_world import build_world


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _hokusai(args: list[str], home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env["HOKUSAI_HOME"] = str(home)
    env["HOKUSAI_VERIFY_POLL_SECONDS"] = "0.2"
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hokusai.cli.main", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _until(check: object, what: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}:\n{log.read_text()}"
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


@pytest.mark.slow
def test_a_worker_process_evaluates_what_the_api_process_queued(tmp_path: Path):
    from hokusai.auth import ApiKeyStore
    from hokusai.db import open_database
    from hokusai.registry import ModelRegistry
    from hokusai.registry.benchmarks import BenchmarkStore

    home = tmp_path / "home"
    settings = Settings(home=home, webhook_background=False)
    registry = ModelRegistry(settings=settings)
    world = build_world(registry, BenchmarkStore(settings), tmp_path / "benchmarks")
    key = ApiKeyStore(open_database(settings.resolved_database_url)).create(
        name="ci", scope="write"
    )[1]
    headers = {"Authorization": f"Bearer {key}"}

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server_log = tmp_path / "server.log"
    server = _hokusai(
        ["server", "--port", str(port), "--no-webhook-worker", "--no-verify-worker"],
        home,
        server_log,
    )
    worker = None
    worker_log = tmp_path / "worker.log"
    try:

        def ready() -> bool:
            assert server.poll() is None, server_log.read_text()
            try:
                return httpx.get(f"{url}/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        _until(ready, "the API did not start", server_log)
        body = {"candidate_id": world.candidate_id, "benchmark": world.benchmark}
        answer = httpx.post(f"{url}/api/v1/verifications", json=body, headers=headers, timeout=60)
        assert answer.status_code == 202, answer.text
        location = url + answer.headers["location"]
        time.sleep(1.5)  # nothing in the API process evaluates
        assert httpx.get(location, headers=headers, timeout=10).json()["status"] == "queued"

        worker = _hokusai(["verifications", "worker"], home, worker_log)

        def succeeded() -> bool:
            assert worker is not None and worker.poll() is None, worker_log.read_text()
            state = httpx.get(location, headers=headers, timeout=10).json()
            assert state["status"] != "failed", state
            return bool(state["status"] == "succeeded")

        _until(succeeded, "the worker did not evaluate it", worker_log)
        done = httpx.get(location, headers=headers, timeout=10).json()
        assert done["result"]["verification_id"] == answer.json()["id"]
        assert done["attempts"] == 1
        assert _stop(worker) == 0  # SIGTERM: a clean exit
        worker = None
        text = worker_log.read_text()
        assert "evaluating from" in text and f"verification {answer.json()['id']}" in text
    finally:
        if worker is not None:
            _stop(worker)
        _stop(server)
