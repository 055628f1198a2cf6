"""The outbox: one event per version, none for failed registrations, the reconciler."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from hokusai.errors import RegistrationError
from hokusai.services.model_registry import HokusaiModelRegistry
from hokusai.webhooks.hub import Webhooks
from hokusai.webhooks.tables import events
from tests.backends import Backend
from tests.legacy_code import legacy_register_baseline
from tests.webhooks.helpers import fake_result


@pytest.fixture
def quiet(backend: Backend) -> Any:
    """The test's store (an outbox of its own on the stack) with no endpoint and no background
    sender (endpoints on loopback)."""
    return backend.settings(
        own_database=True, webhook_background=False, webhook_allow_private_networks=True
    )


def _event_keys(hooks: Webhooks) -> list[str]:
    with hooks.engine.connect() as conn:
        return sorted(conn.execute(sa.select(events.c.dedupe_key)).scalars())


@pytest.mark.backends
def test_every_registration_writes_its_event_before_returning(quiet, backend, forest):
    hooks = Webhooks(quiet)
    registry = HokusaiModelRegistry(settings=quiet, announcer=hooks)
    result = registry.register_baseline(forest, backend.model_type("classification"), {})
    assert _event_keys(hooks) == [f"model_registered:run:{result['registration_run_id']}"]
    hooks.close()


@pytest.mark.backends
def test_a_failed_registration_writes_no_event(quiet, backend, forest):
    def explode(result: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    hooks = Webhooks(quiet)
    registry = HokusaiModelRegistry(settings=quiet, announcer=hooks, hooks=[explode])
    with pytest.raises(RegistrationError):
        registry.register_baseline(forest, backend.model_type("classification"), {})
    assert _event_keys(hooks) == []
    assert (
        registry.client.search_model_versions(f"name = '{backend.model_name('classification')}'")
        == []
    )
    hooks.close()


def test_one_event_per_version_whatever_happens(quiet):
    hooks = Webhooks(quiet)
    assert hooks.announce_registration(fake_result(1)) is not None
    assert hooks.announce_registration(fake_result(1)) is None
    assert _event_keys(hooks) == ["model_registered:hokusai_lead_scoring_baseline/1"]
    hooks.close()


def test_a_duplicate_event_is_recorded_once_on_every_database(tmp_path, database_url):
    """The dedupe key decides, on PostgreSQL too (where an INSERT's row count is -1 unless
    asked for: the duplicate was then taken as new, and its deliveries broke the foreign key)."""
    from hokusai.config import Settings

    hooks = Webhooks(
        Settings(
            home=tmp_path / "home",
            database_url=database_url,
            webhook_background=False,
            webhook_allow_private_networks=True,
        )
    )
    hooks.add_endpoint("http://127.0.0.1:9/x", secret="s")
    assert hooks.announce_registration(fake_result(1)) is not None
    assert hooks.announce_registration(fake_result(1)) is None
    assert _event_keys(hooks) == ["model_registered:hokusai_lead_scoring_baseline/1"]
    assert hooks.outbox.stats()["pending"] == 1
    hooks.close()


def test_reconciler_records_missing_events_once_and_skips_backfilled(quiet, forest):
    hooks = Webhooks(quiet)
    silent = HokusaiModelRegistry(settings=quiet, announcer=None)
    first = silent.register_baseline(forest, "classification", {"k": 1})
    second = silent.register_baseline(forest, "classification", {})
    legacy_register_baseline(silent.tracking_uri, quiet.home_path, "ranking", {})
    silent.backfill()
    assert _event_keys(hooks) == []

    assert hooks.reconcile(silent.queries, min_age_seconds=30) == []  # too young: still theirs
    created = hooks.reconcile(silent.queries, min_age_seconds=0)
    assert sorted(created) == sorted([first["model_id"], second["model_id"]])
    assert hooks.reconcile(silent.queries, min_age_seconds=0) == []

    with hooks.engine.connect() as conn:
        payload = conn.execute(
            sa.select(events.c.payload).where(events.c.model_version == "1")
        ).scalar_one()
    import json

    from hokusai.webhooks.payloads import model_registered_schema

    body = json.loads(payload)
    import jsonschema

    jsonschema.validate(body, model_registered_schema())
    assert body["model_uuid"] == first["model_uuid"]
    assert body["metadata"] == {"k": 1}
    hooks.close()


def test_reconciler_cost_is_bounded_by_its_limit(quiet, forest):
    hooks = Webhooks(quiet)
    silent = HokusaiModelRegistry(settings=quiet, announcer=None)
    for _ in range(3):
        silent.register_baseline(forest, "classification", {})
    assert len(hooks.reconcile(silent.queries, limit=2, min_age_seconds=0)) == 2
    assert len(hooks.reconcile(silent.queries, limit=3, min_age_seconds=0)) == 1
    hooks.close()


def test_stats_count_states(quiet):
    hooks = Webhooks(quiet)
    hooks.add_endpoint("http://127.0.0.1:9/x", secret="s")
    hooks.announce_registration(fake_result(1))
    stats = hooks.outbox.stats()
    assert stats["pending"] == 1
    assert stats["due"] == 1
    assert stats["dead"] == 0
    assert stats["attempts"] == 0
    hooks.close()
