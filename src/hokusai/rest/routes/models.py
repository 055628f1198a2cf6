"""``/api/v1/models``: register, list, look up, lineage, aliases.

Every route answers for Hokusai versions only: a registered model name that is not
``hokusai_<type>_baseline|improved``, or a version without Hokusai's attribution (another
team's model in the same MLflow), is a 404 ``model_not_found`` saying it is not a Hokusai model
for reads — and for alias changes, whatever the key's scope, a 404 ``not_a_hokusai_model``
(a kind of ``model_not_found``) when MLflow has the model, saying how to register it.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Response, status

from hokusai.errors import ModelNotFoundError
from hokusai.registry.records import VersionRecord, is_hokusai_model_name
from hokusai.registry.results import AliasChange, ModelVersionInfo, RegistrationResult
from hokusai.registry.validation import parse_model_id, validate_alias
from hokusai.rest.deps import Components, ComponentsDep, ReadKey, WriteKey
from hokusai.rest.schemas import (
    AliasUpdate,
    ErrorPublic,
    LineagePublic,
    ModelCreate,
    ModelsPublic,
)
from hokusai.rest.threads import in_thread

router = APIRouter(prefix="/models", tags=["models"])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic} for code in (400, 401, 403, 404, 409, 413, 422, 429)
}


def _not_hokusai(what: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"{what} is not a Hokusai model: this API serves only the hokusai_<type>_baseline and "
        "hokusai_<type>_improved versions Hokusai registered."
    )


def _hokusai_name(name: str) -> str:
    """``name`` if Hokusai registers under it; 404 otherwise (no MLflow call)."""
    if not is_hokusai_model_name(name):
        raise _not_hokusai(f"Model {name!r}")
    return name


def _hokusai_version(components: Components, name: str, version: str) -> VersionRecord:
    """The record of ``name/version``; 404 unless it exists and carries Hokusai's
    attribution (422 when it is not a model id at all)."""
    name, version = parse_model_id(f"{name}/{version}")  # malformed input is a 422 first
    _hokusai_name(name)
    record = components.registry.queries.record(name, version)
    if record is None:
        raise ModelNotFoundError(f"Model {name}/{version} not found.")
    if not record.is_hokusai:
        raise _not_hokusai(f"Model {name}/{version}")
    return record


def _hokusai_found(found: ModelVersionInfo | None, model_uuid: str) -> ModelVersionInfo:
    if (
        found is None
        or found["model_type"] is None
        or not is_hokusai_model_name(found["model_name"])
    ):
        raise ModelNotFoundError(
            f"No Hokusai model has uuid {model_uuid!r}: it names no logged model, or one that "
            "is not a Hokusai model (never registered by Hokusai)."
        )
    return found


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=RegistrationResult, responses=ERRORS
)
def register_model(
    body: ModelCreate, components: ComponentsDep, _key: WriteKey
) -> RegistrationResult:
    """Register an already-logged MLflow model as a baseline or an improved version."""
    result = components.registry.register_from_uri(
        body.model_uri,
        body.model_type,
        body.metadata,
        baseline_id=body.baseline_id,
        contributor=body.contributor,
        delta_metrics=body.delta_metrics,
        metrics=body.metrics,
    )
    components.metrics.registrations.labels(
        "baseline" if result["is_baseline"] else "improved"
    ).inc()
    return result


@router.get("", response_model=ModelsPublic, responses=ERRORS)
def list_models(
    components: ComponentsDep,
    _key: ReadKey,
    model_type: str | None = Query(default=None, max_length=64),
    kind: str | None = Query(default=None, pattern="^(baseline|improved)$"),
    max_results: int = Query(default=100, ge=1, le=1000),
    page_token: str | None = Query(default=None, max_length=2048),
) -> dict[str, Any]:
    """Hokusai versions, newest first, paged."""
    data, token = components.registry.list_models(
        model_type=model_type, kind=kind, max_results=max_results, page_token=page_token
    )
    return {"data": data, "count": len(data), "next_page_token": token}


def _lookup(components: Components, model_uuid: str) -> ModelVersionInfo | None:
    started = time.perf_counter()
    found = components.registry.get_model_by_uuid(model_uuid)
    components.metrics.lookup.observe(time.perf_counter() - started)
    return found


@router.get("/by-uuid/{model_uuid}", response_model=ModelVersionInfo, responses=ERRORS)
async def get_by_uuid(
    model_uuid: str, components: ComponentsDep, _key: ReadKey
) -> ModelVersionInfo:
    """The version registered from the logged model ``model_uuid`` (``m-…``)."""
    # The hot path: one thread-pool hop for the lookup (a database read, or MLflow when the
    # index cannot answer); the response is validated and encoded on the event loop, which a
    # sync route would do in a second hop.
    found = await in_thread(_lookup, components, model_uuid)
    return _hokusai_found(found, model_uuid)


@router.get("/{name}/versions/{version}", response_model=ModelVersionInfo, responses=ERRORS)
def get_version(
    name: str, version: str, components: ComponentsDep, _key: ReadKey
) -> ModelVersionInfo:
    """One version by name and number."""
    return components.registry.queries.describe(_hokusai_version(components, name, version))


@router.get("/{name}/versions/{version}/lineage", response_model=LineagePublic, responses=ERRORS)
def get_version_lineage(
    name: str, version: str, components: ComponentsDep, _key: ReadKey
) -> dict[str, Any]:
    """The family of one version: its baseline and every improvement built on it."""
    _hokusai_version(components, name, version)
    entries = components.registry.get_model_lineage(f"{name}/{version}")
    return {"data": entries, "count": len(entries)}


@router.get("/{model_id:path}/lineage", response_model=LineagePublic, responses=ERRORS)
def get_lineage(model_id: str, components: ComponentsDep, _key: ReadKey) -> dict[str, Any]:
    """Lineage by model id (``name/version``, the ``/`` may be encoded) or by model name."""
    name, _, version = model_id.partition("/")
    if version:
        _hokusai_version(components, name, version)
    else:
        _hokusai_name(name)
    entries = components.registry.get_model_lineage(model_id)
    return {"data": entries, "count": len(entries)}


@router.put("/{name}/aliases/{alias}", response_model=AliasChange, responses=ERRORS)
def set_alias(
    name: str, alias: str, body: AliasUpdate, components: ComponentsDep, _key: WriteKey
) -> AliasChange:
    """Point an alias at a version: promote, or roll back by pointing it at an older one.
    Announces ``model_promoted``. A model MLflow has but Hokusai did not register is a 404
    ``not_a_hokusai_model`` (the registry's own check)."""
    validate_alias(alias)  # malformed input is a 422 before any lookup
    return components.registry.set_alias(name, alias, body.version)


@router.delete("/{name}/aliases/{alias}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_alias(name: str, alias: str, components: ComponentsDep, _key: WriteKey) -> Response:
    """Remove an alias of a Hokusai model (404 ``not_a_hokusai_model`` for another's)."""
    validate_alias(alias)
    components.registry.delete_alias(name, alias)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
