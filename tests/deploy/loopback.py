"""The compose services' world on loopback: the machine's PostgreSQL and Redis, the loopback
stack's moto S3 server standing in for MinIO (tests/stack/stack.py), and the compose file's
addresses rewritten to reach them.

Inside Compose a service reaches ``postgres:5432``, ``minio:9000``, ``mlflow:5000`` and
``redis:6379`` by service name and listens on ``0.0.0.0`` at a fixed container port. Here each
of those becomes a loopback address (a free port for each project service, so a test never
collides with a server already running) and nothing else in a command line changes.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.deploy.compose import ROOT, container_ports, dockerfile_stages, env_instructions
from tests.services import REDIS_URL
from tests.stack.stack import ServerProcess, free_port

STARTUP_SECONDS = 180
#: The image's paths, and what stands in for them here (HOKUSAI_HOME is the test's folder).
IMAGE_CONFIG = "/etc/hokusai/config.yaml"
#: A compose hostname followed by a port: what must not survive the rewrite.
COMPOSE_ADDRESS = re.compile(r"(?<![\w.-])(?:postgres|minio|mlflow|redis):\d")


@dataclass
class Loopback:
    """Where each compose address is on this machine."""

    s3_port: int
    #: project service → (its container port, the loopback port it gets here)
    listening: dict[str, tuple[int, int]] = field(default_factory=dict)

    def assign_ports(self, services: dict[str, dict[str, Any]]) -> None:
        for name, service in services.items():
            for port in container_ports(service):
                self.listening[name] = (port, free_port())

    def replacements(self) -> dict[str, str]:
        redis = urlsplit(REDIS_URL)
        table = {
            "0.0.0.0": "127.0.0.1",
            "postgres:5432": "127.0.0.1:5432",
            "minio:9000": f"127.0.0.1:{self.s3_port}",
            # the tests' own Redis database, never the machine's database 0
            "redis:6379/0": f"{redis.hostname}:{redis.port}{redis.path}",
        }
        for name, (inside, here) in self.listening.items():
            table[f"{name}:{inside}"] = f"127.0.0.1:{here}"
        return table

    def localize(self, text: str, service: str) -> str:
        """``text`` (an argument or environment value of ``service``) on loopback."""
        table = self.replacements()
        if service in self.listening:
            inside, here = self.listening[service]
            table[f"127.0.0.1:{inside}"] = f"127.0.0.1:{here}"  # its own health check URL
        pattern = re.compile("|".join(re.escape(key) for key in sorted(table, key=len)[::-1]))
        return pattern.sub(lambda match: table[match[0]], text)

    def argv(self, args: list[str], service: str) -> list[str]:
        """A command line on loopback: addresses rewritten, and ``--port <container port>``
        becomes the service's port here."""
        localized = [self.localize(arg, service) for arg in args]
        if service in self.listening:
            inside, here = self.listening[service]
            for index, arg in enumerate(localized[:-1]):
                if arg == "--port" and localized[index + 1] == str(inside):
                    localized[index + 1] = str(here)
        return localized


def leftovers(values: list[str]) -> list[str]:
    """Values that still name a compose service or bind every interface."""
    return [value for value in values if COMPOSE_ADDRESS.search(value) or "0.0.0.0" in value]


def process_environment(service_env: dict[str, str], home: Path) -> dict[str, str]:
    """What a container of the project image sees: the image's ENV (its paths mapped to the
    test's), then the service's environment. Nothing of the test run's own Hokusai, MLflow,
    AWS or libpq configuration leaks in."""
    prefixes = ("HOKUSAI_", "MLFLOW_", "AWS_", "PG", "MODEL_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    image_paths = {"/var/lib/hokusai": str(home), IMAGE_CONFIG: str(ROOT / "config.yaml")}
    for key, value in env_instructions(dockerfile_stages()[-1]).items():
        if key != "PATH":
            env[key] = image_paths.get(value, value)
    # the image's PATH starts with its virtual environment: here, the one running the tests
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env.update(service_env)
    return env


class Services:
    """The compose services a test started (replicas included), each a :class:`ServerProcess`
    in its own process group, logging to ``logs``; all stopped by :meth:`stop_all`."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[ServerProcess] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> ServerProcess:
        log = self.logs / f"{name}-{len(self.started)}.log"
        process = ServerProcess(name, argv, env=env, log_path=log, cwd=cwd)
        process.start()
        self.started.append(process)
        return process

    def exited(self) -> list[str]:
        return [process.name for process in self.started if not process.running()]

    def logs_text(self) -> str:
        return "\n".join(f"[{process.name}]\n{process.log_tail()}" for process in self.started)

    def stop_all(self) -> None:
        """Like `docker compose stop`: every service, the last started first."""
        for process in reversed(self.started):
            process.stop()
