"""The prediction server (FastAPI): ``/invocations``, ``/predict``, health, metrics, reload.

``hokusai serve`` or, from the repository root, ``python -m uvicorn api.app:app --port 8000``.
Every prediction response names the model that produced it (``X-Model-*`` headers).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from hokusai import __version__, errors
from hokusai.api import handlers
from hokusai.api.keys import ApiKeyStore, scope_allows
from hokusai.api.middleware import BodyLimit
from hokusai.config import ServingSettings, Settings, bound_mlflow_client, get_settings
from hokusai.db import open_database
from hokusai.serving.inputs import parse_invocation, parse_records
from hokusai.serving.predictor import LoadedModel
from hokusai.serving.sources import SourceChain
from hokusai.serving.swap import ModelManager, describe_source

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


class ServingMetrics:
    """Prometheus metrics of one serving process."""

    def __init__(self, manager: ModelManager) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hokusai_serving_requests_total",
            "Prediction requests",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hokusai_serving_request_duration_seconds",
            "Prediction latency",
            ["route"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
        )
        self.errors = Counter(
            "hokusai_serving_errors_total",
            "Failed predictions by kind",
            ["kind"],
            registry=self.registry,
        )
        self.rows = Counter("hokusai_serving_rows_total", "Rows predicted", registry=self.registry)
        model_info = Gauge(
            "hokusai_serving_model_info",
            "The model serving (value 1)",
            ["source", "name", "version", "run_id"],
            registry=self.registry,
        )
        swaps = Gauge("hokusai_serving_swaps", "Hot swaps since start", registry=self.registry)
        failures = Gauge(
            "hokusai_serving_load_failures", "Models that failed to load", registry=self.registry
        )

        def refresh_gauges() -> None:
            model_info.clear()
            current = manager.current
            if current is not None:
                source = current.source
                model_info.labels(
                    source.kind, source.name or "", source.version or "", source.run_id or ""
                ).set(1)
            swaps.set(manager.swaps)
            failures.set(manager.load_failures)

        self._refresh_gauges = refresh_gauges

    def render(self) -> bytes:
        self._refresh_gauges()
        return generate_latest(self.registry)


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
    metrics = ServingMetrics(manager)

    @functools.cache
    def admin_keys() -> ApiKeyStore:
        """The project's API keys, opened once on first use (not on every reload)."""
        return ApiKeyStore(open_database(settings.resolved_database_url))

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
    handlers.install(app)
    app.add_middleware(BodyLimit, limit=serving.max_body_bytes)

    def serving_model() -> LoadedModel:
        model = manager.current
        if model is None:
            raise errors.ModelNotLoadedError(
                "No model is loaded: "
                + "; ".join(f"{s.source}: {s.reason}" for s in manager.skipped)
            )
        return model

    async def predict(request: Request, route: str, parse: Any) -> Response:
        started = time.perf_counter()
        status = 200
        try:
            model = serving_model()
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError as exc:
                raise errors.InvalidJsonError(f"The body is not valid JSON: {exc}") from exc
            matrix = parse(body, model.columns, max_rows=serving.max_batch_rows)
            assert model.batcher is not None
            try:
                predictions = await model.batcher.submit(matrix)
            except Exception as exc:
                metrics.errors.labels("model").inc()
                raise errors.HokusaiError(
                    f"The model failed to predict: {type(exc).__name__}: {exc}"
                ) from exc
            metrics.rows.inc(len(matrix))
            return Response(
                orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY),
                media_type="application/json",
                headers=_model_headers(model),
            )
        except errors.HokusaiError as exc:
            status = errors.http_status_for(exc)
            if status < 500:
                metrics.errors.labels(exc.code).inc()
            raise
        except Exception:
            status = 500
            metrics.errors.labels("internal").inc()
            raise
        finally:
            metrics.requests.labels(route, str(status)).inc()
            metrics.latency.labels(route).observe(time.perf_counter() - started)

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        """MLflow scoring formats: dataframe_split, dataframe_records, instances, inputs."""
        return await predict(request, "/invocations", parse_invocation)

    @app.post("/predict")
    async def predict_records(request: Request) -> Response:
        """``{"records": [{column: value}, …]}`` or a bare list of records."""
        return await predict(request, "/predict", parse_records)

    @app.get("/health")
    async def health() -> JSONResponse:
        """The model serving, where it came from, and every source skipped with its reason."""
        model = manager.current
        body = {
            "status": "ok" if model is not None else "down",
            "version": __version__,
            "model": model.describe() if model is not None else None,
            "skipped": [s.as_dict() for s in manager.skipped],
            "last_refresh": manager.last_refresh.as_dict() if manager.last_refresh else None,
            "last_error": manager.last_error,
            "swaps": manager.swaps,
            "refresh_seconds": serving.model_refresh_seconds,
        }
        return JSONResponse(body, status_code=200 if model is not None else 503)

    @app.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        model = manager.current
        return JSONResponse(
            {
                "status": "ok" if model else "down",
                "model": describe_source(model.source) if model else None,
            },
            status_code=200 if model else 503,
        )

    @app.get("/model")
    async def model_info() -> dict[str, Any]:
        return serving_model().describe()

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/admin/reload")
    async def reload(request: Request) -> dict[str, Any]:
        """Resolve the sources again now; swap if the winner changed (admin key if configured)."""
        _check_admin(request, admin_keys())
        outcome = await asyncio.to_thread(manager.refresh, force=True)
        return outcome.as_dict()

    return app


def _model_headers(model: LoadedModel) -> dict[str, str]:
    source = model.source
    headers = {"X-Model-Source": source.kind, "X-Model-Name": source.name or ""}
    if source.version:
        headers["X-Model-Version"] = source.version
    if source.run_id:
        headers["X-Model-Run-Id"] = source.run_id
    return headers


def _check_admin(request: Request, store: ApiKeyStore) -> None:
    """When the project database has API keys, reload needs an admin one."""
    if not store.count_active():
        return
    kind, _, token = request.headers.get("authorization", "").partition(" ")
    if not token:
        raise errors.UnauthenticatedError("Missing API key: send 'Authorization: Bearer <key>'.")
    key = store.authenticate(token.strip()) if kind.lower() == "bearer" else None
    if key is None:
        raise errors.InvalidApiKeyError("Invalid, unknown or revoked API key.")
    if not scope_allows(key.scope, "admin"):
        raise errors.ForbiddenError("Reloading the model needs an admin API key.")
