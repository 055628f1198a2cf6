"""Delivery guarantees: no attempt is ever in flight twice, every attempt has a total deadline
shorter than its lease, responses are read up to a cap, and no single endpoint or event blocks
the others. (A worker killed mid-send is in test_workers.py.)"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hokusai.config import Settings
from hokusai.webhooks.hub import Webhooks
from hokusai.webhooks.outbox import Claim
from hokusai.webhooks.sender import RESPONSE_CAP_BYTES, SNIPPET_CHARS, send
from hokusai.webhooks.tables import endpoints
from tests.webhooks.conftest import SECRET
from tests.webhooks.helpers import drive, fake_result
from tests.webhooks.receiver import Receiver, Stream, running_receiver


@pytest.fixture
def make_hooks(tmp_path: Path, receiver: Receiver) -> Iterator[Callable[..., Webhooks]]:
    """Webhooks to the receiver with no background sender, settings overridable."""
    made: list[Webhooks] = []

    def make(**overrides: Any) -> Webhooks:
        values: dict[str, Any] = {
            "home": tmp_path / "home",
            "webhook_url": receiver.url,
            "webhook_secret": SECRET,
            "webhook_background": False,
            "webhook_allow_private_networks": True,  # the receivers are on loopback
            **overrides,
        }
        made.append(Webhooks(Settings(**values)))
        return made[-1]

    yield make
    for hooks in made:
        hooks.close()


def _run_dispatchers(
    hooks: Webhooks, count: int, until: Callable[[], bool], timeout: float
) -> set[str]:
    """Run ``count`` dispatchers side by side (threads, own clients) until ``until()``."""
    dispatchers = [hooks.dispatcher() for _ in range(count)]
    stop = threading.Event()
    threads = [
        threading.Thread(target=d.run, args=(stop,), kwargs={"poll_seconds": 0.02}, daemon=True)
        for d in dispatchers
    ]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"not done in {timeout}s: {hooks.outbox.stats()}"
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        for d in dispatchers:
            d.client.close()
    return {d.owner for d in dispatchers}


def _attempt_log(hooks: Webhooks) -> list[dict[str, Any]]:
    return [
        {**a, "event_id": d["event_id"]}
        for d in hooks.outbox.deliveries(limit=1000)
        for a in hooks.outbox.attempts(d["delivery_id"])
    ]


def test_two_dispatchers_behind_a_slow_receiver_send_every_event_exactly_once(
    make_hooks, receiver, database_url
):
    """One claim per send: a batch claimed with one lease let rows expire in memory behind a
    slow receiver, and the second sender sent them too."""
    hooks = make_hooks(
        database_url=database_url,
        webhook_timeout_seconds=1.0,
        webhook_lease_seconds=2.0,
        webhook_retry_schedule="0.3,0.3",
    )
    events = [hooks.announce_registration(fake_result(n)) for n in range(1, 13)]
    receiver.always((200, {}, 0.4, "ok"))  # 12 × 0.4 s = 2.4× the lease in one batch
    owners = _run_dispatchers(hooks, 2, lambda: hooks.outbox.stats()["delivered"] == 12, timeout=60)
    assert Counter(receiver.ids()) == Counter(events)  # each exactly once
    assert receiver.overlaps == []
    assert all(receiver.verified)
    log = _attempt_log(hooks)
    assert [a["status_code"] for a in log] == [200] * 12
    assert {a["worker"] for a in log} == owners  # both took part


def test_a_receiver_slower_than_the_lease_never_has_one_event_in_flight_twice(
    make_hooks, receiver, database_url
):
    """The receiver holds each request longer than the lease: every attempt is cut at its
    deadline, counted, and retried only after; each attempt reaches the receiver once."""
    hooks = make_hooks(
        database_url=database_url,
        webhook_timeout_seconds=0.5,
        webhook_lease_seconds=1.0,
        webhook_retry_schedule="0.3,0.3,0.3",
    )
    events = [hooks.announce_registration(fake_result(n)) for n in range(1, 4)]
    receiver.always((200, {}, 3.0, "too late"))
    _run_dispatchers(hooks, 2, lambda: hooks.outbox.stats()["dead"] == 3, timeout=60)
    receiver.wait_for(lambda _: not +receiver.in_flight, timeout=10)  # all answered or dropped
    assert receiver.overlaps == []
    arrived = Counter(r.webhook_id for r in receiver.arrivals)
    assert arrived == Counter({event: 4 for event in events})  # 1 + 3 retries, once each
    log = _attempt_log(hooks)
    assert Counter(a["event_id"] for a in log) == arrived  # one logged attempt per request
    for attempt in log:
        assert attempt["status_code"] is None
        assert attempt["error"].startswith("timeout after 0.5s")
        assert attempt["latency_ms"] < 1000  # the deadline, well inside the 1 s lease


def test_a_trickling_body_is_cut_at_the_deadline_and_recorded_as_a_timeout(make_hooks, receiver):
    hooks = make_hooks(webhook_timeout_seconds=1.5, webhook_retry_schedule="5")
    receiver.answer((200, {}, 0, Stream(size=30, chunk=1, interval=1.0)))  # headers, 1 byte/s
    hooks.announce_registration(fake_result(1))
    dispatcher = hooks.dispatcher()
    started = time.monotonic()
    assert dispatcher.run_once() == 1
    assert time.monotonic() - started < 3.0  # not the 30 s the body takes
    (delivery,) = hooks.outbox.deliveries()
    assert delivery["state"] == "pending"  # a timeout is retried
    (attempt,) = hooks.outbox.attempts(delivery["delivery_id"])
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("timeout after 1.5s")
    assert "reading the HTTP 200 body" in attempt["error"]
    assert 1400 <= attempt["latency_ms"] < 2500
    dispatcher.client.close()


@pytest.fixture
def header_trickler() -> Iterator[str]:
    """A raw server that answers a status line, then one header byte every 0.2 s."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    for byte in b"x-slow: " + b"y" * 200:
                        if stop.wait(0.2):
                            return
                        conn.sendall(bytes([byte]))
                except OSError:
                    continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hooks"
    stop.set()
    server.close()
    thread.join(5)


