"""The prediction server (FastAPI), assembled: source chain, model manager, metrics, routes —
its own (:mod:`~hokusai.serving.routes`), MLflow's scoring protocol
(:mod:`~hokusai.serving.scoring`) and the Open Inference Protocol (:mod:`~hokusai.serving.v2`).

``hokusai serve`` or, from the repository root, ``python -m uvicorn api.app:app --port 8000``.

With ``HOKUSAI_SERVING_STRICT`` the server refuses to start unless the first source of the chain
loads: the lifespan start-up fails with one log line (:class:`StartupRefused`) and uvicorn exits
non-zero.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hokusai import __version__
from hokusai.auth import ApiKeyStore
from hokusai.config import (
    ServingSettings,
    Settings,
    bound_mlflow_client,
    get_settings,
    mask_secrets,
)
from hokusai.db import open_database
from hokusai.http import errors as http_errors
from hokusai.http.limits import BodyLimit
from hokusai.http.logs import install_access_log_redaction
from hokusai.http.metrics import forget_this_process
from hokusai.serving import scoring, v2
from hokusai.serving.metrics import ServingMetrics
from hokusai.serving.routes import ServingParts, admin_router, router
from hokusai.serving.shapes import ProtocolErrorShapes
from hokusai.serving.sources import SourceChain
from hokusai.serving.swap import ModelManager

__all__ = ["StartupRefused", "create_app"]

logger = logging.getLogger(__name__)


class StartupRefused(Exception):  # noqa: N818 - a refusal to start, reported as one line
    """Strict mode: the first source did not load at start-up; the message is the log line."""


def create_app(
    serving: ServingSettings | None = None,
    settings: Settings | None = None,
    *,
    client: Any = None,
) -> FastAPI:
    """Build the prediction server; the model loads at start-up (bounded in time)."""
    serving = serving or ServingSettings()
    settings = settings or get_settings()
    project = serving.project()
    tracking_uri = project.tracking_uri or settings.resolved_tracking_uri
    bound_mlflow_client(max_retries=0, timeout_seconds=max(1, int(serving.mlflow_timeout_seconds)))
    if client is None:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    chain = SourceChain(
        client=client,
        variant=serving.model_variant,
        run_id=serving.model_run_id,
        run_name=serving.model_run_name,
        experiment_name=project.experiment_name,
        fallback_path=project.fallback_model_path,
        timeout=serving.mlflow_timeout_seconds,
        strict=serving.strict_sources,
    )
    manager = ModelManager(
        chain, tracking_uri=tracking_uri, batch_wait=serving.batch_wait_ms / 1000
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        outcome = await asyncio.to_thread(manager.refresh, trigger="start-up")
        logger.debug("start-up model resolution: %s", outcome.as_dict())
        if chain.strict and manager.current is None:
            first = chain.first
            reason = next((s.reason for s in outcome.skipped if s.source == first), "not loaded")
            refusal = mask_secrets(
                f"HOKUSAI_SERVING_STRICT is set and {chain.describe(first)} did not load "
                f"({reason}); refusing to start"
            )
            app.state.startup_refused = refusal
            raise StartupRefused(refusal)
        # Everything imported and loaded so far lives for the whole process: move it out of the
        # collector's reach, or each full collection walks MLflow's and pandas' object graphs
        # (~100-200 ms pauses, which are the p99 of a busy server).
        gc.collect()
        gc.freeze()
        stop = threading.Event()
        refresher = None
        if serving.model_refresh_seconds > 0:
            refresher = threading.Thread(
                target=manager.run,
                args=(stop,),
                kwargs={"every": serving.model_refresh_seconds},
                name="hokusai-model-refresh",
                daemon=True,
            )
            refresher.start()
        try:
            yield
        finally:
            stop.set()
            forget_this_process()

    app = FastAPI(title="Hokusai prediction server", version=__version__, lifespan=lifespan)
    app.state.manager = manager
    app.state.serving = serving
    http_errors.install(app)
    app.add_middleware(BodyLimit, limit=serving.max_body_bytes)
    app.add_middleware(http_errors.CatchAll)
    app.add_middleware(ProtocolErrorShapes)
    app.add_middleware(_OneLineStartupFailure)
    app.state.serving_parts = ServingParts(
        serving=serving,
        manager=manager,
        metrics=ServingMetrics(manager),
        admin_keys=functools.cache(
            lambda: ApiKeyStore(
                open_database(
                    settings.resolved_database_url, migrate=settings.database_auto_migrate
                )
            )
        ),
    )
    app.include_router(router)
    app.include_router(scoring.router)
    app.include_router(v2.router)
    if serving.admin_reload:
        app.include_router(admin_router)
    install_access_log_redaction()
    _show_server_logs()
    return app


class _OneLineStartupFailure:
    """Starlette reports a failed lifespan start-up with the whole traceback as its message,
    which uvicorn logs; a :class:`StartupRefused` is reported as its own one line instead."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_refusal(message: Message) -> None:
            refused = getattr(scope["app"].state, "startup_refused", None)
            if message["type"] == "lifespan.startup.failed" and refused:
                message = {**message, "message": refused}
            await send(message)

        await self.app(scope, receive, send_refusal)


def _show_server_logs() -> None:
    """uvicorn configures its own loggers only: the server's warnings (skipped sources) would
    reach Python's last-resort handler as bare text and its start-up lines nowhere. When
    nothing configured logging, show ``hokusai`` records at INFO on stderr, as uvicorn does."""
    hokusai_logger = logging.getLogger("hokusai")
    if hokusai_logger.handlers or logging.getLogger().handlers:
        return
    from uvicorn.logging import DefaultFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(name)s: %(message)s"))
    hokusai_logger.addHandler(handler)
    if hokusai_logger.level == logging.NOTSET:
        hokusai_logger.setLevel(logging.INFO)
