"""Reconciler: every completely registered Hokusai version gets its ``model_registered`` event,
eventually, and no other version ever does.

A registration records its event right after its version is marked complete; a crash or an
unreachable database in between leaves a complete version without an event, and a version
registered by another tool with Hokusai tags has none either. Each pass repairs such gaps with
bounded work, resuming where the last pass stopped:

- a **cursor** per registered model (the next version number to look at, reset when the model
  was deleted and created again, since MLflow then numbers from 1), so every version is looked at
  once, however old, and a pass reads only what is new;
- versions still ``registering`` when the cursor passed them are kept in a **pending** list and
  looked at again on later passes, until they complete (event recorded), disappear (rolled
  back) or are abandoned (``abandon_after_seconds``, logged);
- the cursor never passes a version younger than ``min_age_seconds``: its own registration may
  be about to record its event.

Versions registered by the pre-upgrade code (and those tagged by the backfill) are never
announced: they predate the outbox.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from hokusai.db import write_transaction
from hokusai.registry.filters import equals
from hokusai.registry.index import IndexEntry, RegistryIndex
from hokusai.registry.queries import RegistryQueries
from hokusai.registry.records import (
    REGISTERING,
    TAG_BACKFILLED,
    TAG_REGISTRATION_STATE,
    VersionRecord,
)
from hokusai.registry.results import RegistrationResult
from hokusai.webhooks.outbox import Outbox
from hokusai.webhooks.payloads import MODEL_REGISTERED, model_registered_payload, new_event_id
from hokusai.webhooks.tables import reconciler_cursors, reconciler_pending

__all__ = ["reconcile", "registered_key", "registered_key_of"]

logger = logging.getLogger(__name__)

ABANDON_AFTER_SECONDS = 24 * 3600.0


def registered_key(model_name: str, version: str, registration_run_id: str | None) -> str:
    """The outbox dedupe key of a version's ``model_registered`` event.

    Keyed on the registration's run, which never repeats (a registered model deleted and
    registered again restarts its version numbers at 1). Versions registered before the run
    was recorded keep the key they were announced under.
    """
    if registration_run_id:
        return f"{MODEL_REGISTERED}:run:{registration_run_id}"
    return f"{MODEL_REGISTERED}:{model_name}/{version}"


def registered_key_of(result: RegistrationResult) -> str:
    """The dedupe key of a registration result's event."""
    return registered_key(
        result["model_name"], str(result["version"]), result.get("registration_run_id")
    )


def _key_of(record: VersionRecord) -> str:
    return registered_key(record.model_name, record.version, record.registration_run_id)


