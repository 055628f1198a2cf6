"""Access logs without secrets, for both servers.

uvicorn's access log writes each request's full path, query string included: a client that
sends ``?api_key=hk_…`` (refused, but logged) would leave its key in every log pipeline
downstream. :class:`RedactSecrets` rewrites each ``uvicorn.access`` record through
:func:`hokusai.config.mask_secrets` before any handler sees it: secret-looking query values
become ``***``, and so does the secret part of any Hokusai key in the line.
"""

from __future__ import annotations

import logging

from hokusai.config import mask_secrets

__all__ = ["ACCESS_LOGGER", "RedactSecrets", "install_access_log_redaction"]

ACCESS_LOGGER = "uvicorn.access"


class RedactSecrets(logging.Filter):
    """Mask credentials in a record's message and arguments (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                mask_secrets(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def install_access_log_redaction() -> None:
    """Add :class:`RedactSecrets` to uvicorn's access logger once per process. A filter on the
    logger survives uvicorn's ``dictConfig`` (which replaces handlers, not filters)."""
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactSecrets) for f in access.filters):
        access.addFilter(RedactSecrets())
