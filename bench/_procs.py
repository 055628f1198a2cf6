"""Child processes for the benchmarks: free ports, servers in their own process group, CPU time.

A server is started as the leader of a new session (so its process group holds uvicorn and any
children it forks), polled until an HTTP path answers 200, and stopped by signalling the group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def venv_command(script: str, module: str) -> list[str]:
    """The venv's console script ``script`` when installed, else ``python -m module``."""
    executable = Path(sys.executable).with_name(script)
    return [str(executable)] if executable.exists() else [sys.executable, "-m", module]


def mlflow_server_command(folder: Path, port: int) -> list[str]:
    """``mlflow server`` on ``folder``'s SQLite store and artifact folder, one worker."""
    store, artifacts = f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()
    return [
        *venv_command("mlflow", "mlflow"),
        *("server", "--backend-store-uri", store, "--default-artifact-root", artifacts),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]


def server_environment(
    overrides: Mapping[str, str], *, drop: Iterable[str] = (), unbuffered: bool = False
) -> dict[str, str]:
    """This environment minus ``HOKUSAI_*``, ``MLFLOW_*`` and ``drop``; the venv's ``bin`` first
    on ``PATH``; MLflow telemetry off (``PYTHONUNBUFFERED=1`` if ``unbuffered``); ``overrides``."""
    dropped = set(drop)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HOKUSAI_", "MLFLOW_")) and k not in dropped
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


# ---- CPU time ------------------------------------------------------------------------------


def _session_and_ticks(stat: str) -> tuple[int, int]:
    """From ``/proc/<pid>/stat``: the session id and utime + stime in clock ticks."""
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session
    return int(fields[3]), int(fields[11]) + int(fields[12])


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process; None where ``/proc`` is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return _session_and_ticks(stat)[1] / os.sysconf("SC_CLK_TCK")


def cpu_used(before: float | None, after: float | None) -> float | None:
    """CPU seconds between two readings; None if either failed."""
    return None if before is None or after is None else after - before


def session_cpu_seconds(session: int) -> float | None:
    """User + system CPU seconds of every live process in ``session`` (Linux ``/proc``)."""
    try:
        entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return None
    total = 0
    for entry in entries:
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        owner, ticks = _session_and_ticks(stat)
        if owner == session:
            total += ticks
    return total / os.sysconf("SC_CLK_TCK")


# ---- servers -------------------------------------------------------------------------------


@dataclass
class Server:
    """One server process, the leader of its own session and process group."""

    side: str
    process: subprocess.Popen[bytes]
    base: str
    log: Path
    started: float  # time.perf_counter() just before the process was started
    command: list[str] = field(default_factory=list)
    env_overrides: dict[str, str] = field(default_factory=dict)
    model: str = ""
    auth: str = ""
    ready_seconds: float | None = None
    ready_cpu_seconds: float | None = None
    """CPU (user + system) its process group had used when it was first ready."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.auth} if self.auth else {}

    def cpu_seconds(self) -> float | None:
        return session_cpu_seconds(self.process.pid)

    def tail(self, chars: int = 1500) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def start_server(
    side: str,
    command: list[str],
    *,
    port: int,
    log: Path,
    env: Mapping[str, str],
    cwd: Path,
    append: bool = False,
    env_overrides: Mapping[str, str] | None = None,
    model: str = "",
) -> Server:
    """Start ``command`` in a new session, output to ``log``; returns at once."""
    with log.open("ab" if append else "wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,  # its own process group: uvicorn and MLflow's children
        )
    overrides = dict(env_overrides or {})
    base = f"http://127.0.0.1:{port}"
    return Server(side, process, base, log, started, command, overrides, model=model)


def wait_http(
    server: Server,
    path: str,
    *,
    timeout: float = 120.0,
    interval: float = 0.25,
    request_timeout: float = 2.0,
    also: Callable[[], bool] | None = None,
) -> bool:
    """Poll ``path`` every ``interval`` s until it answers 200 (and ``also()`` holds), then set
    ``ready_seconds`` (since the start) and ``ready_cpu_seconds``. False if the process exits
    or ``timeout`` s pass since the start."""
    import httpx

    deadline = server.started + timeout
    with httpx.Client(timeout=request_timeout) as client:
        while time.perf_counter() < deadline:
            if server.process.poll() is not None:
                return False
            extra = also is None or also()
            try:
                answered = client.get(server.base + path).status_code == 200
            except httpx.HTTPError:
                answered = False
            if answered and extra:
                server.ready_seconds = time.perf_counter() - server.started
                server.ready_cpu_seconds = server.cpu_seconds()
                return True
            time.sleep(interval)
    return False


def stop(process: subprocess.Popen[bytes], *, group: bool = True, grace: float = 5.0) -> None:
    """SIGTERM (to its process group when ``group``), SIGKILL after ``grace`` s; with ``group``
    a last SIGKILL to the group, as children (uvicorn, job consumers) may outlive the leader."""

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)

    if process.poll() is None:
        send(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            process.wait(5)
    if group:
        send(signal.SIGKILL)
