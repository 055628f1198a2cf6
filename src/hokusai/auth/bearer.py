"""The ``Authorization: Bearer <key>`` check, the same for the REST service and the prediction
server: a missing header, an unknown key and a too-narrow scope are three distinct errors."""

from __future__ import annotations

from collections.abc import Callable

from hokusai.auth.keys import ApiKey, ApiKeyStore, scope_allows
from hokusai.errors import ForbiddenError, InvalidApiKeyError, UnauthenticatedError

__all__ = ["authenticate", "bearer_token"]


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization`` header value of the Bearer scheme, else None."""
    kind, _, token = authorization.partition(" ")
    token = token.strip()
    return token if kind.lower() == "bearer" and token else None


def authenticate(
    store: ApiKeyStore,
    authorization: str,
    *,
    scope: str,
    on_invalid: Callable[[], None] | None = None,
) -> ApiKey:
    """The active key presented in ``authorization`` if its scope allows ``scope``.

    ``on_invalid`` runs before an unknown key is refused (the REST service rate-limits key
    guessing there).
    """
    if not authorization:
        raise UnauthenticatedError("Missing API key: send 'Authorization: Bearer <key>'.")
    token = bearer_token(authorization)
    key = store.authenticate(token) if token is not None else None
    if key is None:
        if on_invalid is not None:
            on_invalid()
        raise InvalidApiKeyError("Invalid, unknown or revoked API key.")
    if not scope_allows(key.scope, scope):
        raise ForbiddenError(
            f"This API key has scope {key.scope!r}; this operation needs {scope!r}."
        )
    return key
