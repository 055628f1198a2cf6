"""Entry point of the ``hokusai`` command.

Commands raise the project's errors; :func:`main` turns every failure a user can cause into one
line ``error[code]: message`` on stderr (plus at most one ``hint:`` line) and a non-zero exit,
so no user ever sees a traceback for a known failure (see :mod:`hokusai.cli._errors`).

Importing this module builds the whole command tree, so the sub-apps import nothing heavy
(MLflow, SQLAlchemy, the settings) until a command runs: ``hokusai --help`` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import typer

from hokusai import __version__
from hokusai.cli import (
    benchmarks,
    contributors,
    db,
    doctor,
    keys,
    models,
    quickstart,
    registry,
    serve,
    server,
    train,
    verifications,
    verify,
    webhooks,
)
from hokusai.cli._common import MLFLOW_CLI_RETRIES, CliState, quiet_output
from hokusai.cli._errors import run

app = typer.Typer(
    name="hokusai",
    help="Hokusai model registry: register, look up and trace models on MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models.app, name="models")
app.add_typer(contributors.app, name="contributors")
app.add_typer(registry.app, name="registry")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(benchmarks.app, name="benchmarks")
app.add_typer(verifications.app, name="verifications")
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
app.command("quickstart")(quickstart.quickstart)
app.command("server")(server.server)
app.command("train")(train.train)
app.command("serve")(serve.serve)
app.command("doctor")(doctor.doctor)
app.command("verify")(verify.verify)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hokusai {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: str | None = typer.Option(
        None, "--home", help="HOKUSAI_HOME for this command (embedded store location)."
    ),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI for this command."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="Show MLflow's and Alembic's own logging and Python warnings; the traceback of an "
        "unexpected error.",
    ),
) -> None:
    """Hokusai model registry."""
    quiet_output(verbose)
    ctx.obj = CliState(home=home, tracking_uri=tracking_uri, verbose=verbose)


def main(args: Sequence[str] | None = None) -> None:
    """Run the CLI (``args`` default to ``sys.argv[1:]``) and exit with its status; a failure
    prints ``error[code]: message`` (and a ``hint:`` line) and exits non-zero."""
    for name, value in MLFLOW_CLI_RETRIES.items():
        os.environ.setdefault(name, value)
    run(app, args, prog_name="hokusai")


if __name__ == "__main__":
    main()
