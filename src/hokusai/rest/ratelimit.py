"""Per-key rate limits: GCRA, in memory for one process or in Redis for several replicas.

GCRA (the generic cell rate algorithm) is a token bucket kept as one number per key, its
*theoretical arrival time* (TAT): the moment the bucket would be full again. A key may make
``burst`` requests at once, after which it earns one request every ``60 / rate_per_minute``
seconds, so the sustained rate never exceeds ``rate_per_minute``. A request at ``now`` is allowed
when ``max(TAT, now) + interval - burst * interval <= now``; allowing it moves TAT on by one
interval. A key whose TAT is in the past has a full bucket and needs no state at all, which is
what lets both implementations forget idle keys.

Times are whole microseconds so that the Python and Lua implementations agree exactly and no
float rounding refuses a request that arrives exactly on time.

:class:`RedisRateLimiter` runs the algorithm in one Lua script on Redis's own clock, so API
replicas share one budget per key even when their clocks disagree. What happens while Redis
cannot be reached is a setting (``HOKUSAI_RATE_LIMIT_REDIS_DOWN``):

- ``memory`` (the default): each call falls back to an in-process limiter — still a limit,
  per replica, so N replicas allow at most N times the budget — a warning is logged at most
  every 30 s and :meth:`healthy` reports the degradation until Redis answers again. A Redis
  outage costs limit precision, never a registration.
- ``refuse``: each call raises :class:`~hokusai.errors.RateLimiterUnavailableError` (503
  ``rate_limiter_unavailable``), for deployments where an exact shared budget matters more
  than availability.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from hokusai.config import Settings, mask_secrets
from hokusai.errors import RateLimiterUnavailableError

__all__ = [
    "MemoryRateLimiter",
    "RateDecision",
    "RateLimiter",
    "RedisRateLimiter",
    "build_rate_limiter",
]

logger = logging.getLogger(__name__)

_MICROS: Final = 1_000_000
WARNING_INTERVAL_SECONDS: Final = 30.0
"""While Redis is down, at most one warning is logged per this many seconds."""
REDIS_RETRY_SECONDS: Final = 1.0
"""After a Redis failure, calls use the in-process limiter this long before Redis is tried
again, so an unreachable Redis costs at most one socket timeout per second, not per request."""


@dataclass(frozen=True)
class RateDecision:
    """The answer for one request: allowed or not, and what the rate-limit headers say."""

    allowed: bool
    limit: int
    """Requests the key may make at once (the burst)."""
    remaining: int
    """Requests the key may still make right now."""
    retry_after: float
    """Seconds until the next request would be allowed (0 when this one was)."""


class RateLimiter(Protocol):
    """What the API needs from a rate limiter."""

    def hit(self, key: str) -> RateDecision:
        """Count one request by ``key`` and say whether it is allowed."""
        ...

    def healthy(self) -> bool:
        """False while the limiter runs degraded (its shared store is unreachable)."""
        ...


def _interval_micros(rate_per_minute: int) -> int:
    """Microseconds between two sustained requests, rounded up (never faster than asked)."""
    return -(-60 * _MICROS // rate_per_minute)


def _check(rate_per_minute: int, burst: int) -> None:
    if rate_per_minute <= 0 or burst <= 0:
        raise ValueError(
            f"rate_per_minute and burst must be positive; got {rate_per_minute} and {burst}."
        )


class MemoryRateLimiter:
    """GCRA in this process: exact for one replica, thread-safe, bounded memory.

    Keys whose bucket has refilled are forgotten on a sweep (at most once a minute, or when more
    than ``max_keys`` are held). If more than ``max_keys`` keys are still active, those closest
    to a full bucket are forgotten: memory stays bounded and the cost is a little leniency.
    """

    def __init__(
        self,
        *,
        rate_per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        _check(rate_per_minute, burst)
        self._interval = _interval_micros(rate_per_minute)
        self._burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._tats: dict[str, int] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0

    def hit(self, key: str) -> RateDecision:
        """Count one request by ``key`` and say whether it is allowed."""
        now = round(self._clock() * _MICROS)
        with self._lock:
            tat = max(self._tats.get(key, now), now)
            new_tat = tat + self._interval
            allow_at = new_tat - self._burst * self._interval
            if now < allow_at:
                return RateDecision(
                    allowed=False,
                    limit=self._burst,
                    remaining=0,
                    retry_after=(allow_at - now) / _MICROS,
                )
            self._tats[key] = new_tat
            if now >= self._next_sweep or len(self._tats) > self._max_keys:
                self._sweep(now)
        return RateDecision(
            allowed=True,
            limit=self._burst,
            remaining=(now - allow_at) // self._interval,
            retry_after=0.0,
        )

    def healthy(self) -> bool:
        """Always True: there is nothing to reach."""
        return True

    def __len__(self) -> int:
        """How many keys are held (for tests and metrics)."""
        with self._lock:
            return len(self._tats)

    def _sweep(self, now: int) -> None:
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        if len(self._tats) > self._max_keys:
            keep = sorted(self._tats.items(), key=lambda item: item[1])
            self._tats = dict(keep[len(keep) - self._max_keys * 9 // 10 :])
        self._next_sweep = now + 60 * _MICROS


# KEYS[1]: the key's TAT in microseconds of Redis's clock. ARGV: interval (µs), burst.
# Returns {allowed (0|1), remaining, retry_after (µs)}. TIME is allowed before writes because
# Redis ≥ 5 replicates scripts by effects; replicate_commands() asks older servers for the same.
_GCRA_SCRIPT: Final = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, 0, allow_at - now}
end
local ttl_ms = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {1, math.floor((now - allow_at) / interval), 0}
"""
_GCRA_SHA: Final = hashlib.sha1(_GCRA_SCRIPT.encode("utf-8"), usedforsecurity=False).hexdigest()


