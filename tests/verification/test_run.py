"""Running a verification on a real MLflow store: the decision, the evaluation run (metrics,
artifacts, manifest), the candidate's tags, idempotency, streaming, and failures that leave
nothing behind."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hokusai.errors import ModelPredictionError, VerificationError, VerificationNotFoundError
from hokusai.registry.verification import VERIFICATION_EXPERIMENT, canonical_json
from tests.conftest import CONTRIBUTOR
from tests.verification.conftest import (
    FEATURES,
    Family,
    make_family,
    synthetic,
    verification_runs,
    verification_tags,
)

VOLATILE = ("mlflow_run_id", "verified_at", "event_ids", "reused")


def _stable(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in VOLATILE}


def _artifact(registry: Any, run_id: str, path: str) -> Path:
    return Path(registry.client.download_artifacts(run_id, path))


def test_an_improvement_is_accepted_and_recorded(family: Family):
    registry = family.registry
    result = registry.verify_improvement(family.candidate["model_id"], family.benchmark)

    # The decision, checked against an independent computation on the same rows.
    rows = synthetic(2000, seed=2)
    from sklearn.metrics import accuracy_score, roc_auc_score

    base_model, cand_model = _models(registry, family)
    base_pred = base_model.predict(rows[["f0"]])
    cand_pred = cand_model.predict(rows[FEATURES])
    assert result["primary"]["baseline_score"] == pytest.approx(
        accuracy_score(rows["label"], base_pred), abs=1e-12
    )
    assert result["primary"]["candidate_score"] == pytest.approx(
        accuracy_score(rows["label"], cand_pred), abs=1e-12
    )
    auc = result["guardrails"][0]
    assert auc["metric"] == "roc_auc" and auc["ci_method"] == "delong"
    assert auc["candidate_score"] == pytest.approx(
        roc_auc_score(rows["label"], cand_model.predict_proba(rows[FEATURES])[:, 1]), abs=1e-9
    )
    assert auc["tolerance"] == 0.01 and auc["passed"] is True
    primary = result["primary"]
    assert primary["delta"] > 0.1 and primary["ci_low"] > 0
    assert primary["delta_bps"] == primary["candidate_score_bps"] - primary["baseline_score_bps"]
    assert primary["improvement_bps"] >= 1000 and primary["p_value"] < 1e-6
    assert result["accepted"] is True and result["reasons"] == []
    assert result["claimed_delta"] == 0.05 and result["claim_status"] == "reproduced"
    assert result["n_rows"] == 2000 and result["reused"] is False
    assert result["contributor"] == CONTRIBUTOR
    assert result["event_ids"] == ["evt_verified_1", "evt_accepted_1"]
    # Announced once the run and the tags are complete (before its own event ids are known).
    assert family.announcer.verifications == [{**result, "event_ids": []}]

    # One run in hokusai-verifications, named after the verification.
    (run,) = verification_runs(registry)
    assert run.info.run_id == result["mlflow_run_id"]
    assert run.info.run_name == result["verification_id"]
    assert run.info.status == "FINISHED"
    assert run.data.params == {
        "candidate_id": family.candidate["model_id"],
        "baseline_id": family.baseline["model_id"],
        "benchmark": "verifydemo-v1",
        "benchmark_hash": result["benchmark"]["content_hash"],
        "metric": "accuracy",
        "threshold_bps": "100",
        "seed": "0",
        "n_boot": "2000",
    }
    metrics = run.data.metrics
    for name, comparison in (("accuracy", primary), ("roc_auc", auc)):
        assert metrics[f"baseline_{name}"] == pytest.approx(comparison["baseline_score"])
        assert metrics[f"candidate_{name}"] == pytest.approx(comparison["candidate_score"])
        assert metrics[f"delta_{name}"] == pytest.approx(comparison["delta"])
        assert metrics[f"delta_{name}_ci_low"] == pytest.approx(comparison["ci_low"])
        assert metrics[f"delta_{name}_ci_high"] == pytest.approx(comparison["ci_high"])
    assert metrics["accepted"] == 1.0
    tags = run.data.tags
    assert tags["hokusai.verification.id"] == result["verification_id"]
    assert tags["hokusai.verification.idempotency_key"] == result["idempotency_key"]
    assert tags["hokusai.verification.attestation_hash"] == result["attestation_hash"]
    assert tags["hokusai.verification.candidate_id"] == family.candidate["model_id"]
    assert tags["hokusai.verification.contributor"] == CONTRIBUTOR
    assert tags["hokusai.verification.accepted"] == "true"
    assert tags["hokusai.verification.state"] == "complete"
    assert json.loads(tags["hokusai.verification.result"]) == _stable(result) | {
        "mlflow_run_id": result["mlflow_run_id"],
        "verified_at": result["verified_at"],
    }

    # The per-row predictions: the models' own answers, row by row.
    predictions = pd.read_parquet(
        _artifact(registry, run.info.run_id, "verification/predictions.parquet")
    )
    assert list(predictions.columns) == [
        "row",
        "target",
        "baseline_pred",
        "candidate_pred",
        "baseline_score",
        "candidate_score",
    ]
    assert predictions["row"].tolist() == list(range(2000))
    assert (predictions["target"].to_numpy() == rows["label"].to_numpy()).all()
    assert (predictions["baseline_pred"].to_numpy() == base_pred).all()
    assert (predictions["candidate_pred"].to_numpy() == cand_pred).all()
    np.testing.assert_allclose(
        predictions["baseline_score"], base_model.predict_proba(rows[["f0"]])[:, 1], rtol=1e-6
    )

    # The manifest: its inputs hash to the attestation, which keys the idempotency key.
    manifest = json.loads(
        _artifact(registry, run.info.run_id, "verification/manifest.json").read_text()
    )
    digest = hashlib.sha256(canonical_json(manifest["inputs"])).hexdigest()
    assert manifest["attestation_hash"] == result["attestation_hash"] == "0x" + digest
    key = hashlib.sha256(f"{manifest['model_id_uint']}:{digest}".encode()).hexdigest()
    assert manifest["idempotency_key"] == result["idempotency_key"] == "0x" + key
    assert manifest["results"]["primary"] == primary
    assert manifest["results"]["accepted"] is True
    assert manifest["inputs"]["benchmark"]["guardrails"] == {"roc_auc": 0.01}

    # The candidate's tags.
    assert verification_tags(registry, family.candidate["model_id"]) == {
        "hokusai.verified": "true",
        "hokusai.verified_delta_bps": str(primary["delta_bps"]),
        "hokusai.verification.id": result["verification_id"],
        "hokusai.verification.run_id": result["mlflow_run_id"],
        "hokusai.verification.benchmark": "verifydemo-v1",
        "hokusai.verification.benchmark_hash": result["benchmark"]["content_hash"],
        "hokusai.verification.metric": "accuracy",
        "hokusai.verification.improvement_bps": str(primary["improvement_bps"]),
        "hokusai.verification.accepted": "true",
        "hokusai.verification.claim_status": "reproduced",
        "hokusai.verification.verified_at": result["verified_at"],
    }
    # The baseline is untouched.
    assert verification_tags(registry, family.baseline["model_id"]) == {}

    # Read back by id and listed.
    assert registry.get_verification(result["verification_id"]) == {
        **result,
        "reused": False,
    }
    assert registry.list_verifications(family.candidate["model_id"]) == [result]
    assert registry.list_verifications() == [result]
    assert registry.list_verifications(family.baseline["model_id"]) == []


def _models(registry: Any, family: Family) -> tuple[Any, Any]:
    import mlflow.sklearn
    import mlflow.xgboost

    client = registry.client
    base_uri = client.get_model_version_download_uri(*family.baseline["model_id"].split("/"))
    cand_uri = client.get_model_version_download_uri(*family.candidate["model_id"].split("/"))
    return mlflow.sklearn.load_model(base_uri), mlflow.xgboost.load_model(cand_uri)


def test_a_gain_below_the_threshold_is_recorded_as_not_accepted(family: Family):
    result = family.registry.verify_improvement(
        family.candidate["model_id"], family.benchmark, threshold_bps=5000
    )
    assert result["accepted"] is False
    assert result["reasons"] == ["below_threshold"]
    assert result["event_ids"] == ["evt_verified_1"]
    (run,) = verification_runs(family.registry)
    assert run.data.metrics["accepted"] == 0.0
    tags = verification_tags(family.registry, family.candidate["model_id"])
    assert tags["hokusai.verified"] == "true"  # verified, and not accepted
    assert tags["hokusai.verification.accepted"] == "false"


def test_no_gain_is_rejected_and_an_overclaim_is_flagged(family: Family):
    from sklearn.linear_model import LogisticRegression

    registry = family.registry
    train = synthetic(3000, seed=1)
    # The same kind of model as the baseline, claiming a large gain it does not have.
    same = LogisticRegression().fit(train[["f0"]], train["label"])
    overclaim = registry.register_improved_model(
        same,
        family.baseline["model_id"],
        {"accuracy": 0.2},
        CONTRIBUTOR,
        input_example=train[["f0"]].head(3),
    )
    result = registry.verify_improvement(overclaim["model_id"], family.benchmark)
    assert result["accepted"] is False
    assert result["primary"]["delta"] == 0.0
    assert result["reasons"] == ["below_threshold", "interval_includes_zero"]
    assert result["claimed_delta"] == 0.2
    assert result["claim_status"] == "not_reproduced"
    tags = verification_tags(registry, overclaim["model_id"])
    assert tags["hokusai.verification.claim_status"] == "not_reproduced"


def test_a_broken_guardrail_rejects_an_otherwise_better_model(family: Family):
    from sklearn.neighbors import KNeighborsClassifier

    registry = family.registry
    train = synthetic(3000, seed=1)
    # 1-nearest-neighbour: better labels than the baseline, but probabilities of 0 or 1 only,
    # so its log loss is far worse.
    knn = KNeighborsClassifier(n_neighbors=1).fit(train[FEATURES], train["label"])
    candidate = registry.register_improved_model(
        knn,
        family.baseline["model_id"],
        {"accuracy": 0.05},
        CONTRIBUTOR,
        input_example=train[FEATURES].head(3),
    )
    name = family.add_benchmark(
        "with-log-loss", synthetic(1500, seed=8), "accuracy", guardrails=["log_loss:0.05"]
    )
    result = registry.verify_improvement(candidate["model_id"], name)
    assert result["primary"]["improvement_bps"] > 100 and result["primary"]["ci_low"] > 0
    (guard,) = result["guardrails"]
    assert guard["metric"] == "log_loss" and guard["direction"] == "lower"
    assert guard["delta"] > 0.05 and guard["passed"] is False
    assert result["accepted"] is False
    assert result["reasons"] == ["guardrail_failed:log_loss"]


def test_the_same_inputs_are_verified_once(family: Family):
    registry = family.registry
    first = registry.verify_improvement(family.candidate["model_id"], family.benchmark)
    tags = verification_tags(registry, family.candidate["model_id"])
    again = registry.verify_improvement(family.candidate["model_id"], family.benchmark)
    assert again["reused"] is True and again["event_ids"] == []
    assert _stable(again) == _stable(first)
    for key in ("verification_id", "idempotency_key", "attestation_hash", "model_id_uint"):
        assert again[key] == first[key]
    assert again["mlflow_run_id"] == first["mlflow_run_id"]
    assert again["verified_at"] == first["verified_at"]
    # Nothing new written or announced.
    assert len(verification_runs(registry)) == 1
    assert verification_tags(registry, family.candidate["model_id"]) == tags
    assert len(family.announcer.verifications) == 1
    # Other inputs are another verification, and the latest wins on the tags.
    other = registry.verify_improvement(family.candidate["model_id"], family.benchmark, seed=3)
    assert other["verification_id"] != first["verification_id"] and other["reused"] is False
    assert len(verification_runs(registry)) == 2
    latest = verification_tags(registry, family.candidate["model_id"])
    assert latest["hokusai.verification.id"] == other["verification_id"]
    assert [v["verification_id"] for v in registry.list_verifications()] == [
        other["verification_id"],
        first["verification_id"],
    ]


def test_streaming_in_small_batches_gives_the_same_result(family: Family):
    registry = family.registry
    whole = registry.verify_improvement(
        family.candidate["model_id"], family.benchmark, batch_rows=1_000_000
    )
    whole_rows = pd.read_parquet(
        _artifact(registry, whole["mlflow_run_id"], "verification/predictions.parquet")
    )
    registry.client.delete_run(whole["mlflow_run_id"])  # so the same inputs run again
    streamed = registry.verify_improvement(
        family.candidate["model_id"], family.benchmark, batch_rows=137
    )
    assert streamed["reused"] is False
    assert streamed["mlflow_run_id"] != whole["mlflow_run_id"]
    assert _stable(streamed) == _stable(whole)
    streamed_rows = pd.read_parquet(
        _artifact(registry, streamed["mlflow_run_id"], "verification/predictions.parquet")
    )
    pd.testing.assert_frame_equal(streamed_rows, whole_rows)


class FailsOnSecondBatch:
    """A pyfunc model that answers its first call and raises on the second (``after`` = 1),
    or on any input of more than ``max_rows`` rows."""

    def __init__(self, *, max_rows: int = 1_000_000) -> None:
        import mlflow.pyfunc

        class Model(mlflow.pyfunc.PythonModel):
            def load_context(self, context: Any) -> None:
                self.calls = 0

            def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
                self.calls += 1
                if self.calls >= 2 or len(model_input) > max_rows:
                    raise RuntimeError("out of memory on batch 2")
                return (model_input["f0"] > 0).astype("int64").to_numpy()

        self.model = Model()


def test_a_model_failing_mid_run_leaves_nothing(family: Family):
    registry = family.registry
    train = synthetic(50, seed=9)
    flaky = registry.register_improved_model(
        FailsOnSecondBatch().model,
        family.baseline["model_id"],
        {"accuracy": 0.01},
        CONTRIBUTOR,
        input_example=train[FEATURES].head(3),
    )
    name = family.add_benchmark("accuracy-only", synthetic(500, seed=10), "accuracy")
    with pytest.raises(ModelPredictionError) as caught:
        registry.verify_improvement(flaky["model_id"], name, batch_rows=200)
    message = str(caught.value)
    assert caught.value.code == "prediction_failed"
    assert flaky["model_id"] in message and "rows 200-399" in message
    assert "out of memory on batch 2" in message
    assert verification_runs(registry) == []
    assert verification_tags(registry, flaky["model_id"]) == {}
    assert family.announcer.verifications == []


class FailingTagClient:
    """A real MlflowClient whose ``fail_at``-th model-version tag write fails (once)."""

    def __init__(self, client: Any, fail_at: int) -> None:
        self._client = client
        self.fail_at = fail_at
        self.calls = 0

    def set_model_version_tag(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ConnectionError("registry went away")
        return self._client.set_model_version_tag(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_failure_while_recording_deletes_the_run_and_restores_the_tags(family: Family):
    from hokusai.registry import ModelRegistry

    registry = family.registry
    first = registry.verify_improvement(family.candidate["model_id"], family.benchmark)
    tags = verification_tags(registry, family.candidate["model_id"])
    faulty = ModelRegistry(
        settings=registry.settings,
        announcer=family.announcer,
        client=FailingTagClient(registry.client, fail_at=5),
    )
    with pytest.raises(VerificationError, match="nothing was recorded"):
        faulty.verify_improvement(family.candidate["model_id"], family.benchmark, seed=5)
    assert verification_tags(registry, family.candidate["model_id"]) == tags
    runs = verification_runs(registry)
    assert len(runs) == 2
    (gone,) = [r for r in runs if r.info.run_id != first["mlflow_run_id"]]
    assert gone.info.lifecycle_stage == "deleted"
    assert registry.list_verifications() == [first]
    assert len(family.announcer.verifications) == 1


def test_an_announcer_failure_is_logged_not_raised(family: Family, caplog):
    family.announcer.fail = True
    result = family.registry.verify_improvement(family.candidate["model_id"], family.benchmark)
    assert result["event_ids"] == [] and result["accepted"] is True
    assert "events could not be recorded" in caplog.text
    assert len(verification_runs(family.registry)) == 1
    # Verifying again with the same inputs makes the lost announcement, once.
    family.announcer.fail = False
    again = family.registry.verify_improvement(family.candidate["model_id"], family.benchmark)
    assert again["reused"] is True and again["event_ids"] == ["evt_verified_1", "evt_accepted_1"]
    assert family.announcer.verifications == [{**result, "event_ids": []}]
    assert (
        family.registry.get_verification(result["verification_id"])["event_ids"]
        == (again["event_ids"])
    )
    third = family.registry.verify_improvement(family.candidate["model_id"], family.benchmark)
    assert third["reused"] is True and third["event_ids"] == []
    assert len(family.announcer.verifications) == 1
    assert len(verification_runs(family.registry)) == 1


class Interleaved:
    """A real MlflowClient on which ``meanwhile`` (another real verification, through another
    registry on the same store) runs once, when this one's run sets ``key`` to ``value``; with
    ``then_fail``, that write then fails."""

    def __init__(
        self, client: Any, meanwhile: Any, *, key: str, value: str, then_fail: bool
    ) -> None:
        self._client = client
        self._meanwhile = meanwhile
        self._at = (key, value)
        self._then_fail = then_fail
        self.other: dict[str, Any] | None = None

    def _interleave(self) -> None:
        if self.other is None:
            self.other = self._meanwhile()
            if self._then_fail:
                raise ConnectionError("tracking server went away")

    def set_tag(self, run_id: str, key: str, value: Any) -> Any:
        if (key, value) == self._at:
            self._interleave()
        return self._client.set_tag(run_id, key, value)

    def set_terminated(self, run_id: str, status: str | None = None, *args: Any) -> Any:
        if ("terminated", status) == self._at:
            self._interleave()
        return self._client.set_terminated(run_id, status, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_failed_verification_leaves_the_tags_another_wrote_meanwhile(family: Family):
    from hokusai.registry import ModelRegistry

    registry = family.registry
    candidate = family.candidate["model_id"]
    # B (seed 7) verifies the candidate after A (seed 5) has tagged it, then A's commit fails.
    raced = Interleaved(
        registry.client,
        lambda: registry.verify_improvement(candidate, family.benchmark, seed=7),
        key="hokusai.verification.state",
        value="complete",
        then_fail=True,
    )
    faulty = ModelRegistry(settings=registry.settings, announcer=family.announcer, client=raced)
    with pytest.raises(VerificationError, match="nothing was recorded"):
        faulty.verify_improvement(candidate, family.benchmark, seed=5)
    other = raced.other
    assert other is not None and other["reused"] is False
    tags = verification_tags(registry, candidate)
    assert tags["hokusai.verification.id"] == other["verification_id"]
    assert tags["hokusai.verification.run_id"] == other["mlflow_run_id"]
    assert tags["hokusai.verified_delta_bps"] == str(other["primary"]["delta_bps"])
    assert registry.list_verifications() == [other]
    assert registry.get_model(candidate)["verification"]["mlflow_run_id"] == other["mlflow_run_id"]


def test_a_run_that_finds_the_same_inputs_recorded_meanwhile_withdraws(family: Family):
    from hokusai.registry import ModelRegistry

    registry = family.registry
    candidate = family.candidate["model_id"]
    # Another runner records the same verification while this one is about to commit.
    raced = Interleaved(
        registry.client,
        lambda: registry.verify_improvement(candidate, family.benchmark),
        key="terminated",
        value="FINISHED",
        then_fail=False,
    )
    late = ModelRegistry(settings=registry.settings, announcer=family.announcer, client=raced)
    result = late.verify_improvement(candidate, family.benchmark)
    first = raced.other
    assert first is not None and first["reused"] is False
    assert result["reused"] is True and result["event_ids"] == []
    assert _stable(result) == _stable(first)
    assert result["mlflow_run_id"] == first["mlflow_run_id"]
    runs = verification_runs(registry)
    assert len(runs) == 2
    (withdrawn,) = [r for r in runs if r.info.run_id != first["mlflow_run_id"]]
    assert withdrawn.info.lifecycle_stage == "deleted"
    assert withdrawn.data.tags.get("hokusai.verification.state") != "complete"
    assert registry.list_verifications() == [{**first, "event_ids": first["event_ids"]}]
    assert (
        verification_tags(registry, candidate)["hokusai.verification.run_id"]
        == (first["mlflow_run_id"])
    )
    assert len(family.announcer.verifications) == 1


def test_an_abort_before_recording_writes_nothing(family: Family):
    asked: list[str] = []

    def abort() -> bool:
        asked.append("now")
        return True

    plan = family.registry.plan_verification(family.candidate["model_id"], family.benchmark)
    with pytest.raises(VerificationError, match="stopped before recording"):
        family.registry.run_verification(plan, abort=abort)
    assert asked == ["now"]
    assert verification_runs(family.registry) == []
    assert verification_tags(family.registry, family.candidate["model_id"]) == {}
    assert family.announcer.verifications == []
    assert plan.prepared is None  # released: running it again plans it again
    done = family.registry.run_verification(plan, abort=lambda: False)
    assert done["reused"] is False and len(verification_runs(family.registry)) == 1


def test_unknown_verifications_are_not_found(family: Family):
    for wanted in ("ver_000000000000000000000000", "nonsense", ""):
        with pytest.raises(VerificationNotFoundError):
            family.registry.get_verification(wanted)
    assert family.registry.list_verifications() == []
    experiment = family.registry.client.get_experiment_by_name(VERIFICATION_EXPERIMENT)
    assert experiment is None  # reads create nothing


def test_a_regression_improvement_on_a_lower_is_better_metric(family: Family):
    """RMSE (lower is better): the delta is negative when the candidate is better, the
    improvement positive; a LightGBM candidate fitted on a plain matrix is fed by its
    signature's columns."""
    import lightgbm
    from sklearn.linear_model import LinearRegression

    registry = family.registry
    train = synthetic(3000, seed=11)
    train["label"] = 2.0 * train["f0"] + np.sin(3 * train["f1"]) + train["f2"] * train["f3"]
    weak = LinearRegression().fit(train[["f0"]], train["label"])
    strong = lightgbm.LGBMRegressor(n_estimators=200, verbose=-1).fit(
        train[FEATURES].to_numpy(), train["label"]
    )
    base = registry.register_baseline(weak, "regdemo", input_example=train[["f0"]].head(3))
    from mlflow.models import infer_signature

    candidate = registry.register_improved_model(
        strong,
        base["model_id"],
        {"rmse": -5.0},  # claims more than it gains
        CONTRIBUTOR,
        signature=infer_signature(train[FEATURES], strong.predict(train[FEATURES].to_numpy())),
    )
    rows = synthetic(1000, seed=12)
    rows["label"] = 2.0 * rows["f0"] + np.sin(3 * rows["f1"]) + rows["f2"] * rows["f3"]
    name = family.add_benchmark("reg-v1", rows, "rmse", guardrails=["mae:0.0"])
    result = registry.verify_improvement(candidate["model_id"], name, n_boot=500)
    primary = result["primary"]
    assert primary["direction"] == "lower" and primary["ci_method"] == "paired_bootstrap"
    assert primary["delta"] < 0 and primary["ci_high"] < 0
    assert primary["delta_bps"] < 0 < primary["improvement_bps"]
    assert (guard := result["guardrails"][0])["metric"] == "mae" and guard["passed"] is True
    assert result["accepted"] is True
    assert result["claimed_delta"] == -5.0 and result["claim_status"] == "not_reproduced"
    predictions = pd.read_parquet(
        _artifact(registry, result["mlflow_run_id"], "verification/predictions.parquet")
    )
    assert "candidate_score" not in predictions.columns  # no probabilities were used
    expected = strong.predict(rows[FEATURES].to_numpy())
    np.testing.assert_allclose(predictions["candidate_pred"], expected, rtol=1e-6)


@pytest.mark.backends
def test_a_verification_on_each_backend(backend: Any, tmp_path: Path):
    """Embedded, and on a tracking server whose artifacts are proxied to S3: the benchmark's
    rows and the models are downloaded, the record uploaded, and read back."""
    family = make_family(
        backend.settings(),
        tmp_path,
        model_type=backend.model_type("verifyboth"),
        benchmark=f"verifyboth-{backend.tag}",
        contributor=backend.address(CONTRIBUTOR),
    )
    registry = family.registry
    candidate = family.candidate["model_id"]
    result = registry.verify_improvement(candidate, family.benchmark)
    assert result["accepted"] is True and result["n_rows"] == 2000
    assert registry.get_verification(result["verification_id"]) == result
    assert registry.list_verifications(candidate) == [result]
    predictions = pd.read_parquet(
        _artifact(registry, result["mlflow_run_id"], "verification/predictions.parquet")
    )
    assert len(predictions) == 2000
    assert registry.get_model(candidate)["verification"]["mlflow_run_id"] == result["mlflow_run_id"]
    again = registry.verify_improvement(candidate, family.benchmark)
    assert again["reused"] is True and again["mlflow_run_id"] == result["mlflow_run_id"]
