"""The registry library: registration, lookups, lineage and backfill on MLflow 3."""

from hokusai.registry.service import HokusaiModelRegistry, RegistrationHook

__all__ = ["HokusaiModelRegistry", "RegistrationHook"]
