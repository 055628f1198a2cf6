"""Prometheus metrics of the prediction server.

One process keeps them in a registry of its own. Under ``hokusai serve --workers N`` the workers
write them to a shared multiprocess directory and ``/metrics`` in any worker reports the totals
of all of them (see :mod:`hokusai.http.metrics`). Each worker loads and swaps its model on its
own, so the gauges are the most any live worker reports (``livemax``): a label set of
``hokusai_serving_model_info`` is 1 while some worker serves that model, and 0 once none does.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from hokusai.http.metrics import scrape_registry
from hokusai.serving.swap import ModelManager

__all__ = ["ServingMetrics"]

ModelLabels = tuple[str, str, str, str]


class ServingMetrics:
    """Prometheus metrics of the serving processes."""

    def __init__(self, manager: ModelManager) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hokusai_serving_requests_total",
            "Prediction requests by protocol (mlflow, v2, hokusai), route and status",
            ["protocol", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hokusai_serving_request_duration_seconds",
            "Prediction latency by protocol and route",
            ["protocol", "route"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
        )
        self.errors = Counter(
            "hokusai_serving_errors_total",
            "Failed predictions by kind",
            ["kind"],
            registry=self.registry,
        )
        self.rows = Counter("hokusai_serving_rows_total", "Rows predicted", registry=self.registry)
        self._model_info = Gauge(
            "hokusai_serving_model_info",
            "The model serving (value 1; 0 for a model no live worker serves any more)",
            ["source", "name", "version", "run_id"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self._swaps = Gauge(
            "hokusai_serving_swaps",
            "Hot swaps since start (the most of any live worker)",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self._failures = Gauge(
            "hokusai_serving_load_failures",
            "Models that failed to load (the most of any live worker)",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self._manager = manager
        self._serving: ModelLabels | None = None
        self._lock = threading.Lock()  # the refresher thread and scrapes both set the gauges
        self._scraped = scrape_registry(own=self.registry)
        # After every refresh, not only at scrape time: in multiprocess mode a worker that is
        # never scraped still has to keep its share of the gauges current.
        manager.on_refresh(self.refresh_gauges)
        self.refresh_gauges()

    def refresh_gauges(self) -> None:
        """Set the gauges from the manager's state."""
        with self._lock:
            self._refresh_gauges()

    def _refresh_gauges(self) -> None:
        manager = self._manager
        current = manager.current
        serving: ModelLabels | None = None
        if current is not None:
            source = current.source
            serving = (source.kind, source.name or "", source.version or "", source.run_id or "")
        if serving != self._serving:
            if self._serving is not None:
                # Set to 0 before it is removed: a multiprocess file keeps a label set's last
                # value, so removing alone would leave the old model at 1.
                self._model_info.labels(*self._serving).set(0)
                self._model_info.remove(*self._serving)
            if serving is not None:
                self._model_info.labels(*serving).set(1)
            self._serving = serving
        self._swaps.set(manager.swaps)
        self._failures.set(manager.load_failures)

    def render(self) -> bytes:
        self.refresh_gauges()
        return generate_latest(self._scraped)
