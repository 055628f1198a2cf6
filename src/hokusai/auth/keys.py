"""API keys: who may call the REST service, and with which scope.

A key looks like ``hk_<id>_<secret>``: ``id`` is 12 letters and digits that name the key (safe
to log and to show in ``hokusai keys list``), ``secret`` is 32 random bytes in url-safe base64.
Only the SHA-256 of the whole key is stored, so a copy of the database does not hand out access;
a slow password hash is not needed because the secret has 256 bits of entropy, not a human's.

Scopes are ordered: ``admin`` allows everything ``write`` allows, which allows everything
``read`` allows (:func:`scope_allows`).

``authenticate`` runs on every request, so it writes ``last_used_at`` at most once a minute per
key instead of once per request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import string
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, cast

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from hokusai.auth.tables import api_keys
from hokusai.db import read_rows, write_transaction
from hokusai.errors import (
    ApiKeyNotFoundError,
    BackendError,
    BackendUnavailableError,
    InvalidApiKeyNameError,
    InvalidScopeError,
)

__all__ = [
    "SCOPES",
    "ApiKey",
    "ApiKeyStore",
    "Scope",
    "scope_allows",
    "validate_name",
    "validate_scope",
]

logger = logging.getLogger(__name__)

Scope = Literal["read", "write", "admin"]
SCOPES: Final[tuple[Scope, ...]] = ("read", "write", "admin")
_RANK: Final[dict[str, int]] = {scope: rank for rank, scope in enumerate(SCOPES)}

LAST_USED_RESOLUTION_SECONDS: Final = 60.0
"""``last_used_at`` is written again only when the stored value is at least this old."""

# Letters and digits only (a subset of the url-safe alphabet): an id never contains the ``_``
# that separates it from the secret, and never starts with the ``-`` a CLI would read as an
# option.
_ID_ALPHABET: Final = string.ascii_letters + string.digits
_ID_LENGTH: Final = 12
_SECRET_BYTES: Final = 32
_KEY_PATTERN: Final = re.compile(r"hk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})", re.ASCII)
_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9 _.-]{1,64}", re.ASCII)
# Compared against when the id is unknown, so an unknown id costs the same as a wrong secret.
_NO_HASH: Final = "0" * 64
# Every request checks its key: one prebuilt statement (hokusai.db.read_rows).
_KEY_BY_ID: Final = sa.select(api_keys).where(api_keys.c.id == sa.bindparam("key_id"))


def scope_allows(granted: str, needed: str) -> bool:
    """Whether a key with scope ``granted`` may do what needs ``needed`` (admin ⊃ write ⊃ read).

    An unknown ``granted`` allows nothing. An unknown ``needed`` is a bug in the caller, not a
    request to refuse, so it raises :class:`ValueError`.
    """
    if needed not in _RANK:
        raise ValueError(f"Unknown scope {needed!r}; expected one of {', '.join(SCOPES)}.")
    rank = _RANK.get(granted)
    return rank is not None and rank >= _RANK[needed]


def validate_scope(scope: object) -> Scope:
    """``scope`` if it is ``read``, ``write`` or ``admin``; else InvalidScopeError."""
    if not isinstance(scope, str) or scope not in _RANK:
        raise InvalidScopeError(
            f"Invalid API key scope {scope!r}; expected one of {', '.join(SCOPES)}."
        )
    return cast(Scope, scope)


def validate_name(name: object) -> str:
    """``name`` if it is 1–64 letters, digits, spaces, ``_``, ``.`` or ``-``; else an error.

    Leading and trailing spaces are refused too: two keys that look alike in a table should be
    named alike.
    """
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name) or name.strip() != name:
        raise InvalidApiKeyNameError(
            f"Invalid API key name {name!r}: expected 1–64 characters of letters, digits, "
            "space, '_', '.' or '-', not starting or ending with a space."
        )
    return name


@dataclass(frozen=True)
class ApiKey:
    """One API key as stored: never the key itself, which is shown once, at creation."""

    id: str
    name: str
    scope: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    @property
    def active(self) -> bool:
        """True until the key is revoked."""
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        """The key's metadata as the API and ``--json`` show it."""
        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
        }


