"""``VerificationJobs``: the durable queue of verifications asked for and not yet evaluated.

A verification takes seconds to minutes (two models scored on every benchmark row, then the
bootstrap), longer than a request should stay open. The REST service plans it (every input
checked: the benchmark's rows are fetched and both models loaded, but nothing is scored),
releases what planning loaded, records a job here and answers ``202``; runners — a thread of
each API process, or ``hokusai verifications worker`` — claim jobs one at a time and evaluate
them.

The job's id is the verification's own id (``ver_…``, derived from its inputs), so asking twice
for the same verification finds the same job: :meth:`VerificationJobs.enqueue` inserts it once,
and only re-queues it when it had failed.

Claims are leases, like the webhook outbox's: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a write
transaction (``BEGIN IMMEDIATE``) on SQLite with a conditional ``UPDATE``, so any number of
runners in any number of processes share the queue and no job is evaluated by two at once. A
runner renews its lease while it evaluates; a runner that dies stops renewing, and once the
lease has expired the job is claimed again by another. Every claim counts an attempt: after
:data:`MAX_ATTEMPTS` attempts that failed for reasons other than the input (a store that did not
answer, a runner that died), the job stays ``failed``. An input error (the candidate, benchmark
or metric do not fit) fails it at once — trying again would fail the same way.

States: ``queued`` → ``running`` → ``succeeded`` | ``failed`` (``running`` → ``queued`` again
for a retry). For a queued job ``lease_until`` is the earliest time it may be claimed (the retry
delay), for a running one the end of its runner's lease.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from hokusai.db import write_transaction
from hokusai.errors import VerificationNotFoundError
from hokusai.jobs.tables import verification_jobs as jobs

__all__ = [
    "MAX_ATTEMPTS",
    "STATES",
    "Enqueued",
    "JobInputs",
    "VerificationJob",
    "VerificationJobs",
]

STATES = ("queued", "running", "succeeded", "failed")

MAX_ATTEMPTS = 3
"""Attempts a job gets for failures that are not its input's fault (lost runners included)."""

LOST = "verification_failed"
"""The code of a job whose runners kept dying: nothing raised, the leases just ran out."""


