"""``/api/v1/verifications``: ask for a verification, then poll it; ``/api/v1/benchmarks``.

A verification is evaluated asynchronously: ``POST`` plans it at once (every input checked, a
bad one is a 4xx and nothing is recorded; not free — the benchmark's rows are fetched and both
models loaded, then released — but no row is scored), queues a job and answers ``202`` with the
job's ``Location``; a runner (a thread of an API process, or ``hokusai verifications worker``)
evaluates it, and ``GET`` on the location answers its state and, once succeeded, the library's
result. The job's id is the verification's id, derived from its inputs: asking again for the
same verification answers the same job.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Query, Response, status

from hokusai.errors import VerificationNotFoundError
from hokusai.jobs import VerificationJob
from hokusai.registry.benchmarks import Benchmark
from hokusai.registry.results import VerificationResult
from hokusai.registry.validation import parse_model_id
from hokusai.rest.deps import Components, ComponentsDep, ReadKey, WriteKey
from hokusai.rest.routes.models import ERRORS
from hokusai.rest.schemas import (
    BenchmarkPublic,
    BenchmarksPublic,
    VerificationCreate,
    VerificationPublic,
    VerificationsPublic,
)

router = APIRouter(prefix="/verifications", tags=["verifications"])
benchmarks_router = APIRouter(prefix="/benchmarks", tags=["benchmarks"])

PATH = "/api/v1/verifications"
_ID = re.compile(r"ver_[0-9a-f]{24}")
_LOCATION = {
    "description": "Where to poll the verification: /api/v1/verifications/{id}.",
    "schema": {"type": "string"},
}


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")


def _resource(job: VerificationJob, result: VerificationResult | None) -> dict[str, Any]:
    error = None
    if job.status == "failed" and job.error_code is not None:
        error = {"code": job.error_code, "message": job.error_message or ""}
    return {
        "id": job.id,
        "status": job.status,
        "candidate_id": job.candidate_id,
        "benchmark": job.benchmark,
        "threshold_bps": job.threshold_bps,
        "seed": job.seed,
        "n_boot": job.n_boot,
        "attempts": job.attempts,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "error": error,
        "result": result if job.status == "succeeded" else None,
    }


def _recorded(result: VerificationResult) -> dict[str, Any]:
    """A verification the library recorded without a job (``hokusai verify``, the library):
    succeeded, at the time it was verified."""
    return {
        "id": result["verification_id"],
        "status": "succeeded",
        "candidate_id": result["candidate_id"],
        "benchmark": result["benchmark"]["name"],
        "threshold_bps": result["threshold_bps"],
        "seed": result["seed"],
        "n_boot": result["n_boot"],
        "attempts": 0,
        "created_at": result["verified_at"],
        "started_at": result["verified_at"],
        "finished_at": result["verified_at"],
        "error": None,
        "result": result,
    }


def _result_of(components: Components, job: VerificationJob) -> VerificationResult | None:
    if job.status != "succeeded":
        return None
    try:
        return components.registry.get_verification(job.id)
    except VerificationNotFoundError:  # its run was deleted from MLflow since
        return None


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=VerificationPublic,
    responses={
        **ERRORS,
        200: {
            "model": VerificationPublic,
            "description": "Already asked for (queued, running or succeeded): its state now.",
            "headers": {"Location": _LOCATION},
        },
        202: {"description": "Queued; poll the Location.", "headers": {"Location": _LOCATION}},
    },
)
def create_verification(
    body: VerificationCreate, response: Response, components: ComponentsDep, key: WriteKey
) -> dict[str, Any]:
    """Plan a verification (a bad input is a 4xx, nothing recorded) and queue it: 202 with
    ``Location``. The same inputs again answer the same verification: 200 with its state, or
    202 again when it had failed (it is queued anew)."""
    plan = components.registry.plan_verification(
        body.candidate_id, body.benchmark, threshold_bps=body.threshold_bps, seed=body.seed
    )
    try:
        enqueued = components.verifications.enqueue(plan, requested_by=key.id)
    finally:
        plan.release()  # a runner plans again; the request keeps no models or temp files
    response.status_code = status.HTTP_202_ACCEPTED if enqueued.queued else status.HTTP_200_OK
    response.headers["Location"] = f"{PATH}/{enqueued.job.id}"
    return _resource(enqueued.job, _result_of(components, enqueued.job))


@router.get("", response_model=VerificationsPublic, responses=ERRORS)
def list_verifications(
    components: ComponentsDep,
    _key: ReadKey,
    candidate_id: str | None = Query(default=None, max_length=300),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """Verifications, newest first: those asked for here (in any state) and those the library
    recorded otherwise (``hokusai verify``), of one candidate when given."""
    if candidate_id is not None:
        parse_model_id(candidate_id)  # a malformed id is a 422, not an empty list
    jobs = components.verifications.list(candidate_id=candidate_id, limit=limit)
    recorded = {
        result["verification_id"]: result
        for result in components.registry.list_verifications(candidate_id)
    }
    data = [_resource(job, recorded.get(job.id)) for job in jobs]
    asked = {job.id for job in jobs}
    data += [_recorded(r) for vid, r in recorded.items() if vid not in asked]
    data.sort(key=lambda item: item["created_at"] or "", reverse=True)
    return {"data": data[:limit], "count": len(data[:limit])}


@router.get("/{verification_id}", response_model=VerificationPublic, responses=ERRORS)
def get_verification(
    verification_id: str, components: ComponentsDep, _key: ReadKey
) -> dict[str, Any]:
    """One verification's state, and its result once succeeded (poll this after the POST)."""
    if _ID.fullmatch(verification_id) is None:
        raise VerificationNotFoundError(
            f"No verification {verification_id!r} (ids are ver_ and 24 hex digits)."
        )
    job = components.verifications.find(verification_id)
    if job is not None:
        return _resource(job, _result_of(components, job))
    return _recorded(components.registry.get_verification(verification_id))


_PRIVATE_BENCHMARK_FIELDS = ("artifact_uri",)


def _public_benchmark(benchmark: Benchmark) -> dict[str, Any]:
    """A benchmark as read keys see it: not where its rows are stored (``artifact_uri`` can be
    a path on the server's disk; the library and CLI show it)."""
    data = benchmark.to_dict()
    for name in _PRIVATE_BENCHMARK_FIELDS:
        data.pop(name, None)
    return data


@benchmarks_router.get("", response_model=BenchmarksPublic, responses=ERRORS)
def list_benchmarks(components: ComponentsDep, _key: ReadKey) -> dict[str, Any]:
    """Every benchmark, by name."""
    data = [_public_benchmark(benchmark) for benchmark in components.benchmarks.list()]
    return {"data": data, "count": len(data)}


@benchmarks_router.get("/{name}", response_model=BenchmarkPublic, responses=ERRORS)
def get_benchmark(name: str, components: ComponentsDep, _key: ReadKey) -> dict[str, Any]:
    """One benchmark (404 ``benchmark_not_found``)."""
    return _public_benchmark(components.benchmarks.get(name))