class ApiKeyStore:
    """Create, list, revoke and check API keys in the project database (``hokusai_api_keys``)."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def create(self, *, name: str, scope: str) -> tuple[ApiKey, str]:
        """A new key and its plaintext, which is returned this once and never stored."""
        key, plaintext = self._new(name, scope)
        with _database("Creating an API key"), write_transaction(self._engine) as conn:
            _insert(conn, key, plaintext)
        logger.info("created API key id=%s name=%r scope=%s", key.id, key.name, key.scope)
        return key, plaintext

    def create_first(self, *, name: str, scope: str) -> tuple[ApiKey, str] | None:
        """Like :meth:`create`, but only on a brand-new table: None when any key was ever
        created, revoked ones included. Check and insert are one write transaction, so two
        processes starting together on one SQLite database make one key, not two."""
        key, plaintext = self._new(name, scope)
        with _database("Creating the first API key"), write_transaction(self._engine) as conn:
            if conn.execute(sa.select(api_keys.c.id).limit(1)).first() is not None:
                return None
            _insert(conn, key, plaintext)
        logger.info("created first API key id=%s name=%r scope=%s", key.id, key.name, key.scope)
        return key, plaintext

    def _new(self, name: str, scope: str) -> tuple[ApiKey, str]:
        name = validate_name(name)
        scope = validate_scope(scope)
        key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
        plaintext = f"hk_{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
        key = ApiKey(
            id=key_id,
            name=name,
            scope=scope,
            created_at=self._clock(),
            last_used_at=None,
            revoked_at=None,
        )
        return key, plaintext

    def get(self, key_id: str) -> ApiKey:
        """One key by id; ApiKeyNotFoundError when there is none."""
        with _database("Reading an API key"), self._engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise ApiKeyNotFoundError(f"No API key {key_id!r}.")
        return _api_key(row)

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with _database("Listing API keys"), self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
            ).all()
        return [_api_key(row) for row in rows]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key from now on; revoking it again changes nothing."""
        with _database("Revoking an API key"), write_transaction(self._engine) as conn:
            found = conn.execute(sa.select(api_keys.c.id).where(api_keys.c.id == key_id)).first()
            if found is None:
                raise ApiKeyNotFoundError(f"No API key {key_id!r}.")
            conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).one()
        key = _api_key(row)
        logger.info("revoked API key id=%s name=%r", key.id, key.name)
        return key

    def authenticate(self, plaintext: str) -> ApiKey | None:
        """The active key ``plaintext`` is, or None when it is malformed, unknown or revoked.

        The hash comparison takes the same time whether or not the id exists.
        """
        match = _KEY_PATTERN.fullmatch(plaintext) if isinstance(plaintext, str) else None
        if match is None:
            return None
        presented = _hash(plaintext)
        with _database("Checking an API key"):
            rows = read_rows(self._engine, _KEY_BY_ID, {"key_id": match.group(1)})
        row = rows[0] if rows else None
        stored = row.key_hash if row is not None else _NO_HASH
        if not hmac.compare_digest(presented, stored) or row is None:
            return None
        key = _api_key(row)
        if not key.active:
            return None
        return self._mark_used(key)

    def count_active(self, *, scope: str | None = None) -> int:
        """How many keys are not revoked; with ``scope``, how many of those have exactly it
        (the prediction server's admin reload stays closed while there is no admin key)."""
        query = (
            sa.select(sa.func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None))
        )
        if scope is not None:
            query = query.where(api_keys.c.scopes == validate_scope(scope))
        with _database("Counting API keys"), self._engine.connect() as conn:
            count = conn.execute(query).scalar_one()
        return int(count)

    def _mark_used(self, key: ApiKey) -> ApiKey:
        now = self._clock()
        threshold = now - LAST_USED_RESOLUTION_SECONDS
        if key.last_used_at is not None and key.last_used_at > threshold:
            return key
        # The condition is repeated in SQL so that replicas racing on the same key write once.
        statement = (
            api_keys.update()
            .where(
                api_keys.c.id == key.id,
                sa.or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at <= threshold),
            )
            .values(last_used_at=now)
        )
        try:
            with write_transaction(self._engine) as conn:
                conn.execute(statement)
        except SQLAlchemyError as exc:
            # Bookkeeping only: the key was checked, so the request goes on without it.
            logger.warning("could not record the use of API key id=%s: %s", key.id, _cause(exc))
            return key
        return replace(key, last_used_at=now)


def _insert(conn: sa.Connection, key: ApiKey, plaintext: str) -> None:
    conn.execute(
        api_keys.insert().values(
            id=key.id,
            name=key.name,
            key_hash=_hash(plaintext),
            scopes=key.scope,
            created_at=key.created_at,
            last_used_at=None,
            revoked_at=None,
        )
    )


def _hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _api_key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        scope=row.scopes,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _cause(exc: SQLAlchemyError) -> str:
    # The driver's message, without SQLAlchemy's echo of the statement and its parameters.
    return str(getattr(exc, "orig", None) or exc)


@contextmanager
def _database(action: str) -> Iterator[None]:
    """Translate SQLAlchemy's errors into the project's at this boundary."""
    try:
        yield
    except OperationalError as exc:
        raise BackendUnavailableError(f"{action} failed: {_cause(exc)}") from exc
    except SQLAlchemyError as exc:
        raise BackendError(f"{action} failed: {_cause(exc)}") from exc
