"""``hokusai serve --workers 2`` as real processes: ``/metrics`` from either worker reports the
predictions of both (Prometheus multiprocess mode), and the model gauge once, not per worker."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import Store, write_pickle
from tests.worker_metrics import (
    connection_to_each_worker,
    per_worker,
    scraped,
    settled,
    start_workers,
)

pytestmark = pytest.mark.slow

REQUESTS = "hokusai_serving_requests_total"
ROWS_PER_REQUEST = 2
READS_PER_WORKER = 3


def _env(store: Store) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HOKUSAI_", "MLFLOW_", "MODEL_", "PROMETHEUS_"))
    }
    env.update(
        CONFIG_PATH=str(store.config),
        HOKUSAI_HOME=str(store.settings.home),
        MLFLOW_TRACKING_URI=store.tracking_uri,
        MODEL_RUN_NAME="",  # nothing above the pickle: it serves
        MODEL_REFRESH_SECONDS="0",
    )
    return env


def test_metrics_of_either_serving_worker_are_the_totals_of_both(
    store: Store, models: Any, data: Any, tmp_path: Path
):
    write_pickle(store, models[0])
    records = data[0].head(ROWS_PER_REQUEST).to_dict(orient="records")

    def predict(client: httpx.Client) -> None:
        response = client.post("/predict", json=records)
        assert response.status_code == 200, response.text

    server = start_workers("serve", workers=2, env=_env(store), log=tmp_path / "serve.log")
    directory = server.metrics_directory
    try:
        clients, sent = connection_to_each_worker(
            server.url, directory, send=predict, sample=REQUESTS, workers=2
        )
        for pid, client in clients.items():
            for _ in range(READS_PER_WORKER):
                settled(directory, REQUESTS, sent)
                text = client.get("/metrics").text
                assert sum(scraped(text, REQUESTS, route="/predict", status="200")) == sent
                assert scraped(text, "hokusai_serving_rows_total") == [sent * ROWS_PER_REQUEST]
                assert sum(scraped(text, "hokusai_serving_request_duration_seconds_count")) == sent
                # Both workers serve the pickle: one series, not one per worker.
                assert scraped(text, "hokusai_serving_model_info") == [1.0]
                assert scraped(text, "hokusai_serving_model_info", source="pickle") == [1.0]
                assert scraped(text, "hokusai_serving_swaps") == [0.0]
                # The same connection still reaches the same worker: it answered the read.
                before = per_worker(directory, REQUESTS)
                predict(client)
                sent += 1
                assert settled(directory, REQUESTS, sent)[pid] == before[pid] + 1
            client.close()
    finally:
        server.process.stop()
    assert not directory.exists()
