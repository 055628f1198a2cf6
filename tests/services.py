"""The machine's PostgreSQL and Redis, as tests reach them: one place decides skip or fail.

Both servers run on every machine this project is built and tested on (``.ci/run`` starts them
when they are down). A test that needs one calls :func:`require_postgres` or
:func:`require_redis` first. On a developer's machine without the server the test is skipped,
with the reason; with ``CI=true`` in the environment it fails instead, so a CI run can never
pass by skipping what it was meant to test.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/15"
CONNECT_TIMEOUT_SECONDS = 3


def on_ci() -> bool:
    """Whether this run is CI's (``CI`` set to ``true``/``1``/``yes``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def unavailable(service: str, reason: object) -> NoReturn:
    """Skip the test, or fail it on CI, because ``service`` did not answer."""
    message = f"{service} is not available here: {reason}"
    if on_ci():
        pytest.fail(f"{message} (CI=true: a service the tests need is down, never a skip)")
    pytest.skip(message)


def require_postgres(url: str = POSTGRES_ADMIN_URL) -> None:
    """Return when the PostgreSQL server at ``url`` accepts a connection; else skip or fail."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        unavailable("PostgreSQL", exc.orig)
    finally:
        engine.dispose()


def require_redis(url: str = REDIS_URL) -> None:
    """Return when the Redis server at ``url`` answers PING; else skip or fail."""
    import redis

    client = redis.Redis.from_url(
        url, socket_timeout=CONNECT_TIMEOUT_SECONDS, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    finally:
        client.close()
