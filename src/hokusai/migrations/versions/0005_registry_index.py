"""The registry index: what the registry's reads need, derived from MLflow and rebuildable.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "hokusai_index_versions",
        sa.Column("model_name", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("registration_run_id", sa.String(64)),
        sa.Column("model_uuid", sa.String(64)),
        sa.Column("model_type", sa.String(256), nullable=False),
        sa.Column("is_baseline", sa.Boolean, nullable=False),
        sa.Column("baseline_id", sa.String(300)),
        sa.Column("root_id", sa.String(300), nullable=False),
        sa.Column("contributor", sa.String(64)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("stage", sa.String(32)),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("indexed_at", sa.Float, nullable=False),
    )
    op.create_index("hokusai_index_versions_uuid", "hokusai_index_versions", ["model_uuid"])
    op.create_index(
        "hokusai_index_versions_root", "hokusai_index_versions", ["root_id", "created_at"]
    )
    op.create_index(
        "hokusai_index_versions_contributor",
        "hokusai_index_versions",
        ["contributor", "created_at"],
    )
    op.create_table(
        "hokusai_index_aliases",
        sa.Column("model_name", sa.String(256), primary_key=True),
        sa.Column("alias", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "hokusai_index_models",
        sa.Column("model_name", sa.String(256), primary_key=True),
        sa.Column("last_updated_at", sa.BigInteger, nullable=False),
        sa.Column("synced_at", sa.Float, nullable=False),
    )
    op.create_table(
        "hokusai_index_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hokusai_index_state")
    op.drop_table("hokusai_index_models")
    op.drop_table("hokusai_index_aliases")
    op.drop_index("hokusai_index_versions_contributor", "hokusai_index_versions")
    op.drop_index("hokusai_index_versions_root", "hokusai_index_versions")
    op.drop_index("hokusai_index_versions_uuid", "hokusai_index_versions")
    op.drop_table("hokusai_index_versions")
