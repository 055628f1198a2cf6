"""``hokusai models``: look up registered versions."""

from __future__ import annotations

import typer
from rich.table import Table

from hokusai.cli._common import (
    JsonOption,
    console,
    format_metrics,
    key_value_table,
    print_json,
    registry,
    short_address,
    short_time,
)
from hokusai.errors import ModelNotFoundError

app = typer.Typer(help="Look up registered model versions.", no_args_is_help=True)

_GET_FIELDS = [
    "model_id",
    "model_uuid",
    "model_uri",
    "model_type",
    "is_baseline",
    "baseline_id",
    "contributor",
    "delta_metrics",
    "run_id",
    "stage",
    "aliases",
    "flavors",
    "registration_timestamp",
    "git_commit",
    "metadata",
]


@app.command("get")
def get(
    ctx: typer.Context,
    model_uuid: str = typer.Argument(..., help="The model uuid (m-…) from a registration."),
    as_json: bool = JsonOption,
) -> None:
    """Show the version registered from MODEL_UUID."""
    found = registry(ctx).get_model_by_uuid(model_uuid)
    if found is None:
        raise ModelNotFoundError(f"No registered model has uuid {model_uuid!r}.")
    if as_json:
        print_json(found)
    else:
        console.print(key_value_table(found["model_id"], found, _GET_FIELDS))


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="'{model_name}/{version}', or a model name."),
    as_json: bool = JsonOption,
) -> None:
    """Show the baseline of MODEL_ID's family and every improvement built on it."""
    entries = registry(ctx).get_model_lineage(model_id)
    if as_json:
        print_json(entries)
        return
    table = Table(title=f"Lineage of {model_id}", title_justify="left")
    for column in ("model", "uuid", "contributor", "delta", "cumulative", "registered"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        cumulative = {
            k: v for k, v in entry["cumulative_improvement"].items() if k != "total_improvements"
        }
        table.add_row(
            "  " * entry["depth"] + entry["model_id"],
            entry["model_uuid"] or "—",
            "baseline" if entry["is_baseline"] else short_address(entry["contributor"]),
            format_metrics(entry["delta_metrics"]),
            format_metrics(cumulative),
            short_time(entry["registration_timestamp"]),
        )
    console.print(table)
