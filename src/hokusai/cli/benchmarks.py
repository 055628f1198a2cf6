"""``hokusai benchmarks``: add, list and show the datasets improvements are measured on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from hokusai.cli._common import (
    JsonOption,
    console,
    key_value_table,
    print_json,
    quiet_mlflow,
    short_time,
    state_of,
)

if TYPE_CHECKING:
    from hokusai.registry.benchmarks import Benchmark, BenchmarkStore

app = typer.Typer(
    help="Benchmarks: named, immutable evaluation datasets stored in MLflow.",
    no_args_is_help=True,
)

_SHOW_FIELDS = [
    "content_hash",
    "target",
    "metric",
    "direction",
    "guardrails",
    "num_rows",
    "columns",
    "artifact_uri",
    "dataset_digest",
    "run_id",
    "created_at",
]
GuardrailOption = typer.Option(
    None,
    "--guardrail",
    metavar="METRIC:TOLERANCE",
    help="How much worse than the baseline a candidate may be on METRIC (repeatable).",
)


def _store(ctx: typer.Context) -> BenchmarkStore:
    from hokusai.registry.benchmarks import BenchmarkStore

    quiet_mlflow(ctx)
    return BenchmarkStore(state_of(ctx).settings())


def _show(benchmark: Benchmark, as_json: bool) -> None:
    if as_json:
        print_json(benchmark.to_dict())
    else:
        console.print(key_value_table(benchmark.name, benchmark.to_dict(), _SHOW_FIELDS))


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The benchmark's name, e.g. churn-v1."),
    data: str = typer.Option(..., "--data", help="The rows: a .csv or .parquet file."),
    target: str = typer.Option(..., "--target", help="The column models must predict."),
    metric: str = typer.Option(
        ...,
        "--metric",
        help="accuracy, balanced_accuracy, f1, roc_auc, log_loss, rmse or mae.",
    ),
    direction: str | None = typer.Option(
        None,
        "--direction",
        help="higher or lower is better. Default: higher for accuracy, balanced_accuracy, f1 "
        "and roc_auc; lower for log_loss, rmse and mae.",
    ),
    guardrail: list[str] | None = GuardrailOption,
    as_json: bool = JsonOption,
) -> None:
    """Add benchmark NAME from a CSV or Parquet file. The same content again (any row order,
    either format) returns the stored benchmark; other content under NAME is refused."""
    from hokusai.registry.benchmarks import check_definition, read_frame

    # Bad input fails before MLflow is imported or a store is created.
    check_definition(name, metric, direction, guardrail or ())
    read_frame(data)
    benchmark = _store(ctx).add(name, data, target, metric, direction, guardrail or ())
    _show(benchmark, as_json)


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List every benchmark."""
    benchmarks = _store(ctx).list()
    if as_json:
        print_json([b.to_dict() for b in benchmarks])
        return
    if not benchmarks:
        console.print("No benchmarks.")
        return
    from rich.table import Table

    table = Table(title="Benchmarks", title_justify="left")
    for column in ("name", "metric", "direction", "rows", "content hash", "added"):
        table.add_column(column, overflow="fold")
    for b in benchmarks:
        table.add_row(
            b.name,
            b.metric,
            b.direction,
            str(b.num_rows),
            f"{b.content_hash[:14]}…",
            short_time(b.created_at),
        )
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The benchmark's name."),
    as_json: bool = JsonOption,
) -> None:
    """Show benchmark NAME: its definition, content hash and where its rows are."""
    _show(_store(ctx).get(name), as_json)
