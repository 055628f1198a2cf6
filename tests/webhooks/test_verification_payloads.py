"""The improvement.verified and deltaone.accepted contracts: every payload against its shipped
JSON Schema, what the schemas refuse, what only the builders can refuse, and the weight_bps
splitter (examples and properties)."""

from __future__ import annotations

import copy
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hokusai.errors import InvalidContributorError, ValidationError
from hokusai.webhooks.payloads import (
    SCHEMA_FILES,
    deltaone_accepted_payload,
    deltaone_accepted_schema,
    event_schema,
    improvement_verified_payload,
    improvement_verified_schema,
    metric_family,
    model_registered_schema,
    new_event_id,
    split_weight_bps,
)
from tests.webhooks.helpers import CONTRIBUTOR, verification_result

SECOND = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"

IMPROVEMENT_FIELDS = {
    "event_type", "event_id", "timestamp", "verification_id", "model_id", "model_name",
    "version", "model_uuid", "baseline_id", "baseline_model_uuid", "contributor", "benchmark",
    "primary", "guardrails", "threshold_bps", "accepted", "reasons", "claimed_delta",
    "claim_status", "n_rows", "n_boot", "seed", "alpha", "mlflow_run_id", "attestation_hash",
    "idempotency_key", "model_id_uint", "verified_at",
}  # fmt: skip

DELTAONE_FIELDS = {
    "event_type", "event_id", "timestamp", "event_version", "model_id", "model_id_uint",
    "eval_id", "mlflow_run_id", "benchmark_spec_id", "benchmark_content_hash",
    "primary_metric_name", "primary_metric_mlflow_name", "metric_family", "baseline_score_bps",
    "candidate_score_bps", "delta_bps", "improvement_bps", "delta_threshold_bps",
    "attestation_hash", "idempotency_key", "guardrail_summary", "contributors",
}  # fmt: skip


def _improvement(accepted: bool = True) -> dict[str, Any]:
    return dict(
        improvement_verified_payload(
            verification_result(accepted=accepted), event_id=new_event_id()
        )
    )


def _deltaone(**kwargs: Any) -> dict[str, Any]:
    return dict(deltaone_accepted_payload(verification_result(), event_id=new_event_id(), **kwargs))


def _invalid(payload: dict[str, Any], schema: dict[str, Any]) -> str:
    """The schema's complaint about ``payload`` (failing the test when it has none)."""
    with pytest.raises(jsonschema.ValidationError) as info:
        jsonschema.validate(payload, schema, cls=jsonschema.Draft202012Validator)
    return info.value.message


# ---- the shapes ---------------------------------------------------------------------------


def test_the_schemas_are_valid_draft_2020_12_and_shipped_in_the_package():
    for event_type, path in SCHEMA_FILES.items():
        schema = event_schema(event_type)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)
        assert path.endswith(".v1.json")
    assert event_schema("model_registered") == model_registered_schema()
    with pytest.raises(ValidationError, match="No published schema for 'ping'"):
        event_schema("ping")


@pytest.mark.parametrize("accepted", [True, False])
def test_improvement_verified_carries_the_whole_verification(accepted):
    result = verification_result(accepted=accepted)
    payload = improvement_verified_payload(result, event_id="evt_" + "a" * 32)
    jsonschema.validate(payload, improvement_verified_schema())
    assert set(payload) == IMPROVEMENT_FIELDS
    assert set(improvement_verified_schema()["required"]) == IMPROVEMENT_FIELDS
    assert payload["event_type"] == "improvement.verified"
    assert payload["event_id"] == "evt_" + "a" * 32
    assert payload["model_id"] == "hokusai_lead_scoring_improved/3"
    assert (payload["model_name"], payload["version"]) == ("hokusai_lead_scoring_improved", "3")
    assert payload["timestamp"] == payload["verified_at"] == result["verified_at"]
    assert payload["model_uuid"] == result["candidate_model_uuid"]
    assert payload["benchmark"] == result["benchmark"]
    assert payload["primary"] == result["primary"]
    assert payload["guardrails"] == result["guardrails"]
    assert payload["accepted"] is accepted
    assert payload["reasons"] == result["reasons"]
    assert (payload["reasons"] == []) is accepted
    for key in ("verification_id", "attestation_hash", "idempotency_key", "model_id_uint"):
        assert payload[key] == result[key]
    assert "event_ids" not in payload and "reused" not in payload


