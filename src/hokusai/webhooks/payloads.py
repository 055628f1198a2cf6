"""Event payloads. ``model_registered`` is a contract with the marketplace: fields may be added,
never renamed or removed. ``schemas/model_registered.v1.json`` is its JSON Schema, shipped in
the package and checked against every payload in the tests.

``improvement.verified`` and ``deltaone.accepted`` announce a verification (the registry's own
measurement of a candidate's gain). Their builders check what a JSON Schema cannot (weights
summing to 10,000, integers that arrived as floats, hashes that do not derive from one
another), so a malformed verification fails here, loudly, instead of reaching a subscriber.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from typing import Any, TypedDict

from hokusai.errors import InvalidContributorError, ValidationError
from hokusai.registry.results import BenchmarkRef, GuardrailCheck, MetricComparison

__all__ = [
    "DELTAONE_ACCEPTED",
    "DELTAONE_EVENT_VERSION",
    "IMPROVEMENT_VERIFIED",
    "SCHEMA_FILES",
    "TOTAL_WEIGHT_BPS",
    "ContributorShare",
    "DeltaOneAcceptedPayload",
    "ImprovementVerifiedPayload",
    "ModelRegisteredPayload",
    "contributor_shares",
    "deltaone_accepted_payload",
    "deltaone_accepted_schema",
    "event_schema",
    "improvement_verified_payload",
    "improvement_verified_schema",
    "metric_family",
    "model_promoted_payload",
    "model_registered_payload",
    "model_registered_schema",
    "new_event_id",
    "ping_payload",
    "split_weight_bps",
]

MODEL_REGISTERED = "model_registered"
MODEL_PROMOTED = "model_promoted"
IMPROVEMENT_VERIFIED = "improvement.verified"
DELTAONE_ACCEPTED = "deltaone.accepted"
PING = "ping"

DELTAONE_EVENT_VERSION = "deltaone.acceptance/v1"
TOTAL_WEIGHT_BPS = 10_000
"""What the ``weight_bps`` of a ``deltaone.accepted`` event's contributors add up to."""

SCHEMA_FILES: Mapping[str, str] = {
    MODEL_REGISTERED: "schemas/model_registered.v1.json",
    IMPROVEMENT_VERIFIED: "schemas/improvement_verified.v1.json",
    DELTAONE_ACCEPTED: "schemas/deltaone_accepted.v1.json",
}
"""Each event type with a published JSON Schema → its file inside ``hokusai.webhooks``."""

_PROPORTION_METRICS = frozenset({"accuracy", "balanced_accuracy", "f1", "roc_auc"})
_HASH_RE = re.compile(r"0x[0-9a-f]{64}")
_UINT_RE = re.compile(r"(0|[1-9][0-9]*)")
_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


class ModelRegisteredPayload(TypedDict):
    """The body of a ``model_registered`` webhook."""

    event_type: str
    event_id: str
    model_id: str
    model_name: str
    version: str
    model_version: str
    mlflow_run_id: str | None
    model_uuid: str | None
    model_uri: str | None
    signature: str | None
    metadata: dict[str, Any]
    model_type: str | None
    is_baseline: bool
    baseline_id: str | None
    contributor: str | None
    delta_metrics: dict[str, float] | None
    timestamp: str


class ImprovementVerifiedPayload(TypedDict):
    """The body of an ``improvement.verified`` webhook (every verification, accepted or not)."""

    event_type: str
    event_id: str
    timestamp: str
    verification_id: str
    model_id: str
    model_name: str
    version: str
    model_uuid: str | None
    baseline_id: str
    baseline_model_uuid: str | None
    contributor: str | None
    benchmark: dict[str, Any]
    primary: dict[str, Any]
    guardrails: list[dict[str, Any]]
    threshold_bps: int
    accepted: bool
    reasons: list[str]
    claimed_delta: float | None
    claim_status: str
    n_rows: int
    n_boot: int
    seed: int
    alpha: float
    mlflow_run_id: str
    attestation_hash: str
    idempotency_key: str
    model_id_uint: str
    verified_at: str


