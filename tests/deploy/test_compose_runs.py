"""Every project-image service of deploy/docker-compose.yml, run as the compose file says —
its command, its environment, its health check — against loopback servers, and deploy/README.md's
commands with them, so neither can drift from what works.

No Docker engine runs here, so the infrastructure services are stood in for by the loopback stack
(tests/stack/stack.py): the machine's PostgreSQL (a fresh database as ``POSTGRES_DB``) and Redis
(the tests' database), and moto's S3 server for MinIO. ``minio-init`` (the ``mc`` client image)
cannot run here either: the test creates its bucket with boto3, as ``mc mb`` would. The project
services then start in the compose file's dependency order, with only their addresses rewritten
(``loopback.py``): the MLflow tracking server from the compose file's own ``mlflow server``
command line, ``migrate`` to completion, the API, the webhook workers (as many as
``deploy.replicas``) and the prediction server, each waited on until its own compose health check
passes. Health checks are polled every second rather than at the compose file's interval.

The README's ``docker compose run|exec`` commands for project services (an admin key, training
the served model, a webhook endpoint, the upgrade's migrations) run in the service's environment
before the prediction server starts; its PostgreSQL backup and restore (``pg_dump``,
``pg_restore`` in the ``postgres`` service) run against the machine's server once the roles are
stopped. Its bucket commands (``mc``) cannot run here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.deploy.compose import (
    KNOWN_MOUNTS,
    ReadmeCommand,
    command,
    compose,
    depends_on,
    environment,
    one_shot,
    project_services,
    read_env_file,
    readme_commands,
    seconds,
    start_order,
)
from tests.deploy.loopback import (
    STARTUP_SECONDS,
    Loopback,
    Services,
    leftovers,
    process_environment,
)
from tests.services import require_postgres, require_redis, unavailable
from tests.stack.stack import LoopbackStack

pytestmark = pytest.mark.slow

#: What the loopback stack stands in for: compose services the project services may wait for.
STOOD_IN_FOR = {"postgres", "minio", "minio-init", "redis"}
KEY = re.compile(r"\bhk_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{20,}")


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Services]:
    logs = tmp_path / "logs"
    logs.mkdir()
    started = Services(logs)
    try:
        yield started
    finally:
        started.stop_all()


def _wait_healthy(
    name: str,
    service: dict[str, Any],
    env: dict[str, str],
    cwd: Path,
    stack: Loopback,
    processes: Services,
) -> None:
    """Run the service's own health check until it passes (every second, bounded)."""
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD", f"{name}: health check {test!r}"
    argv = stack.argv([str(arg) for arg in test[1:]], name)
    assert not leftovers(argv), argv
    timeout = seconds(service["healthcheck"].get("timeout", "30s"))
    deadline = time.monotonic() + STARTUP_SECONDS
    last = ""
    while time.monotonic() < deadline:
        exited = processes.exited()
        assert not exited, f"{exited} exited\n{processes.logs_text()}"
        check = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=timeout)
        if check.returncode == 0:
            return
        last = (check.stdout + check.stderr).decode(errors="replace")[-2000:]
        time.sleep(1)
    pytest.fail(f"{name} never passed its health check {argv}\n{last}\n{processes.logs_text()}")


def _run(argv: list[str], env: dict[str, str], cwd: Path, **streams: Any) -> str:
    """Run to completion, exit 0; its standard output (unless ``stdout`` is given)."""
    streams = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, **streams}
    done = subprocess.run(
        argv, env=env, cwd=cwd, stderr=subprocess.PIPE, timeout=STARTUP_SECONDS, **streams
    )
    output = (done.stdout or b"").decode(errors="replace")
    assert done.returncode == 0, f"{argv}: {output}{done.stderr.decode(errors='replace')}"
    return output


def _readme_argv(found: ReadmeCommand) -> list[str]:
    """A README command's arguments, its known mounts mapped to the repository's folders."""
    args = list(found.args)
    for mount in found.mounts:
        assert mount in KNOWN_MOUNTS, f"deploy/README.md mounts {mount}: map it in the tests"
        inside, here = KNOWN_MOUNTS[mount]
        args = [arg.replace(inside, f"{here}/") for arg in args]
    return args


def test_every_project_service_runs_as_the_compose_file_says(
    tmp_path: Path, processes: Services, loopback_stack: LoopbackStack
) -> None:
    require_postgres()
    require_redis()
    database_url = loopback_stack.create_database("deploy")
    try:
        database = database_url.rsplit("/", 1)[1]
        bucket = f"hokusai-deploy-{uuid.uuid4().hex[:8]}"
        dotenv = {
            **read_env_file(),  # a fresh `cp .env.example .env`, but for these:
            "POSTGRES_USER": "postgres",  # the machine's server: user postgres, trust
            "POSTGRES_DB": database,
            "S3_BUCKET": bucket,
        }
        document = compose(dotenv)
        services = project_services(document)
        for name in services:
            outside = set(depends_on(services[name])) - set(services)
            assert outside <= STOOD_IN_FOR, f"{name} waits for {outside - STOOD_IN_FOR}"

        s3_port = urlsplit(loopback_stack.s3.endpoint_url).port
        assert s3_port
        stack = Loopback(s3_port=s3_port)
        stack.assign_ports(services)
        s3 = loopback_stack.s3.client()  # (moto takes any credentials: the compose file's too)
        s3.create_bucket(Bucket=bucket)  # what minio-init's `mc mb` does

        home = tmp_path / "home"  # the hokusai-home volume, and the image's working directory
        home.mkdir()
        environments: dict[str, dict[str, str]] = {}
        outputs: dict[str, str] = {}
        for name in start_order(services):
            service = services[name]
            service_env = {
                key: stack.localize(value, name) for key, value in environment(service).items()
            }
            argv = stack.argv(command(service), name)
            assert not leftovers([*argv, *service_env.values()]), (argv, service_env)
            env = environments[name] = process_environment(service_env, home)
            if "MODEL_VARIANT" in service_env:  # the README's steps make the model it serves
                outputs = _run_readme_commands(services, environments, home)
            if name in one_shot(document):
                _run(argv, env, home)
                continue
            replicas = int(service.get("deploy", {}).get("replicas", 1))
            for _ in range(replicas):
                processes.start(name, argv, env, home)
            _wait_healthy(name, service, env, home, stack, processes)

        assert "up to date" in outputs["hokusai db current"]
        key = KEY.search(outputs["hokusai keys create"])
        assert key, outputs["hokusai keys create"]
        _the_deployment_works(stack, key[0], s3, bucket)
        assert not processes.exited(), processes.logs_text()
        processes.stop_all()  # `docker compose stop api webhook-worker serving mlflow`
        _backup_and_restore(document["services"]["postgres"], database, tmp_path)
        assert "up to date" in _run(["hokusai", "db", "current"], environments["migrate"], home)
    finally:
        processes.stop_all()
        loopback_stack.drop_database(database_url)


