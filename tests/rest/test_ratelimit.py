"""Rate limits: GCRA in memory (fake clock) and in the machine's real Redis, and degradation.

Tests of the real Redis take ``redis_limiter`` (Redis required: tests/services.py skips, or fails
on CI); tests of a Redis that is down take ``make_limiter``, which never touches the real one.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from hokusai.config import Settings
from hokusai.rest import ratelimit
from hokusai.rest.ratelimit import (
    MemoryRateLimiter,
    RateDecision,
    RateLimiter,
    RedisRateLimiter,
    build_rate_limiter,
)
from tests.services import REDIS_URL, require_redis
from tests.stack.stack import TcpProxy


class FakeClock:
    """Monotonic seconds that move only when told to."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _wait_for(condition: Callable[[], bool], *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# In memory -------------------------------------------------------------------------------------


def test_burst_then_refusal_with_retry_after():
    clock = FakeClock()
    limiter = MemoryRateLimiter(rate_per_minute=60, burst=5, clock=clock)
    decisions = [limiter.hit("k") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True] * 5
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0]
    assert {d.limit for d in decisions} == {5}
    assert {d.retry_after for d in decisions} == {0.0}
    refused = limiter.hit("k")
    assert refused == RateDecision(allowed=False, limit=5, remaining=0, retry_after=1.0)
    clock.advance(0.25)
    assert limiter.hit("k").retry_after == pytest.approx(0.75)


def test_refusals_do_not_consume_budget():
    clock = FakeClock()
    limiter = MemoryRateLimiter(rate_per_minute=60, burst=2, clock=clock)
    limiter.hit("k")
    limiter.hit("k")
    for _ in range(50):
        assert not limiter.hit("k").allowed
    clock.advance(1.0)
    assert limiter.hit("k").allowed


def test_refill_over_time():
    clock = FakeClock(1000.0)
    limiter = MemoryRateLimiter(rate_per_minute=60, burst=5, clock=clock)
    for _ in range(5):
        assert limiter.hit("k").allowed
    clock.advance(0.999)
    assert not limiter.hit("k").allowed
    clock.advance(0.001)  # exactly one interval: exactly on time is allowed
    decision = limiter.hit("k")
    assert decision.allowed and decision.remaining == 0
    clock.advance(2.5)
    assert [limiter.hit("k").allowed for _ in range(3)] == [True, True, False]
    clock.advance(60)  # long idle: a full bucket, never more than the burst
    assert [limiter.hit("k").allowed for _ in range(6)] == [True] * 5 + [False]


def test_sustained_rate_never_exceeds_the_limit():
    clock = FakeClock()
    limiter = MemoryRateLimiter(rate_per_minute=60, burst=5, clock=clock)
    allowed = 0
    for step in range(600):  # one request every 0.1 s for a minute
        clock.now = step / 10
        allowed += limiter.hit("k").allowed
    assert allowed == 5 + 59  # the burst, then one per second from t=1 to t=59


def test_rates_that_do_not_divide_a_minute_round_towards_slower():
    clock = FakeClock()
    limiter = MemoryRateLimiter(rate_per_minute=7, burst=1, clock=clock)
    assert limiter.hit("k").allowed
    refused = limiter.hit("k")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(60 / 7, abs=1e-6)
    assert refused.retry_after >= 60 / 7


def test_keys_are_independent():
    clock = FakeClock()
    limiter = MemoryRateLimiter(rate_per_minute=60, burst=3, clock=clock)
    for _ in range(3):
        limiter.hit("a")
    assert not limiter.hit("a").allowed
    fresh = limiter.hit("b")
    assert fresh.allowed and fresh.remaining == 2


def test_many_threads_get_exactly_the_burst():
    limiter = MemoryRateLimiter(rate_per_minute=1, burst=500, clock=FakeClock())
    barrier = threading.Barrier(32)
    allowed: list[int] = []

    def worker() -> None:
        barrier.wait()
        allowed.append(sum(limiter.hit("shared").allowed for _ in range(100)))

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(allowed) == 32
    assert sum(allowed) == 500


