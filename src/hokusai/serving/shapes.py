"""Each protocol's error body, written from the one error envelope.

Every failure in the prediction server is first ``{"error": {"code", "message", …}}`` (from
:mod:`hokusai.http.errors`, the body limit, the catch-all). Two protocols word errors their own
way, and their clients read that:

- MLflow's scoring protocol (``/invocations``): ``{"error_code": "BAD_REQUEST", "message": …}``.
  Our ``error`` object stays beside them, so both kinds of client find what they read.
- The Open Inference Protocol (every ``/v2`` route, unknown ones included):
  ``{"error": "<message>"}``, with our machine-readable ``code`` (and ``column`` or
  ``error_id`` when there is one) beside it.

:class:`ProtocolErrorShapes` rewrites the body of an error response on those paths; statuses,
headers other than the length, and every successful response pass untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ProtocolErrorShapes", "mlflow_error", "v2_error"]

#: MLflow's ``error_code`` for each status (``mlflow.protos.databricks_pb2`` names).
_MLFLOW_CODES = {
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}

Shape = Callable[[int, dict[str, Any]], dict[str, Any]]


def mlflow_error(status: int, error: dict[str, Any]) -> dict[str, Any]:
    """MLflow's scoring-server error, our envelope beside it."""
    code = _MLFLOW_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")
    return {"error_code": code, "message": error.get("message", ""), "error": error}


def v2_error(status: int, error: dict[str, Any]) -> dict[str, Any]:
    """The Open Inference Protocol's error: the message as ``error``, our code beside it."""
    extra = {k: v for k, v in error.items() if k not in ("code", "message")}
    return {"error": error.get("message", ""), "code": error.get("code", ""), **extra}


def _shape_for(path: str) -> Shape | None:
    if path == "/invocations":
        return mlflow_error
    if path == "/v2" or path.startswith("/v2/"):
        return v2_error
    return None


class ProtocolErrorShapes:
    """Rewrites error bodies on ``/invocations`` and ``/v2`` paths (outermost middleware, so
    that errors from every layer below are shaped)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        shape = _shape_for(scope["path"]) if scope["type"] == "http" else None
        if shape is None:
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def shaping_send(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held = message
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            start, body = _reshaped(held, b"".join(chunks), shape)
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, shaping_send)


def _reshaped(start: Message, body: bytes, shape: Shape) -> tuple[Message, bytes]:
    """``start`` and ``body`` in the protocol's shape, or unchanged when the body is not our
    error envelope (a V2 readiness answer, say)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return start, body
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict) or len(document) != 1:
        return start, body
    body = orjson.dumps(shape(start["status"], error))
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    return {**start, "headers": headers}, body
