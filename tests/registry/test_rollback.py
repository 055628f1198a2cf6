"""Nothing half-done: a failure after the run exists leaves no version and announces nothing."""

from __future__ import annotations

from typing import Any

import pytest

from hokusai.errors import RegistrationError
from hokusai.services.model_registry import HokusaiModelRegistry


class OutboxDown(Exception):
    pass


def _announcer(sent: list[dict[str, Any]]) -> Any:
    def announce(result: dict[str, Any]) -> None:
        sent.append(result)

    return announce


def _failing_hook(result: dict[str, Any]) -> None:
    raise OutboxDown(f"could not record the event for {result['model_id']}")


def _assert_nothing_registered(registry: HokusaiModelRegistry, name: str) -> None:
    client = registry.client
    assert list(client.search_model_versions(f"name = '{name}'")) == []
    assert client.search_registered_models(f"name = '{name}'") == []  # no empty shell left
    experiment = client.get_experiment_by_name(registry.settings.experiment_name)
    runs = client.search_runs([experiment.experiment_id])
    assert runs and all(run.info.status == "FAILED" for run in runs)
    assert client.search_logged_models(experiment_ids=[experiment.experiment_id]) == []


@pytest.mark.backends
def test_a_failing_hook_after_the_version_exists_rolls_everything_back(settings, backend, forest):
    sent: list[dict[str, Any]] = []
    registry = HokusaiModelRegistry(settings=settings, hooks=[_failing_hook, _announcer(sent)])
    with pytest.raises(RegistrationError, match="could not record the event.*rolled back") as info:
        registry.register_baseline(forest, backend.model_type("classification"), {})
    assert isinstance(info.value.__cause__, OutboxDown)
    assert info.value.code == "registration_failed"
    _assert_nothing_registered(registry, backend.model_name("classification"))
    assert sent == []


@pytest.mark.backends
def test_the_failed_uuid_cannot_be_looked_up_and_the_next_registration_succeeds(
    settings, backend, forest
):
    calls: list[str] = []

    def fail_once(result: dict[str, Any]) -> None:
        calls.append(result["model_uuid"])
        if len(calls) == 1:
            raise OutboxDown("first time")

    registry = HokusaiModelRegistry(settings=settings, hooks=[fail_once])
    with pytest.raises(RegistrationError):
        registry.register_baseline(forest, backend.model_type("classification"), {})
    assert registry.get_model_by_uuid(calls[0]) is None
    result = registry.register_baseline(forest, backend.model_type("classification"), {})
    assert result["model_uuid"] == calls[1] != calls[0]
    assert registry.get_model_by_uuid(result["model_uuid"])["model_id"] == result["model_id"]


def test_keyboard_interrupt_mid_registration_still_rolls_back(settings, forest):
    def interrupt(result: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    registry = HokusaiModelRegistry(settings=settings, hooks=[interrupt])
    with pytest.raises(KeyboardInterrupt):
        registry.register_baseline(forest, "classification", {})
    _assert_nothing_registered(registry, "hokusai_classification_baseline")


@pytest.mark.backends
def test_a_failure_inside_log_model_leaves_no_version(settings, backend):
    """A model whose serialisation fails after the run started."""

    class Unpicklable:
        def predict(self, model_input: Any) -> Any:
            return model_input

        def __reduce__(self) -> Any:
            raise TypeError("cannot pickle this model")

    registry = HokusaiModelRegistry(settings=settings)
    with pytest.raises(RegistrationError, match="Failed to serialize Python model"):
        registry.register_baseline(
            Unpicklable(), backend.model_type("ranking"), {}, pip_requirements=["pandas"]
        )
    _assert_nothing_registered(registry, backend.model_name("ranking"))


def test_hooks_see_the_full_result_of_successful_registrations(settings, forest):
    sent: list[dict[str, Any]] = []
    registry = HokusaiModelRegistry(settings=settings)
    registry.add_hook(_announcer(sent))
    result = registry.register_baseline(forest, "classification", {"k": "v"})
    assert sent == [result]
