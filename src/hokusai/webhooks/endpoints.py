"""Webhook endpoints: the endpoint table.

Every URL written to it passes the store's :class:`~hokusai.webhooks.urlpolicy.DestinationPolicy`
(https only, public hosts only, unless the settings allow more); the same policy is checked
again on every connection a sender opens.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from hokusai.db import write_transaction
from hokusai.errors import EndpointNotFoundError, ValidationError
from hokusai.webhooks.signing import validate_secret
from hokusai.webhooks.tables import endpoints
from hokusai.webhooks.urlpolicy import DestinationPolicy

__all__ = ["EVENT_TYPES", "Endpoint", "EndpointStore"]

EVENT_TYPES = ("model_registered", "model_promoted", "improvement.verified", "deltaone.accepted")
"""What an endpoint's ``events`` filter may name (or ``"*"``: every event, these and any added
later)."""
ENV_ENDPOINT_ID = "env"


@dataclass(frozen=True)
class Endpoint:
    """A subscriber. ``secret`` is never logged or printed after creation."""

    id: str
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    description: str | None
    source: str
    created_at: float
    secret: str

    def public(self) -> dict[str, Any]:
        """Everything but the secret."""
        return {
            "id": self.id,
            "url": self.url,
            "events": self.events,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "description": self.description,
            "source": self.source,
            "created_at": self.created_at,
        }


def validate_events(events: object) -> list[str]:
    """``["*"]`` or a list of known event types."""
    if events is None:
        return ["*"]
    if isinstance(events, str):
        events = [e.strip() for e in events.split(",") if e.strip()]
    if not isinstance(events, list | tuple) or not events:
        raise ValidationError("events must be a non-empty list of event types or '*'.")
    chosen = [str(e) for e in events]
    if "*" in chosen:
        return ["*"]
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown:
        raise ValidationError(
            f"Unknown event type {unknown[0]!r}; expected one of {', '.join(EVENT_TYPES)} or '*'."
        )
    return sorted(set(chosen))


class EndpointStore:
    """CRUD over ``hokusai_webhook_endpoints``."""

    def __init__(self, engine: sa.Engine, *, policy: DestinationPolicy) -> None:
        self._engine = engine
        self.policy = policy

    def add(
        self,
        url: str,
        *,
        secret: str,
        events: list[str] | str | None = None,
        description: str | None = None,
        source: str = "cli",
        endpoint_id: str | None = None,
    ) -> Endpoint:
        """Create an endpoint."""
        url = self.policy.validate_url(url)
        secret = validate_secret(secret)
        chosen = validate_events(events)
        now = time.time()
        new_id = endpoint_id or f"ep_{uuid.uuid4().hex[:20]}"
        row = {
            "id": new_id,
            "url": url,
            "secret": secret,
            "events": json.dumps(chosen),
            "description": description,
            "enabled": True,
            "disabled_reason": None,
            "source": source,
            "created_at": now,
            "updated_at": now,
        }
        with write_transaction(self._engine) as conn:
            conn.execute(endpoints.insert().values(**row))
        return self.get(new_id)

    def sync_env_endpoint(self, url: str, secret: str) -> Endpoint:
        """Make the ``HOKUSAI_WEBHOOK_URL`` endpoint match the environment (id ``env``)."""
        url = self.policy.validate_url(url)
        secret = validate_secret(secret)
        with write_transaction(self._engine) as conn:
            current = conn.execute(
                sa.select(endpoints).where(endpoints.c.id == ENV_ENDPOINT_ID)
            ).first()
            if current is None:
                now = time.time()
                conn.execute(
                    endpoints.insert().values(
                        id=ENV_ENDPOINT_ID,
                        url=url,
                        secret=secret,
                        events=json.dumps(["*"]),
                        description="from HOKUSAI_WEBHOOK_URL",
                        enabled=True,
                        disabled_reason=None,
                        source="env",
                        created_at=now,
                        updated_at=now,
                    )
                )
            elif current.url != url or current.secret != secret:
                # A new URL or secret is a deliberate change: re-enable if a 410 had disabled it.
                conn.execute(
                    endpoints.update()
                    .where(endpoints.c.id == ENV_ENDPOINT_ID)
                    .values(
                        url=url,
                        secret=secret,
                        enabled=True,
                        disabled_reason=None,
                        updated_at=time.time(),
                    )
                )
        return self.get(ENV_ENDPOINT_ID)

    def get(self, endpoint_id: str) -> Endpoint:
        """One endpoint by id or exact URL."""
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(endpoints).where(
                    sa.or_(endpoints.c.id == endpoint_id, endpoints.c.url == endpoint_id)
                )
            ).first()
        if row is None:
            raise EndpointNotFoundError(f"No webhook endpoint {endpoint_id!r}.")
        return _endpoint(row)

    def list(self) -> list[Endpoint]:
        """All endpoints, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(endpoints).order_by(endpoints.c.created_at)).all()
        return [_endpoint(row) for row in rows]

    def remove(self, endpoint_id: str) -> Endpoint:
        """Delete an endpoint and its deliveries (the events stay in the outbox)."""
        from hokusai.webhooks.tables import attempts, deliveries

        endpoint = self.get(endpoint_id)
        with write_transaction(self._engine) as conn:
            ids = sa.select(deliveries.c.id).where(deliveries.c.endpoint_id == endpoint.id)
            conn.execute(attempts.delete().where(attempts.c.delivery_id.in_(ids)))
            conn.execute(deliveries.delete().where(deliveries.c.endpoint_id == endpoint.id))
            conn.execute(endpoints.delete().where(endpoints.c.id == endpoint.id))
        return endpoint

    def set_enabled(self, endpoint_id: str, enabled: bool, *, reason: str | None = None) -> None:
        """Enable or disable (with a reason) an endpoint."""
        endpoint = self.get(endpoint_id)
        with write_transaction(self._engine) as conn:
            conn.execute(
                endpoints.update()
                .where(endpoints.c.id == endpoint.id)
                .values(
                    enabled=enabled,
                    disabled_reason=None if enabled else reason,
                    updated_at=time.time(),
                )
            )


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=row.id,
        url=row.url,
        events=json.loads(row.events),
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        description=row.description,
        source=row.source,
        created_at=row.created_at,
        secret=row.secret,
    )
