"""tests/services.py: an unreachable PostgreSQL or Redis is a skip locally and a failure on CI."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from tests.services import (
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    on_ci,
    require_postgres,
    require_redis,
)


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _unreachable() -> list[tuple[str, Callable[[], None]]]:
    port = _closed_port()
    return [
        (
            "PostgreSQL",
            lambda: require_postgres(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"),
        ),
        ("Redis", lambda: require_redis(f"redis://127.0.0.1:{port}/0")),
    ]


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes"])
def test_on_ci_reads_the_ci_variable(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    assert on_ci()
    monkeypatch.setenv("CI", "false")
    assert not on_ci()
    monkeypatch.delenv("CI")
    assert not on_ci()


def test_an_unreachable_service_fails_on_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    for service, require in _unreachable():
        with pytest.raises(pytest.fail.Exception, match=f"{service} is not available here") as info:
            require()
        assert "never a skip" in str(info.value)


def test_an_unreachable_service_is_a_skip_off_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    for service, require in _unreachable():
        with pytest.raises(pytest.skip.Exception, match=f"{service} is not available here"):
            require()


def test_the_machines_servers_answer():
    """The servers the other tests use answer (returns quietly; skip or fail otherwise)."""
    require_postgres(POSTGRES_ADMIN_URL)
    require_redis(REDIS_URL)
