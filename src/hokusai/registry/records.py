"""How a Hokusai model version is described in MLflow, in today's layout and the legacy one.

Today every registered version carries these version tags (visible in MLflow's UI and search):

====================  ======================================================
``hokusai.model_uuid``   ``ModelInfo.model_uuid`` (``m-…``)
``hokusai.model_type``   e.g. ``lead_scoring``
``hokusai.is_baseline``  ``true`` / ``false``
``hokusai.baseline_id``  ``{name}/{version}`` of the model it improves (improved only)
``hokusai.contributor``  EIP-55 checksum address (improved only)
``hokusai.delta_metrics`` JSON object of metric → delta (improved only)
``hokusai.backfilled``   ``true`` on pre-upgrade versions tagged by the backfill
``hokusai.metadata_artifact`` where the metadata is when it is not in MLmodel (registered by URI)
====================  ======================================================

A verified version also carries the tags of its latest verification (``hokusai.verified``,
``hokusai.verified_delta_bps`` and ``hokusai.verification.*``, see
:mod:`hokusai.registry.verification`), read back as a
:class:`~hokusai.registry.results.VerificationSummary` by :func:`verification_summary`.

Versions registered by the pre-upgrade code carry none of these: the run holds params
``model_type``, ``is_baseline``, ``metadata_*``, ``contributor_address``, ``baseline_model_id``
and the delta metrics as run metrics; improved versions have version tags ``baseline_model_id``
and ``contributor``. :class:`VersionRecord` reads both, so queries never care which they meet.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from hokusai.registry.results import VerificationSummary

__all__ = [
    "TAG_BACKFILLED",
    "TAG_BASELINE_ID",
    "TAG_CONTRIBUTOR",
    "TAG_DELTA_METRICS",
    "TAG_IS_BASELINE",
    "TAG_METADATA_ARTIFACT",
    "TAG_MODEL_TYPE",
    "TAG_MODEL_UUID",
    "TAG_REGISTRATION_RUN",
    "TAG_REGISTRATION_STATE",
    "TAG_VERIFICATION",
    "TAG_VERIFIED",
    "TAG_VERIFIED_DELTA_BPS",
    "VersionRecord",
    "baseline_model_name",
    "improved_model_name",
    "iso_timestamp",
    "verification_summary",
]

TAG_MODEL_UUID = "hokusai.model_uuid"
TAG_MODEL_TYPE = "hokusai.model_type"
TAG_IS_BASELINE = "hokusai.is_baseline"
TAG_BASELINE_ID = "hokusai.baseline_id"
TAG_CONTRIBUTOR = "hokusai.contributor"
TAG_DELTA_METRICS = "hokusai.delta_metrics"
TAG_BACKFILLED = "hokusai.backfilled"
TAG_METADATA_ARTIFACT = "hokusai.metadata_artifact"
TAG_REGISTRATION_RUN = "hokusai.registration_run_id"
"""The run of the registration that created the version: what rolls it back and keys its event."""
TAG_REGISTRATION_STATE = "hokusai.registration_state"
"""``registering`` from creation until the registration's last MLflow write sets ``complete``.
A version still ``registering`` is not a registered version: no read returns it and nothing
announces it. Versions registered before this tag existed have none and are complete."""
TAG_VERIFIED = "hokusai.verified"
TAG_VERIFIED_DELTA_BPS = "hokusai.verified_delta_bps"
TAG_VERIFICATION = "hokusai.verification."
"""Prefix of the latest verification's tags on a version: ``id``, ``run_id``, ``benchmark``,
``benchmark_hash``, ``metric``, ``improvement_bps``, ``accepted``, ``claim_status``,
``verified_at``."""
REGISTERING = "registering"
COMPLETE = "complete"
FAILED = "failed"

LEGACY_TAG_BASELINE_ID = "baseline_model_id"
LEGACY_TAG_CONTRIBUTOR = "contributor"
LEGACY_PARAM_CONTRIBUTOR = "contributor_address"
LEGACY_PARAM_IS_BASELINE = "is_baseline"
LEGACY_PARAM_MODEL_TYPE = "model_type"
LEGACY_METADATA_PREFIX = "metadata_"

DELTA_METRIC_PREFIX = "delta."
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"

logger = logging.getLogger(__name__)

# Applied with fullmatch: "$" after re.match would also accept a trailing newline.
_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_NAME_RE = re.compile(r"hokusai_(?P<type>[a-z][a-z0-9_]*)_(?P<kind>baseline|improved)")


def baseline_model_name(model_type: str) -> str:
    """Registered model name for baselines of ``model_type``."""
    return f"hokusai_{model_type}_baseline"


def improved_model_name(model_type: str) -> str:
    """Registered model name for improved models of ``model_type``."""
    return f"hokusai_{model_type}_improved"


def is_hokusai_model_name(name: str) -> bool:
    """Whether ``name`` is one Hokusai registers under (``hokusai_<type>_baseline|improved``)."""
    return isinstance(name, str) and _NAME_RE.fullmatch(name) is not None


def iso_timestamp(millis: int | None) -> str | None:
    """MLflow's epoch milliseconds as ISO 8601 UTC."""
    if millis is None:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).isoformat()


