"""A real verification, announced through the real webhook layer, at a real receiver.

The verification engine is built on another branch; until it is merged this module is skipped
(the payload and outbox tests of test_verification_payloads.py and
test_verification_delivery.py run on hand-built results). Once merged, it runs as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hokusai.registry import ModelRegistry
from hokusai.webhooks.payloads import event_schema

pytestmark = pytest.mark.skipif(
    not hasattr(ModelRegistry, "verify_improvement"),
    reason="the verification engine is not merged yet",
)


def _family(registry: Any, home: Path) -> tuple[dict[str, Any], str]:
    """A weak baseline, a stronger XGBoost candidate by CONTRIBUTOR, and a benchmark of
    held-out rows (accuracy, with a ROC AUC guardrail)."""
    from sklearn.linear_model import LogisticRegression
    from xgboost import XGBClassifier

    from hokusai.registry.benchmarks import BenchmarkStore
    from tests.conftest import CONTRIBUTOR
    from tests.verification.conftest import FEATURES, synthetic

    train = synthetic(3000, seed=1)
    weak = LogisticRegression().fit(train[["f0"]], train["label"])
    strong = XGBClassifier(n_estimators=60, max_depth=3, learning_rate=0.2).fit(
        train[FEATURES], train["label"]
    )
    baseline = registry.register_baseline(weak, "verifyhooks", input_example=train[["f0"]].head(3))
    candidate = registry.register_improved_model(
        strong, baseline["model_id"], {"accuracy": 0.05}, CONTRIBUTOR,
        input_example=train[FEATURES].head(3),
    )  # fmt: skip
    path = home / "verifyhooks.parquet"
    synthetic(2000, seed=2).to_parquet(path, index=False)
    BenchmarkStore(registry.settings).add(
        "verifyhooks-v1", path, "label", "accuracy", guardrails=["roc_auc:0.01"]
    )
    return candidate, "verifyhooks-v1"


def test_a_verification_reaches_the_receiver_once(hooked_registry, receiver, tmp_path):
    candidate, benchmark = _family(hooked_registry, tmp_path)
    receiver.wait_for(lambda got: len(got) == 2, timeout=10)  # the two model_registered

    result = hooked_registry.verify_improvement(candidate["model_id"], benchmark, n_boot=200)
    assert result["accepted"] is True, result["reasons"]
    assert len(result["event_ids"]) == 2
    receiver.wait_for(lambda got: len(got) == 4, timeout=10)
    verification = {r.json["event_type"]: r for r in receiver.received[2:]}
    assert set(verification) == {"improvement.verified", "deltaone.accepted"}
    assert sorted(r.webhook_id for r in verification.values()) == sorted(result["event_ids"])
    assert all(receiver.verified)
    for event_type, delivery in verification.items():
        assert delivery.headers["x-hokusai-event"] == event_type
        jsonschema.validate(delivery.json, event_schema(event_type))
    verified = verification["improvement.verified"].json
    assert verified["verification_id"] == result["verification_id"]
    assert verified["primary"] == result["primary"]
    accepted = verification["deltaone.accepted"].json
    assert accepted["eval_id"] == result["verification_id"]
    assert accepted["mlflow_run_id"] == result["mlflow_run_id"]
    assert accepted["contributors"] == [
        {"wallet_address": candidate["contributor"], "weight_bps": 10_000}
    ]
    run = hooked_registry.client.get_run(result["mlflow_run_id"])
    assert run.data.metrics[accepted["primary_metric_mlflow_name"]] == pytest.approx(
        result["primary"]["candidate_score"]
    )

    again = hooked_registry.verify_improvement(candidate["model_id"], benchmark, n_boot=200)
    assert again["reused"] is True and again["event_ids"] == []
    assert hooked_registry.announcer.announce_verification(result) == []
    assert len(receiver.received) == 4


class _DownOnce:
    """The real webhook layer, whose first verification announcement fails (the project
    database unreachable for a moment)."""

    def __init__(self, hooks: Any) -> None:
        self.hooks = hooks
        self.failed = False

    def prepare(self) -> None:
        self.hooks.prepare()

    def announce_registration(self, *args: Any, **kwargs: Any) -> Any:
        return self.hooks.announce_registration(*args, **kwargs)

    def announce_promotion(self, *args: Any, **kwargs: Any) -> Any:
        return self.hooks.announce_promotion(*args, **kwargs)

    def announce_verification(self, result: Any) -> list[str]:
        if not self.failed:
            self.failed = True
            raise ConnectionError("the project database went away")
        return list(self.hooks.announce_verification(result))


def test_a_lost_announcement_is_made_by_verifying_again(
    hook_settings, webhooks, receiver, tmp_path
):
    from hokusai.services.model_registry import HokusaiModelRegistry

    registry = HokusaiModelRegistry(settings=hook_settings, announcer=_DownOnce(webhooks))
    candidate, benchmark = _family(registry, tmp_path)
    receiver.wait_for(lambda got: len(got) == 2, timeout=10)  # the two model_registered

    first = registry.verify_improvement(candidate["model_id"], benchmark, n_boot=200)
    assert first["accepted"] is True and first["reused"] is False
    assert first["event_ids"] == []  # recorded, but not announced

    again = registry.verify_improvement(candidate["model_id"], benchmark, n_boot=200)
    assert again["reused"] is True and again["mlflow_run_id"] == first["mlflow_run_id"]
    assert len(again["event_ids"]) == 2
    receiver.wait_for(lambda got: len(got) == 4, timeout=10)
    delivered = {r.json["event_type"]: r.webhook_id for r in receiver.received[2:]}
    assert set(delivered) == {"improvement.verified", "deltaone.accepted"}
    assert sorted(delivered.values()) == sorted(again["event_ids"])
    assert registry.get_verification(first["verification_id"])["event_ids"] == again["event_ids"]

    third = registry.verify_improvement(candidate["model_id"], benchmark, n_boot=200)
    assert third["reused"] is True and third["event_ids"] == []
    assert len(receiver.received) == 4
