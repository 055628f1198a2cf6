"""The prediction server (FastAPI), assembled: source chain, model manager, metrics, routes.

``hokusai serve`` or, from the repository root, ``python -m uvicorn api.app:app --port 8000``.
The routes live in :mod:`hokusai.serving.routes`.
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

from hokusai import __version__
from hokusai.auth import ApiKeyStore
from hokusai.config import ServingSettings, Settings, bound_mlflow_client, get_settings
from hokusai.db import open_database
from hokusai.http import errors as http_errors
from hokusai.http.limits import BodyLimit
from hokusai.http.logs import install_access_log_redaction
from hokusai.serving.metrics import ServingMetrics
from hokusai.serving.routes import ServingParts, admin_router, router
from hokusai.serving.sources import SourceChain
from hokusai.serving.swap import ModelManager

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


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
    )
    manager = ModelManager(
        chain, tracking_uri=tracking_uri, batch_wait=serving.batch_wait_ms / 1000
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        outcome = await asyncio.to_thread(manager.refresh)
        logger.info("start-up model resolution: %s", outcome.as_dict())
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

    app = FastAPI(title="Hokusai prediction server", version=__version__, lifespan=lifespan)
    app.state.manager = manager
    app.state.serving = serving
    http_errors.install(app)
    app.add_middleware(BodyLimit, limit=serving.max_body_bytes)
    app.add_middleware(http_errors.CatchAll)
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
    if serving.admin_reload:
        app.include_router(admin_router)
    install_access_log_redaction()
    return app