class ContributorShare(TypedDict):
    """One contributor credited by a ``deltaone.accepted`` event."""

    wallet_address: str
    """EIP-55."""
    weight_bps: int
    """Its share in basis points; the shares of one event add up to exactly 10,000."""


class GuardrailBreach(TypedDict):
    metric_name: str
    baseline_score: float
    candidate_score: float
    delta: float
    tolerance: float
    reason: str


class GuardrailSummary(TypedDict):
    total_guardrails: int
    guardrails_passed: int
    breaches: list[GuardrailBreach]


class DeltaOneAcceptedPayload(TypedDict):
    """The body of a ``deltaone.accepted`` webhook (accepted verifications only)."""

    event_type: str
    event_id: str
    timestamp: str
    event_version: str
    model_id: str
    model_id_uint: str
    eval_id: str
    mlflow_run_id: str
    benchmark_spec_id: str
    benchmark_content_hash: str
    primary_metric_name: str
    primary_metric_mlflow_name: str
    metric_family: str
    baseline_score_bps: int
    candidate_score_bps: int
    delta_bps: int
    improvement_bps: int
    delta_threshold_bps: int
    attestation_hash: str
    idempotency_key: str
    guardrail_summary: GuardrailSummary
    contributors: list[ContributorShare]


def new_event_id() -> str:
    """A unique event id; it is also the ``webhook-id`` of every delivery attempt."""
    return f"evt_{uuid.uuid4().hex}"


def model_registered_payload(result: Mapping[str, Any], *, event_id: str) -> ModelRegisteredPayload:
    """The payload for a registration result (or a lookup dict of the same shape)."""
    return {
        "event_type": MODEL_REGISTERED,
        "event_id": event_id,
        "model_id": result["model_id"],
        "model_name": result["model_name"],
        "version": str(result["version"]),
        "model_version": str(result["version"]),
        "mlflow_run_id": result.get("run_id"),
        "model_uuid": result.get("model_uuid"),
        "model_uri": result.get("model_uri"),
        "signature": result.get("signature"),
        "metadata": result.get("metadata") or {},
        "model_type": result.get("model_type"),
        "is_baseline": bool(result.get("is_baseline")),
        "baseline_id": result.get("baseline_id"),
        "contributor": result.get("contributor"),
        "delta_metrics": result.get("delta_metrics") or None,
        "timestamp": result.get("registration_timestamp") or _now(),
    }


def model_promoted_payload(
    version: Mapping[str, Any], *, event_id: str, alias: str, previous_version: str | None
) -> dict[str, Any]:
    """The body of a ``model_promoted`` webhook: ``alias`` now points at ``version``."""
    return {
        "event_type": MODEL_PROMOTED,
        "event_id": event_id,
        "model_id": version["model_id"],
        "model_name": version["model_name"],
        "version": str(version["version"]),
        "alias": alias,
        "previous_version": previous_version,
        "model_uuid": version.get("model_uuid"),
        "model_uri": version.get("model_uri"),
        "model_type": version.get("model_type"),
        "is_baseline": bool(version.get("is_baseline")),
        "contributor": version.get("contributor"),
        "timestamp": _now(),
    }


def ping_payload(*, event_id: str, endpoint_id: str) -> dict[str, Any]:
    """The body of a test delivery (``hokusai webhooks test``)."""
    return {
        "event_type": PING,
        "event_id": event_id,
        "endpoint_id": endpoint_id,
        "timestamp": _now(),
    }


def model_registered_schema() -> dict[str, Any]:
    """The JSON Schema of ``model_registered`` payloads (v1)."""
    return event_schema(MODEL_REGISTERED)


