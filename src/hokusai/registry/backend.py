"""The boundary with MLflow: scoped URIs for the fluent API, error translation, MLmodel reading.

MLflow's fluent API (``start_run``, ``log_model``, ``register_model``) reads a process-global
tracking and registry URI. A registry must not change the URIs of the process it is used in, and
two registries in one process must each use their own store, so registration runs inside
:func:`mlflow_scope`, which sets the URIs under a lock and restores the previous values
(including the ``MLFLOW_*`` environment variables MLflow mirrors them into) afterwards.
Queries never need the scope: they use an ``MlflowClient`` bound to the registry's URIs.

Inside the scope MLflow does not write its "🏃 View run … at: http://…" lines to stdout (which
it does for every run ended on a tracking server): a library's stdout is its caller's, and
``hokusai train --json`` must print JSON alone. ``MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT`` set
by the user wins.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from hokusai.config import mask_secrets
from hokusai.errors import BackendError, BackendUnavailableError, HokusaiError

__all__ = [
    "ModelCard",
    "mlflow_scope",
    "prepare_store",
    "read_model_card",
    "translate_mlflow_error",
]

_SCOPE_LOCK = threading.RLock()
_ENV_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
_QUIET_URLS = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


@contextmanager
def mlflow_scope(tracking_uri: str, registry_uri: str) -> Iterator[None]:
    """Run MLflow's fluent API against the given store, then restore the process's own."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _SCOPE_LOCK:
        saved_tracking = tracking_utils._tracking_uri
        saved_registry = registry_utils._registry_uri
        saved_env = {key: os.environ.get(key) for key in (*_ENV_KEYS, _QUIET_URLS)}
        changed = saved_tracking != tracking_uri or saved_registry != registry_uri
        if changed:
            mlflow.set_tracking_uri(tracking_uri)
            mlflow.set_registry_uri(registry_uri)
        os.environ.setdefault(_QUIET_URLS, "true")
        try:
            yield
        finally:
            if changed:
                mlflow.set_tracking_uri(saved_tracking)  # type: ignore[arg-type]
                registry_utils._registry_uri = saved_registry
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


_UNAVAILABLE_HINTS = (
    "max retries exceeded",
    "connection refused",
    "failed to establish a new connection",
    "unable to open database file",
    "could not connect",
    "name or service not known",
    "timed out",
)


_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def prepare_store(tracking_uri: str) -> None:
    """Create or upgrade MLflow's database store here, once, before several processes open it.

    Server replicas started together on a brand-new SQLite store otherwise race MLflow's own
    migrations (``table _alembic_tmp_tags already exists``) and one of them dies. A tracking
    server (``http://…``) needs nothing: it migrated its store when it started. A failure here
    is left for the replicas to report, each with its own error.
    """
    scheme = tracking_uri.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in _DATABASE_SCHEMES:
        return
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - each replica reports it again, with its own error
        logging.getLogger(__name__).warning(
            "MLflow's store could not be prepared before the workers start: %s",
            mask_secrets(_first_line(str(exc))),
        )


def translate_mlflow_error(exc: BaseException, action: str) -> HokusaiError:
    """Turn an exception from MLflow (or below it) into a project error."""
    if isinstance(exc, HokusaiError):
        return exc
    text = str(exc)
    if any(hint in text.lower() for hint in _UNAVAILABLE_HINTS) or isinstance(exc, ConnectionError):
        return BackendUnavailableError(f"{action}: MLflow is unreachable: {_first_line(text)}")
    return BackendError(f"{action}: {type(exc).__name__}: {_first_line(text)}")


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:500]


def is_not_found(exc: BaseException) -> bool:
    """True for MLflow's RESOURCE_DOES_NOT_EXIST (and the REST 404 equivalent)."""
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException) and exc.error_code in {
        "RESOURCE_DOES_NOT_EXIST",
        "NOT_FOUND",
    }


@dataclass(frozen=True)
class ModelCard:
    """What a logged model's ``MLmodel`` file says about it."""

    metadata: dict[str, Any]
    signature: str | None
    flavors: list[str]
    mlflow_version: str | None
    model_uuid: str | None
    code_paths: list[str]


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_model_card(artifact_uri: str, *, tracking_uri: str) -> ModelCard:
    """Read ``<artifact_uri>/MLmodel``; local files are read in place, others downloaded."""
    local = _local_path(artifact_uri)
    if local is not None:
        text = (local / "MLmodel").read_text(encoding="utf-8")
    else:
        import mlflow.artifacts

        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{artifact_uri.rstrip('/')}/MLmodel", tracking_uri=tracking_uri
        )
        text = Path(path).read_text(encoding="utf-8")
    raw: dict[str, Any] = yaml.load(text, Loader=_Loader) or {}  # noqa: S506 - safe loader
    code_files: list[str] = []
    code_dir = ((raw.get("flavors") or {}).get("python_function") or {}).get("code")
    if isinstance(code_dir, str):
        code_files = _list_code(artifact_uri, code_dir, local, tracking_uri)
    return _card_from_dict(raw, code_files)


def _list_code(
    artifact_uri: str, code_dir: str, local: Path | None, tracking_uri: str
) -> list[str]:
    if local is not None:
        folder = local / code_dir
        return sorted(f"{code_dir}/{p.name}" for p in folder.iterdir()) if folder.is_dir() else []
    import mlflow.artifacts

    entries = mlflow.artifacts.list_artifacts(
        artifact_uri=f"{artifact_uri.rstrip('/')}/{code_dir}", tracking_uri=tracking_uri
    )
    return sorted(f"{code_dir}/{Path(e.path).name}" for e in entries)


def _card_from_dict(raw: dict[str, Any], code_files: list[str]) -> ModelCard:
    from mlflow.models.signature import ModelSignature

    signature = None
    if raw.get("signature"):
        signature = str(ModelSignature.from_dict(raw["signature"]))
    flavors = raw.get("flavors") or {}
    return ModelCard(
        metadata=raw.get("metadata") or {},
        signature=signature,
        flavors=sorted(flavors),
        mlflow_version=raw.get("mlflow_version"),
        model_uuid=raw.get("model_uuid") or raw.get("model_id"),
        code_paths=code_files,
    )


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return Path(uri)
    return None