def test_improvement_verified_sends_only_the_declared_comparison_fields():
    """Whatever else a result's comparison holds, the payload carries the contract."""
    result = verification_result()
    result["primary"]["internal_scratch"] = [1, 2, 3]
    payload = improvement_verified_payload(result, event_id=new_event_id())
    assert "internal_scratch" not in payload["primary"]


def test_deltaone_accepted_for_an_accepted_verification():
    result = verification_result()
    payload = deltaone_accepted_payload(result, event_id="evt_" + "b" * 32)
    jsonschema.validate(payload, deltaone_accepted_schema())
    assert set(payload) == DELTAONE_FIELDS
    assert set(deltaone_accepted_schema()["required"]) == DELTAONE_FIELDS
    assert payload["event_version"] == "deltaone.acceptance/v1"
    assert payload["model_id"] == result["candidate_id"]
    assert payload["model_id_uint"] == result["model_id_uint"]
    assert payload["eval_id"] == result["verification_id"]
    assert payload["mlflow_run_id"] == result["mlflow_run_id"]
    assert payload["benchmark_spec_id"] == "leads-2026q4"
    assert payload["benchmark_content_hash"] == result["benchmark"]["content_hash"]
    assert payload["primary_metric_name"] == "accuracy"
    assert payload["primary_metric_mlflow_name"] == "candidate_accuracy"
    assert payload["metric_family"] == "proportion"
    assert (payload["baseline_score_bps"], payload["candidate_score_bps"]) == (8714, 8891)
    assert payload["delta_bps"] == 8891 - 8714 == payload["improvement_bps"]
    assert payload["delta_threshold_bps"] == 100
    assert payload["idempotency_key"] == result["idempotency_key"]
    assert payload["guardrail_summary"] == {
        "total_guardrails": 1,
        "guardrails_passed": 1,
        "breaches": [],
    }
    assert payload["contributors"] == [{"wallet_address": CONTRIBUTOR, "weight_bps": 10_000}]


def test_a_lowercase_contributor_is_credited_in_eip55():
    result = verification_result(contributor=CONTRIBUTOR.lower())
    payload = deltaone_accepted_payload(result, event_id=new_event_id())
    assert payload["contributors"][0]["wallet_address"] == CONTRIBUTOR


def test_several_contributors_split_exactly():
    payload = _deltaone(
        contributors=[
            {"wallet_address": CONTRIBUTOR, "weight_bps": 6667},
            {"wallet_address": SECOND.lower(), "weight_bps": 3333},
        ]
    )
    jsonschema.validate(payload, deltaone_accepted_schema())
    assert payload["contributors"] == [
        {"wallet_address": CONTRIBUTOR, "weight_bps": 6667},
        {"wallet_address": SECOND, "weight_bps": 3333},
    ]


@pytest.mark.parametrize(
    ("metric", "family"),
    [
        ("accuracy", "proportion"),
        ("balanced_accuracy", "proportion"),
        ("f1", "proportion"),
        ("roc_auc", "proportion"),
        ("log_loss", "continuous"),
        ("rmse", "continuous"),
        ("mae", "continuous"),
        ("my_custom_score", "continuous"),
    ],
)
def test_metric_family(metric, family):
    assert metric_family(metric) == family


