"""Who may call the servers: API keys with scopes (:mod:`hokusai.auth.keys`), stored hashed in
the project database, and the ``Authorization: Bearer`` check both servers share
(:mod:`hokusai.auth.bearer`)."""

from hokusai.auth.bearer import authenticate, require_scope
from hokusai.auth.keys import SCOPES, ApiKey, ApiKeyStore, Scope, scope_allows

__all__ = [
    "SCOPES",
    "ApiKey",
    "ApiKeyStore",
    "Scope",
    "authenticate",
    "require_scope",
    "scope_allows",
]
