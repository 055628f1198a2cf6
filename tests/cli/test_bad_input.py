"""Every ``hokusai`` command driven with bad input: a non-zero exit, one ``error[code]: …`` line
on stderr (plus at most one ``hint: …`` line), never a traceback, and nothing written where the
command should have refused first.

The command tree is walked, so a new command gets the generic cases at once (an unknown option,
its required parameters missing, a non-number where a number goes, an unknown sub-command of
each group, its ``--help`` showing flags as flags) and makes
:func:`test_every_command_has_its_own_bad_input_cases` fail until :data:`CASES` has cases for
it. Most cases run in-process through :func:`hokusai.cli.main.main`, the function behind the
``hokusai`` script (same parsing, same error reporting); a representative few run as real
``python -m hokusai.cli.main`` processes.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.main import get_command

from hokusai.cli._errors import run
from hokusai.cli.main import app, main
from hokusai.config import Settings

BAD_KEY = "hk_AbCdEfGhIjKl_" + "x" * 43
GOOD_ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
BAD_CHECKSUM = GOOD_ADDRESS[:-1] + GOOD_ADDRESS[-1].swapcase()  # mixed case, wrong EIP-55
UUID = "m-" + "0" * 32


def _tree() -> tuple[dict[str, Any], list[str]]:
    """Leaf commands by their words (``"models get"``), and the groups' words."""
    leaves: dict[str, Any] = {}
    groups: list[str] = []

    def walk(node: Any, words: tuple[str, ...]) -> None:
        children = getattr(node, "commands", None)
        if children:
            groups.append(" ".join(words))
            for name, child in children.items():
                walk(child, (*words, name))
        else:
            leaves[" ".join(words)] = node

    walk(get_command(app), ())
    return leaves, groups


LEAVES, GROUPS = _tree()


# ---- running a command and judging its failure ------------------------------------------------


@dataclass
class Outcome:
    status: int
    out: str
    err: str


def invoke(capsys: pytest.CaptureFixture[str], args: list[str]) -> Outcome:
    """``hokusai ARGS`` in this process, through ``main()``."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(args)
    captured = capsys.readouterr()
    code = exited.value.code
    return Outcome(code if isinstance(code, int) else 1, captured.out, captured.err)


def assert_refused(outcome: Outcome, codes: str | tuple[str, ...], what: object) -> None:
    """Non-zero exit (2 for usage errors), one error line with one of ``codes``, at most one
    hint line after it, no traceback."""
    codes = (codes,) if isinstance(codes, str) else codes
    shown = f"{what}\n--- stdout\n{outcome.out}\n--- stderr\n{outcome.err}"
    assert "Traceback" not in outcome.out + outcome.err, shown
    lines = [line for line in outcome.err.splitlines() if line.strip()]
    assert lines and len(lines) <= 2, shown
    match = re.fullmatch(r"error\[([a-z_]+)\]: (.+)", lines[0])
    assert match and match.group(1) in codes, shown
    assert len(lines) == 1 or re.fullmatch(r"hint: \S.*", lines[1]), shown
    assert outcome.status == (2 if match.group(1) == "usage" else 1), shown


# ---- places to point commands at ------------------------------------------------------------


@dataclass
class Places:
    """Folders, ports and an API for the cases' ``{placeholders}``."""

    root: Path
    home: Path  # one store shared by the cases that may open it
    corrupt: Path  # mlflow.db and hokusai.db that are not SQLite databases
    file: Path  # a regular file where a folder is expected
    closed: str  # http URL of a port nothing listens on
    silent: str  # http URL of a port that accepts connections and never answers
    api: str = ""
    read_key: str = ""
    write_key: str = ""
    api_settings: Settings | None = None
    count: int = 0

    def fresh(self) -> Path:
        """A folder that does not exist yet (to see that a refusal creates nothing)."""
        self.count += 1
        return self.root / f"fresh-{self.count}"

    def fill(self, text: str, fresh: Path) -> str:
        return text.format(
            home=self.home,
            corrupt=self.corrupt,
            file=self.file,
            closed=self.closed,
            silent=self.silent,
            api=self.api,
            read_key=self.read_key,
            write_key=self.write_key,
            fresh=fresh,
        )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Places]:
    root = tmp_path_factory.mktemp("bad-input")
    corrupt = root / "corrupt"
    corrupt.mkdir()
    for name in ("mlflow.db", "hokusai.db"):
        (corrupt / name).write_bytes(b"this is not an SQLite database\n" * 40)
    (root / "a-file").write_text("not a folder\n")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nothing ever answers
        yield Places(
            root=root,
            home=root / "home",
            corrupt=corrupt,
            file=root / "a-file",
            closed=f"http://127.0.0.1:{_closed_port()}",
            silent=f"http://127.0.0.1:{silent.getsockname()[1]}",
        )


