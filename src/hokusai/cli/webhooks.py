"""``hokusai webhooks``: endpoints, the delivery log, redelivery, replay and the worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer
from rich.table import Table

from hokusai.cli._common import (
    CliState,
    JsonOption,
    console,
    print_json,
    registry,
    short_time,
    stop_on_signals,
)
from hokusai.cli._errors import hinted
from hokusai.errors import NotFoundError, ValidationError

app = typer.Typer(
    help="Webhook endpoints, deliveries and the delivery worker.", no_args_is_help=True
)

STATES = ["pending", "delivering", "delivered", "failed", "dead"]

EventTypeOption: Any = typer.Option(None, "--event-type", help="Only this event type (repeatable).")


def _webhooks(ctx: typer.Context) -> Any:
    from hokusai.webhooks.hub import Webhooks

    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    return Webhooks(state.settings())


@app.command("add")
def add(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="https URL of the receiver."),
    events: str = typer.Option("*", "--events", help="Comma-separated event types, or '*'."),
    secret: str | None = typer.Option(
        None, "--secret", help="Signing secret (whsec_…); generated when omitted."
    ),
    description: str | None = typer.Option(None, "--description"),
    as_json: bool = JsonOption,
) -> None:
    """Subscribe URL to events. The secret is printed once, now, and never again."""
    endpoint, chosen_secret = _webhooks(ctx).add_endpoint(
        url, events=events, secret=secret, description=description
    )
    if as_json:
        print_json({**endpoint.public(), "secret": chosen_secret})
        return
    console.print(f"added endpoint [bold]{endpoint.id}[/bold] → {endpoint.url}")
    console.print(f"events: {', '.join(endpoint.events)}")
    console.print(f"secret (shown once): [bold]{chosen_secret}[/bold]", highlight=False)


@app.command("list")
def list_endpoints(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List endpoints (secrets are never shown)."""
    found = [e.public() for e in _webhooks(ctx).endpoints.list()]
    if as_json:
        print_json(found)
        return
    table = Table(title="Webhook endpoints", title_justify="left")
    for column in ("id", "url", "events", "enabled", "source"):
        table.add_column(column, overflow="fold")
    for e in found:
        enabled = "yes" if e["enabled"] else f"no ({e['disabled_reason']})"
        table.add_row(e["id"], e["url"], ",".join(e["events"]), enabled, e["source"])
    console.print(table)


@app.command("remove")
def remove(
    ctx: typer.Context, endpoint: str = typer.Argument(..., help="Endpoint id or URL.")
) -> None:
    """Remove an endpoint and its pending deliveries (events stay in the outbox)."""
    removed = _webhooks(ctx).endpoints.remove(endpoint)
    console.print(f"removed endpoint {removed.id} ({removed.url})")


@app.command("enable")
def enable(
    ctx: typer.Context,
    endpoint: str = typer.Argument(..., help="Endpoint id or URL."),
    as_json: bool = JsonOption,
) -> None:
    """Re-enable an endpoint (for example after a 410 disabled it); then replay what it missed."""
    enabled = _webhooks(ctx).enable_endpoint(endpoint)
    if as_json:
        print_json(enabled.public())
        return
    console.print(f"enabled {enabled.id} ({enabled.url})")


@app.command("replay")
def replay(
    ctx: typer.Context,
    endpoint: str = typer.Option(..., "--endpoint", help="Endpoint id or URL."),
    since: str = typer.Option(..., "--since", help="ISO-8601 time, e.g. 2026-11-22T00:00:00Z."),
    until: str | None = typer.Option(None, "--until", help="ISO-8601 time (default: now)."),
    event_type: list[str] | None = EventTypeOption,
    as_json: bool = JsonOption,
) -> None:
    """Queue the recorded events of [--since, --until) the endpoint is subscribed to, with
    their original webhook-ids; events it already has a delivery for are skipped unless that
    delivery failed or is dead. Times without a zone are UTC."""
    queued = _webhooks(ctx).replay(
        endpoint,
        since=_parse_time(since, "--since"),
        until=None if until is None else _parse_time(until, "--until"),
        event_types=event_type or None,
    )
    if as_json:
        print_json({"queued": queued})
    else:
        console.print(f"queued {queued} delivery(ies)")


@app.command("test")
def ping(
    ctx: typer.Context,
    endpoint: str = typer.Argument(..., help="Endpoint id or URL."),
    as_json: bool = JsonOption,
) -> None:
    """Send a signed ping to an endpoint now and show the answer."""
    attempt = _webhooks(ctx).test_endpoint(endpoint)
    outcome = {
        "status_code": attempt.status_code,
        "latency_ms": round(attempt.latency_ms, 1),
        "error": attempt.error,
        "response": attempt.response_snippet,
    }
    if as_json:
        print_json(outcome)
    else:
        console.print(
            f"ping → {attempt.status_code or attempt.error} in {attempt.latency_ms:.1f} ms"
        )
    if attempt.status_code is None or not 200 <= attempt.status_code < 300:
        raise typer.Exit(1)


