"""The outbox: events, one delivery per (event, endpoint), leases, and the attempt log.

A registration writes its event and the deliveries to every subscribed endpoint in one
transaction. Senders *claim* due deliveries with a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite): a claimed delivery is invisible to other senders
until its lease expires, so a sender killed mid-delivery loses nothing — its claims are simply
retried after the lease. Delivery is therefore at least once, never "at most".
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from hokusai.db import write_transaction
from hokusai.errors import EventNotFoundError
from hokusai.webhooks.retry import Attempt, Decision, RetryPolicy
from hokusai.webhooks.tables import attempts, deliveries, endpoints, events

__all__ = ["Claim", "Outbox"]

STATES = ("pending", "delivering", "delivered", "failed", "dead")


@dataclass(frozen=True)
class Claim:
    """A delivery leased to one sender, with what it needs to send it."""

    delivery_id: str
    event_id: str
    event_type: str
    body: str
    endpoint_id: str
    url: str
    secret: str
    attempts: int


class Outbox:
    """Durable event store and delivery queue in the project database."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._postgres = engine.dialect.name == "postgresql"

    @property
    def engine(self) -> sa.Engine:
        """The database engine."""
        return self._engine

    # ---- writing events ----------------------------------------------------------------

    def record(
        self,
        *,
        event_id: str,
        event_type: str,
        dedupe_key: str,
        payload: dict[str, Any],
        model_name: str | None = None,
        model_version: str | None = None,
        endpoint_ids: Iterable[str] | None = None,
        lease: tuple[str, float] | None = None,
    ) -> int | None:
        """Store an event and its deliveries; None if ``dedupe_key`` was already recorded.

        Returns the number of deliveries created (to every enabled endpoint subscribed to
        ``event_type``, or to ``endpoint_ids`` when given). With ``lease=(owner, seconds)`` the
        deliveries are created already claimed by ``owner`` (see :meth:`claims_of`), so no
        other sender can take them first.
        """
        now = self._clock()
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        with write_transaction(self._engine) as conn:
            inserted = conn.execute(
                self._insert_ignore(events).values(
                    id=event_id,
                    event_type=event_type,
                    dedupe_key=dedupe_key,
                    model_name=model_name,
                    model_version=model_version,
                    payload=body,
                    created_at=now,
                )
            )
            if inserted.rowcount == 0:
                return None
            targets = self._subscribers(conn, event_type, endpoint_ids)
            if targets:
                conn.execute(
                    deliveries.insert(),
                    [
                        {
                            "id": f"dlv_{uuid.uuid4().hex}",
                            "event_id": event_id,
                            "endpoint_id": endpoint_id,
                            "state": "pending" if lease is None else "delivering",
                            "lease_owner": None if lease is None else lease[0],
                            "lease_expires_at": None if lease is None else now + lease[1],
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for endpoint_id in targets
                    ],
                )
        return len(targets)

    def _insert_ignore(self, table: sa.Table) -> Any:
        if self._postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])

    def _subscribers(
        self, conn: sa.Connection, event_type: str, endpoint_ids: Iterable[str] | None
    ) -> list[str]:
        query = sa.select(endpoints.c.id, endpoints.c.events).where(endpoints.c.enabled)
        if endpoint_ids is not None:
            query = query.where(endpoints.c.id.in_(list(endpoint_ids)))
            return [row.id for row in conn.execute(query)]
        return [
            row.id
            for row in conn.execute(query)
            if "*" in (chosen := json.loads(row.events)) or event_type in chosen
        ]

    def existing_keys(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` are already recorded."""
        if not keys:
            return set()
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(events.c.dedupe_key).where(events.c.dedupe_key.in_(keys)))
            return {row.dedupe_key for row in rows}

    # ---- claiming and completing -------------------------------------------------------

    def claim(
        self, *, owner: str, limit: int, lease_seconds: float, event_id: str | None = None
    ) -> list[Claim]:
        """Lease up to ``limit`` due deliveries (of one event, if given) to ``owner``."""
        now = self._clock()
        due = (
            sa.select(deliveries.c.id)
            .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
            .where(*self._claimable(now))
            .order_by(deliveries.c.next_attempt_at)
            .limit(limit)
        )
        if event_id is not None:
            due = due.where(deliveries.c.event_id == event_id)
        if not self._postgres and event_id is None and not self.due_count():
            return []  # idle: a deferred read, not the SQLite write lock, 20 times a second
        if self._postgres:
            due = due.with_for_update(skip_locked=True, of=deliveries)
        with write_transaction(self._engine) as conn:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(ids))
                .values(
                    state="delivering",
                    lease_owner=owner,
                    lease_expires_at=now + lease_seconds,
                    updated_at=now,
                )
            )
            return self._claims(conn, deliveries.c.id.in_(ids))

    def claims_of(self, event_id: str, *, owner: str) -> list[Claim]:
        """The deliveries of ``event_id`` that ``owner`` holds (created with ``lease``)."""
        with self._engine.connect() as conn:
            return self._claims(
                conn, deliveries.c.event_id == event_id, deliveries.c.lease_owner == owner
            )

    @staticmethod
    def _claims(conn: sa.Connection, *conditions: Any) -> list[Claim]:
        rows = conn.execute(
            sa.select(
                deliveries.c.id,
                deliveries.c.event_id,
                deliveries.c.attempts,
                events.c.event_type,
                events.c.payload,
                endpoints.c.id.label("endpoint_id"),
                endpoints.c.url,
                endpoints.c.secret,
            )
            .join(events, events.c.id == deliveries.c.event_id)
            .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
            .where(*conditions)
            .order_by(deliveries.c.next_attempt_at)
        ).all()
        return [
            Claim(
                delivery_id=row.id,
                event_id=row.event_id,
                event_type=row.event_type,
                body=row.payload,
                endpoint_id=row.endpoint_id,
                url=row.url,
                secret=row.secret,
                attempts=row.attempts,
            )
            for row in rows
        ]

    @staticmethod
    def _claimable(now: float) -> tuple[Any, ...]:
        return (
            endpoints.c.enabled,
            deliveries.c.state.in_(("pending", "delivering")),
            deliveries.c.next_attempt_at <= now,
            sa.or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < now),
        )

    def due_count(self) -> int:
        """How many deliveries a sender could claim right now."""
        with self._engine.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(deliveries)
                .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
                .where(*self._claimable(self._clock()))
            ).scalar()
        return int(count or 0)

    def complete(
        self, claim: Claim, attempt: Attempt, *, owner: str, policy: RetryPolicy
    ) -> Decision:
        """Record an attempt and move the delivery on (if ``owner`` still holds the lease)."""
        now = self._clock()
        number = claim.attempts + 1
        decision = policy.decide(attempt, attempts_so_far=number)
        values: dict[str, Any] = {
            "state": decision.state,
            "attempts": number,
            "lease_owner": None,
            "lease_expires_at": None,
            "last_status_code": attempt.status_code,
            "last_error": attempt.error or decision.reason,
            "updated_at": now,
        }
        if decision.state == "delivered":
            values["delivered_at"] = now
        elif decision.state == "pending":
            values["next_attempt_at"] = now + decision.delay
        with write_transaction(self._engine) as conn:
            conn.execute(
                attempts.insert().values(
                    delivery_id=claim.delivery_id,
                    attempted_at=now - attempt.latency_ms / 1000,
                    status_code=attempt.status_code,
                    latency_ms=attempt.latency_ms,
                    error=attempt.error,
                    response_snippet=attempt.response_snippet,
                    worker=owner,
                )
            )
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id == claim.delivery_id, deliveries.c.lease_owner == owner)
                .values(**values)
            )
            if decision.disable_endpoint:
                conn.execute(
                    endpoints.update()
                    .where(endpoints.c.id == claim.endpoint_id)
                    .values(
                        enabled=False,
                        disabled_reason=f"410 Gone from the receiver at {time.ctime(now)}",
                        updated_at=now,
                    )
                )
        return decision

    def release(self, claims: list[Claim], *, owner: str) -> None:
        """Give back claims that were not attempted (shutdown), for others to take at once."""
        if not claims:
            return
        with write_transaction(self._engine) as conn:
            conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.id.in_([c.delivery_id for c in claims]),
                    deliveries.c.lease_owner == owner,
                )
                .values(state="pending", lease_owner=None, lease_expires_at=None)
            )

    # ---- reading and redelivery --------------------------------------------------------

    def deliveries(
        self, *, state: str | None = None, event_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Deliveries with their event's model id, newest first."""
        query = (
            sa.select(
                deliveries,
                events.c.event_type,
                events.c.model_name,
                events.c.model_version,
                endpoints.c.url,
            )
            .join(events, events.c.id == deliveries.c.event_id)
            .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
            .order_by(deliveries.c.created_at.desc())
            .limit(limit)
        )
        if state is not None:
            query = query.where(deliveries.c.state == state)
        if event_id is not None:
            query = query.where(deliveries.c.event_id == event_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {
                "delivery_id": row.id,
                "event_id": row.event_id,
                "event_type": row.event_type,
                "model_id": f"{row.model_name}/{row.model_version}" if row.model_name else None,
                "endpoint_id": row.endpoint_id,
                "url": row.url,
                "state": row.state,
                "attempts": row.attempts,
                "next_attempt_at": row.next_attempt_at,
                "last_status_code": row.last_status_code,
                "last_error": row.last_error,
                "delivered_at": row.delivered_at,
                "created_at": row.created_at,
            }
            for row in rows
        ]

    def attempts(self, delivery_id: str) -> list[dict[str, Any]]:
        """The attempt log of one delivery, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(attempts)
                .where(attempts.c.delivery_id == delivery_id)
                .order_by(attempts.c.id)
            ).all()
        return [dict(row._mapping) for row in rows]

    def event(self, event_id: str) -> dict[str, Any]:
        """One event with its payload."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(events).where(events.c.id == event_id)).first()
        if row is None:
            raise EventNotFoundError(f"No webhook event {event_id!r}.")
        return {**dict(row._mapping), "payload": json.loads(row.payload)}

    def redeliver(self, event_id: str) -> int:
        """Re-queue the failed or dead deliveries of an event (same webhook-id)."""
        self.event(event_id)  # raises when unknown
        return self._requeue(deliveries.c.event_id == event_id)

    def redeliver_all_failed(self) -> int:
        """Re-queue every failed or dead delivery."""
        return self._requeue(sa.true())

    def _requeue(self, condition: Any) -> int:
        now = self._clock()
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                deliveries.update()
                .where(condition, deliveries.c.state.in_(("failed", "dead")))
                .values(
                    state="pending",
                    attempts=0,
                    next_attempt_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
            return int(result.rowcount)

    def stats(self) -> dict[str, Any]:
        """Counts by state, attempts made, and attempt latency percentiles (ms)."""
        with self._engine.connect() as conn:
            counts: dict[str, int] = dict(
                conn.execute(
                    sa.select(deliveries.c.state, sa.func.count()).group_by(deliveries.c.state)
                ).all()
            )
            total_attempts = conn.execute(sa.select(sa.func.count()).select_from(attempts)).scalar()
            latencies = sorted(
                conn.execute(
                    sa.select(attempts.c.latency_ms).order_by(attempts.c.id.desc()).limit(1000)
                ).scalars()
            )
        return {
            **{state: int(counts.get(state, 0)) for state in STATES},
            "due": self.due_count(),
            "attempts": int(total_attempts or 0),
            "latency_ms_p50": _percentile(latencies, 0.50),
            "latency_ms_p99": _percentile(latencies, 0.99),
        }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]