_COMMON_FIELDS = (
    "model_name",
    "version",
    "run_id",
    "source",
    "created_at",
    "stage",
    "aliases",
    "status",
    "tags",
)


@dataclass(frozen=True)
class VersionRecord:
    """One registered version, normalised from either tag layout."""

    model_name: str
    version: str
    run_id: str | None
    source: str
    created_at: int
    stage: str | None
    aliases: list[str]
    status: str | None
    model_type: str | None
    is_baseline: bool
    model_uuid: str | None
    baseline_id: str | None
    contributor: str | None
    delta_metrics: dict[str, float]
    legacy: bool
    """Registered by the pre-upgrade code and not backfilled: attribution read from the run."""
    tags: dict[str, str] = field(repr=False)

    @property
    def pre_upgrade(self) -> bool:
        """Registered by the pre-upgrade code (whether or not backfilled since)."""
        return self.legacy or self.tags.get(TAG_BACKFILLED) == "true"

    @property
    def model_id(self) -> str:
        """``"{model_name}/{version}"``."""
        return f"{self.model_name}/{self.version}"

    @property
    def logged_model_id(self) -> str | None:
        """The ``m-…`` id of the logged model this version was registered from, if any."""
        if self.source.startswith("models:/m-"):
            return self.source.removeprefix("models:/").split("/", 1)[0]
        if self.model_uuid and self.model_uuid.startswith("m-"):
            return self.model_uuid
        return None

    @property
    def complete(self) -> bool:
        """False while its registration is still running, or after it failed part-way."""
        return self.tags.get(TAG_REGISTRATION_STATE, COMPLETE) == COMPLETE

    @property
    def registration_run_id(self) -> str | None:
        """The registration's run (None for versions registered before it was recorded)."""
        return self.tags.get(TAG_REGISTRATION_RUN)

    @property
    def is_hokusai(self) -> bool:
        """True for a completely registered version with Hokusai attribution (either layout),
        under a name Hokusai registers to: another team's model whose tags or run params happen
        to look like Hokusai's is not one, and a version whose registration has not completed
        is not registered."""
        return (
            self.model_type is not None and is_hokusai_model_name(self.model_name) and self.complete
        )

    @classmethod
    def from_version(cls, mv: Any, run: Any | None = None) -> VersionRecord:
        """Build from an MLflow ``ModelVersion``; ``run`` is needed only for legacy versions."""
        tags: dict[str, str] = dict(mv.tags or {})
        common = {
            "model_name": mv.name,
            "version": str(mv.version),
            "run_id": mv.run_id,
            "source": mv.source or "",
            "created_at": int(mv.creation_timestamp or 0),
            "stage": None if mv.current_stage in (None, "None") else mv.current_stage,
            "aliases": sorted(getattr(mv, "aliases", None) or []),
            "status": mv.status,
            "tags": tags,
        }
        if TAG_MODEL_TYPE in tags:
            return cls(
                **common,
                model_type=tags[TAG_MODEL_TYPE],
                is_baseline=tags.get(TAG_IS_BASELINE) == "true",
                model_uuid=tags.get(TAG_MODEL_UUID),
                baseline_id=tags.get(TAG_BASELINE_ID),
                contributor=tags.get(TAG_CONTRIBUTOR),
                delta_metrics=_json_floats(tags.get(TAG_DELTA_METRICS)),
                legacy=False,
            )
        return cls._from_legacy(common, tags, run)

    def with_run(self, run: Any | None) -> VersionRecord:
        """A legacy record re-read with its run's params (no-op for today's layout)."""
        if not self.legacy or run is None:
            return self
        common = {key: getattr(self, key) for key in _COMMON_FIELDS}
        return self._from_legacy(common, self.tags, run)

    def tags_only(self) -> VersionRecord:
        """The record as its version's tags alone describe it (legacy versions keep part of
        their attribution in their run, which searches over tags do not see)."""
        if not self.legacy:
            return self
        common = {key: getattr(self, key) for key in _COMMON_FIELDS}
        return self._from_legacy(common, self.tags, None)

    @classmethod
    def _from_legacy(
        cls, common: dict[str, Any], tags: dict[str, str], run: Any | None
    ) -> VersionRecord:
        params: dict[str, str] = dict(run.data.params) if run is not None else {}
        metrics: dict[str, float] = dict(run.data.metrics) if run is not None else {}
        match = _NAME_RE.fullmatch(common["model_name"])
        baseline_id = tags.get(LEGACY_TAG_BASELINE_ID) or params.get(LEGACY_TAG_BASELINE_ID)
        contributor = tags.get(LEGACY_TAG_CONTRIBUTOR) or params.get(LEGACY_PARAM_CONTRIBUTOR)
        is_baseline = params.get(LEGACY_PARAM_IS_BASELINE) == "True" or (
            baseline_id is None and match is not None and match["kind"] == "baseline"
        )
        model_type = params.get(LEGACY_PARAM_MODEL_TYPE) or (match["type"] if match else None)
        if not is_baseline and baseline_id is None and contributor is None:
            model_type = None  # not something Hokusai registered
        return cls(
            **common,
            model_type=model_type,
            is_baseline=is_baseline,
            model_uuid=tags.get(TAG_MODEL_UUID),
            baseline_id=baseline_id,
            contributor=_checksum_or_raw(contributor),
            delta_metrics={} if is_baseline else metrics,
            legacy=True,
        )


