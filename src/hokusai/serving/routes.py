"""The prediction server's own routes (``/predict``, health, metrics, the admin reload) and the
prediction path every protocol shares (:func:`serve_prediction`); MLflow's scoring protocol is in
:mod:`hokusai.serving.scoring`, the Open Inference Protocol in :mod:`hokusai.serving.v2`.

Routes read the server's parts from ``request.app.state.serving_parts`` (a :class:`ServingParts`
built once by :func:`hokusai.serving.app.create_app`).

What the server says about its model (``/health``, ``/ready``, ``/model``, the reload's
outcome) goes through :func:`hokusai.config.public_text`: no absolute path of the machine and
no credential reaches a client. ``/admin/reload`` is closed unless the caller presents an
active admin key — and while the project database has none, to everyone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from hokusai import __version__, errors
from hokusai.auth import ApiKeyStore, authenticate
from hokusai.config import ServingSettings, public_text
from hokusai.http.bodies import parse_json
from hokusai.serving.inputs import parse_records
from hokusai.serving.metrics import ServingMetrics
from hokusai.serving.predictor import LoadedModel
from hokusai.serving.swap import ModelManager, describe_source

__all__ = [
    "PartsDep",
    "Prepared",
    "ServingParts",
    "admin_router",
    "model_headers",
    "predictions_json",
    "public",
    "router",
    "serve_prediction",
    "serving_model",
]


@dataclass
class ServingParts:
    """Everything a serving route uses, built once per app."""

    serving: ServingSettings
    manager: ModelManager
    metrics: ServingMetrics
    admin_keys: Callable[[], ApiKeyStore]
    """The project's API keys, opened on first use (not on every reload)."""


def _parts(request: Request) -> ServingParts:
    parts: ServingParts = request.app.state.serving_parts
    return parts


PartsDep = Annotated[ServingParts, Depends(_parts)]

router = APIRouter()
admin_router = APIRouter()


