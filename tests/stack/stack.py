"""The deployed shape on loopback: PostgreSQL, an S3 server and ``mlflow server``, for real.

:class:`LoopbackStack` gives tests what a deployment gives the registry:

- **PostgreSQL**: a fresh database on the machine's server (``127.0.0.1:5432``, user
  ``postgres``; tests/services.py decides skip or fail when it is down), dropped at the end.
- **S3**: moto's standalone server (``python -m moto.server``), a real S3-protocol HTTP server
  in its own process, with one bucket. Nothing in the test process is patched.
- **MLflow**: ``mlflow server`` on that database, in one of two artifact modes
  (:data:`PROXIED`: ``--artifacts-destination s3://…``, the server holds the S3 credentials and
  clients need none; :data:`DIRECT`: ``--default-artifact-root s3://… --no-serve-artifacts``,
  clients get ``MLFLOW_S3_ENDPOINT_URL`` and credentials and talk to S3 themselves).

Everything starts on first use and once: a session pays for one S3 server and one tracking
server per mode it uses. Each server runs in its own process group (``mlflow server`` starts
uvicorn as a child), is killed as a group when the stack closes — also when a test or the start
itself fails — and logs to a file whose tail goes into every start-up failure message.

The two modes' databases are made in the two orders a deployment can start in: the proxied
server's database gets Hokusai's schema *before* ``mlflow server`` first starts on it
(:attr:`TrackingServer.first`), the direct one's *after*. A test that registers through both
therefore proves one database holds both schemas whichever side came first.

Other test folders use the session fixture :func:`loopback_stack` (registered in
``tests/conftest.py``): :meth:`LoopbackStack.tracking` for a tracking server (its
``client_env`` and ``database_url`` configure a client), :attr:`LoopbackStack.s3` for the bucket,
:meth:`LoopbackStack.create_database` for a database of their own,
:meth:`LoopbackStack.private_tracking` for a registry no other test writes to,
:meth:`LoopbackStack.run_server` to start a deployment's command line against the stack, and
:class:`TcpProxy` to cut a connection mid-run (or leave it hanging).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import pytest

from tests.services import POSTGRES_ADMIN_URL, require_postgres, unavailable

__all__ = [
    "DIRECT",
    "MODES",
    "PROXIED",
    "LoopbackStack",
    "S3Server",
    "ServerProcess",
    "TcpProxy",
    "TrackingServer",
    "free_port",
    "loopback_stack",
    "migrate_hokusai",
    "server_environment",
]

Mode = Literal["proxied", "direct"]
PROXIED: Final[Mode] = "proxied"
DIRECT: Final[Mode] = "direct"
MODES: Final[tuple[Mode, ...]] = (PROXIED, DIRECT)

POSTGRES_HOST = "127.0.0.1:5432"
ACCESS_KEY = "hokusai-test-access-key"  # moto accepts any credentials; these only need to match
SECRET_KEY = "hokusai-test-secret-key"
REGION = "us-east-1"

# Start-up deadlines: generous, because the machine is shared and a cold ``mlflow server``
# imports half of the scientific stack and migrates a fresh database before it answers.
S3_START_SECONDS = 60.0
MLFLOW_START_SECONDS = 180.0
STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 40

# Variables of the test process that must not reach a server: the servers are configured only
# by what the stack passes them.
_FOREIGN_PREFIXES = ("MLFLOW_", "HOKUSAI_", "AWS_")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without MLflow/Hokusai/AWS settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
    env.update(extra)
    return env


def answers(url: str, *, timeout: float = 2.0) -> bool:
    """True when ``url`` answers a GET with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (OSError, urllib.error.URLError):
        return False


