"""The project's own database: what MLflow has no place for (webhooks, outbox, delivery log).

SQLite under ``HOKUSAI_HOME`` by default, PostgreSQL by URL (``HOKUSAI_DATABASE_URL``). The schema
is managed by Alembic (``hokusai/migrations``) and brought to head when a database is opened.

On SQLite a write transaction (:func:`write_transaction`) starts with ``BEGIN IMMEDIATE``: the
write lock is taken up front, so "select due rows, then mark them claimed" is atomic across
processes. Reads start a deferred ``BEGIN`` and, with WAL, never wait for a writer. On PostgreSQL
the same claim uses ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from hokusai.errors import BackendError, BackendUnavailableError

__all__ = ["open_database", "write_transaction"]

_MIGRATED: set[str] = set()
_MIGRATE_LOCK = threading.Lock()


def open_database(url: str) -> Engine:
    """An engine for ``url`` with the schema at head."""
    engine = _engine(url)
    with _MIGRATE_LOCK:
        if url not in _MIGRATED:
            _migrate(engine)
            _MIGRATED.add(url)
    return engine


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            writing = connection.get_execution_options().get(_WRITE, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)


_WRITE = "hokusai_write"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it holds the write lock from its first
    statement, so read-then-write sequences in it are atomic across processes."""
    with engine.connect().execution_options(**{_WRITE: True}) as connection, connection.begin():
        yield connection


def _migrate(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    try:
        with write_transaction(engine) as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        text = str(exc).lower()
        if "could not connect" in text or "connection refused" in text or "unable to open" in text:
            raise BackendUnavailableError(f"Project database is unreachable: {exc}") from exc
        raise BackendError(f"Migrating the project database failed: {exc}") from exc
