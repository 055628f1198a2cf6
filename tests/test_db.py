"""The project database's migrations: serialised across processes, skipped when current,
optional per process, in their own version table (issue #16).

Every test runs on a SQLite file and on a throw-away PostgreSQL database.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, event
from typer.testing import CliRunner

import hokusai.db
from hokusai.cli.main import app
from hokusai.db import (
    VERSION_TABLE,
    database_engine,
    database_revisions,
    open_database,
    upgrade_database,
)
from hokusai.errors import BackendError, DatabaseNotMigratedError
from tests.db_race import Racers, racers
from tests.webhooks import pg

HEAD = "0009"
SCHEMA = {
    "hokusai_api_keys",
    "hokusai_webhook_attempts",
    "hokusai_webhook_deliveries",
    "hokusai_webhook_endpoints",
    "hokusai_webhook_events",
    "hokusai_reconciler_cursors",
    "hokusai_reconciler_pending",
    "hokusai_index_versions",
    "hokusai_index_aliases",
    "hokusai_index_models",
    "hokusai_index_state",
    "hokusai_verification_jobs",
    "hokusai_console_secrets",
    "hokusai_console_revoked_sessions",
    VERSION_TABLE,
}
BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file that does not exist yet, or a PostgreSQL one."""
    if backend == "postgresql":
        with pg.temporary_database() as url:
            yield url
    else:
        folder.mkdir(parents=True, exist_ok=True)
        with nullcontext(f"sqlite:///{folder / f'hokusai-{time.monotonic_ns()}.db'}") as url:
            yield url


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as found:
        yield found


@pytest.fixture(autouse=True)
def _first_open_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees ``open_database`` as a newly started process would."""
    monkeypatch.setattr(hokusai.db, "_MIGRATED", set())


def _reopen(monkeypatch: pytest.MonkeyPatch, url: str, **kwargs: Any) -> Engine:
    """``open_database`` as another process, starting later, would run it."""
    monkeypatch.setattr(hokusai.db, "_MIGRATED", set())
    return open_database(url, **kwargs)


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _ddl(seen: list[str]) -> list[str]:
    return [s for s in seen if re.match(r"(CREATE|ALTER|DROP)\b", s, re.I)]


def _locks(seen: list[str]) -> list[str]:
    return [s for s in seen if "pg_advisory" in s or s.upper() == "BEGIN IMMEDIATE"]


def _writes(seen: list[str]) -> list[str]:
    return [s for s in seen if re.match(r"(INSERT|UPDATE|DELETE)\b", s, re.I)]


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _rows(url: str, table: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.exec_driver_sql(f"SELECT version_num FROM {table}").scalars())
    finally:
        engine.dispose()


def _alembic(url: str, revision: str, *, version_table: str = VERSION_TABLE) -> None:
    """Run Hokusai's migrations up to ``revision`` (into another version table if asked)."""
    from alembic import command

    engine = database_engine(url)
    config = hokusai.db._config()
    saved = hokusai.db.VERSION_TABLE
    hokusai.db.VERSION_TABLE = version_table  # env.py reads it when it runs
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        hokusai.db.VERSION_TABLE = saved
        engine.dispose()


