"""``hokusai server --workers 2`` as real processes: ``/metrics`` from either worker reports the
totals of both (Prometheus multiprocess mode), and the directory the CLI made for them is gone
when the server stops."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.worker_metrics import (
    connection_to_each_worker,
    per_worker,
    scraped,
    settled,
    start_workers,
)

pytestmark = pytest.mark.slow

REQUESTS = "hokusai_http_requests_total"
READS_PER_WORKER = 3


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HOKUSAI_", "MLFLOW_", "PROMETHEUS_"))
    }
    env["HOKUSAI_HOME"] = str(home)
    return env


def _live(client: httpx.Client) -> None:
    assert client.get("/live").status_code == 200


def test_metrics_of_either_api_worker_are_the_totals_of_both(tmp_path: Path):
    server = start_workers(
        "server", workers=2, env=_env(tmp_path / "home"), log=tmp_path / "api.log"
    )
    directory = server.metrics_directory
    try:
        assert directory.is_dir()
        assert not directory.is_relative_to(tmp_path)  # the CLI's own temporary directory
        clients, sent = connection_to_each_worker(
            server.url, directory, send=_live, sample=REQUESTS, workers=2
        )
        for pid, client in clients.items():
            for _ in range(READS_PER_WORKER):
                before = settled(directory, REQUESTS, sent)
                text = client.get("/metrics").text
                # Everything both workers served, not just this worker's share.
                assert scraped(text, REQUESTS) and sum(scraped(text, REQUESTS)) == sent
                assert sum(scraped(text, "hokusai_http_request_duration_seconds_count")) == sent
                assert scraped(text, "hokusai_webhook_attempts") == [0.0]  # once, not per worker
                sent += 1
                after = settled(directory, REQUESTS, sent)
                assert after[pid] == before[pid] + 1  # this worker answered the read
            client.close()
        assert all(count > READS_PER_WORKER for count in per_worker(directory, REQUESTS).values())
    finally:
        server.process.stop()
    assert not directory.exists()  # removed when the server exited
