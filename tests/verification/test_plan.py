"""Planning a verification: every bad input refused with a typed error and nothing recorded,
and the inputs, attestation hash, idempotency key and id fixed byte for byte."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hokusai.errors import (
    BaselineNotFoundError,
    BenchmarkNotFoundError,
    InvalidDatasetError,
    InvalidModelIdError,
    MetricMismatchError,
    ModelNotFoundError,
    NotAnImprovementError,
    SignatureMismatchError,
    ValidationError,
)
from hokusai.registry.verification import METHOD, canonical_json, check_target_values
from tests.conftest import CONTRIBUTOR
from tests.verification.conftest import (
    FEATURES,
    Family,
    assert_nothing_recorded,
    synthetic,
)


def test_the_plan_fixes_inputs_and_ids_by_the_published_formula(family: Family):
    plan = family.registry.plan_verification(family.candidate["model_id"], family.benchmark)
    store_bench = plan.prepared.bench
    assert plan.inputs == {
        "method": METHOD,
        "candidate": {
            "model_id": family.candidate["model_id"],
            "model_uuid": family.candidate["model_uuid"],
        },
        "baseline": {
            "model_id": family.baseline["model_id"],
            "model_uuid": family.baseline["model_uuid"],
        },
        "benchmark": {
            "name": "verifydemo-v1",
            "content_hash": store_bench.content_hash,
            "num_rows": 2000,
            "target": "label",
            "metric": "accuracy",
            "direction": "higher",
            "guardrails": {"roc_auc": 0.01},
        },
        "threshold_bps": 100,
        "seed": 0,
        "n_boot": 2000,
        "alpha": 0.05,
    }
    # Recomputed here from the spec's words, not from the module's helpers.
    text = json.dumps(plan.inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(plan.inputs) == text.encode("utf-8")
    attestation = hashlib.sha256(text.encode("utf-8")).hexdigest()
    uint = str(
        int.from_bytes(hashlib.sha256(family.candidate["model_id"].encode()).digest(), "big")
    )
    key = hashlib.sha256(f"{uint}:{attestation}".encode()).hexdigest()
    assert plan.attestation_hash == "0x" + attestation
    assert plan.model_id_uint == uint
    assert plan.idempotency_key == "0x" + key
    assert plan.verification_id == "ver_" + key[:24]
    assert (plan.candidate_id, plan.baseline_id, plan.benchmark) == (
        family.candidate["model_id"],
        family.baseline["model_id"],
        "verifydemo-v1",
    )
    assert_nothing_recorded(family)


def test_the_same_inputs_plan_the_same_ids_and_any_change_changes_them(family: Family):
    registry, candidate = family.registry, family.candidate["model_id"]
    first = registry.plan_verification(candidate, family.benchmark)
    again = registry.plan_verification(candidate, family.benchmark)
    assert first == again  # every field but the loaded models, byte for byte
    assert canonical_json(first.inputs) == canonical_json(again.inputs)
    others = [
        registry.plan_verification(candidate, family.benchmark, threshold_bps=50),
        registry.plan_verification(candidate, family.benchmark, seed=1),
        registry.plan_verification(candidate, family.benchmark, n_boot=500),
    ]
    keys = {p.idempotency_key for p in [first, *others]}
    assert len(keys) == 4
    assert len({p.verification_id for p in [first, *others]}) == 4


def test_the_default_threshold_comes_from_the_settings(family: Family, monkeypatch):
    from hokusai.registry import ModelRegistry

    settings = family.registry.settings.model_copy(update={"verify_threshold_bps": 250})
    registry = ModelRegistry(settings=settings, announcer=None)
    assert (
        registry.plan_verification(family.candidate["model_id"], family.benchmark).threshold_bps
        == 250
    )
    monkeypatch.setenv("HOKUSAI_VERIFY_THRESHOLD_BPS", "40")
    from hokusai.config import get_settings

    assert get_settings().verify_threshold_bps == 40


def test_a_benchmark_object_is_accepted_and_checked_against_the_store(family: Family):
    from dataclasses import replace

    from hokusai.registry.benchmarks import BenchmarkStore

    bench = BenchmarkStore(family.registry.settings).get(family.benchmark)
    by_object = family.registry.plan_verification(family.candidate["model_id"], bench)
    assert by_object == family.registry.plan_verification(family.candidate["model_id"], bench.name)
    forged = replace(bench, content_hash="0x" + "0" * 64)
    with pytest.raises(BenchmarkNotFoundError):
        family.registry.plan_verification(family.candidate["model_id"], forged)


@pytest.mark.parametrize(
    ("candidate", "error"),
    [
        ("not-an-id", InvalidModelIdError),
        ("hokusai_verifydemo_improved/9", ModelNotFoundError),
        ("hokusai_verifydemo_baseline/1", NotAnImprovementError),
    ],
)
def test_a_bad_candidate_is_refused(family: Family, candidate: str, error: type):
    with pytest.raises(error):
        family.registry.plan_verification(candidate, family.benchmark)
    assert_nothing_recorded(family)


def test_a_candidate_whose_baseline_was_deleted_is_refused(family: Family):
    name, version = family.baseline["model_id"].split("/")
    family.registry.client.delete_model_version(name, version)
    with pytest.raises(BaselineNotFoundError, match="deleted"):
        family.registry.plan_verification(family.candidate["model_id"], family.benchmark)
    assert_nothing_recorded(family)


def test_an_unknown_benchmark_is_refused(family: Family):
    with pytest.raises(BenchmarkNotFoundError):
        family.registry.plan_verification(family.candidate["model_id"], "no-such-benchmark")
    assert_nothing_recorded(family)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"threshold_bps": -1}, "threshold_bps"), ({"seed": 1.5}, "seed"), ({"n_boot": 0}, "n_boot")],
)
def test_bad_numbers_are_refused(family: Family, kwargs: dict, match: str):
    with pytest.raises(ValidationError, match=match):
        family.registry.plan_verification(family.candidate["model_id"], family.benchmark, **kwargs)
    assert_nothing_recorded(family)


def test_a_benchmark_without_the_models_features_is_refused(family: Family):
    # f3 and the candidate's other features are missing: only f0 and the target remain.
    rows = synthetic(300, seed=3)[["f0", "label"]]
    name = family.add_benchmark("only-f0", rows, "accuracy")
    with pytest.raises(SignatureMismatchError, match="candidate") as caught:
        family.registry.plan_verification(family.candidate["model_id"], name)
    assert caught.value.code == "signature_mismatch"
    assert "'f1'" in str(caught.value) and "hokusai_verifydemo_improved/1" in str(caught.value)
    assert_nothing_recorded(family)


def test_a_column_whose_values_do_not_fit_the_signature_is_refused(family: Family):
    rows = synthetic(300, seed=3)
    rows["f0"] = [f"v{i}" for i in range(len(rows))]  # text where the signature says double
    name = family.add_benchmark("text-f0", rows, "accuracy")
    with pytest.raises(SignatureMismatchError, match="'f0'"):
        family.registry.plan_verification(family.candidate["model_id"], name)
    assert_nothing_recorded(family)


def test_missing_targets_are_refused(family: Family):
    # Benchmarks refuse NaN targets when added, so the check a verification makes of the rows
    # it reads is shown on the column as Parquet would give it.
    import pyarrow as pa

    column = pa.array([1.0, None, 0.0, float("nan")], type=pa.float64())
    with pytest.raises(InvalidDatasetError, match="2 missing"):
        check_target_values("bench", "label", column.to_numpy(zero_copy_only=False))
    text = pa.array(["yes", None, "no", " "])
    with pytest.raises(InvalidDatasetError, match="2 missing"):
        check_target_values("bench", "label", text.to_numpy(zero_copy_only=False))
    ok = check_target_values("bench", "label", np.array([0, 1, 1]))
    assert ok.tolist() == [0, 1, 1]


def test_a_benchmark_file_with_missing_targets_is_refused_by_the_plan(family: Family):
    # The same check on a benchmark whose stored rows were replaced behind the store's back.
    from hokusai.registry.benchmarks import BenchmarkStore
    from hokusai.registry.verification import _local_file

    bench = BenchmarkStore(family.registry.settings).get(family.benchmark)
    path = _local_file(bench.artifact_uri)
    assert path is not None and path.is_file()
    rows = pd.read_parquet(path)
    rows["label"] = rows["label"].astype("float64")
    rows.loc[5, "label"] = np.nan
    rows.to_parquet(path, index=False)
    with pytest.raises(InvalidDatasetError, match="1 missing"):
        family.registry.plan_verification(family.candidate["model_id"], family.benchmark)
    assert_nothing_recorded(family)


def test_roc_auc_needs_models_that_give_probabilities(family: Family, tmp_path: Path):
    from sklearn.svm import LinearSVC

    train = synthetic(500, seed=4)
    svc = LinearSVC().fit(train[FEATURES], train["label"])  # labels only, no predict_proba
    registry = family.registry
    candidate = registry.register_improved_model(
        svc,
        family.baseline["model_id"],
        {"roc_auc": 0.01},
        CONTRIBUTOR,
        input_example=train[FEATURES].head(3),
    )
    name = family.add_benchmark("auc-v1", synthetic(300, seed=5), "roc_auc")
    with pytest.raises(MetricMismatchError, match="predict_proba") as caught:
        registry.plan_verification(candidate["model_id"], name)
    assert "hokusai_verifydemo_improved/2" in str(caught.value)
    # A guardrail on roc_auc needs probabilities as well.
    with pytest.raises(MetricMismatchError, match="predict_proba"):
        registry.plan_verification(candidate["model_id"], family.benchmark)
    from tests.verification.conftest import verification_runs, verification_tags

    assert verification_runs(registry) == []
    assert verification_tags(registry, candidate["model_id"]) == {}


def test_rmse_on_text_labels_is_refused(family: Family):
    from sklearn.tree import DecisionTreeClassifier

    registry = family.registry
    train = synthetic(500, seed=6)
    train["label"] = np.where(train["label"] == 1, "yes", "no")
    weak = DecisionTreeClassifier(max_depth=1).fit(train[FEATURES], train["label"])
    strong = DecisionTreeClassifier(max_depth=4).fit(train[FEATURES], train["label"])
    base = registry.register_baseline(weak, "textlabels", input_example=train[FEATURES].head(3))
    cand = registry.register_improved_model(
        strong, base["model_id"], {"rmse": -0.1}, CONTRIBUTOR, input_example=train[FEATURES].head(3)
    )
    name = family.add_benchmark("text-rmse", train, "rmse")
    with pytest.raises(MetricMismatchError, match="not numeric"):
        registry.plan_verification(cand["model_id"], name)
    # accuracy on the same text labels is fine
    ok = family.add_benchmark("text-accuracy", train, "accuracy")
    assert registry.plan_verification(cand["model_id"], ok).benchmark == "text-accuracy"
    from tests.verification.conftest import verification_runs

    assert verification_runs(registry) == []


def test_accuracy_on_a_continuous_target_is_refused(family: Family):
    rows = synthetic(300, seed=7)
    rows["label"] = rows["label"] + 0.25
    name = family.add_benchmark("continuous", rows, "accuracy")
    with pytest.raises(MetricMismatchError, match="continuous"):
        family.registry.plan_verification(family.candidate["model_id"], name)
    assert_nothing_recorded(family)
