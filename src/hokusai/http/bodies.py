"""JSON request bodies, and the one answer both servers give to a body that is not JSON.

The prediction server parses bodies itself with orjson (:func:`parse_json`); the REST service
lets FastAPI parse them with the standard library and turns FastAPI's 422 ``JSON decode error``
into the same error (:func:`invalid_json`, from :mod:`hokusai.http.errors`). Both word it from
orjson's reading of the same bytes, so one malformed body gets a byte-identical answer
from both: 400 ``invalid_json``, ``The body is not valid JSON: <reason>: line L column C (char N)``.
"""

from __future__ import annotations

from typing import Any

import orjson

from hokusai import errors

__all__ = ["invalid_json", "parse_json"]


def parse_json(body: bytes) -> Any:
    """``body`` as JSON; :class:`~hokusai.errors.InvalidJsonError` when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _error(exc) from exc


def invalid_json(body: bytes | None) -> errors.InvalidJsonError:
    """The error for a body another parser refused (``None``: the body could not be read)."""
    if body is not None:
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _error(exc)
    # The two parsers disagree (rare: orjson is the stricter one) or there is no body to show.
    return errors.InvalidJsonError("The body is not valid JSON.")


def _error(exc: orjson.JSONDecodeError) -> errors.InvalidJsonError:
    return errors.InvalidJsonError(f"The body is not valid JSON: {exc}")