def _execute(url: str, *sql: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in sql:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


# A fresh database, and the fast path ------------------------------------------------------------


def test_a_fresh_database_is_migrated_into_hokusais_own_version_table(url: str):
    open_database(url).dispose()
    assert _tables(url) == SCHEMA  # no alembic_version: that name is MLflow's
    assert _rows(url, VERSION_TABLE) == [HEAD]
    revisions = database_revisions(database_engine(url))
    assert (revisions.current, revisions.head, revisions.up_to_date) == (HEAD, HEAD, True)


def test_a_current_schema_is_opened_with_one_read_no_lock_and_no_ddl(
    url: str, monkeypatch: pytest.MonkeyPatch
):
    with statements() as first:
        open_database(url).dispose()
    assert _ddl(first) and _locks(first)  # what migrating looks like to the listener

    with statements() as again:
        _reopen(monkeypatch, url).dispose()
    assert any(VERSION_TABLE in s for s in again)  # it did read the revision...
    assert _ddl(again) == [] and _locks(again) == [] and _writes(again) == []  # ...and only that


def test_the_revision_is_read_again_under_the_lock(url: str):
    """A process that found the schema behind, then waited for the lock while another
    migrated, finds it at head under the lock and changes nothing."""
    open_database(url).dispose()
    engine = database_engine(url)
    with statements() as seen:
        found = upgrade_database(engine)
    engine.dispose()
    assert found.up_to_date
    assert _locks(seen) and _ddl(seen) == [] and _writes(seen) == []


def test_an_older_schema_is_upgraded(url: str):
    _alembic(url, "0001")
    assert "api_keys" not in _tables(url)
    found = upgrade_database(database_engine(url))
    assert (found.current, found.up_to_date) == ("0001", False)
    assert _tables(url) == SCHEMA and _rows(url, VERSION_TABLE) == [HEAD]


def test_a_schema_from_a_newer_hokusai_is_refused(url: str, monkeypatch: pytest.MonkeyPatch):
    open_database(url).dispose()
    _execute(url, f"UPDATE {VERSION_TABLE} SET version_num = '0099'")
    with pytest.raises(BackendError, match="0099.*does not know"):
        _reopen(monkeypatch, url)


# Auto-migration off ------------------------------------------------------------------------------


def test_with_auto_migrate_off_a_behind_schema_is_a_typed_error(
    url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("HOKUSAI_DATABASE_AUTO_MIGRATE", "false")
    with pytest.raises(DatabaseNotMigratedError, match=r"empty.*run `hokusai db upgrade`"):
        open_database(url)
    assert _tables(url) == set()  # not even the version table

    _alembic(url, "0001")
    with pytest.raises(
        DatabaseNotMigratedError, match=f"at revision 0001, this Hokusai needs {HEAD}"
    ):
        open_database(url)

    upgrade_database(database_engine(url))  # the deployment step: `hokusai db upgrade`
    open_database(url).dispose()  # still off: a current schema opens


def test_migrate_false_overrides_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with pytest.raises(DatabaseNotMigratedError):
        open_database(url, migrate=False)
    monkeypatch.setenv("HOKUSAI_DATABASE_AUTO_MIGRATE", "false")
    open_database(url, migrate=True).dispose()
    assert _rows(url, VERSION_TABLE) == [HEAD]


def test_the_setting_is_declared_with_a_default_of_on(monkeypatch: pytest.MonkeyPatch):
    from hokusai.config import Settings, get_settings

    assert Settings.model_fields["database_auto_migrate"].description
    assert get_settings().database_auto_migrate is True
    monkeypatch.setenv("HOKUSAI_DATABASE_AUTO_MIGRATE", "off")
    assert get_settings().database_auto_migrate is False


# Databases made before the version table was renamed --------------------------------------------


@pytest.mark.parametrize("revision", ["0001", HEAD])
def test_hokusais_revision_in_alembic_version_is_adopted(url: str, revision: str):
    _alembic(url, revision, version_table="alembic_version")  # what the earlier code left
    assert _rows(url, "alembic_version") == [revision]
    revisions = database_revisions(database_engine(url))
    assert (revisions.current, revisions.legacy, revisions.up_to_date) == (None, revision, False)

    open_database(url).dispose()
    assert _tables(url) == SCHEMA  # alembic_version held only Hokusai's revision: dropped
    assert _rows(url, VERSION_TABLE) == [HEAD]


def test_an_alembic_version_with_other_revisions_is_left_alone(
    url: str, caplog: pytest.LogCaptureFixture
):
    _alembic(url, HEAD, version_table="alembic_version")
    _execute(url, "INSERT INTO alembic_version (version_num) VALUES ('1a0cddfcaa16')")
    with caplog.at_level(logging.WARNING, logger="hokusai.db"):
        open_database(url).dispose()
    assert _rows(url, VERSION_TABLE) == [HEAD]
    assert sorted(_rows(url, "alembic_version")) == [HEAD, "1a0cddfcaa16"]
    assert "left as it is" in caplog.text


def test_an_alembic_version_of_someone_else_is_never_touched(url: str):
    """MLflow's history (here one of its revision ids) is not Hokusai's to adopt or drop."""
    _execute(
        url,
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
        "INSERT INTO alembic_version (version_num) VALUES ('1a0cddfcaa16')",
    )
    assert database_revisions(database_engine(url)).legacy is None
    open_database(url).dispose()
    assert _rows(url, "alembic_version") == ["1a0cddfcaa16"]
    assert _rows(url, VERSION_TABLE) == [HEAD]


def test_a_database_made_by_the_earlier_code_keeps_its_data(url: str):
    """Hokusai's revision in ``alembic_version`` and its events table named ``webhook_events``
    (the name MLflow 3 uses too), as the code before both renames left them."""
    _alembic(url, "0002", version_table="alembic_version")
    _execute(
        url,
        "ALTER TABLE hokusai_webhook_events RENAME TO webhook_events",
        "INSERT INTO webhook_endpoints VALUES ('ep', 'https://x', 's', '[]', NULL, TRUE, NULL, "
        "'api', 1, 1)",
        "INSERT INTO webhook_events VALUES ('ev', 'model_registered', 'k', 'm', '1', '{}', 1)",
        "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, state, attempts, "
        "next_attempt_at, created_at, updated_at) VALUES ('d', 'ev', 'ep', 'pending', 0, 1, 1, 1)",
    )
    open_database(url).dispose()
    assert _tables(url) == SCHEMA
    assert _rows(url, VERSION_TABLE) == [HEAD]
    engine = sa.create_engine(url)
    try:
        (foreign_key,) = [
            fk
            for fk in sa.inspect(engine).get_foreign_keys("hokusai_webhook_deliveries")
            if fk["constrained_columns"] == ["event_id"]
        ]
        assert foreign_key["referred_table"] == "hokusai_webhook_events"
        with engine.connect() as conn:
            joined = conn.exec_driver_sql(
                "SELECT e.dedupe_key FROM hokusai_webhook_deliveries d "
                "JOIN hokusai_webhook_events e ON e.id = d.event_id"
            ).scalar_one()
        assert joined == "k"
    finally:
        engine.dispose()


# Every name prefixed (0006) ----------------------------------------------------------------------


def _relation_names(url: str) -> set[str]:
    """Every table and index (and on PostgreSQL every sequence and constraint) by name."""
    engine = sa.create_engine(url)
    try:
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                relations = conn.exec_driver_sql(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                    "AND c.relkind IN ('r', 'i', 'S')"
                ).scalars()
                constraints = conn.exec_driver_sql(
                    "SELECT c.conname FROM pg_constraint c JOIN pg_namespace n "
                    "ON n.oid = c.connamespace WHERE n.nspname = 'public'"
                ).scalars()
                return {*relations, *constraints}
        inspector = sa.inspect(engine)
        tables = set(inspector.get_table_names())
        indexes = {i["name"] for t in tables for i in inspector.get_indexes(t) if i["name"]}
        return tables | indexes
    finally:
        engine.dispose()


def test_every_name_in_a_fresh_schema_is_prefixed(url: str):
    open_database(url).dispose()
    names = _relation_names(url)
    assert names >= SCHEMA
    assert sorted(name for name in names if not name.startswith("hokusai_")) == []


def test_0006_renames_the_unprefixed_tables_and_keeps_their_rows(url: str):
    _alembic(url, "0005")
    _execute(
        url,
        "INSERT INTO webhook_endpoints VALUES ('ep', 'https://x', 's', '[]', NULL, TRUE, NULL, "
        "'api', 1, 1)",
        "INSERT INTO hokusai_webhook_events VALUES ('ev', 'model_registered', 'k', 'm', '1', "
        "'{}', 1)",
        "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, state, attempts, "
        "next_attempt_at, created_at, updated_at) VALUES ('d', 'ev', 'ep', 'pending', 1, 1, 1, 1)",
        "INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, latency_ms, "
        "worker) VALUES ('d', 1, 500, 2.5, 'w')",
        "INSERT INTO api_keys VALUES ('key1', 'ci', 'hash', 'read', 1, NULL, NULL)",
    )
    found = upgrade_database(database_engine(url))
    assert found.current == "0005"
    assert _tables(url) == SCHEMA
    assert sorted(n for n in _relation_names(url) if not n.startswith("hokusai_")) == []

    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        referred = {
            (table, fk["referred_table"])
            for table in ("hokusai_webhook_deliveries", "hokusai_webhook_attempts")
            for fk in inspector.get_foreign_keys(table)
        }
        assert referred == {
            ("hokusai_webhook_deliveries", "hokusai_webhook_events"),
            ("hokusai_webhook_deliveries", "hokusai_webhook_endpoints"),
            ("hokusai_webhook_attempts", "hokusai_webhook_deliveries"),
        }
        with engine.begin() as conn:
            joined = conn.exec_driver_sql(
                "SELECT p.url, e.dedupe_key, a.status_code FROM hokusai_webhook_attempts a "
                "JOIN hokusai_webhook_deliveries d ON d.id = a.delivery_id "
                "JOIN hokusai_webhook_events e ON e.id = d.event_id "
                "JOIN hokusai_webhook_endpoints p ON p.id = d.endpoint_id"
            ).one()
            assert tuple(joined) == ("https://x", "k", 500)
            assert conn.exec_driver_sql("SELECT name FROM hokusai_api_keys").scalar() == "ci"
            # The attempts' id sequence carries on after the rename.
            conn.exec_driver_sql(
                "INSERT INTO hokusai_webhook_attempts (delivery_id, attempted_at, latency_ms, "
                "worker) VALUES ('d', 2, 1.0, 'w')"
            )
            ids = conn.exec_driver_sql("SELECT id FROM hokusai_webhook_attempts ORDER BY id")
            assert list(ids.scalars()) == [1, 2]
            # The unique (event, endpoint) constraint survived the renames.
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                conn.exec_driver_sql(
                    "INSERT INTO hokusai_webhook_deliveries (id, event_id, endpoint_id, "
                    "state, attempts, next_attempt_at, created_at, updated_at) "
                    "VALUES ('d2', 'ev', 'ep', 'pending', 0, 1, 1, 1)"
                )
    finally:
        engine.dispose()


def test_0006_downgrades_to_the_old_names(url: str):
    from alembic import command

    open_database(url).dispose()
    engine = database_engine(url)
    try:
        with engine.begin() as connection:
            config = hokusai.db._config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0005")
    finally:
        engine.dispose()
    tables = _tables(url)
    assert {"webhook_endpoints", "webhook_deliveries", "webhook_attempts", "api_keys"} <= tables
    assert "ix_deliveries_due" in _relation_names(url)
    upgrade_database(database_engine(url))  # and up again
    assert _tables(url) == SCHEMA


def test_0007_adds_the_verification_jobs_and_downgrades(url: str):
    from alembic import command

    _alembic(url, "0006")
    assert "hokusai_verification_jobs" not in _tables(url)
    _execute(url, "INSERT INTO hokusai_api_keys VALUES ('key1', 'ci', 'h', 'read', 1, NULL, NULL)")
    found = upgrade_database(database_engine(url))
    assert found.current == "0006"
    assert _tables(url) == SCHEMA
    names = _relation_names(url)
    assert {"hokusai_verification_jobs_due", "hokusai_verification_jobs_candidate"} <= names
    _execute(
        url,
        "INSERT INTO hokusai_verification_jobs (id, candidate_id, benchmark, threshold_bps, "
        "seed, n_boot, status, attempts, created_at) VALUES ('ver_1', 'hokusai_x_improved/1', "
        "'b', 100, 4294967295, 2000, 'queued', 0, 1.5)",
    )
    engine = database_engine(url)
    try:
        with engine.begin() as connection:
            config = hokusai.db._config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0006")
    finally:
        engine.dispose()
    assert "hokusai_verification_jobs" not in _tables(url)
    assert not {n for n in _relation_names(url) if n.startswith("hokusai_verification")}
    assert _rows(url, VERSION_TABLE) == ["0006"]
    upgrade_database(database_engine(url))  # and up again, the other rows kept
    assert _tables(url) == SCHEMA
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT name FROM hokusai_api_keys").scalar() == "ci"
    finally:
        engine.dispose()


# Sharing one database with MLflow ----------------------------------------------------------------


def _mlflow(url: str, artifacts: Path) -> str:
    """Open ``url`` as MLflow's tracking store (creating its tables or checking its schema
    revision), write to it, and return MLflow's head revision."""
    from mlflow.store.db.utils import _get_latest_schema_revision
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    try:
        store = SqlAlchemyStore(url, artifacts.as_uri())
        store.create_experiment(f"shared-{time.monotonic_ns()}")
    finally:
        engine = SqlAlchemyStore._engine_map.pop(url, None)
        if engine is not None:
            engine.dispose()
    return str(_get_latest_schema_revision())


@pytest.mark.parametrize("mlflow_first", [True, False], ids=["mlflow-first", "hokusai-first"])
def test_hokusai_and_mlflow_share_one_database(
    url: str, mlflow_first: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from hokusai.auth import ApiKeyStore

    if mlflow_first:
        mlflow_head = _mlflow(url, tmp_path / "artifacts")
    engine = open_database(url)
    ApiKeyStore(engine).create(name="shared", scope="read")
    engine.dispose()
    mlflow_head = _mlflow(url, tmp_path / "artifacts")  # creates, or re-checks its revision

    assert _rows(url, "alembic_version") == [mlflow_head]  # MLflow's history, untouched
    assert _rows(url, VERSION_TABLE) == [HEAD]
    assert SCHEMA | {"alembic_version", "experiments", "webhook_events"} <= _tables(url)
    with statements() as seen:
        _reopen(monkeypatch, url).dispose()
    assert _ddl(seen) == [] and _locks(seen) == []


# Processes starting together ---------------------------------------------------------------------

PROCESSES = 8
ROUNDS = 20


@pytest.fixture(scope="module")
def racing_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Racers]:
    with racers(PROCESSES) as found:
        # Warm up (imports, the migration scripts) so the rounds really start together.
        warm_up = f"sqlite:///{tmp_path_factory.mktemp('warm') / 'w.db'}"
        assert found.race(warm_up) == [None] * PROCESSES
        yield found


@pytest.mark.parametrize("backend", BACKENDS)
def test_processes_opening_a_fresh_database_at_once_migrate_it_once(
    racing_processes: Racers, backend: str, tmp_path: Path
):
    """8 separate processes released by one barrier open the same new database, 20 times."""
    for round_ in range(ROUNDS):
        with fresh_database(backend, tmp_path) as url:
            results = racing_processes.race(url)
            failures = [result for result in results if result is not None]
            assert failures == [], f"round {round_}: {failures[0]}"
            assert _tables(url) == SCHEMA
            assert _rows(url, VERSION_TABLE) == [HEAD]


# The CLI -----------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_db_current_and_upgrade(tmp_path: Path):
    home = tmp_path / "home"
    current = runner.invoke(app, ["db", "current"])
    assert current.exit_code == 0, current.output
    assert "none (empty)" in current.stdout and "behind: run `hokusai db upgrade`" in current.stdout

    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.stdout.strip().endswith(f"upgraded from empty to {HEAD}")
    assert _rows(f"sqlite:///{home / 'hokusai.db'}", VERSION_TABLE) == [HEAD]

    again = runner.invoke(app, ["db", "upgrade"])
    assert again.stdout.strip().endswith(f"already at head {HEAD}")
    state = json.loads(runner.invoke(app, ["db", "current", "--json"]).stdout)
    assert state["current"] == state["head"] == HEAD and state["up_to_date"] is True


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    from hokusai.cli import main as cli_main

    monkeypatch.setattr("sys.argv", ["hokusai", *args])
    with pytest.raises(SystemExit) as info:
        cli_main.main()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    return err.strip()


def test_cli_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("HOKUSAI_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    assert _main(monkeypatch, capsys, "db", "upgrade").startswith(
        "error[backend_unavailable]: Project database is unreachable"
    )
    assert _main(monkeypatch, capsys, "db", "current").startswith("error[backend_unavailable]")


def test_a_replica_that_may_not_migrate_says_what_to_run(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
):
    monkeypatch.setenv("HOKUSAI_DATABASE_AUTO_MIGRATE", "false")
    err = _main(monkeypatch, capsys, "keys", "list")
    assert err.startswith("error[database_not_migrated]: ")
    assert err.endswith("run `hokusai db upgrade`.")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["keys", "list"]).exit_code == 0


# The PostgreSQL fixture under CI -----------------------------------------------------------------


def test_without_postgresql_tests_skip_locally_and_fail_under_ci(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(pg, "ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:1/postgres")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception), pg.temporary_database():
        pass
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true"), pg.temporary_database():
        pass


def test_0009_adds_the_revoked_console_sessions_and_downgrades(url: str):
    from alembic import command

    _alembic(url, "0008")
    assert "hokusai_console_revoked_sessions" not in _tables(url)
    _execute(url, "INSERT INTO hokusai_console_secrets VALUES ('session', 's3cret', 1.5)")
    found = upgrade_database(database_engine(url))
    assert found.current == "0008"
    assert _tables(url) == SCHEMA
    assert "hokusai_console_revoked_sessions_expiry" in _relation_names(url)
    _execute(url, "INSERT INTO hokusai_console_revoked_sessions VALUES ('n1', 2.5)")
    with pytest.raises(sa.exc.IntegrityError):  # one row per nonce
        _execute(url, "INSERT INTO hokusai_console_revoked_sessions VALUES ('n1', 3.5)")
    engine = database_engine(url)
    try:
        with engine.begin() as connection:
            config = hokusai.db._config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0008")
    finally:
        engine.dispose()
    assert "hokusai_console_revoked_sessions" not in _tables(url)
    assert "hokusai_console_revoked_sessions_expiry" not in _relation_names(url)
    assert _rows(url, VERSION_TABLE) == ["0008"]
    upgrade_database(database_engine(url))  # and up again, the secret kept
    assert _tables(url) == SCHEMA
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            value = conn.exec_driver_sql("SELECT value FROM hokusai_console_secrets").scalar()
            assert value == "s3cret"
    finally:
        engine.dispose()
