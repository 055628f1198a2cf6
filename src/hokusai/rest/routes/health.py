"""``/health``, ``/live``, ``/ready``, ``/metrics`` — no API key needed.

``/health`` answers in the deployment's contract with monitors::

    {"status": "healthy" | "degraded" | "unhealthy", "version": "…",
     "services": {"mlflow": "healthy", "postgres": "healthy", "message_queue": "degraded", …},
     "details": {"mlflow": {"detail": "http://mlflow:5000"}, "message_queue": {"pending": 0, …}}}

``services`` maps each service to one of the three states — a monitor compares strings
(``services.mlflow == "healthy"``) — and ``details`` holds what a person needs to know why.
Services are named as the deployment names them: ``mlflow``; ``postgres`` when the project
database is PostgreSQL, ``database`` otherwise; ``message_queue`` for the webhook outbox;
``redis`` only when a Redis rate limiter is configured (the in-process one has nothing to reach).

200 when every required service answers (optional ones may be "degraded"), 503 with
``unhealthy`` naming the failing service otherwise. ``/ready`` is the same document restricted
to the required services. Each check is bounded in time, so a hung MLflow cannot hang it.

Details are for anyone who can reach the port: stores are named by scheme and host
(``sqlite (embedded)``, ``http://mlflow:5000``), and failure texts lose their credentials and
absolute paths (:func:`hokusai.config.public_text`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from hokusai import __version__
from hokusai.config import public_location, public_text
from hokusai.rest.deps import Components, ComponentsDep
from hokusai.rest.schemas import HealthPublic

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 3.0

State = Literal["healthy", "degraded", "unhealthy"]
Probe = Callable[[Components], tuple[State, dict[str, Any]]]


def _mlflow(components: Components) -> tuple[State, dict[str, Any]]:
    components.registry.client.search_registered_models(max_results=1)
    return "healthy", {"detail": public_location(components.registry.tracking_uri)}


def _database(components: Components) -> tuple[State, dict[str, Any]]:
    with components.webhooks.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    url = components.webhooks.engine.url.render_as_string(hide_password=True)
    return "healthy", {"detail": public_location(url)}


def _message_queue(components: Components) -> tuple[State, dict[str, Any]]:
    """The webhook outbox: dead deliveries need a person (redeliver them or fix the receiver)."""
    stats = components.webhooks.outbox.stats()
    state: State = "degraded" if stats["dead"] else "healthy"
    detail = f"{stats['pending']} pending, {stats['dead']} dead, {stats['failed']} failed"
    return state, {"detail": detail, "pending": stats["pending"], "dead": stats["dead"]}


def _refuses_when_down(components: Components) -> bool:
    settings = components.settings
    return bool(settings.redis_url) and settings.rate_limit_redis_down == "refuse"


def _redis(components: Components) -> tuple[State, dict[str, Any]]:
    where = public_location(components.settings.redis_url or "")
    if components.limiter.healthy():
        return "healthy", {"detail": f"{where}: rate limits shared by every replica"}
    if _refuses_when_down(components):
        return "unhealthy", {"detail": f"{where} unreachable; refusing API requests"}
    return "degraded", {"detail": f"{where} unreachable; limiting per replica"}


@dataclass(frozen=True)
class _Service:
    name: str
    probe: Probe
    required: bool


def _services(components: Components) -> list[_Service]:
    """The services this deployment has, under the deployment's names.

    Required ones (MLflow, the database, and Redis when its outage refuses requests) make the
    answer 503 when they fail; the others make it ``degraded``.
    """
    database = "postgres" if components.webhooks.engine.dialect.name == "postgresql" else "database"
    services = [
        _Service("mlflow", _mlflow, required=True),
        _Service(database, _database, required=True),
        _Service("message_queue", _message_queue, required=False),
    ]
    if components.settings.redis_url:
        services.append(_Service("redis", _redis, required=_refuses_when_down(components)))
    return services


async def _check(service: _Service, components: Components) -> tuple[State, dict[str, Any]]:
    failed: State = "unhealthy" if service.required else "degraded"
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(service.probe, components), timeout=CHECK_TIMEOUT
        )
    except TimeoutError:
        return failed, {"detail": f"no answer within {CHECK_TIMEOUT:g}s"}
    except Exception as exc:  # noqa: BLE001 - a failing dependency is the answer, not an error
        return failed, {"detail": public_text(f"{type(exc).__name__}: {exc}")[:300]}


async def _report(components: Components, *, required_only: bool) -> tuple[int, dict[str, Any]]:
    services = [
        service for service in _services(components) if service.required or not required_only
    ]
    results = await asyncio.gather(*(_check(service, components) for service in services))
    states = {service.name: state for service, (state, _) in zip(services, results, strict=True)}
    overall: State
    if "unhealthy" in states.values():
        overall = "unhealthy"
    elif "degraded" in states.values():
        overall = "degraded"
    else:
        overall = "healthy"
    return (503 if overall == "unhealthy" else 200), {
        "status": overall,
        "version": __version__,
        "services": states,
        "details": {
            service.name: details for service, (_, details) in zip(services, results, strict=True)
        },
    }


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
async def health(components: ComponentsDep) -> JSONResponse:
    """Every service's state; 503 (``unhealthy``) when MLflow or the database is down."""
    status, body = await _report(components, required_only=False)
    return JSONResponse(body, status_code=status)


@router.get("/live")
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
async def ready(components: ComponentsDep) -> JSONResponse:
    """Ready to serve: MLflow and the database answer (and Redis, if its outage refuses).
    The same document as ``/health``, with only those services."""
    status, body = await _report(components, required_only=True)
    return JSONResponse(body, status_code=status)


@router.get("/metrics", response_class=Response)
def metrics(components: ComponentsDep) -> Response:
    """Prometheus metrics."""
    return Response(components.metrics.render(), media_type="text/plain; version=0.0.4")
