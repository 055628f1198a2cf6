"""An event exists iff its version exists and its registration succeeded — whatever step fails.

Failures are real: a hook that raises, outbox tables that are gone, and an MLflow client whose
chosen calls fail (a wrapper around the real client, everything else reaching the real store).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hokusai.config import Settings
from hokusai.errors import RegistrationError, RollbackIncompleteError
from hokusai.services.model_registry import HokusaiModelRegistry
from hokusai.webhooks.hub import Webhooks
from hokusai.webhooks.tables import events, reconciler_pending
from tests.conftest import CONTRIBUTOR


class FlakyClient:
    """A real ``MlflowClient`` whose named methods raise (``fail`` maps name → exception)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.fail: dict[str, Exception] = {}

    def __getattr__(self, name: str) -> Any:
        if name in self.fail:
            error = self.fail[name]

            def raising(*_args: Any, **_kwargs: Any) -> Any:
                raise error

            return raising
        return getattr(self._real, name)


@pytest.fixture
def quiet(tmp_path: Path) -> Settings:
    """Embedded settings, no endpoint, no background sender, reconciler takes any age."""
    return Settings(
        home=tmp_path / "home",
        webhook_background=False,
        webhook_reconcile_min_age_seconds=0,
    )


@pytest.fixture
def hub(quiet: Settings) -> Any:
    hub = Webhooks(quiet)
    yield hub
    hub.close()


def _events(hub: Webhooks) -> list[tuple[str, str, str]]:
    with hub.engine.connect() as conn:
        rows = conn.execute(
            sa.select(events.c.event_type, events.c.model_name, events.c.model_version)
        ).all()
    return sorted((row[0], row[1], row[2]) for row in rows)


def _versions(registry: Any, name: str) -> list[Any]:
    return list(registry.client.search_model_versions(f"name = '{name}'"))


def _logged_uri(registry: Any, forest: Any, settings: Settings) -> str:
    import mlflow
    import mlflow.sklearn

    mlflow.set_tracking_uri(registry.tracking_uri)
    try:
        experiment = registry.client.create_experiment(
            "ci", artifact_location=(settings.home_path / "ci").as_uri()
        )
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.sklearn.log_model(
                forest,
                name="model",
                serialization_format="cloudpickle",
                pip_requirements=["scikit-learn"],
            )
    finally:
        mlflow.set_tracking_uri(None)
    return str(info.model_uri)


def test_register_from_uri_rolls_back_exactly_the_version_it_created(quiet, hub, forest):
    def explode(_result: Any) -> None:
        raise RuntimeError("hook says no")

    registry = HokusaiModelRegistry(settings=quiet, announcer=hub, hooks=[explode])
    uri = _logged_uri(registry, forest, quiet)
    with pytest.raises(RegistrationError, match="hook says no.*rolled back") as info:
        registry.register_from_uri(uri, "classification", {"k": 1})
    assert info.value.code == "registration_failed"
    assert _versions(registry, "hokusai_classification_baseline") == []
    # The caller's logged model is theirs: it stays.
    assert registry.client.get_logged_model(uri.removeprefix("models:/")) is not None
    assert hub.reconcile(registry.queries) == []
    assert _events(hub) == []


def test_a_rollback_that_fails_says_so_and_the_version_is_never_announced(quiet, hub, forest):
    from mlflow import MlflowClient

    settings = quiet
    real = MlflowClient(
        tracking_uri=settings.resolved_tracking_uri, registry_uri=settings.resolved_registry_uri
    )
    flaky = FlakyClient(real)
    flaky.fail["set_model_version_tag"] = RuntimeError("store went away")  # the commit point
    flaky.fail["delete_model_version"] = RuntimeError("still away")  # and the rollback
    registry = HokusaiModelRegistry(settings=settings, announcer=hub, client=flaky)
    with pytest.raises(RollbackIncompleteError, match=r"hokusai_classification_baseline/1") as info:
        registry.register_baseline(forest, "classification", {})
    assert info.value.code == "rollback_incomplete"
    assert "never announced" in info.value.message
    left = _versions(registry, "hokusai_classification_baseline")
    assert [mv.tags["hokusai.registration_state"] for mv in left] == ["registering"]
    model_uuid = left[0].tags["hokusai.model_uuid"]

    # No read returns it, no pass announces it; the reconciler keeps watching it.
    assert registry.get_model_by_uuid(model_uuid) is None
    assert registry.list_models()[0] == []
    assert hub.reconcile(registry.queries) == []
    assert hub.reconcile(registry.queries) == []
    assert _events(hub) == []
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(reconciler_pending.c.version)).scalars().all() == ["1"]


