"""``hokusai.db.read_rows``: the hot read paths' one-statement reads on a pooled DBAPI
connection answer exactly what ``Connection.execute`` answers, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hokusai.auth import ApiKeyStore
from hokusai.auth.tables import api_keys
from hokusai.db import open_database, read_rows
from tests.webhooks import pg

BY_SCOPE = (
    sa.select(api_keys.c.id, api_keys.c.name, api_keys.c.scopes, api_keys.c.created_at)
    .where(api_keys.c.scopes == sa.bindparam("scope"))
    .order_by(api_keys.c.name)
)
MISSING = sa.select(sa.table("no_such_table", sa.column("x")).c.x).where(
    sa.literal_column("x") == sa.bindparam("x")
)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "postgresql":
        with pg.temporary_database() as url:
            engine = open_database(url, migrate=True)
            yield engine
            engine.dispose()
    else:
        engine = open_database(f"sqlite:///{tmp_path / 'hokusai.db'}", migrate=True)
        yield engine
        engine.dispose()


def test_rows_equal_connection_execute_field_for_field(engine: sa.Engine) -> None:
    keys = ApiKeyStore(engine)
    for name, scope in (("b", "read"), ("a", "read"), ("c", "admin")):
        keys.create(name=name, scope=scope)
    with engine.connect() as conn:
        expected = conn.execute(BY_SCOPE, {"scope": "read"}).all()
    for _ in range(2):  # compiled once, then reused
        rows = read_rows(engine, BY_SCOPE, {"scope": "read"})
        assert [tuple(r) for r in rows] == [tuple(r) for r in expected]
        assert [r.name for r in rows] == ["a", "b"]
        assert all(isinstance(r.created_at, float) for r in rows)
    assert read_rows(engine, BY_SCOPE, {"scope": "write"}) == []


def test_driver_errors_are_sqlalchemys(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.DBAPIError) as raised:
        read_rows(engine, MISSING, {"x": 1})
    assert "no_such_table" in str(raised.value.orig)
    # The connection went back to the pool usable.
    assert read_rows(engine, BY_SCOPE, {"scope": "read"}) == []
