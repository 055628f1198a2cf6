"""The registry library: registration, lookups, lineage and backfill on MLflow 3.

It announces through an :class:`Announcer` it is handed and imports nothing above it; the
documented :class:`hokusai.HokusaiModelRegistry` is :class:`ModelRegistry` with the webhook
layer wired in.
"""

from hokusai.registry.announcer import Announcer
from hokusai.registry.model_registry import ModelRegistry
from hokusai.registry.registration import RegistrationHook
from hokusai.registry.results import (
    AliasChange,
    AliasRemoval,
    BenchmarkRef,
    GuardrailCheck,
    LineageEntry,
    MetricComparison,
    ModelSummary,
    ModelVersionInfo,
    RegistrationResult,
    VerificationResult,
    VerificationSummary,
)

__all__ = [
    "AliasChange",
    "AliasRemoval",
    "Announcer",
    "BenchmarkRef",
    "GuardrailCheck",
    "LineageEntry",
    "MetricComparison",
    "ModelRegistry",
    "ModelSummary",
    "ModelVersionInfo",
    "RegistrationHook",
    "RegistrationResult",
    "VerificationResult",
    "VerificationSummary",
]
