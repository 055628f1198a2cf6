"""``hokusai doctor``: check a configuration end to end, before anything depends on it.

Each check does what the code that needs the service does, so an ``ok`` means the service will
work, not merely that a port is open:

* **tracking** — an http(s) tracking server answers ``GET /version`` (with MLflow's own
  credentials and TLS settings) with an MLflow version this client can use; a database store
  (the embedded SQLite, or a database URI) opens and its schema is MLflow's head;
* **database** — the project database answers and its schema is at Hokusai's head (or will be
  migrated by the first process, when ``HOKUSAI_DATABASE_AUTO_MIGRATE`` is on);
* **artifacts** — an artifact logged into a throw-away run of the ``<experiment>-doctor``
  experiment (same artifact root as registrations) reads back byte for byte; the run and its
  artifact are deleted afterwards;
* **webhook <id>** — every enabled endpoint's host resolves (``socket.getaddrinfo``), to
  addresses the destination policy lets a sender connect to;
* **redis** — the rate limiter's Redis answers PING, when one is configured.

It never hangs: every check runs in its own daemon thread and is given up at its deadline
(:data:`CHECK_TIMEOUT`, :data:`ARTIFACT_TIMEOUT` for the several calls of the artifact round
trip), the checks run side by side, and network clients get timeouts shorter than those
deadlines so that a failure names its cause. With everything unreachable a run ends within
``ARTIFACT_TIMEOUT`` plus MLflow's import time.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import typer

from hokusai.cli._common import JsonOption, print_json, quiet_mlflow, state_of
from hokusai.cli._errors import CliError, one_line

if TYPE_CHECKING:
    from hokusai.config import Settings
    from hokusai.db import Revisions

CHECK_TIMEOUT = 10.0
"""Longest one service may take to answer before its check fails."""
ARTIFACT_TIMEOUT = 20.0
"""Longest the artifact round trip may take: an experiment, a run, an upload, a download."""
CLIENT_TIMEOUT = 5
"""Timeout given to each network client (HTTP, PostgreSQL, Redis, DNS), under the deadlines."""

Status = Literal["ok", "fail", "skip"]
_LABELS = {"ok": "ok", "fail": "FAIL", "skip": "skip"}


@dataclass
class Finding:
    """One line of the report: what a check found and, when it failed, what to do."""

    check: str
    status: Status
    found: str
    fix: str | None = None

    def line(self, width: int) -> str:
        fix = f" — {self.fix}" if self.fix and self.status == "fail" else ""
        return f"{_LABELS[self.status]:<5} {self.check:<{width}}  {self.found}{fix}"


def _reason(exc: BaseException) -> str:
    """The cause of a failure in a few words: the operating system's error when there is one
    (``Connection refused``), else the exception's first 240 characters, secrets masked."""
    from hokusai.config import mask_secrets

    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, OSError) and current.strerror:
            where = f": {current.filename}" if current.filename else ""
            return mask_secrets(f"{current.strerror}{where}")
        current = current.__cause__ or current.__context__
    text = one_line(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)  # an OSError told as text
    if found:
        return found.group(1).strip().rstrip(":")
    if "timed out" in text.lower() or isinstance(exc, TimeoutError):
        return "timed out"
    return mask_secrets(text)[:240] or type(exc).__name__


# ---- running checks side by side, each bounded ------------------------------------------------