@app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status", help="|".join(STATES)),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000),
    as_json: bool = JsonOption,
) -> None:
    """List deliveries with their model id and state, newest first."""
    if status is not None and status not in STATES:
        raise ValidationError(f"--status must be one of {', '.join(STATES)}; got {status!r}.")
    found = _webhooks(ctx).outbox.deliveries(state=status, limit=limit)
    if as_json:
        print_json(found)
        return
    table = Table(title="Webhook deliveries", title_justify="left")
    for column in ("event", "model", "endpoint", "state", "tries", "last", "created"):
        table.add_column(column, overflow="fold")
    for d in found:
        last = str(d["last_status_code"] or d["last_error"] or "—")
        table.add_row(
            d["event_id"],
            d["model_id"] or d["event_type"],
            d["endpoint_id"],
            d["state"],
            str(d["attempts"]),
            last,
            short_time(_iso(d["created_at"])),
        )
    console.print(table)


@app.command("attempts")
def attempts(
    ctx: typer.Context,
    delivery_id: str = typer.Argument(..., help="A delivery id (dlv_…)."),
    as_json: bool = JsonOption,
) -> None:
    """The attempt log of one delivery: time, status, latency, error, response."""
    hooks = _webhooks(ctx)
    found = hooks.outbox.attempts(delivery_id)
    if not found and not _delivery_exists(hooks, delivery_id):  # pending ones have none yet
        raise hinted(
            NotFoundError(f"No webhook delivery {delivery_id!r}."),
            "their ids are in: hokusai webhooks deliveries --json",
        )
    if as_json:
        print_json(found)
        return
    table = Table(title=f"Attempts of {delivery_id}", title_justify="left")
    for column in ("when", "status", "latency ms", "error", "response"):
        table.add_column(column, overflow="fold")
    for a in found:
        table.add_row(
            short_time(_iso(a["attempted_at"])),
            str(a["status_code"] or "—"),
            f"{a['latency_ms']:.1f}",
            a["error"] or "—",
            (a["response_snippet"] or "—")[:80],
        )
    console.print(table)


@app.command("redeliver")
def redeliver(
    ctx: typer.Context,
    event_id: str | None = typer.Argument(None, help="Event id (evt_…) to send again."),
    all_failed: bool = typer.Option(False, "--all-failed", help="Re-queue every failed/dead."),
) -> None:
    """Re-queue failed or dead deliveries; receivers see the same webhook-id."""
    if (event_id is None) == (not all_failed):
        raise ValidationError("Give an EVENT_ID or --all-failed (not both).")
    hooks = _webhooks(ctx)
    count = hooks.outbox.redeliver_all_failed() if all_failed else hooks.outbox.redeliver(event_id)
    console.print(f"re-queued {count} delivery(ies)")


@app.command("stats")
def stats(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Pending/dead counts, attempts and latency."""
    found = {
        key: round(value, 1) if key.startswith("latency_ms") and value is not None else value
        for key, value in _webhooks(ctx).outbox.stats().items()
    }
    if as_json:
        print_json(found)
    else:
        typer.echo(" ".join(f"{k}={'—' if v is None else v}" for k, v in found.items()))


@app.command("reconcile")
def reconcile(
    ctx: typer.Context,
    limit: int = typer.Option(
        500,
        "--limit",
        min=1,
        help="Most versions one pass reads (passes resume where the last stopped).",
    ),
) -> None:
    """Record the missing event of any registered version that lacks one."""
    created = registry(ctx).reconcile_webhook_events(limit=limit)
    console.print(f"recorded {len(created)} missing event(s) {' '.join(created)}".rstrip())


@app.command("worker")
def worker(
    ctx: typer.Context,
    batch_size: int = typer.Option(
        50, "--batch-size", min=1, max=1000, help="Attempts per pass (each claimed just before)."
    ),
    reconcile_every: float = typer.Option(
        60.0, "--reconcile-every", help="Seconds between reconciler passes; 0 disables."
    ),
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit."),
) -> None:
    """Deliver everything due, forever, until SIGTERM/SIGINT (then exit 0)."""
    import logging

    from hokusai.config import mask_secrets

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    hooks = _webhooks(ctx)
    reconcile_pass = None
    if reconcile_every > 0:
        reg = registry(ctx)

        def reconcile_pass() -> object:
            return reg.reconcile_webhook_events()

    dispatcher = hooks.dispatcher(batch_size=batch_size, reconcile=reconcile_pass)
    if once:
        while dispatcher.run_once():
            pass
        return
    stop = stop_on_signals("the attempt in flight")
    logging.getLogger(__name__).info(
        "webhook worker %s delivering from %s",
        dispatcher.owner,
        mask_secrets(hooks.settings.resolved_database_url),
    )
    dispatcher.run(
        stop,
        poll_seconds=hooks.settings.webhook_poll_seconds,
        reconcile_every=reconcile_every if reconcile_every > 0 else float("inf"),
    )


def _delivery_exists(hooks: Any, delivery_id: str) -> bool:
    import sqlalchemy as sa

    from hokusai.webhooks.tables import deliveries

    with hooks.outbox.engine.connect() as conn:
        query = sa.select(deliveries.c.id).where(deliveries.c.id == delivery_id)
        return conn.execute(query).first() is not None


def _iso(epoch: float | None) -> str | None:
    from datetime import timezone

    return None if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()


def _parse_time(text: str, option: str) -> datetime:
    try:
        text = text.strip()
        # Python 3.10's fromisoformat does not read a trailing Z.
        return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ValidationError(
            f"{option} must be an ISO-8601 time such as 2026-11-22T00:00:00Z; got {text!r}."
        ) from None