def test_a_failed_commit_mark_rolls_back_and_writes_no_event(quiet, hub, forest):
    from mlflow import MlflowClient

    real = MlflowClient(
        tracking_uri=quiet.resolved_tracking_uri, registry_uri=quiet.resolved_registry_uri
    )
    flaky = FlakyClient(real)
    flaky.fail["set_model_version_tag"] = RuntimeError("lost the store at the last step")
    registry = HokusaiModelRegistry(settings=quiet, announcer=hub, client=flaky)
    with pytest.raises(RegistrationError, match="last step.*rolled back"):
        registry.register_baseline(forest, "classification", {})
    assert _versions(registry, "hokusai_classification_baseline") == []
    assert _events(hub) == []


def test_an_outbox_failure_after_the_commit_point_is_repaired_by_the_reconciler(quiet, hub, forest):
    registry = HokusaiModelRegistry(settings=quiet, announcer=hub)
    with hub.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE hokusai_webhook_events RENAME TO webhook_events_away")
    result = registry.register_baseline(forest, "classification", {"k": 1})  # succeeds
    assert registry.get_model_by_uuid(result["model_uuid"])["model_id"] == result["model_id"]
    with hub.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE webhook_events_away RENAME TO hokusai_webhook_events")
    assert _events(hub) == []
    assert hub.reconcile(registry.queries) == [result["model_id"]]
    assert hub.reconcile(registry.queries) == []
    assert _events(hub) == [("model_registered", "hokusai_classification_baseline", "1")]


def test_delete_and_register_again_gets_its_own_event(quiet, hub, forest):
    registry = HokusaiModelRegistry(settings=quiet, announcer=hub)
    first = registry.register_baseline(forest, "classification", {})
    registry.client.delete_registered_model("hokusai_classification_baseline")
    second = registry.register_baseline(forest, "classification", {})
    assert first["model_id"] == second["model_id"] == "hokusai_classification_baseline/1"
    assert len(_events(hub)) == 2
    # The reconciler's cursor notices the model was created again and records nothing extra.
    assert hub.reconcile(registry.queries) == []
    assert len(_events(hub)) == 2


def test_a_failed_promotion_event_puts_the_alias_back(quiet, hub, forest):
    registry = HokusaiModelRegistry(settings=quiet, announcer=hub)
    registry.register_baseline(forest, "classification", {})
    registry.register_baseline(forest, "classification", {})
    registry.set_alias("hokusai_classification_baseline", "champion", "1")
    with hub.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE hokusai_webhook_events RENAME TO webhook_events_away")
    with pytest.raises(Exception, match="webhook_events"):
        registry.set_alias("hokusai_classification_baseline", "champion", "2")
    target = registry.client.get_model_version_by_alias(
        "hokusai_classification_baseline", "champion"
    )
    assert str(target.version) == "1"
    with pytest.raises(Exception, match="webhook_events"):
        registry.set_alias("hokusai_classification_baseline", "canary", "2")
    aliases = registry.client.get_registered_model("hokusai_classification_baseline").aliases
    assert "canary" not in aliases


def test_the_reconciler_repairs_every_gap_with_bounded_passes(quiet, hub, forest):
    silent = HokusaiModelRegistry(settings=quiet, announcer=None)
    base = silent.register_baseline(forest, "classification", {})
    ids = [base["model_id"]]
    for _ in range(4):
        ids.append(
            silent.register_improved_model(forest, base["model_id"], {"acc": 0.01}, CONTRIBUTOR)[
                "model_id"
            ]
        )
    recorded: list[str] = []
    passes = 0
    while True:
        found = hub.reconcile(silent.queries, limit=2)
        passes += 1
        recorded += found
        if not found:
            break
    assert sorted(recorded) == sorted(ids)
    assert passes == 4  # 2 + 2 + 1 versions, then an empty pass
    # A later version is found from the cursor, not by reading the old ones again.
    later = silent.register_baseline(forest, "classification", {})
    assert hub.reconcile(silent.queries, limit=1) == [later["model_id"]]


