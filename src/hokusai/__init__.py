"""Hokusai Model Registry: model registry, webhooks and serving for Hokusai, on MLflow 3.

The registry class and the settings are imported lazily so that ``import hokusai`` (and the
CLI's ``--help``) pays for neither MLflow nor pydantic-settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hokusai import errors
from hokusai.errors import HokusaiError, ValidationError

if TYPE_CHECKING:
    from hokusai.config import Settings, get_settings
    from hokusai.services.model_registry import HokusaiModelRegistry, open_registry

__version__ = "0.2.0"

__all__ = [
    "HokusaiError",
    "HokusaiModelRegistry",
    "Settings",
    "ValidationError",
    "__version__",
    "errors",
    "get_settings",
    "open_registry",
]


def __getattr__(name: str) -> Any:
    if name in ("Settings", "get_settings"):
        from hokusai import config

        return getattr(config, name)
    if name in ("HokusaiModelRegistry", "open_registry"):
        from hokusai.services import model_registry

        return getattr(model_registry, name)
    raise AttributeError(f"module 'hokusai' has no attribute {name!r}")