class ServerProcess:
    """One server as a child process in a process group of its own, logging to a file.

    :meth:`stop` kills the whole group (SIGTERM, then SIGKILL after a grace period), so the
    children a server starts go with it. Every started process is also stopped at interpreter
    exit, in case a session ends without running its finalisers.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() kills its children too
            )
        _LIVE.add(self)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_until(self, ready: Callable[[], bool], *, deadline_seconds: float, what: str) -> None:
        """Poll ``ready`` until it is true; fail with the log's tail when the process exits or
        the deadline passes (the process is stopped then)."""
        deadline = time.monotonic() + deadline_seconds
        delay = 0.05
        while not ready():
            if not self.running():
                self.stop()
                raise RuntimeError(f"{self.name} exited before {what}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{self.name} did not {what} within {deadline_seconds:.0f}s\n{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def stop(self) -> None:
        process, self._process = self._process, None
        _LIVE.discard(self)
        if process is None:
            return
        # The group, even when the leader has exited already: its children may live on.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_SECONDS)
        # Whatever has not finished shutting down by now is killed.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_SECONDS)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the server's log, for failure messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(no log at {self.log_path}: {exc})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last lines of {self.log_path.name} ---\n{tail}"


_LIVE: set[ServerProcess] = set()


@atexit.register
def _stop_leftovers() -> None:
    for process in list(_LIVE):
        process.stop()


@dataclass
class S3Server:
    """moto's S3 server on loopback, with one bucket."""

    endpoint_url: str
    bucket: str
    process: ServerProcess

    def client(self) -> Any:
        """A boto3 S3 client for this server (the test's own view of the bucket)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key in the bucket under ``prefix``."""
        paginator = self.client().get_paginator("list_objects_v2")
        found: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", [])]
        return found

    @property
    def credentials_env(self) -> dict[str, str]:
        """What a process needs in its environment to read and write this bucket."""
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }


@dataclass
class TrackingServer:
    """``mlflow server`` on a PostgreSQL database of the stack, artifacts in its bucket."""

    mode: Mode
    url: str
    port: int
    database_url: str
    """The PostgreSQL database MLflow uses — and Hokusai's too, in a one-database deployment."""
    artifact_prefix: str
    """Where this server's artifacts land in the bucket (``mlflow/`` or ``direct/``)."""
    first: Literal["hokusai", "mlflow"]
    """Which schema the database got first: Hokusai's migrations or MLflow's."""
    process: ServerProcess
    client_env: dict[str, str] = field(default_factory=dict)
    """What a client process needs: the tracking URI and, in the direct mode, the S3 endpoint
    and credentials (the proxied mode needs none)."""


