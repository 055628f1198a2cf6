"""``hokusai doctor`` against real stores: the embedded default, a real ``mlflow server``, the
machine's PostgreSQL and Redis, ports nothing listens on, ports that never answer, and webhook
hosts that cannot resolve (the ``.invalid`` top-level domain never does, RFC 6761)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hokusai.cli.main import main
from hokusai.config import Settings
from tests.services import REDIS_URL, require_redis
from tests.webhooks.pg import temporary_database


@pytest.fixture(autouse=True)
def _cli_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main()`` sets MLflow's retry variables for its process; give them back afterwards."""
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(name, raising=False)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    """``hokusai [args] doctor --json`` in this process: exit status, report, stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main([*args, "doctor", "--json"])
    captured = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), json.loads(captured.out), captured.err


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {check["check"]: check["status"] for check in report["checks"]}


def finding(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(check for check in report["checks"] if check["check"] == name)


# ---- the embedded default --------------------------------------------------------------------


def test_the_embedded_default_is_all_ok_and_leaves_no_probe_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    status, report, err = doctor(capsys, "--home", str(home))
    assert status == 0 and err == "", (report, err)
    assert report["ok"] is True
    assert statuses(report) == {
        "tracking": "ok",
        "database": "ok",
        "artifacts": "ok",
        "webhooks": "skip",
        "redis": "skip",
    }
    assert "wrote and read back 64 bytes" in finding(report, "artifacts")["found"]
    # the throw-away run is deleted, its artifact and its folder with it
    artifacts = home / "artifacts"
    assert artifacts.is_dir() and list(artifacts.iterdir()) == []
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    settings = Settings(home=home)
    client = MlflowClient(settings.resolved_tracking_uri)
    experiment = client.get_experiment_by_name("hokusai-doctor")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
    assert [run.info.lifecycle_stage for run in runs] == ["deleted"]

    # once MLflow's store exists its schema is read; the text report, line by line
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["--home", str(home), "doctor"])
    lines = capsys.readouterr().out.splitlines()
    assert exited.value.code == 0
    assert [line.split()[:2] for line in lines] == [
        ["ok", "tracking"],
        ["ok", "database"],
        ["ok", "artifacts"],
        ["skip", "webhooks"],
        ["skip", "redis"],
    ]
    assert lines[0].endswith("mlflow.db: schema at head")  # the probe's run created it
    assert lines[1].endswith("hokusai.db: created and migrated on first use")  # still untouched
    assert not (home / "hokusai.db").exists()


def test_a_corrupt_home_fails_each_store_and_skips_what_depends_on_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "corrupt"
    home.mkdir()
    for name in ("mlflow.db", "hokusai.db"):
        (home / name).write_bytes(b"this is not an SQLite database\n" * 40)
    status, report, err = doctor(capsys, "--home", str(home))
    assert status == 1
    assert statuses(report) == {
        "tracking": "fail",
        "database": "fail",
        "artifacts": "skip",
        "webhooks": "skip",
        "redis": "skip",
    }
    for name in ("tracking", "database"):
        assert "not a usable SQLite database" in finding(report, name)["found"]
        assert "restore it from a backup" in finding(report, name)["fix"]
    assert err.splitlines() == [
        "error[checks_failed]: 2 of 5 checks failed: tracking, database",
        "hint: each failed check says what was found and what to do",
    ]


def test_an_artifact_root_that_cannot_be_written_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the artifact root's folder should be\n")
    root = (blocker / "artifacts").as_uri()
    monkeypatch.setenv("HOKUSAI_ARTIFACT_LOCATION", root)
    status, report, err = doctor(capsys, "--home", str(tmp_path / "home"))
    assert status == 1 and "1 of 5 checks failed: artifacts" in err
    artifacts = finding(report, "artifacts")
    assert artifacts["found"] == f"{root}: Not a directory: {blocker / 'artifacts'}"
    assert "HOKUSAI_ARTIFACT_LOCATION" in artifacts["fix"]


# ---- nothing reachable: every failure named, and no hang ------------------------------------


def _hokusai_doctor(home: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "hokusai.cli.main", "--home", str(home), "doctor"],
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_everything_unreachable_fails_each_check_within_the_bound(tmp_path: Path) -> None:
    """Closed ports (refused at once) and a port that accepts and never answers (each check
    given up at its deadline), as real processes: exit 1, every failure named, under 30 s."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections complete in the backlog; nothing ever answers
        runs = {}
        started = time.monotonic()
        for kind, port in (("closed", _closed_port()), ("silent", silent.getsockname()[1])):
            runs[kind] = _hokusai_doctor(
                tmp_path / kind,
                {
                    "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
                    "HOKUSAI_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/x",
                    "HOKUSAI_REDIS_URL": f"redis://127.0.0.1:{port}/0",
                },
            )
        outputs = {kind: process.communicate(timeout=120) for kind, process in runs.items()}
        elapsed = time.monotonic() - started
    for kind, (out, err) in outputs.items():
        shown = f"{kind}\n{out}\n{err}"
        assert runs[kind].returncode == 1, shown
        lines = {line.split()[1]: line for line in out.splitlines()}
        assert lines["tracking"].startswith("FAIL") and "127.0.0.1" in lines["tracking"], shown
        assert lines["database"].startswith("FAIL"), shown
        assert "correct HOKUSAI_DATABASE_URL" in lines["database"], shown
        assert lines["redis"].startswith("FAIL") and "HOKUSAI_REDIS_URL" in lines["redis"], shown
        assert lines["artifacts"].startswith("skip"), shown
        assert err.startswith(
            "error[checks_failed]: 3 of 5 checks failed: tracking, database, redis\n"
        ), shown
        assert "Traceback" not in err, shown
    assert "Connection refused" in outputs["closed"][0]
    assert elapsed < 30, elapsed  # both runs side by side: the bound, with everything down
    assert not (tmp_path / "closed").exists()  # nothing was created for stores it never reached


