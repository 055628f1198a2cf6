"""Scale-out on the stack, as a deployment runs it: two REST replicas (``hokusai server --workers
2 --no-webhook-worker``) and two ``hokusai webhooks worker`` processes on one PostgreSQL database,
MLflow behind the tracking server, a real HTTP receiver counting what arrives.

- Registrations through both replicas are each announced once, and every event is delivered
  exactly once: one attempt row per delivery, each ``webhook-id`` received once. Workers claim
  one delivery at a time, so which worker sends what is a race; the receiver holds the first
  delivery until every other one has arrived, so the worker holding it cannot take the rest and
  both workers deliver.
- A worker killed with SIGKILL mid-delivery loses nothing: once its lease expires the other
  worker logs the attempt as lost and sends the event again. That resend is the at-least-once
  design — the killed attempt may have reached the receiver (here it did) — and it carries the
  same ``webhook-id``, which is what a receiver deduplicates by.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hokusai.auth import ApiKeyStore
from hokusai.db import open_database
from hokusai.webhooks.outbox import IN_FLIGHT, LOST, Outbox
from tests.stack.conftest import log_model
from tests.stack.stack import PROXIED, LoopbackStack, free_port, migrate_hokusai, server_environment
from tests.webhooks.receiver import Received, Receiver, running_receiver
from tests.worker_metrics import connection_to_each_worker, per_worker, scraped

pytestmark = pytest.mark.slow

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REGISTRATIONS = 12  # split evenly between the two replicas
AFTER_THE_KILL = 4
REGISTERED = "hokusai_registrations_total"
WAIT_SECONDS = 90.0
START_SECONDS = 120.0


@dataclass
class Deployment:
    """The registry API (two replicas) on the stack, and what a test needs to drive it."""

    url: str
    env: dict[str, str]
    """The deployment's environment: HOKUSAI_DATABASE_URL, MLFLOW_TRACKING_URI, …"""
    headers: dict[str, str]
    metrics_directory: Path
    model_uri: str
    outbox: Outbox
    receiver: Receiver
    workdir: Path

    def register(self, client: httpx.Client, model_type: str) -> dict[str, Any]:
        response = client.post(
            "/api/v1/models",
            json={"model_uri": self.model_uri, "model_type": model_type},
            headers=self.headers,
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def deliveries(self, model_type: str, *, logs: bool = True) -> dict[str, dict[str, Any]]:
        """This test's deliveries (its model type's versions) by model id, with their
        attempt logs."""
        name = f"hokusai_{model_type}_baseline/"
        found = {
            d["model_id"]: d
            for d in self.outbox.deliveries(limit=10_000)
            if d["model_id"].startswith(name)
        }
        if logs:
            for delivery in found.values():
                delivery["log"] = self.outbox.attempts(delivery["delivery_id"])
        return found

    def states(self, model_type: str) -> list[str]:
        return sorted(d["state"] for d in self.deliveries(model_type, logs=False).values())

    def arrivals(self, model_type: str) -> list[Received]:
        """What reached the receiver for this test's versions, hung up on or not."""
        name = f"hokusai_{model_type}_baseline/"
        with self.receiver.lock:
            return [r for r in self.receiver.arrivals if r.json["model_id"].startswith(name)]


@dataclass
class Worker:
    """One ``hokusai webhooks worker`` process and the owner name its leases carry."""

    process: subprocess.Popen[bytes]
    owner: str
    log: Path


@pytest.fixture(scope="module")
def deployment(
    loopback_stack: LoopbackStack, tmp_path_factory: pytest.TempPathFactory, logistic: Any
) -> Iterator[Deployment]:
    tracking = loopback_stack.tracking(PROXIED)
    workdir = tmp_path_factory.mktemp("scale-out")
    database = loopback_stack.create_database("scale")  # Hokusai's tables, this module's alone
    migrate_hokusai(database)
    engine = open_database(database)
    key = ApiKeyStore(engine).create(name="scale-out", scope="admin")[1]
    metrics_directory = workdir / "api-metrics"
    env = server_environment(
        {
            **tracking.client_env,
            "HOKUSAI_DATABASE_URL": database,
            "HOKUSAI_HOME": str(workdir / "home"),
            "HOKUSAI_WEBHOOK_ALLOW_HTTP": "true",  # the receiver is http://127.0.0.1
            "HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_directory),  # the test reads it too
        }
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "hokusai.cli.main", "server", "--workers", "2"]
    api = loopback_stack.run_server(
        "hokusai server --workers 2",
        [*argv, "--no-webhook-worker", "--port", str(port)],
        env=env,
        ready_url=f"{url}/ready",
    )
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with running_receiver(SECRET) as receiver:
            added = httpx.post(
                f"{url}/api/v1/webhooks",
                json={"url": receiver.url, "events": ["model_registered"], "secret": SECRET},
                headers=headers,
                timeout=30,
            )
            assert added.status_code == 201, added.text
            yield Deployment(
                url=url,
                env=env,
                headers=headers,
                metrics_directory=metrics_directory,
                model_uri=log_model(tracking, logistic),
                outbox=Outbox(engine),
                receiver=receiver,
                workdir=workdir,
            )
    finally:
        api.stop()
        engine.dispose()


@pytest.fixture
def start_workers(deployment: Deployment) -> Iterator[Callable[..., list[Worker]]]:
    """Start ``hokusai webhooks worker`` processes on the deployment's settings (plus the
    given ones); each is stopped with SIGTERM at the end unless a test killed it."""
    started: list[Worker] = []

    def start(count: int, **settings: str) -> list[Worker]:
        env = {
            **deployment.env,
            "HOKUSAI_WEBHOOK_POLL_SECONDS": "0.02",
            "HOKUSAI_WEBHOOK_RETRY_SCHEDULE": "0.05,0.05,0.05",
            **settings,
        }
        argv = [sys.executable, "-m", "hokusai.cli.main", "webhooks", "worker"]
        argv += ["--reconcile-every", "0"]  # the tracking server is shared by the session
        logs = [deployment.workdir / f"worker-{uuid.uuid4().hex[:6]}.log" for _ in range(count)]
        processes = []
        for log in logs:
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
                )
        workers = [
            Worker(process, _owner_of(process, log), log)
            for process, log in zip(processes, logs, strict=True)
        ]
        started.extend(workers)
        return workers

    try:
        yield start
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in started:
            try:
                worker.process.wait(20)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(10)


