"""Signed-out console sessions: the nonce of each session signed out before it expired, kept
until then so that a copy of its cookie is refused.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "hokusai_console_revoked_sessions",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index(
        "hokusai_console_revoked_sessions_expiry",
        "hokusai_console_revoked_sessions",
        ["expires_at"],
    )


def downgrade() -> None:
    op.drop_index(
        "hokusai_console_revoked_sessions_expiry", table_name="hokusai_console_revoked_sessions"
    )
    op.drop_table("hokusai_console_revoked_sessions")
