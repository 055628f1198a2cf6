"""The documented import path, kept for existing callers.

``from hokusai.services.model_registry import HokusaiModelRegistry``
"""

from hokusai.registry.service import HokusaiModelRegistry

__all__ = ["HokusaiModelRegistry"]
