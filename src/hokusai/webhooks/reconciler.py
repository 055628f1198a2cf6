"""Reconciler: every registered Hokusai version gets its ``model_registered`` event.

A crash between registration and the outbox write, or a version registered by another tool
with Hokusai tags, leaves a version without an event. Each pass looks at the newest ``limit``
Hokusai versions (bounded cost), finds those whose event is missing, and records it. Versions
tagged by the backfill are not announced: they predate the outbox and were announced, if at
all, by the pre-upgrade publisher.
"""

from __future__ import annotations

import logging
import time

from hokusai.registry.queries import RegistryQueries
from hokusai.registry.records import TAG_BACKFILLED, VersionRecord
from hokusai.webhooks.outbox import Outbox
from hokusai.webhooks.payloads import MODEL_REGISTERED, model_registered_payload, new_event_id

__all__ = ["reconcile", "registered_key"]

logger = logging.getLogger(__name__)


def registered_key(model_name: str, version: str) -> str:
    """The outbox dedupe key of a version's ``model_registered`` event."""
    return f"{MODEL_REGISTERED}:{model_name}/{version}"


def reconcile(
    outbox: Outbox,
    queries: RegistryQueries,
    *,
    limit: int = 500,
    min_age_seconds: float = 30.0,
) -> list[str]:
    """Record the missing events of the newest ``limit`` versions; returns their model ids.

    Versions younger than ``min_age_seconds`` are left to their own registration, which may
    still be writing its event — or rolling back.
    """
    newest_allowed_ms = (time.time() - min_age_seconds) * 1000
    candidates: list[VersionRecord] = []
    for mv in queries.search(
        "name LIKE 'hokusai_%'", order_by=["creation_timestamp DESC"], limit=limit
    ):
        record = VersionRecord.from_version(mv)
        if record.created_at > newest_allowed_ms:
            continue
        if not record.legacy and record.tags.get(TAG_BACKFILLED) != "true":
            candidates.append(record)
    known = outbox.existing_keys([registered_key(r.model_name, r.version) for r in candidates])
    created: list[str] = []
    for record in candidates:
        if registered_key(record.model_name, record.version) in known:
            continue
        description = queries.describe(record)
        event_id = new_event_id()
        recorded = outbox.record(
            event_id=event_id,
            event_type=MODEL_REGISTERED,
            dedupe_key=registered_key(record.model_name, record.version),
            payload=dict(model_registered_payload(description, event_id=event_id)),
            model_name=record.model_name,
            model_version=record.version,
        )
        if recorded is not None:
            created.append(record.model_id)
            logger.warning("reconciler recorded the missing event of %s", record.model_id)
    return created
