"""HTTP load generation for api.py and serving.py: wrk when installed, else httpx.AsyncClient."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from _common import progress


def add_loadgen(parser: argparse.ArgumentParser) -> None:
    """``--loadgen auto|wrk|httpx`` (see :func:`pick_loadgen`)."""
    help = "load generator: wrk when installed (auto), or the httpx fallback"
    parser.add_argument("--loadgen", choices=("auto", "wrk", "httpx"), default="auto", help=help)


def pick_loadgen(choice: str, parser: argparse.ArgumentParser) -> str:
    """``wrk`` or ``httpx`` for ``--loadgen auto|wrk|httpx`` (auto: wrk when installed)."""
    if choice == "httpx":
        return "httpx"
    if shutil.which("wrk"):
        return "wrk"
    if choice == "wrk":
        parser.error("--loadgen wrk: wrk is not installed (apt-get install wrk)")
    progress("wrk not found: using the httpx load generator (lower, noisier numbers)")
    return "httpx"


def wrk_version() -> str | None:
    """wrk's first line of ``wrk -v`` (its version), or None."""
    try:
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0] if text else None


def run_wrk(
    url: str,
    script: Path,
    connections: int,
    seconds: int,
    *,
    threads: int = 1,
    latency: bool = False,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``wrk -t -c -d --timeout 10s [--latency] -s script url``; its output is captured."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    command += [*(["--latency"] if latency else []), "-s", str(script), url]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )


async def httpx_connections(
    connections: int, worker: Callable[[Any, int], Awaitable[None]], **client_options: Any
) -> float:
    """``worker(client, index)`` once per connection, all at once, on one ``httpx.AsyncClient``
    keeping ``connections`` keep-alive connections; returns the seconds they took together."""
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, **client_options) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client, index) for index in range(connections)))
        return time.perf_counter() - started


def run_httpx(
    connections: int, worker: Callable[[Any, int], Awaitable[None]], **client_options: Any
) -> float:
    """:func:`httpx_connections` in a fresh event loop."""
    return asyncio.run(httpx_connections(connections, worker, **client_options))


def httpx_version() -> str:
    import httpx

    return str(httpx.__version__)
