from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any


def fake_result(n: int, *, name: str = "hokusai_lead_scoring_baseline") -> dict[str, Any]:
    """A registration result as the library returns it (for outbox-level tests)."""
    return {
        "model_id": f"{name}/{n}",
        "model_name": name,
        "version": str(n),
        "run_id": f"run{n:028d}",
        "model_uuid": f"m-{n:032x}",
        "model_uri": f"models:/m-{n:032x}",
        "signature": None,
        "metadata": {"n": n},
        "model_type": "lead_scoring",
        "is_baseline": True,
        "registration_timestamp": "2026-11-22T00:00:00+00:00",
    }


def drive(dispatcher: Any, until: Callable[[], bool], timeout: float = 10.0) -> None:
    """Run the dispatcher until ``until()`` holds (polling, never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if until():
            return
        if not dispatcher.run_once():
            time.sleep(0.01)
    raise AssertionError("condition not met before the timeout")


CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 test vector


def verification_result(
    *,
    accepted: bool = True,
    candidate_id: str = "hokusai_lead_scoring_improved/3",
    baseline_id: str = "hokusai_lead_scoring_baseline/1",
    seed: int = 0,
    contributor: str | None = CONTRIBUTOR,
) -> dict[str, Any]:
    """A verification result as ``verify_improvement`` returns it (for payload and outbox
    tests until the engine's end-to-end test lands), its hashes derived as the verification
    method says: the canonical JSON of the inputs → ``attestation_hash``; the candidate's
    ``model_id`` → ``model_id_uint``; both → ``idempotency_key`` → ``verification_id``.

    Accepted: accuracy 0.8714 → 0.8891 on 20,000 rows (+177 bps, interval above zero) with a
    ROC AUC guardrail that holds. Rejected: +42 bps, below the 100 bps threshold, interval
    across zero, and the guardrail broken.
    """
    benchmark = {
        "name": "leads-2026q4",
        "content_hash": "0x" + hashlib.sha256(b"leads-2026q4 rows").hexdigest(),
        "num_rows": 20_000,
        "target": "converted",
        "metric": "accuracy",
        "direction": "higher",
    }
    guardrails_spec = {"roc_auc": 0.005}
    candidate_uuid = "m-" + hashlib.md5(candidate_id.encode()).hexdigest()
    baseline_uuid = "m-" + hashlib.md5(baseline_id.encode()).hexdigest()
    inputs = {
        "method": "hokusai.verify/v1",
        "candidate": {"model_id": candidate_id, "model_uuid": candidate_uuid},
        "baseline": {"model_id": baseline_id, "model_uuid": baseline_uuid},
        "benchmark": {**benchmark, "guardrails": guardrails_spec},
        "threshold_bps": 100,
        "seed": seed,
        "n_boot": 2000,
        "alpha": 0.05,
    }
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    attestation = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    model_id_uint = str(int.from_bytes(hashlib.sha256(candidate_id.encode()).digest(), "big"))
    key = hashlib.sha256(f"{model_id_uint}:{attestation}".encode()).hexdigest()
    if accepted:
        candidate_score, delta, ci = 0.8891, 0.0177, (0.0121, 0.0232)
        auc_candidate, auc_delta = 0.9312, 0.0021
    else:
        candidate_score, delta, ci = 0.87560, 0.0042, (-0.0013, 0.0098)
        auc_candidate, auc_delta = 0.9201, -0.009
    primary = {
        "metric": "accuracy",
        "direction": "higher",
        "baseline_score": 0.8714,
        "candidate_score": candidate_score,
        "delta": delta,
        "ci_low": ci[0],
        "ci_high": ci[1],
        "ci_method": "paired_bootstrap",
        "p_value": 1.3e-09 if accepted else 0.1372,
        "baseline_score_bps": 8714,
        "candidate_score_bps": round(candidate_score * 10_000),
        "delta_bps": round(candidate_score * 10_000) - 8714,
        "improvement_bps": round(delta * 10_000),
    }
    guardrail = {
        "metric": "roc_auc",
        "direction": "higher",
        "baseline_score": 0.9291,
        "candidate_score": auc_candidate,
        "delta": auc_delta,
        "ci_low": round(auc_delta - 0.004, 6),
        "ci_high": round(auc_delta + 0.004, 6),
        "ci_method": "delong",
        "p_value": None,
        "baseline_score_bps": 9291,
        "candidate_score_bps": round(auc_candidate * 10_000),
        "delta_bps": round(auc_candidate * 10_000) - 9291,
        "improvement_bps": round(auc_delta * 10_000),
        "tolerance": 0.005,
        "passed": accepted,
    }
    reasons = (
        []
        if accepted
        else ["below_threshold", "interval_includes_zero", "guardrail_failed:roc_auc"]
    )
    return {
        "verification_id": "ver_" + key[:24],
        "candidate_id": candidate_id,
        "baseline_id": baseline_id,
        "candidate_model_uuid": candidate_uuid,
        "baseline_model_uuid": baseline_uuid,
        "contributor": contributor,
        "benchmark": benchmark,
        "primary": primary,
        "guardrails": [guardrail],
        "threshold_bps": 100,
        "accepted": accepted,
        "reasons": reasons,
        "claimed_delta": 0.02,
        "claimed_delta_metrics": {"accuracy": 0.02},
        "claim_status": "reproduced" if accepted else "not_reproduced",  # 0.02 > ci_high
        "n_rows": 20_000,
        "n_boot": 2000,
        "seed": seed,
        "alpha": 0.05,
        "mlflow_run_id": hashlib.md5(key.encode()).hexdigest(),
        "attestation_hash": "0x" + attestation,
        "idempotency_key": "0x" + key,
        "model_id_uint": model_id_uint,
        "verified_at": "2026-12-01T09:30:00.123456+00:00",
        "event_ids": [],
        "reused": False,
    }
