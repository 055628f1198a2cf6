"""``hokusai serve``: the prediction server."""

from __future__ import annotations

import typer

from hokusai.cli._ports import ensure_port_free


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address."),
    port: int | None = typer.Option(
        None,
        "--port",
        min=0,
        max=65535,
        help="Port (default: HOKUSAI_SERVING_PORT, else config.yaml's port, else 8080).",
    ),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Server processes."),
) -> None:
    """Serve the model chosen by MODEL_VARIANT → MODEL_RUN_ID → MODEL_RUN_NAME → local pickle."""
    import uvicorn

    from hokusai.config import ServingSettings
    from hokusai.http.metrics import worker_metrics_directory

    serving = ServingSettings()
    chosen = serving.resolved_port if port is None else port
    ensure_port_free(host, chosen, option="--port", variable="HOKUSAI_SERVING_PORT")
    if workers > 1:
        from hokusai.config import get_settings
        from hokusai.registry.backend import prepare_store

        prepare_store(serving.project().tracking_uri or get_settings().resolved_tracking_uri)
    typer.echo(f"Hokusai prediction server on http://{host}:{chosen}  (health: /health)")
    with worker_metrics_directory(workers) as metrics_directory:
        if metrics_directory is not None:
            typer.echo(f"Prometheus metrics: every worker writes to {metrics_directory}")
        uvicorn.run(
            "hokusai.serving.app:create_app",
            factory=True,
            host=host,
            port=chosen,
            workers=workers,
            log_level="info",
        )
