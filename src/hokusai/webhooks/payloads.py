"""Event payloads. ``model_registered`` is a contract with the marketplace: fields may be added,
never renamed or removed. ``schemas/model_registered.v1.json`` is its JSON Schema, shipped in
the package and checked against every payload in the tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import resources
from typing import Any, TypedDict

__all__ = [
    "ModelRegisteredPayload",
    "model_promoted_payload",
    "model_registered_payload",
    "model_registered_schema",
    "new_event_id",
    "ping_payload",
]

MODEL_REGISTERED = "model_registered"
MODEL_PROMOTED = "model_promoted"
PING = "ping"


class ModelRegisteredPayload(TypedDict):
    """The body of a ``model_registered`` webhook."""

    event_type: str
    event_id: str
    model_id: str
    model_name: str
    version: str
    model_version: str
    mlflow_run_id: str | None
    model_uuid: str | None
    model_uri: str | None
    signature: str | None
    metadata: dict[str, Any]
    model_type: str | None
    is_baseline: bool
    baseline_id: str | None
    contributor: str | None
    delta_metrics: dict[str, float] | None
    timestamp: str


def new_event_id() -> str:
    """A unique event id; it is also the ``webhook-id`` of every delivery attempt."""
    return f"evt_{uuid.uuid4().hex}"


def model_registered_payload(result: Mapping[str, Any], *, event_id: str) -> ModelRegisteredPayload:
    """The payload for a registration result (or a lookup dict of the same shape)."""
    return {
        "event_type": MODEL_REGISTERED,
        "event_id": event_id,
        "model_id": result["model_id"],
        "model_name": result["model_name"],
        "version": str(result["version"]),
        "model_version": str(result["version"]),
        "mlflow_run_id": result.get("run_id"),
        "model_uuid": result.get("model_uuid"),
        "model_uri": result.get("model_uri"),
        "signature": result.get("signature"),
        "metadata": result.get("metadata") or {},
        "model_type": result.get("model_type"),
        "is_baseline": bool(result.get("is_baseline")),
        "baseline_id": result.get("baseline_id"),
        "contributor": result.get("contributor"),
        "delta_metrics": result.get("delta_metrics") or None,
        "timestamp": result.get("registration_timestamp") or _now(),
    }


def model_promoted_payload(
    version: Mapping[str, Any], *, event_id: str, alias: str, previous_version: str | None
) -> dict[str, Any]:
    """The body of a ``model_promoted`` webhook: ``alias`` now points at ``version``."""
    return {
        "event_type": MODEL_PROMOTED,
        "event_id": event_id,
        "model_id": version["model_id"],
        "model_name": version["model_name"],
        "version": str(version["version"]),
        "alias": alias,
        "previous_version": previous_version,
        "model_uuid": version.get("model_uuid"),
        "model_uri": version.get("model_uri"),
        "model_type": version.get("model_type"),
        "is_baseline": bool(version.get("is_baseline")),
        "contributor": version.get("contributor"),
        "timestamp": _now(),
    }


def ping_payload(*, event_id: str, endpoint_id: str) -> dict[str, Any]:
    """The body of a test delivery (``hokusai webhooks test``)."""
    return {
        "event_type": PING,
        "event_id": event_id,
        "endpoint_id": endpoint_id,
        "timestamp": _now(),
    }


def model_registered_schema() -> dict[str, Any]:
    """The JSON Schema of ``model_registered`` payloads (v1)."""
    text = resources.files("hokusai.webhooks").joinpath("schemas/model_registered.v1.json")
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return schema


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