@dataclass
class _Task:
    """A check in its own daemon thread: a thread stuck in a driver never holds up the run, and
    does not keep the process alive after it."""

    check: str
    timeout: float
    fix: str
    run: Callable[[], list[Finding]]
    done: threading.Event = field(default_factory=threading.Event)
    findings: list[Finding] = field(default_factory=list)
    value: Any = None
    started: float = 0.0

    def start(self) -> _Task:
        self.started = time.monotonic()
        threading.Thread(target=self._run, name=f"hokusai-doctor-{self.check}", daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            self.findings = self.run()
        except Exception as exc:  # noqa: BLE001 - a failing service is the finding, not an error
            self.findings = [Finding(self.check, "fail", _reason(exc), self.fix)]
        finally:
            self.done.set()

    def wait(self) -> bool:
        """Wait until the check is done or its deadline passed; whether it is done."""
        return self.done.wait(max(0.0, self.started + self.timeout - time.monotonic()))

    def result(self) -> list[Finding]:
        if not self.wait():
            found = f"no answer within {self.timeout:g}s"
            return [Finding(self.check, "fail", found, self.fix)]
        return self.findings

    def passed(self) -> bool:
        """Done within its deadline, with no failure."""
        return self.wait() and all(f.status != "fail" for f in self.findings)


# ---- tracking store ---------------------------------------------------------------------------


_TRACKING_FIX = "start the tracking server, or point MLFLOW_TRACKING_URI (--tracking-uri) at it"
_DATABASE_URI = re.compile(r"^(sqlite|postgresql|mysql|mssql)(\+\w+)?:", re.IGNORECASE)


def _module(name: str) -> Any:
    """An MLflow module whose functions carry no annotations, typed as such."""
    import importlib

    return importlib.import_module(name)


def _client_version() -> str:
    from importlib.metadata import version

    return version("mlflow")


def _check_tracking(settings: Settings) -> list[Finding]:
    uri = settings.resolved_tracking_uri
    scheme = uri.split(":", 1)[0].lower()
    if scheme in ("http", "https"):
        return [_check_tracking_server(uri)]
    if _DATABASE_URI.match(uri):
        return [_check_tracking_database(uri)]
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    return [Finding("tracking", "ok", f"MLflow {_client_version()} store {_masked(uri)} answers")]


def _masked(text: str) -> str:
    from hokusai.config import mask_secrets

    return mask_secrets(text)


def _check_tracking_server(uri: str) -> Finding:
    """``GET /version`` with MLflow's credentials, TLS settings and no retry."""
    shown = _masked(uri)
    credentials = _module("mlflow.utils.credentials").get_default_host_creds(uri)
    try:
        response = _module("mlflow.utils.rest_utils").http_request(
            credentials,
            "/version",
            "GET",
            max_retries=0,
            timeout=CLIENT_TIMEOUT,
            raise_on_status=False,
        )
    except Exception as exc:  # noqa: BLE001 - unreachable is the finding
        return Finding("tracking", "fail", f"{shown} unreachable: {_reason(exc)}", _TRACKING_FIX)
    client = _client_version()
    if response.status_code in (401, 403):
        return Finding(
            "tracking",
            "fail",
            f"{shown} refused the request ({response.status_code})",
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)",
        )
    server = response.text.strip()
    if response.status_code != 200 or not re.fullmatch(r"\d+\.\d+[\w.+-]*", server):
        answer = f"{response.status_code} {one_line(server)[:80]!r}"
        return Finding(
            "tracking",
            "fail",
            f"{shown} answered GET /version with {answer}: not an MLflow tracking server",
            "point MLFLOW_TRACKING_URI at the MLflow server (`mlflow server`), with its path "
            "prefix if it has one",
        )
    if server.split(".")[0] != client.split(".")[0]:
        return Finding(
            "tracking",
            "fail",
            f"MLflow {server} at {shown}; this client is MLflow {client}",
            f"run an MLflow {client.split('.')[0]}.x tracking server (logged models and the "
            "registry calls Hokusai makes differ between major versions)",
        )
    return Finding("tracking", "ok", f"MLflow {server} at {shown} (client {client})")


