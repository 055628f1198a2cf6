"""The shapes of what the registry returns, declared once.

Callers receive plain dicts (the pre-upgrade registry returned dicts, and JSON is one
``json.dumps`` away); these ``TypedDict`` classes say which keys each dict has. The REST
schemas (:mod:`hokusai.rest.schemas`) and the CLI read the same keys, and a test holds the REST
schemas to these declarations field by field.
"""

# No `from __future__ import annotations` here: TypedDict reads NotRequired[...] from real
# annotations (with strings, every key would look required at run time).

from typing import Any

# typing_extensions: pydantic (the REST schemas) needs its TypedDict before Python 3.12.
from typing_extensions import NotRequired, TypedDict

__all__ = [
    "AliasChange",
    "AliasRemoval",
    "BenchmarkRef",
    "GuardrailCheck",
    "LineageEntry",
    "MetricComparison",
    "ModelSummary",
    "ModelVersionInfo",
    "RegistrationResult",
    "VerificationResult",
    "VerificationSummary",
]


class BenchmarkRef(TypedDict):
    """The benchmark a verification ran on (a benchmark never changes once added)."""

    name: str
    content_hash: str
    """``0x`` + SHA-256 of the rows, independent of row order and file format."""
    num_rows: int
    target: str
    metric: str
    direction: str
    """``"higher"`` or ``"lower"``: which way the metric is better."""


class MetricComparison(TypedDict):
    """One metric, baseline and candidate scored on the same rows (``delta`` = candidate −
    baseline, in the metric's own units; ``*_bps`` in integer basis points, ROUND_HALF_EVEN)."""

    metric: str
    direction: str
    baseline_score: float
    candidate_score: float
    delta: float
    ci_low: float
    ci_high: float
    """The paired 95% interval of ``delta``."""
    ci_method: str
    """``"paired_bootstrap"`` or ``"delong"`` (ROC AUC)."""
    p_value: float | None
    """Exact McNemar for accuracy, else ``None``."""
    baseline_score_bps: int
    candidate_score_bps: int
    delta_bps: int
    """``candidate_score_bps − baseline_score_bps`` (signed; negative is better for a lower-is-
    better metric)."""
    improvement_bps: int
    """``delta`` in basis points on the better side: positive means the candidate is better."""


class GuardrailCheck(MetricComparison):
    """A guardrail: the candidate may be worse than the baseline by at most ``tolerance``."""

    tolerance: float
    passed: bool


class VerificationResult(TypedDict):
    """What ``verify_improvement`` returns: the registry's own measurement of a candidate's gain
    over its baseline on a benchmark, with the claim beside it and the decision."""

    verification_id: str
    """``ver_`` + 24 hex digits of the idempotency key: the same inputs give the same id."""
    candidate_id: str
    baseline_id: str
    candidate_model_uuid: str | None
    baseline_model_uuid: str | None
    contributor: str | None
    """EIP-55."""
    benchmark: BenchmarkRef
    primary: MetricComparison
    """The benchmark's metric."""
    guardrails: list[GuardrailCheck]
    threshold_bps: int
    accepted: bool
    """``primary.improvement_bps ≥ threshold_bps``, its interval wholly on the better side of
    zero, and every guardrail passed."""
    reasons: list[str]
    """Why not accepted (empty when accepted): ``below_threshold``, ``interval_includes_zero``,
    ``guardrail_failed:<metric>``."""
    claimed_delta: float | None
    """The contributor's claim for the benchmark's metric (``delta_metrics[metric]``)."""
    claimed_delta_metrics: dict[str, float]
    claim_status: str
    """``"reproduced"`` (the claim is within or below the interval on the better side),
    ``"not_reproduced"`` (it claims more than the interval allows: flagged) or
    ``"not_claimed"``."""
    n_rows: int
    n_boot: int
    seed: int
    alpha: float
    mlflow_run_id: str
    """The evaluation run (experiment ``hokusai-verifications``)."""
    attestation_hash: str
    """``0x`` + SHA-256 of the manifest's canonical inputs."""
    idempotency_key: str
    """``0x`` + SHA-256 of ``"{model_id_uint}:{attestation hex without 0x}"``."""
    model_id_uint: str
    """The candidate's ``model_id`` as a uint256 (SHA-256, big-endian), in decimal."""
    verified_at: str
    """ISO 8601, UTC."""
    event_ids: list[str]
    """``improvement.verified`` and, when accepted, ``deltaone.accepted`` (empty when nothing
    announces or the verification was already recorded)."""
    reused: bool
    """True when these inputs had already been verified: the recorded verification is returned
    and nothing new is written or announced."""


