"""One signed POST of one claimed delivery, through an injected ``httpx.Client``."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from hokusai.errors import InvalidWebhookUrlError
from hokusai.webhooks.outbox import Claim
from hokusai.webhooks.retry import Attempt, parse_retry_after
from hokusai.webhooks.signing import sign_headers

__all__ = ["send"]

SNIPPET_CHARS = 500


def send(
    client: httpx.Client,
    claim: Claim,
    *,
    timeout: float,
    clock: Callable[[], float] = time.time,
) -> Attempt:
    """POST the claim's body to its endpoint; every failure becomes an :class:`Attempt`."""
    headers = sign_headers(
        secret=claim.secret, event_id=claim.event_id, event_type=claim.event_type, body=claim.body
    )
    started = time.perf_counter()
    try:
        response = client.post(
            claim.url, content=claim.body.encode(), headers=headers, timeout=timeout
        )
    except InvalidWebhookUrlError as exc:  # the destination policy refused the address
        return Attempt(None, _ms(started), error=f"refused: {exc.message}", permanent=True)
    except httpx.TimeoutException as exc:
        return Attempt(
            None, _ms(started), error=f"timeout after {timeout:g}s: {type(exc).__name__}"
        )
    except httpx.HTTPError as exc:
        return Attempt(None, _ms(started), error=f"{type(exc).__name__}: {exc}"[:SNIPPET_CHARS])
    latency = _ms(started)
    return Attempt(
        status_code=response.status_code,
        latency_ms=latency,
        error=None if response.is_success else f"HTTP {response.status_code}",
        response_snippet=response.text[:SNIPPET_CHARS] or None,
        retry_after=parse_retry_after(response.headers.get("retry-after"), now=clock()),
    )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
