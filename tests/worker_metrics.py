"""Servers with several worker processes, and which worker served what.

The multiprocess metrics tests need ground truth that does not go through the code under test:
each worker writes its values to its own file in the server's multiprocess directory
(``counter_<pid>.db``), and :func:`per_worker` reads those files one by one. A keep-alive
connection stays with the worker that accepted it, so :func:`connection_to_each_worker` gives a
test one HTTP client per worker, each identified by the file its first request counted in.
"""

from __future__ import annotations

import re
import socket
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.stack.stack import ServerProcess, free_port

BANNER = re.compile(r"Prometheus metrics: every worker writes to (\S+)")
START_SECONDS = 120.0
SETTLE_SECONDS = 10.0


@dataclass
class WorkerServer:
    """A ``hokusai server``/``hokusai serve`` process group and its multiprocess directory."""

    process: ServerProcess
    url: str
    metrics_directory: Path


def start_workers(command: str, *, workers: int, env: Mapping[str, str], log: Path) -> WorkerServer:
    """Start ``hokusai COMMAND --workers N`` on a free port; return once the banner named the
    metrics directory, every worker has built its app (each has a file there) and the port
    accepts connections (uvicorn listens once a worker's start-up is complete).

    No request is sent to find out: every request is counted, and one that timed out while the
    workers were starting could still be counted after the test began its own count.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "hokusai.cli.main", command, "--workers", str(workers)]
    process = ServerProcess(
        f"hokusai {command}", [*argv, "--port", str(port)], env=env, log_path=log
    )
    process.start()
    found: list[Path] = []

    def up() -> bool:
        if not found and (match := BANNER.search(log.read_text(errors="replace"))):
            found.append(Path(match.group(1)))
        return bool(found) and len(pids(found[0])) == workers and _accepts(port)

    process.wait_until(up, deadline_seconds=START_SECONDS, what=f"start {workers} workers")
    return WorkerServer(process=process, url=url, metrics_directory=found[0])


def _accepts(port: int) -> bool:
    """A TCP connection, closed before any request (which would be counted)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def pids(directory: Path) -> set[str]:
    """The workers that have written metrics to ``directory``."""
    return {file.stem.rsplit("_", 1)[-1] for file in directory.glob("*.db")}


def per_worker(
    directory: Path, sample: str, labels: Mapping[str, str] | None = None
) -> dict[str, float]:
    """``sample`` (with ``labels``) summed over its other labels, per worker pid, read from each
    worker's own file."""
    wanted = dict(labels or {})
    counts: dict[str, float] = {}
    for file in sorted(directory.glob("counter_*.db")):
        pid = file.stem.rsplit("_", 1)[-1]
        counts[pid] = sum(
            s.value
            for metric in MultiProcessCollector.merge([str(file)])
            for s in metric.samples
            if s.name == sample and all(s.labels.get(k) == v for k, v in wanted.items())
        )
    return counts


def settled(
    directory: Path, sample: str, total: float, labels: Mapping[str, str] | None = None
) -> dict[str, float]:
    """The per-worker counts once they add up to ``total`` (a worker may record a request
    just after its response went out)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        counts = per_worker(directory, sample, labels)
        if sum(counts.values()) == total:
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"{sample}: the workers' files add up to {counts}, not {total}")
        time.sleep(0.02)


def scraped(text: str, sample: str, **labels: str) -> list[float]:
    """The values of ``sample`` (with ``labels``) in a Prometheus text exposition."""
    return [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def connection_to_each_worker(
    url: str,
    directory: Path,
    *,
    send: Callable[[httpx.Client], object],
    sample: str,
    workers: int,
    labels: Mapping[str, str] | None = None,
    deadline_seconds: float = 90.0,
) -> tuple[dict[str, httpx.Client], int]:
    """One keep-alive client per worker pid, and how many requests counted in ``sample``
    (with ``labels``) that took; ``send`` makes one such request.

    A lone connection usually lands on the same worker; connections opened at once make the
    workers race to accept them. After each burst every new client sends one more request on
    its own, and the worker whose file counted it is the one holding that connection. (Until
    the last worker has started, the others take every connection.) Requests counted in
    ``sample`` must come from here alone while this runs.
    """
    offset = sum(per_worker(directory, sample, labels).values())
    bound: dict[str, httpx.Client] = {}
    sent = 0
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        fresh = [httpx.Client(base_url=url, timeout=30) for _ in range(4)]
        with ThreadPoolExecutor(len(fresh)) as pool:
            list(pool.map(send, fresh))
        sent += len(fresh)
        for client in fresh:
            before = settled(directory, sample, offset + sent, labels)
            send(client)
            sent += 1
            after = settled(directory, sample, offset + sent, labels)
            (pid,) = [p for p, n in after.items() if n != before.get(p, 0)]
            if pid in bound:
                client.close()
            else:
                bound[pid] = client
        if len(bound) == workers:
            return bound, sent
    for client in bound.values():
        client.close()
    raise AssertionError(f"connections reached only workers {sorted(bound)} in {deadline_seconds}s")
