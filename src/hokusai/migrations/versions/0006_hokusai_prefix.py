"""Every relation of Hokusai's is named ``hokusai_…``: the webhook tables and the API keys too.

The project database may be MLflow's database as well (one PostgreSQL database in a
deployment). MLflow 3 already has ``webhooks``, ``webhook_events``, ``endpoints`` and
``secrets``; a later MLflow that adds a table — or an index or sequence, which share the table
namespace in PostgreSQL — under one of Hokusai's names would fail its own upgrade. With one
prefix for everything of Hokusai's, the two schemas cannot meet.

Renamed here, rows kept (a rename moves no data):

- tables ``webhook_endpoints``, ``webhook_deliveries``, ``webhook_attempts``, ``api_keys``;
- their indexes (``ix_deliveries_due``, ``ix_webhook_attempts_delivery_id``,
  ``ix_webhook_events_model``);
- on PostgreSQL also the names it derived from the old table names: primary keys
  (``webhook_endpoints_pkey``, …), the unique constraint ``uq_delivery_event_endpoint``, the
  foreign keys and the ``webhook_attempts_id_seq`` sequence (a column default refers to its
  sequence by oid, so it follows the rename).

SQLite renames a table's foreign-key references along with it; it cannot rename an index, so
each index is dropped and created again under its new name. Each step runs only when the old
name is there and the new one is not.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

TABLES = (
    ("webhook_endpoints", "hokusai_webhook_endpoints"),
    ("webhook_deliveries", "hokusai_webhook_deliveries"),
    ("webhook_attempts", "hokusai_webhook_attempts"),
    ("api_keys", "hokusai_api_keys"),
)
# (table after the rename, old index name, new index name, columns)
INDEXES = (
    (
        "hokusai_webhook_events",
        "ix_webhook_events_model",
        "hokusai_webhook_events_model",
        ["model_name", "model_version"],
    ),
    (
        "hokusai_webhook_deliveries",
        "ix_deliveries_due",
        "hokusai_webhook_deliveries_due",
        ["state", "next_attempt_at"],
    ),
    (
        "hokusai_webhook_attempts",
        "ix_webhook_attempts_delivery_id",
        "hokusai_webhook_attempts_delivery_id",
        ["delivery_id"],
    ),
)
# PostgreSQL's constraints: (table after the rename, old name, new name)
CONSTRAINTS = (
    ("hokusai_webhook_endpoints", "webhook_endpoints_pkey", "hokusai_webhook_endpoints_pkey"),
    ("hokusai_webhook_deliveries", "webhook_deliveries_pkey", "hokusai_webhook_deliveries_pkey"),
    ("hokusai_webhook_attempts", "webhook_attempts_pkey", "hokusai_webhook_attempts_pkey"),
    ("hokusai_api_keys", "api_keys_pkey", "hokusai_api_keys_pkey"),
    (
        "hokusai_webhook_deliveries",
        "uq_delivery_event_endpoint",
        "hokusai_webhook_deliveries_event_endpoint",
    ),
    (
        "hokusai_webhook_deliveries",
        "webhook_deliveries_event_id_fkey",
        "hokusai_webhook_deliveries_event_id_fkey",
    ),
    (
        "hokusai_webhook_deliveries",
        "webhook_deliveries_endpoint_id_fkey",
        "hokusai_webhook_deliveries_endpoint_id_fkey",
    ),
    (
        "hokusai_webhook_attempts",
        "webhook_attempts_delivery_id_fkey",
        "hokusai_webhook_attempts_delivery_id_fkey",
    ),
)
SEQUENCES = (("webhook_attempts_id_seq", "hokusai_webhook_attempts_id_seq"),)


def upgrade() -> None:
    for old, new in TABLES:
        if _has_table(old) and not _has_table(new):
            op.rename_table(old, new)
    _rename_names(forward=True)


def downgrade() -> None:
    _rename_names(forward=False)  # while the tables still have their new names
    for old, new in TABLES:
        if _has_table(new) and not _has_table(old):
            op.rename_table(new, old)


def _rename_names(*, forward: bool) -> None:
    """The indexes, constraints and sequences of the renamed tables (which have their new
    names either way): to the new names, or back."""
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, old, new, columns in INDEXES:
        source, target = (old, new) if forward else (new, old)
        if not _has_index(table, source) or _has_index(table, target):
            continue
        if postgres:
            op.execute(f'ALTER INDEX "{source}" RENAME TO "{target}"')
        else:
            op.drop_index(source, table_name=table)
            op.create_index(target, table, columns)
    if not postgres:
        return
    for table, old, new in CONSTRAINTS:
        source, target = (old, new) if forward else (new, old)
        if _has_constraint(table, source) and not _has_constraint(table, target):
            op.execute(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{source}" TO "{target}"')
    for old, new in SEQUENCES:
        source, target = (old, new) if forward else (new, old)
        if _has_relation(source) and not _has_relation(target):
            op.execute(f'ALTER SEQUENCE "{source}" RENAME TO "{target}"')


def _has_table(name: str) -> bool:
    return sa.inspect(op.get_bind()).has_table(name)


def _has_index(table: str, name: str) -> bool:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table(table):
        return False
    return any(index["name"] == name for index in inspector.get_indexes(table))


def _has_constraint(table: str, name: str) -> bool:
    found = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "WHERE t.relname = :table AND c.conname = :name "
            "AND t.relnamespace = to_regnamespace(current_schema())"
        ),
        {"table": table, "name": name},
    )
    return found.first() is not None


def _has_relation(name: str) -> bool:
    found = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_class WHERE relname = :name "
            "AND relnamespace = to_regnamespace(current_schema())"
        ),
        {"name": name},
    )
    return found.first() is not None