def test_idle_keys_are_forgotten():
    clock = FakeClock()
    limiter = MemoryRateLimiter(rate_per_minute=60, burst=5, clock=clock)
    for i in range(1000):
        limiter.hit(f"key-{i}")
    assert len(limiter) == 1000
    clock.advance(61)  # every bucket is full again, and a sweep is due
    limiter.hit("new")
    assert len(limiter) == 1


def test_memory_is_bounded_even_when_every_key_is_active():
    limiter = MemoryRateLimiter(rate_per_minute=1, burst=5, clock=FakeClock(), max_keys=100)
    for i in range(10_000):
        limiter.hit(f"key-{i}")
        assert len(limiter) <= 100


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (60, 0), (-1, 1)])
def test_nonsense_limits_are_refused(rate: int, burst: int):
    with pytest.raises(ValueError, match="must be positive"):
        MemoryRateLimiter(rate_per_minute=rate, burst=burst)
    with pytest.raises(ValueError, match="must be positive"):
        RedisRateLimiter(REDIS_URL, rate_per_minute=rate, burst=burst)


def test_build_rate_limiter_follows_the_settings(tmp_path):
    memory = build_rate_limiter(Settings(home=tmp_path, rate_limit_per_minute=120))
    assert isinstance(memory, MemoryRateLimiter)
    assert memory.healthy()
    shared = build_rate_limiter(Settings(home=tmp_path, redis_url=REDIS_URL, rate_limit_burst=7))
    assert isinstance(shared, RedisRateLimiter)
    assert isinstance(shared, RedisRateLimiter) and shared._burst == 7
    shared.close()
    limiters: list[RateLimiter] = [memory, shared]  # both satisfy the protocol
    assert len(limiters) == 2


# In Redis --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_client() -> Iterator[Any]:
    import redis

    require_redis(REDIS_URL)
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    yield client
    client.close()


@pytest.fixture
def prefix() -> str:
    """A prefix no other test uses."""
    return f"hokusai:test:{uuid.uuid4().hex}:"


@pytest.fixture
def make_limiter(prefix: str) -> Iterator[Callable[..., RedisRateLimiter]]:
    """Limiters on any URL (no Redis needed: the Redis-down tests point them at closed ports)."""
    made: list[RedisRateLimiter] = []

    def make(url: str, **options: Any) -> RedisRateLimiter:
        options.setdefault("prefix", prefix)
        limiter = RedisRateLimiter(url, **options)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        limiter.close()


@pytest.fixture
def redis_limiter(
    make_limiter: Callable[..., RedisRateLimiter], redis_client: Any, prefix: str
) -> Iterator[Callable[..., RedisRateLimiter]]:
    """Limiters on the machine's Redis (by default); the prefix's keys are deleted afterwards."""

    def make(url: str = REDIS_URL, **options: Any) -> RedisRateLimiter:
        return make_limiter(url, **options)

    yield make
    leftovers = list(redis_client.scan_iter(match=f"{prefix}*"))
    if leftovers:
        redis_client.delete(*leftovers)


def test_redis_burst_then_refusal(redis_limiter, redis_client, prefix):
    limiter = redis_limiter(rate_per_minute=60, burst=5)
    decisions = [limiter.hit("k") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True] * 5
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0]
    refused = limiter.hit("k")
    assert not refused.allowed and refused.remaining == 0 and refused.limit == 5
    assert 0.9 < refused.retry_after <= 1.0
    ttl_ms = redis_client.pttl(f"{prefix}k")
    assert 0 < ttl_ms <= 5000  # gone once the bucket would be full again
    assert limiter.healthy()


def test_redis_refills_over_time(redis_limiter):
    limiter = redis_limiter(rate_per_minute=6000, burst=2)  # one request per 10 ms
    assert limiter.hit("k").allowed
    assert limiter.hit("k").allowed
    refused = limiter.hit("k")
    if not refused.allowed:  # (the two hits may already have spanned 10 ms)
        assert 0 < refused.retry_after <= 0.01
    _wait_for(lambda: limiter.hit("k").allowed, timeout=2)


def test_redis_keys_are_independent(redis_limiter):
    limiter = redis_limiter(rate_per_minute=1, burst=2)
    limiter.hit("a")
    limiter.hit("a")
    assert not limiter.hit("a").allowed
    assert limiter.hit("b").allowed


