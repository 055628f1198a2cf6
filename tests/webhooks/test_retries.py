"""Retries, Retry-After, timeouts, 410, other 4xx, dead events and redelivery."""

from __future__ import annotations

import time
from typing import Any

import pytest

from hokusai.config import Settings
from hokusai.webhooks.hub import Webhooks
from tests.backends import Backend
from tests.webhooks.conftest import SECRET
from tests.webhooks.helpers import drive, fake_result


@pytest.fixture
def manual(backend: Backend, receiver) -> Any:
    """Webhooks with no background sender (an outbox of their own on the stack): the test
    drives the dispatcher itself."""
    hooks = Webhooks(
        backend.settings(
            own_database=True,
            webhook_allow_private_networks=True,
            webhook_url=receiver.url,
            webhook_secret=SECRET,
            webhook_retry_schedule="0.05,0.05",
            webhook_timeout_seconds=0.3,
            webhook_background=False,
        )
    )
    yield hooks
    hooks.close()


def _state(hooks: Webhooks) -> dict[str, Any]:
    (delivery,) = hooks.outbox.deliveries()
    return delivery


@pytest.mark.backends
def test_5xx_is_retried_with_the_same_webhook_id(manual, receiver):
    receiver.answer((503, {}, 0, "busy"), (500, {}, 0, "oops"))
    event_id = manual.announce_registration(fake_result(1))
    dispatcher = manual.dispatcher()
    drive(dispatcher, lambda: _state(manual)["state"] == "delivered")
    assert receiver.ids() == [event_id] * 3
    assert all(receiver.verified)
    log = manual.outbox.attempts(_state(manual)["delivery_id"])
    assert [a["status_code"] for a in log] == [503, 500, 200]
    assert log[0]["response_snippet"] == "busy"
    assert all(a["latency_ms"] >= 0 for a in log)


def test_timeouts_are_recorded_and_retried(manual, receiver):
    receiver.answer((200, {}, 1.0, "too slow"))
    manual.announce_registration(fake_result(1))
    drive(manual.dispatcher(), lambda: _state(manual)["state"] == "delivered")
    log = manual.outbox.attempts(_state(manual)["delivery_id"])
    assert log[0]["status_code"] is None
    assert "timeout" in log[0]["error"]
    assert log[-1]["status_code"] == 200


def test_connection_refused_is_retried(tmp_path):
    hooks = Webhooks(
        Settings(
            home=tmp_path / "h",
            webhook_allow_private_networks=True,
            webhook_url="http://127.0.0.1:9/nothing-listens",
            webhook_secret=SECRET,
            webhook_retry_schedule="0.01",
            webhook_background=False,
        )
    )
    hooks.announce_registration(fake_result(1))
    dispatcher = hooks.dispatcher()
    drive(dispatcher, lambda: _state(hooks)["state"] == "dead")
    log = hooks.outbox.attempts(_state(hooks)["delivery_id"])
    assert len(log) == 2
    assert all(a["status_code"] is None and "ConnectError" in a["error"] for a in log)
    hooks.close()


def test_429_retry_after_is_honoured(manual, receiver):
    receiver.answer((429, {"Retry-After": "1"}, 0, "slow down"))
    manual.announce_registration(fake_result(1))
    dispatcher = manual.dispatcher()
    assert dispatcher.run_once() == 1
    delivery = _state(manual)
    assert delivery["state"] == "pending"
    assert delivery["next_attempt_at"] - time.time() > 0.8  # not the 0.05 s schedule
    assert dispatcher.run_once() == 0  # not due yet
    drive(dispatcher, lambda: _state(manual)["state"] == "delivered", timeout=5)
    times = [r.at for r in receiver.received]
    assert times[1] - times[0] >= 0.9


def test_410_disables_the_endpoint(manual, receiver):
    receiver.answer((410, {}, 0, "gone"))
    manual.announce_registration(fake_result(1))
    manual.dispatcher().run_once()
    assert _state(manual)["state"] == "failed"
    (endpoint,) = manual.endpoints.list()
    assert endpoint.enabled is False
    assert "410" in endpoint.disabled_reason
    assert manual.announce_registration(fake_result(2)) is not None
    assert len(manual.outbox.deliveries()) == 1  # nothing queued for a disabled endpoint


def test_other_4xx_fail_without_retry_and_keep_the_response(manual, receiver):
    receiver.answer((400, {}, 0, '{"error": "bad payload"}'))
    manual.announce_registration(fake_result(1))
    dispatcher = manual.dispatcher()
    dispatcher.run_once()
    delivery = _state(manual)
    assert delivery["state"] == "failed"
    assert delivery["last_status_code"] == 400
    time.sleep(0.1)
    assert dispatcher.run_once() == 0
    log = manual.outbox.attempts(delivery["delivery_id"])
    assert log[0]["response_snippet"] == '{"error": "bad payload"}'


@pytest.mark.backends
def test_dead_after_the_schedule_then_redelivered_with_the_same_id(manual, receiver):
    receiver.always((500, {}, 0, "down"))
    event_id = manual.announce_registration(fake_result(1))
    dispatcher = manual.dispatcher()
    drive(dispatcher, lambda: _state(manual)["state"] == "dead")
    assert len(receiver.received) == 3  # first attempt + two retries
    assert manual.outbox.stats()["dead"] == 1

    receiver.always((200, {}, 0, "ok"))
    assert manual.outbox.redeliver(event_id) == 1
    drive(dispatcher, lambda: _state(manual)["state"] == "delivered")
    assert set(receiver.ids()) == {event_id}
    assert len(manual.outbox.attempts(_state(manual)["delivery_id"])) == 4


@pytest.mark.backends
def test_redeliver_all_failed(manual, receiver):
    receiver.always((400, {}, 0, "no"))
    for n in (1, 2):
        manual.announce_registration(fake_result(n))
    dispatcher = manual.dispatcher()
    dispatcher.run_once()
    assert manual.outbox.stats()["failed"] == 2
    receiver.always((200, {}, 0, "ok"))
    assert manual.outbox.redeliver_all_failed() == 2
    drive(dispatcher, lambda: manual.outbox.stats()["delivered"] == 2)


def test_redeliver_unknown_event_is_a_clear_error(manual):
    from hokusai.errors import EventNotFoundError

    with pytest.raises(EventNotFoundError, match="No webhook event") as info:
        manual.outbox.redeliver("evt_missing")
    assert info.value.code == "event_not_found"