def improvement_verified_payload(
    result: Mapping[str, Any], *, event_id: str
) -> ImprovementVerifiedPayload:
    """The body of ``improvement.verified`` for a verification result (accepted or not)."""
    _check_verification(result)
    model_name, version = _split_model_id(result["candidate_id"])
    return {
        "event_type": IMPROVEMENT_VERIFIED,
        "event_id": event_id,
        "timestamp": result["verified_at"],
        "verification_id": result["verification_id"],
        "model_id": result["candidate_id"],
        "model_name": model_name,
        "version": version,
        "model_uuid": result.get("candidate_model_uuid"),
        "baseline_id": result["baseline_id"],
        "baseline_model_uuid": result.get("baseline_model_uuid"),
        "contributor": result.get("contributor"),
        "benchmark": _project(result["benchmark"], BenchmarkRef, "benchmark"),
        "primary": _project(result["primary"], MetricComparison, "primary"),
        "guardrails": [
            _project(check, GuardrailCheck, f"guardrails[{i}]")
            for i, check in enumerate(result["guardrails"])
        ],
        "threshold_bps": result["threshold_bps"],
        "accepted": result["accepted"],
        "reasons": list(result["reasons"]),
        "claimed_delta": result.get("claimed_delta"),
        "claim_status": result["claim_status"],
        "n_rows": result["n_rows"],
        "n_boot": result["n_boot"],
        "seed": result["seed"],
        "alpha": result["alpha"],
        "mlflow_run_id": result["mlflow_run_id"],
        "attestation_hash": result["attestation_hash"],
        "idempotency_key": result["idempotency_key"],
        "model_id_uint": result["model_id_uint"],
        "verified_at": result["verified_at"],
    }


def deltaone_accepted_payload(
    result: Mapping[str, Any],
    *,
    event_id: str,
    contributors: Sequence[Mapping[str, Any]] | None = None,
) -> DeltaOneAcceptedPayload:
    """The body of ``deltaone.accepted`` for an accepted verification.

    ``contributors`` (``wallet_address``, ``weight_bps``) default to the result's contributor
    with all 10,000 bps; given, their ``weight_bps`` must be integers adding up to exactly
    10,000 (see :func:`contributor_shares` to split weights so they do).
    """
    _check_verification(result)
    if result["accepted"] is not True:
        raise ValidationError(
            f"Verification {result['verification_id']} was not accepted: no deltaone.accepted."
        )
    if contributors is None:
        if not result.get("contributor"):
            raise InvalidContributorError(
                f"Verification {result['verification_id']} has no contributor to credit."
            )
        contributors = contributor_shares({result["contributor"]: 1})
    primary = result["primary"]
    metric = primary["metric"]
    return {
        "event_type": DELTAONE_ACCEPTED,
        "event_id": event_id,
        "timestamp": result["verified_at"],
        "event_version": DELTAONE_EVENT_VERSION,
        "model_id": result["candidate_id"],
        "model_id_uint": result["model_id_uint"],
        "eval_id": result["verification_id"],
        "mlflow_run_id": result["mlflow_run_id"],
        "benchmark_spec_id": result["benchmark"]["name"],
        "benchmark_content_hash": result["benchmark"]["content_hash"],
        "primary_metric_name": metric,
        "primary_metric_mlflow_name": f"candidate_{metric}",
        "metric_family": metric_family(metric),
        "baseline_score_bps": primary["baseline_score_bps"],
        "candidate_score_bps": primary["candidate_score_bps"],
        "delta_bps": primary["delta_bps"],
        "improvement_bps": primary["improvement_bps"],
        "delta_threshold_bps": result["threshold_bps"],
        "attestation_hash": result["attestation_hash"],
        "idempotency_key": result["idempotency_key"],
        "guardrail_summary": _guardrail_summary(result["guardrails"]),
        "contributors": _checked_shares(contributors),
    }