def _owner_of(process: subprocess.Popen[bytes], log: Path) -> str:
    """The worker's lease owner name, from its start-up line ("webhook worker OWNER
    delivering from …")."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if "webhook worker " in line and " delivering from " in line:
                return line.split("webhook worker ", 1)[1].split(" ", 1)[0]
        if process.poll() is not None:
            break
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    raise AssertionError(f"the worker did not start:\n{log.read_text(errors='replace')[-3000:]}")


def _wait(what: str, predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {WAIT_SECONDS:.0f}s: {what}")
        time.sleep(0.02)


def _live(client: httpx.Client) -> None:
    assert client.get("/live").status_code == 200


def _log(delivery: dict[str, Any]) -> list[tuple[int | None, str | None, str]]:
    return [(a["status_code"], a["error"], a["worker"]) for a in delivery["log"]]


def test_two_replicas_and_two_workers_deliver_each_registration_exactly_once(
    deployment: Deployment, start_workers: Callable[..., list[Worker]]
):
    model_type = f"scale{uuid.uuid4().hex[:10]}"
    receiver = deployment.receiver
    release = threading.Event()
    receiver.answer((200, {}, release, "ok"))  # the first delivery waits for all the others
    workers = start_workers(2, HOKUSAI_WEBHOOK_TIMEOUT_SECONDS="60")
    directory = deployment.metrics_directory
    replicas, _ = connection_to_each_worker(
        deployment.url,
        directory,
        send=_live,
        sample="hokusai_http_requests_total",
        workers=2,
        labels={"route": "/live"},
    )
    before = per_worker(directory, REGISTERED)
    try:
        with ThreadPoolExecutor(len(replicas)) as pool:
            batches = pool.map(
                lambda client: [
                    deployment.register(client, model_type)
                    for _ in range(REGISTRATIONS // len(replicas))
                ],
                replicas.values(),
            )
            results = [result for batch in batches for result in batch]
        _wait(
            "every delivery arrived (the held one first)",
            lambda: len(deployment.arrivals(model_type)) == REGISTRATIONS,
        )
    finally:
        release.set()
        for client in replicas.values():
            client.close()
    _wait(
        "every delivery recorded delivered",
        lambda: deployment.states(model_type) == ["delivered"] * REGISTRATIONS,
    )

    # Both replicas registered (half each), versions are distinct, one event each.
    after = per_worker(directory, REGISTERED)
    assert sorted(replicas) == sorted(after)
    assert {pid: after[pid] - before.get(pid, 0) for pid in after} == {
        pid: REGISTRATIONS // 2 for pid in replicas
    }
    assert sorted(int(r["version"]) for r in results) == list(range(1, REGISTRATIONS + 1))
    text = httpx.get(f"{deployment.url}/metrics", timeout=30).text
    assert sum(scraped(text, REGISTERED)) == sum(after.values())  # totals of both replicas

    # Exactly once, on the wire and in the attempt log.
    deliveries = deployment.deliveries(model_type)
    assert sorted(deliveries) == sorted(r["model_id"] for r in results)
    events = {d["event_id"] for d in deliveries.values()}
    arrived = [r.webhook_id for r in deployment.arrivals(model_type)]
    assert Counter(arrived) == Counter(events)  # each webhook-id once, none missing
    assert all(receiver.verified)
    assert not events & {*receiver.overlaps, *receiver.abandoned}  # never two at once, none cut
    owners = {w.owner for w in workers}
    senders: Counter[str] = Counter()
    for delivery in deliveries.values():
        ((status, error, sender),) = _log(delivery)  # one attempt row, no attempt sent twice
        assert (status, error, delivery["attempts"]) == (200, None, 1)
        senders[sender] += 1
    assert set(senders) == owners  # both workers delivered
    assert sorted(senders.values()) == [1, REGISTRATIONS - 1]  # the held one, and the rest


def test_a_worker_killed_mid_delivery_loses_nothing(
    deployment: Deployment, start_workers: Callable[..., list[Worker]]
):
    model_type = f"scale{uuid.uuid4().hex[:10]}"
    receiver = deployment.receiver
    receiver.answer((200, {}, 60.0, "held"))  # the first delivery stalls: the kill lands mid-send
    # An attempt gives up after 5 s (the kill comes well before); a lease lasts 10 s.
    workers = start_workers(
        2, HOKUSAI_WEBHOOK_TIMEOUT_SECONDS="5", HOKUSAI_WEBHOOK_LEASE_SECONDS="10"
    )
    with httpx.Client(base_url=deployment.url, timeout=60) as client:
        first = deployment.register(client, model_type)
        _wait("the first delivery is in flight", lambda: len(deployment.arrivals(model_type)) == 1)
        (held,) = deployment.deliveries(model_type).values()
        ((_, error, holder),) = _log(held)
        assert error == IN_FLIGHT
        (victim,) = [w for w in workers if w.owner == holder]
        (survivor,) = [w for w in workers if w is not victim]
        os.kill(victim.process.pid, signal.SIGKILL)
        assert victim.process.wait(30) == -signal.SIGKILL
        later = [deployment.register(client, model_type) for _ in range(AFTER_THE_KILL)]
    everything = [first, *later]
    _wait(
        "every delivery recorded delivered",
        lambda: deployment.states(model_type) == ["delivered"] * len(everything),
    )

    deliveries = deployment.deliveries(model_type)
    assert sorted(deliveries) == sorted(r["model_id"] for r in everything)
    # The killed attempt counts, as lost; after its lease the survivor sent the event again.
    resent = deliveries[first["model_id"]]
    assert resent["attempts"] == 2
    assert _log(resent) == [(None, LOST, victim.owner), (200, None, survivor.owner)]
    for model_id in (r["model_id"] for r in later):
        assert _log(deliveries[model_id]) == [(200, None, survivor.owner)]
    # On the wire: the killed attempt reached the receiver and was hung up on; the resend is the
    # same event — same webhook-id, same body, both signed — so the receiver can drop it.
    arrivals = deployment.arrivals(model_type)
    twice = [a for a in arrivals if a.json["model_id"] == first["model_id"]]
    assert [a.webhook_id for a in twice] == [resent["event_id"]] * 2
    assert twice[0].body == twice[1].body
    assert resent["event_id"] in receiver.abandoned
    by_id = Counter(a.webhook_id for a in arrivals)
    assert by_id == Counter({d["event_id"]: 1 for d in deliveries.values()}) + Counter(
        [resent["event_id"]]
    )  # nothing lost, and the only duplicate is the killed attempt
    assert all(receiver.verified)
