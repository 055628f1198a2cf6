"""``hokusai models``: look up registered versions, move their aliases."""

from __future__ import annotations

import re
from typing import Any

import typer

from hokusai.cli._common import (
    JsonOption,
    console,
    fits,
    format_metrics,
    key_value_table,
    print_entries,
    print_json,
    reader,
    registry,
    short_address,
    short_time,
)
from hokusai.cli._errors import hinted
from hokusai.errors import InvalidModelIdError, ModelNotFoundError

app = typer.Typer(
    help="Look up registered model versions; promote or demote them with aliases.",
    no_args_is_help=True,
)

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
# A logged model's id (m-…), or the bare 32 hex digits the pre-upgrade code stored.
_UUID_RE = re.compile(r"(m-)?[0-9a-f]{32}")
_FORMS = "a model uuid (m- and 32 hex digits) nor a model id '{model_name}/{version}'"


@app.command("get")
def get(
    ctx: typer.Context,
    model: str = typer.Argument(
        ...,
        metavar="MODEL",
        help="The model uuid (m-…) from a registration, or '{model_name}/{version}'.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Show one registered version: by MODEL uuid (m-…) or by model id (name/version)."""
    found: Any
    if "/" in model:
        from hokusai.registry.validation import parse_model_id

        name, version = parse_model_id(model)
        read = reader(ctx)
        indexed = read.get_model(f"{name}/{version}")
        if indexed is not None:
            _show(indexed, as_json)
            return
        queries = read.registry().queries
        record = queries.resolve(f"{name}/{version}")
        if not record.is_hokusai:
            raise ModelNotFoundError(
                f"Model {record.model_id} exists in MLflow but was not registered by Hokusai."
            )
        found = queries.describe(record)
    elif _UUID_RE.fullmatch(model):
        found = reader(ctx).get_model_by_uuid(model)
        if found is None:
            raise ModelNotFoundError(f"No registered model has uuid {model!r}.")
    else:
        raise hinted(
            InvalidModelIdError(f"{model!r} is neither {_FORMS}."),
            "e.g. hokusai models get m-299289973cc1492eb3d0913321995c13, or "
            "hokusai models get hokusai_iris_improved/1",
        )
    _show(found, as_json)


def _show(found: Any, as_json: bool) -> None:
    if as_json:
        print_json(found)
    else:
        console.print(key_value_table(found["model_id"], found, _GET_FIELDS))


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    model_id: str = typer.Argument(
        ..., metavar="MODEL_ID", help="'{model_name}/{version}', or a model name."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Show the baseline of MODEL_ID's family and every improvement built on it."""
    from hokusai.registry.validation import MODEL_NAME_RE, parse_model_id

    if "/" in model_id or not MODEL_NAME_RE.fullmatch(model_id):
        parse_model_id(model_id)  # malformed input fails before MLflow is imported
    entries = reader(ctx).get_model_lineage(model_id)
    if as_json:
        print_json(entries)
        return
    from rich.table import Table

    title = f"Lineage of {model_id}"
    table = Table(title=title, title_justify="left")
    for column in ("model", "uuid", "contributor", "delta", "cumulative", "registered"):
        table.add_column(column, overflow="fold")
    rows = []
    for entry in entries:
        cumulative = {
            k: v for k, v in entry["cumulative_improvement"].items() if k != "total_improvements"
        }
        row = {
            "uuid": entry["model_uuid"] or "—",
            "contributor": "baseline" if entry["is_baseline"] else entry["contributor"] or "—",
            "delta": format_metrics(entry["delta_metrics"]),
            "cumulative": format_metrics(cumulative),
            "registered": short_time(entry["registration_timestamp"]),
        }
        rows.append((entry["depth"], entry["model_id"], row))
        table.add_row(
            "  " * entry["depth"] + entry["model_id"],
            row["uuid"],
            "baseline" if entry["is_baseline"] else short_address(entry["contributor"]),
            *(row[name] for name in ("delta", "cumulative", "registered")),
        )
    if fits(table):
        console.print(table)
        return
    # Too narrow for the table (80 columns): one block per version, indented by depth.
    print_entries(
        title,
        [
            (
                depth,
                model,
                [
                    (name, value)
                    for name, value in row.items()
                    if not (row["contributor"] == "baseline" and name in ("delta", "cumulative"))
                ],
            )
            for depth, model, row in rows
        ],
    )


@app.command("promote")
def promote(
    ctx: typer.Context,
    model_id: str = typer.Argument(
        ..., metavar="MODEL_ID", help="The version to point the alias at: '{model_name}/{version}'."
    ),
    alias: str = typer.Option(..., "--alias", help="The alias to move, e.g. champion."),
    as_json: bool = JsonOption,
) -> None:
    """Point ALIAS of MODEL_ID's model at that version (promote, or roll back to an older one);
    announces model_promoted."""
    from hokusai.registry.validation import parse_model_id, validate_alias

    name, version = parse_model_id(model_id)
    validate_alias(alias)
    change = registry(ctx).set_alias(name, alias, version)
    if as_json:
        print_json(change)
        return
    previous = change["previous_version"]
    was = f"version {previous}" if previous is not None else "unset"
    console.print(
        f"{name}@{alias}: {was} → version {change['version']}",
        highlight=False,
    )


@app.command("demote")
def demote(
    ctx: typer.Context,
    name: str = typer.Argument(
        ..., metavar="NAME", help="The registered model's name, e.g. hokusai_fraud_baseline."
    ),
    alias: str = typer.Option(..., "--alias", help="The alias to remove, e.g. champion."),
    as_json: bool = JsonOption,
) -> None:
    """Remove ALIAS from model NAME (what it pointed at stays registered)."""
    from hokusai.registry.validation import validate_alias

    if "/" in name:
        raise hinted(
            InvalidModelIdError(f"demote takes a model name, not a version: got {name!r}."),
            f"hokusai models demote {name.split('/', 1)[0]} --alias {alias}",
        )
    validate_alias(alias)
    removed = registry(ctx).delete_alias(name, alias)
    if as_json:
        print_json(removed)
        return
    console.print(
        f"{name}@{alias} removed (it pointed at version {removed['previous_version']})",
        highlight=False,
    )