def metric_family(metric: str) -> str:
    """``"proportion"`` for metrics bounded in [0, 1] that count or rank (accuracy, balanced
    accuracy, F1, ROC AUC), ``"continuous"`` for the rest (log loss, RMSE, MAE, custom)."""
    return "proportion" if metric in _PROPORTION_METRICS else "continuous"


def split_weight_bps(weights: Sequence[int | float | Decimal | Fraction]) -> list[int]:
    """Split 10,000 basis points in proportion to ``weights`` (largest remainder).

    Each share is its exact quota rounded down, and the basis points left over go one each to
    the largest remainders (ties: the earlier weight), so the shares are integers adding up to
    exactly 10,000, each within 1 of its exact quota; a zero weight gets 0. Arithmetic is exact
    (a float weight counts as the binary value it holds).
    """
    if isinstance(weights, str | bytes) or not weights:
        raise ValidationError("Nothing to split: give at least one weight.")
    exact = [_exact_weight(weight) for weight in weights]
    total = sum(exact, Fraction(0))
    if total == 0:
        raise ValidationError("Nothing to split: the weights add up to zero.")
    quotas = [weight * TOTAL_WEIGHT_BPS / total for weight in exact]
    shares = [math.floor(quota) for quota in quotas]
    left = TOTAL_WEIGHT_BPS - sum(shares)
    by_remainder = sorted(range(len(quotas)), key=lambda i: (shares[i] - quotas[i], i))
    for i in by_remainder[:left]:
        shares[i] += 1
    return shares


def contributor_shares(
    weights: Mapping[str, int | float | Decimal | Fraction],
) -> list[ContributorShare]:
    """Contributors' ``weight_bps`` from their weights (any positive scale), in the given order
    and with EIP-55 addresses (see :func:`split_weight_bps`)."""
    addresses = [_checksum(address) for address in weights]
    if len(set(addresses)) != len(addresses):
        raise InvalidContributorError("A contributor is listed twice.")
    return [
        {"wallet_address": address, "weight_bps": bps}
        for address, bps in zip(addresses, split_weight_bps(list(weights.values())), strict=True)
    ]


def improvement_verified_schema() -> dict[str, Any]:
    """The JSON Schema of ``improvement.verified`` payloads (v1)."""
    return event_schema(IMPROVEMENT_VERIFIED)


def deltaone_accepted_schema() -> dict[str, Any]:
    """The JSON Schema of ``deltaone.accepted`` payloads (v1)."""
    return event_schema(DELTAONE_ACCEPTED)


def event_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an event type's payloads, as shipped in the package."""
    try:
        name = SCHEMA_FILES[event_type]
    except KeyError:
        known = ", ".join(SCHEMA_FILES)
        raise ValidationError(
            f"No published schema for {event_type!r}; schemas exist for {known}."
        ) from None
    text = resources.files("hokusai.webhooks").joinpath(name)
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return schema


# ---- checks: what a JSON Schema cannot say ------------------------------------------------


