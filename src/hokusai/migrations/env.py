"""Alembic environment: runs on the connection handed over by ``hokusai.db``.

Hokusai's history has its own version table, so it can share a database with MLflow's
(which uses Alembic's default ``alembic_version``).
"""

from __future__ import annotations

from alembic import context

from hokusai.db import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
