"""The outbox's events table is ``hokusai_webhook_events``: MLflow 3 has a ``webhook_events``.

0001 creates the table under its new name. Databases made by the earlier 0001 still call it
``webhook_events``: it is renamed here, so the project database can also be MLflow's. A
``webhook_events`` without Hokusai's ``dedupe_key`` column is MLflow's and is left alone.

Downgrading keeps the new name, which is what 0001 and 0002 create now.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if inspector.has_table("hokusai_webhook_events") or not inspector.has_table("webhook_events"):
        return
    if "dedupe_key" not in {column["name"] for column in inspector.get_columns("webhook_events")}:
        return
    op.rename_table("webhook_events", "hokusai_webhook_events")


def downgrade() -> None:
    pass
