"""How a webhook receiver verifies a Hokusai delivery and deduplicates it.

Run it to see a delivery signed by Hokusai's own signer pass verification, a tampered body fail,
and a retry (same ``webhook-id``) recognised as a duplicate. The ``verify`` and ``handle``
functions are what a Python receiver needs; ``docs/webhooks.md`` quotes them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    """Check both signatures and the timestamp; return the payload or raise."""
    lowered = {key.lower(): value for key, value in headers.items()}
    # Standard Webhooks: whsec_<base64> secrets are base64-decoded; other secrets are raw bytes.
    webhook = Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())
    payload: dict[str, Any] = webhook.verify(body, lowered)  # also rejects stale timestamps
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, lowered.get("x-hokusai-signature", "")):
        raise WebhookVerificationError("X-Hokusai-Signature does not match")
    return payload


def handle(body: bytes, headers: Mapping[str, str], secret: str, seen: set[str]) -> str:
    """Verify, then process each event once: retries carry the same webhook-id."""
    payload = verify(body, headers, secret)
    event_id = {key.lower(): value for key, value in headers.items()}["webhook-id"]
    if event_id in seen:
        return "duplicate"  # answer 2xx anyway, or Hokusai will keep retrying
    seen.add(event_id)
    return f"processed {payload['event_type']} {payload['model_id']}"


def main() -> None:
    from hokusai.webhooks.signing import generate_secret, sign_headers

    secret = generate_secret()
    payload = {
        "event_type": "model_registered",
        "event_id": "evt_" + "0" * 32,
        "model_id": "hokusai_lead_scoring_baseline/1",
    }
    body = json.dumps(payload)
    headers = sign_headers(
        secret=secret, event_id=payload["event_id"], event_type="model_registered", body=body
    )
    seen: set[str] = set()
    print(handle(body.encode(), headers, secret, seen))
    print(handle(body.encode(), headers, secret, seen))
    try:
        verify(body.replace("baseline/1", "baseline/2").encode(), headers, secret)
    except WebhookVerificationError as exc:
        print(f"tampered body rejected: {exc}")


if __name__ == "__main__":
    main()
