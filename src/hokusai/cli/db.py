"""``hokusai db``: the schema of the project database (``HOKUSAI_DATABASE_URL``).

Every process migrates on first use by default (serialised across processes). Deployments that
migrate once before starting replicas run ``hokusai db upgrade`` and give the replicas
``HOKUSAI_DATABASE_AUTO_MIGRATE=false``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from hokusai.cli._common import CliState, JsonOption, print_json

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(
    help="The project database (HOKUSAI_DATABASE_URL): schema revision and migrations.",
    no_args_is_help=True,
)


def _engine(ctx: typer.Context) -> Engine:
    from hokusai.db import database_engine

    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    return database_engine(state.settings().resolved_database_url)


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Bring the schema to head. Safe beside starting replicas: migrations are serialised."""
    from hokusai.db import upgrade_database

    engine = _engine(ctx)
    try:
        found = upgrade_database(engine)
    finally:
        engine.dispose()
    before = found.current or found.legacy
    if as_json:
        print_json(
            {
                "database": _where(engine),
                "from": before,
                "head": found.head,
                "upgraded": not found.up_to_date,
            }
        )
    elif found.up_to_date:
        typer.echo(f"{_where(engine)}: already at head {found.head}")
    else:
        typer.echo(f"{_where(engine)}: upgraded from {before or 'empty'} to {found.head}")


@app.command("current")
def current(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Print the schema's revision and the head this Hokusai needs (changes nothing)."""
    from hokusai.db import database_revisions

    engine = _engine(ctx)
    try:
        found = database_revisions(engine)
    finally:
        engine.dispose()
    values: dict[str, Any] = {
        "database": _where(engine),
        "current": found.current,
        "head": found.head,
        "up_to_date": found.up_to_date,
    }
    if found.legacy is not None:
        values["legacy"] = found.legacy
    if as_json:
        print_json(values)
        return
    typer.echo(f"database  {values['database']}")
    shown = found.current or (f"{found.legacy} (in alembic_version)" if found.legacy else None)
    typer.echo(f"current   {shown or 'none (empty)'}")
    typer.echo(f"head      {found.head}")
    status = "up to date" if found.up_to_date else "behind: run `hokusai db upgrade`"
    typer.echo(f"status    {status}")
