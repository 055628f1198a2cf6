"""``create_app``: the registry REST service.

``uvicorn --factory hokusai.rest.app:create_app`` or ``hokusai server``. Routes live in
``routes/<resource>.py`` and stay thin; the library does the work; every error goes through
the one error handler in ``hokusai.http.errors``.
"""

from __future__ import annotations

import functools
import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI

from hokusai import __version__
from hokusai.auth import ApiKeyStore
from hokusai.config import Settings, bound_mlflow_client, get_settings
from hokusai.http import errors as http_errors
from hokusai.http.limits import BodyLimit
from hokusai.http.logs import install_access_log_redaction
from hokusai.http.metrics import forget_this_process
from hokusai.jobs import VerificationJobs, VerificationRunner
from hokusai.jobs.runner import owner_name
from hokusai.rest.deps import Components
from hokusai.rest.metrics import ApiMetrics
from hokusai.rest.middleware import Authenticate, RequestMetrics
from hokusai.rest.ratelimit import RateLimiter, build_rate_limiter
from hokusai.rest.routes import contributors, health, models, verifications, webhooks

if TYPE_CHECKING:
    from hokusai.registry import ModelRegistry
    from hokusai.webhooks import Webhooks

logger = logging.getLogger(__name__)

DESCRIPTION = """
The Hokusai model registry over HTTP: register already-logged MLflow models as baselines or
improvements credited to a data contributor, look them up by MLflow model uuid, trace lineage,
promote and roll back with aliases, and manage the webhooks that announce every version.

Verify a candidate's gain over its baseline on a benchmark: `POST /api/v1/verifications`
answers 202 with a `Location` to poll; the evaluation runs in the background.

Authenticate with `Authorization: Bearer <key>` (`hokusai keys create`). Scopes: `read`,
`write` (register, aliases, verifications), `admin` (webhooks). Errors are
`{"error": {"code", "message"}}`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    registry: ModelRegistry | None = None,
    webhooks_layer: Webhooks | None = None,
    limiter: RateLimiter | None = None,
    deliver_webhooks: bool | None = None,
    run_verifications: bool | None = None,
) -> FastAPI:
    """Build the app. Collaborators are built from ``settings`` unless given.

    ``deliver_webhooks`` (default: ``settings.webhook_background``) runs a webhook worker
    thread in the API process, so the embedded server needs no separate worker.
    ``run_verifications`` (default: ``settings.verify_background``) runs a verification runner
    thread: the verifications asked for over the API are evaluated by the API processes unless
    separate ``hokusai verifications worker`` processes do it.
    """
    settings = settings or get_settings()
    bound_mlflow_client()
    from hokusai.registry import ModelRegistry
    from hokusai.registry.benchmarks import BenchmarkStore
    from hokusai.webhooks import Webhooks

    # The REST service assembles its own application: the registry announces through the
    # same webhook layer the routes manage.
    webhooks_layer = webhooks_layer or Webhooks(settings)
    registry = registry or ModelRegistry(settings=settings, announcer=webhooks_layer)
    verification_jobs = VerificationJobs(webhooks_layer.engine)
    metrics = ApiMetrics(webhooks_layer.outbox.stats, verification_jobs.counts)
    components = Components(
        settings=settings,
        registry=registry,
        webhooks=webhooks_layer,
        keys=ApiKeyStore(webhooks_layer.engine),
        limiter=limiter or build_rate_limiter(settings),
        metrics=metrics,
        verifications=verification_jobs,
        benchmarks=BenchmarkStore(settings, client=registry.client),
    )
    deliver = settings.webhook_background if deliver_webhooks is None else deliver_webhooks
    evaluate = settings.verify_background if run_verifications is None else run_verifications

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Start-up objects (MLflow, SQLAlchemy, pandas…) live as long as the process: freeze
        # them so full collections do not walk them (100+ ms pauses at the tail otherwise).
        gc.collect()
        gc.freeze()
        stop = threading.Event()
        worker = None
        index = registry.index
        keeper = None
        if index is not None:
            keeper = threading.Thread(
                target=index.keep, args=(stop,), name="hokusai-registry-index", daemon=True
            )
            keeper.start()
        if deliver:
            dispatcher = webhooks_layer.dispatcher(
                owner_kind="api",
                reconcile=functools.partial(webhooks_layer.reconcile, registry.queries),
            )
            worker = threading.Thread(
                target=dispatcher.run,
                args=(stop,),
                kwargs={"poll_seconds": settings.webhook_poll_seconds},
                name="hokusai-api-webhooks",
                daemon=True,
            )
            worker.start()
        runner = None
        if evaluate:
            # A verification in evaluation is not waited for at shutdown: its lease runs out
            # and another runner takes the job over.
            runner = threading.Thread(
                target=VerificationRunner(
                    components.verifications,
                    registry,
                    lease_seconds=settings.verify_lease_seconds,
                    retry_delay=settings.verify_retry_seconds,
                    owner=owner_name("api"),
                ).run,
                args=(stop,),
                kwargs={"poll_seconds": settings.verify_poll_seconds},
                name="hokusai-api-verifications",
                daemon=True,
            )
            runner.start()
        try:
            yield
        finally:
            stop.set()
            components.verifications.wake.set()
            if worker is not None:
                worker.join(timeout=settings.webhook_timeout_seconds + 1)
            if runner is not None:
                runner.join(timeout=1)
            if keeper is not None:
                keeper.join(timeout=5)
            close = getattr(components.limiter, "close", None)
            if callable(close):
                close()
            forget_this_process()

    app = FastAPI(
        title="Hokusai Model Registry",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.components = components
    http_errors.install(app)
    api = APIRouter(prefix="/api/v1")
    api.include_router(models.router)
    api.include_router(contributors.router)
    api.include_router(webhooks.router)
    api.include_router(verifications.router)
    api.include_router(verifications.benchmarks_router)
    app.include_router(api)
    app.include_router(health.router)
    # The web console: its own pages, sessions and error pages; the Bearer-key middleware
    # below covers /api/ only.
    from hokusai.rest.ui import create_console

    app.mount("/ui", create_console(components))
    # Outermost last: the catch-all, the body limit, the metrics, then the key check — all
    # before any route reads a body.
    app.add_middleware(Authenticate, components=components)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)
    app.add_middleware(http_errors.CatchAll)
    install_access_log_redaction()
    return app