# ---- webhook endpoints -------------------------------------------------------------------------


def test_every_enabled_webhook_host_is_resolved_and_an_unresolvable_one_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hokusai.webhooks import Webhooks

    home = tmp_path / "home"
    hub = Webhooks(
        Settings(home=home, webhook_background=False, webhook_allow_private_networks=True)
    )
    lost, _ = hub.add_endpoint("https://hooks.hokusai-doctor.invalid/receive")
    local, _ = hub.add_endpoint(f"http://localhost:{_closed_port()}/receive")
    disabled, _ = hub.add_endpoint("https://disabled.hokusai-doctor.invalid/receive")
    hub.endpoints.set_enabled(disabled.id, False, reason="test")
    monkeypatch.setenv("HOKUSAI_WEBHOOK_URL", "https://env.hokusai-doctor.invalid/hook")
    monkeypatch.setenv("HOKUSAI_WEBHOOK_SECRET", "s3cret-for-the-env-endpoint")

    status, report, err = doctor(capsys, "--home", str(home))
    assert status == 1
    found = statuses(report)
    assert found[f"webhook {lost.id}"] == "fail"
    assert found[f"webhook {local.id}"] == "fail"  # loopback: a sender would refuse it
    assert found["webhook HOKUSAI_WEBHOOK_URL"] == "fail"
    assert f"webhook {disabled.id}" not in found  # a disabled endpoint is sent nothing
    assert {found[name] for name in ("tracking", "database", "artifacts")} == {"ok"}
    unresolved = finding(report, f"webhook {lost.id}")
    assert "hooks.hokusai-doctor.invalid does not resolve" in unresolved["found"]
    assert f"hokusai webhooks remove {lost.id}" in unresolved["fix"]
    assert "a loopback address" in finding(report, f"webhook {local.id}")["found"]
    assert "HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS" in finding(report, f"webhook {local.id}")["fix"]
    assert f"webhook {lost.id}" in err.splitlines()[0]

    # local receivers allowed: the loopback endpoint resolves and passes, the others still fail
    monkeypatch.setenv("HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
    status, report, _ = doctor(capsys, "--home", str(home))
    assert status == 1
    assert statuses(report)[f"webhook {local.id}"] == "ok"
    assert "localhost →" in finding(report, f"webhook {local.id}")["found"]
    assert statuses(report)[f"webhook {lost.id}"] == "fail"


# ---- PostgreSQL and Redis ----------------------------------------------------------------------


def test_a_postgresql_database_migrated_or_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hokusai.db import database_engine, upgrade_database

    home = str(tmp_path / "home")
    with temporary_database() as url:
        monkeypatch.setenv("HOKUSAI_DATABASE_URL", url)
        monkeypatch.setenv("HOKUSAI_DATABASE_AUTO_MIGRATE", "false")
        status, report, err = doctor(capsys, "--home", home)
        assert status == 1 and "1 of 5 checks failed: database" in err
        database = finding(report, "database")
        assert database["status"] == "fail"
        assert "no Hokusai schema yet" in database["found"]
        assert "HOKUSAI_DATABASE_AUTO_MIGRATE is off" in database["found"]
        assert "hokusai db upgrade" in database["fix"]
        assert statuses(report)["webhooks"] == "skip"

        # auto-migration on (the default): the first process will migrate it, which is fine
        monkeypatch.delenv("HOKUSAI_DATABASE_AUTO_MIGRATE")
        status, report, _ = doctor(capsys, "--home", home)
        assert status == 0
        assert "the first Hokusai process migrates it" in finding(report, "database")["found"]

        engine = database_engine(url)
        try:
            upgrade_database(engine)
        finally:
            engine.dispose()
        monkeypatch.setenv("HOKUSAI_DATABASE_AUTO_MIGRATE", "false")
        status, report, _ = doctor(capsys, "--home", home)
        assert status == 0, report
        database = finding(report, "database")
        assert database["status"] == "ok"
        assert "postgresql+psycopg://postgres@127.0.0.1:5432/" in database["found"]
        assert "schema at head" in database["found"]
        assert statuses(report)["webhooks"] == "skip"  # read from PostgreSQL: none there


def test_a_configured_redis_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_redis()
    monkeypatch.setenv("HOKUSAI_REDIS_URL", REDIS_URL)
    status, report, _ = doctor(capsys, "--home", str(tmp_path / "home"))
    assert status == 0
    redis = finding(report, "redis")
    assert redis["status"] == "ok"
    assert redis["found"].startswith("redis://127.0.0.1:6379 answers PING")


# ---- tracking servers ------------------------------------------------------------------------


class _NotMlflow(BaseHTTPRequestHandler):
    """An HTTP server that is not MLflow's: every path is a 404 page."""

    def do_GET(self) -> None:
        body = b"<html>not here</html>"
        self.send_response(404)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_tracking_uri_that_is_not_an_mlflow_server_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotMlflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        status, report, _ = doctor(capsys, "--home", str(tmp_path / "home"), "--tracking-uri", uri)
    finally:
        server.shutdown()
        server.server_close()
    assert status == 1
    tracking = finding(report, "tracking")
    assert tracking["status"] == "fail"
    assert "answered GET /version with 404" in tracking["found"]
    assert "not an MLflow tracking server" in tracking["found"]
    assert statuses(report)["artifacts"] == "skip"


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real ``mlflow server`` serving its artifacts (``mlflow-artifacts:/``) from a folder."""
    port = _closed_port()
    folder = tmp_path / "mlflow-server"
    folder.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        *("server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"),
        *("--artifacts-destination", (folder / "artifacts").as_uri()),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        command,
        env={**clean, "MLFLOW_DISABLE_TELEMETRY": "true"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (folder / "server.log").read_text()
            assert time.monotonic() < deadline, "mlflow server did not start"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_a_real_tracking_server_reports_its_version_and_round_trips_an_artifact(
    mlflow_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from importlib.metadata import version

    home = str(tmp_path / "home")
    status, report, err = doctor(capsys, "--home", home, "--tracking-uri", mlflow_server)
    assert status == 0, (report, err)
    client = version("mlflow")
    assert finding(report, "tracking")["found"] == (
        f"MLflow {client} at {mlflow_server} (client {client})"
    )
    artifacts = finding(report, "artifacts")
    assert artifacts["status"] == "ok"
    assert artifacts["found"].startswith("mlflow-artifacts:/")  # through the server's proxy
