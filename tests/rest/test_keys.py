"""API keys: creation, scopes, revocation, hash-only storage, throttled bookkeeping, the CLI."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hokusai.auth.keys import ApiKey, ApiKeyStore, scope_allows
from hokusai.auth.tables import api_keys
from hokusai.cli.main import app
from hokusai.config import get_settings
from hokusai.db import VERSION_TABLE, open_database
from hokusai.errors import (
    ApiKeyNotFoundError,
    InvalidApiKeyNameError,
    InvalidScopeError,
    NotFoundError,
    ValidationError,
)
from tests.webhooks.pg import temporary_database

runner = CliRunner()
KEY_SHAPE = r"hk_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}"


class FakeClock:
    """Epoch seconds that move only when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "hokusai.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[sa.Engine]:
    engine = open_database(f"sqlite:///{db_path}")
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: sa.Engine, clock: FakeClock) -> ApiKeyStore:
    return ApiKeyStore(engine, clock=clock)


def _updates(engine: sa.Engine) -> list[str]:
    """Every UPDATE the engine sends from now on."""
    seen: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _record(_conn, _cursor, statement, _params, _context, _many):
        if statement.lstrip().upper().startswith("UPDATE"):
            seen.append(statement)

    return seen


def test_create_returns_the_key_once_and_stores_its_metadata(store: ApiKeyStore, clock):
    key, plaintext = store.create(name="ci-bot", scope="write")
    assert isinstance(key, ApiKey)
    assert key.name == "ci-bot" and key.scope == "write"
    assert key.created_at == clock.now and key.last_used_at is None and key.revoked_at is None
    assert key.active
    assert re.fullmatch(KEY_SHAPE, plaintext)
    assert plaintext.startswith(f"hk_{key.id}_")
    assert store.list() == [key]
    assert store.get(key.id) == key
    public = key.public()
    assert set(public) == {"id", "name", "scope", "created_at", "last_used_at", "revoked_at"}
    assert plaintext not in json.dumps(public)


def test_every_key_is_different(store: ApiKeyStore):
    made = [store.create(name=f"k{i}", scope="read") for i in range(20)]
    assert len({key.id for key, _ in made}) == 20
    assert len({plaintext for _, plaintext in made}) == 20


def test_authenticate_returns_the_key(store: ApiKeyStore, clock):
    key, plaintext = store.create(name="deploy", scope="admin")
    clock.advance(5)
    found = store.authenticate(plaintext)
    assert found is not None
    assert (found.id, found.name, found.scope) == (key.id, "deploy", "admin")
    assert found.last_used_at == clock.now
    assert store.get(key.id).last_used_at == clock.now


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "hk_",
        "Bearer hk_",
        "not-a-key",
        "hk_" + "a" * 12,
        "hk_" + "a" * 12 + "_" + "b" * 42,
        "hk_" + "a" * 12 + "_" + "b" * 44,
        "hk_" + "a" * 11 + "_" + "b" * 44,
        "hk_" + "a-" * 6 + "_" + "b" * 43,
        "HK_" + "a" * 12 + "_" + "b" * 43,
        "hk_" + "a" * 12 + "_" + "b" * 42 + "=",
        "hk_" + "a" * 12 + "_" + "b" * 42 + "\n",
    ],
)
def test_malformed_keys_are_refused(store: ApiKeyStore, presented: str):
    store.create(name="k", scope="read")
    assert store.authenticate(presented) is None


def test_non_string_keys_are_refused(store: ApiKeyStore):
    assert store.authenticate(None) is None  # type: ignore[arg-type]
    assert store.authenticate(b"hk_x") is None  # type: ignore[arg-type]


def test_unknown_and_tampered_keys_are_refused(store: ApiKeyStore):
    key, plaintext = store.create(name="k", scope="read")
    last = plaintext[-1]
    tampered = plaintext[:-1] + ("A" if last != "A" else "B")
    assert store.authenticate(tampered) is None
    other_id = "Z" * 12 if key.id != "Z" * 12 else "Y" * 12
    assert store.authenticate(plaintext.replace(key.id, other_id)) is None
    assert store.get(key.id).last_used_at is None  # a failed check records no use


