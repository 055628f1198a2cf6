"""Prometheus metrics of the API.

One process keeps them in a registry of its own (so tests can build many apps). Under
``hokusai server --workers N`` the workers write them to a shared multiprocess directory and
``/metrics`` in any worker reports the totals of all of them (see :mod:`hokusai.http.metrics`).
The webhook and verification-job gauges are read from the shared database at scrape time, the
same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hokusai.http.metrics import scrape_registry

__all__ = ["ApiMetrics"]


class _WebhookCollector(Collector):
    def __init__(self, stats: Callable[[], dict[str, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._stats()
        deliveries = GaugeMetricFamily(
            "hokusai_webhook_deliveries", "Webhook deliveries by state", labels=["state"]
        )
        for state in ("pending", "delivering", "delivered", "failed", "dead"):
            deliveries.add_metric([state], float(stats.get(state, 0)))
        yield deliveries
        yield GaugeMetricFamily(
            "hokusai_webhook_attempts", "Delivery attempts recorded", value=stats["attempts"]
        )
        for q in ("p50", "p99"):
            value = stats.get(f"latency_ms_{q}")
            if value is not None:
                yield GaugeMetricFamily(
                    f"hokusai_webhook_attempt_latency_ms_{q}",
                    f"Attempt latency {q} over the last 1000 attempts (ms)",
                    value=value,
                )


class _VerificationCollector(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily(
            "hokusai_verification_jobs",
            "Verifications asked for over the API, by state",
            labels=["state"],
        )
        for state, count in self._counts().items():
            jobs.add_metric([state], float(count))
        yield jobs


class ApiMetrics:
    """The metrics the API records."""

    def __init__(
        self,
        webhook_stats: Callable[[], dict[str, Any]] | None = None,
        verification_counts: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hokusai_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hokusai_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.registrations = Counter(
            "hokusai_registrations_total",
            "Model versions registered through the API",
            ["kind"],
            registry=self.registry,
        )
        self.lookup = Histogram(
            "hokusai_lookup_duration_seconds",
            "get_model_by_uuid latency",
            registry=self.registry,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
        )
        collectors: list[Collector] = []
        if webhook_stats is not None:
            collectors.append(_WebhookCollector(webhook_stats))
        if verification_counts is not None:
            collectors.append(_VerificationCollector(verification_counts))
        self._scraped = scrape_registry(collectors, own=self.registry)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # The labelled children, looked up once per label set: ``labels()`` validates and
        # locks on every call, a measurable share of a fast request. Label sets stay few
        # (route templates), so the cache does too.
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self._scraped)