def test_a_lower_is_better_metric_has_a_negative_delta_and_a_positive_improvement():
    result = verification_result()
    primary = result["primary"]
    primary.update(
        metric="rmse",
        direction="lower",
        baseline_score=12.5,
        candidate_score=12.1,
        delta=-0.4,
        ci_low=-0.55,
        ci_high=-0.25,
        baseline_score_bps=125_000,
        candidate_score_bps=121_000,
        delta_bps=-4000,
        improvement_bps=4000,
        p_value=None,
    )
    payload = deltaone_accepted_payload(result, event_id=new_event_id())
    jsonschema.validate(payload, deltaone_accepted_schema())
    assert (payload["delta_bps"], payload["improvement_bps"]) == (-4000, 4000)
    assert payload["metric_family"] == "continuous"
    assert payload["primary_metric_mlflow_name"] == "candidate_rmse"


# ---- what the schemas refuse --------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(IMPROVEMENT_FIELDS))
def test_improvement_schema_refuses_a_payload_missing_a_field(field):
    payload = _improvement()
    del payload[field]
    assert field in _invalid(payload, improvement_verified_schema())


@pytest.mark.parametrize("field", sorted(DELTAONE_FIELDS))
def test_deltaone_schema_refuses_a_payload_missing_a_field(field):
    payload = _deltaone()
    del payload[field]
    assert field in _invalid(payload, deltaone_accepted_schema())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("delta_bps",), 177.5),  # a float bps
        (("candidate_score_bps",), "8891"),
        (("contributors", 0, "weight_bps"), 9999.5),
        (("contributors", 0, "weight_bps"), 10_001),
        (("attestation_hash",), "7a95e5e93274a601feedaefcc2ec683e8e6ab823503659f82e084e0b6efc9813"),
        (("idempotency_key",), "0x" + "A" * 64),  # uppercase hex
        (("benchmark_content_hash",), "0x" + "a" * 63),
        (("model_id_uint",), "0x1f"),
        (("model_id_uint",), "0123"),
        (("model_id_uint",), 123),
        (("contributors", 0, "wallet_address"), "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
        (("contributors", 0, "wallet_address"), "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe"),
        (("contributors",), []),
        (("event_version",), "deltaone.acceptance/v2"),
        (("metric_family",), "ratio"),
        (("eval_id",), "verification-1"),
        (("guardrail_summary", "total_guardrails"), 1.5),
    ],
)
def test_deltaone_schema_refuses(path, value):
    payload = _deltaone()
    target = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    _invalid(payload, deltaone_accepted_schema())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("threshold_bps",), 100.5),
        (("primary", "improvement_bps"), 177.25),
        (("guardrails", 0, "delta_bps"), "21"),
        (("primary", "direction"), "up"),
        (("attestation_hash",), "0X" + "a" * 64),
        (("benchmark", "content_hash"), "sha256:" + "a" * 64),
        (("model_id_uint",), "-5"),
        (("contributor",), "0xabc"),
        (("claim_status",), "maybe"),
        (("reasons",), ["because"]),
        (("accepted",), "true"),
        (("verification_id",), "ver_XYZ"),
        (("guardrails", 0), {"metric": "roc_auc"}),
    ],
)
def test_improvement_schema_refuses(path, value):
    payload = _improvement()
    target = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    _invalid(payload, improvement_verified_schema())


def test_weights_not_summing_to_10000_pass_the_schema_but_not_the_builder():
    """A JSON Schema cannot add: the builder is where the sum is enforced."""
    payload = _deltaone()
    payload["contributors"] = [
        {"wallet_address": CONTRIBUTOR, "weight_bps": 6000},
        {"wallet_address": SECOND, "weight_bps": 3000},
    ]
    jsonschema.validate(payload, deltaone_accepted_schema())  # the schema has no objection
    with pytest.raises(ValidationError, match="add up to 9000, not 10000"):
        _deltaone(contributors=payload["contributors"])


# ---- what only the builders refuse --------------------------------------------------------