def test_revoked_keys_are_refused_and_revoking_again_changes_nothing(store: ApiKeyStore, clock):
    key, plaintext = store.create(name="old", scope="write")
    assert store.authenticate(plaintext) is not None
    clock.advance(10)
    revoked = store.revoke(key.id)
    assert revoked.revoked_at == clock.now and not revoked.active
    assert store.authenticate(plaintext) is None
    clock.advance(10)
    assert store.revoke(key.id).revoked_at == revoked.revoked_at
    assert [k.id for k in store.list()] == [key.id]  # revoked keys stay listed


def test_revoking_an_unknown_key_is_not_found(store: ApiKeyStore):
    with pytest.raises(ApiKeyNotFoundError, match="No API key 'nope'") as info:
        store.revoke("nope")
    assert info.value.code == "api_key_not_found"
    assert isinstance(info.value, NotFoundError)
    with pytest.raises(ApiKeyNotFoundError, match="No API key 'nope'"):
        store.get("nope")


def test_count_active(store: ApiKeyStore):
    assert store.count_active() == 0
    first, _ = store.create(name="a", scope="read")
    store.create(name="b", scope="admin")
    assert store.count_active() == 2
    store.revoke(first.id)
    assert store.count_active() == 1


def test_count_active_of_one_scope(store: ApiKeyStore):
    store.create(name="r", scope="read")
    admin, _ = store.create(name="a", scope="admin")
    assert store.count_active(scope="admin") == 1
    assert store.count_active(scope="write") == 0
    store.revoke(admin.id)
    assert store.count_active(scope="admin") == 0
    with pytest.raises(InvalidScopeError):
        store.count_active(scope="root")


def test_create_first_only_on_a_brand_new_table(store: ApiKeyStore):
    created = store.create_first(name="bootstrap-admin", scope="admin")
    assert created is not None
    key, plaintext = created
    assert store.authenticate(plaintext) is not None and key.scope == "admin"
    assert store.create_first(name="again", scope="admin") is None
    store.revoke(key.id)  # revoked keys count: the table is not new any more
    assert store.create_first(name="again", scope="admin") is None
    assert [k.id for k in store.list()] == [key.id]


def test_list_is_oldest_first(store: ApiKeyStore, clock):
    names = ["one", "two", "three"]
    for name in names:
        store.create(name=name, scope="read")
        clock.advance(1)
    assert [k.name for k in store.list()] == names


SCOPE_MATRIX = [
    ("read", "read", True),
    ("read", "write", False),
    ("read", "admin", False),
    ("write", "read", True),
    ("write", "write", True),
    ("write", "admin", False),
    ("admin", "read", True),
    ("admin", "write", True),
    ("admin", "admin", True),
]


@pytest.mark.parametrize(("granted", "needed", "allowed"), SCOPE_MATRIX)
def test_scope_matrix(granted: str, needed: str, allowed: bool):
    assert scope_allows(granted, needed) is allowed


@pytest.mark.parametrize("granted", ["", "ADMIN", "owner", "read write"])
def test_unknown_granted_scope_allows_nothing(granted: str):
    assert not any(scope_allows(granted, needed) for needed in ("read", "write", "admin"))


def test_unknown_needed_scope_is_a_bug_in_the_caller():
    with pytest.raises(ValueError, match="Unknown scope 'wirte'"):
        scope_allows("admin", "wirte")


@pytest.mark.parametrize("scope", ["read", "write", "admin"])
def test_keys_carry_their_scope_through_authentication(store: ApiKeyStore, scope: str):
    _, plaintext = store.create(name=f"{scope}-key", scope=scope)
    found = store.authenticate(plaintext)
    assert found is not None and found.scope == scope


@pytest.mark.parametrize("name", ["a", "ci-bot", "Deploy key 1.2_x", "x" * 64])
def test_valid_names(store: ApiKeyStore, name: str):
    key, _ = store.create(name=name, scope="read")
    assert key.name == name


@pytest.mark.parametrize(
    "name", ["", "x" * 65, "bad/name", " lead", "trail ", "ünïcode", "a\nb", "tab\there", None]
)
def test_invalid_names_are_refused_and_nothing_is_written(store: ApiKeyStore, name):
    with pytest.raises(InvalidApiKeyNameError, match="Invalid API key name") as info:
        store.create(name=name, scope="read")
    assert info.value.code == "invalid_api_key_name"
    assert isinstance(info.value, ValidationError) and isinstance(info.value, ValueError)
    assert store.list() == []