def _check_tracking_database(uri: str) -> Finding:
    """A database store MLflow opens directly: reachable, and its schema at MLflow's head (an
    older schema is refused by MLflow until ``mlflow db upgrade``)."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    client = _client_version()
    url = make_url(uri)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        missing = _missing_sqlite_file(url.database)
        if missing is not None:
            return missing
    engine = sa.create_engine(uri, connect_args=_connect_timeout(url), poolclass=sa.NullPool)
    try:
        current = _mlflow_revision(engine)
    except Exception as exc:  # noqa: BLE001 - the store's failure is the finding
        return _store_failure("tracking", shown, exc, _TRACKING_FIX)
    finally:
        engine.dispose()
    head = _mlflow_head()
    if current is None:
        return Finding(
            "tracking", "ok", f"MLflow {client}, {shown}: empty, MLflow creates its schema"
        )
    if current != head:
        return Finding(
            "tracking",
            "fail",
            f"MLflow {client}, {shown}: schema at {current}, this MLflow needs {head}",
            f"back the database up, then run `mlflow db upgrade {shown}`",
        )
    return Finding("tracking", "ok", f"MLflow {client}, {shown}: schema at head")


def _missing_sqlite_file(path: str | None) -> Finding | None:
    """For an SQLite file that does not exist yet: ok when it can be created, else why not."""
    if not path or path == ":memory:" or Path(path).exists():
        return None
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.is_dir() and os.access(folder, os.W_OK):
        return Finding(
            "tracking", "ok", f"MLflow {_client_version()}, {path}: created on first use"
        )
    return Finding(
        "tracking",
        "fail",
        f"cannot create {path}: {folder} is not a writable folder",
        "choose a writable HOKUSAI_HOME (--home) or MLFLOW_TRACKING_URI",
    )


def _connect_timeout(url: Any) -> dict[str, Any]:
    return {"connect_timeout": CLIENT_TIMEOUT} if url.get_backend_name() == "postgresql" else {}


def _mlflow_revision(engine: Any) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    return str(revision) if revision else None


def _mlflow_head() -> str:
    return str(_module("mlflow.store.db.utils")._get_latest_schema_revision())


def _store_failure(check: str, shown: str, exc: BaseException, fix: str) -> Finding:
    # the driver's own words, without the wrappers' (SQLAlchemy's, hokusai.db's) around them
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    reason = _reason(getattr(cause, "orig", None) or cause)
    if "not a database" in reason or "malformed" in reason:
        return Finding(
            check,
            "fail",
            f"{shown} is not a usable SQLite database ({reason})",
            "restore it from a backup, or point --home / HOKUSAI_HOME at another folder",
        )
    return Finding(check, "fail", f"{shown} unreachable: {reason}", fix)


# ---- project database -------------------------------------------------------------------------


_DATABASE_FIX = "start the database, or correct HOKUSAI_DATABASE_URL"


def _check_database(settings: Settings, task: _Task) -> list[Finding]:
    """The project database's revision against head; leaves it in ``task.value`` (None when
    there is no schema to read endpoints from)."""
    from sqlalchemy.engine import make_url

    from hokusai.db import database_revisions

    url = make_url(settings.resolved_database_url)
    shown = url.render_as_string(hide_password=True)
    auto = settings.database_auto_migrate
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        if auto:
            return [Finding("database", "ok", f"{shown}: created and migrated on first use")]
        return [_not_migrated(shown, "does not exist yet")]
    engine = _engine(settings.resolved_database_url)
    try:
        found = database_revisions(engine)
    except Exception as exc:  # noqa: BLE001 - the database's failure is the finding
        return [_store_failure("database", shown, exc, _DATABASE_FIX)]
    finally:
        engine.dispose()
    task.value = found
    if found.up_to_date:
        return [Finding("database", "ok", f"{shown}: schema at head {found.head}")]
    where = _revision_text(found)
    if auto:
        note = "the first Hokusai process migrates it (HOKUSAI_DATABASE_AUTO_MIGRATE is on)"
        return [Finding("database", "ok", f"{shown}: {where}; {note}")]
    return [_not_migrated(shown, where)]


def _engine(url: str) -> Any:
    """An engine like the project's (:func:`hokusai.db.database_engine`), with a connect
    timeout for a server so an unreachable one fails with its reason, not the deadline."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from hokusai.db import database_engine

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return database_engine(url)
    return sa.create_engine(
        url, connect_args=_connect_timeout(parsed), poolclass=sa.NullPool, hide_parameters=True
    )