@pytest.mark.parametrize(
    ("contributors", "error", "match"),
    [
        ([{"wallet_address": CONTRIBUTOR, "weight_bps": 10_000.0}], ValidationError, "integer"),
        ([{"wallet_address": CONTRIBUTOR, "weight_bps": True}], ValidationError, "integer"),
        (
            [
                {"wallet_address": CONTRIBUTOR, "weight_bps": 10_001},
                {"wallet_address": SECOND, "weight_bps": -1},
            ],
            ValidationError,
            "non-negative",
        ),
        (
            [
                {"wallet_address": CONTRIBUTOR, "weight_bps": 5000},
                {"wallet_address": CONTRIBUTOR.lower(), "weight_bps": 5000},
            ],
            InvalidContributorError,
            "listed twice",
        ),
        ([{"wallet_address": "0x123", "weight_bps": 10_000}], InvalidContributorError, "0x123"),
        ([], InvalidContributorError, "at least one contributor"),
    ],
)
def test_the_builder_refuses_bad_contributors(contributors, error, match):
    with pytest.raises(error, match=match):
        _deltaone(contributors=contributors)


def _broken(change: Any) -> dict[str, Any]:
    result = copy.deepcopy(verification_result())
    change(result)
    return result


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda r: r["primary"].update(delta_bps=177.0), r"primary\.delta_bps must be an integer"),
        (lambda r: r.update(threshold_bps=100.0), "threshold_bps must be an integer"),
        (lambda r: r["primary"].update(ci_low=math.nan), "ci_low must be a finite number"),
        (lambda r: r["guardrails"][0].update(delta=math.inf), "finite number"),
        (lambda r: r["primary"].update(delta_bps=176), "candidate_score_bps − baseline_score_bps"),
        (lambda r: r.update(attestation_hash=r["attestation_hash"][2:]), "attestation_hash"),
        (lambda r: r.update(idempotency_key="0x" + "0" * 64), "idempotency_key does not derive"),
        (lambda r: r.update(model_id_uint="12345"), "model_id_uint is not the SHA-256"),
        (lambda r: r.update(verification_id="ver_" + "0" * 24), "verification_id does not"),
        (lambda r: r.update(reasons=["below_threshold"]), "reasons must be empty"),
        (lambda r: r.update(accepted=1), "accepted must be a boolean"),
        (lambda r: r["guardrails"][0].update(passed="yes"), r"guardrails\[0\]\.passed"),
        (lambda r: r.update(claim_status="maybe"), "claim_status must be one of"),
        (lambda r: r.update(contributor="0xabc"), "contributor must be an 0x address"),
        (lambda r: r.pop("mlflow_run_id"), "missing mlflow_run_id"),
        (lambda r: r["benchmark"].pop("target"), "benchmark lacks target"),
        (lambda r: r.update(candidate_id="no-version"), "not a model id"),
    ],
)
def test_the_builders_refuse_a_malformed_result(change, match):
    result = _broken(change)
    for build in (improvement_verified_payload, deltaone_accepted_payload):
        with pytest.raises(ValidationError, match=match):
            build(result, event_id=new_event_id())


def test_no_deltaone_for_a_rejected_verification_or_one_without_a_contributor():
    with pytest.raises(ValidationError, match="was not accepted"):
        deltaone_accepted_payload(verification_result(accepted=False), event_id=new_event_id())
    with pytest.raises(InvalidContributorError, match="no contributor to credit"):
        deltaone_accepted_payload(verification_result(contributor=None), event_id=new_event_id())


def test_a_rejected_verification_breaches_are_summarised():
    """The summary counts what failed, should a caller build it for any result shape."""
    from hokusai.webhooks.payloads import _guardrail_summary

    summary = _guardrail_summary(verification_result(accepted=False)["guardrails"])
    assert summary["total_guardrails"] == 1
    assert summary["guardrails_passed"] == 0
    (breach,) = summary["breaches"]
    assert breach["metric_name"] == "roc_auc"
    assert (breach["delta"], breach["tolerance"]) == (-0.009, 0.005)
    assert "worse than the baseline by 0.009, more than the tolerance 0.005" in breach["reason"]


