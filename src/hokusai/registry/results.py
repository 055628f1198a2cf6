"""The shapes of what the registry returns, declared once.

Callers receive plain dicts (the pre-upgrade registry returned dicts, and JSON is one
``json.dumps`` away); these ``TypedDict`` classes say which keys each dict has. The REST
schemas (:mod:`hokusai.rest.schemas`) and the CLI read the same keys, and a test holds the REST
schemas to these declarations field by field.
"""

# No `from __future__ import annotations` here: TypedDict reads NotRequired[...] from real
# annotations (with strings, every key would look required at run time).

from typing import Any

# typing_extensions: pydantic (the REST schemas) needs its TypedDict before Python 3.12.
from typing_extensions import NotRequired, TypedDict

__all__ = [
    "AliasChange",
    "AliasRemoval",
    "LineageEntry",
    "ModelSummary",
    "ModelVersionInfo",
    "RegistrationResult",
]


class RegistrationResult(TypedDict):
    """What ``register_baseline``, ``register_improved_model`` and ``register_from_uri`` return:
    MLflow's ``ModelInfo`` and ``ModelVersion`` of the one version registered."""

    model_id: str
    """``"{model_name}/{version}"``."""
    model_name: str
    version: str
    model_type: str
    is_baseline: bool
    run_id: str | None
    registration_timestamp: str | None
    """ISO 8601, UTC."""
    model_uri: str
    """``ModelInfo.model_uri`` (``models:/m-…``)."""
    model_uuid: str
    """``ModelInfo.model_uuid`` (the ``m-…`` logged-model id)."""
    artifact_path: str | None
    mlflow_version: str | None
    flavors: list[str]
    signature: str | None
    metadata: dict[str, Any]
    metrics: dict[str, float]
    code_paths: list[str]
    git_commit: str | None
    registration_run_id: str
    """The MLflow run of this registration (for a registered URI, ``run_id`` is the run that
    logged the model)."""
    baseline_id: NotRequired[str | None]
    """Improved models only, like ``contributor`` (EIP-55) and ``delta_metrics``."""
    contributor: NotRequired[str | None]
    delta_metrics: NotRequired[dict[str, float] | None]


class ModelVersionInfo(TypedDict):
    """Everything known about one version: what ``get_model_by_uuid`` and ``get_model`` return."""

    model_id: str
    model_name: str
    version: str
    model_uuid: str | None
    model_uri: str
    run_id: str | None
    stage: str | None
    """``None`` when MLflow's stage is unset."""
    aliases: list[str]
    status: str | None
    model_type: str | None
    is_baseline: bool
    baseline_id: str | None
    contributor: str | None
    delta_metrics: dict[str, float]
    metadata: dict[str, Any]
    signature: str | None
    flavors: list[str]
    code_paths: list[str]
    mlflow_version: str | None
    artifact_path: str | None
    git_commit: str | None
    registration_timestamp: str | None
    created_at: int
    """Milliseconds since the epoch (MLflow's ``creation_timestamp``)."""
    legacy: bool
    """Registered by the pre-upgrade code (read from its params and tags)."""


class LineageEntry(ModelVersionInfo):
    """One version in ``get_model_lineage``: its description plus its place in the family."""

    metrics: dict[str, float]
    depth: int
    """0 for the baseline, 1 for an improvement on it, …"""
    parent_id: str | None
    cumulative_improvement: dict[str, float]
    """Per metric, the sum of deltas from the baseline to this version, and
    ``total_improvements`` (= depth)."""


class ModelSummary(TypedDict):
    """The short description used in listings (``list_models``, ``get_contributor_models``)."""

    model_id: str
    model_name: str
    version: str
    model_uuid: str | None
    model_type: str | None
    is_baseline: bool
    run_id: str | None
    baseline_id: str | None
    contributor: str | None
    delta_metrics: dict[str, float]
    stage: str | None
    aliases: list[str]
    registration_timestamp: str | None
    legacy: bool


class AliasChange(TypedDict):
    """What ``set_alias`` returns."""

    model_name: str
    alias: str
    version: str
    previous_version: str | None
    model_id: str
    model_uuid: str | None
    event_id: str | None
    """The ``model_promoted`` event recorded, or None when nothing announces."""


class AliasRemoval(TypedDict):
    """What ``delete_alias`` returns."""

    model_name: str
    alias: str
    previous_version: str | None
