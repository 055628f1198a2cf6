"""``hokusai keys``: create, list and revoke the API keys of the REST service."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from hokusai.cli._common import CliState, JsonOption, console, print_json, short_time

if TYPE_CHECKING:
    from hokusai.auth.keys import ApiKeyStore

app = typer.Typer(help="API keys of the REST service.", no_args_is_help=True)


def _store(ctx: typer.Context) -> ApiKeyStore:
    from hokusai.auth.keys import ApiKeyStore
    from hokusai.db import open_database

    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    settings = state.settings()
    return ApiKeyStore(
        open_database(settings.resolved_database_url, migrate=settings.database_auto_migrate)
    )


@app.command("create")
def create(
    ctx: typer.Context,
    scope: str = typer.Option(..., "--scope", help="read | write | admin (admin ⊃ write ⊃ read)."),
    name: str = typer.Option(..., "--name", help="What the key is for (1–64 characters)."),
    as_json: bool = JsonOption,
) -> None:
    """Create a key. It is printed once, now, and cannot be shown again."""
    key, plaintext = _store(ctx).create(name=name, scope=scope)
    if as_json:
        print_json({**key.public(), "key": plaintext})
        return
    console.print(f"created API key [bold]{key.id}[/bold] {key.name!r} (scope {key.scope})")
    console.print("key (shown once, store it now; it cannot be recovered):")
    # Plain echo: the key must stay on one line, unwrapped and unstyled, to be copied whole.
    typer.echo(plaintext)


@app.command("list")
def list_keys(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List keys with their scope and last use (the keys themselves are never shown)."""
    found = _store(ctx).list()
    if as_json:
        print_json([key.public() for key in found])
        return
    table = Table(title="API keys", title_justify="left")
    for column in ("id", "name", "scope", "created", "last used", "status"):
        table.add_column(column, overflow="fold")
    for key in found:
        status = "active" if key.active else f"revoked {short_time(_iso(key.revoked_at))}"
        table.add_row(
            key.id,
            key.name,
            key.scope,
            short_time(_iso(key.created_at)),
            short_time(_iso(key.last_used_at)),
            status,
        )
    console.print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: str = typer.Argument(..., help="Key id (the 12 characters after 'hk_')."),
    as_json: bool = JsonOption,
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    key = _store(ctx).revoke(key_id)
    if as_json:
        print_json(key.public())
        return
    console.print(f"revoked API key {key.id} {key.name!r}")


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()
