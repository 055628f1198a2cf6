"""Input validation for registrations: every check runs before anything is written."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

from hokusai.errors import (
    InvalidContributorError,
    InvalidMetadataError,
    InvalidMetricsError,
    InvalidModelIdError,
    InvalidModelTypeError,
    ValidationError,
)

__all__ = [
    "normalize_contributor",
    "normalize_metadata",
    "normalize_metrics",
    "parse_model_id",
    "validate_alias",
    "validate_code_paths",
    "validate_model_type",
]

# Every pattern here is applied with ``fullmatch``: ``re.match`` with ``$`` accepts a trailing
# newline ("$" also matches just before a final "\n"), which then reaches MLflow or eth-utils.
MODEL_TYPE_RE = re.compile(r"[a-z][a-z0-9_]*")
MODEL_TYPE_MAX_LEN = 64
ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
# MLflow metric keys: alphanumerics, underscores, dashes, periods, spaces, slashes.
METRIC_NAME_RE = re.compile(r"[A-Za-z0-9_\-. /]{1,250}")
MODEL_NAME_RE = re.compile(r"[A-Za-z0-9_\-.]{1,256}")
# MLflow stores versions as 32-bit integers; ASCII digits only (str.isdigit accepts "²").
VERSION_RE = re.compile(r"[0-9]{1,10}")
MAX_VERSION = 2**31 - 1


def validate_model_type(model_type: object) -> str:
    """Return ``model_type`` if it is a safe identifier, else raise InvalidModelTypeError."""
    if (
        not isinstance(model_type, str)
        or len(model_type) > MODEL_TYPE_MAX_LEN
        or not MODEL_TYPE_RE.fullmatch(model_type)
    ):
        raise InvalidModelTypeError(
            f"Invalid model_type {model_type!r}: expected a lowercase identifier matching "
            f"[a-z][a-z0-9_]* of at most {MODEL_TYPE_MAX_LEN} characters, e.g. 'lead_scoring'."
        )
    return model_type


def normalize_contributor(address: object) -> str:
    """Validate an Ethereum address and return its EIP-55 checksum form.

    All-lowercase and all-uppercase hex carry no checksum and are accepted; mixed case must
    match the EIP-55 checksum, which catches typos in copied addresses.
    """
    from eth_utils.address import to_checksum_address  # imported here: pulls in the keccak backend

    if not isinstance(address, str) or not ADDRESS_RE.fullmatch(address):
        raise InvalidContributorError(
            f"Invalid contributor address {address!r}: expected '0x' followed by 40 hex digits."
        )
    checksum: str = to_checksum_address(address)
    hex_part = address[2:]
    if hex_part != hex_part.lower() and hex_part != hex_part.upper() and address != checksum:
        raise InvalidContributorError(
            f"Invalid contributor address {address!r}: mixed-case address fails the EIP-55 "
            f"checksum (did you mean {checksum}?)."
        )
    return checksum


def normalize_metadata(metadata: object) -> dict[str, Any]:
    """Return a JSON round-tripped copy of ``metadata`` (None → {}), or raise.

    The copy is what is stored, so what the register call returns is exactly what later
    lookups return.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidMetadataError(
            f"metadata must be a mapping (dict), got {type(metadata).__name__}."
        )
    bad_keys = [k for k in metadata if not isinstance(k, str)]
    if bad_keys:
        raise InvalidMetadataError(f"metadata keys must be strings; got {bad_keys[0]!r}.")
    try:
        encoded = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMetadataError(f"metadata is not JSON-serialisable: {exc}") from exc
    decoded: dict[str, Any] = json.loads(encoded)
    return decoded


def normalize_metrics(metrics: object, *, what: str = "metrics") -> dict[str, float]:
    """Return ``metrics`` as ``{name: float}``; names must be MLflow-safe, values finite."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise InvalidMetricsError(f"{what} must be a mapping of name to number.")
    result: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not METRIC_NAME_RE.fullmatch(name):
            raise InvalidMetricsError(
                f"Invalid {what} name {name!r}: use letters, digits, '_', '-', '.', ' ' or '/'."
            )
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise InvalidMetricsError(
                f"Invalid {what} value for {name!r}: {value!r} is not a finite number."
            )
        result[name] = float(value)
    return result


ALIAS_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
RESERVED_ALIAS_RE = re.compile(r"latest|v[0-9]+", re.IGNORECASE)


def validate_alias(alias: object) -> str:
    """An MLflow alias: letters, digits, ``_``/``-``; ``latest`` and ``v<N>`` are reserved."""
    if not isinstance(alias, str) or not ALIAS_RE.fullmatch(alias):
        raise ValidationError(f"Invalid alias {alias!r}: use 1-255 letters, digits, '_' or '-'.")
    if RESERVED_ALIAS_RE.fullmatch(alias):
        raise ValidationError(f"Alias {alias!r} is reserved by MLflow ('latest', 'v<N>').")
    return alias


def parse_model_id(model_id: object) -> tuple[str, str]:
    """Split ``"{model_name}/{version}"`` into name and version, or raise."""
    if not isinstance(model_id, str) or model_id.count("/") != 1:
        raise InvalidModelIdError(
            f"Invalid model id {model_id!r}: expected '{{model_name}}/{{version}}', "
            "e.g. 'hokusai_classification_baseline/1'."
        )
    name, version = model_id.split("/")
    if (
        not MODEL_NAME_RE.fullmatch(name)
        or not VERSION_RE.fullmatch(version)
        or not 1 <= int(version) <= MAX_VERSION
    ):
        raise InvalidModelIdError(
            f"Invalid model id {model_id!r}: expected '{{model_name}}/{{version}}' with a "
            "positive integer version."
        )
    return name, str(int(version))


def validate_code_paths(code_paths: Sequence[str | Path] | None) -> list[str] | None:
    """``code_paths`` as a list of strings, each of which must exist."""
    if code_paths is None:
        return None
    if isinstance(code_paths, str | Path):
        code_paths = [code_paths]
    missing = [str(p) for p in code_paths if not Path(p).exists()]
    if missing:
        raise ValidationError(f"code_paths entry {missing[0]!r} does not exist.")
    return [str(p) for p in code_paths]