def public(value: Any) -> Any:
    """``value`` with :func:`~hokusai.config.public_text` applied to every string in it."""
    if isinstance(value, str):
        return public_text(value)
    if isinstance(value, dict):
        return {key: public(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [public(item) for item in value]
    return value


def serving_model(manager: ModelManager) -> LoadedModel:
    model = manager.current
    if model is None:
        raise errors.ModelNotLoadedError(
            "No model is loaded: " + "; ".join(f"{s.source}: {s.reason}" for s in manager.skipped)
        )
    return model


@dataclass
class Prepared:
    """A request read by its protocol: the validated matrix, the inference params (when sent)
    and whatever the protocol needs to answer (``context``)."""

    matrix: np.ndarray[Any, Any]
    params: dict[str, Any] | None = None
    context: Any = None


Prepare = Callable[[LoadedModel, bytes, Request], Prepared]
Render = Callable[[LoadedModel, Prepared, Any], Response]


async def serve_prediction(
    request: Request,
    parts: ServingParts,
    *,
    protocol: str,
    route: str,
    prepare: Prepare,
    render: Render,
) -> Response:
    """One prediction, whatever the protocol: ``prepare`` reads the body into a
    :class:`Prepared`, the model predicts (micro-batched; through pyfunc when params were sent),
    ``render`` writes the protocol's answer, which gets the model headers. Counted in the
    metrics under ``protocol`` and ``route``."""
    metrics = parts.metrics
    started = time.perf_counter()
    status = 200
    try:
        model = serving_model(parts.manager)
        prepared = prepare(model, await request.body(), request)
        try:
            if prepared.params:
                predictions = await asyncio.to_thread(
                    model.predict_with_params, prepared.matrix, prepared.params
                )
            else:
                assert model.batcher is not None
                predictions = await model.batcher.submit(prepared.matrix)
        except errors.HokusaiError:
            raise
        except Exception as exc:
            metrics.errors.labels("model").inc()
            raise errors.HokusaiError(
                f"The model failed to predict: {type(exc).__name__}: {exc}"
            ) from exc
        metrics.rows.inc(len(prepared.matrix))
        response = render(model, prepared, predictions)
        for name, value in model_headers(model).items():
            response.headers[name] = value
        return response
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
        metrics.requests.labels(protocol, route, str(status)).inc()
        metrics.latency.labels(protocol, route).observe(time.perf_counter() - started)


def predictions_json(predictions: Any) -> Response:
    """``{"predictions": [...]}``, the answer of ``/invocations`` and ``/predict``."""
    return Response(
        orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json",
    )


def _prepare_records(model: LoadedModel, body: bytes, request: Request) -> Prepared:
    matrix = parse_records(
        parse_json(body), model.columns, max_rows=request.app.state.serving.max_batch_rows
    )
    return Prepared(matrix)


@router.post("/predict")
async def predict_records(request: Request, parts: PartsDep) -> Response:
    """``{"records": [{column: value}, …]}`` or a bare list of records."""
    return await serve_prediction(
        request,
        parts,
        protocol="hokusai",
        route="/predict",
        prepare=_prepare_records,
        render=lambda _model, _prepared, predictions: predictions_json(predictions),
    )


@router.get("/health")
async def health(parts: PartsDep) -> JSONResponse:
    """The model serving, where it came from, and every source skipped with its reason.

    ``status``: ``ok``; ``degraded`` (still 200) while a configured source (MODEL_VARIANT,
    MODEL_RUN_ID) is skipped and something else serves; ``down`` (503) while nothing does.
    """
    manager = parts.manager
    model = manager.current
    status = "down" if model is None else "degraded" if manager.degraded else "ok"
    body = {
        "status": status,
        "version": __version__,
        "model": model.describe() if model is not None else None,
        "skipped": [s.as_dict() for s in manager.skipped],
        "last_refresh": manager.last_refresh.as_dict() if manager.last_refresh else None,
        "last_error": manager.last_error,
        "swaps": manager.swaps,
        "refresh_seconds": parts.serving.model_refresh_seconds,
    }
    return JSONResponse(public(body), status_code=200 if model is not None else 503)


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(parts: PartsDep) -> JSONResponse:
    model = parts.manager.current
    return JSONResponse(
        {
            "status": "ok" if model else "down",
            "model": public_text(describe_source(model.source)) if model else None,
        },
        status_code=200 if model else 503,
    )


@router.get("/model")
async def model_info(parts: PartsDep) -> dict[str, Any]:
    described: dict[str, Any] = public(serving_model(parts.manager).describe())
    return described


@router.get("/metrics")
async def prometheus(parts: PartsDep) -> Response:
    return Response(parts.metrics.render(), media_type="text/plain; version=0.0.4")


def _check_admin(parts: ServingParts, authorization: str) -> None:
    """Fail closed: an admin key, and while the database has none, nobody."""
    store = parts.admin_keys()
    if not store.count_active(scope="admin"):
        raise errors.AdminKeyRequiredError(
            "POST /admin/reload needs an admin API key and this server's project database has "
            "none: create one with `hokusai keys create --scope admin --name ops` (same "
            "HOKUSAI_HOME or HOKUSAI_DATABASE_URL as this server) and send it as "
            "'Authorization: Bearer <key>'."
        )
    authenticate(store, authorization, scope="admin")


@admin_router.post("/admin/reload")
async def reload(request: Request, parts: PartsDep) -> dict[str, Any]:
    """Resolve the sources again now; swap if the winner changed. Needs an admin key."""
    await asyncio.to_thread(_check_admin, parts, request.headers.get("authorization", ""))
    outcome = await asyncio.to_thread(parts.manager.refresh, force=True, trigger="reload")
    described: dict[str, Any] = public(outcome.as_dict())
    return described


def model_headers(model: LoadedModel) -> dict[str, str]:
    source = model.source
    headers = {"X-Model-Source": source.kind, "X-Model-Name": source.name or ""}
    if source.version:
        headers["X-Model-Version"] = source.version
    if source.run_id:
        headers["X-Model-Run-Id"] = source.run_id
    return headers