def _revision_text(found: Revisions) -> str:
    if found.current:
        return f"schema at {found.current}, this Hokusai needs {found.head}"
    if found.legacy:
        return f"schema at {found.legacy} (in alembic_version), this Hokusai needs {found.head}"
    return f"no Hokusai schema yet (head {found.head})"


def _not_migrated(shown: str, where: str) -> Finding:
    return Finding(
        "database",
        "fail",
        f"{shown}: {where}; HOKUSAI_DATABASE_AUTO_MIGRATE is off",
        "run `hokusai db upgrade` (a revision it does not know means a newer Hokusai migrated "
        "it: upgrade this one)",
    )


# ---- artifact store ---------------------------------------------------------------------------


_ARTIFACT_FIX = (
    "check the artifact store: HOKUSAI_ARTIFACT_LOCATION, its credentials (AWS_*, "
    "MLFLOW_S3_ENDPOINT_URL), or the tracking server's --artifacts-destination"
)


def _check_artifacts(settings: Settings, tracking: _Task) -> list[Finding]:
    """Log a small artifact into a throw-away run, download it, compare, delete the run."""
    if not tracking.passed():
        return [Finding("artifacts", "skip", "not checked: the tracking store failed its check")]
    from mlflow import MlflowClient

    from hokusai.registry.experiments import ensure_experiment

    uri = settings.resolved_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=settings.resolved_registry_uri)
    name, location = _probe_experiment(client, settings)
    experiment = client.get_experiment(ensure_experiment(client, name, location))
    experiment_id = experiment.experiment_id
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment_id)
    where = _masked(experiment.artifact_location)
    token = secrets.token_hex(32)
    run = client.create_run(experiment_id, run_name="hokusai-doctor")
    try:
        back = _round_trip(client, run.info.run_id, token)
    except Exception as exc:  # noqa: BLE001 - the store's failure is the finding
        return [Finding("artifacts", "fail", f"{where}: {_reason(exc)}", _ARTIFACT_FIX)]
    finally:
        _discard(client, run, uri)
    if back != token:
        return [Finding("artifacts", "fail", f"{where}: read back other bytes", _ARTIFACT_FIX)]
    return [Finding("artifacts", "ok", f"{where}: wrote and read back {len(token)} bytes")]


def _probe_experiment(client: Any, settings: Settings) -> tuple[str, str | None]:
    """The throw-away experiment's name and artifact root: where registrations write — the
    registration experiment's root once it exists, the configured one before. An experiment's
    root never changes, so a probe experiment made for another root gets a sibling named by
    a digest of this one."""
    import hashlib

    ours = client.get_experiment_by_name(settings.experiment_name)
    location = ours.artifact_location if ours is not None else settings.resolved_artifact_location
    name = f"{settings.experiment_name}-doctor"
    probe = client.get_experiment_by_name(name)
    if probe is None or location is None or probe.artifact_location == location:
        return name, location
    digest = hashlib.sha256(location.encode()).hexdigest()[:8]
    return f"{name}-{digest}", location


def _round_trip(client: Any, run_id: str, token: str) -> str:
    """Log ``token`` as an artifact of the run and return what downloading it gives back."""
    with tempfile.TemporaryDirectory(prefix="hokusai-doctor-") as scratch:
        probe = Path(scratch, "up", "doctor-probe.txt")
        probe.parent.mkdir()
        probe.write_text(token, encoding="utf-8")
        client.log_artifact(run_id, str(probe))
        down = Path(scratch, "down")
        down.mkdir()
        read = client.download_artifacts(run_id, probe.name, dst_path=str(down))
        return Path(read).read_text(encoding="utf-8")


def _discard(client: Any, run: Any, tracking_uri: str) -> None:
    """Delete the run's artifacts and the run (best effort: a failure here is not the
    artifact store's)."""
    registry = _module("mlflow.store.artifact.artifact_repository_registry")
    with contextlib.suppress(Exception):  # some stores cannot delete; the run goes anyway
        registry.get_artifact_repository(
            run.info.artifact_uri, tracking_uri=tracking_uri
        ).delete_artifacts()
    if run.info.artifact_uri.startswith("file:"):  # the run's own folder, left empty
        from urllib.request import url2pathname

        with contextlib.suppress(OSError):
            Path(url2pathname(urlsplit(run.info.artifact_uri).path)).parent.rmdir()
    with contextlib.suppress(Exception):  # a run left behind is harmless
        client.delete_run(run.info.run_id)