@pytest.fixture(scope="module")
def api(places: Places) -> Iterator[Places]:
    """A real REST API (uvicorn in a thread, real sockets) with a read and a write key."""
    import uvicorn

    from hokusai.rest.app import create_app

    settings = Settings(home=places.root / "api-home", webhook_background=False)
    application = create_app(settings)
    keys = application.state.components.keys
    places.read_key = keys.create(name="read", scope="read")[1]
    places.write_key = keys.create(name="write", scope="write")[1]
    port = _closed_port()
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    places.api = f"http://127.0.0.1:{port}"
    places.api_settings = settings
    try:
        yield places
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(autouse=True)
def _cli_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main()`` sets MLflow's retry variables for its process; give them back afterwards."""
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(name, raising=False)


# ---- what must not have been written ---------------------------------------------------------


def _nothing_created(places: Places, fresh: Path) -> None:
    assert not fresh.exists(), sorted(p.name for p in fresh.rglob("*"))


def _no_keys(places: Places, fresh: Path) -> None:
    from hokusai.auth.keys import ApiKeyStore
    from hokusai.db import open_database

    database = Settings(home=places.home).resolved_database_url
    assert ApiKeyStore(open_database(database)).list() == []


def _webhooks(places: Places) -> Any:
    from hokusai.webhooks import Webhooks

    return Webhooks(Settings(home=places.home, webhook_background=False))


def _no_endpoints(places: Places, fresh: Path) -> None:
    assert _webhooks(places).endpoints.list() == []


def _no_events(places: Places, fresh: Path) -> None:
    import sqlalchemy as sa

    from hokusai.webhooks.tables import events

    with _webhooks(places).outbox.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 0


def _api_store_untouched(places: Places, fresh: Path) -> None:
    _nothing_created(places, fresh)
    from hokusai.services.model_registry import HokusaiModelRegistry

    found, _ = HokusaiModelRegistry(settings=places.api_settings).list_models()
    assert found == []


