"""The reconciler's cursor: where each registered model's scan stopped, and the versions still
registering when it passed them.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "hokusai_reconciler_cursors",
        sa.Column("model_name", sa.String(256), primary_key=True),
        sa.Column("model_created_at", sa.BigInteger, nullable=False),
        sa.Column("next_version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "hokusai_reconciler_pending",
        sa.Column("model_name", sa.String(256), primary_key=True),
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("first_seen_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hokusai_reconciler_pending")
    op.drop_table("hokusai_reconciler_cursors")
