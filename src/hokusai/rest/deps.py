"""Dependencies as named ``Annotated`` aliases: the components, and the caller's API key.

The key itself is checked by the :class:`~hokusai.rest.middleware.Authenticate` middleware
from the request's headers, before anything reads the body (FastAPI parses a route's body
before it runs the route's dependencies); the dependencies here check its scope.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams

from hokusai import errors
from hokusai.auth import ApiKey, ApiKeyStore, authenticate, require_scope
from hokusai.config import Settings
from hokusai.jobs import VerificationJobs
from hokusai.rest.metrics import ApiMetrics
from hokusai.rest.ratelimit import RateLimiter

if TYPE_CHECKING:
    from hokusai.registry import ModelRegistry
    from hokusai.registry.benchmarks import BenchmarkStore
    from hokusai.webhooks import Webhooks

_QUERY_KEY_NAMES = {"api_key", "apikey", "key", "token", "access_token"}
API_KEY_STATE = "hokusai_api_key"
"""Where the middleware leaves the authenticated key in the request's state."""


@dataclass
class Components:
    """Everything a route may use, built once per app."""

    settings: Settings
    registry: ModelRegistry
    webhooks: Webhooks
    keys: ApiKeyStore
    limiter: RateLimiter
    metrics: ApiMetrics
    verifications: VerificationJobs
    benchmarks: BenchmarkStore


async def get_components(request: Request) -> Components:
    # async: FastAPI runs a sync dependency in the thread pool, a hop that costs more than
    # this attribute read (the dependencies here do no I/O on the way of an accepted key).
    components: Components = request.app.state.components
    return components


ComponentsDep = Annotated[Components, Depends(get_components)]


def authenticate_caller(
    components: Components, headers: Headers, query: QueryParams, client_ip: str
) -> ApiKey:
    """The caller's active key, rate-limited: from the headers and query string only.

    A missing or unknown key counts against the caller's address (``ip:<address>``), so
    anonymous requests and key guessing are limited too; a known key against its own budget.
    """
    if _QUERY_KEY_NAMES & {name.lower() for name in query}:
        raise errors.ApiKeyInQueryError(
            "API keys are never accepted in the query string (they end up in logs); "
            "send 'Authorization: Bearer <key>'."
        )
    key = authenticate(
        components.keys,
        headers.get("authorization", ""),
        scope=None,
        on_refused=lambda: _limit(components, f"ip:{client_ip}"),
    )
    _limit(components, f"key:{key.id}")
    return key


def require(scope: str) -> Callable[[Request], Awaitable[ApiKey]]:
    """A dependency that returns the caller's key if its scope allows ``scope``."""

    async def dependency(request: Request) -> ApiKey:
        key: ApiKey | None = getattr(request.state, API_KEY_STATE, None)
        if key is None:  # a route outside the middleware's prefix: check the key here
            components: Components = request.app.state.components
            host = request.client.host if request.client else "unknown"
            key = await run_in_threadpool(
                authenticate_caller, components, request.headers, request.query_params, host
            )
        return require_scope(key, scope)

    return dependency


def _limit(components: Components, bucket: str) -> None:
    decision = components.limiter.hit(bucket)
    if not decision.allowed:
        raise errors.RateLimitedError(
            f"Rate limit exceeded ({decision.limit} requests); retry in "
            f"{decision.retry_after:.1f}s.",
            retry_after=decision.retry_after,
        )


ReadKey = Annotated[ApiKey, Depends(require("read"))]
WriteKey = Annotated[ApiKey, Depends(require("write"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
