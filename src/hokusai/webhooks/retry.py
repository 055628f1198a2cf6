"""What an attempt's outcome means: delivered, retry later, failed for good, or endpoint gone.

2xx is delivered. Timeouts, connection errors, 408, 429 and 5xx are retried by the schedule,
with ±20 % jitter, honouring ``Retry-After`` (capped at a day); after the last delay the
delivery is dead. Other 4xx are failures recorded with the response. 410 also disables the
endpoint. An attempt that cannot be made at all (a secret that cannot sign, a destination
the URL policy refuses) is a permanent failure. A delivery is attempted at most
:attr:`RetryPolicy.max_attempts` times (the first attempt plus one per scheduled delay),
whatever the outcomes — lost attempts of senders that died mid-send included.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

__all__ = ["Attempt", "Decision", "RetryPolicy", "parse_retry_after"]

MAX_RETRY_AFTER = 86_400.0

State = Literal["delivered", "pending", "failed", "dead"]


@dataclass(frozen=True)
class Attempt:
    """The outcome of one HTTP attempt."""

    status_code: int | None
    latency_ms: float
    error: str | None = None
    response_snippet: str | None = None
    retry_after: float | None = None
    permanent: bool = False
    """The attempt could not be made and never will be (retrying cannot help)."""


@dataclass(frozen=True)
class Decision:
    """What to do with the delivery after an attempt."""

    state: State
    delay: float = 0.0
    disable_endpoint: bool = False
    reason: str | None = None


class RetryPolicy:
    """Decides the next state of a delivery from its attempt number and outcome."""

    def __init__(self, schedule: list[float], *, rng: random.Random | None = None) -> None:
        self.schedule = list(schedule)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    @property
    def max_attempts(self) -> int:
        """How many attempts a delivery gets before it is dead."""
        return len(self.schedule) + 1

    def decide(self, attempt: Attempt, *, attempts_so_far: int) -> Decision:
        """``attempts_so_far`` counts this attempt (1 for the first)."""
        code = attempt.status_code
        if attempt.permanent:
            return Decision("failed", reason=attempt.error)
        if code is not None and 200 <= code < 300:
            return Decision("delivered")
        if code == 410:
            return Decision("failed", disable_endpoint=True, reason="410 Gone")
        retryable = code is None or code in (408, 429) or code >= 500
        if not retryable:
            return Decision("failed", reason=f"HTTP {code}")
        if attempts_so_far > len(self.schedule):
            return Decision("dead", reason=attempt.error or f"HTTP {code}")
        delay = self.schedule[attempts_so_far - 1] * self._rng.uniform(0.8, 1.2)
        if attempt.retry_after is not None:
            delay = min(max(attempt.retry_after, 0.0), MAX_RETRY_AFTER)
        return Decision("pending", delay=delay)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now, 0.0)
