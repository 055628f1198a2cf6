"""Signing: Standard Webhooks headers plus the existing consumer's ``X-Hokusai-Signature``.

``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the
endpoint secret: a ``whsec_<base64>`` secret is base64-decoded as Standard Webhooks says; any
other string is used as raw UTF-8 bytes (verify with ``Webhook(secret.encode())``).
``X-Hokusai-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` is keyed with the secret string
exactly as configured, which is what the marketplace already verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook

__all__ = ["generate_secret", "sign_headers", "standard_webhook"]


def generate_secret() -> str:
    """A new ``whsec_`` secret (24 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


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
