"""``hokusai verifications``: the queue of verifications asked for over the API, and its worker.

(``hokusai verify`` runs one verification in the foreground; this is the asynchronous side.)
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import typer
from rich.table import Table

from hokusai.cli._common import CliState, JsonOption, console, print_json, registry, stop_on_signals

app = typer.Typer(
    help="Verifications asked for over the API: list, show, and the evaluation worker.",
    no_args_is_help=True,
)

STATES = ["queued", "running", "succeeded", "failed"]


def _jobs(ctx: typer.Context) -> Any:
    from hokusai.db import open_database
    from hokusai.jobs import VerificationJobs

    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    settings = state.settings()
    return VerificationJobs(
        open_database(settings.resolved_database_url, migrate=settings.database_auto_migrate)
    )


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds")


def _public(job: Any) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status,
        "candidate_id": job.candidate_id,
        "benchmark": job.benchmark,
        "threshold_bps": job.threshold_bps,
        "seed": job.seed,
        "n_boot": job.n_boot,
        "attempts": job.attempts,
        "error_code": job.error_code,
        "error_message": job.error_message,
        "lease_owner": job.lease_owner,
        "requested_by": job.requested_by,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    candidate: str | None = typer.Option(None, "--candidate", help="Only this candidate id."),
    state: str | None = typer.Option(
        None, "--state", help=f"Only this state: {', '.join(STATES)}."
    ),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    as_json: bool = JsonOption,
) -> None:
    """Verifications asked for, newest first."""
    from hokusai.errors import ValidationError

    if state is not None and state not in STATES:
        raise ValidationError(f"--state must be one of {', '.join(STATES)}; got {state!r}.")
    found = [
        _public(job) for job in _jobs(ctx).list(candidate_id=candidate, status=state, limit=limit)
    ]
    if as_json:
        print_json(found)
        return
    table = Table(title="Verifications", title_justify="left")
    for column in ("id", "status", "candidate", "benchmark", "attempts", "created", "error"):
        table.add_column(column, overflow="fold")
    for job in found:
        table.add_row(
            job["id"],
            job["status"],
            job["candidate_id"],
            job["benchmark"],
            str(job["attempts"]),
            (job["created_at"] or "—")[:19].replace("T", " "),
            job["error_code"] or "—",
        )
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    verification_id: str = typer.Argument(..., help="The verification's id (ver_…)."),
    as_json: bool = JsonOption,
) -> None:
    """One verification asked for: its state, attempts and error."""
    job = _public(_jobs(ctx).get(verification_id))
    if as_json:
        print_json(job)
        return
    width = max(len(key) for key in job)
    for key, value in job.items():
        typer.echo(f"{key.ljust(width)}  {'—' if value is None else value}")


@app.command("worker")
def worker(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="Evaluate what is due now, then exit."),
) -> None:
    """Evaluate queued verifications, forever, until SIGTERM/SIGINT (the one in evaluation is
    finished first; then exit 0). For an evaluation replica: run the API with
    HOKUSAI_VERIFY_BACKGROUND=false and as many of these as there are cores to spare."""
    import logging

    from hokusai.config import mask_secrets
    from hokusai.jobs import VerificationRunner
    from hokusai.jobs.runner import owner_name

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    jobs = _jobs(ctx)
    reg = registry(ctx)
    settings = reg.settings
    runner = VerificationRunner(
        jobs,
        reg,
        lease_seconds=settings.verify_lease_seconds,
        retry_delay=settings.verify_retry_seconds,
        owner=owner_name("worker"),
    )
    if once:
        while runner.run_once() is not None:
            pass
        return
    stop = stop_on_signals("the verification in hand")
    logging.getLogger(__name__).info(
        "verification worker %s evaluating from %s",
        runner.owner,
        mask_secrets(settings.resolved_database_url),
    )
    runner.run(stop, poll_seconds=settings.verify_poll_seconds)
