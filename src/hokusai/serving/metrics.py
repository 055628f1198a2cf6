"""Prometheus metrics of one prediction server process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from hokusai.serving.swap import ModelManager

__all__ = ["ServingMetrics"]


class ServingMetrics:
    """Prometheus metrics of one serving process."""

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
        model_info = Gauge(
            "hokusai_serving_model_info",
            "The model serving (value 1)",
            ["source", "name", "version", "run_id"],
            registry=self.registry,
        )
        swaps = Gauge("hokusai_serving_swaps", "Hot swaps since start", registry=self.registry)
        failures = Gauge(
            "hokusai_serving_load_failures", "Models that failed to load", registry=self.registry
        )

        def refresh_gauges() -> None:
            model_info.clear()
            current = manager.current
            if current is not None:
                source = current.source
                model_info.labels(
                    source.kind, source.name or "", source.version or "", source.run_id or ""
                ).set(1)
            swaps.set(manager.swaps)
            failures.set(manager.load_failures)

        self._refresh_gauges = refresh_gauges

    def render(self) -> bytes:
        self._refresh_gauges()
        return generate_latest(self.registry)