# ---- split_weight_bps ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ([1], [10_000]),
        ([1, 1], [5000, 5000]),
        ([1, 1, 1], [3334, 3333, 3333]),  # tie: the earlier one
        ([2, 1], [6667, 3333]),
        ([0, 5], [0, 10_000]),
        ([1, 1, 1, 1, 1, 1, 1], [1429, 1429, 1429, 1429, 1428, 1428, 1428]),
        ([0.1, 0.2, 0.7], [1000, 2000, 7000]),
        ([Decimal("0.3333"), Decimal("0.6667")], [3333, 6667]),
        ([Fraction(1, 3), Fraction(2, 3)], [3333, 6667]),
        ([1, 10**30], [0, 10_000]),
        ([3, 3, 3, 1], [3000, 3000, 3000, 1000]),
        ([1.5, 2, 0.1], [4167, 5555, 278]),
    ],
)
def test_split_examples(weights, expected):
    assert split_weight_bps(weights) == expected


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([], "at least one weight"),
        ([0, 0], "add up to zero"),
        ([1, -1], "negative"),
        ([math.nan], "finite"),
        ([math.inf, 1], "finite"),
        ([Decimal("NaN")], "finite"),
        (["1"], "must be a number"),
        ([True], "must be a number"),
        ("11", "at least one weight"),
    ],
)
def test_split_refuses(weights, match):
    with pytest.raises(ValidationError, match=match):
        split_weight_bps(weights)


weights_lists = st.lists(
    st.integers(min_value=0, max_value=10**12), min_size=1, max_size=40
).filter(any)
float_weights = st.lists(
    st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=40,
).filter(lambda ws: sum(ws) > 0)


@given(weights_lists)
def test_split_sums_to_10000_each_within_one_of_its_quota(weights):
    shares = split_weight_bps(weights)
    assert sum(shares) == 10_000
    assert all(isinstance(share, int) and share >= 0 for share in shares)
    total = sum(weights)
    for weight, share in zip(weights, shares, strict=True):
        quota = Fraction(weight * 10_000, total)
        assert math.floor(quota) <= share <= math.ceil(quota)
        if weight == 0:
            assert share == 0


@given(float_weights)
def test_split_of_float_weights_sums_to_10000(weights):
    shares = split_weight_bps(weights)
    assert sum(shares) == 10_000
    assert all(share >= 0 for share in shares)


@given(weights_lists)
def test_split_is_monotonic(weights):
    """A strictly larger weight never gets fewer basis points."""
    shares = split_weight_bps(weights)
    for i, wi in enumerate(weights):
        for j, wj in enumerate(weights):
            if wi > wj:
                assert shares[i] >= shares[j]


@given(weights_lists, st.integers(min_value=1, max_value=10**6))
def test_split_depends_only_on_proportions(weights, factor):
    assert split_weight_bps([w * factor for w in weights]) == split_weight_bps(weights)


@given(weights_lists)
def test_split_gives_contributors_valid_deltaone_payloads(weights):
    """Whatever the split, the builder accepts it and the schema validates it."""
    addresses = [f"0x{i + 1:040x}" for i in range(len(weights))]
    contributors = [
        {"wallet_address": address, "weight_bps": share}
        for address, share in zip(addresses, split_weight_bps(weights), strict=True)
    ]
    payload = deltaone_accepted_payload(
        verification_result(), event_id=new_event_id(), contributors=contributors
    )
    jsonschema.validate(payload, deltaone_accepted_schema())


def test_contributor_shares_split_weights_and_checksum_addresses():
    from hokusai.webhooks.payloads import contributor_shares

    assert contributor_shares({CONTRIBUTOR.lower(): 2, SECOND: 1}) == [
        {"wallet_address": CONTRIBUTOR, "weight_bps": 6667},
        {"wallet_address": SECOND, "weight_bps": 3333},
    ]
    with pytest.raises(InvalidContributorError, match="listed twice"):
        contributor_shares({CONTRIBUTOR: 1, CONTRIBUTOR.lower(): 1})
    with pytest.raises(InvalidContributorError, match="Invalid wallet address"):
        contributor_shares({"0xnothex": 1})
