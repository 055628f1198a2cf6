"""The one error handler: every failure is ``{"error": {"code", "message"}}`` with the status
of the error's class; nothing else ever reaches a client. Shared by the REST service and the
prediction server."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hokusai import errors

logger = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The error envelope."""
    return JSONResponse(
        {"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers
    )


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(errors.HokusaiError)
    async def _hokusai(_request: Request, exc: errors.HokusaiError) -> JSONResponse:
        status = errors.http_status_for(exc)
        headers: dict[str, str] = {}
        if isinstance(exc, errors.RateLimitedError):
            headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        if isinstance(exc, errors.UnauthenticatedError):
            headers["WWW-Authenticate"] = 'Bearer realm="hokusai"'
        if status >= 500:
            logger.error("%s: %s", exc.code, exc.message)
        return error_response(status, exc.code, exc.message, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details[:5])
        return error_response(
            422, "validation_error", summary or "Invalid request.", details=details
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            code = "invalid_json"  # e.g. a body that is not UTF-8
        return error_response(
            exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "Internal server error.")
