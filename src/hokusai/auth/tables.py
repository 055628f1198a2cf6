"""SQLAlchemy Core tables of the REST layer (the schema itself is owned by the migrations)."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["api_keys", "metadata"]

metadata = sa.MetaData()

api_keys = sa.Table(
    "hokusai_api_keys",  # prefixed like every table of Hokusai's (migration 0006)
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
)