class LoopbackStack:
    """PostgreSQL + S3 + ``mlflow server`` on 127.0.0.1, each started on first use.

    ``workdir`` holds the servers' logs. :meth:`close` stops every process and drops every
    database the stack made.
    """

    def __init__(self, workdir: Path, *, admin_url: str = POSTGRES_ADMIN_URL) -> None:
        self.workdir = workdir
        self.admin_url = admin_url
        self.tag = uuid.uuid4().hex[:8]
        self._databases: list[str] = []
        # Never reused, not even after a drop: hokusai.db remembers the URLs it has migrated.
        self._numbers = itertools.count()
        self._s3: S3Server | None = None
        self._tracking: dict[Mode, TrackingServer] = {}
        self._others: list[ServerProcess] = []
        self._lock = threading.Lock()
        self.timings: dict[str, float] = {}
        """Seconds each part took to start (for the report of a slow session)."""

    # ---- PostgreSQL ------------------------------------------------------------------------

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@{POSTGRES_HOST}/{name}"

    def create_database(self, purpose: str = "db") -> str:
        """A new empty database (dropped by :meth:`close`); returns its SQLAlchemy URL."""
        require_postgres(self.admin_url)
        name = f"hokusai_stack_{self.tag}_{purpose}_{next(self._numbers)}"
        self._admin(f'CREATE DATABASE "{name}"')
        self._databases.append(name)
        return self.database_url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database :meth:`create_database` made (connections to it are ended)."""
        name = url.rsplit("/", 1)[-1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self._databases:
            self._databases.remove(name)

    def _admin(self, statement: str) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(statement)
        finally:
            engine.dispose()

    # ---- S3 --------------------------------------------------------------------------------

    @property
    def s3(self) -> S3Server:
        """The S3 server (started on first use)."""
        with self._lock:
            if self._s3 is None:
                self._s3 = self._start_s3()
            return self._s3

    def _start_s3(self) -> S3Server:
        try:
            import boto3  # noqa: F401 - the test side of the bucket
            import moto.server  # noqa: F401 - the server side
        except ImportError as exc:
            unavailable("moto's S3 server (pip install 'moto[server]' boto3)", exc)
        started = time.monotonic()
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        process = ServerProcess(
            "moto S3 server",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=server_environment({}),
            log_path=self.workdir / "moto.log",
        )
        process.start()
        process.wait_until(
            lambda: answers(f"{endpoint}/moto-api/"),
            deadline_seconds=S3_START_SECONDS,
            what=f"answer on {endpoint}",
        )
        server = S3Server(endpoint_url=endpoint, bucket=f"hokusai-{self.tag}", process=process)
        server.client().create_bucket(Bucket=server.bucket)
        self.timings["s3"] = time.monotonic() - started
        return server

    # ---- MLflow ----------------------------------------------------------------------------

    def tracking(self, mode: Mode = PROXIED) -> TrackingServer:
        """The tracking server of ``mode`` (started on first use, once per stack)."""
        s3 = self.s3
        with self._lock:
            server = self._tracking.get(mode)
            if server is None:
                server = self._start_tracking(mode, s3)
                self._tracking[mode] = server
            return server

    def private_tracking(self, purpose: str) -> TrackingServer:
        """A proxied-mode tracking server of the caller's alone, on a database of its own:
        a registry no other test writes to, for tests whose reconciler must see only their
        own versions. Costs a server start (MLflow migrates the new database); stopped by
        :meth:`close` unless the caller stops it first (``server.process.stop()``)."""
        s3 = self.s3
        server = self._start_tracking(PROXIED, s3, label=purpose)
        with self._lock:
            self._others.append(server.process)
        return server

    def _start_tracking(
        self, mode: Mode, s3: S3Server, *, label: str | None = None
    ) -> TrackingServer:
        started = time.monotonic()
        label = label or mode
        database = self.create_database(label)
        first: Literal["hokusai", "mlflow"] = "hokusai" if mode == PROXIED else "mlflow"
        if first == "hokusai":
            migrate_hokusai(database)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        prefix = ("mlflow" if mode == PROXIED else "direct") if label == mode else label
        artifacts = (
            ["--artifacts-destination", f"s3://{s3.bucket}/{prefix}"]
            if mode == PROXIED
            else ["--default-artifact-root", f"s3://{s3.bucket}/{prefix}", "--no-serve-artifacts"]
        )
        argv = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            database,
            *artifacts,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ]
        env = server_environment(
            {
                **s3.credentials_env,
                # MLflow 3 starts a job runner with a pool of Huey consumers (GenAI jobs) by
                # default: seven processes the registry never uses.
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            }
        )
        process = ServerProcess(
            f"mlflow server ({label})", argv, env=env, log_path=self.workdir / f"mlflow-{label}.log"
        )
        process.start()
        process.wait_until(
            lambda: answers(f"{url}/health"),
            deadline_seconds=MLFLOW_START_SECONDS,
            what=f"answer {url}/health",
        )
        client_env = {"MLFLOW_TRACKING_URI": url}
        if mode == DIRECT:
            client_env.update(s3.credentials_env)
        self.timings[f"mlflow-{label}"] = time.monotonic() - started
        return TrackingServer(
            mode=mode,
            url=url,
            port=port,
            database_url=database,
            artifact_prefix=f"{prefix}/",
            first=first,
            process=process,
            client_env=client_env,
        )

    # ---- other servers ---------------------------------------------------------------------

    def run_server(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        ready_url: str,
        deadline_seconds: float = MLFLOW_START_SECONDS,
    ) -> ServerProcess:
        """Start one more server against the stack (a registry API, a worker, a prediction
        server: a deployment's command line) and wait until ``ready_url`` answers 2xx. It is
        stopped by :meth:`close` unless the caller stops it first; ``env`` is its whole
        environment (build it with :func:`server_environment`)."""
        slug = "".join(c if c.isalnum() else "-" for c in name.lower())
        process = ServerProcess(
            name, argv, env=env, log_path=self.workdir / f"{slug}-{next(self._numbers)}.log"
        )
        with self._lock:
            self._others.append(process)
        process.start()
        ready = functools.partial(answers, ready_url)
        process.wait_until(ready, deadline_seconds=deadline_seconds, what=f"answer {ready_url}")
        return process

    # ---- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every server (also those whose start failed) and drop every database."""
        with self._lock:
            # Clients first, then what they use.
            servers = [*self._others, *(t.process for t in self._tracking.values())]
            if self._s3 is not None:
                servers.append(self._s3.process)
            self._others.clear()
            self._tracking.clear()
            self._s3 = None
        for process in servers:
            process.stop()
        for name in list(self._databases):
            with contextlib.suppress(Exception):
                self.drop_database(self.database_url(name))


def migrate_hokusai(database_url: str) -> None:
    """Bring Hokusai's schema to head in ``database_url``, as a replica's first start does."""
    from hokusai.db import database_engine, upgrade_database

    engine = database_engine(database_url)
    try:
        upgrade_database(engine)
    finally:
        engine.dispose()


class TcpProxy:
    """A TCP relay to ``target`` that a test can cut and restore, like a network partition.

    :meth:`stop` closes the listening socket *and* every relayed connection, so clients with
    pooled connections see the outage at once; :meth:`start` listens again on the same port.
    :meth:`silence` cuts every connection too, then accepts new ones and never answers them:
    a server that hangs, or a network path that went half-open.

    :meth:`cut_at` arms a cut in the middle of an exchange: the next request whose bytes contain
    a marker (``b"/model-versions/create"``) is relayed, the server's answer to it is read and
    thrown away, and the proxy stops — the server did the work, the client never hears of it.
    """

    def __init__(self, target: tuple[str, int], *, port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self.cut = threading.Event()
        """Set when an armed cut has happened."""
        self._marker: bytes | None = None
        self._silent = False
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, silent: bool = False) -> None:
        """Listen (again) on the port: relaying, or — ``silent`` — accepting and never
        answering."""
        self._silent = silent
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the blocked accept(); close() alone won't
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def silence(self) -> None:
        """Cut every connection, then accept new ones without ever answering (:meth:`stop`
        and :meth:`start` relay again)."""
        self.stop()
        self.start(silent=True)

    def cut_at(self, marker: bytes) -> None:
        """Stop right after the server answers the next request containing ``marker``."""
        self.cut.clear()
        self._marker = marker

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._silent:
                with self._lock:
                    self._open.append(client)  # held open, never read: closed by stop()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            armed = threading.Event()  # this connection carried the marked request
            threading.Thread(target=self._send, args=(client, upstream, armed), daemon=True).start()
            threading.Thread(
                target=self._answer, args=(upstream, client, armed), daemon=True
            ).start()

    def _send(self, source: socket.socket, sink: socket.socket, armed: threading.Event) -> None:
        def watch(data: bytes) -> bytes:
            marker = self._marker
            if marker is not None and marker in data:
                self._marker = None
                armed.set()
            return data

        self._pipe(source, sink, watch)

    def _answer(self, source: socket.socket, sink: socket.socket, armed: threading.Event) -> None:
        def drop_if_armed(data: bytes) -> bytes | None:
            if not armed.is_set():
                return data
            self.cut.set()  # before the client can notice anything
            self.stop()  # the answer is lost, and so is the server
            return None

        self._pipe(source, sink, drop_if_armed)

    @staticmethod
    def _pipe(
        source: socket.socket, sink: socket.socket, relay: Callable[[bytes], bytes | None]
    ) -> None:
        try:
            while data := source.recv(65536):
                passed = relay(data)
                if passed is None:
                    return
                sink.sendall(passed)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture(scope="session")
def loopback_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackStack]:
    """The session's :class:`LoopbackStack` (servers start when a test first asks for them)."""
    require_postgres()
    stack = LoopbackStack(tmp_path_factory.mktemp("loopback-stack"))
    try:
        yield stack
    finally:
        stack.close()
