"""Announcing verifications: the real outbox (SQLite and PostgreSQL), one event of each kind per
idempotency key, signed deliveries to real loopback receivers, and event filters."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hokusai.cli.main import app
from hokusai.config import Settings
from hokusai.errors import ValidationError
from hokusai.registry import Announcer
from hokusai.webhooks.endpoints import EVENT_TYPES, validate_events
from hokusai.webhooks.hub import Webhooks
from hokusai.webhooks.payloads import event_schema
from hokusai.webhooks.tables import events
from tests.webhooks.conftest import SECRET
from tests.webhooks.helpers import drive, fake_result, verification_result
from tests.webhooks.receiver import Receiver, running_receiver

runner = CliRunner()


@pytest.fixture
def make_hooks(tmp_path: Path) -> Iterator[Callable[..., Webhooks]]:
    """Webhooks over a project database of this test, no background sender, loopback allowed
    (more than one may share the database: they are separate processes' views of it)."""
    made: list[Webhooks] = []

    def make(**overrides: Any) -> Webhooks:
        values: dict[str, Any] = {
            "home": tmp_path / "home",
            "webhook_background": False,
            "webhook_allow_private_networks": True,
            **overrides,
        }
        made.append(Webhooks(Settings(**values)))
        return made[-1]

    yield make
    for hooks in made:
        hooks.close()


def _recorded(hooks: Webhooks) -> list[tuple[str, str, dict[str, Any]]]:
    """(event type, dedupe key, payload) of every event in the outbox, oldest first."""
    with hooks.engine.connect() as conn:
        rows = conn.execute(
            sa.select(events.c.event_type, events.c.dedupe_key, events.c.payload).order_by(
                events.c.created_at, events.c.event_type.desc()
            )
        ).all()
    return [(row.event_type, row.dedupe_key, json.loads(row.payload)) for row in rows]


def test_a_rejected_verification_records_only_improvement_verified(make_hooks, database_url):
    hooks = make_hooks(database_url=database_url)
    result = verification_result(accepted=False)
    (event_id,) = hooks.announce_verification(result)
    ((event_type, key, payload),) = _recorded(hooks)
    assert event_type == "improvement.verified"
    assert key == f"improvement.verified:{result['idempotency_key']}"
    assert payload["event_id"] == event_id
    assert payload["accepted"] is False
    jsonschema.validate(payload, event_schema(event_type))
    stored = hooks.outbox.event(event_id)
    assert (stored["model_name"], stored["model_version"]) == ("hokusai_lead_scoring_improved", "3")


def test_an_accepted_verification_records_both_once_whoever_announces_again(
    make_hooks, database_url
):
    hooks = make_hooks(database_url=database_url)
    result = verification_result()
    first = hooks.announce_verification(result)
    assert len(first) == 2
    recorded = _recorded(hooks)
    assert [e[0] for e in recorded] == ["improvement.verified", "deltaone.accepted"]
    assert [e[2]["event_id"] for e in recorded] == first
    for event_type, key, payload in recorded:
        assert key == f"{event_type}:{result['idempotency_key']}"
        jsonschema.validate(payload, event_schema(event_type))

    assert hooks.announce_verification(result) == []
    other_process = make_hooks(database_url=database_url)
    assert other_process.announce_verification(result) == []
    assert Counter(e[0] for e in _recorded(hooks)) == {
        "improvement.verified": 1,
        "deltaone.accepted": 1,
    }

    # another verification (other inputs: another idempotency key) is announced
    again = verification_result(seed=1)
    assert again["idempotency_key"] != result["idempotency_key"]
    assert len(hooks.announce_verification(again)) == 2
    assert len(_recorded(hooks)) == 4


def test_a_malformed_result_records_nothing(make_hooks):
    hooks = make_hooks()
    result = verification_result()
    result["primary"]["delta_bps"] = 177.0
    with pytest.raises(ValidationError, match="delta_bps must be an integer"):
        hooks.announce_verification(result)
    assert _recorded(hooks) == []


def test_an_accepted_verification_without_a_contributor_credits_no_one(make_hooks, caplog):
    hooks = make_hooks()
    with caplog.at_level(logging.WARNING, logger="hokusai.webhooks.hub"):
        ids = hooks.announce_verification(verification_result(contributor=None))
    assert len(ids) == 1
    assert [e[0] for e in _recorded(hooks)] == ["improvement.verified"]
    assert "no deltaone.accepted is sent" in caplog.text


def test_events_reach_a_real_receiver_signed(webhooks, receiver):
    """Background sender, env endpoint (no filter: every event), Standard Webhooks signatures."""
    ids = webhooks.announce_verification(verification_result())
    receiver.wait_for(lambda got: len(got) == 2, timeout=10)
    assert sorted(receiver.ids()) == sorted(ids)
    assert receiver.verified == [True, True]  # standardwebhooks.Webhook(secret).verify passed
    by_type = {r.json["event_type"]: r for r in receiver.received}
    assert set(by_type) == {"improvement.verified", "deltaone.accepted"}
    for event_type, delivery in by_type.items():
        headers = delivery.headers
        assert headers["x-hokusai-event"] == event_type
        assert headers["webhook-id"] == delivery.json["event_id"]
        assert headers["webhook-signature"].startswith("v1,")
        expected = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
        assert headers["x-hokusai-signature"] == f"sha256={expected}"
        jsonschema.validate(delivery.json, event_schema(event_type))
    deltaone = by_type["deltaone.accepted"].json
    assert deltaone["eval_id"] == by_type["improvement.verified"].json["verification_id"]
    assert sum(c["weight_bps"] for c in deltaone["contributors"]) == 10_000


def test_an_endpoint_filtered_to_deltaone_accepted_receives_only_that(make_hooks, receiver):
    hooks = make_hooks(webhook_url=receiver.url, webhook_secret=SECRET)  # "*": everything
    with running_receiver(SECRET) as filtered, running_receiver(SECRET) as registrations:
        only_deltaone, _ = hooks.add_endpoint(
            filtered.url, events=["deltaone.accepted"], secret=SECRET
        )
        hooks.add_endpoint(registrations.url, events="model_registered", secret=SECRET)
        rejected = hooks.announce_verification(verification_result(accepted=False))
        accepted = hooks.announce_verification(
            verification_result(candidate_id="hokusai_lead_scoring_improved/4")
        )
        dispatcher = hooks.dispatcher()
        try:
            drive(dispatcher, lambda: hooks.outbox.stats()["delivered"] == 4)
        finally:
            dispatcher.client.close()
        assert len(receiver.received) == 3
        assert Counter(r.json["event_type"] for r in receiver.received) == {
            "improvement.verified": 2,
            "deltaone.accepted": 1,
        }
        ((delivery,),) = [filtered.received]
        assert delivery.json["event_type"] == "deltaone.accepted"
        assert delivery.webhook_id == accepted[1]
        assert delivery.json["model_id"] == "hokusai_lead_scoring_improved/4"
        assert filtered.verified == [True]
        assert registrations.received == []
        deliveries = hooks.outbox.deliveries(limit=100)
        assert {d["event_id"] for d in deliveries if d["endpoint_id"] == only_deltaone.id} == {
            accepted[1]
        }
        assert rejected[0] not in {d["event_id"] for d in deliveries if d["endpoint_id"] != "env"}


def test_replay_by_event_type_queues_a_late_endpoint_its_verifications(make_hooks):
    from datetime import datetime, timezone

    hooks = make_hooks()
    hooks.announce_registration(fake_result(1))
    ids = hooks.announce_verification(verification_result())
    late, _ = hooks.add_endpoint("http://127.0.0.1:1/late", events="*")
    since = datetime(2020, 1, 1, tzinfo=timezone.utc)
    assert hooks.replay(late.id, since=since, event_types=["deltaone.accepted"]) == 1
    assert hooks.replay(late.id, since=since, event_types=["improvement.verified"]) == 1
    assert {d["event_id"] for d in hooks.outbox.deliveries(limit=100)} == set(ids)


def test_the_assembled_registry_announces_verifications(
    hook_settings: Settings, receiver: Receiver
):
    """``HokusaiModelRegistry``'s default announcer (the webhook layer opened on demand)."""
    from hokusai.services.model_registry import HokusaiModelRegistry

    registry = HokusaiModelRegistry(settings=hook_settings)
    announcer = registry.announcer
    assert isinstance(announcer, Announcer)
    assert type(announcer).__name__ == "_WebhooksOnDemand"
    try:
        ids = announcer.announce_verification(verification_result())
        assert len(ids) == 2
        assert announcer.announce_verification(verification_result()) == []
        receiver.wait_for(lambda got: len(got) == 2, timeout=10)
        assert sorted(receiver.ids()) == sorted(ids)
        assert all(receiver.verified)
    finally:
        announcer.webhooks.close()


# ---- event filters ------------------------------------------------------------------------


def test_filters_accept_the_verification_event_types():
    assert "improvement.verified" in EVENT_TYPES and "deltaone.accepted" in EVENT_TYPES
    assert validate_events("deltaone.accepted,improvement.verified") == [
        "deltaone.accepted",
        "improvement.verified",
    ]
    with pytest.raises(ValidationError, match="'deltaone'.*deltaone.accepted"):
        validate_events(["deltaone"])


def test_the_rest_schemas_know_every_event_type():
    from typing import get_args

    from hokusai.rest.schemas import EventType, KnownEventType

    assert set(get_args(KnownEventType)) == set(EVENT_TYPES)
    assert set(get_args(EventType)) == {*EVENT_TYPES, "*"}


def test_cli_subscribes_an_endpoint_to_verification_events(monkeypatch):
    monkeypatch.setenv("HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
    result = runner.invoke(
        app,
        [
            "webhooks",
            "add",
            "http://127.0.0.1:1/hook",
            "--events",
            "improvement.verified,deltaone.accepted",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["events"] == ["deltaone.accepted", "improvement.verified"]
    refused = runner.invoke(
        app, ["webhooks", "add", "http://127.0.0.1:1/x", "--events", "verified"]
    )
    assert isinstance(refused.exception, ValidationError)
