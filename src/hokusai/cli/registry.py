"""``hokusai registry``: maintenance of the registry itself."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from hokusai.cli._common import JsonOption, console, print_json, registry

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
