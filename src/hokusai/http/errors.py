"""The one error handler: every failure is ``{"error": {"code", "message"}}`` with the status
of the error's class; nothing else ever reaches a client. Shared by the REST service and the
prediction server.

A 5xx never sends internal text (an exception's message, a path, a driver's words) to the
client: the answer is a generic message with an ``error_id``, and the details are logged under
that id (credentials masked), so an operator finds them from what a user reports. Backend
errors (502/503) say which service failed — MLflow, the project database, the rate limiter —
and nothing more.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hokusai import errors
from hokusai.config import mask_secrets
from hokusai.db import is_unreachable
from hokusai.http.bodies import invalid_json

__all__ = [
    "CatchAll",
    "error_response",
    "install",
    "new_error_id",
    "outage_of",
    "response_for",
    "server_error",
]

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

# Which service a backend error came from, by the package of the exception it translated.
_SERVICES = (
    (("sqlalchemy", "sqlite3", "psycopg", "psycopg2", "alembic"), "The project database"),
    (("redis",), "The rate limiter (Redis)"),
    (("mlflow", "requests", "urllib3", "http", "botocore", "google", "azure"), "MLflow"),
)


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The error envelope."""
    return JSONResponse(
        {"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers
    )


def new_error_id() -> str:
    """A reference for one server error, shown to the client and written in the log."""
    return f"err_{secrets.token_hex(8)}"


def _service(exc: BaseException) -> str:
    if isinstance(exc, errors.RateLimiterUnavailableError):
        return "The rate limiter (Redis)"
    cause = exc.__cause__ or exc.__context__
    seen = 0
    while cause is not None and seen < 10:
        package = type(cause).__module__.partition(".")[0]
        for packages, service in _SERVICES:
            if package in packages:
                return service
        cause = cause.__cause__ or cause.__context__
        seen += 1
    text = exc.message.lower() if isinstance(exc, errors.HokusaiError) else ""
    if "mlflow" in text:
        return "MLflow"
    if "database" in text or "api key" in text:
        return "The project database"
    return "A backend service"


def outage_of(exc: BaseException) -> errors.BackendUnavailableError | None:
    """The project database's outage, when ``exc`` is one that reached here untranslated.

    The layers translate their database errors where they can say what failed; one that gets
    through (the database lost between the key check and the route's own query) is still no
    internal error: a connection refused, lost or timed out is the database being unavailable,
    a 503 that tells the client to retry.
    """
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError) or not is_unreachable(exc):
        return None
    cause = getattr(exc, "orig", None) or exc
    known = errors.BackendUnavailableError(f"The project database is unreachable: {cause}")
    known.__cause__ = exc
    return known


def _public_message(exc: errors.HokusaiError, error_id: str) -> str:
    reference = f"reference {error_id}"
    if isinstance(exc, errors.BackendUnavailableError):
        return f"{_service(exc)} is unavailable; retry later ({reference})."
    if isinstance(exc, errors.BackendError):
        return f"{_service(exc)} answered with an error ({reference})."
    if isinstance(exc, errors.ModelNotLoadedError):
        return f"No model is loaded; GET /health says why ({reference})."
    if isinstance(exc, errors.RollbackIncompleteError):
        return (
            "The operation failed and undoing it did not finish; what is left is never read or "
            f"announced, and the log names it ({reference})."
        )
    if isinstance(exc, errors.RegistrationError):
        return f"Registration failed and was rolled back: no version was created ({reference})."
    return f"Internal error; {reference}"


def _where(request: HTTPConnection | None) -> str:
    if request is None:
        return "-"
    return f"{request.scope.get('method', '-')} {request.url.path}"


def server_error(
    request: HTTPConnection | None,
    exc: BaseException,
    *,
    status: int = 500,
    code: str = "internal_error",
) -> JSONResponse:
    """The answer to a 5xx: a generic message and an error id; the details go to the log."""
    error_id = new_error_id()
    if isinstance(exc, errors.HokusaiError):
        message = _public_message(exc, error_id)
        detail = mask_secrets(f"{exc.code}: {exc.message}")
        # A known failure is one line; an unexpected one (a bug) is worth its traceback.
        expected = isinstance(exc, errors.BackendError | errors.ModelNotLoadedError)
    else:
        message = f"Internal error; reference {error_id}"
        detail = mask_secrets(f"{type(exc).__name__}: {exc}")
        expected = False
    if not expected:
        # The traceback is formatted here so that it is masked too.
        detail += "\n" + mask_secrets("".join(traceback.format_exception(exc)).rstrip())
    logger.error("error_id=%s %s -> %d %s", error_id, _where(request), status, detail)
    headers = {"Retry-After": "1"} if status == 503 else None
    return error_response(status, code, message, headers=headers, error_id=error_id)


def response_for(exc: errors.HokusaiError, request: HTTPConnection | None = None) -> JSONResponse:
    """The envelope for one of the project's errors (used by the handler and by middleware
    that answers before the app)."""
    status = errors.http_status_for(exc)
    if status >= 500:
        return server_error(request, exc, status=status, code=exc.code)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimitedError):
        headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
    if isinstance(exc, errors.UnauthenticatedError):
        headers["WWW-Authenticate"] = 'Bearer realm="hokusai"'
    return error_response(status, exc.code, exc.message, headers=headers or None)


class CatchAll:
    """The outermost middleware: any exception that escapes the app and its middleware before
    a response started becomes the generic 5xx here.

    Starlette's own last resort answers too, but then re-raises so that the server logs the
    exception — unmasked, credentials and all. Nothing re-raises past this point.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            connection = HTTPConnection(scope)
            known = exc if isinstance(exc, errors.HokusaiError) else outage_of(exc)
            if known is not None:
                response = response_for(known, connection)
            else:
                response = server_error(connection, exc)
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``. The app adds :class:`CatchAll` as its outermost
    middleware (after all others) so that no exception reaches the server's own log."""

    @app.exception_handler(errors.HokusaiError)
    async def _hokusai(request: Request, exc: errors.HokusaiError) -> JSONResponse:
        return response_for(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            # Malformed JSON is a 400 `invalid_json`, worded as the prediction server words it.
            return response_for(invalid_json(await _body(request)), request)
        details = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details[:5])
        return error_response(
            422, "validation_error", summary or "Invalid request.", details=details
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code >= 500:
            return server_error(request, exc, status=exc.status_code)
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # e.g. a body that is not UTF-8
            return response_for(invalid_json(await _body(request)), request)
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return error_response(
            exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        known = outage_of(exc)
        if known is not None:
            return response_for(known, request)
        return server_error(request, exc)


async def _body(request: Request) -> bytes | None:
    """The body FastAPI read (the request caches it), or None when it cannot be read again."""
    try:
        return await request.body()
    except RuntimeError:  # the stream was consumed elsewhere
        return None
