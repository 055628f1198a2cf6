"""Helpers shared by the CLI sub-apps: building the registry and printing results.

Nothing here imports MLflow, SQLAlchemy or the settings at import time: ``hokusai --help``
builds every sub-app, and a read command pays only for what it uses.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import signal
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.table import Table

    from hokusai.config import Settings
    from hokusai.registry import ModelRegistry
    from hokusai.services.model_registry import HokusaiModelRegistry

console = Console()
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")

# Loggers whose INFO lines are noise on a terminal unless --verbose: MLflow's own, and
# Alembic's ("setup plugin …", "Context impl SQLiteImpl.") when a command opens a database.
_CHATTY_LOGGERS = ("mlflow", "alembic")


def _show_flags_as_flags() -> None:
    """Typer's rich help prints a value type beside every option, flags included
    (``--json <bool>``, even ``--help <bool>``), although a flag takes no value; its plain help
    leaves flags bare. Make the rich help do the same, for every command."""
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover - another typer layout
        return
    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "hokusai_flags", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) and not getattr(self, "count", False):
            return None
        result: str | None = shown(self, ctx)
        return result

    display_type_rich.hokusai_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_show_flags_as_flags()


@dataclass
class CliState:
    """Options given before the sub-command (``hokusai --home DIR models …``)."""

    home: str | None = None
    tracking_uri: str | None = None
    verbose: bool = False

    def settings(self) -> Settings:
        from hokusai.config import get_settings

        overrides: dict[str, Any] = {}
        if self.home:
            overrides["home"] = self.home
        if self.tracking_uri:
            overrides["tracking_uri"] = self.tracking_uri
        return get_settings(**overrides)


def state_of(ctx: typer.Context) -> CliState:
    """The global options of this invocation (defaults when run without the root app)."""
    obj = getattr(ctx, "obj", None)  # a sub-command's context inherits the root's object
    return obj if isinstance(obj, CliState) else CliState()


def quiet_output(verbose: bool) -> None:
    """Unless ``--verbose``: no Python warnings (MLflow's, scikit-learn's, pydantic's) and no
    INFO lines from MLflow or Alembic; the CLI's own output says what matters."""
    level = logging.INFO if verbose else logging.WARNING
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if not verbose:
        warnings.simplefilter("ignore")


# MLflow retries a failed HTTP request 7 times with exponential backoff (minutes, for a
# server that rate-limits); a command someone waits on gives up on an unreachable tracking
# server within seconds instead. Set by the ``hokusai`` process (main()); variables the user set
# win.
MLFLOW_CLI_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


def quiet_mlflow(ctx: typer.Context) -> None:
    """Import MLflow (which sets up its loggers) and quiet it unless ``--verbose``."""
    import mlflow  # noqa: F401 - configures MLflow's loggers on import; adjusted below

    quiet_output(state_of(ctx).verbose)


def reader(ctx: typer.Context) -> Reader:
    """What read commands read with: the registry index alone when it can answer without MLflow
    (built, and MLflow unchanged since its last sync — no MLflow import, a fraction of a second),
    else the bare library (which syncs the index first, and announces nothing, so never imports
    the webhook layer)."""
    return Reader(ctx)


class Reader:
    """The registry's read methods, from the index when possible, from the library otherwise."""

    def __init__(self, ctx: typer.Context) -> None:
        self._ctx = ctx
        self._settings = state_of(ctx).settings()
        self._registry: ModelRegistry | None = None
        self._index: Any = None
        self._index_tried = False

    def registry(self) -> ModelRegistry:
        if self._registry is None:
            from hokusai.registry import ModelRegistry

            quiet_mlflow(self._ctx)
            self._registry = ModelRegistry(settings=self._settings)
        return self._registry

    def _fast(self) -> Any:
        if not self._index_tried:
            self._index_tried = True
            from hokusai.registry.index import open_fast_index

            quiet_output(state_of(self._ctx).verbose)
            try:
                self._index = open_fast_index(self._settings)
            except Exception:  # noqa: BLE001 - the library path reports what is wrong
                self._index = None
        return self._index

    def get_model_by_uuid(self, model_uuid: str) -> Any:
        index = self._fast()
        found = index.by_uuid(model_uuid) if index is not None else None
        return found if found is not None else self.registry().get_model_by_uuid(model_uuid)

    def get_model(self, model_id: str) -> Any:
        index = self._fast()
        found = index.get(model_id) if index is not None else None
        return found if found is not None else None

    def get_model_lineage(self, model_id: str) -> Any:
        index = self._fast()
        found = index.lineage(model_id) if index is not None else None
        return found if found is not None else self.registry().get_model_lineage(model_id)

    def get_contributor_models(self, address: str) -> Any:
        index = self._fast()
        if index is not None:
            return index.contributor_models(address)
        return self.registry().get_contributor_models(address)


def registry(ctx: typer.Context) -> HokusaiModelRegistry:
    """The registry configured from the environment and the global options, announcing
    registrations and alias moves through the webhook layer."""
    from hokusai.services.model_registry import HokusaiModelRegistry

    quiet_mlflow(ctx)
    return HokusaiModelRegistry(settings=state_of(ctx).settings())


@contextlib.contextmanager
def quiet_stderr(ctx: typer.Context) -> Iterator[None]:
    """Unless ``--verbose``, swallow what MLflow prints straight to stderr meanwhile
    ("Successfully registered model …"); errors still surface as exceptions."""
    if state_of(ctx).verbose:
        yield
        return
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def stop_on_signals(finishing: str) -> threading.Event:
    """An event a foreground worker's loop watches, set by SIGTERM or SIGINT (which log that
    the worker is ``finishing`` what it holds, then stop it)."""
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: finishing %s", signum, finishing)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop


def print_json(value: Any) -> None:
    """JSON on stdout, unwrapped, for scripts."""
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def key_value_table(title: str, values: Mapping[str, Any], keys: list[str]) -> Table:
    """A two-column table of the chosen keys."""
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold cyan")
    table.add_column("value", overflow="fold")
    for key in keys:
        value = values.get(key)
        if isinstance(value, dict | list):
            value = json.dumps(value, sort_keys=True) if value else "—"
        table.add_row(key, "—" if value is None else str(value))
    return table


def fits(table: Table) -> bool:
    """Whether ``table`` fits the terminal without wrapping any cell."""
    from rich.measure import Measurement

    unbounded = console.options.update(max_width=10_000)
    return Measurement.get(console, unbounded, table).maximum <= console.width


def print_entries(title: str, entries: list[tuple[int, str, list[tuple[str, str]]]]) -> None:
    """A narrow-terminal layout for tables too wide to read: each entry's heading line, then
    its fields one per line (``indent`` levels of two spaces)."""
    from rich.markup import escape

    console.print(title, highlight=False)
    for indent, heading, fields in entries:
        pad = "  " * indent
        console.print(f"{pad}• [bold]{escape(heading)}[/bold]", highlight=False)
        width = max((len(name) for name, _ in fields), default=0)
        for name, value in fields:
            console.print(f"{pad}    {name.ljust(width)}  {escape(value)}", highlight=False)


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
