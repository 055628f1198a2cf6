"""A verification shows on every read of the candidate — version reads, listings, lineage,
contributor gains — through MLflow and through the registry index alike (and a reindex
rebuilds it from MLflow); ``register_improved_model(benchmark=)`` verifies on registration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hokusai.config import Settings
from hokusai.errors import SignatureMismatchError, VerificationError
from tests.conftest import CONTRIBUTOR
from tests.verification.conftest import (
    FEATURES,
    Family,
    make_family,
    synthetic,
    verification_runs,
)


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "verification_id": result["verification_id"],
        "benchmark": result["benchmark"]["name"],
        "metric": result["primary"]["metric"],
        "delta_bps": result["primary"]["delta_bps"],
        "improvement_bps": result["primary"]["improvement_bps"],
        "accepted": result["accepted"],
        "claim_status": result["claim_status"],
        "mlflow_run_id": result["mlflow_run_id"],
        "verified_at": result["verified_at"],
    }


def _refuse_mlflow_reads(registry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("read went to MLflow")

    for name in ("by_uuid", "lineage", "contributor_models"):
        monkeypatch.setattr(registry.queries, name, refuse)


@pytest.mark.parametrize("index", [True, False], ids=["index", "mlflow"])
def test_every_read_carries_the_latest_verification(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: bool
):
    family = make_family(settings, tmp_path, index=index)
    registry = family.registry
    candidate, baseline = family.candidate, family.baseline
    # A second improvement on the first makes a chain of two.
    train = synthetic(3000, seed=1)
    from xgboost import XGBClassifier

    deeper = registry.register_improved_model(
        XGBClassifier(n_estimators=80, max_depth=4).fit(train[FEATURES], train["label"]),
        candidate["model_id"],
        {"accuracy": 0.01},
        CONTRIBUTOR,
        input_example=train[FEATURES].head(3),
    )
    never = registry.get_model(candidate["model_id"])
    assert never["verification"] is None
    assert registry.get_contributor_verified_gains(CONTRIBUTOR) == []

    first = registry.verify_improvement(candidate["model_id"], family.benchmark)
    second = registry.verify_improvement(deeper["model_id"], family.benchmark, threshold_bps=0)
    expected = _summary(first)
    deeper_expected = _summary(second)

    if index:
        assert registry.index is not None
        registry.get_model_lineage(candidate["model_id"])  # syncs if due
        _refuse_mlflow_reads(registry, monkeypatch)
    else:
        assert registry.index is None

    assert registry.get_model(candidate["model_id"])["verification"] == expected
    assert registry.get_model_by_uuid(candidate["model_uuid"])["verification"] == expected
    assert registry.get_model_by_uuid(baseline["model_uuid"])["verification"] is None
    listed = {m["model_id"]: m for m in registry.list_models(max_results=50)[0]}
    assert listed[candidate["model_id"]]["verification"] == expected
    assert listed[baseline["model_id"]]["verification"] is None

    lineage = {e["model_id"]: e for e in registry.get_model_lineage(deeper["model_id"])}
    assert lineage[baseline["model_id"]]["verification"] is None
    assert lineage[baseline["model_id"]]["cumulative_verified_improvement_bps"] == 0
    assert lineage[candidate["model_id"]]["verification"] == expected
    first_bps = first["primary"]["improvement_bps"] if first["accepted"] else 0
    second_bps = second["primary"]["improvement_bps"] if second["accepted"] else 0
    assert first["accepted"] is True
    assert lineage[candidate["model_id"]]["cumulative_verified_improvement_bps"] == first_bps
    assert lineage[deeper["model_id"]]["verification"] == deeper_expected
    assert (
        lineage[deeper["model_id"]]["cumulative_verified_improvement_bps"] == first_bps + second_bps
    )
    # the claims are still beside the measurement
    assert lineage[deeper["model_id"]]["cumulative_improvement"]["accuracy"] == pytest.approx(0.06)

    contributed = {m["model_id"]: m for m in registry.get_contributor_models(CONTRIBUTOR)}
    assert contributed[candidate["model_id"]]["verification"] == expected
    gains = registry.get_contributor_verified_gains(CONTRIBUTOR.lower())
    assert [g["model_id"] for g in gains] == [deeper["model_id"], candidate["model_id"]]
    assert [g["verification"] for g in gains] == [deeper_expected, expected]


def test_a_reindex_rebuilds_the_verifications_from_mlflow(family: Family, monkeypatch):
    registry = family.registry
    result = registry.verify_improvement(family.candidate["model_id"], family.benchmark)
    index = registry.index
    assert index is not None
    report = index.reindex(restart=True)
    assert report.indexed == 2
    assert index.check().clean
    _refuse_mlflow_reads(registry, monkeypatch)
    found = registry.get_model_by_uuid(family.candidate["model_uuid"])
    assert found["verification"] == _summary(result)
    (gain,) = registry.get_contributor_verified_gains(CONTRIBUTOR)
    assert gain["verification"] == _summary(result)


def test_registering_with_a_benchmark_verifies_the_new_version(family: Family):
    from xgboost import XGBClassifier

    registry = family.registry
    train = synthetic(3000, seed=1)
    result = registry.register_improved_model(
        XGBClassifier(n_estimators=40, max_depth=3).fit(train[FEATURES], train["label"]),
        family.baseline["model_id"],
        {"accuracy": 0.1},
        CONTRIBUTOR,
        input_example=train[FEATURES].head(3),
        benchmark=family.benchmark,
        threshold_bps=150,
    )
    verification = result["verification"]
    assert verification["candidate_id"] == result["model_id"]
    assert verification["threshold_bps"] == 150 and verification["accepted"] is True
    assert registry.get_model(result["model_id"])["verification"] == _summary(verification)


def test_registering_with_an_unfitting_benchmark_registers_nothing(family: Family):
    from xgboost import XGBClassifier

    registry = family.registry
    rows = synthetic(300, seed=3)[["f0", "label"]]
    name = family.add_benchmark("only-f0", rows, "accuracy")
    train = synthetic(500, seed=1)
    before = registry.list_models(max_results=50)[0]
    with pytest.raises(SignatureMismatchError, match="being registered"):
        registry.register_improved_model(
            XGBClassifier(n_estimators=5).fit(train[FEATURES], train["label"]),
            family.baseline["model_id"],
            {"accuracy": 0.1},
            CONTRIBUTOR,
            input_example=train[FEATURES].head(3),
            benchmark=name,
        )
    assert registry.list_models(max_results=50)[0] == before
    assert verification_runs(registry) == []


def test_a_verification_failing_after_registration_keeps_the_version(family: Family):
    from tests.verification.test_run import FailsOnSecondBatch

    registry = family.registry
    name = family.add_benchmark("accuracy-only", synthetic(500, seed=10), "accuracy")
    train = synthetic(50, seed=9)
    with pytest.raises(VerificationError) as caught:
        registry.register_improved_model(
            FailsOnSecondBatch(max_rows=100).model,
            family.baseline["model_id"],
            {"accuracy": 0.01},
            CONTRIBUTOR,
            input_example=train[FEATURES].head(3),
            benchmark=name,
        )
    message = str(caught.value)
    assert "hokusai_verifydemo_improved/2 is registered" in message
    assert "prediction_failed" in message
    assert "hokusai verify hokusai_verifydemo_improved/2 --benchmark accuracy-only" in message
    kept = registry.get_model("hokusai_verifydemo_improved/2")
    assert kept["verification"] is None
    assert verification_runs(registry) == []
