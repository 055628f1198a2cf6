"""``/api/v1/contributors``: what a contributor's data produced."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hokusai.rest.deps import ComponentsDep, ReadKey
from hokusai.rest.routes.models import ERRORS
from hokusai.rest.schemas import ModelsPublic, VerifiedGainsPublic

router = APIRouter(prefix="/contributors", tags=["contributors"])


@router.get("/{address}/models", response_model=ModelsPublic, responses=ERRORS)
def contributor_models(address: str, components: ComponentsDep, _key: ReadKey) -> dict[str, Any]:
    """Every version attributed to ``address`` (any letter case), oldest first."""
    data = components.registry.get_contributor_models(address)
    return {"data": data, "count": len(data), "next_page_token": None}


@router.get("/{address}/verified-gains", response_model=VerifiedGainsPublic, responses=ERRORS)
def contributor_verified_gains(
    address: str, components: ComponentsDep, _key: ReadKey
) -> dict[str, Any]:
    """The versions credited to ``address`` that have a verification, each with its latest
    verification's summary (the registry's own measurement, beside the claim), newest first."""
    data = components.registry.get_contributor_verified_gains(address)
    return {"data": data, "count": len(data)}
