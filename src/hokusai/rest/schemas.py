"""Request and response schemas: ``XCreate`` / ``XUpdate`` in, ``XPublic`` / ``XsPublic`` out.

Model versions are answered in the library's own shapes (:mod:`hokusai.registry.results`).

Requests are strict (unknown fields are a 422); responses allow fields to be added, never
renamed or removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hokusai.registry.results import LineageEntry, ModelSummary, VerificationResult

CONTRIBUTOR_EXAMPLE = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
UUID_EXAMPLE = "m-2918a46aa65c4593bba43789c864a46f"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(Open):
    code: str = Field(examples=["invalid_contributor"])
    message: str = Field(examples=["Invalid contributor address '0x12'"])


class ErrorPublic(Open):
    error: ErrorDetail


class ModelCreate(Strict):
    """Register an already-logged MLflow model. baseline_id, contributor and delta_metrics
    together make it an improved model."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model_uri": f"models:/{UUID_EXAMPLE}",
                    "model_type": "lead_scoring",
                    "metadata": {"dataset": "crm-2026", "rows": 120000},
                },
                {
                    "model_uri": "runs:/9ef250af2b86434881630a5b4015b1bf/model",
                    "model_type": "lead_scoring",
                    "metadata": {},
                    "baseline_id": "hokusai_lead_scoring_baseline/1",
                    "contributor": CONTRIBUTOR_EXAMPLE,
                    "delta_metrics": {"auroc": 0.03},
                },
            ]
        },
    )

    model_uri: str = Field(min_length=1, max_length=2048)
    model_type: str = Field(min_length=1, max_length=64)
    metadata: dict[str, Any] = Field(default_factory=dict)
    baseline_id: str | None = Field(default=None, max_length=512)
    contributor: str | None = Field(default=None, max_length=64)
    delta_metrics: dict[str, float] | None = None
    metrics: dict[str, float] | None = None


# The library's result shapes are the response schemas (one declaration, in
# hokusai.registry.results); only the envelopes around them are declared here.


class ModelsPublic(Open):
    data: list[ModelSummary]
    count: int
    next_page_token: str | None = None


class LineagePublic(Open):
    data: list[LineageEntry]
    count: int


class AliasUpdate(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": "3"}]})

    version: str = Field(pattern=r"^[0-9]{1,9}$")


KnownEventType = Literal[
    "model_registered", "model_promoted", "improvement.verified", "deltaone.accepted"
]
"""The webhook layer's ``EVENT_TYPES`` (a test holds them equal)."""
EventType = Literal[
    "model_registered", "model_promoted", "improvement.verified", "deltaone.accepted", "*"
]


class WebhookCreate(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"url": "https://marketplace.example/api/hooks", "events": ["model_registered"]}
            ]
        },
    )

    url: str = Field(min_length=1, max_length=2048)
    events: list[EventType] = Field(default=["*"], min_length=1, max_length=8)
    secret: str | None = Field(default=None, min_length=16, max_length=256)
    description: str | None = Field(default=None, max_length=500)


class WebhookPublic(Open):
    id: str
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None = None
    description: str | None = None
    source: str
    created_at: float


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="Shown once, at creation.")


class WebhooksPublic(Open):
    data: list[WebhookPublic]
    count: int


class DeliveryPublic(Open):
    delivery_id: str
    event_id: str
    event_type: str
    model_id: str | None = None
    endpoint_id: str
    state: str
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None


class DeliveriesPublic(Open):
    data: list[DeliveryPublic]
    count: int


class AttemptPublic(Open):
    attempted_at: float
    status_code: int | None = None
    latency_ms: float
    error: str | None = None
    response_snippet: str | None = None


class AttemptsPublic(Open):
    data: list[AttemptPublic]
    count: int


class TestResultPublic(Open):
    status_code: int | None = None
    latency_ms: float
    error: str | None = None
    response_snippet: str | None = None


class RedeliveryPublic(Open):
    requeued: int


