"""Headless Chromium for the console's browser tests: Debian's ``/usr/bin/chromium`` driven
by Playwright for Python (never a browser Playwright downloads), and a real ``hokusai server``.

Without Chromium the tests skip, saying so — or fail with ``CI=true``: ``make test`` installs it
first (the Makefile's ``browser`` target)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import on_ci

CHROMIUM = Path(os.environ.get("HOKUSAI_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def require_chromium() -> None:
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (`make test` installs Debian's chromium when root)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is missing (pip install -e '.[dev]')"
    if reason is None:
        return
    if on_ci():
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(home: Path, extra_env: dict[str, str]) -> Iterator[str]:
    """``hokusai server`` (uvicorn, webhook worker in process) on a free loopback port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env.update(HOKUSAI_HOME=str(home), **extra_env)
    log = (home.parent / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "hokusai.cli.main", "server", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise AssertionError((home.parent / "server.log").read_text())
            try:
                if httpx.get(f"{url}/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    "server did not start: " + (home.parent / "server.log").read_text()
                )
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@dataclass
class Watch:
    """What a page did that a user would not want: console errors, uncaught exceptions, failed
    requests, requests to any host but the server."""

    origin: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"console {message.type}: {message.text}")
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on(
            "requestfailed",
            lambda request: self.errors.append(f"failed: {request.url} {request.failure}"),
        )
        page.on(
            "request",
            lambda request: (
                None
                if request.url.startswith(self.origin) or request.url.startswith("data:")
                else self.foreign.append(request.url)
            ),
        )

    def assert_clean(self) -> None:
        assert self.errors == []
        assert self.foreign == []