def _run_readme_commands(
    services: dict[str, Any], environments: dict[str, dict[str, str]], home: Path
) -> dict[str, str]:
    """deploy/README.md's `docker compose run|exec` commands for project services, in order,
    each in its service's environment; their output by the command's first three words."""
    outputs = {}
    ran = []
    for found in readme_commands():
        if found.service not in services:
            continue
        assert found.service in environments, f"{found.service} runs after the served model"
        argv = _readme_argv(found)
        outputs[" ".join(argv[:3])] = _run(argv, environments[found.service], home)
        ran.append(argv[:3])
    # the steps the README promises: a key, the served model, an endpoint, both migrations
    assert ["hokusai", "train", "--data"] in ran
    assert ["sh", "-c", 'mlflow db upgrade "$MLFLOW_BACKEND_STORE_URI"'] in ran
    assert {"hokusai keys create", "hokusai webhooks add", "hokusai db current"} <= set(outputs)
    return outputs


def _the_deployment_works(stack: Loopback, key: str, s3: Any, bucket: str) -> None:
    """Beyond health checks: /health all healthy, a read with the README's key, a prediction,
    the model's files in the bucket."""
    api = f"http://127.0.0.1:{stack.listening['api'][1]}"
    health = httpx.get(f"{api}/health", timeout=30)
    assert health.status_code == 200, health.text
    document = health.json()
    assert document["status"] == "healthy", document
    # the deployment's names, Redis included (configured) and not degraded
    assert document["services"] == {
        "mlflow": "healthy",
        "postgres": "healthy",
        "redis": "healthy",
        "message_queue": "healthy",
    }, document

    model = httpx.get(
        f"{api}/api/v1/models/hokusai_fraud_baseline/versions/1",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert model.status_code == 200, model.text
    assert model.json()["model_uuid"].startswith("m-")

    serving = f"http://127.0.0.1:{stack.listening['serving'][1]}"
    prediction = httpx.post(
        f"{serving}/predict", json=[{"age": 41, "income": 52000, "amount": 120.5}], timeout=30
    )
    assert prediction.status_code == 200, prediction.text
    assert len(prediction.json()["predictions"]) == 1

    # the artifacts went through the tracking server's proxy into the bucket
    stored = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert any(item["Key"].endswith("MLmodel") for item in stored), [i["Key"] for i in stored]


def _backup_and_restore(postgres: dict[str, Any], database: str, tmp_path: Path) -> None:
    """The README's pg_dump, a change made after it, the README's pg_restore: the change is
    gone, and MLflow's and Hokusai's tables are back in the one database."""
    import sqlalchemy as sa

    dumps = [c for c in readme_commands() if c.service == "postgres"]
    assert [c.args[2].split()[0] for c in dumps] == ["pg_dump", "pg_restore"]
    for tool in ("pg_dump", "pg_restore"):
        if shutil.which(tool) is None:
            unavailable(tool, "not on PATH (PostgreSQL's client tools)")
    # inside the container the tools reach the server on its local socket; here, on loopback
    prefixes = ("PG", "POSTGRES_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env |= environment(postgres) | {"PGHOST": "127.0.0.1", "PGPORT": "5432"}
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    engine = sa.create_engine(url)
    change = "UPDATE registered_models SET description = 'after the backup'"
    read = "SELECT description FROM registered_models WHERE name = 'hokusai_fraud_baseline'"
    try:
        for found in dumps:
            argv, (redirect, name) = found.args[:-2], found.args[-2:]
            file = tmp_path / name
            file.parent.mkdir(parents=True, exist_ok=True)
            if redirect == ">":
                with file.open("wb") as out:
                    _run(argv, env, tmp_path, stdout=out)
                assert file.stat().st_size > 0
                with engine.begin() as conn:
                    conn.exec_driver_sql(change)
                    assert conn.exec_driver_sql(read).scalar() == "after the backup"
            else:
                assert redirect == "<"
                engine.dispose()
                with file.open("rb") as source:
                    _run(argv, env, tmp_path, stdin=source)
        engine.dispose()
        with engine.connect() as conn:
            assert conn.exec_driver_sql(read).scalar() != "after the backup"
            tables = set(sa.inspect(conn).get_table_names())
        # one database: MLflow's tables and Hokusai's, each with its own migration history
        assert {"registered_models", "alembic_version", "hokusai_alembic_version"} <= tables
    finally:
        engine.dispose()
