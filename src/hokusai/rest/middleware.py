"""ASGI middleware of the REST service: Prometheus request metrics."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hokusai.rest.metrics import ApiMetrics


def _template(scope: Scope) -> str:
    """The route template of a handled request (``/api/v1/models/{name}/versions/{version}``),
    so metrics labels stay few; ``unmatched`` when no route matched."""
    if scope.get("route") is None:
        return "unmatched"
    path: str = scope.get("path", "")
    params: dict[str, Any] = scope.get("path_params") or {}
    for name, value in sorted(params.items(), key=lambda item: -len(str(item[1]))):
        if value != "":
            path = path.replace(str(value), "{" + name + "}", 1)
    return path


class RequestMetrics:
    """Count and time every request by method, route template and status."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            template = _template(scope)
            self.metrics.observe_request(
                scope.get("method", "GET"), template, status, time.perf_counter() - started
            )
