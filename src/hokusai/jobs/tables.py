"""SQLAlchemy Core table of the job queue (the schema itself is owned by the migrations, 0007).

Times are seconds since the epoch (floats), like the webhook outbox's.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["metadata", "verification_jobs"]

metadata = sa.MetaData()

verification_jobs = sa.Table(
    "hokusai_verification_jobs",
    metadata,
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
