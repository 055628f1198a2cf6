"""A busy port is one line naming what to change, before a server starts.

Without this check uvicorn prints the server's banner, starts, and only then fails with
``[Errno 98] address already in use`` — after the reader has been told the server is up.
"""

from __future__ import annotations

import errno
import socket
from typing import NoReturn

import typer

__all__ = ["ensure_port_free"]


def ensure_port_free(host: str, port: int, *, option: str, variable: str) -> None:
    """Exit with ``error[port_in_use]: …`` (status 1) when ``host:port`` cannot be bound.

    The probe binds the way uvicorn does (``SO_REUSEADDR``, so a port whose old connections
    linger in TIME_WAIT is not mistaken for a busy one) and lets go of the port at once.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            _fail(
                "port_in_use",
                f"{host}:{port} is already in use; choose another with {option} or {variable}",
            )
        reason = exc.strerror or str(exc)
        _fail("cannot_bind", f"cannot listen on {host}:{port}: {reason}")


def _fail(code: str, message: str) -> NoReturn:
    typer.echo(f"error[{code}]: {message}", err=True)
    raise typer.Exit(1)
