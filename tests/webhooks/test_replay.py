"""Replay: an endpoint gets the events recorded before it existed or while it was disabled,
with their original webhook ids, once; and a disabled endpoint can be enabled again."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hokusai.cli.main import app
from hokusai.errors import ConflictError, EndpointNotFoundError, ValidationError
from hokusai.webhooks.hub import Webhooks
from hokusai.webhooks.tables import events
from tests.backends import Backend
from tests.webhooks.conftest import SECRET
from tests.webhooks.helpers import drive, fake_result

runner = CliRunner()
LONG_AGO = datetime.fromtimestamp(0, tz=timezone.utc)


@pytest.fixture
def quiet(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Webhooks with no endpoint and no background sender (the CLI sees the same store on the
    embedded backend; an outbox of their own on the stack)."""
    monkeypatch.setenv("HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")  # for the CLI
    hooks = Webhooks(
        backend.settings(
            own_database=True,
            webhook_background=False,
            webhook_allow_private_networks=True,  # the receivers are on loopback
        )
    )
    yield hooks
    hooks.close()


def _promotion(hooks: Webhooks, n: int) -> str:
    return hooks.announce_promotion(fake_result(n), alias="champion", previous_version=None)


def _set_created(hooks: Webhooks, event_id: str, when: float) -> None:
    with hooks.engine.begin() as conn:
        conn.execute(events.update().where(events.c.id == event_id).values(created_at=when))


def _delivered_ids(hooks: Webhooks, endpoint_id: str) -> list[str]:
    return sorted(
        d["event_id"]
        for d in hooks.outbox.deliveries(state="delivered")
        if d["endpoint_id"] == endpoint_id
    )


@pytest.mark.backends
def test_an_endpoint_added_later_gets_past_events_with_their_ids_once(quiet, receiver):
    before = [quiet.announce_registration(fake_result(n)) for n in (1, 2)]  # nobody listening
    assert quiet.outbox.deliveries() == []
    endpoint, _ = quiet.add_endpoint(receiver.url, secret=SECRET)
    assert quiet.replay(endpoint.id, since=LONG_AGO) == 2
    assert quiet.replay(endpoint.id, since=LONG_AGO) == 0  # idempotent: already queued
    drive(quiet.dispatcher(), lambda: len(_delivered_ids(quiet, endpoint.id)) == 2)
    assert sorted(receiver.ids()) == sorted(before)  # the original webhook ids
    assert receiver.verified == [True, True]
    assert quiet.replay(endpoint.id, since=LONG_AGO) == 0  # delivered ones are not sent again


def test_replay_takes_the_window_and_the_subscriptions(quiet):
    first, second, third = (quiet.announce_registration(fake_result(n)) for n in (1, 2, 3))
    promoted = _promotion(quiet, 4)
    for event_id, when in ((first, 100.0), (second, 200.0), (third, 300.0), (promoted, 200.0)):
        _set_created(quiet, event_id, when)
    registered, _ = quiet.add_endpoint("http://127.0.0.1:9/r", events="model_registered")
    everything, _ = quiet.add_endpoint("http://127.0.0.1:9/e")
    quiet.test_endpoint(everything.id)  # a ping event, now: pings are never replayed
    since = datetime.fromtimestamp(150, tz=timezone.utc)
    until = datetime.fromtimestamp(250, tz=timezone.utc)

    assert quiet.replay(registered.id, since=since, until=until) == 1  # not the promotion
    assert quiet.replay(everything.id, since=since, until=until) == 2
    assert quiet.replay(everything.id, since=LONG_AGO, event_types=["model_promoted"]) == 0
    assert quiet.replay(everything.id, since=LONG_AGO, event_types=["model_registered"]) == 2
    assert quiet.replay(everything.id, since=LONG_AGO) == 0  # and no ping
    queued = {(d["endpoint_id"], d["event_id"]) for d in quiet.outbox.deliveries()}
    assert (registered.id, second) in queued
    assert (registered.id, promoted) not in queued
    assert {e for ep, e in queued if ep == everything.id} >= {first, second, third, promoted}


@pytest.mark.backends
def test_replay_requeues_failed_and_dead_deliveries_and_skips_the_rest(quiet, receiver):
    endpoint, _ = quiet.add_endpoint(receiver.url, secret=SECRET)
    receiver.answer((400, {}, 0, "not yet"))
    for n in (1, 2):
        quiet.announce_registration(fake_result(n))
    dispatcher = quiet.dispatcher()
    drive(dispatcher, lambda: quiet.outbox.due_count() == 0)
    (failed,) = quiet.outbox.deliveries(state="failed")
    (delivered,) = quiet.outbox.deliveries(state="delivered")
    assert quiet.replay(endpoint.id, since=LONG_AGO) == 1  # the failed one; not the delivered
    drive(dispatcher, lambda: quiet.outbox.stats()["delivered"] == 2)
    assert Counter(receiver.ids()) == Counter({failed["event_id"]: 2, delivered["event_id"]: 1})
    assert quiet.outbox.deliveries(state="delivered")[0]["attempts"] == 1  # reset, like redeliver


