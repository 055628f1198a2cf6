"""The ``Authorization: Bearer <key>`` check, the same for the REST service and the prediction
server: a missing header, an unknown key and a too-narrow scope are three distinct errors."""

from __future__ import annotations

from collections.abc import Callable

from hokusai.auth.keys import ApiKey, ApiKeyStore, scope_allows
from hokusai.errors import ForbiddenError, InvalidApiKeyError, UnauthenticatedError

__all__ = ["authenticate", "bearer_token", "require_scope"]


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization`` header value of the Bearer scheme, else None."""
    kind, _, token = authorization.partition(" ")
    token = token.strip()
    return token if kind.lower() == "bearer" and token else None


def authenticate(
    store: ApiKeyStore,
    authorization: str,
    *,
    scope: str | None,
    on_refused: Callable[[], None] | None = None,
) -> ApiKey:
    """The active key presented in ``authorization``, checked against ``scope`` unless None
    (the caller checks the scope later, once it knows it: :func:`require_scope`).

    ``on_refused`` runs before a missing or unknown key is refused: the REST service counts
    both against the caller's address there, so neither anonymous requests nor key guessing
    escape its rate limit.
    """
    if not authorization:
        if on_refused is not None:
            on_refused()
        raise UnauthenticatedError("Missing API key: send 'Authorization: Bearer <key>'.")
    token = bearer_token(authorization)
    key = store.authenticate(token) if token is not None else None
    if key is None:
        if on_refused is not None:
            on_refused()
        raise InvalidApiKeyError("Invalid, unknown or revoked API key.")
    if scope is not None:
        require_scope(key, scope)
    return key


def require_scope(key: ApiKey, scope: str) -> ApiKey:
    """``key`` if its scope allows ``scope``; ForbiddenError otherwise."""
    if not scope_allows(key.scope, scope):
        raise ForbiddenError(
            f"This API key has scope {key.scope!r}; this operation needs {scope!r}."
        )
    return key
