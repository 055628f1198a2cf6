"""``create_app``: the registry REST service.

``uvicorn --factory hokusai.api.app:create_app`` or ``hokusai server``. Routes live in
``routes/<resource>.py`` and stay thin; the library does the work; every error goes through
the one handler in ``handlers.py``.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI

from hokusai import __version__
from hokusai.api import handlers
from hokusai.api.deps import Services
from hokusai.api.keys import ApiKeyStore
from hokusai.api.metrics import ApiMetrics
from hokusai.api.middleware import BodyLimit, RequestMetrics
from hokusai.api.ratelimit import RateLimiter, build_rate_limiter
from hokusai.api.routes import contributors, health, models, webhooks
from hokusai.config import Settings, bound_mlflow_client, get_settings

if TYPE_CHECKING:
    from hokusai.registry.service import HokusaiModelRegistry
    from hokusai.webhooks.service import Webhooks

logger = logging.getLogger(__name__)

DESCRIPTION = """
The Hokusai model registry over HTTP: register already-logged MLflow models as baselines or
improvements credited to a data contributor, look them up by MLflow model uuid, trace lineage,
promote and roll back with aliases, and manage the webhooks that announce every version.

Authenticate with `Authorization: Bearer <key>` (`hokusai keys create`). Scopes: `read`,
`write` (register, aliases), `admin` (webhooks). Errors are `{"error": {"code", "message"}}`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    registry: HokusaiModelRegistry | None = None,
    webhooks_layer: Webhooks | None = None,
    limiter: RateLimiter | None = None,
    deliver_webhooks: bool | None = None,
) -> FastAPI:
    """Build the app. Collaborators are built from ``settings`` unless given.

    ``deliver_webhooks`` (default: ``settings.webhook_background``) runs a webhook worker
    thread in the API process, so the embedded server needs no separate worker.
    """
    settings = settings or get_settings()
    bound_mlflow_client()
    from hokusai.registry.service import HokusaiModelRegistry
    from hokusai.webhooks.service import Webhooks

    webhooks_layer = webhooks_layer or Webhooks(settings)
    registry = registry or HokusaiModelRegistry(settings=settings, webhooks=webhooks_layer)
    metrics = ApiMetrics(webhooks_layer.outbox.stats)
    services = Services(
        settings=settings,
        registry=registry,
        webhooks=webhooks_layer,
        keys=ApiKeyStore(webhooks_layer.engine),
        limiter=limiter or build_rate_limiter(settings),
        metrics=metrics,
    )
    deliver = settings.webhook_background if deliver_webhooks is None else deliver_webhooks

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Start-up objects (MLflow, SQLAlchemy, pandas…) live as long as the process: freeze
        # them so full collections do not walk them (100+ ms pauses at the tail otherwise).
        gc.collect()
        gc.freeze()
        stop = threading.Event()
        worker = None
        if deliver:
            dispatcher = webhooks_layer.dispatcher(
                owner_kind="api", reconcile=registry.reconcile_webhook_events
            )
            worker = threading.Thread(
                target=dispatcher.run,
                args=(stop,),
                kwargs={"poll_seconds": settings.webhook_poll_seconds},
                name="hokusai-api-webhooks",
                daemon=True,
            )
            worker.start()
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                worker.join(timeout=settings.webhook_timeout_seconds + 1)
            close = getattr(services.limiter, "close", None)
            if callable(close):
                close()

    app = FastAPI(
        title="Hokusai Model Registry",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.services = services
    handlers.install(app)
    api = APIRouter(prefix="/api/v1")
    api.include_router(models.router)
    api.include_router(contributors.router)
    api.include_router(webhooks.router)
    app.include_router(api)
    app.include_router(health.router)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)
    return app
