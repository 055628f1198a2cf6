"""A PostgreSQL project database that cannot be reached: every way of failing to reach it is a
typed error within seconds — a refused connection, a server that accepts and never answers
(libpq would wait forever), a connection lost mid-query.

No PostgreSQL server is needed: the "servers" here are a closed port and a socket that accepts
and stays silent. (A real server cut mid-run: tests/stack/test_database_outage.py.)
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from hokusai.auth import ApiKeyStore
from hokusai.auth.tables import api_keys
from hokusai.db import database_engine, database_revisions, is_unreachable, read_rows
from hokusai.errors import BackendUnavailableError
from tests.stack.stack import free_port

# Far above the connect timeout: reaching it means a connect waited without bound.
HANG = 60
BY_ID = sa.select(api_keys.c.id).where(api_keys.c.id == sa.bindparam("key_id"))


def _url(port: int) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/hokusai"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
        for sock in held:
            sock.close()


def test_read_rows_on_a_refused_connection_raises_sqlalchemys_operational_error():
    """The pool hands out the driver's own error when it cannot connect; read_rows' callers
    (the key check on every request) catch SQLAlchemy's."""
    engine = database_engine(_url(free_port()))
    try:
        with pytest.raises(sa.exc.OperationalError) as info:
            read_rows(engine, BY_ID, {"key_id": "x"})
        assert is_unreachable(info.value)
        with pytest.raises(BackendUnavailableError, match="Checking an API key failed"):
            ApiKeyStore(engine).authenticate("hk_" + "a" * 12 + "_" + "b" * 43)
    finally:
        engine.dispose()


@pytest.mark.timeout(HANG)
def test_a_server_that_never_answers_is_backend_unavailable_not_a_hang(silent_port: int):
    engine = database_engine(_url(silent_port))
    try:
        with pytest.raises(BackendUnavailableError, match="Project database is unreachable"):
            database_revisions(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("message", "unreachable"),
    [
        ('connection failed: connection to server at "127.0.0.1", port 9 failed: refused', True),
        ("consuming input failed: server closed the connection unexpectedly", True),
        ("connection timeout expired", True),
        ("the connection is lost", True),
        ("terminating connection due to administrator command", True),
        ("unable to open database file", True),
        ('relation "hokusai_api_keys" does not exist', False),
        ("duplicate key value violates unique constraint", False),
    ],
)
def test_unreachable_is_told_from_refused(message: str, unreachable: bool):
    error = sa.exc.OperationalError("SELECT 1", {}, Exception(message))
    assert is_unreachable(error) is unreachable
