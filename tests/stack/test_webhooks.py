"""The webhook layer on the stack: the outbox on PostgreSQL, a worker delivering to a real HTTP
receiver, and the reconciler reading MLflow through the tracking server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from hokusai.config import Settings
from hokusai.services.model_registry import HokusaiModelRegistry
from hokusai.webhooks.hub import Webhooks
from tests.webhooks.helpers import drive
from tests.webhooks.receiver import Receiver, running_receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(SECRET) as found:
        yield found


@pytest.fixture
def hook_settings(stack_settings: Settings, project_database: str, receiver: Receiver) -> Settings:
    return stack_settings.model_copy(
        update={
            "database_url": project_database,
            "webhook_url": receiver.url,
            "webhook_secret": SECRET,
            "webhook_allow_private_networks": True,
            "webhook_allow_http": True,
            "webhook_background": False,  # the worker below delivers, as a separate one would
            "webhook_retry_schedule": "0.05,0.05",
            "webhook_timeout_seconds": 2.0,
        }
    )


@pytest.fixture
def hub(hook_settings: Settings) -> Iterator[Webhooks]:
    layer = Webhooks(hook_settings)
    yield layer
    layer.close()


def _delivered(engine: Any) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT e.model_name || '/' || e.model_version, d.state "
                "FROM hokusai_webhook_deliveries d "
                "JOIN hokusai_webhook_events e ON e.id = d.event_id"
            )
        )
        return [(str(a), str(b)) for a, b in rows]


def test_registrations_are_delivered_from_the_postgresql_outbox(
    hook_settings, hub, receiver, logistic, model_type
):
    registry = HokusaiModelRegistry(settings=hook_settings, announcer=hub)
    results = [registry.register_baseline(logistic, model_type) for _ in range(2)]
    worker = hub.dispatcher(owner_kind="worker")
    drive(worker, lambda: len(receiver.received) == 2, timeout=30)

    assert all(receiver.verified)
    payloads = [received.json for received in receiver.received]
    assert sorted(p["model_id"] for p in payloads) == [r["model_id"] for r in results]
    assert sorted(_delivered(hub.engine)) == [(r["model_id"], "delivered") for r in results]


def test_the_reconciler_announces_through_the_tracking_server(
    hook_settings, hub, receiver, logistic, model_type
):
    """A version registered without any announcer (a script using the bare library) is found
    by the reconciler, which reads MLflow over HTTP, and announced exactly once."""
    silent = HokusaiModelRegistry(settings=hook_settings, announcer=None)
    result = silent.register_baseline(logistic, model_type)
    registry = HokusaiModelRegistry(settings=hook_settings, announcer=hub)
    recorded = registry.reconcile_webhook_events(min_age_seconds=0)
    assert result["model_id"] in recorded
    assert result["model_id"] not in registry.reconcile_webhook_events(min_age_seconds=0)
    drive(
        hub.dispatcher(owner_kind="worker"),
        lambda: any(r.json["model_id"] == result["model_id"] for r in receiver.received),
        timeout=30,
    )
    ours = [r for r in receiver.received if r.json["model_id"] == result["model_id"]]
    assert len(ours) == 1
