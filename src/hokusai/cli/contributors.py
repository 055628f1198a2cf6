"""``hokusai contributors``: what a data contributor's data has produced."""

from __future__ import annotations

import typer
from rich.table import Table

from hokusai.cli._common import (
    JsonOption,
    console,
    format_metrics,
    print_json,
    registry,
    short_time,
)

app = typer.Typer(help="Models attributed to data contributors.", no_args_is_help=True)


@app.command("models")
def models(
    ctx: typer.Context,
    address: str = typer.Argument(..., help="Ethereum address, any letter case."),
    as_json: bool = JsonOption,
) -> None:
    """List every model version attributed to ADDRESS."""
    found = registry(ctx).get_contributor_models(address)
    if as_json:
        print_json(found)
        return
    table = Table(title=f"Models attributed to {address}", title_justify="left")
    for column in ("model", "uuid", "improves", "delta", "registered"):
        table.add_column(column, overflow="fold")
    for entry in found:
        table.add_row(
            entry["model_id"],
            entry["model_uuid"] or "—",
            entry["baseline_id"] or "—",
            format_metrics(entry["delta_metrics"]),
            short_time(entry["registration_timestamp"]),
        )
    console.print(table)
    console.print(f"{len(found)} version(s).")