# ---- webhook endpoints ------------------------------------------------------------------------


def _check_webhooks(settings: Settings, database: _Task) -> list[Finding]:
    """Every enabled endpoint's host, resolved as a sender resolves it, side by side."""
    if not database.passed():
        return [Finding("webhooks", "skip", "not checked: the project database failed its check")]
    targets = _endpoints(settings, database.value)
    if not targets:
        return [Finding("webhooks", "skip", "no enabled endpoint")]
    from hokusai.webhooks.urlpolicy import DestinationPolicy

    policy = DestinationPolicy.from_settings(settings)
    # getaddrinfo takes no timeout: each name resolves in its own thread, given up at its deadline
    probes = [
        _Task(f"webhook {ident}", CLIENT_TIMEOUT, _DNS_FIX, _resolver(ident, url, policy)).start()
        for ident, url in targets
    ]
    return [finding for probe in probes for finding in probe.result()]


_DNS_FIX = "check this machine's DNS (the resolver did not answer)"


def _endpoints(settings: Settings, found: Revisions | None) -> list[tuple[str, str]]:
    """(id, url) of every enabled endpoint, and HOKUSAI_WEBHOOK_URL when it is not one yet."""
    targets: list[tuple[str, str]] = []
    if found is not None and (found.current or found.legacy):
        import sqlalchemy as sa

        from hokusai.webhooks.tables import endpoints

        engine = _engine(settings.resolved_database_url)
        try:
            with engine.connect() as conn:
                query = sa.select(endpoints.c.id, endpoints.c.url).where(endpoints.c.enabled)
                rows = conn.execute(query.order_by(endpoints.c.created_at)).all()
        finally:
            engine.dispose()
        targets = [(str(row.id), str(row.url)) for row in rows]
    if settings.webhook_url and all(url != settings.webhook_url for _, url in targets):
        targets.append(("HOKUSAI_WEBHOOK_URL", settings.webhook_url))
    return targets


def _remedy(ident: str) -> str:
    """How to replace an endpoint's URL."""
    if ident == "HOKUSAI_WEBHOOK_URL":
        return "correct HOKUSAI_WEBHOOK_URL"
    return f"replace it (`hokusai webhooks remove {ident}`, then add the right URL)"


def _resolver(ident: str, url: str, policy: Any) -> Callable[[], list[Finding]]:
    """Resolve an endpoint's host as a sender does, and judge it by the destination policy."""

    def resolve() -> list[Finding]:
        from hokusai.errors import InvalidWebhookUrlError

        check = f"webhook {ident}"
        shown = _masked(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme != "https" and not policy.allow_http:
            fix = f"{_remedy(ident)} with https, or set HOKUSAI_WEBHOOK_ALLOW_HTTP=true"
            return [Finding(check, "fail", f"{shown} is not https: deliveries are refused", fix)]
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            addresses = policy.checked_addresses(host, port)
        except InvalidWebhookUrlError as exc:
            why = re.sub(r"\s*\([^()]*\)\.?$", "", exc.message)  # the hint goes in the fix
            fix = f"{_remedy(ident)}, or set HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true"
            return [Finding(check, "fail", f"{shown}: {why}; deliveries are refused", fix)]
        except (OSError, ValueError) as exc:
            found = f"{shown}: {host} does not resolve ({_reason(exc)})"
            fix = f"{_remedy(ident)}, or fix this machine's DNS; deliveries fail until it resolves"
            return [Finding(check, "fail", found, fix)]
        return [Finding(check, "ok", f"{shown}: {host} → {', '.join(addresses[:3])}")]

    return resolve


# ---- Redis ------------------------------------------------------------------------------------


def _check_redis(settings: Settings) -> list[Finding]:
    if not settings.redis_url:
        found = "not configured: each API process keeps its own rate limits (HOKUSAI_REDIS_URL)"
        return [Finding("redis", "skip", found)]
    import redis

    from hokusai.config import public_location

    where = public_location(settings.redis_url)
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=CLIENT_TIMEOUT, socket_connect_timeout=CLIENT_TIMEOUT
    )
    try:
        client.ping()
        try:
            version = f" (Redis {client.info('server')['redis_version']})"
        except redis.RedisError:
            version = ""  # INFO may be disabled on a managed Redis; PING is what counts
    except redis.RedisError as exc:
        fix = "start Redis, or correct HOKUSAI_REDIS_URL"
        return [Finding("redis", "fail", f"{where} does not answer: {_reason(exc)}", fix)]
    finally:
        client.close()
    return [Finding("redis", "ok", f"{where} answers PING{version}")]


