"""A throw-away PostgreSQL database on the machine's server (skip or fail: tests/services.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tests.services import POSTGRES_ADMIN_URL, require_postgres

ADMIN_URL = POSTGRES_ADMIN_URL


@contextmanager
def temporary_database() -> Iterator[str]:
    import sqlalchemy as sa

    require_postgres(ADMIN_URL)
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"hokusai_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except BaseException:
        admin.dispose()
        raise
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
