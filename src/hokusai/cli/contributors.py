"""``hokusai contributors``: what a data contributor's data has produced."""

from __future__ import annotations

import typer

from hokusai.cli._common import (
    JsonOption,
    console,
    fits,
    format_metrics,
    print_entries,
    print_json,
    reader,
    short_time,
)

app = typer.Typer(help="Models attributed to data contributors.", no_args_is_help=True)


@app.command("models")
def models(
    ctx: typer.Context,
    address: str = typer.Argument(
        ..., metavar="ADDRESS", help="Ethereum address, any letter case."
    ),
    as_json: bool = JsonOption,
) -> None:
    """List every model version attributed to ADDRESS."""
    from hokusai.registry.validation import normalize_contributor

    normalize_contributor(address)  # a malformed address fails before MLflow is imported
    found = reader(ctx).get_contributor_models(address)
    if as_json:
        print_json(found)
        return
    from rich.table import Table

    title = f"Models attributed to {address}"
    table = Table(title=title, title_justify="left")
    columns = ("model", "uuid", "improves", "delta", "registered")
    for column in columns:
        table.add_column(column, overflow="fold")
    rows = [
        [
            entry["model_id"],
            entry["model_uuid"] or "—",
            entry["baseline_id"] or "—",
            format_metrics(entry["delta_metrics"]),
            short_time(entry["registration_timestamp"]),
        ]
        for entry in found
    ]
    for row in rows:
        table.add_row(*row)
    if fits(table):
        console.print(table)
    else:  # too narrow for the table (80 columns): one block per version
        print_entries(
            title, [(0, row[0], list(zip(columns[1:], row[1:], strict=True))) for row in rows]
        )
    console.print(f"{len(found)} version(s).")