def _check_verification(result: Mapping[str, Any]) -> None:
    """Refuse a result whose announcement would be wrong: a missing field, an integer that is
    not one, a non-finite number, hashes that do not derive from each other as the
    verification method says, or a decision that contradicts its reasons."""
    vid = result.get("verification_id", "?")

    def bad(what: str) -> ValidationError:
        return ValidationError(f"Verification {vid}: {what}; not announced.")

    missing = [key for key in _REQUIRED_RESULT_KEYS if key not in result]
    if missing:
        raise bad(f"missing {', '.join(missing)}")
    for key in ("attestation_hash", "idempotency_key"):
        if not isinstance(result[key], str) or not _HASH_RE.fullmatch(result[key]):
            raise bad(f"{key} must be 0x + 64 lowercase hex digits")
    uint = result["model_id_uint"]
    if not isinstance(uint, str) or not _UINT_RE.fullmatch(uint):
        raise bad("model_id_uint must be a decimal string")
    candidate = str(result["candidate_id"])
    _split_model_id(candidate)
    if int(uint) != int.from_bytes(hashlib.sha256(candidate.encode()).digest(), "big"):
        raise bad("model_id_uint is not the SHA-256 of the candidate's model_id")
    key = "0x" + hashlib.sha256(f"{uint}:{result['attestation_hash'][2:]}".encode()).hexdigest()
    if result["idempotency_key"] != key:
        raise bad("idempotency_key does not derive from model_id_uint and attestation_hash")
    if result["verification_id"] != "ver_" + key[2:26]:
        raise bad("verification_id does not derive from the idempotency key")
    for name in ("threshold_bps", "n_rows", "n_boot", "seed"):
        _require_int(result[name], name, bad)
    _require_number(result["alpha"], "alpha", bad)
    if result.get("claimed_delta") is not None:
        _require_number(result["claimed_delta"], "claimed_delta", bad)
    if not isinstance(result["accepted"], bool):
        raise bad("accepted must be a boolean")
    if bool(result["accepted"]) == bool(result["reasons"]):
        raise bad("reasons must be empty exactly when accepted")
    if result["claim_status"] not in _CLAIM_STATUSES:
        raise bad(f"claim_status must be one of {', '.join(_CLAIM_STATUSES)}")
    contributor = result.get("contributor")
    if contributor is not None and (
        not isinstance(contributor, str) or not _ADDRESS_RE.fullmatch(contributor)
    ):
        raise bad("contributor must be an 0x address of 40 hex digits")
    benchmark = _project(result["benchmark"], BenchmarkRef, "benchmark")
    _project(result["primary"], MetricComparison, "primary")
    for i, check in enumerate(result["guardrails"]):
        _project(check, GuardrailCheck, f"guardrails[{i}]")
    if not isinstance(benchmark.get("content_hash"), str) or not _HASH_RE.fullmatch(
        benchmark["content_hash"]
    ):
        raise bad("benchmark.content_hash must be 0x + 64 lowercase hex digits")
    _require_int(benchmark.get("num_rows"), "benchmark.num_rows", bad)
    _check_comparison(result["primary"], "primary", bad)
    for i, check in enumerate(result["guardrails"]):
        _check_comparison(check, f"guardrails[{i}]", bad)
        _require_number(check.get("tolerance"), f"guardrails[{i}].tolerance", bad)
        if not isinstance(check.get("passed"), bool):
            raise bad(f"guardrails[{i}].passed must be a boolean")


_REQUIRED_RESULT_KEYS = (
    "verification_id",
    "candidate_id",
    "baseline_id",
    "benchmark",
    "primary",
    "guardrails",
    "threshold_bps",
    "accepted",
    "reasons",
    "claim_status",
    "n_rows",
    "n_boot",
    "seed",
    "alpha",
    "mlflow_run_id",
    "attestation_hash",
    "idempotency_key",
    "model_id_uint",
    "verified_at",
)
_CLAIM_STATUSES = ("reproduced", "not_reproduced", "not_claimed")


def _check_comparison(comparison: Mapping[str, Any], where: str, bad: Any) -> None:
    if comparison.get("direction") not in ("higher", "lower"):
        raise bad(f"{where}.direction must be 'higher' or 'lower'")
    for name in ("baseline_score", "candidate_score", "delta", "ci_low", "ci_high"):
        _require_number(comparison.get(name), f"{where}.{name}", bad)
    if comparison.get("p_value") is not None:
        _require_number(comparison["p_value"], f"{where}.p_value", bad)
    for name in ("baseline_score_bps", "candidate_score_bps", "delta_bps", "improvement_bps"):
        _require_int(comparison.get(name), f"{where}.{name}", bad)
    if (
        comparison["delta_bps"]
        != comparison["candidate_score_bps"] - comparison["baseline_score_bps"]
    ):
        raise bad(f"{where}.delta_bps is not candidate_score_bps − baseline_score_bps")


