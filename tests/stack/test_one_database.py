"""MLflow and Hokusai in one PostgreSQL database, as the deployment runs them.

The stack makes each mode's database in a different order (``TrackingServer.first``): the
proxied server's got Hokusai's schema before ``mlflow server`` first migrated it, the direct
one's got MLflow's first and Hokusai's at the first registration. Both must hold both schemas,
each with its own Alembic version table, and every relation of Hokusai's — table, index,
sequence — must carry the ``hokusai_`` prefix, so no MLflow upgrade can ever collide with it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hokusai.db import VERSION_TABLE, database_revisions, open_database
from hokusai.services.model_registry import HokusaiModelRegistry


def _relations(url: str) -> set[str]:
    """Every table, index and sequence of the database's public schema."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                    "AND c.relkind IN ('r', 'i', 'S')"
                )
            )
            return {str(name) for name in rows.scalars()}
    finally:
        engine.dispose()


def _hokusai_relations(stack: Any) -> set[str]:
    """The relations Hokusai's migrations make, measured on a database of their own."""
    from tests.stack.stack import migrate_hokusai

    alone = stack.create_database("alone")
    try:
        migrate_hokusai(alone)
        return _relations(alone)
    finally:
        stack.drop_database(alone)


def test_both_schemas_live_in_one_database_in_either_start_order(
    stack_settings, tracking, loopback_stack, logistic, model_type
):
    registry = HokusaiModelRegistry(settings=stack_settings)
    result = registry.register_baseline(logistic, model_type)
    assert registry.get_model_by_uuid(result["model_uuid"]) is not None

    engine = open_database(tracking.database_url)
    revisions = database_revisions(engine)
    assert revisions.up_to_date
    with engine.connect() as conn:
        # MLflow's history is untouched in its own table, Hokusai's in its own.
        mlflow_heads = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        assert [head for head in mlflow_heads if head.isdigit() and len(head) == 4] == []
        hokusai_heads = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))
        assert list(hokusai_heads.scalars()) == [revisions.head]
        events = conn.execute(
            sa.text("SELECT count(*) FROM hokusai_webhook_events WHERE model_name = :name"),
            {"name": result["model_name"]},
        ).scalar_one()
    assert events == 1

    ours = _hokusai_relations(loopback_stack)
    assert ours, "Hokusai's migrations made no relation"
    assert sorted(name for name in ours if not name.startswith("hokusai_")) == []
    shared = _relations(tracking.database_url)
    assert ours <= shared
    mlflow_side = shared - ours
    assert "registered_models" in mlflow_side and "alembic_version" in mlflow_side
    assert sorted(name for name in mlflow_side if name.startswith("hokusai_")) == []
