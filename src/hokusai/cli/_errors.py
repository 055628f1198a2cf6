"""How the ``hokusai`` command fails: one line ``error[code]: message`` on stderr, at most one
``hint: …`` line after it, and a non-zero exit status. Never a traceback for anything a user can
cause.

* The project's own errors (:class:`~hokusai.errors.HokusaiError`) print their code and message;
  the CLI may attach a hint to one (:func:`hinted`).
* Usage errors (missing or invalid arguments, unknown commands) print ``error[usage]`` and point
  at the command's ``--help``; exit status 2, as click's.
* Exceptions from below that a user's input or environment causes — a path that does not exist
  or may not be written, a server that does not answer, a URL without a scheme, a database file
  that is not one — are mapped to one line each (:func:`describe_exception`).
* Anything else is a bug: one ``error[internal_error]`` line that says so, and the traceback
  with ``--verbose``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import typer

from hokusai.errors import HokusaiError

ERROR_EXIT = 1
USAGE_EXIT = 2
BUG_HINT = "this is a bug in hokusai: rerun with --verbose for the traceback and report it"


class CliError(Exception):
    """A failure the CLI reports as it is: ``error[code]: message`` (and ``hint: …``)."""

    def __init__(
        self, code: str, message: str, *, hint: str | None = None, status: int = ERROR_EXIT
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.status = status


def hinted(error: HokusaiError, hint: str) -> HokusaiError:
    """``error`` with a hint line for the CLI to print under it."""
    error.hint = hint  # type: ignore[attr-defined]
    return error


def one_line(text: object) -> str:
    """``text`` on one line: its lines joined, whitespace runs collapsed."""
    return " ".join(str(text).split())


def report(code: str, message: str, hint: str | None = None) -> None:
    """Print the error line (and the hint line) on stderr."""
    typer.echo(f"error[{code}]: {one_line(message)}", err=True)
    if hint:
        typer.echo(f"hint: {one_line(hint)}", err=True)


def fail(code: str, message: str, hint: str | None = None, *, status: int = ERROR_EXIT) -> NoReturn:
    report(code, message, hint)
    sys.exit(status)


def _loaded(module: str, name: str) -> type[BaseException] | None:
    """``module.name`` if that module is already imported (classifying an error must not
    import MLflow or SQLAlchemy)."""
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _is(exc: BaseException, module: str, name: str) -> bool:
    cls = _loaded(module, name)
    return cls is not None and isinstance(exc, cls)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from, outermost first (at most 10)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


_CORRUPT = ("file is not a database", "database disk image is malformed")


def describe_exception(exc: BaseException) -> tuple[str, str, str | None] | None:
    """(code, message, hint) for an exception a user can cause; None for a bug."""
    for cause in _causes(exc):
        found = _describe_one(cause)
        if found is not None:
            return found
    return None


def _describe_one(exc: BaseException) -> tuple[str, str, str | None] | None:
    text = one_line(exc)
    if _is(exc, "sqlite3", "DatabaseError") or _is(exc, "sqlalchemy.exc", "DatabaseError"):
        if any(marker in text.lower() for marker in _CORRUPT):
            return (
                "corrupt_database",
                f"A database file is not a usable SQLite database: {_sqlite_reason(text)}.",
                "restore it from a backup, or point --home / HOKUSAI_HOME at another folder",
            )
        if "unable to open database file" in text.lower():
            return (
                "permission_denied",
                "Cannot open the database file (its folder is missing or not writable).",
                "check the permissions of HOKUSAI_HOME (--home), or choose another folder",
            )
        return ("backend_error", f"Database error: {_sqlite_reason(text)}.", None)
    if _is(exc, "pydantic_core", "ValidationError") and getattr(exc, "title", "") in _SETTINGS:
        return (
            "validation_error",
            f"Invalid setting: {_settings_errors(exc)}.",
            "check the HOKUSAI_* environment variables (and config.yaml for `hokusai serve`)",
        )
    if _is(exc, "sqlalchemy.exc", "ArgumentError") and "URL" in text:
        return ("validation_error", f"Invalid database URL: {text}", "check HOKUSAI_DATABASE_URL")
    if _is(exc, "httpx", "UnsupportedProtocol") or _is(exc, "httpx", "InvalidURL"):
        return ("validation_error", f"Invalid URL: {text}", "URLs start with http:// or https://")
    if _is(exc, "httpx", "TimeoutException"):
        return ("backend_unavailable", f"The server did not answer in time: {text}", None)
    if _is(exc, "httpx", "TransportError"):
        return (
            "backend_unavailable",
            f"Cannot reach the server: {text}",
            "check the URL, and that the server is running",
        )
    if _is(exc, "requests.exceptions", "RequestException"):
        return (
            "backend_unavailable",
            f"Cannot reach the server: {_requests_reason(text)}",
            "check the URL (--tracking-uri / HOKUSAI_TRACKING_URI), and that it is running",
        )
    if _is(exc, "mlflow.exceptions", "MlflowException"):
        return ("backend_error", f"MLflow: {text[:500]}", None)
    if isinstance(exc, OSError):
        return _describe_os_error(exc)
    return None


def _describe_os_error(exc: OSError) -> tuple[str, str, str | None]:
    where = f": {exc.filename}" if exc.filename else ""
    reason = exc.strerror or one_line(exc) or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return ("file_not_found", f"{reason}{where}", "check the path")
    if isinstance(exc, PermissionError):
        return (
            "permission_denied",
            f"{reason}{where}",
            "check the permissions, or choose another folder (--home / HOKUSAI_HOME)",
        )
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return (
            "invalid_path",
            f"Not a folder{where}",
            "--home / HOKUSAI_HOME (and the paths in it) must name folders",
        )
    if isinstance(exc, IsADirectoryError):
        return ("invalid_path", f"A folder, not a file{where}", "check the path")
    if isinstance(exc, ConnectionError):
        return ("backend_unavailable", f"Cannot connect: {reason}", "check that the server runs")
    if isinstance(exc, TimeoutError):
        return ("backend_unavailable", f"Timed out: {reason}", None)
    return ("os_error", f"{reason}{where}", None)


_SETTINGS = ("Settings", "ServingSettings", "ProjectConfig")


def _settings_errors(exc: Any) -> str:
    """``HOKUSAI_API_PORT: Input should be a valid integer`` for each wrong setting (never the
    value given: it may be a secret)."""
    shown = []
    for error in exc.errors()[:3]:
        field = ".".join(str(part) for part in error.get("loc", ())) or "?"
        if exc.title == "Settings" and field.isidentifier():
            field = f"HOKUSAI_{field.upper()}"
        shown.append(f"{field}: {error.get('msg', 'invalid')}")
    return "; ".join(shown)


def _sqlite_reason(text: str) -> str:
    # SQLAlchemy's message: "(sqlite3.DatabaseError) file is not a database [SQL: …] (Background…)"
    reason = text.split("[SQL:", 1)[0].split("(Background", 1)[0]
    if reason.startswith("(") and ")" in reason:
        reason = reason.split(")", 1)[1]
    return reason.strip().rstrip(".") or "unknown error"


def _requests_reason(text: str) -> str:
    # requests' messages nest urllib3's: keep the part a person can act on.
    for marker in ("Connection refused", "Name or service not known", "timed out"):
        if marker in text:
            return marker.lower() if marker != "Connection refused" else "connection refused"
    return text[:300]


def _default_hint(error: HokusaiError) -> str | None:
    """A hint for one of the project's errors: about MLflow being unreachable, or the one
    its cause calls for (a database file that is not one)."""
    if error.code == "backend_unavailable" and "MLflow is unreachable" in error.message:
        return "check --tracking-uri / HOKUSAI_TRACKING_URI, and that the MLflow server runs"
    cause = error.__cause__ or error.__context__
    found = describe_exception(cause) if cause is not None else None
    return found[2] if found is not None else None


def _click_exceptions() -> Any:
    try:  # typer ≥ 0.2x vendors click
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older typer on click
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


def run(
    command: Callable[..., Any],
    args: Sequence[str] | None = None,
    *,
    prog_name: str,
) -> NoReturn:
    """Run a Typer app (or command) and exit; every failure is reported as described above."""
    argv = list(sys.argv[1:] if args is None else args)
    verbose = any(arg in ("--verbose", "-v") for arg in argv)
    clicks = _click_exceptions()
    try:
        status = command(args=argv, prog_name=prog_name, standalone_mode=False)
    except getattr(clicks, "NoArgsIsHelpError", ()) as exc:  # `hokusai models`: its help
        shown = exc.format_message()  # empty when rich has printed the help already
        if shown:
            typer.echo(shown)
        sys.exit(USAGE_EXIT)
    except clicks.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else prog_name
        fail("usage", exc.format_message(), f"see '{where} --help'", status=USAGE_EXIT)
    except clicks.ClickException as exc:
        fail("usage", exc.format_message(), status=exc.exit_code or ERROR_EXIT)
    except typer.Abort:
        fail("aborted", "Aborted.")
    except CliError as exc:
        fail(exc.code, exc.message, exc.hint, status=exc.status)
    except HokusaiError as exc:
        fail(exc.code, exc.message, getattr(exc, "hint", None) or _default_hint(exc))
    except Exception as exc:
        known = describe_exception(exc)
        if known is None:
            if verbose:
                raise
            fail("internal_error", f"unexpected {type(exc).__name__}: {one_line(exc)}", BUG_HINT)
        fail(*known)
    sys.exit(status if isinstance(status, int) else 0)