class VerificationSummary(TypedDict):
    """The latest verification of a version, as its tags record it (on version reads, listings
    and lineage entries, beside the claimed ``delta_metrics``)."""

    verification_id: str
    benchmark: str
    metric: str
    delta_bps: int
    improvement_bps: int
    accepted: bool
    claim_status: str
    mlflow_run_id: str
    verified_at: str


class RegistrationResult(TypedDict):
    """What ``register_baseline``, ``register_improved_model`` and ``register_from_uri`` return:
    MLflow's ``ModelInfo`` and ``ModelVersion`` of the one version registered."""

    model_id: str
    """``"{model_name}/{version}"``."""
    model_name: str
    version: str
    model_type: str
    is_baseline: bool
    run_id: str | None
    registration_timestamp: str | None
    """ISO 8601, UTC."""
    model_uri: str
    """``ModelInfo.model_uri`` (``models:/m-…``)."""
    model_uuid: str
    """``ModelInfo.model_uuid`` (the ``m-…`` logged-model id)."""
    artifact_path: str | None
    mlflow_version: str | None
    flavors: list[str]
    signature: str | None
    metadata: dict[str, Any]
    metrics: dict[str, float]
    code_paths: list[str]
    git_commit: str | None
    registration_run_id: str
    """The MLflow run of this registration (for a registered URI, ``run_id`` is the run that
    logged the model)."""
    baseline_id: NotRequired[str | None]
    """Improved models only, like ``contributor`` (EIP-55) and ``delta_metrics``."""
    contributor: NotRequired[str | None]
    delta_metrics: NotRequired[dict[str, float] | None]
    verification: NotRequired[VerificationResult]
    """``register_improved_model(..., benchmark=NAME)`` only: the verification that followed."""


class ModelVersionInfo(TypedDict):
    """Everything known about one version: what ``get_model_by_uuid`` and ``get_model`` return."""

    model_id: str
    model_name: str
    version: str
    model_uuid: str | None
    model_uri: str
    run_id: str | None
    stage: str | None
    """``None`` when MLflow's stage is unset."""
    aliases: list[str]
    status: str | None
    model_type: str | None
    is_baseline: bool
    baseline_id: str | None
    contributor: str | None
    delta_metrics: dict[str, float]
    metadata: dict[str, Any]
    signature: str | None
    flavors: list[str]
    code_paths: list[str]
    mlflow_version: str | None
    artifact_path: str | None
    git_commit: str | None
    registration_timestamp: str | None
    created_at: int
    """Milliseconds since the epoch (MLflow's ``creation_timestamp``)."""
    legacy: bool
    """Registered by the pre-upgrade code (read from its params and tags)."""
    verification: VerificationSummary | None
    """Its latest verification (``verify_improvement``), None when never verified."""


class LineageEntry(ModelVersionInfo):
    """One version in ``get_model_lineage``: its description plus its place in the family."""

    metrics: dict[str, float]
    depth: int
    """0 for the baseline, 1 for an improvement on it, …"""
    parent_id: str | None
    cumulative_improvement: dict[str, float]
    """Per metric, the sum of deltas from the baseline to this version, and
    ``total_improvements`` (= depth): what the contributors *claimed*."""
    cumulative_verified_improvement_bps: int
    """The sum of ``improvement_bps`` of the accepted verifications (each version's latest)
    from the baseline to this version: what the registry *measured*."""


class ModelSummary(TypedDict):
    """The short description used in listings (``list_models``, ``get_contributor_models``)."""

    model_id: str
    model_name: str
    version: str
    model_uuid: str | None
    model_type: str | None
    is_baseline: bool
    run_id: str | None
    baseline_id: str | None
    contributor: str | None
    delta_metrics: dict[str, float]
    stage: str | None
    aliases: list[str]
    registration_timestamp: str | None
    legacy: bool
    verification: VerificationSummary | None
    """Its latest verification, None when never verified."""


class AliasChange(TypedDict):
    """What ``set_alias`` returns."""

    model_name: str
    alias: str
    version: str
    previous_version: str | None
    model_id: str
    model_uuid: str | None
    event_id: str | None
    """The ``model_promoted`` event recorded, or None when nothing announces."""


class AliasRemoval(TypedDict):
    """What ``delete_alias`` returns."""

    model_name: str
    alias: str
    previous_version: str | None
