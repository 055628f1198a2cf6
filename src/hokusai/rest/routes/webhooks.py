"""``/api/v1/webhooks``: endpoints, the delivery log, redelivery, replay, test pings (admin
scope)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response, status

from hokusai.rest.deps import AdminKey, ComponentsDep
from hokusai.rest.routes.models import ERRORS
from hokusai.rest.schemas import (
    AttemptsPublic,
    DeliveriesPublic,
    RedeliveryPublic,
    ReplayPublic,
    TestResultPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhookReplay,
    WebhooksPublic,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.get("/deliveries", response_model=DeliveriesPublic, responses=ERRORS)
def list_deliveries(
    components: ComponentsDep,
    _key: AdminKey,
    state: str | None = Query(default=None, pattern="^(pending|delivering|delivered|failed|dead)$"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """Deliveries with their model id and state, newest first."""
    data = components.webhooks.outbox.deliveries(state=state, limit=limit)
    return {"data": data, "count": len(data)}


@router.get("/deliveries/{delivery_id}/attempts", response_model=AttemptsPublic, responses=ERRORS)
def list_attempts(delivery_id: str, components: ComponentsDep, _key: AdminKey) -> dict[str, Any]:
    """Every attempt of one delivery: time, status, latency, error, response snippet."""
    data = components.webhooks.outbox.attempts(delivery_id)
    return {"data": data, "count": len(data)}


@router.post("/deliveries/{event_id}/redeliver", response_model=RedeliveryPublic, responses=ERRORS)
def redeliver(event_id: str, components: ComponentsDep, _key: AdminKey) -> dict[str, Any]:
    """Re-queue an event's failed or dead deliveries (same webhook-id)."""
    return {"requeued": components.webhooks.outbox.redeliver(event_id)}


@router.get("", response_model=WebhooksPublic, responses=ERRORS)
def list_endpoints(components: ComponentsDep, _key: AdminKey) -> dict[str, Any]:
    """Endpoints (secrets are never returned after creation)."""
    data = [e.public() for e in components.webhooks.endpoints.list()]
    return {"data": data, "count": len(data)}


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated, responses=ERRORS
)
def create_endpoint(
    body: WebhookCreate, components: ComponentsDep, _key: AdminKey
) -> dict[str, Any]:
    """Subscribe a URL; the response carries its secret, once."""
    endpoint, secret = components.webhooks.add_endpoint(
        body.url,
        events=list(body.events),
        secret=body.secret,
        description=body.description,
        source="api",
    )
    return {**endpoint.public(), "secret": secret}


@router.get("/{endpoint_id}", response_model=WebhookPublic, responses=ERRORS)
def get_endpoint(endpoint_id: str, components: ComponentsDep, _key: AdminKey) -> dict[str, Any]:
    """One endpoint."""
    return components.webhooks.endpoints.get(endpoint_id).public()


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_endpoint(endpoint_id: str, components: ComponentsDep, _key: AdminKey) -> Response:
    """Remove an endpoint and its deliveries (events stay in the outbox)."""
    components.webhooks.endpoints.remove(endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{endpoint_id}/test", response_model=TestResultPublic, responses=ERRORS)
def ping_endpoint(endpoint_id: str, components: ComponentsDep, _key: AdminKey) -> dict[str, Any]:
    """Send a signed ping now and return the receiver's answer."""
    attempt = components.webhooks.test_endpoint(endpoint_id)
    return {
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
        "response_snippet": attempt.response_snippet,
    }


@router.post("/{endpoint_id}/enable", response_model=WebhookPublic, responses=ERRORS)
def enable_endpoint(endpoint_id: str, components: ComponentsDep, _key: AdminKey) -> dict[str, Any]:
    """Re-enable an endpoint (for example after a 410 disabled it); clears disabled_reason.
    Events recorded while it was disabled are not queued for it: replay them."""
    return components.webhooks.enable_endpoint(endpoint_id).public()


@router.post("/{endpoint_id}/replay", response_model=ReplayPublic, responses=ERRORS)
def replay(
    endpoint_id: str, body: WebhookReplay, components: ComponentsDep, _key: AdminKey
) -> dict[str, Any]:
    """Queue the recorded events of [since, until) the endpoint is subscribed to (same
    webhook ids); events it already has a delivery for are skipped unless failed or dead."""
    queued = components.webhooks.replay(
        endpoint_id,
        since=body.since,
        until=body.until,
        event_types=None if body.event_types is None else list(body.event_types),
    )
    return {"queued": queued}
