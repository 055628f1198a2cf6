"""Dependencies as named ``Annotated`` aliases: the components, and the caller's API key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from hokusai import errors
from hokusai.auth import ApiKey, ApiKeyStore, authenticate
from hokusai.config import Settings
from hokusai.rest.metrics import ApiMetrics
from hokusai.rest.ratelimit import RateLimiter

if TYPE_CHECKING:
    from hokusai.registry import ModelRegistry
    from hokusai.webhooks import Webhooks

_QUERY_KEY_NAMES = {"api_key", "apikey", "key", "token", "access_token"}


@dataclass
class Components:
    """Everything a route may use, built once per app."""

    settings: Settings
    registry: ModelRegistry
    webhooks: Webhooks
    keys: ApiKeyStore
    limiter: RateLimiter
    metrics: ApiMetrics


def get_components(request: Request) -> Components:
    components: Components = request.app.state.components
    return components


ComponentsDep = Annotated[Components, Depends(get_components)]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def require(scope: str) -> Callable[[Request, Components], ApiKey]:
    """A dependency that authenticates the caller and checks ``scope`` and the rate limit."""

    def dependency(request: Request, components: ComponentsDep) -> ApiKey:
        if _QUERY_KEY_NAMES & {name.lower() for name in request.query_params}:
            raise errors.ApiKeyInQueryError(
                "API keys are never accepted in the query string (they end up in logs); "
                "send 'Authorization: Bearer <key>'."
            )
        key = authenticate(
            components.keys,
            request.headers.get("authorization", ""),
            scope=scope,
            # An unknown key counts against the caller's address: slows down key guessing.
            on_invalid=lambda: _limit(components, f"ip:{_client_ip(request)}"),
        )
        _limit(components, f"key:{key.id}")
        return key

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
