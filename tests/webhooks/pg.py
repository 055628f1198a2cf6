"""A throw-away PostgreSQL database on the machine's server.

Without a server the test is skipped — except under CI (``CI=true``), where a missing server
means a broken job and the test fails instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def unavailable(reason: object) -> NoReturn:
    """Skip for want of PostgreSQL, or fail when running under CI."""
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"PostgreSQL is required under CI (CI=true) but not available: {reason}")
    pytest.skip(f"PostgreSQL is not available here: {reason}")


@contextmanager
def temporary_database() -> Iterator[str]:
    import sqlalchemy as sa

    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"hokusai_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        unavailable(exc.orig)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