def test_library_users_get_reconciliation_without_a_worker(quiet, forest, tmp_path):
    silent = HokusaiModelRegistry(settings=quiet, announcer=None)
    gap = silent.register_baseline(forest, "classification", {})
    registry = HokusaiModelRegistry(settings=quiet)  # the documented default: webhooks wired in
    registry.register_baseline(forest, "classification", {})
    hub = registry.webhooks
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if ("model_registered", "hokusai_classification_baseline", "1") in _events(hub):
            break
        time.sleep(0.05)
    assert ("model_registered", "hokusai_classification_baseline", "1") in _events(hub)
    assert gap["model_id"] == "hokusai_classification_baseline/1"


def test_only_exact_hokusai_names_are_hokusai_models():
    from hokusai.registry.records import is_hokusai_model_name

    assert is_hokusai_model_name("hokusai_fraud_baseline")
    for name in ("hokusai_fraud_baseline_v2", "hokusai_x_baselinefoo", "hokusai_x_baseline\n"):
        assert not is_hokusai_model_name(name), name


def test_a_lost_commit_acknowledgement_and_a_failed_delete_are_never_announced(quiet, hub, forest):
    from mlflow import MlflowClient

    real = MlflowClient(
        tracking_uri=quiet.resolved_tracking_uri, registry_uri=quiet.resolved_registry_uri
    )

    class LostAck(FlakyClient):
        def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
            real.set_model_version_tag(name, version, key, value)
            if value == "complete":
                raise RuntimeError("the answer was lost")

    flaky = LostAck(real)
    flaky.fail["delete_model_version"] = RuntimeError("store away")
    registry = HokusaiModelRegistry(settings=quiet, announcer=hub, client=flaky)
    with pytest.raises(RollbackIncompleteError, match="marked 'failed'"):
        registry.register_baseline(forest, "classification", {})
    (left,) = _versions(registry, "hokusai_classification_baseline")
    assert left.tags["hokusai.registration_state"] == "failed"
    assert registry.list_models()[0] == []
    with pytest.raises(Exception, match="not found"):
        registry.get_model("hokusai_classification_baseline/1")
    assert hub.reconcile(registry.queries) == []
    assert _events(hub) == []


def test_one_unreadable_version_does_not_stop_the_reconciler(quiet, hub, forest):
    silent = HokusaiModelRegistry(settings=quiet, announcer=None)
    broken = silent.register_baseline(forest, "classification", {})
    fine = silent.register_baseline(forest, "classification", {})
    silent.client.set_model_version_tag(
        "hokusai_classification_baseline",
        broken["version"],
        "hokusai.metadata_artifact",
        "runs:/0123456789abcdef0123456789abcdef/hokusai/metadata.json",
    )
    assert hub.reconcile(silent.queries) == [fine["model_id"]]
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(reconciler_pending.c.version)).scalars().all() == ["1"]
    silent.client.delete_model_version_tag(
        "hokusai_classification_baseline", broken["version"], "hokusai.metadata_artifact"
    )
    assert hub.reconcile(silent.queries) == [broken["model_id"]]  # retried from pending


def test_the_old_keyword_spellings_still_work(quiet, hub, forest):
    with pytest.warns(DeprecationWarning, match="announcer="):
        silent = HokusaiModelRegistry(settings=quiet, announce=False)
    assert silent.announcer is None
    with pytest.warns(DeprecationWarning, match="announcer="):
        shared = HokusaiModelRegistry(settings=quiet, webhooks=hub)
    assert shared.announcer is hub
    shared.register_baseline(forest, "classification", {})
    assert len(_events(hub)) == 1


def test_a_non_finite_retry_after_is_ignored():
    from hokusai.webhooks.retry import parse_retry_after

    assert parse_retry_after("nan", now=0.0) is None
    assert parse_retry_after("inf", now=0.0) is None
    assert parse_retry_after("7", now=0.0) == 7.0
