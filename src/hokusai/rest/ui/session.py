"""The console's session: which API key is signed in, in a cookie the server signed.

The cookie holds the key's id and a random nonce, never the key itself, signed and time-stamped
with the console secret (``itsdangerous``): a client can neither forge nor extend it. The key is
looked up again on every request, so revoking it signs its sessions out and a changed scope shows
at once. The CSRF token of a form is an HMAC of the session's nonce under the same secret: a page
of another origin can neither read it nor compute it. Before sign-in, a pre-session cookie holds
the nonce the sign-in form's token is bound to.

The secret is ``HOKUSAI_CONSOLE_SECRET`` when set, else one generated on first use and kept in
the project database (``hokusai_console_secrets``), so that every replica of the REST service
signs and checks alike and a restart signs nobody out.

Signing out revokes the session on the server: its nonce is kept, until the session would have
expired anyway, in ``hokusai_console_revoked_sessions``, which every request consults — a copy
of the cookie taken before sign-out is refused after it. Expired rows are pruned at each
sign-out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError

from hokusai.config import Settings
from hokusai.db import read_rows, write_transaction

__all__ = [
    "COOKIE",
    "COOKIE_PATH",
    "PRE_COOKIE",
    "Session",
    "SessionSigner",
    "console_secret",
    "console_secrets",
    "is_revoked",
    "revoke",
    "revoked_sessions",
]

COOKIE: Final = "hokusai_console"
PRE_COOKIE: Final = "hokusai_console_pre"
COOKIE_PATH: Final = "/ui"
PRE_SESSION_SECONDS: Final = 3600.0
"""How long a sign-in form stays valid."""

_SECRET_NAME: Final = "session"  # noqa: S105 - the row's name, not a secret

_metadata = sa.MetaData()
console_secrets = sa.Table(
    "hokusai_console_secrets",  # migration 0008
    _metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
revoked_sessions = sa.Table(
    "hokusai_console_revoked_sessions",  # migration 0009
    _metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.Float, nullable=False),
)
_REVOKED = sa.select(revoked_sessions.c.nonce).where(
    revoked_sessions.c.nonce == sa.bindparam("nonce")
)


@dataclass(frozen=True)
class Session:
    """A signed-in session: the key's id, the nonce CSRF tokens derive from, when it began."""

    key_id: str
    nonce: str
    issued_at: float


class SessionSigner:
    """Sign and check session cookies and CSRF tokens with one secret."""

    def __init__(self, secret: bytes, *, max_age_seconds: float) -> None:
        self._secret = secret
        self._max_age = max_age_seconds
        self._sessions = URLSafeTimedSerializer(secret, salt="hokusai-console-session")
        self._pre = URLSafeTimedSerializer(secret, salt="hokusai-console-pre-session")

    @property
    def max_age_seconds(self) -> float:
        """How long a session lasts."""
        return self._max_age

    def new_session(self, key_id: str) -> tuple[Session, str]:
        """A fresh session of ``key_id`` and its cookie value."""
        session = Session(key_id=key_id, nonce=secrets.token_urlsafe(24), issued_at=time.time())
        value = self._sessions.dumps({"k": session.key_id, "n": session.nonce})
        return session, value

    def session(self, cookie: str | None) -> Session | None:
        """The session a cookie holds; None when absent, forged, tampered with or expired."""
        if not cookie:
            return None
        try:
            data, signed_at = self._sessions.loads(
                cookie, max_age=int(self._max_age), return_timestamp=True
            )
        except BadSignature:  # SignatureExpired is a BadSignature too
            return None
        if not isinstance(data, dict):
            return None
        key_id, nonce = data.get("k"), data.get("n")
        if not isinstance(key_id, str) or not isinstance(nonce, str):
            return None
        return Session(key_id=key_id, nonce=nonce, issued_at=signed_at.timestamp())

    def new_pre_session(self) -> tuple[str, str]:
        """A nonce for a sign-in form and the pre-session cookie value that carries it."""
        nonce = secrets.token_urlsafe(24)
        return nonce, self._pre.dumps(nonce)

    def pre_session(self, cookie: str | None) -> str | None:
        """The nonce of a pre-session cookie; None when absent, forged or too old."""
        if not cookie:
            return None
        try:
            nonce = self._pre.loads(cookie, max_age=int(PRE_SESSION_SECONDS))
        except BadSignature:
            return None
        return nonce if isinstance(nonce, str) else None

    def csrf_token(self, nonce: str) -> str:
        """The CSRF token of every form of the session (or pre-session) ``nonce``."""
        return hmac.new(self._secret, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, nonce: str | None, token: str | None) -> bool:
        """Whether ``token`` is the CSRF token of ``nonce`` (compared in constant time)."""
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.csrf_token(nonce), token)


_LOCK = threading.Lock()


def console_secret(settings: Settings, engine: sa.Engine) -> bytes:
    """The signing secret: the setting, else the project database's (created once)."""
    if settings.console_secret is not None:
        value = settings.console_secret.get_secret_value()
        if value:
            return value.encode()
    with _LOCK:
        stored = _read(engine)
        if stored is None:
            try:
                with write_transaction(engine) as conn:
                    if _read(engine, conn) is None:
                        conn.execute(
                            console_secrets.insert().values(
                                name=_SECRET_NAME,
                                value=secrets.token_urlsafe(48),
                                created_at=time.time(),
                            )
                        )
            except IntegrityError:
                pass  # another replica created it first: read theirs
            stored = _read(engine)
        assert stored is not None
        return stored.encode()


def _read(engine: sa.Engine, conn: sa.Connection | None = None) -> str | None:
    query = sa.select(console_secrets.c.value).where(console_secrets.c.name == _SECRET_NAME)
    if conn is not None:
        found: str | None = conn.execute(query).scalar()
        return found
    with engine.connect() as connection:
        value: str | None = connection.execute(query).scalar()
        return value


def revoke(engine: sa.Engine, session: Session, max_age_seconds: float) -> None:
    """Refuse ``session`` from now on (sign-out), and forget sessions that expired anyway."""
    now = time.time()
    expires_at = session.issued_at + max_age_seconds
    with write_transaction(engine) as conn:
        conn.execute(revoked_sessions.delete().where(revoked_sessions.c.expires_at < now))
        found = conn.execute(
            sa.select(revoked_sessions.c.nonce).where(revoked_sessions.c.nonce == session.nonce)
        ).first()
        if found is None and expires_at >= now:
            conn.execute(
                revoked_sessions.insert().values(nonce=session.nonce, expires_at=expires_at)
            )


def is_revoked(engine: sa.Engine, nonce: str) -> bool:
    """Whether the session of ``nonce`` was signed out (one indexed read per request)."""
    return bool(read_rows(engine, _REVOKED, {"nonce": nonce}))