def reconcile(
    outbox: Outbox,
    queries: RegistryQueries,
    *,
    limit: int = 500,
    min_age_seconds: float = 30.0,
    abandon_after_seconds: float = ABANDON_AFTER_SECONDS,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """One bounded pass (at most ``limit`` versions read); returns the model ids it recorded
    events for."""
    now = clock()
    created: list[str] = []
    budget = limit
    engine = outbox.engine

    # 1. Versions the cursor passed while they were registering, or whose event could not be
    #    recorded then. At most half the budget, so new versions are always reached too.
    with engine.connect() as conn:
        pending = conn.execute(
            sa.select(reconciler_pending)
            .order_by(reconciler_pending.c.first_seen_at)
            .limit(max(1, budget // 2))
        ).all()
    for row in pending:
        budget -= 1
        try:
            record = queries.record(row.model_name, row.version)
            abandoned = now - row.first_seen_at > abandon_after_seconds
            if record is not None and record.complete:
                if _announceable(record):
                    _ensure_event(outbox, queries, record, created)
            elif (
                record is not None
                and record.tags.get(TAG_REGISTRATION_STATE) == REGISTERING
                and not abandoned
            ):
                continue  # still registering: look again next pass
            elif record is not None:
                logger.warning(
                    "reconciler: %s has been registering for %.0f s; abandoned, never announced",
                    record.model_id,
                    now - row.first_seen_at,
                )
        except Exception:
            if now - row.first_seen_at <= abandon_after_seconds:
                logger.exception(
                    "reconciler: %s/%s failed; retried next pass", row.model_name, row.version
                )
                continue
            logger.exception(
                "reconciler: gave up on %s/%s after %.0f s",
                row.model_name,
                row.version,
                now - row.first_seen_at,
            )
        _drop_pending(engine, row.model_name, row.version)

    # 2. New versions of every Hokusai registered model, from each model's cursor.
    newest_allowed_ms = (now - min_age_seconds) * 1000
    for model in queries.registered_models("hokusai_%"):
        if budget <= 0:
            break
        name = str(model.name)
        model_created = int(model.creation_timestamp or 0)
        next_version = _cursor(engine, name, model_created)
        scanned = 0
        last_done = next_version - 1
        by_name = equals("name", name)
        try:
            for mv in queries.search(
                f"{by_name.text} AND version_number >= {int(next_version)}",
                order_by=["version_number ASC"],
                limit=budget,
            ):
                scanned += 1
                if not by_name.admits(mv.name):
                    continue
                record = VersionRecord.from_version(mv)
                if record.created_at > newest_allowed_ms:
                    break  # its own registration may still be recording its event
                if record.tags.get(TAG_REGISTRATION_STATE) == REGISTERING:
                    _add_pending(engine, record, now)
                elif _announceable(record):
                    try:
                        _ensure_event(outbox, queries, record, created)
                    except Exception:
                        # One unreadable version must not stop the cursor: retried from the
                        # pending list.
                        logger.exception(
                            "reconciler: the event of %s could not be recorded now",
                            record.model_id,
                        )
                        _add_pending(engine, record, now)
                last_done = int(record.version)
        finally:
            budget -= scanned
            if last_done >= next_version:
                _save_cursor(engine, name, model_created, last_done + 1, now)
    return created


def _announceable(record: VersionRecord) -> bool:
    """A completely registered Hokusai version of this release (not pre-upgrade/backfilled)."""
    return record.is_hokusai and not record.legacy and record.tags.get(TAG_BACKFILLED) != "true"


def _ensure_event(
    outbox: Outbox, queries: RegistryQueries, record: VersionRecord, created: list[str]
) -> None:
    """Give a complete version what its registration would have written: its index row and
    its event, in one transaction."""
    key = _key_of(record)
    index = RegistryIndex(outbox.engine, queries)
    has_event = bool(outbox.existing_keys([key]))
    with outbox.engine.connect() as conn:
        indexed = index.holds(conn, record.model_name, record.version, record.registration_run_id)
    if has_event and indexed:
        return
    entry = IndexEntry.from_record(queries, record)
    if entry is None:
        return
    description: dict[str, Any] = {
        **entry.description,
        "stage": record.stage,
        "aliases": record.aliases,
    }
    event_id = new_event_id()
    with write_transaction(outbox.engine) as conn:
        if not index.holds(conn, record.model_name, record.version, record.registration_run_id):
            index.put(conn, entry)
        recorded = None
        if not has_event:
            recorded = outbox.record(
                event_id=event_id,
                event_type=MODEL_REGISTERED,
                dedupe_key=key,
                payload=dict(model_registered_payload(description, event_id=event_id)),
                model_name=record.model_name,
                model_version=record.version,
                connection=conn,
            )
    if recorded is not None:
        created.append(record.model_id)
        logger.warning("reconciler recorded the missing event of %s", record.model_id)


def _cursor(engine: sa.Engine, name: str, model_created: int) -> int:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(reconciler_cursors).where(reconciler_cursors.c.model_name == name)
        ).first()
    if row is None or row.model_created_at != model_created:
        return 1  # new, or deleted and registered again: MLflow numbers from 1 again
    return int(row.next_version)


def _save_cursor(
    engine: sa.Engine, name: str, model_created: int, next_version: int, now: float
) -> None:
    values = {
        "model_name": name,
        "model_created_at": model_created,
        "next_version": next_version,
        "updated_at": now,
    }
    with write_transaction(engine) as conn:
        statement = _insert(engine, reconciler_cursors).values(**values)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["model_name"],
                set_={k: v for k, v in values.items() if k != "model_name"},
            )
        )


def _add_pending(engine: sa.Engine, record: VersionRecord, now: float) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            _insert(engine, reconciler_pending)
            .values(model_name=record.model_name, version=record.version, first_seen_at=now)
            .on_conflict_do_nothing(index_elements=["model_name", "version"])
        )


def _drop_pending(engine: sa.Engine, name: str, version: str) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            reconciler_pending.delete().where(
                reconciler_pending.c.model_name == name,
                reconciler_pending.c.version == version,
            )
        )


def _insert(engine: sa.Engine, table: sa.Table) -> Any:
    """An INSERT that can be told what to do on a key conflict (concurrent passes are safe)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)
