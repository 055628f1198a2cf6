"""Verification jobs: what the REST service was asked to verify, and who is evaluating it.

A verification can take minutes; the REST service answers ``202`` at once and runs it from a
durable queue that any replica (or ``hokusai verifications worker``) drains with leases.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "hokusai_verification_jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("candidate_id", sa.String(300), nullable=False),
        sa.Column("benchmark", sa.String(128), nullable=False),
        sa.Column("threshold_bps", sa.Integer, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("n_boot", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("requested_by", sa.String(24)),
    )
    op.create_index(
        "hokusai_verification_jobs_due", "hokusai_verification_jobs", ["status", "created_at"]
    )
    op.create_index(
        "hokusai_verification_jobs_candidate",
        "hokusai_verification_jobs",
        ["candidate_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("hokusai_verification_jobs_candidate", "hokusai_verification_jobs")
    op.drop_index("hokusai_verification_jobs_due", "hokusai_verification_jobs")
    op.drop_table("hokusai_verification_jobs")
