"""The project's own database: what MLflow has no place for (webhooks, outbox, delivery log).

SQLite under ``HOKUSAI_HOME`` by default, PostgreSQL by URL (``HOKUSAI_DATABASE_URL``).

On SQLite a write transaction (:func:`write_transaction`) starts with ``BEGIN IMMEDIATE``: the
write lock is taken up front, so "select due rows, then mark them claimed" is atomic across
processes. Reads start a deferred ``BEGIN`` and, with WAL, never wait for a writer. On PostgreSQL
the same claim uses ``FOR UPDATE SKIP LOCKED``.

Migrations
----------
The schema is managed by Alembic (``hokusai/migrations``) with its own version table,
``hokusai_alembic_version``, apart from MLflow's Alembic history in the default
``alembic_version``: the project database may be MLflow's database too (no table name is shared
either). :func:`open_database` brings the schema to head the first time a process
opens a URL, unless ``HOKUSAI_DATABASE_AUTO_MIGRATE`` is off; ``hokusai db upgrade``
(:func:`upgrade_database`) does the same as an explicit step.

Replicas may start together on an empty database. Each first reads the revision without any
lock: at head, it is done — no lock, no DDL. Otherwise it takes a lock that serialises migrations
across processes — ``pg_advisory_xact_lock`` on PostgreSQL, the write lock (``BEGIN IMMEDIATE``)
on SQLite — reads the revision again under it, and only then migrates, in that same transaction:
the lock is released by the commit that makes the new schema visible, so the next holder finds it
at head and does nothing.

Databases made before the version table was renamed hold Hokusai's revision in
``alembic_version``; the first upgrade copies it into ``hokusai_alembic_version`` and drops
``alembic_version`` if nothing else is in it. An ``alembic_version`` without Hokusai's revision
(MLflow's) is never touched.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from hokusai.errors import BackendError, BackendUnavailableError, DatabaseNotMigratedError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "VERSION_TABLE",
    "Revisions",
    "database_engine",
    "database_revisions",
    "dispose_engines",
    "is_unreachable",
    "open_database",
    "read_rows",
    "upgrade_database",
    "write_transaction",
]

VERSION_TABLE = "hokusai_alembic_version"
"""Alembic's version table for Hokusai's history (MLflow's is ``alembic_version``)."""

_LEGACY_VERSION_TABLE = "alembic_version"
_ADVISORY_LOCK_KEY = 0x686F6B7573616931  # b"hokusai1": one lock per PostgreSQL database
_MIGRATIONS = Path(__file__).parent / "migrations"

_MIGRATED: set[str] = set()
_OPEN: dict[str, Engine] = {}
_MIGRATE_LOCK = threading.Lock()
_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Revisions:
    """Where a project database's schema is, against the head this code needs."""

    current: str | None
    """Hokusai's revision in ``hokusai_alembic_version`` (None: not there yet)."""
    head: str
    """The newest revision of ``hokusai/migrations``."""
    legacy: str | None = None
    """Hokusai's revision still in ``alembic_version`` (databases from before the rename)."""

    @property
    def up_to_date(self) -> bool:
        """True when the schema is at head: opening the database changes nothing."""
        return self.current == self.head


def open_database(url: str, *, migrate: bool | None = None) -> Engine:
    """An engine for ``url`` with the schema at head.

    The first open of ``url`` in a process reads the schema's revision; when it is behind, the
    schema is migrated under the cross-process migration lock, or — with ``migrate`` false
    (default: the ``HOKUSAI_DATABASE_AUTO_MIGRATE`` setting) — :class:`DatabaseNotMigratedError`
    is raised.
    """
    with _MIGRATE_LOCK:
        engine = _OPEN.get(url)
        if engine is None:
            engine = database_engine(url)
        if url not in _MIGRATED:
            try:
                _ensure_at_head(engine, migrate)
            except BaseException:
                engine.dispose()
                _OPEN.pop(url, None)
                raise
            _MIGRATED.add(url)
        # One engine (one connection pool) per database per process, whoever opens it: the
        # registry's index, the webhook layer and the API keys share it.
        _OPEN[url] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection of the engines :func:`open_database` handed out, and
    forget them (the next open makes a new engine). For the end of a process's use of its
    databases — and for test suites, where thousands of throw-away databases would otherwise
    keep their pools (and file descriptors) open."""
    with _MIGRATE_LOCK:
        engines = list(_OPEN.values())
        _OPEN.clear()
    for engine in engines:
        engine.dispose()


def database_engine(url: str) -> Engine:
    """An engine for ``url`` set up as Hokusai uses it; the schema is neither read nor changed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: error messages never carry bound values (webhook secrets, key hashes).
        engine = create_engine(
            url,
            connect_args={"timeout": _SQLITE_TIMEOUT, "check_same_thread": False},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            writing = connection.get_execution_options().get(_WRITE, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        # libpq waits for a server that accepted the connection but never answers (hung, or
        # a half-open path) forever by default: every request needing the database would hang
        # with it. Bounded, it is an OperationalError (a 503 naming the database) in seconds.
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_SECONDS
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args)


_WRITE = "hokusai_write"
_SQLITE_TIMEOUT = 30.0
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5
"""How long a new PostgreSQL connection may take (``?connect_timeout=`` in the URL wins)."""


def _enable_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, waiting out other processes doing the same.

    WAL is a property of the file, set by the first connection. While another process is
    switching a new file to WAL, SQLite answers "database is locked" at once, without calling
    the busy handler: processes opening a new file together retry here instead of failing.
    """
    deadline = time.monotonic() + _SQLITE_TIMEOUT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it holds the write lock from its first
    statement, so read-then-write sequences in it are atomic across processes."""
    with engine.connect().execution_options(**{_WRITE: True}) as connection, connection.begin():
        yield connection


_COMPILED: dict[tuple[int, str], tuple[sa.Select[Any], str, tuple[str, ...] | None, Any]] = {}
_COMPILED_LOCK = threading.Lock()


def read_rows(engine: Engine, statement: sa.Select[Any], params: dict[str, Any]) -> list[Any]:
    """The rows of one read-only ``statement`` (a module-level constant with bound
    parameters), run on a pooled DBAPI connection: for the hot read paths, where SQLAlchemy's
    per-execution work (cache key, execution context, result wrapping, the ``BEGIN`` of
    :func:`database_engine`'s SQLite connections) costs ten times the query itself.

    The statement is compiled once per dialect. Being one statement, it reads one consistent
    snapshot without an explicit transaction. Rows are named tuples of the selected columns;
    driver errors are raised as SQLAlchemy's exceptions, as ``Connection.execute`` raises them.
    """
    key = (id(statement), engine.dialect.name)
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement.compile(dialect=engine.dialect)
        positions = tuple(compiled.positiontup or ()) if engine.dialect.positional else None
        names = [str(c.key) for c in statement.selected_columns]
        row_type: Any = namedtuple("Row", names)  # type: ignore[misc]
        with _COMPILED_LOCK:
            found = _COMPILED.setdefault(key, (statement, str(compiled), positions, row_type))
    _, sql, positions, make_row = found
    args: Any = [params[name] for name in positions] if positions is not None else params
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        connection = engine.raw_connection()
    except dbapi_error as exc:
        # The pool raises the driver's own error when it cannot connect (``Engine.connect``
        # would have wrapped it): callers catch SQLAlchemy's, so a database that is down is
        # an OperationalError here too, not an unexpected exception.
        raise sa.exc.DBAPIError.instance(
            None, None, exc, dbapi_error, hide_parameters=True, dialect=engine.dialect
        ) from exc
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(sql, args)
            return [make_row(*row) for row in cursor.fetchall()]
        finally:
            cursor.close()
    except dbapi_error as exc:
        raise sa.exc.DBAPIError.instance(
            sql, args, exc, dbapi_error, hide_parameters=True, dialect=engine.dialect
        ) from exc
    finally:
        connection.close()


def database_revisions(engine: Engine) -> Revisions:
    """The schema's revision and the head, read without locking anything."""
    try:
        with engine.connect() as connection:
            return _revisions(connection)
    except SQLAlchemyError as exc:
        raise _translate(exc, "Reading the project database's schema revision") from exc


def upgrade_database(engine: Engine) -> Revisions:
    """Bring the schema to head under the migration lock (a no-op when it already is there).

    Returns the revisions found under the lock, before migrating: ``up_to_date`` means another
    process had done it (or nothing was needed).
    """
    from alembic import command
    from alembic.util import CommandError

    try:
        with _migration_transaction(engine) as connection:
            found = _revisions(connection)
            if found.up_to_date:
                return found
            _check_known(found)
            if found.current is None and found.legacy is not None:
                _adopt_legacy_revision(connection, found.legacy)
            config = _config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            return found
    except SQLAlchemyError as exc:
        raise _translate(exc, "Migrating the project database") from exc
    except CommandError as exc:
        raise BackendError(f"Migrating the project database failed: {exc}") from exc


def _ensure_at_head(engine: Engine, migrate: bool | None) -> None:
    found = database_revisions(engine)  # the fast path: one read, no lock, no DDL
    if found.up_to_date:
        return
    _check_known(found)
    if migrate is None:
        from hokusai.config import get_settings

        migrate = get_settings().database_auto_migrate
    if not migrate:
        where = engine.url.render_as_string(hide_password=True)
        current = found.current or found.legacy or "empty"
        raise DatabaseNotMigratedError(
            f"The project database {where} is at revision {current}, this Hokusai needs "
            f"{found.head}, and HOKUSAI_DATABASE_AUTO_MIGRATE is off: run `hokusai db upgrade`."
        )
    upgrade_database(engine)


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction holding the lock that serialises migrations across processes."""
    if engine.dialect.name == "postgresql":
        # READ COMMITTED: each statement after the lock sees what the previous holder committed.
        options: dict[str, Any] = {"isolation_level": "READ COMMITTED"}
        with engine.connect().execution_options(**options) as connection, connection.begin():
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_LOCK_KEY)))
            yield connection
    else:
        with write_transaction(engine) as connection:  # SQLite: BEGIN IMMEDIATE
            yield connection


def _revisions(connection: Connection) -> Revisions:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    heads = context.get_current_heads()
    current = ",".join(sorted(heads)) or None
    legacy = None
    if current is None:
        ours = [rev for rev in _legacy_rows(connection) if rev in _own_revisions()]
        legacy = ours[0] if ours else None
    return Revisions(current=current, head=_head(), legacy=legacy)


def _legacy_rows(connection: Connection) -> list[str]:
    if not sa.inspect(connection).has_table(_LEGACY_VERSION_TABLE):
        return []
    rows = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
    return [str(row) for row in rows.scalars()]


def _adopt_legacy_revision(connection: Connection, revision: str) -> None:
    """Move Hokusai's revision from ``alembic_version`` to ``hokusai_alembic_version``."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    context.stamp(_script(), revision)
    others = [rev for rev in _legacy_rows(connection) if rev not in _own_revisions()]
    if others:
        _logger.warning(
            "%s holds Hokusai's revision %s beside %s; left as it is (only "
            "%s is Hokusai's from now on)",
            _LEGACY_VERSION_TABLE,
            revision,
            ", ".join(others),
            VERSION_TABLE,
        )
        return
    connection.execute(sa.text("DROP TABLE alembic_version"))


def _check_known(found: Revisions) -> None:
    if found.current is not None and found.current not in _own_revisions():
        raise BackendError(
            f"The project database is at revision {found.current}, which this version of "
            f"Hokusai does not know (head {found.head}); was it migrated by a newer Hokusai?"
        )


# What drivers say when the database cannot be reached, or a connection to it was lost: a
# refused or timed-out connect, a server that went away mid-query, a file that cannot be opened.
_UNREACHABLE = (
    "could not connect",
    "connection refused",
    "connection failed",
    "connection timeout",
    "timeout expired",
    "server closed the connection",
    "connection is lost",
    "terminating connection",
    "unable to open",
)


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (a SQLAlchemy or driver error) means the database is unreachable — so a
    retry later may succeed — rather than that it refused what was asked of it."""
    if getattr(exc, "connection_invalidated", False):
        return True
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).lower()
    return any(marker in text for marker in _UNREACHABLE)


def _translate(exc: SQLAlchemyError, doing: str) -> BackendError:
    orig = getattr(exc, "orig", None)  # the driver's error, without SQLAlchemy's footer
    message = " ".join(str(orig if orig is not None else exc).split())  # one line
    if is_unreachable(exc):
        return BackendUnavailableError(f"Project database is unreachable: {message}")
    return BackendError(f"{doing} failed: {message}")


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


@functools.cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


@functools.cache
def _head() -> str:
    head = _script().get_current_head()
    assert head is not None, "hokusai/migrations has no revision"
    return head


@functools.cache
def _own_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _script().walk_revisions())
