"""The outbox: events, one delivery per (event, endpoint), leases, and the attempt log.

A registration writes its event and the deliveries to every subscribed endpoint in one
transaction. A sender *claims* one due delivery right before sending it (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), and the claim is the attempt's start:
in the same transaction the delivery is leased to the sender, its ``attempts`` counter is
incremented and an attempt row is logged ``in flight``. A leased delivery is invisible to other
senders until its lease expires, and a sender's attempt ends (its total deadline) well before
that, so no attempt is ever in flight twice.

A sender killed mid-attempt loses nothing and cannot loop forever: when its lease expires, the
next claim finds the attempt still ``in flight``, logs it as lost, and lets the retry policy
decide (retry after the scheduled delay, or ``dead`` once the delivery had all its attempts).
Delivery is therefore at least once, never "at most".

:meth:`Outbox.replay` gives an endpoint the events recorded before it existed or while it was
disabled, with their original event ids; redelivery re-queues failed and dead deliveries.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from hokusai.config import Settings, parse_retry_schedule
from hokusai.db import write_transaction
from hokusai.errors import EndpointNotFoundError, EventNotFoundError
from hokusai.webhooks.retry import Attempt, Decision, RetryPolicy
from hokusai.webhooks.tables import attempts, deliveries, endpoints, events

__all__ = ["IN_FLIGHT", "LOST", "Claim", "Outbox"]

logger = logging.getLogger(__name__)

STATES = ("pending", "delivering", "delivered", "failed", "dead")

IN_FLIGHT = "in flight"
"""The ``error`` of an attempt row between its claim and its outcome."""

LOST = "lost: the sender died or stalled mid-attempt (its lease expired)"
"""The ``error`` of an attempt whose sender never recorded an outcome."""


@dataclass(frozen=True)
class Claim:
    """A delivery leased to one sender, its attempt started, with what it needs to send it."""

    delivery_id: str
    event_id: str
    event_type: str
    body: str
    endpoint_id: str
    url: str
    secret: str
    attempt: int
    """This attempt's number, already counted in the delivery's ``attempts``."""
    attempt_id: int
    """Its row in the attempt log, ``in flight`` until :meth:`Outbox.complete`."""
    lease_expires_at: float


def _default_policy() -> RetryPolicy:
    return RetryPolicy(
        parse_retry_schedule(str(Settings.model_fields["webhook_retry_schedule"].default))
    )


class Outbox:
    """Durable event store and delivery queue in the project database.

    ``policy`` settles the attempts of senders that died mid-send when :meth:`claim` is not
    given one (default: the default retry schedule).
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._policy = policy or _default_policy()
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
        connection: sa.Connection | None = None,
    ) -> int | None:
        """Store an event and its deliveries; None if ``dedupe_key`` was already recorded.

        Returns the number of deliveries created (to every enabled endpoint subscribed to
        ``event_type``, or to ``endpoint_ids`` when given). With ``lease=(owner, seconds)`` the
        deliveries are created already leased to ``owner`` (who starts them with
        :meth:`claim` and ``event_id``), so no other sender can take them first.
        """
        now = self._clock()
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        with self._transaction(connection) as conn:
            inserted = conn.execute(
                self._insert_ignore(events).values(
                    id=event_id,
                    event_type=event_type,
                    dedupe_key=dedupe_key,
                    model_name=model_name,
                    model_version=model_version,
                    payload=body,
                    created_at=now,
                ),
                # An INSERT's rowcount is kept only when asked (SQLAlchemy 2.1 on psycopg gives
                # -1 otherwise), and 0 is how a duplicate dedupe key shows.
                execution_options={"preserve_rowcount": True},
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

    @contextmanager
    def _transaction(self, connection: sa.Connection | None) -> Iterator[sa.Connection]:
        """A write transaction of its own, or the caller's open one."""
        if connection is not None:
            yield connection
            return
        with write_transaction(self._engine) as conn:
            yield conn

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
        self,
        *,
        owner: str,
        lease_seconds: float,
        limit: int = 1,
        event_id: str | None = None,
        policy: RetryPolicy | None = None,
    ) -> list[Claim]:
        """Start the next due attempt (up to ``limit``; of one event, if given) for ``owner``.

        Each claimed delivery is leased for ``lease_seconds``, its ``attempts`` incremented and
        its attempt logged ``in flight`` before this returns: send it at once, within the lease.
        A due delivery whose lease expired with an attempt still in flight is settled instead
        of claimed: the attempt is logged as lost and ``policy`` decides (retry or dead). With
        ``event_id``, deliveries that ``owner`` already leases (created with ``lease``) count
        as due.
        """
        now = self._clock()
        lease_free = sa.or_(
            deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < now
        )
        if event_id is not None:
            lease_free = sa.or_(lease_free, deliveries.c.lease_owner == owner)
        due = (
            sa.select(
                deliveries.c.id,
                deliveries.c.state,
                deliveries.c.attempts,
                deliveries.c.lease_expires_at,
            )
            .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
            .where(*self._due(now), lease_free)
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
            rows = conn.execute(due).all()
            expired = [
                row.id
                for row in rows
                if row.state == "delivering"
                and row.lease_expires_at is not None
                and row.lease_expires_at < now
            ]
            lost = self._in_flight(conn, expired)
            for row in rows:
                if row.id in lost:
                    self._settle_lost(conn, row.id, row.attempts, now, policy or self._policy)
            started: dict[str, tuple[int, int]] = {}
            for row in rows:
                if row.id in lost:
                    continue
                conn.execute(
                    deliveries.update()
                    .where(deliveries.c.id == row.id)
                    .values(
                        state="delivering",
                        lease_owner=owner,
                        lease_expires_at=now + lease_seconds,
                        attempts=row.attempts + 1,
                        updated_at=now,
                    )
                )
                attempt_id = conn.execute(
                    attempts.insert()
                    .values(
                        delivery_id=row.id,
                        attempted_at=now,
                        status_code=None,
                        latency_ms=0.0,
                        error=IN_FLIGHT,
                        response_snippet=None,
                        worker=owner,
                    )
                    .returning(attempts.c.id)
                ).scalar_one()
                started[row.id] = (row.attempts + 1, int(attempt_id))
            if not started:
                return []
            return self._claims(conn, started, now + lease_seconds)

    @staticmethod
    def _in_flight(conn: sa.Connection, delivery_ids: list[str]) -> set[str]:
        if not delivery_ids:
            return set()
        return set(
            conn.execute(
                sa.select(attempts.c.delivery_id).where(
                    attempts.c.delivery_id.in_(delivery_ids), attempts.c.error == IN_FLIGHT
                )
            ).scalars()
        )

    def _settle_lost(
        self, conn: sa.Connection, delivery_id: str, number: int, now: float, policy: RetryPolicy
    ) -> None:
        """The attempt of a sender that died mid-send counts: log it lost, then retry or dead."""
        decision = policy.decide(Attempt(None, 0.0, error=LOST), attempts_so_far=number)
        conn.execute(
            attempts.update()
            .where(attempts.c.delivery_id == delivery_id, attempts.c.error == IN_FLIGHT)
            .values(error=LOST)
        )
        values: dict[str, Any] = {
            "state": decision.state,
            "lease_owner": None,
            "lease_expires_at": None,
            "last_status_code": None,
            "last_error": LOST,
            "updated_at": now,
        }
        if decision.state == "pending":
            values["next_attempt_at"] = now + decision.delay
        conn.execute(deliveries.update().where(deliveries.c.id == delivery_id).values(**values))
        logger.warning(
            "delivery %s: attempt %d was lost (sender died or stalled) -> %s",
            delivery_id,
            number,
            decision.state,
        )

    @staticmethod
    def _claims(
        conn: sa.Connection, started: dict[str, tuple[int, int]], lease_expires_at: float
    ) -> list[Claim]:
        rows = conn.execute(
            sa.select(
                deliveries.c.id,
                deliveries.c.event_id,
                events.c.event_type,
                events.c.payload,
                endpoints.c.id.label("endpoint_id"),
                endpoints.c.url,
                endpoints.c.secret,
            )
            .join(events, events.c.id == deliveries.c.event_id)
            .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
            .where(deliveries.c.id.in_(list(started)))
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
                attempt=started[row.id][0],
                attempt_id=started[row.id][1],
                lease_expires_at=lease_expires_at,
            )
            for row in rows
        ]

    @staticmethod
    def _due(now: float) -> tuple[Any, ...]:
        return (
            endpoints.c.enabled,
            deliveries.c.state.in_(("pending", "delivering")),
            deliveries.c.next_attempt_at <= now,
        )

    @classmethod
    def _claimable(cls, now: float) -> tuple[Any, ...]:
        return (
            *cls._due(now),
            sa.or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < now),
        )

    def due_count(self) -> int:
        """How many deliveries a sender could claim (or settle) right now."""
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
        """Record the outcome of a claimed attempt and move the delivery on.

        The delivery moves only if ``owner`` still holds its lease; the attempt row gets the
        outcome either way (it is what happened on the wire).
        """
        now = self._clock()
        decision = policy.decide(attempt, attempts_so_far=claim.attempt)
        values: dict[str, Any] = {
            "state": decision.state,
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
                attempts.update()
                .where(attempts.c.id == claim.attempt_id)
                .values(
                    status_code=attempt.status_code,
                    latency_ms=attempt.latency_ms,
                    error=attempt.error,
                    response_snippet=attempt.response_snippet,
                )
            )
            held = conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.id == claim.delivery_id,
                    deliveries.c.lease_owner == owner,
                    deliveries.c.state == "delivering",
                )
                .values(**values)
            ).rowcount
            if decision.disable_endpoint:
                conn.execute(
                    endpoints.update()
                    .where(endpoints.c.id == claim.endpoint_id)
                    .values(
                        enabled=False,
                        disabled_reason=f"410 Gone from the receiver at {_iso(now)}",
                        updated_at=now,
                    )
                )
        if not held:
            logger.warning(
                "delivery %s: the lease of attempt %d expired before its outcome was recorded",
                claim.delivery_id,
                claim.attempt,
            )
        return decision

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
                .values(**self._requeued(now))
            )
            return int(result.rowcount)

    @staticmethod
    def _requeued(now: float) -> dict[str, Any]:
        return {
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        }

    def replay(
        self,
        endpoint_id: str,
        *,
        since: float,
        until: float | None = None,
        event_types: Iterable[str],
    ) -> int:
        """Queue for one endpoint the events of ``event_types`` recorded in [since, until).

        Deliveries keep the event's id (the receiver's ``webhook-id``). An event the endpoint
        already has a delivery for is skipped, unless that delivery is failed or dead: it is
        re-queued, as :meth:`redeliver` would. Returns how many deliveries were queued, so
        replaying the same window twice queues nothing the second time.
        """
        chosen = list(event_types)
        if not chosen:
            return 0
        now = self._clock()
        window = [events.c.created_at >= since, events.c.event_type.in_(chosen)]
        if until is not None:
            window.append(events.c.created_at < until)
        with write_transaction(self._engine) as conn:
            found = conn.execute(
                sa.select(endpoints.c.id).where(endpoints.c.id == endpoint_id)
            ).first()
            if found is None:
                raise EndpointNotFoundError(f"No webhook endpoint {endpoint_id!r}.")
            requeued = conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.endpoint_id == endpoint_id,
                    deliveries.c.state.in_(("failed", "dead")),
                    deliveries.c.event_id.in_(sa.select(events.c.id).where(*window)),
                )
                .values(**self._requeued(now))
            ).rowcount
            missing = list(
                conn.execute(
                    sa.select(events.c.id)
                    .where(
                        *window,
                        ~sa.exists().where(
                            deliveries.c.event_id == events.c.id,
                            deliveries.c.endpoint_id == endpoint_id,
                        ),
                    )
                    .order_by(events.c.created_at)
                ).scalars()
            )
            for event_id in missing:
                conn.execute(
                    deliveries.insert().values(
                        id=f"dlv_{uuid.uuid4().hex}",
                        event_id=event_id,
                        endpoint_id=endpoint_id,
                        state="pending",
                        lease_owner=None,
                        lease_expires_at=None,
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
        return int(requeued) + len(missing)

    def stats(self) -> dict[str, Any]:
        """Counts by state, attempts made, and attempt latency percentiles (ms)."""
        with self._engine.connect() as conn:
            counts: dict[str, int] = dict(
                conn.execute(
                    sa.select(deliveries.c.state, sa.func.count()).group_by(deliveries.c.state)
                ).all()
            )
            total_attempts = conn.execute(sa.select(sa.func.count()).select_from(attempts)).scalar()
            finished = sa.or_(
                attempts.c.error.is_(None), attempts.c.error.not_in((IN_FLIGHT, LOST))
            )
            latencies = sorted(
                conn.execute(
                    sa.select(attempts.c.latency_ms)
                    .where(finished)
                    .order_by(attempts.c.id.desc())
                    .limit(1000)
                ).scalars()
            )
        return {
            **{state: int(counts.get(state, 0)) for state in STATES},
            "due": self.due_count(),
            "attempts": int(total_attempts or 0),
            "latency_ms_p50": _percentile(latencies, 0.50),
            "latency_ms_p99": _percentile(latencies, 0.99),
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]
