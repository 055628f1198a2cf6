"""The deployed shape on loopback for ``stack.py``: a fresh PostgreSQL database, moto's S3 server
and ``mlflow server`` on that database with its artifacts proxied to the bucket.

tests/stack/stack.py starts the same stack for the tests, but as part of the test suite: it
decides skip-or-fail through pytest and imports the tests' helpers. The benchmarks must run
without pytest, so this is the part of it they need — one artifact mode (proxied, the
deployment's), no TCP proxy — built on the benchmarks' own process helpers (``_procs``):
each server in its own process group, stopped with its children, logging to a file.
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _procs as procs
from _common import package_version

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ACCESS_KEY = "hokusai-bench-access-key"  # moto accepts any credentials; these only need to match
SECRET_KEY = "hokusai-bench-secret-key"
REGION = "us-east-1"
START_TIMEOUT_S = 180.0  # a cold `mlflow server` migrates a fresh database before it answers


@dataclass
class Stack:
    """What a client of the stack needs, and what was started (for the results)."""

    database_url: str
    """The PostgreSQL database MLflow uses — and Hokusai's tables too (one database)."""
    tracking_uri: str
    s3_endpoint: str
    bucket: str
    mlflow: procs.Server
    s3: procs.Server
    started_s: dict[str, float] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The stack as the results record it (commands with the temporary folder hidden)."""
        return {
            "database": self.database_url.rsplit("/", 1)[0] + "/<fresh database>",
            "s3": f"moto {package_version('moto')} (python -m moto.server), bucket <fresh>",
            "mlflow_server_command": _shown(self.mlflow.command),
            "mlflow_server_env": sorted(self.mlflow.env_overrides),
            "s3_command": _shown(self.s3.command),
            "ready_after_s": self.started_s,
        }


def _shown(command: list[str]) -> list[str]:
    """``command`` with the venv's interpreter and scripts by their names alone."""
    venv_bin = f"{Path(sys.executable).parent}/"
    shown = ["python" if part == sys.executable else part for part in command]
    return [part.removeprefix(venv_bin) for part in shown]


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new empty database on the PostgreSQL server of ``admin_url``, dropped afterwards
    (its open connections ended)."""
    import sqlalchemy as sa

    name = f"hokusai_bench_stack_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _start_s3(workdir: Path, bucket: str) -> procs.Server:
    import boto3

    port = procs.free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    env = procs.server_environment({})
    server = procs.start_server(
        "s3", command, port=port, log=workdir / "moto.log", env=env, cwd=workdir
    )
    if not procs.wait_http(server, "/moto-api/", timeout=START_TIMEOUT_S):
        procs.stop(server.process)
        raise RuntimeError(f"moto's S3 server did not start: {server.tail()}")
    boto3.client("s3", endpoint_url=server.base, **s3_credentials()).create_bucket(Bucket=bucket)
    return server


def s3_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "region_name": REGION,
    }


def _start_mlflow(
    workdir: Path, database_url: str, s3: procs.Server, bucket: str, workers: int
) -> procs.Server:
    port = procs.free_port()
    command = [
        *procs.venv_command("mlflow", "mlflow"),
        *("server", "--backend-store-uri", database_url),
        *("--artifacts-destination", f"s3://{bucket}/mlflow"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
    ]
    overrides = {
        # Only the server holds the S3 credentials (proxied artifacts): clients need none.
        "MLFLOW_S3_ENDPOINT_URL": s3.base,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        # MLflow 3 starts a pool of job consumers (GenAI jobs) by default; the registry uses
        # none of them and they would compete for the same two cores (as in api.py).
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    env = procs.server_environment(overrides)
    server = procs.start_server(
        "mlflow",
        command,
        port=port,
        log=workdir / "mlflow-server.log",
        env=env,
        cwd=workdir,
        env_overrides=overrides,
    )
    if not procs.wait_http(server, "/health", timeout=START_TIMEOUT_S):
        procs.stop(server.process)
        raise RuntimeError(f"mlflow server did not start: {server.tail()}")
    return server


@contextlib.contextmanager
def loopback_stack(
    workdir: Path, *, admin_url: str = POSTGRES_ADMIN_URL, mlflow_workers: int = 2
) -> Iterator[Stack]:
    """PostgreSQL database + moto S3 + ``mlflow server`` (proxied artifacts) on 127.0.0.1;
    everything stopped and the database dropped on the way out, also after a failure."""
    bucket = f"hokusai-bench-{uuid.uuid4().hex[:8]}"
    with contextlib.ExitStack() as cleanup:
        database = cleanup.enter_context(fresh_database(admin_url))
        started = time.perf_counter()
        s3 = _start_s3(workdir, bucket)
        cleanup.callback(procs.stop, s3.process)
        s3_ready = time.perf_counter() - started
        mlflow = _start_mlflow(workdir, database, s3, bucket, mlflow_workers)
        cleanup.callback(procs.stop, mlflow.process)
        ready = {"s3": s3_ready, "mlflow_server": mlflow.ready_seconds or 0.0}
        yield Stack(database, mlflow.base, s3.base, bucket, mlflow, s3, ready)