def test_two_replicas_share_one_budget(redis_limiter):
    first = redis_limiter(rate_per_minute=1, burst=6)
    second = redis_limiter(rate_per_minute=1, burst=6)
    outcomes = [(first if i % 2 else second).hit("tenant").allowed for i in range(20)]
    assert sum(outcomes) == 6
    assert outcomes[:6] == [True] * 6
    other = redis_limiter(rate_per_minute=1, burst=6, prefix=f"other:{uuid.uuid4().hex}:")
    assert other.hit("tenant").allowed  # another prefix is another budget
    other._client.delete(f"{other._prefix}tenant")


def test_redis_is_atomic_under_concurrency(redis_limiter):
    replicas = [redis_limiter(rate_per_minute=1, burst=50) for _ in range(4)]
    barrier = threading.Barrier(16)
    allowed: list[int] = []

    def worker(limiter: RedisRateLimiter) -> None:
        barrier.wait()
        allowed.append(sum(limiter.hit("hot").allowed for _ in range(20)))

    threads = [threading.Thread(target=worker, args=(replicas[i % 4],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(allowed) == 16
    assert sum(allowed) == 50


def test_redis_reloads_the_script_after_a_flush(redis_limiter, redis_client):
    limiter = redis_limiter(rate_per_minute=60, burst=3)
    assert limiter.hit("k").allowed
    redis_client.script_flush()  # as after a Redis restart: EVALSHA answers NOSCRIPT
    assert redis_client.script_exists(ratelimit._GCRA_SHA) == [False]
    decision = limiter.hit("k")
    assert decision.allowed and decision.remaining == 1
    assert redis_client.script_exists(ratelimit._GCRA_SHA) == [True]
    assert limiter.healthy()


# Redis down ------------------------------------------------------------------------------------


def test_redis_down_falls_back_to_memory_quickly(make_limiter, caplog):
    caplog.set_level(logging.WARNING, logger="hokusai.rest.ratelimit")
    limiter = make_limiter(
        f"redis://127.0.0.1:{_free_port()}/0", rate_per_minute=60, burst=3, socket_timeout=0.25
    )
    started = time.monotonic()
    decisions = [limiter.hit("k") for _ in range(50)]
    elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert [d.allowed for d in decisions[:4]] == [True, True, True, False]  # memory limits
    assert decisions[3].retry_after == pytest.approx(1.0, abs=0.2)
    assert not limiter.healthy()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Redis rate limiter unavailable" in warnings[0].getMessage()


def test_a_silent_redis_costs_at_most_one_socket_timeout(make_limiter):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        limiter = make_limiter(
            f"redis://127.0.0.1:{port}/0", rate_per_minute=60, burst=3, socket_timeout=0.2
        )
        started = time.monotonic()
        assert limiter.hit("k").allowed
        first = time.monotonic() - started
        assert 0.15 < first < 1.0
        started = time.monotonic()
        for _ in range(20):
            limiter.hit("k")
        assert time.monotonic() - started < 0.1  # within the retry window: memory only
        assert not limiter.healthy()


@contextmanager
def _proxy_to_redis() -> Iterator[TcpProxy]:
    """A TCP relay to the real Redis that can be cut and restored, like a network partition."""
    proxy = TcpProxy(("127.0.0.1", 6379))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def test_healthy_again_when_redis_answers_again(redis_limiter, redis_client, caplog):
    caplog.set_level(logging.INFO, logger="hokusai.rest.ratelimit")
    with _proxy_to_redis() as proxy:
        limiter = redis_limiter(f"redis://127.0.0.1:{proxy.port}/15", rate_per_minute=1, burst=3)
        assert limiter.hit("k").allowed
        assert limiter.healthy()
        proxy.stop()
        assert limiter.hit("k").allowed  # memory: a fresh budget on this replica
        assert not limiter.healthy()
        proxy.start()
        _wait_for(limiter.healthy, timeout=5)  # once the retry window has passed
        decision = limiter.hit("k")
        assert decision.allowed and decision.remaining == 1  # Redis's budget, kept
    assert "reachable again" in caplog.text
