"""MLflow's scoring protocol, as ``mlflow models serve`` speaks it: ``GET /ping``, ``/version``
and ``POST /invocations`` (``/health`` is the server's own, in :mod:`hokusai.serving.routes`).

A client written for MLflow's server works unchanged — ``ScoringServerClient``, SageMaker-style
health checks, scripts posting CSV:

- ``/ping``: 200 with a newline while a model is loaded (503 before).
- ``/version``: the MLflow version this protocol is MLflow's of, as MLflow's server answers it;
  ``X-Hokusai-Version`` says ours.
- ``/invocations``: ``application/json`` (``dataframe_split``, ``dataframe_records``,
  ``instances``, ``inputs``, optional ``params``), ``text/csv`` (a header row, as
  ``DataFrame.to_csv(index=False)`` writes) and ``application/vnd.apache.parquet``; UTF-8 only.
  A request with no content type, or curl's default ``application/x-www-form-urlencoded``, is
  read as JSON (MLflow refuses those with 415; a drop-in is allowed to be kinder). Errors carry
  MLflow's ``error_code`` and ``message`` beside our ``error`` object
  (:mod:`hokusai.serving.shapes`).
"""

from __future__ import annotations

import io
from importlib.metadata import version
from typing import Any

from fastapi import APIRouter, Request, Response

from hokusai import __version__, errors
from hokusai.http.bodies import parse_json
from hokusai.serving.inputs import parse_frame, parse_invocation
from hokusai.serving.predictor import LoadedModel
from hokusai.serving.routes import (
    PartsDep,
    Prepared,
    predictions_json,
    serve_prediction,
    serving_model,
)

__all__ = ["CONTENT_TYPES", "router"]

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
CONTENT_TYPES = (JSON, CSV, PARQUET)
#: Read as JSON: no content type at all, and what ``curl -d`` sends when none is given.
_LENIENT = ("", "application/x-www-form-urlencoded")

MLFLOW_VERSION = version("mlflow")

router = APIRouter()


@router.get("/ping")
async def ping(parts: PartsDep) -> Response:
    """SageMaker's and MLflow's liveness check: 200 once a model serves."""
    serving_model(parts.manager)
    return Response(content="\n", media_type=JSON)


@router.get("/version")
async def mlflow_version() -> Response:
    """The MLflow version, as MLflow's scoring server answers (unquoted, as it does)."""
    return Response(
        content=MLFLOW_VERSION, media_type=JSON, headers={"X-Hokusai-Version": __version__}
    )


@router.post("/invocations")
async def invocations(request: Request, parts: PartsDep) -> Response:
    """MLflow's scoring formats in JSON, CSV or Parquet; ``params`` when the model takes them."""
    return await serve_prediction(
        request,
        parts,
        protocol="mlflow",
        route="/invocations",
        prepare=_prepare,
        render=lambda _model, _prepared, predictions: predictions_json(predictions),
    )


def _prepare(model: LoadedModel, body: bytes, request: Request) -> Prepared:
    max_rows = request.app.state.serving.max_batch_rows
    media = media_type(request.headers.get("content-type", ""))
    if media == CSV:
        return Prepared(parse_frame(_read_csv(body), model.columns, max_rows=max_rows))
    if media == PARQUET:
        return Prepared(parse_frame(_read_parquet(body), model.columns, max_rows=max_rows))
    parsed = parse_json(body)
    params = parsed.get("params") if isinstance(parsed, dict) else None
    if params is not None and not isinstance(params, dict):
        raise errors.InvalidInputError("params must be a JSON object of parameter values.")
    return Prepared(parse_invocation(parsed, model.columns, max_rows=max_rows), params or None)


def media_type(content_type: str) -> str:
    """The media type of ``content_type``, refusing what MLflow's server refuses: a charset
    other than UTF-8, an unknown parameter (``format=pandas-split`` of MLflow 1), an unknown
    type (415)."""
    media, *pairs = (part.strip() for part in content_type.split(";"))
    media = media.lower()
    parameters = {
        key.strip().lower(): value.strip() for key, _, value in (p.partition("=") for p in pairs)
    }
    if parameters.get("charset", "utf-8").strip('"').lower() not in ("utf-8", "utf8"):
        raise errors.UnsupportedMediaTypeError(
            f"The scoring server only supports UTF-8; got charset {parameters['charset']!r}."
        )
    unknown = sorted(set(parameters) - {"charset"})
    if unknown:
        raise errors.UnsupportedMediaTypeError(
            f"Unrecognized content type parameters: {', '.join(unknown)}. Send "
            "application/json with one of dataframe_split, dataframe_records, instances or "
            "inputs, or text/csv."
        )
    if media in _LENIENT:
        return JSON
    if media not in CONTENT_TYPES:
        raise errors.UnsupportedMediaTypeError(
            f"/invocations reads {', '.join(CONTENT_TYPES)}; got {content_type!r}."
        )
    return media


def _read_csv(body: bytes) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(io.StringIO(body.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise errors.InvalidRequestError(
            "The body is not a CSV table with a header row (as DataFrame.to_csv(index=False) "
            f"writes): {_first_line(exc)}"
        ) from exc


def _read_parquet(body: bytes) -> Any:
    import pandas as pd

    try:
        return pd.read_parquet(io.BytesIO(body))
    except Exception as exc:  # pyarrow raises many kinds for a bad file
        raise errors.InvalidRequestError(
            f"The body is not a Parquet table: {_first_line(exc)}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