def test_trickling_headers_are_cut_at_the_deadline_too(header_trickler):
    import httpx

    claim = Claim(
        delivery_id="dlv_1",
        event_id="evt_1",
        event_type="ping",
        body="{}",
        endpoint_id="ep_1",
        url=header_trickler,
        secret=SECRET,
        attempt=1,
        attempt_id=1,
        lease_expires_at=time.time() + 60,
    )
    with httpx.Client() as client:
        started = time.monotonic()
        attempt = send(client, claim, timeout=1.0)
    assert time.monotonic() - started < 2.0  # not 200 × 0.2 s
    assert attempt.status_code is None
    assert attempt.error is not None and attempt.error.startswith("timeout after 1s")


def test_a_huge_response_is_never_read_whole(make_hooks, receiver):
    hooks = make_hooks(webhook_timeout_seconds=5.0)
    huge = 50 * 2**20
    receiver.answer((200, {}, 0, Stream(size=huge)))
    hooks.announce_registration(fake_result(1))
    dispatcher = hooks.dispatcher()
    assert dispatcher.run_once() == 1
    receiver.wait_for(lambda _: receiver.finished == 1, timeout=10)
    (sent,) = receiver.sent_bytes
    assert sent < 8 * 2**20, sent  # the client hung up after its cap, not after 50 MB
    (delivery,) = hooks.outbox.deliveries()
    assert delivery["state"] == "delivered"
    (attempt,) = hooks.outbox.attempts(delivery["delivery_id"])
    assert attempt["status_code"] == 200
    assert attempt["response_snippet"] == "x" * SNIPPET_CHARS
    headers = receiver.received[0].headers
    assert (headers["accept-encoding"], headers["connection"]) == ("identity", "close")
    assert RESPONSE_CAP_BYTES <= 64 * 1024
    dispatcher.client.close()


def test_a_secret_that_cannot_sign_fails_its_own_deliveries_and_blocks_no_one(make_hooks, receiver):
    """Legacy data: a malformed whsec_ secret written before secrets were validated."""
    hooks = make_hooks(webhook_retry_schedule="0.05")
    with running_receiver(None) as other:
        broken, _ = hooks.add_endpoint(other.url)
        with hooks.engine.begin() as conn:
            conn.execute(
                endpoints.update()
                .where(endpoints.c.id == broken.id)
                .values(secret="whsec_AAAAAAAAAAAAAAAAA")
            )
        events = [hooks.announce_registration(fake_result(n)) for n in range(1, 4)]
        dispatcher = hooks.dispatcher()
        assert dispatcher.run_once() == 6  # the pass went through every delivery
        assert dispatcher.run_once() == 0  # and nothing is left to retry
        assert other.received == []
    assert sorted(receiver.ids()) == sorted(events)
    assert all(receiver.verified)
    by_endpoint: dict[str, list[dict[str, Any]]] = {}
    for delivery in hooks.outbox.deliveries():
        by_endpoint.setdefault(delivery["endpoint_id"], []).append(delivery)
    assert {d["state"] for d in by_endpoint["env"]} == {"delivered"}
    assert {d["state"] for d in by_endpoint[broken.id]} == {"failed"}
    for delivery in by_endpoint[broken.id]:
        assert delivery["attempts"] == 1
        assert delivery["last_error"].startswith("cannot sign: the endpoint's secret is invalid")
        assert "whsec_AAAA" not in delivery["last_error"]
    assert hooks.outbox.stats()["delivering"] == 0
    dispatcher.client.close()


def test_an_unexpected_sender_error_is_one_failed_attempt_and_the_pass_goes_on(
    make_hooks, receiver
):
    hooks = make_hooks(webhook_retry_schedule="0.05")
    with hooks.engine.begin() as conn:  # legacy row; httpx refuses it with a non-HTTPError
        conn.execute(
            endpoints.insert().values(
                id="ep_bad",
                url="http://[::1/x",
                secret=SECRET,
                events='["*"]',
                enabled=True,
                source="cli",
                created_at=0.0,
                updated_at=0.0,
            )
        )
    event = hooks.announce_registration(fake_result(1))
    dispatcher = hooks.dispatcher()
    drive(dispatcher, lambda: hooks.outbox.stats()["dead"] == 1)
    assert receiver.ids() == [event]
    (bad,) = [d for d in hooks.outbox.deliveries() if d["endpoint_id"] == "ep_bad"]
    assert bad["attempts"] == 2
    assert bad["last_error"].startswith("InvalidURL")
    dispatcher.client.close()
