"""Signing: Standard Webhooks headers plus the existing consumer's ``X-Hokusai-Signature``.

``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the
endpoint secret: a ``whsec_<base64>`` secret is base64-decoded as Standard Webhooks says; any
other string is used as raw UTF-8 bytes (verify with ``Webhook(secret.encode())``).
``X-Hokusai-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` is keyed with the secret string
exactly as configured, which is what the marketplace already verifies.

:func:`validate_secret` is applied wherever a secret enters (API, CLI, ``HOKUSAI_WEBHOOK_SECRET``):
a secret that cannot sign is refused there, not discovered by the sender.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook

from hokusai.errors import InvalidWebhookSecretError

__all__ = [
    "MIN_SECRET_BYTES",
    "generate_secret",
    "sign_headers",
    "standard_webhook",
    "validate_secret",
]

MIN_SECRET_BYTES = 16
"""A ``whsec_`` secret must decode to at least this many bytes (128 bits of key)."""


def generate_secret() -> str:
    """A new ``whsec_`` secret (24 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def validate_secret(secret: object) -> str:
    """Return ``secret`` if it can sign, else raise InvalidWebhookSecretError.

    A ``whsec_`` secret must be ``whsec_`` + standard base64 (with its ``=`` padding) of at least
    :data:`MIN_SECRET_BYTES` bytes; any other non-empty string is a raw key. The message never
    repeats the secret.
    """
    if not isinstance(secret, str) or not secret:
        raise InvalidWebhookSecretError("A webhook secret may not be empty.")
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret[len("whsec_") :], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidWebhookSecretError(
                "Invalid webhook secret: after 'whsec_' a secret must be standard base64 "
                f"(A-Z a-z 0-9 + /, '=' padding) — {exc}. Omit the secret to have one generated."
            ) from None
        if len(key) < MIN_SECRET_BYTES:
            raise InvalidWebhookSecretError(
                f"Invalid webhook secret: a whsec_ secret must encode at least {MIN_SECRET_BYTES} "
                f"bytes; this one encodes {len(key)}. Omit the secret to have one generated."
            )
    try:
        sign_headers(secret=secret, event_id="evt_check", event_type="ping", body="{}")
    except Exception as exc:  # noqa: BLE001 - whatever stops signing makes the secret invalid
        raise InvalidWebhookSecretError(
            f"Invalid webhook secret: it cannot sign ({type(exc).__name__})."
        ) from None
    return secret


def standard_webhook(secret: str) -> Webhook:
    """The ``standardwebhooks.Webhook`` keyed as this module signs."""
    if secret.startswith("whsec_"):
        return Webhook(secret)
    return Webhook(secret.encode())


def sign_headers(
    *, secret: str, event_id: str, event_type: str, body: str, now: datetime | None = None
) -> dict[str, str]:
    """All headers of one attempt. ``webhook-id`` is the event id, stable across retries."""
    timestamp = now or datetime.now(timezone.utc)
    signature = standard_webhook(secret).sign(event_id, timestamp, body)
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "x-hokusai-event": event_type,
        "x-hokusai-signature": f"sha256={digest}",
        "user-agent": "hokusai-webhooks/1",
    }