def _require_int(value: Any, name: str, bad: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"{name} must be an integer, not {value!r}")


def _require_number(value: Any, name: str, bad: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad(f"{name} must be a finite number, not {value!r}")


def _checked_shares(shares: Sequence[Mapping[str, Any]]) -> list[ContributorShare]:
    """The contributors as sent: EIP-55 addresses, once each, integer ``weight_bps`` ≥ 0 adding
    up to exactly 10,000 (a JSON Schema cannot say the sum)."""
    if not shares:
        raise InvalidContributorError("deltaone.accepted needs at least one contributor.")
    checked: list[ContributorShare] = []
    for share in shares:
        bps = share.get("weight_bps")
        if isinstance(bps, bool) or not isinstance(bps, int) or bps < 0:
            raise ValidationError(f"weight_bps must be a non-negative integer, not {bps!r}.")
        checked.append(
            {"wallet_address": _checksum(share.get("wallet_address")), "weight_bps": bps}
        )
    addresses = [share["wallet_address"] for share in checked]
    if len(set(addresses)) != len(addresses):
        raise InvalidContributorError("A contributor is listed twice.")
    total = sum(share["weight_bps"] for share in checked)
    if total != TOTAL_WEIGHT_BPS:
        raise ValidationError(
            f"Contributors' weight_bps add up to {total}, not {TOTAL_WEIGHT_BPS}."
        )
    return checked


def _guardrail_summary(guardrails: Sequence[Mapping[str, Any]]) -> GuardrailSummary:
    breaches: list[GuardrailBreach] = [
        {
            "metric_name": check["metric"],
            "baseline_score": check["baseline_score"],
            "candidate_score": check["candidate_score"],
            "delta": check["delta"],
            "tolerance": check["tolerance"],
            "reason": (
                f"the candidate is worse than the baseline by {abs(check['delta']):g}, "
                f"more than the tolerance {check['tolerance']:g}"
            ),
        }
        for check in guardrails
        if not check["passed"]
    ]
    return {
        "total_guardrails": len(guardrails),
        "guardrails_passed": len(guardrails) - len(breaches),
        "breaches": breaches,
    }


def _exact_weight(weight: object) -> Fraction:
    if isinstance(weight, bool) or not isinstance(weight, int | float | Decimal | Fraction):
        raise ValidationError(f"A weight must be a number, not {weight!r}.")
    if isinstance(weight, float | Decimal) and not math.isfinite(weight):
        raise ValidationError(f"A weight must be finite, not {weight!r}.")
    exact = Fraction(weight)
    if exact < 0:
        raise ValidationError(f"A weight cannot be negative ({weight!r}).")
    return exact


def _checksum(address: object) -> str:
    """EIP-55 form of an address (the registry stored it checksummed already)."""
    from eth_utils.address import to_checksum_address  # pulls in the keccak backend

    if not isinstance(address, str) or not _ADDRESS_RE.fullmatch(address):
        raise InvalidContributorError(
            f"Invalid wallet address {address!r}: expected '0x' followed by 40 hex digits."
        )
    checksum: str = to_checksum_address(address)
    return checksum


def _split_model_id(model_id: str) -> tuple[str, str]:
    name, _, version = model_id.rpartition("/")
    if not name or not version.isdigit():
        raise ValidationError(f"{model_id!r} is not a model id ({{model_name}}/{{version}}).")
    return name, version


def _project(source: Mapping[str, Any], shape: type, where: str) -> dict[str, Any]:
    """The keys ``shape`` (a TypedDict) declares, in its order: the payload carries the
    declared contract, not whatever else the result holds."""
    keys = list(shape.__annotations__)
    missing = [key for key in keys if key not in source]
    if missing:
        raise ValidationError(f"{where} lacks {', '.join(missing)}; not announced.")
    return {key: source[key] for key in keys}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