class WebhookReplay(Strict):
    """Queue an endpoint's missed events of [since, until); naive times are UTC."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"since": "2026-11-22T00:00:00Z"},
                {
                    "since": "2026-11-22T00:00:00Z",
                    "until": "2026-11-23T00:00:00Z",
                    "event_types": ["model_registered"],
                },
            ]
        },
    )

    since: datetime
    until: datetime | None = None
    event_types: list[KnownEventType] | None = Field(default=None, min_length=1, max_length=8)


class ReplayPublic(Open):
    queued: int = Field(description="Deliveries queued: new ones plus failed/dead re-queued.")


HealthState = Literal["healthy", "degraded", "unhealthy"]


class ServiceDetails(Open):
    detail: str | None = Field(
        default=None,
        description="Where the service is (scheme and host) or why it fails.",
        examples=["http://mlflow:5000"],
    )


class HealthPublic(Open):
    status: HealthState = Field(
        description="unhealthy (503) when a required service is; degraded when an optional one "
        "needs attention."
    )
    version: str
    services: dict[str, HealthState] = Field(
        description="Each service's state, by the deployment's names: mlflow, postgres (or "
        "database), message_queue, redis (when configured).",
        examples=[{"mlflow": "healthy", "postgres": "healthy", "message_queue": "healthy"}],
    )
    details: dict[str, ServiceDetails] = Field(
        description="Per service: where it is, or why it fails; message_queue adds pending and "
        "dead deliveries."
    )


class VerificationCreate(Strict):
    """Ask for a verification: the candidate (an improved model) against its baseline on a
    benchmark. ``threshold_bps`` defaults to the server's ``HOKUSAI_VERIFY_THRESHOLD_BPS``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"candidate_id": "hokusai_lead_scoring_improved/3", "benchmark": "crm-holdout-v1"},
                {
                    "candidate_id": "hokusai_lead_scoring_improved/3",
                    "benchmark": "crm-holdout-v1",
                    "threshold_bps": 50,
                    "seed": 7,
                },
            ]
        },
    )

    candidate_id: str = Field(min_length=1, max_length=300)
    benchmark: str = Field(min_length=1, max_length=128)
    threshold_bps: int | None = Field(default=None, ge=0, le=10_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


VerificationState = Literal["queued", "running", "succeeded", "failed"]


class VerificationPublic(Open):
    """A verification asked for: its state, and its result once it succeeded."""

    id: str = Field(examples=["ver_3f2a9c0d41b7e65a08c1d2f4"])
    status: VerificationState = Field(
        description="queued → running → succeeded | failed (running → queued again when an "
        "attempt failed for a reason other than the input; 3 attempts in all)."
    )
    candidate_id: str
    benchmark: str
    threshold_bps: int
    seed: int
    n_boot: int
    attempts: int = Field(description="Evaluations started so far.")
    created_at: str = Field(description="ISO 8601, UTC: when it was asked for.")
    started_at: str | None = Field(description="ISO 8601, UTC: when its last attempt started.")
    finished_at: str | None = Field(description="ISO 8601, UTC: when it succeeded or failed.")
    error: ErrorDetail | None = Field(
        description="Why it failed (when failed): an input error's code (signature_mismatch, "
        "metric_mismatch, …) or verification_failed and the like."
    )
    result: VerificationResult | None = Field(
        description="The library's VerificationResult, once succeeded."
    )


class VerificationsPublic(Open):
    data: list[VerificationPublic]
    count: int


class VerifiedGainsPublic(Open):
    data: list[ModelSummary] = Field(
        description="The versions with a verification, each with its latest (`verification`)."
    )
    count: int


class BenchmarkPublic(Open):
    """A stored benchmark (benchmarks never change once added)."""

    name: str
    content_hash: str
    target: str
    metric: str
    direction: str
    guardrails: dict[str, float]
    num_rows: int
    columns: list[str]
    run_id: str
    dataset_digest: str
    created_at: str


class BenchmarksPublic(Open):
    data: list[BenchmarkPublic]
    count: int