@pytest.mark.parametrize("scope", ["", "READ", "owner", "read,write", None])
def test_invalid_scopes_are_refused_and_nothing_is_written(store: ApiKeyStore, scope):
    with pytest.raises(InvalidScopeError, match="expected one of read, write, admin") as info:
        store.create(name="k", scope=scope)
    assert info.value.code == "invalid_scope"
    assert store.list() == []


def test_only_the_hash_is_stored(store: ApiKeyStore, engine: sa.Engine, db_path: Path):
    key, plaintext = store.create(name="secretive", scope="admin")
    assert store.authenticate(plaintext) is not None
    with engine.connect() as conn:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key.id)).one()
    assert row.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert row.scopes == "admin"
    for value in row:
        assert plaintext not in str(value)
    engine.dispose()
    secret = plaintext.split("_", 2)[2].encode()
    files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
    assert files and any(p.stat().st_size for p in files)
    for path in files:  # the database and its WAL: the secret is nowhere on disk
        content = path.read_bytes()
        assert plaintext.encode() not in content
        assert secret not in content
    assert row.key_hash.encode() in b"".join(p.read_bytes() for p in files)


def test_keys_are_never_logged(store: ApiKeyStore, clock, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    key, plaintext = store.create(name="quiet", scope="write")
    store.authenticate(plaintext)
    store.authenticate(plaintext[:-1] + "?")
    store.revoke(key.id)
    assert key.id in caplog.text  # the id is what a person searches for
    assert plaintext not in caplog.text
    assert plaintext.split("_", 2)[2] not in caplog.text


def test_last_used_is_written_at_most_once_a_minute(store: ApiKeyStore, engine, clock):
    key, plaintext = store.create(name="busy", scope="read")
    updates = _updates(engine)
    start = clock.now
    for _ in range(100):
        found = store.authenticate(plaintext)
        assert found is not None and found.last_used_at == start
        clock.advance(0.5)  # 50 s in all
    assert len(updates) == 1
    assert store.get(key.id).last_used_at == start
    clock.now = start + 59.9
    assert store.authenticate(plaintext).last_used_at == start  # type: ignore[union-attr]
    assert len(updates) == 1
    clock.now = start + 60
    assert store.authenticate(plaintext).last_used_at == start + 60  # type: ignore[union-attr]
    assert store.get(key.id).last_used_at == start + 60
    assert len(updates) == 2


def test_replicas_racing_on_a_stale_key_write_last_used_once(engine, clock):
    first = ApiKeyStore(engine, clock=clock)
    key, plaintext = first.create(name="shared", scope="read")
    assert first.authenticate(plaintext) is not None
    clock.advance(120)
    stale = first.get(key.id)
    assert first.authenticate(plaintext).last_used_at == clock.now  # type: ignore[union-attr]
    # A second replica read the row before the first wrote it: its conditional UPDATE matches
    # nothing, so the stored value stays the first replica's.
    second = ApiKeyStore(engine, clock=FakeClock(clock.now + 1))
    second._mark_used(stale)
    assert first.get(key.id).last_used_at == clock.now


# The command line ------------------------------------------------------------------------------


def _cli_store() -> ApiKeyStore:
    return ApiKeyStore(open_database(get_settings().resolved_database_url))


def test_cli_create_list_revoke_json():
    created = runner.invoke(app, ["keys", "create", "--scope", "write", "--name", "ci", "--json"])
    assert created.exit_code == 0, created.output
    made = json.loads(created.stdout)
    assert re.fullmatch(KEY_SHAPE, made["key"])
    assert made["scope"] == "write" and made["name"] == "ci"
    authenticated = _cli_store().authenticate(made["key"])
    assert authenticated is not None and authenticated.id == made["id"]

    listed = runner.invoke(app, ["keys", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [k["id"] for k in json.loads(listed.stdout)] == [made["id"]]
    assert made["key"] not in listed.stdout
    assert "hash" not in listed.stdout

    revoked = runner.invoke(app, ["keys", "revoke", made["id"], "--json"])
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout)["revoked_at"] is not None
    assert _cli_store().authenticate(made["key"]) is None


def test_cli_create_prints_the_key_once_on_its_own_line():
    created = runner.invoke(app, ["keys", "create", "--scope", "admin", "--name", "root key"])
    assert created.exit_code == 0, created.output
    assert "shown once" in created.stdout
    lines = [line for line in created.stdout.splitlines() if re.fullmatch(KEY_SHAPE, line)]
    assert len(lines) == 1
    plaintext = lines[0]
    assert _cli_store().authenticate(plaintext) is not None

    table = runner.invoke(app, ["keys", "list"])
    assert table.exit_code == 0, table.output
    assert "root key" in table.stdout and "admin" in table.stdout and "active" in table.stdout
    assert plaintext not in table.stdout

    key_id = plaintext[3:15]
    revoked = runner.invoke(app, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked API key {key_id}" in revoked.stdout
    table = runner.invoke(app, ["keys", "list"])
    assert "revoked" in table.stdout


def test_cli_errors_are_the_projects():
    bad_scope = runner.invoke(app, ["keys", "create", "--scope", "root", "--name", "x"])
    assert bad_scope.exit_code != 0
    assert isinstance(bad_scope.exception, InvalidScopeError)
    missing = runner.invoke(app, ["keys", "revoke", "AAAAAAAAAAAA"])
    assert missing.exit_code != 0
    assert isinstance(missing.exception, ApiKeyNotFoundError)
    assert missing.exception.code == "api_key_not_found"


def test_cli_main_turns_errors_into_one_line(monkeypatch, capsys):
    from hokusai.cli import main as cli_main

    monkeypatch.setattr("sys.argv", ["hokusai", "keys", "revoke", "AAAAAAAAAAAA"])
    with pytest.raises(SystemExit) as info:
        cli_main.main()
    assert info.value.code == 1
    assert capsys.readouterr().err.strip() == "error[api_key_not_found]: No API key 'AAAAAAAAAAAA'."


# The same store on PostgreSQL ------------------------------------------------------------------


def test_store_on_postgresql(clock):
    with temporary_database() as url:
        engine = open_database(url)
        try:
            store = ApiKeyStore(engine, clock=clock)
            key, plaintext = store.create(name="pg key", scope="write")
            updates = _updates(engine)
            found = store.authenticate(plaintext)
            assert found is not None and found.id == key.id and found.last_used_at == clock.now
            clock.advance(30)
            assert store.authenticate(plaintext).last_used_at == found.last_used_at  # type: ignore[union-attr]
            assert len(updates) == 1
            assert store.authenticate(plaintext[:-1] + "?") is None
            assert store.count_active() == 1
            with engine.connect() as conn:
                stored = conn.execute(sa.select(api_keys.c.key_hash)).scalar_one()
            assert stored == hashlib.sha256(plaintext.encode()).hexdigest()
            clock.advance(1)
            assert store.revoke(key.id).revoked_at == clock.now
            assert store.authenticate(plaintext) is None
            assert store.count_active() == 0
            assert [k.id for k in store.list()] == [key.id]
            with pytest.raises(ApiKeyNotFoundError, match="No API key"):
                store.revoke("missing")
        finally:
            engine.dispose()


# The migration ---------------------------------------------------------------------------------


def _alembic(engine: sa.Engine, action: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    import hokusai.db

    config = Config()
    config.set_main_option("script_location", str(Path(hokusai.db.__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def test_migration_upgrades_a_webhooks_only_database_and_downgrades(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = sa.create_engine(url)
    _alembic(old, "upgrade", "0001")  # a project database from before API keys
    assert "api_keys" not in sa.inspect(old).get_table_names()
    old.dispose()

    engine = open_database(url)
    assert "hokusai_api_keys" in sa.inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalar() == "0009"
    ApiKeyStore(engine).create(name="k", scope="read")
    _alembic(engine, "downgrade", "0001")
    names = sa.inspect(engine).get_table_names()
    assert "api_keys" not in names and "hokusai_api_keys" not in names
    assert "webhook_endpoints" in names  # 0006 undone: the names 0001 made
    engine.dispose()