class JobInputs(Protocol):
    """What a job is made from: a verification plan (``ModelRegistry.plan_verification``)."""

    @property
    def verification_id(self) -> str: ...
    @property
    def candidate_id(self) -> str: ...
    @property
    def benchmark(self) -> str: ...
    @property
    def threshold_bps(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def n_boot(self) -> int: ...


@dataclass(frozen=True)
class VerificationJob:
    """One row of the queue."""

    id: str
    candidate_id: str
    benchmark: str
    threshold_bps: int
    seed: int
    n_boot: int
    status: str
    error_code: str | None
    error_message: str | None
    attempts: int
    lease_owner: str | None
    lease_until: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    requested_by: str | None

    @classmethod
    def from_row(cls, row: Any) -> VerificationJob:
        return cls(**{column.name: getattr(row, column.name) for column in jobs.columns})


@dataclass(frozen=True)
class Enqueued:
    """What :meth:`VerificationJobs.enqueue` did."""

    job: VerificationJob
    queued: bool
    """True when the job was queued by this call (new, or a failed one queued again); False
    when it was already queued, running or done."""


def _plan_benchmark(plan: JobInputs) -> str:
    """The benchmark's name (a plan may carry the name, or the ``Benchmark`` itself)."""
    benchmark: Any = plan.benchmark
    return str(getattr(benchmark, "name", benchmark))


class VerificationJobs:
    """The job queue in the project database."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._postgres = engine.dialect.name == "postgresql"
        self.wake = threading.Event()
        """Set when this object queues a job: a runner of this process waiting for work looks
        at once instead of at its next poll."""

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    # ---- asking ----------------------------------------------------------------------------

    def enqueue(self, plan: JobInputs, *, requested_by: str | None = None) -> Enqueued:
        """Queue the verification ``plan`` describes, once: the same plan again finds the same
        job (queued, running or succeeded: left as it is); a failed one is queued again, with
        its attempts reset."""
        now = self._clock()
        with write_transaction(self._engine) as conn:
            # RETURNING says whether the row was inserted (rowcount is -1 for an INSERT … ON
            # CONFLICT that returns rows on PostgreSQL).
            inserted = (
                conn.execute(
                    self._insert_ignore()
                    .values(
                        id=plan.verification_id,
                        candidate_id=plan.candidate_id,
                        benchmark=_plan_benchmark(plan),
                        threshold_bps=int(plan.threshold_bps),
                        seed=int(plan.seed),
                        n_boot=int(plan.n_boot),
                        status="queued",
                        attempts=0,
                        created_at=now,
                        requested_by=requested_by,
                    )
                    .returning(jobs.c.id)
                ).first()
                is not None
            )
            requeued = 0
            if not inserted:
                requeued = conn.execute(
                    jobs.update()
                    .where(jobs.c.id == plan.verification_id, jobs.c.status == "failed")
                    .values(
                        status="queued",
                        attempts=0,
                        error_code=None,
                        error_message=None,
                        lease_owner=None,
                        lease_until=None,
                        started_at=None,
                        finished_at=None,
                        requested_by=requested_by,
                    )
                ).rowcount
            row = conn.execute(sa.select(jobs).where(jobs.c.id == plan.verification_id)).one()
        queued = bool(inserted or requeued)
        if queued:
            self.wake.set()
        return Enqueued(VerificationJob.from_row(row), queued=queued)

    def _insert_ignore(self) -> Any:
        if self._postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(jobs).on_conflict_do_nothing(index_elements=["id"])
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(jobs).on_conflict_do_nothing(index_elements=["id"])

    # ---- reading ---------------------------------------------------------------------------

    def find(self, job_id: str) -> VerificationJob | None:
        """The job ``job_id``, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        return None if row is None else VerificationJob.from_row(row)

    def get(self, job_id: str) -> VerificationJob:
        """The job ``job_id``, or :class:`VerificationNotFoundError`."""
        found = self.find(job_id)
        if found is None:
            raise VerificationNotFoundError(f"No verification {job_id!r}.")
        return found

    def list(
        self, *, candidate_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> builtins.list[VerificationJob]:
        """Jobs, newest first (of one candidate, in one state, when given)."""
        query = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit)
        if candidate_id is not None:
            query = query.where(jobs.c.candidate_id == candidate_id)
        if status is not None:
            query = query.where(jobs.c.status == status)
        with self._engine.connect() as conn:
            return [VerificationJob.from_row(row) for row in conn.execute(query)]

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        with self._engine.connect() as conn:
            query = sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status)
            found: dict[str, int] = dict(conn.execute(query).tuples().all())
        return {state: int(found.get(state, 0)) for state in STATES}

    # ---- claiming --------------------------------------------------------------------------

    @staticmethod
    def _due(now: float) -> Any:
        """Claimable: queued and past its retry delay, or running with an expired lease (its
        runner died or stalled)."""
        return sa.or_(
            sa.and_(
                jobs.c.status == "queued",
                sa.or_(jobs.c.lease_until.is_(None), jobs.c.lease_until <= now),
            ),
            sa.and_(jobs.c.status == "running", jobs.c.lease_until < now),
        )

    def due_count(self) -> int:
        """How many jobs a runner could claim (or settle) right now."""
        with self._engine.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(jobs).where(self._due(self._clock()))
            ).scalar()
        return int(count or 0)

    def claim(self, *, owner: str, lease_seconds: float) -> VerificationJob | None:
        """Lease the oldest due job to ``owner`` for ``lease_seconds`` and count the attempt;
        None when nothing is due.

        A running job whose lease expired had a runner that died: it is claimed again, unless
        it already had :data:`MAX_ATTEMPTS` attempts — then it is marked ``failed`` and the
        next due job is looked at.
        """
        if not self._postgres and not self.due_count():
            return None  # idle: a deferred read, not SQLite's write lock, at every poll
        for _ in range(16):  # jobs settled as lost, then one claimed
            now = self._clock()
            query = sa.select(jobs).where(self._due(now)).order_by(jobs.c.created_at).limit(1)
            if self._postgres:
                query = query.with_for_update(skip_locked=True)
            with write_transaction(self._engine) as conn:
                row = conn.execute(query).first()
                if row is None:
                    return None
                job = VerificationJob.from_row(row)
                if job.status == "running" and job.attempts >= MAX_ATTEMPTS:
                    self._settle_lost(conn, job, now)
                    continue
                claimed = conn.execute(
                    jobs.update()
                    .where(jobs.c.id == job.id, self._due(now))  # still due: the conditional claim
                    .values(
                        status="running",
                        lease_owner=owner,
                        lease_until=now + lease_seconds,
                        attempts=jobs.c.attempts + 1,
                        started_at=now,
                        finished_at=None,
                    )
                ).rowcount
                if not claimed:
                    continue
                row = conn.execute(sa.select(jobs).where(jobs.c.id == job.id)).one()
                return VerificationJob.from_row(row)
        return None

    @staticmethod
    def _settle_lost(conn: sa.Connection, job: VerificationJob, now: float) -> None:
        conn.execute(
            jobs.update()
            .where(jobs.c.id == job.id, jobs.c.status == "running")
            .values(
                status="failed",
                error_code=LOST,
                error_message=(
                    f"The verification did not finish in {job.attempts} attempts: its runners "
                    "died or stalled (their leases expired). Ask for it again to retry."
                ),
                lease_owner=None,
                lease_until=None,
                finished_at=now,
            )
        )

    def renew(self, job_id: str, *, owner: str, lease_seconds: float) -> bool:
        """Extend ``owner``'s lease on a running job; False when it no longer holds it."""
        with write_transaction(self._engine) as conn:
            return bool(
                conn.execute(
                    jobs.update()
                    .where(self._held(job_id, owner))
                    .values(lease_until=self._clock() + lease_seconds)
                ).rowcount
            )

    @staticmethod
    def _held(job_id: str, owner: str) -> Any:
        return sa.and_(jobs.c.id == job_id, jobs.c.status == "running", jobs.c.lease_owner == owner)

    # ---- finishing -------------------------------------------------------------------------

    def complete(self, job_id: str, *, owner: str) -> bool:
        """The evaluation succeeded (its result is recorded by the library, under the job's
        id); False when ``owner`` no longer held the job."""
        with write_transaction(self._engine) as conn:
            return bool(
                conn.execute(
                    jobs.update()
                    .where(self._held(job_id, owner))
                    .values(
                        status="succeeded",
                        error_code=None,
                        error_message=None,
                        lease_owner=None,
                        lease_until=None,
                        finished_at=self._clock(),
                    )
                ).rowcount
            )

    def fail(
        self,
        job_id: str,
        *,
        owner: str,
        code: str,
        message: str,
        retry: bool,
        retry_delay: float = 0.0,
    ) -> str | None:
        """Record a failed attempt: queued again after ``retry_delay`` seconds when ``retry``
        and attempts remain, ``failed`` otherwise. Returns the job's new state (None when
        ``owner`` no longer held it)."""
        now = self._clock()
        with write_transaction(self._engine) as conn:
            row = conn.execute(sa.select(jobs.c.attempts).where(self._held(job_id, owner))).first()
            if row is None:
                return None
            again = retry and row.attempts < MAX_ATTEMPTS
            values: dict[str, Any] = {
                "status": "queued" if again else "failed",
                "error_code": code,
                "error_message": message,
                "lease_owner": None,
                "lease_until": now + retry_delay if again else None,
                "finished_at": None if again else now,
            }
            conn.execute(jobs.update().where(self._held(job_id, owner)).values(**values))
            return str(values["status"])
