"""``/health``, ``/live``, ``/ready``, ``/metrics`` — no API key needed.

``/health`` is ``{"status", "version", "services": {"mlflow", "database", "webhooks", …}}`` (a
contract with monitors):
200 when every required service answers (optional ones may be "degraded"), 503 naming the
failing service otherwise. Each check is bounded in time, so a hung MLflow cannot hang it.

Details are for anyone who can reach the port: stores are named by scheme and host
(``sqlite (embedded)``, ``http://mlflow:5000``), and failure texts lose their credentials and
absolute paths (:func:`hokusai.config.public_text`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from hokusai import __version__
from hokusai.config import public_location, public_text
from hokusai.rest.deps import Components, ComponentsDep
from hokusai.rest.schemas import HealthPublic

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 3.0
REQUIRED = ("mlflow", "database")


def _mlflow(components: Components) -> dict[str, Any]:
    components.registry.client.search_registered_models(max_results=1)
    return {"status": "ok", "detail": public_location(components.registry.tracking_uri)}


def _database(components: Components) -> dict[str, Any]:
    with components.webhooks.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    url = components.webhooks.engine.url.render_as_string(hide_password=True)
    return {"status": "ok", "detail": public_location(url)}


def _webhooks(components: Components) -> dict[str, Any]:
    stats = components.webhooks.outbox.stats()
    state = "degraded" if stats["dead"] else "ok"
    detail = f"{stats['pending']} pending, {stats['dead']} dead, {stats['failed']} failed"
    return {"status": state, "detail": detail, "pending": stats["pending"], "dead": stats["dead"]}


def _refuses_when_down(components: Components) -> bool:
    settings = components.settings
    return bool(settings.redis_url) and settings.rate_limit_redis_down == "refuse"


def _rate_limiter(components: Components) -> dict[str, Any]:
    healthy = components.limiter.healthy()
    kind = "redis" if components.settings.redis_url else "memory"
    if healthy:
        return {"status": "ok", "detail": kind}
    if _refuses_when_down(components):
        return {"status": "down", "detail": f"{kind} unreachable; refusing API requests"}
    return {"status": "degraded", "detail": f"{kind} unreachable; limiting per replica"}


_CHECKS = {
    "mlflow": _mlflow,
    "database": _database,
    "webhooks": _webhooks,
    "rate_limiter": _rate_limiter,
}


def _required(components: Components) -> tuple[str, ...]:
    """MLflow and the database; and the rate limiter when its outage refuses requests."""
    return (*REQUIRED, "rate_limiter") if _refuses_when_down(components) else REQUIRED


async def _check(name: str, components: Components) -> dict[str, Any]:
    down = "down" if name in _required(components) else "degraded"
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(_CHECKS[name], components), timeout=CHECK_TIMEOUT
        )
    except TimeoutError:
        return {"status": down, "detail": f"no answer within {CHECK_TIMEOUT:g}s"}
    except Exception as exc:  # noqa: BLE001 - a failing dependency is the answer, not an error
        return {"status": down, "detail": public_text(f"{type(exc).__name__}: {exc}")[:300]}


async def _report(components: Components, names: tuple[str, ...]) -> tuple[int, dict[str, Any]]:
    results = await asyncio.gather(*(_check(name, components) for name in names))
    report = dict(zip(names, results, strict=True))
    if any(report[name]["status"] == "down" for name in _required(components) if name in report):
        overall = "down"
    elif any(result["status"] != "ok" for result in results):
        overall = "degraded"
    else:
        overall = "ok"
    return (503 if overall == "down" else 200), {
        "status": overall,
        "version": __version__,
        "services": report,
    }


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
async def health(components: ComponentsDep) -> JSONResponse:
    """Every service's state; 503 when MLflow or the database is down."""
    status, body = await _report(components, tuple(_CHECKS))
    return JSONResponse(body, status_code=status)


@router.get("/live")
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
async def ready(components: ComponentsDep) -> JSONResponse:
    """Ready to serve: MLflow and the database answer (and Redis, if its outage refuses)."""
    status, body = await _report(components, _required(components))
    return JSONResponse(body, status_code=status)


@router.get("/metrics", response_class=Response)
def metrics(components: ComponentsDep) -> Response:
    """Prometheus metrics."""
    return Response(components.metrics.render(), media_type="text/plain; version=0.0.4")