class RedisRateLimiter:
    """GCRA in Redis: one budget per key shared by every API replica using the same Redis.

    Each call is one ``EVALSHA`` (``EVAL`` when the server does not have the script yet, for
    example after a restart), atomic on the server. A key's entry expires when its bucket is
    full again. Any Redis error makes that call use the in-process fallback instead, or refuse
    it when ``when_down`` is ``"refuse"``.
    """

    def __init__(
        self,
        url: str,
        *,
        rate_per_minute: int,
        burst: int,
        prefix: str = "hokusai:rl:",
        socket_timeout: float = 0.25,
        when_down: Literal["memory", "refuse"] = "memory",
    ) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        _check(rate_per_minute, burst)
        if when_down not in ("memory", "refuse"):
            raise ValueError(f"when_down must be 'memory' or 'refuse'; got {when_down!r}.")
        self._interval = _interval_micros(rate_per_minute)
        self._burst = burst
        self._prefix = prefix
        self.when_down = when_down
        # No retries: redis-py otherwise retries a refused connection with backoff, and a
        # request must never wait much longer than one socket timeout for its rate limit.
        self._client: Any = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        self._redis_error: type[Exception] = redis.RedisError
        self._no_script: type[Exception] = redis.exceptions.NoScriptError
        self._fallback = MemoryRateLimiter(rate_per_minute=rate_per_minute, burst=burst)
        self._lock = threading.Lock()
        self._down = False
        self._retry_at = 0.0
        self._warned_at: float | None = None

    def hit(self, key: str) -> RateDecision:
        """Count one request by ``key`` in Redis (in memory, or refused, while Redis is
        unreachable)."""
        if self._skipping():
            return self._degraded(key)
        try:
            allowed, remaining, retry_micros = self._evaluate(self._prefix + key)
        except self._redis_error as exc:
            self._failed(exc)
            return self._degraded(key)
        self._answered()
        return RateDecision(
            allowed=bool(allowed),
            limit=self._burst,
            remaining=int(remaining),
            retry_after=int(retry_micros) / _MICROS,
        )

    def healthy(self) -> bool:
        """True when Redis answers; False (without waiting) soon after it did not."""
        if self._skipping():
            return False
        try:
            self._client.ping()
        except self._redis_error as exc:
            self._failed(exc)
            return False
        self._answered()
        return True

    def close(self) -> None:
        """Close the connections to Redis."""
        self._client.close()

    def _degraded(self, key: str) -> RateDecision:
        if self.when_down == "refuse":
            raise RateLimiterUnavailableError(
                "The rate limiter (Redis) is unreachable and HOKUSAI_RATE_LIMIT_REDIS_DOWN is "
                "'refuse'; retry later."
            )
        return self._fallback.hit(key)

    def _evaluate(self, redis_key: str) -> list[int]:
        args = (redis_key, self._interval, self._burst)
        try:
            result = self._client.evalsha(_GCRA_SHA, 1, *args)
        except self._no_script:
            result = self._client.eval(_GCRA_SCRIPT, 1, *args)
        return [int(value) for value in result]

    def _skipping(self) -> bool:
        with self._lock:
            return self._down and time.monotonic() < self._retry_at

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._down = True
            self._retry_at = now + REDIS_RETRY_SECONDS
            warn = self._warned_at is None or now - self._warned_at >= WARNING_INTERVAL_SECONDS
            if warn:
                self._warned_at = now
        if warn:
            logger.warning(
                "Redis rate limiter unavailable, %s: %s: %s",
                "limiting in memory per replica"
                if self.when_down == "memory"
                else "refusing requests (HOKUSAI_RATE_LIMIT_REDIS_DOWN=refuse)",
                type(exc).__name__,
                mask_secrets(str(exc)),
            )

    def _answered(self) -> None:
        with self._lock:
            recovered = self._down
            self._down = False
            self._warned_at = None
        if recovered:
            logger.info("Redis rate limiter reachable again")


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """The limiter the settings ask for: Redis when ``redis_url`` is set (behaving as
    ``rate_limit_redis_down`` says while it is unreachable), else in memory."""
    if settings.redis_url:
        return RedisRateLimiter(
            settings.redis_url,
            rate_per_minute=settings.rate_limit_per_minute,
            burst=settings.rate_limit_burst,
            when_down=settings.rate_limit_redis_down,
        )
    return MemoryRateLimiter(
        rate_per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst
    )
