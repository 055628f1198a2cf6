"""Helpers shared by the CLI sub-apps: building the registry and printing results."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from hokusai.config import Settings, get_settings

if TYPE_CHECKING:
    from hokusai.services.model_registry import HokusaiModelRegistry

console = Console()
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


@dataclass
class CliState:
    """Options given before the sub-command (``hokusai --home DIR models …``)."""

    home: str | None = None
    tracking_uri: str | None = None
    verbose: bool = False

    def settings(self) -> Settings:
        overrides: dict[str, Any] = {}
        if self.home:
            overrides["home"] = self.home
        if self.tracking_uri:
            overrides["tracking_uri"] = self.tracking_uri
        return get_settings(**overrides)


def registry(ctx: typer.Context) -> HokusaiModelRegistry:
    """The registry configured from the environment and the global options."""
    import mlflow  # noqa: F401 - configures MLflow's loggers on import; adjusted below

    from hokusai.services.model_registry import HokusaiModelRegistry

    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    # MLflow configures its logger at INFO when imported (schema migrations and the like);
    # the CLI's own output says what matters unless --verbose.
    logging.getLogger("mlflow").setLevel(logging.INFO if state.verbose else logging.WARNING)
    return HokusaiModelRegistry(settings=state.settings())


def print_json(value: Any) -> None:
    """JSON on stdout, unwrapped, for scripts."""
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def key_value_table(title: str, values: Mapping[str, Any], keys: list[str]) -> Table:
    """A two-column table of the chosen keys."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold cyan")
    table.add_column("value", overflow="fold")
    for key in keys:
        value = values.get(key)
        if isinstance(value, dict | list):
            value = json.dumps(value, sort_keys=True) if value else "—"
        table.add_row(key, "—" if value is None else str(value))
    return table


def short_address(address: str | None) -> str:
    """``0x5aAe…BeAed``: enough to recognise an address in a table."""
    if not address:
        return "—"
    return f"{address[:6]}…{address[-5:]}"


def short_time(timestamp: str | None) -> str:
    """ISO timestamp to the second, without the UTC offset."""
    return timestamp[:19].replace("T", " ") if timestamp else "—"


def format_metrics(metrics: dict[str, float] | None) -> str:
    """``accuracy=+0.0200, f1=+0.0100`` style."""
    if not metrics:
        return "—"
    return " ".join(f"{k}={v:+.4f}" for k, v in sorted(metrics.items()))
