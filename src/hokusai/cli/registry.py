"""``hokusai registry``: maintenance of the registry itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from hokusai.cli._common import JsonOption, console, print_json, registry

if TYPE_CHECKING:
    from hokusai.registry.index import RegistryIndex

app = typer.Typer(help="Registry maintenance.", no_args_is_help=True)


@app.command("backfill")
def backfill(
    ctx: typer.Context,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Report what would change; write nothing."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Add uuid and hokusai.* tags to versions registered by the pre-upgrade code."""
    reg = registry(ctx)
    with Progress(
        TextColumn("[bold]backfill"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=as_json,
        disable=as_json,
    ) as progress:
        task = progress.add_task("versions", total=None)
        report = reg.backfill(
            dry_run=dry_run,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(report.to_dict())
    else:
        verb = "would tag" if dry_run else "tagged"
        for model_id, tags in report.updated.items():
            console.print(f"{verb} {model_id} [dim]{tags.get('hokusai.model_uuid')}[/dim]")
        for model_id, reason in report.failed.items():
            console.print(f"[red]failed[/red] {model_id}: {reason}")
        console.print(
            f"scanned {report.scanned}: {verb} {len(report.updated)}, "
            f"already tagged {report.already_tagged}, not Hokusai {report.not_hokusai}, "
            f"failed {len(report.failed)}"
        )
    if report.failed:
        raise typer.Exit(1)


def _index(ctx: typer.Context) -> RegistryIndex:
    from hokusai.cli._errors import CliError

    index = registry(ctx).index
    if index is None:
        raise CliError(
            "index_disabled",
            "the registry index is off (HOKUSAI_REGISTRY_INDEX=false)",
            hint="unset HOKUSAI_REGISTRY_INDEX to use it",
        )
    return index


@app.command("reindex")
def reindex(
    ctx: typer.Context,
    restart: bool = typer.Option(
        False, "--restart", help="Start over instead of resuming an interrupted rebuild."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Rebuild the registry index from MLflow (resumable; one page in memory at a time)."""
    index = _index(ctx)
    with Progress(
        TextColumn("[bold]reindex[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task("", total=None)
        report = index.reindex(
            restart=restart,
            on_progress=lambda name, done, total: progress.update(
                task, description=name, completed=done, total=total
            ),
        )
    if as_json:
        print_json(report.to_dict())
        return
    resumed = f" (resumed after {report.resumed_from})" if report.resumed_from else ""
    console.print(
        f"reindexed {report.models} models{resumed}: {report.versions_seen} versions read, "
        f"{report.indexed} indexed, {report.removed} removed; the index answers reads"
    )


@app.command("check")
def check(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Compare the registry index with MLflow; exit 1 on any drift."""
    index = _index(ctx)
    with Progress(
        TextColumn("[bold]check[/bold] {task.description}"),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task("", total=None)
        report = index.check(
            on_progress=lambda name, done, total: progress.update(
                task, description=name, completed=done, total=total
            )
        )
    if as_json:
        print_json(report.to_dict())
    else:
        if not report.built:
            console.print("the index is not built: run `hokusai registry reindex`")
        for label, items in (
            ("missing from the index", report.missing),
            ("in the index, not in MLflow", report.extra),
            ("different", report.different),
            ("alias", report.aliases),
        ):
            for item in items:
                console.print(f"[red]{label}[/red] {item}")
        if report.clean:
            console.print("the index agrees with MLflow")
    if not report.clean:
        raise typer.Exit(1)