def test_replay_errors_are_clear(quiet):
    endpoint, _ = quiet.add_endpoint("http://127.0.0.1:9/x")
    with pytest.raises(EndpointNotFoundError, match="No webhook endpoint") as missing:
        quiet.replay("ep_missing", since=LONG_AGO)
    assert missing.value.code == "endpoint_not_found"
    with pytest.raises(ValidationError, match="until must be later than since") as window:
        quiet.replay(endpoint.id, since=LONG_AGO, until=LONG_AGO - timedelta(days=1))
    assert window.value.code == "validation_error"
    with pytest.raises(ValidationError, match="Unknown event type 'nope'"):
        quiet.replay(endpoint.id, since=LONG_AGO, event_types=["nope"])
    quiet.endpoints.set_enabled(endpoint.id, False, reason="by hand")
    with pytest.raises(ConflictError, match="disabled \\(by hand\\); enable it first") as off:
        quiet.replay(endpoint.id, since=LONG_AGO)
    assert off.value.code == "conflict"


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout


def test_410_then_enable_then_replay_delivers_what_was_missed(quiet, receiver):
    """The whole story from the CLI: a 410 disables the endpoint, an event is recorded while it
    is disabled, the endpoint is enabled and the missed event replayed — original id, valid
    signature."""
    endpoint, _ = quiet.add_endpoint(receiver.url, secret=SECRET)
    receiver.answer((410, {}, 0, "gone"))
    gone = quiet.announce_registration(fake_result(1))
    dispatcher = quiet.dispatcher()
    drive(dispatcher, lambda: not quiet.endpoints.get(endpoint.id).enabled)
    reason = quiet.endpoints.get(endpoint.id).disabled_reason
    assert reason is not None and reason.startswith("410 Gone from the receiver at ")
    disabled_at = reason.rsplit(" at ", 1)[1]
    datetime.fromisoformat(disabled_at)  # copy-pasteable into --since
    _set_created(quiet, gone, time.time() - 60)  # well before the disabling, whatever the clock
    missed = quiet.announce_registration(fake_result(2))
    assert [d["event_id"] for d in quiet.outbox.deliveries()] == [gone]  # nothing queued for it

    code, out = _cli("webhooks", "enable", endpoint.id, "--json")
    assert code == 0, out
    enabled = json.loads(out)
    assert (enabled["enabled"], enabled["disabled_reason"]) == (True, None)

    receiver.always((200, {}, 0, "ok"))
    code, out = _cli("webhooks", "replay", "--endpoint", endpoint.id, "--since", disabled_at)
    assert code == 0, out
    assert "queued 1 delivery(ies)" in out
    code, out = _cli(
        "webhooks", "replay", "--endpoint", endpoint.id, "--since", disabled_at, "--json"
    )
    assert json.loads(out) == {"queued": 0}
    drive(dispatcher, lambda: _delivered_ids(quiet, endpoint.id) == [missed])
    assert receiver.ids() == [gone, missed]  # the original webhook-id
    assert receiver.verified == [True, True]  # signed with the endpoint's secret
    assert receiver.received[1].json["event_id"] == missed


def test_cli_replay_validates_its_times(quiet):
    endpoint, _ = quiet.add_endpoint("http://127.0.0.1:9/x")
    result = runner.invoke(
        app, ["webhooks", "replay", "--endpoint", endpoint.id, "--since", "yesterday"]
    )
    assert isinstance(result.exception, ValidationError)
    assert "--since must be an ISO-8601 time" in str(result.exception)
    code, out = _cli(
        "webhooks",
        "replay",
        "--endpoint",
        endpoint.id,
        "--since",
        "2000-01-01T00:00:00Z",
        "--until",
        "2000-01-02",
        "--event-type",
        "model_registered",
    )
    assert code == 0, out
    assert "queued 0" in out


def test_enable_resumes_pending_deliveries(quiet, receiver):
    endpoint, _ = quiet.add_endpoint(receiver.url, secret=SECRET)
    event = quiet.announce_registration(fake_result(1))
    quiet.endpoints.set_enabled(endpoint.id, False, reason="maintenance")
    dispatcher = quiet.dispatcher()
    assert dispatcher.run_once() == 0
    assert quiet.enable_endpoint(endpoint.id).enabled
    drive(dispatcher, lambda: quiet.outbox.stats()["delivered"] == 1)
    assert receiver.ids() == [event]
    with pytest.raises(EndpointNotFoundError):
        quiet.enable_endpoint("ep_missing")
    with quiet.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 1
