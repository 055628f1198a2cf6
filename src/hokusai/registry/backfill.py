"""Backfill: give versions registered by the pre-upgrade code today's ``hokusai.*`` tags.

Pre-upgrade versions stay readable without it (queries read their run params), but only tagged
versions can be found by uuid and searched in MLflow's UI by ``hokusai.*`` tags. Backfilled
versions are marked ``hokusai.backfilled`` and never announced by the webhook reconciler: they
predate the outbox. The backfill is idempotent and resumable: ``hokusai.model_type`` is
written last, and it is what marks a version as done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from hokusai.errors import HokusaiError
from hokusai.registry.backend import translate_mlflow_error
from hokusai.registry.queries import RegistryQueries
from hokusai.registry.records import (
    TAG_BACKFILLED,
    TAG_BASELINE_ID,
    TAG_CONTRIBUTOR,
    TAG_DELTA_METRICS,
    TAG_IS_BASELINE,
    TAG_MODEL_TYPE,
    TAG_MODEL_UUID,
    VersionRecord,
)

__all__ = ["BackfillReport", "backfill"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


@dataclass
class BackfillReport:
    """What a backfill did (or, with ``dry_run``, would do)."""

    dry_run: bool
    scanned: int = 0
    updated: dict[str, dict[str, str]] = field(default_factory=dict)
    """model_id → the tags written (or that would be written)."""
    already_tagged: int = 0
    not_hokusai: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    """model_id → why it could not be backfilled."""

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data."""
        return asdict(self)


def backfill(
    client: Any,
    queries: RegistryQueries,
    *,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
) -> BackfillReport:
    """Tag every pre-upgrade Hokusai version; ``on_progress(done, total)`` after each."""
    report = BackfillReport(dry_run=dry_run)
    versions = list(queries.search("name LIKE 'hokusai_%'"))
    total = len(versions)
    for done, mv in enumerate(versions, start=1):
        report.scanned += 1
        record = queries.record_of(mv)
        if not record.legacy:
            report.already_tagged += 1
        elif not record.is_hokusai:
            report.not_hokusai += 1
        else:
            try:
                tags = _tags_for(record, queries)
                if not dry_run:
                    for key, value in tags.items():  # model_type last: it marks "done"
                        client.set_model_version_tag(mv.name, mv.version, key, value)
                report.updated[record.model_id] = tags
            except HokusaiError as exc:
                report.failed[record.model_id] = exc.message
            except Exception as exc:  # noqa: BLE001 - one bad version must not stop the rest
                report.failed[record.model_id] = translate_mlflow_error(exc, "tagging").message
            if record.model_id in report.failed:
                reason = report.failed[record.model_id]
                logger.warning("backfill %s failed: %s", record.model_id, reason)
        if on_progress is not None:
            on_progress(done, total)
    return report


def _tags_for(record: VersionRecord, queries: RegistryQueries) -> dict[str, str]:
    import json

    from eth_utils.address import to_checksum_address

    model_uuid = record.model_uuid or record.logged_model_id or queries.card_uuid(record)
    if not model_uuid:
        raise HokusaiError("its MLmodel records no model_uuid")
    tags = {TAG_MODEL_UUID: model_uuid, TAG_IS_BASELINE: "true" if record.is_baseline else "false"}
    if not record.is_baseline:
        if record.baseline_id:
            tags[TAG_BASELINE_ID] = record.baseline_id
        if record.contributor:
            # Legacy code checked only the 0x+40-hex shape; store the canonical checksum form.
            tags[TAG_CONTRIBUTOR] = to_checksum_address(record.contributor)
        tags[TAG_DELTA_METRICS] = json.dumps(record.delta_metrics, sort_keys=True)
    tags[TAG_BACKFILLED] = "true"
    assert record.model_type is not None
    tags[TAG_MODEL_TYPE] = record.model_type
    return tags
