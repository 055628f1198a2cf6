"""Real worker processes: SIGKILL mid-send loses nothing and counts the attempt (so a delivery
that kills every worker still ends dead), two workers never double-send, SIGTERM exits
cleanly. Runs on SQLite and, where the machine has it, PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hokusai.config import Settings
from hokusai.webhooks.hub import Webhooks
from hokusai.webhooks.outbox import IN_FLIGHT, LOST
from tests.webhooks.conftest import SECRET
from tests.webhooks.helpers import fake_result

pytestmark = pytest.mark.slow


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env.update(
        HOKUSAI_HOME=str(settings.home),
        HOKUSAI_DATABASE_URL=settings.resolved_database_url,
        HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS="true",
        HOKUSAI_WEBHOOK_URL=str(settings.webhook_url),
        HOKUSAI_WEBHOOK_SECRET=SECRET,
        HOKUSAI_WEBHOOK_RETRY_SCHEDULE="0.05,0.05,0.05",
        HOKUSAI_WEBHOOK_POLL_SECONDS="0.02",
    )
    env.update(extra)
    return env


def _worker(settings: Settings, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hokusai.cli.main",
            "webhooks",
            "worker",
            "--reconcile-every",
            "0",
            *args,
        ],
        env=_env(settings, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def store(tmp_path: Path, receiver, database_url: str) -> Any:
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        webhook_allow_private_networks=True,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        webhook_background=False,
    )
    hooks = Webhooks(settings)
    yield hooks
    hooks.close()


def _all_delivered(hooks: Webhooks, count: int) -> bool:
    return hooks.outbox.stats()["delivered"] == count


def _wait(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not reached within {timeout}s")


def _kill(worker: subprocess.Popen[str]) -> None:
    try:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()


def test_a_worker_killed_mid_send_loses_nothing(store, receiver):
    events = [store.announce_registration(fake_result(n)) for n in range(1, 31)]
    receiver.answer(*[(200, {}, 0.05, "ok")] * 3)
    receiver.always((200, {}, 60.0, "held"))  # the 4th request is held: the kill lands mid-send
    first = _worker(
        store.settings, HOKUSAI_WEBHOOK_LEASE_SECONDS="4", HOKUSAI_WEBHOOK_TIMEOUT_SECONDS="2"
    )
    receiver.wait_for(lambda _: len(receiver.arrivals) == 4, timeout=60)
    _kill(first)
    stats = store.outbox.stats()
    assert (stats["delivered"], stats["delivering"]) == (3, 1)  # one claim at a time
    (held,) = store.outbox.deliveries(state="delivering")
    assert held["attempts"] == 1  # counted before it was sent
    assert [a["error"] for a in store.outbox.attempts(held["delivery_id"])] == [IN_FLIGHT]
    receiver.always((200, {}, 0, "ok"))
    second = _worker(
        store.settings, HOKUSAI_WEBHOOK_LEASE_SECONDS="4", HOKUSAI_WEBHOOK_TIMEOUT_SECONDS="2"
    )
    try:
        _wait(lambda: _all_delivered(store, 30), timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
    received = receiver.ids()
    assert set(received) == set(events)  # every event arrived
    assert all(receiver.verified)
    # at least once: the only duplicate is the attempt cut by the kill
    assert sum(count - 1 for count in Counter(received).values()) <= 1
    log = store.outbox.attempts(held["delivery_id"])
    assert [(a["status_code"], a["error"]) for a in log] == [(None, LOST), (200, None)]


def test_a_delivery_that_kills_every_worker_ends_dead(store, receiver):
    """A poison delivery: each worker that takes it dies mid-send. Each death is a counted,
    lost attempt; after max attempts (1 + one retry here) the delivery is dead."""
    event = store.announce_registration(fake_result(1))
    receiver.always((200, {}, 60.0, "held"))
    env = {
        "HOKUSAI_WEBHOOK_LEASE_SECONDS": "4",
        "HOKUSAI_WEBHOOK_TIMEOUT_SECONDS": "2",
        "HOKUSAI_WEBHOOK_RETRY_SCHEDULE": "0.05",
    }
    for crash in (1, 2):
        worker = _worker(store.settings, **env)
        try:
            receiver.wait_for(lambda _, n=crash: len(receiver.arrivals) == n, timeout=60)
        finally:
            _kill(worker)
        (delivery,) = store.outbox.deliveries()
        assert (delivery["state"], delivery["attempts"]) == ("delivering", crash)
    survivor = _worker(store.settings, **env)
    try:
        _wait(lambda: store.outbox.deliveries()[0]["state"] == "dead", timeout=60)
    finally:
        survivor.send_signal(signal.SIGTERM)
        code = survivor.wait(20)
    output = survivor.stdout.read() if survivor.stdout else ""
    assert code == 0, output[-3000:]
    (delivery,) = store.outbox.deliveries()
    assert delivery["attempts"] == 2
    assert delivery["last_error"] == LOST
    assert [a["error"] for a in store.outbox.attempts(delivery["delivery_id"])] == [LOST, LOST]
    assert receiver.ids() == [event, event]  # the survivor never sent it a third time


def test_two_workers_at_once_deliver_everything_exactly_once(store, receiver):
    events = [store.announce_registration(fake_result(n)) for n in range(1, 101)]
    receiver.always((200, {}, 0.005, "ok"))
    workers = [_worker(store.settings, "--batch-size", "10") for _ in range(2)]
    try:
        _wait(lambda: _all_delivered(store, 100), timeout=60)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(20) for worker in workers]
    assert codes == [0, 0]
    received = receiver.ids()
    assert sorted(received) == sorted(events)  # no event lost, none sent twice
    owners = {
        a["worker"]
        for d in store.outbox.deliveries(limit=1000)
        for a in store.outbox.attempts(d["delivery_id"])
    }
    assert len(owners) == 2  # both workers took part


def test_sigterm_finishes_the_attempt_in_flight_and_exits_zero(store, receiver):
    store.announce_registration(fake_result(1))
    receiver.always((200, {}, 1.0, "ok"))
    worker = _worker(store.settings)
    receiver_started = time.monotonic()
    _wait(lambda: store.outbox.stats()["delivering"] == 1, timeout=30)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert time.monotonic() - receiver_started < 20
    assert store.outbox.stats()["delivered"] == 1  # the attempt in flight was completed
