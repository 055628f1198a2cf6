"""Dependencies as named ``Annotated`` aliases: the services, and the caller's API key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from hokusai import errors
from hokusai.api.keys import ApiKey, ApiKeyStore, scope_allows
from hokusai.api.metrics import ApiMetrics
from hokusai.api.ratelimit import RateLimiter
from hokusai.config import Settings

if TYPE_CHECKING:
    from hokusai.registry.service import HokusaiModelRegistry
    from hokusai.webhooks.service import Webhooks

_QUERY_KEY_NAMES = {"api_key", "apikey", "key", "token", "access_token"}


@dataclass
class Services:
    """Everything a route may use, built once per app."""

    settings: Settings
    registry: HokusaiModelRegistry
    webhooks: Webhooks
    keys: ApiKeyStore
    limiter: RateLimiter
    metrics: ApiMetrics


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def require(scope: str) -> Callable[[Request, Services], ApiKey]:
    """A dependency that authenticates the caller and checks ``scope`` and the rate limit."""

    def dependency(request: Request, services: ServicesDep) -> ApiKey:
        if _QUERY_KEY_NAMES & {name.lower() for name in request.query_params}:
            raise errors.ApiKeyInQueryError(
                "API keys are never accepted in the query string (they end up in logs); "
                "send 'Authorization: Bearer <key>'."
            )
        header = request.headers.get("authorization", "")
        if not header:
            raise errors.UnauthenticatedError(
                "Missing API key: send 'Authorization: Bearer <key>'."
            )
        kind, _, token = header.partition(" ")
        key = services.keys.authenticate(token.strip()) if kind.lower() == "bearer" else None
        if key is None:
            _limit(services, f"ip:{_client_ip(request)}")  # slows down key guessing
            raise errors.InvalidApiKeyError("Invalid, unknown or revoked API key.")
        if not scope_allows(key.scope, scope):
            raise errors.ForbiddenError(
                f"This API key has scope {key.scope!r}; this operation needs {scope!r}."
            )
        _limit(services, f"key:{key.id}")
        return key

    return dependency


def _limit(services: Services, bucket: str) -> None:
    decision = services.limiter.hit(bucket)
    if not decision.allowed:
        raise errors.RateLimitedError(
            f"Rate limit exceeded ({decision.limit} requests); retry in "
            f"{decision.retry_after:.1f}s.",
            retry_after=decision.retry_after,
        )


ReadKey = Annotated[ApiKey, Depends(require("read"))]
WriteKey = Annotated[ApiKey, Depends(require("write"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
