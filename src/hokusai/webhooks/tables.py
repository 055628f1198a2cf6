"""SQLAlchemy Core tables of the webhook layer (the schema itself is owned by the migrations).

Every name is ``hokusai_…``: the project database may be MLflow's too (migration 0006).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "attempts",
    "deliveries",
    "endpoints",
    "events",
    "metadata",
    "reconciler_cursors",
    "reconciler_pending",
]

metadata = sa.MetaData()

endpoints = sa.Table(
    "hokusai_webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("events", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

events = sa.Table(
    "hokusai_webhook_events",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("dedupe_key", sa.String(512), nullable=False, unique=True),
    sa.Column("model_name", sa.String(256)),
    sa.Column("model_version", sa.String(32)),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

deliveries = sa.Table(
    "hokusai_webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "event_id", sa.String(40), sa.ForeignKey("hokusai_webhook_events.id"), nullable=False
    ),
    sa.Column(
        "endpoint_id", sa.String(40), sa.ForeignKey("hokusai_webhook_endpoints.id"), nullable=False
    ),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_expires_at", sa.Float),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("delivered_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

attempts = sa.Table(
    "hokusai_webhook_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "delivery_id", sa.String(40), sa.ForeignKey("hokusai_webhook_deliveries.id"), nullable=False
    ),
    sa.Column("attempted_at", sa.Float, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("response_snippet", sa.Text),
    sa.Column("worker", sa.String(64), nullable=False),
)

reconciler_cursors = sa.Table(
    "hokusai_reconciler_cursors",
    metadata,
    sa.Column("model_name", sa.String(256), primary_key=True),
    sa.Column("model_created_at", sa.BigInteger, nullable=False),
    sa.Column("next_version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

reconciler_pending = sa.Table(
    "hokusai_reconciler_pending",
    metadata,
    sa.Column("model_name", sa.String(256), primary_key=True),
    sa.Column("version", sa.String(32), primary_key=True),
    sa.Column("first_seen_at", sa.Float, nullable=False),
)