@dataclass
class Case:
    """``hokusai ARGS`` (``{placeholders}`` filled from :class:`Places`) must fail with one of
    ``codes``; ``fresh`` runs it on a ``--home`` that does not exist yet."""

    args: str
    codes: str | tuple[str, ...]
    fresh: bool = False
    check: Callable[[Places, Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    needs_api: bool = False

    def argv(self, places: Places, fresh: Path) -> list[str]:
        words = [places.fill(word, fresh) for word in self.args.split()]
        words = ["" if word == "''" else word for word in words]
        home = fresh if self.fresh else places.home
        return words if words[0] == "--home" else ["--home", str(home), *words]


NOTHING = {"fresh": True, "check": _nothing_created}
NO_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}

# Domain bad input for every command: unknown ids, malformed values, unreachable servers,
# refused keys, broken stores. Keys are the commands' words.
CASES: dict[str, list[Case]] = {
    "quickstart": [
        Case("quickstart --contributor 0x123", "invalid_contributor", **NOTHING),
        Case(f"quickstart --contributor {BAD_CHECKSUM}", "invalid_contributor", **NOTHING),
        Case("quickstart --model-type Not-A-Type", "invalid_model_type", **NOTHING),
        Case("quickstart --server 127.0.0.1:8000 --api-key k", "validation_error", **NOTHING),
        Case("quickstart --server http://:80 --api-key k", "validation_error", **NOTHING),
        Case("quickstart --server {closed}", "unauthenticated", **NOTHING),
        Case("quickstart --server {closed} --api-key k", "backend_unavailable", **NOTHING),
        Case(
            "quickstart --server {silent} --api-key k --timeout 0.3",
            "backend_unavailable",
            **NOTHING,
        ),
        Case(
            f"quickstart --server {{api}} --api-key {BAD_KEY}",
            "invalid_api_key",
            fresh=True,
            check=_api_store_untouched,
            needs_api=True,
        ),
        Case(
            "quickstart --server {api} --api-key {read_key}",
            "forbidden",
            fresh=True,
            check=_api_store_untouched,
            needs_api=True,
        ),
        Case(
            "quickstart --server {api}/not/the/api --api-key {write_key}",
            "backend_error",
            fresh=True,
            check=_api_store_untouched,
            needs_api=True,
        ),
    ],
    "server": [Case("server --port not-a-port", "usage"), Case("server --workers 0", "usage")],
    "serve": [Case("serve --port not-a-port", "usage"), Case("serve --workers 0", "usage")],
    "train": [
        Case(
            "train --data {fresh}/nope.csv --target y --fallback-path {fresh}/model.pkl",
            "validation_error",
            **NOTHING,
        ),
        Case("train --model-type no_such_model", "usage"),
    ],
    "models get": [
        Case("models get not-a-model", "invalid_model_id"),
        Case("models get a/b/c", "invalid_model_id"),
        Case(f"models get {UUID}", "model_not_found"),
        Case("models get hokusai_nope_baseline/1", "model_not_found"),
        Case(f"--home {{corrupt}} models get {UUID}", "corrupt_database"),
        Case(f"--home {{file}} models get {UUID}", "invalid_path"),
        Case(f"--tracking-uri {{closed}} models get {UUID}", "backend_unavailable", env=NO_RETRIES),
    ],
    "models lineage": [
        Case("models lineage a/b/c", "invalid_model_id"),
        Case("models lineage no+such+name", "invalid_model_id"),
        Case("models lineage hokusai_nope_baseline/1", "model_not_found"),
        Case("--home {corrupt} models lineage hokusai_nope_baseline/1", "corrupt_database"),
    ],
    "models promote": [
        Case("models promote hokusai_nope_baseline --alias champion", "invalid_model_id"),
        Case("models promote hokusai_nope_baseline/1 --alias v1", "validation_error"),
        Case(
            "models promote hokusai_nope_baseline/1 --alias champion",
            "model_not_found",
            check=_no_events,
        ),
    ],
    "models demote": [
        Case("models demote hokusai_nope_baseline/1 --alias champion", "invalid_model_id"),
        Case("models demote hokusai_nope_baseline --alias no!alias", "validation_error"),
        Case("models demote hokusai_nope_baseline --alias champion", "model_not_found"),
    ],
    "contributors models": [
        Case("contributors models 0x123", "invalid_contributor"),
        Case(f"contributors models {BAD_CHECKSUM}", "invalid_contributor"),
        Case(
            f"--tracking-uri {{closed}} contributors models {GOOD_ADDRESS}",
            "backend_unavailable",
            env=NO_RETRIES,
        ),
    ],
    "benchmarks add": [
        Case(
            "benchmarks add b --data {fresh}/d.csv --target y --metric f1",
            "invalid_dataset",
            **NOTHING,
        ),
        Case("benchmarks add b --data {file} --target y --metric f1", "invalid_dataset", **NOTHING),
        Case(
            "benchmarks add b --data {file} --target y --metric precision",
            "invalid_benchmark",
            **NOTHING,
        ),
        Case(
            "benchmarks add b/c --data {file} --target y --metric f1",
            "invalid_benchmark",
            **NOTHING,
        ),
        Case(
            "benchmarks add b --data {file} --target y --metric f1 --direction up",
            "invalid_benchmark",
            **NOTHING,
        ),
        Case(
            "benchmarks add b --data {file} --target y --metric f1 --guardrail f1",
            "invalid_benchmark",
            **NOTHING,
        ),
        Case(
            "benchmarks add b --data {file} --target y --metric f1 --guardrail f1:-1",
            "invalid_benchmark",
            **NOTHING,
        ),
    ],
    "benchmarks list": [
        Case("--home {corrupt} benchmarks list", "corrupt_database"),
        Case("--tracking-uri {closed} benchmarks list", "backend_unavailable", env=NO_RETRIES),
    ],
    "benchmarks show": [
        Case("benchmarks show nope", "benchmark_not_found"),
        Case("--home {corrupt} benchmarks show nope", "corrupt_database"),
        Case("--tracking-uri {closed} benchmarks show nope", "backend_unavailable", env=NO_RETRIES),
    ],
    "verify": [
        Case("verify not-an-id --benchmark b", "invalid_model_id"),
        Case("verify hokusai_x_improved/1 --benchmark b", "model_not_found"),
        Case("verify hokusai_x_improved/1 --benchmark b --threshold-bps -1", "validation_error"),
        Case("--home {corrupt} verify hokusai_x_improved/1 --benchmark b", "corrupt_database"),
        Case(
            "--tracking-uri {closed} verify hokusai_x_improved/1 --benchmark b",
            "backend_unavailable",
            env=NO_RETRIES,
        ),
    ],
    "registry backfill": [
        Case("--home {corrupt} registry backfill", "corrupt_database"),
        Case("--tracking-uri {closed} registry backfill", "backend_unavailable", env=NO_RETRIES),
    ],
    "registry reindex": [
        Case("--home {corrupt} registry reindex", "corrupt_database"),
        Case("--tracking-uri {closed} registry reindex", "backend_unavailable", env=NO_RETRIES),
        Case("registry reindex", "index_disabled", env={"HOKUSAI_REGISTRY_INDEX": "false"}),
    ],
    "registry check": [
        Case("--home {corrupt} registry check", "corrupt_database"),
        Case("--tracking-uri {closed} registry check", "backend_unavailable", env=NO_RETRIES),
        Case("registry check", "index_disabled", env={"HOKUSAI_REGISTRY_INDEX": "false"}),
    ],
    "webhooks add": [
        Case("webhooks add ftp://example.com", "invalid_webhook_url", check=_no_endpoints),
        Case(
            "webhooks add https://example.com --secret whsec_x",
            "invalid_webhook_secret",
            check=_no_endpoints,
        ),
    ],
    "webhooks list": [Case("--home {corrupt} webhooks list", "backend_error")],
    "webhooks remove": [Case("webhooks remove ep_nope", "endpoint_not_found")],
    "webhooks enable": [Case("webhooks enable ep_nope", "endpoint_not_found")],
    "webhooks replay": [
        Case("webhooks replay --endpoint ep_nope --since yesterday", "validation_error"),
        Case(
            "webhooks replay --endpoint ep_nope --since 2026-01-01T00:00:00Z",
            "endpoint_not_found",
        ),
    ],
    "webhooks test": [Case("webhooks test ep_nope", "endpoint_not_found")],
    "webhooks deliveries": [Case("webhooks deliveries --status nope", "validation_error")],
    "webhooks attempts": [Case("webhooks attempts dlv_nope", "not_found")],
    "webhooks redeliver": [
        Case("webhooks redeliver", "validation_error"),
        Case("webhooks redeliver evt_nope --all-failed", "validation_error"),
        Case("webhooks redeliver evt_nope", "event_not_found"),
    ],
    "webhooks stats": [Case("--home {corrupt} webhooks stats", "backend_error")],
    "webhooks reconcile": [
        Case("--home {corrupt} webhooks reconcile", ("corrupt_database", "backend_error"))
    ],
    "webhooks worker": [
        Case("--home {corrupt} webhooks worker --once --reconcile-every 0", "backend_error")
    ],
    "verifications list": [
        Case("verifications list --state nope", "validation_error"),
        Case("--home {corrupt} verifications list", "backend_error"),
    ],
    "verifications show": [
        Case("verifications show ver_000000000000000000000000", "verification_not_found"),
        Case("--home {corrupt} verifications show ver_1", "backend_error"),
    ],
    "verifications worker": [
        Case("--home {corrupt} verifications worker --once", ("corrupt_database", "backend_error"))
    ],
    "keys create": [
        Case("keys create --scope god --name ci", "invalid_scope", check=_no_keys),
        Case("keys create --scope read --name ''", "invalid_api_key_name", check=_no_keys),
    ],
    "keys list": [
        Case("--home {corrupt} keys list", "backend_error"),
        Case("--home {file} keys list", "invalid_path"),
        Case("keys list", "validation_error", env={"HOKUSAI_DATABASE_URL": "not a url"}),
        Case("keys list", "validation_error", env={"HOKUSAI_API_PORT": "not-a-port"}),
    ],
    "keys revoke": [Case("keys revoke AAAAAAAAAAAA", "api_key_not_found")],
    "db upgrade": [
        Case("--home {corrupt} db upgrade", "backend_error"),
        Case(
            "db upgrade",
            "backend_unavailable",
            env={"HOKUSAI_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none"},
        ),
    ],
    "db current": [Case("--home {corrupt} db current", "backend_error")],
    "doctor": [
        Case("--home {corrupt} doctor", "checks_failed"),
        Case("--tracking-uri {closed} doctor", "checks_failed"),
        Case("doctor", "validation_error", env={"HOKUSAI_API_PORT": "not-a-port"}),
    ],
}


def test_every_command_has_its_own_bad_input_cases() -> None:
    assert set(CASES) == set(LEAVES), "add bad-input cases for new commands to CASES"


def _case_ids() -> list[tuple[str, int]]:
    return [(name, index) for name in sorted(CASES) for index in range(len(CASES[name]))]


@pytest.mark.parametrize(("name", "index"), _case_ids(), ids=lambda v: str(v).replace(" ", "-"))
def test_bad_input_is_one_error_line(
    name: str,
    index: int,
    places: Places,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = CASES[name][index]
    if case.needs_api:
        request.getfixturevalue("api")
    for variable, value in case.env.items():
        monkeypatch.setenv(variable, value)
    fresh = places.fresh()
    args = case.argv(places, fresh)
    assert_refused(invoke(capsys, args), case.codes, args)
    if case.check is not None:
        case.check(places, fresh)


# ---- generic cases, derived from each command's parameters ------------------------------------


def _annotation(param: Any) -> Any:
    descriptor = getattr(param, "type_descriptor", None)  # typer ≥ 0.2x
    if descriptor is not None:
        return descriptor.annotation
    return {"integer": int, "float": float}.get(getattr(param.type, "name", ""))


def _generic_cases(words: str, command: Any) -> list[list[str]]:
    path = words.split()
    cases = [[*path, "--no-such-option"]]
    if any(param.required for param in command.params):
        cases.append(path)  # required arguments and options missing
    for param in command.params:
        if param.param_type_name == "option" and _annotation(param) in (int, float):
            cases.append([*path, param.opts[0], "not-a-number"])
    return cases


@pytest.mark.parametrize("words", sorted(LEAVES))
def test_generic_bad_input_is_a_usage_error(
    words: str, places: Places, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in _generic_cases(words, LEAVES[words]):
        assert_refused(invoke(capsys, ["--home", str(places.home), *args]), "usage", args)


@pytest.mark.parametrize("group", [g for g in GROUPS if g])
def test_unknown_sub_command_is_a_usage_error(
    group: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = invoke(capsys, [*group.split(), "no-such-command"])
    assert_refused(outcome, "usage", group)
    assert f"hokusai {group} --help" in outcome.err


def test_unknown_command_and_bad_global_options(
    places: Places, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(invoke(capsys, ["no-such-command"]), "usage", "no-such-command")
    assert_refused(invoke(capsys, ["--home"]), "usage", "--home without a value")
    assert_refused(invoke(capsys, ["--nope", "keys", "list"]), "usage", "--nope")


@pytest.mark.parametrize("words", sorted(LEAVES))
def test_help_shows_flags_as_flags(words: str, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = invoke(capsys, [*words.split(), "--help"])
    assert outcome.status == 0 and outcome.err == "", outcome.err
    assert "Usage: hokusai" in outcome.out
    assert "<bool>" not in outcome.out, outcome.out
    flags = [o for p in LEAVES[words].params if getattr(p, "is_flag", False) for o in p.opts]
    for flag in ("--help", *flags):
        line = next(line for line in outcome.out.splitlines() if flag in line)
        assert "<" not in line.split(flag, 1)[1].split("  ")[0], line


def test_a_group_without_its_command_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = invoke(capsys, ["models"])
    assert outcome.status == 2 and "Usage: hokusai models" in outcome.out and not outcome.err


# ---- bugs ---------------------------------------------------------------------------------------


def _buggy_app() -> typer.Typer:
    buggy = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @buggy.command()
    def explode(verbose: bool = typer.Option(False, "--verbose")) -> None:
        {}["missing"]  # a real bug: KeyError

    return buggy


def test_a_bug_is_one_line_that_says_so_and_its_traceback_needs_verbose(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        run(_buggy_app(), [], prog_name="buggy")
    captured = capsys.readouterr()
    assert exited.value.code == 1
    outcome = Outcome(1, captured.out, captured.err)
    assert_refused(outcome, "internal_error", "bug")
    assert "KeyError" in captured.err and "--verbose" in captured.err
    with pytest.raises(KeyError):
        run(_buggy_app(), ["--verbose"], prog_name="buggy")


# ---- the same, as real processes ----------------------------------------------------------------


@pytest.mark.slow
def test_real_processes_fail_with_one_line(places: Places, tmp_path: Path) -> None:
    """A representative few through ``python -m hokusai.cli.main``, side by side."""
    fresh = tmp_path / "fresh"
    cases: list[tuple[list[str], str]] = [
        (["models", "get", "not-a-model"], "invalid_model_id"),
        (["models", "gett", UUID], "usage"),
        (["models", "get", UUID], "model_not_found"),
        (["--home", str(places.corrupt), "models", "lineage", "x/1"], "corrupt_database"),
        (["--home", str(fresh), "quickstart", "--contributor", "0x123"], "invalid_contributor"),
        (
            ["--home", str(fresh), "quickstart", "--server", places.closed, "--api-key", "k"],
            "backend_unavailable",
        ),
        # MLflow's own retries, shortened by the CLI: refused within seconds, not minutes.
        (
            ["--tracking-uri", places.closed, "contributors", "models", GOOD_ADDRESS],
            "backend_unavailable",
        ),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env["HOKUSAI_HOME"] = str(places.home)
    started = time.monotonic()
    running = [
        (
            args,
            code,
            subprocess.Popen(
                [sys.executable, "-m", "hokusai.cli.main", *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for args, code in cases
    ]
    for args, code, process in running:
        out, err = process.communicate(timeout=180)
        assert_refused(Outcome(process.returncode, out, err), code, args)
    assert time.monotonic() - started < 120
    assert not fresh.exists()


def test_what_the_environment_causes_is_named_not_a_bug(tmp_path: Path) -> None:
    """Real exceptions of each kind a user's input or machine causes (root may write anywhere,
    so a permission error cannot be caused for real here; the others are)."""
    import sqlite3

    import httpx

    from hokusai.cli._errors import describe_exception

    def caught(call: Callable[[], object]) -> BaseException:
        try:
            call()
        except Exception as exc:  # the exception is the subject of the test
            return exc
        raise AssertionError("no exception")

    (tmp_path / "garbage.db").write_bytes(b"not a database\n" * 100)
    garbage = str(tmp_path / "garbage.db")
    kinds = {
        "file_not_found": caught(lambda: (tmp_path / "nope" / "x").read_text()),
        "invalid_path": caught(lambda: (tmp_path / "garbage.db" / "x").mkdir(parents=True)),
        "permission_denied": PermissionError(13, "Permission denied", "/root/x"),
        "corrupt_database": caught(
            lambda: sqlite3.connect(garbage).execute("select * from sqlite_master").fetchall()
        ),
        "validation_error": caught(lambda: httpx.get("127.0.0.1:9/x")),
        "backend_unavailable": caught(lambda: httpx.get("http://127.0.0.1:9/x", timeout=2)),
    }
    for code, exc in kinds.items():
        found = describe_exception(exc)
        assert found is not None and found[0] == code, (code, exc, found)
        assert "\n" not in found[1]
    wrapped = RuntimeError("while reading")
    wrapped.__cause__ = kinds["corrupt_database"]
    found = describe_exception(wrapped)
    assert found is not None and found[0] == "corrupt_database"
    assert describe_exception(KeyError("x")) is None  # a bug stays a bug
