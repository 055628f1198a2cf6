"""``hokusai server``: the REST API, with the webhook sender and the verification runner in the
same process."""

from __future__ import annotations

import typer

from hokusai.cli._common import CliState
from hokusai.cli._ports import ensure_port_free


def server(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Bind address (HOKUSAI_API_HOST)."),
    port: int | None = typer.Option(
        None, "--port", min=0, max=65535, help="Port (HOKUSAI_API_PORT)."
    ),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="API processes."),
    webhook_worker: bool = typer.Option(
        True,
        "--webhook-worker/--no-webhook-worker",
        help="Deliver webhooks from the API processes (off when separate workers do it).",
    ),
    verify_worker: bool = typer.Option(
        True,
        "--verify-worker/--no-verify-worker",
        help="Evaluate queued verifications in the API processes (off when separate "
        "`hokusai verifications worker` processes do it).",
    ),
) -> None:
    """Run the registry REST service (OpenAPI docs at /docs)."""
    import uvicorn

    from hokusai.config import export_to_environment, mask_secrets
    from hokusai.http.metrics import worker_metrics_directory

    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    export_to_environment(
        home=state.home,
        tracking_uri=state.tracking_uri,
        webhook_background=None if webhook_worker else "false",
        verify_background=None if verify_worker else "false",
    )
    settings = state.settings()
    host = host or settings.api_host
    port = settings.api_port if port is None else port
    ensure_port_free(host, port, option="--port", variable="HOKUSAI_API_PORT")
    _bootstrap_admin_key(settings)
    if workers > 1:
        from hokusai.registry.backend import prepare_store

        prepare_store(settings.resolved_tracking_uri)
    url = f"http://{host}:{port}"
    typer.echo(f"Hokusai registry API on {url}  (OpenAPI docs: {url}/docs)")
    typer.echo(f"MLflow store: {mask_secrets(settings.resolved_tracking_uri)}")
    typer.echo("Register a first model (trains, logs with MLflow, registers through the API):")
    typer.echo(f"  hokusai quickstart --server {url}")
    typer.echo("or register any model already logged with MLflow:")
    typer.echo(f'  curl -X POST {url}/api/v1/models -H "Authorization: Bearer $HOKUSAI_API_KEY" \\')
    typer.echo("       -H 'content-type: application/json' \\")
    typer.echo('       -d \'{"model_uri": "models:/m-...", "model_type": "classification"}\'')
    with worker_metrics_directory(workers) as metrics_directory:
        if metrics_directory is not None:
            typer.echo(f"Prometheus metrics: every worker writes to {metrics_directory}")
        uvicorn.run(
            "hokusai.rest.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            proxy_headers=False,
        )


def _bootstrap_admin_key(settings: object) -> None:
    """First start of the embedded server on a brand-new database: create an admin key and
    print it once. Never again once any key was created — revoking every key does not make
    the next start print a fresh admin key into the logs."""
    from hokusai.auth.keys import ApiKeyStore
    from hokusai.config import Settings
    from hokusai.db import open_database

    assert isinstance(settings, Settings)
    if not (settings.is_embedded and settings.api_bootstrap_admin_key):
        return
    store = ApiKeyStore(
        open_database(settings.resolved_database_url, migrate=settings.database_auto_migrate)
    )
    created = store.create_first(name="bootstrap-admin", scope="admin")
    if created is None:
        # A restart: the first start printed the admin key, once; say how to make another.
        typer.echo(
            "API keys already exist in this database (the bootstrap admin key is shown only on "
            "the first start); a new one: hokusai keys create --scope admin --name NAME"
        )
        return
    key, plaintext = created
    typer.echo(
        f"Created admin API key {key.id} (shown once, store it now):\n"
        f"  export HOKUSAI_API_KEY={plaintext}"
    )