def legacy_metadata(run: Any) -> dict[str, Any]:
    """The ``metadata_*`` params a legacy baseline run logged, as a dict of strings."""
    params: dict[str, str] = dict(run.data.params)
    return {
        key.removeprefix(LEGACY_METADATA_PREFIX): value
        for key, value in params.items()
        if key.startswith(LEGACY_METADATA_PREFIX)
    }


def split_run_metrics(metrics: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Split a run's metrics into (absolute metrics, delta metrics logged as ``delta.*``)."""
    absolute = {k: v for k, v in metrics.items() if not k.startswith(DELTA_METRIC_PREFIX)}
    deltas = {
        k.removeprefix(DELTA_METRIC_PREFIX): v
        for k, v in metrics.items()
        if k.startswith(DELTA_METRIC_PREFIX)
    }
    return absolute, deltas


def _checksum_or_raw(address: str | None) -> str | None:
    """Legacy addresses were stored as typed; return the EIP-55 form when it is a valid one."""
    if address is None or not _ADDRESS_RE.fullmatch(address):
        return address
    from eth_utils.address import to_checksum_address

    checksum: str = to_checksum_address(address)
    return checksum


def _json_floats(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        # Someone edited the tag by hand; report it rather than fail every query on it.
        logger.warning("ignoring malformed %s tag: %.200r", TAG_DELTA_METRICS, text)
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, int | float)}


def verification_summary(tags: dict[str, str]) -> VerificationSummary | None:
    """The latest verification of a version as its tags record it; None when it was never
    verified (or its tags were edited into something unreadable, which is logged)."""
    if tags.get(TAG_VERIFIED) != "true":
        return None
    try:
        return {
            "verification_id": tags[f"{TAG_VERIFICATION}id"],
            "benchmark": tags[f"{TAG_VERIFICATION}benchmark"],
            "metric": tags[f"{TAG_VERIFICATION}metric"],
            "delta_bps": int(tags[TAG_VERIFIED_DELTA_BPS]),
            "improvement_bps": int(tags[f"{TAG_VERIFICATION}improvement_bps"]),
            "accepted": tags[f"{TAG_VERIFICATION}accepted"] == "true",
            "claim_status": tags[f"{TAG_VERIFICATION}claim_status"],
            "mlflow_run_id": tags[f"{TAG_VERIFICATION}run_id"],
            "verified_at": tags[f"{TAG_VERIFICATION}verified_at"],
        }
    except (KeyError, ValueError):
        logger.warning("ignoring incomplete or malformed verification tags: %.300r", tags)
        return None
