"""``VerificationRunner``: claims queued verifications and evaluates them through the library.

It runs in a thread of each REST process (``HOKUSAI_VERIFY_BACKGROUND``, on by default) and in
``hokusai verifications worker`` (a dedicated evaluation replica); any number of runners share
the queue. For each job it plans the verification again from the job's row — the plan is what
the library evaluates, and planning again checks that nothing the id was derived from has
changed — then calls ``run_verification``. While it evaluates, a heartbeat renews its lease, so
a long evaluation keeps its job and a runner that dies loses it within one lease.

The library records each verification once per idempotency key: a job evaluated twice (a
runner that stalled past its lease while another took the job over) finds the first result
recorded and returns it, writing nothing new. A runner whose lease renewal is refused (the job
is another runner's now) stops before recording and leaves the job alone.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from hokusai.config import mask_secrets
from hokusai.errors import HokusaiError, NotFoundError, ValidationError
from hokusai.jobs.verifications import MAX_ATTEMPTS, VerificationJob, VerificationJobs

__all__ = ["VerificationRunner", "Verifier", "owner_name"]

logger = logging.getLogger(__name__)


class Verifier(Protocol):
    """What a runner needs of the registry (``ModelRegistry`` or ``HokusaiModelRegistry``)."""

    def plan_verification(
        self,
        candidate_id: str,
        benchmark: Any,
        *,
        threshold_bps: int | None = None,
        seed: int = 0,
        n_boot: int = 2000,
    ) -> Any: ...

    def run_verification(self, plan: Any, *, abort: Callable[[], bool] | None = None) -> Any: ...


def owner_name(kind: str) -> str:
    """A runner's name in the leases it holds: kind, host, process, and a random part."""
    return f"{kind}-{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class VerificationRunner:
    """Claims one job at a time and evaluates it.

    ``lease_seconds`` is how long a claim lasts without renewal (the heartbeat renews it every
    third of that); ``retry_delay`` how long a job that failed for a reason other than its input
    waits before its next attempt.
    """

    def __init__(
        self,
        jobs: VerificationJobs,
        verifier: Verifier,
        *,
        lease_seconds: float = 60.0,
        retry_delay: float = 30.0,
        owner: str | None = None,
    ) -> None:
        self.jobs = jobs
        self.verifier = verifier
        self.lease_seconds = lease_seconds
        self.retry_delay = retry_delay
        self.owner = owner or owner_name("verifier")

    def run_once(self) -> VerificationJob | None:
        """Claim the oldest due job and evaluate it; the job as claimed, or None when nothing
        was due."""
        job = self.jobs.claim(owner=self.owner, lease_seconds=self.lease_seconds)
        if job is None:
            return None
        self.execute(job)
        return job

    def execute(self, job: VerificationJob) -> str | None:
        """Evaluate a claimed job and record the outcome; never raises for the job's sake.
        Returns the job's new state (None when the lease was lost before the outcome)."""
        logger.info(
            "verification %s: attempt %d of %d (candidate %s, benchmark %s) by %s",
            job.id,
            job.attempts,
            MAX_ATTEMPTS,
            job.candidate_id,
            job.benchmark,
            self.owner,
        )
        done = threading.Event()
        lost = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat,
            args=(job.id, done, lost),
            name=f"hokusai-lease-{job.id}",
            daemon=True,
        )
        heartbeat.start()
        try:
            return self._evaluate(job, lost)
        finally:
            done.set()
            heartbeat.join(timeout=5)

    def _evaluate(self, job: VerificationJob, lost: threading.Event) -> str | None:
        try:
            plan = self.verifier.plan_verification(
                job.candidate_id,
                job.benchmark,
                threshold_bps=job.threshold_bps,
                seed=job.seed,
                n_boot=job.n_boot,
            )
            if plan.verification_id != job.id:
                plan.release()
                return self._fail(
                    job,
                    "verification_failed",
                    f"The inputs of {job.id} changed since it was asked for (they now make "
                    f"{plan.verification_id}); ask for the verification again.",
                    retry=False,
                )
            self.verifier.run_verification(plan, abort=lost.is_set)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
            if lost.is_set():  # the job is another runner's: its outcome is theirs to record
                logger.warning(
                    "verification %s: stopped, the lease passed to another runner (%s)",
                    job.id,
                    type(exc).__name__,
                )
                return None
            return self._failed(job, exc)
        try:
            held = self.jobs.complete(job.id, owner=self.owner)
        except Exception:
            logger.exception("verification %s: recording its success failed", job.id)
            return None
        if not held:
            logger.warning(
                "verification %s: evaluated, but the lease had passed to another runner", job.id
            )
            return None
        logger.info("verification %s: succeeded", job.id)
        return "succeeded"

    def _failed(self, job: VerificationJob, exc: Exception) -> str | None:
        if isinstance(exc, (ValidationError, NotFoundError)):
            # The input does not fit (or no longer exists): another attempt would fail alike.
            return self._fail(job, exc.code, exc.message, retry=False)
        return self._fail_unexpectedly(job, exc)  # every other failure is recorded on the job

    def _fail_unexpectedly(self, job: VerificationJob, exc: BaseException) -> str | None:
        """A failure that is not the input's: the details go to the log under a reference, the
        job gets the code and the reference (its error is readable with a read key)."""
        reference = f"err_{secrets.token_hex(8)}"
        code = exc.code if isinstance(exc, HokusaiError) else "verification_failed"
        detail = exc.message if isinstance(exc, HokusaiError) else f"{type(exc).__name__}: {exc}"
        logger.error(
            "verification %s: attempt %d failed (error_id=%s): %s",
            job.id,
            job.attempts,
            reference,
            mask_secrets(detail),
            exc_info=not isinstance(exc, HokusaiError),
        )
        message = (
            f"The verification could not complete ({code}) in attempt {job.attempts} of "
            f"{MAX_ATTEMPTS}; the server log has the details (reference {reference})."
        )
        return self._fail(job, code, message, retry=True)

    def _fail(self, job: VerificationJob, code: str, message: str, *, retry: bool) -> str | None:
        try:
            state = self.jobs.fail(
                job.id,
                owner=self.owner,
                code=code,
                message=message,
                retry=retry,
                retry_delay=self.retry_delay,
            )
        except Exception:
            logger.exception("verification %s: recording its failure failed", job.id)
            return None
        logger.warning("verification %s: %s: %s -> %s", job.id, code, message, state)
        return state

    def _heartbeat(self, job_id: str, done: threading.Event, lost: threading.Event) -> None:
        """Renew the lease every third of it; a refused renewal sets ``lost`` (the evaluation
        then stops before recording)."""
        every = max(self.lease_seconds / 3, 0.05)
        while not done.wait(every):
            try:
                if not self.jobs.renew(job_id, owner=self.owner, lease_seconds=self.lease_seconds):
                    logger.warning("verification %s: lease lost to another runner", job_id)
                    lost.set()
                    return
            except Exception:  # the database may come back before the lease runs out
                logger.exception("verification %s: renewing the lease failed", job_id)

    def run(
        self, stop: threading.Event, *, poll_seconds: float, idle_exit_after: float | None = None
    ) -> None:
        """Evaluate due jobs until ``stop`` is set (or idle for ``idle_exit_after`` seconds).
        A job in evaluation is finished first: ``stop`` is looked at between jobs."""
        idle_since = time.monotonic()
        wake = self.jobs.wake
        while not stop.is_set():
            wake.clear()  # before looking: a job queued from now on is not waited for
            try:
                job = self.run_once()
            except Exception:
                logger.exception("verification pass failed; retrying in %.1fs", poll_seconds * 5)
                stop.wait(poll_seconds * 5)
                continue
            if job is not None:
                idle_since = time.monotonic()
                continue
            if idle_exit_after is not None and time.monotonic() - idle_since > idle_exit_after:
                return
            wake.wait(poll_seconds)  # a job queued in this process, or the next poll