# ---- the command ------------------------------------------------------------------------------


@contextlib.contextmanager
def _mlflow_request_timeout() -> Iterator[None]:
    """MLflow's HTTP timeout (120 s by default) under the checks' deadlines while they run,
    unless set; the process's environment is given back afterwards."""
    name = "MLFLOW_HTTP_REQUEST_TIMEOUT"
    if name in os.environ:
        yield
        return
    os.environ[name] = str(CLIENT_TIMEOUT)
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _import_everything(settings: Settings) -> None:
    """Import what the checks use, here, before their threads start: two threads importing
    one package at once may see it half-initialised (SQLAlchemy raises a circular import)."""
    import importlib

    modules = [
        "sqlalchemy",
        "sqlalchemy.engine",
        "alembic.runtime.migration",
        "mlflow",
        "mlflow.store.artifact.artifact_repository_registry",
        "mlflow.store.db.utils",
        "mlflow.utils.credentials",
        "mlflow.utils.rest_utils",
        "hokusai.db",
        "hokusai.registry.experiments",
        "hokusai.webhooks.tables",
        "hokusai.webhooks.urlpolicy",
    ]
    if settings.redis_url:
        modules.append("redis")
    for name in modules:
        importlib.import_module(name)


def run_checks(settings: Settings) -> list[Finding]:
    """Every check, side by side, each within its deadline; findings in a fixed order."""
    _import_everything(settings)
    tracking = _Task("tracking", CHECK_TIMEOUT, _TRACKING_FIX, lambda: _check_tracking(settings))
    database = _Task(
        "database", CHECK_TIMEOUT, _DATABASE_FIX, lambda: _check_database(settings, database)
    )
    tasks = [
        tracking.start(),
        database.start(),
        _Task(
            "artifacts",
            ARTIFACT_TIMEOUT,
            _ARTIFACT_FIX,
            lambda: _check_artifacts(settings, tracking),
        ).start(),
        # waits for the database's check, then resolves: two deadlines
        _Task(
            "webhooks", CHECK_TIMEOUT * 2, _DNS_FIX, lambda: _check_webhooks(settings, database)
        ).start(),
        _Task(
            "redis",
            CHECK_TIMEOUT,
            "start Redis, or correct HOKUSAI_REDIS_URL",
            lambda: _check_redis(settings),
        ).start(),
    ]
    return [finding for task in tasks for finding in task.result()]


def doctor(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Check the configuration end to end: tracking server, project database, artifact store,
    webhook hosts, Redis. Exit 1 when any check fails."""
    settings = state_of(ctx).settings()
    quiet_mlflow(ctx)
    with _mlflow_request_timeout():
        findings = run_checks(settings)
    failed = [f.check for f in findings if f.status == "fail"]
    if as_json:
        print_json({"ok": not failed, "checks": [asdict(f) for f in findings]})
    else:
        width = max(len(f.check) for f in findings)
        for finding in findings:
            typer.echo(finding.line(width))
    if failed:
        raise CliError(
            "checks_failed",
            f"{len(failed)} of {len(findings)} checks failed: {', '.join(failed)}",
            hint="each failed check says what was found and what to do",
        )
