"""ASGI middleware of the REST service: authentication before the body, and Prometheus
request metrics."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hokusai.errors import HokusaiError
from hokusai.http.errors import response_for
from hokusai.rest.deps import API_KEY_STATE, Components, authenticate_caller
from hokusai.rest.metrics import ApiMetrics
from hokusai.rest.threads import in_thread


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


class Authenticate:
    """Check the API key and the rate limit of every request under ``prefix`` from its
    headers alone, before any of its body is read.

    FastAPI reads and parses a route's body before it runs the route's dependencies, so a
    dependency would spend the parsing of a 4 MB body on a caller it is about to refuse. Here a
    request with no key, an unknown key or an exhausted budget is answered without a byte of
    its body received; an accepted key is left in the request's state for the routes' scope
    checks (:func:`hokusai.rest.deps.require`).
    """

    def __init__(self, app: ASGIApp, *, components: Components, prefix: str = "/api/") -> None:
        self.app = app
        self.components = components
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        caller = HTTPConnection(scope)
        host = caller.client.host if caller.client else "unknown"
        try:
            key = await in_thread(
                authenticate_caller, self.components, caller.headers, caller.query_params, host
            )
        except HokusaiError as exc:
            await response_for(exc, caller)(scope, receive, send)
            return
        scope.setdefault("state", {})[API_KEY_STATE] = key
        await self.app(scope, receive, send)
