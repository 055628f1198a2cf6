"""The verification job queue on a real project database (SQLite file and PostgreSQL): enqueue
once per verification id, leases, lost runners, retries, and claims racing across threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hokusai.db import open_database
from hokusai.jobs import MAX_ATTEMPTS, VerificationJobs
from tests.webhooks import pg


@dataclass(frozen=True)
class Inputs:
    """What the queue reads of a verification plan (the engine's plan has these and more)."""

    verification_id: str
    candidate_id: str = "hokusai_iris_improved/1"
    benchmark: str = "iris-holdout"
    threshold_bps: int = 100
    seed: int = 0
    n_boot: int = 200


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        with pg.temporary_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'hokusai.db'}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(database: str, clock: Clock) -> VerificationJobs:
    return VerificationJobs(open_database(database), clock=clock)


def _id(n: int) -> str:
    return f"ver_{n:024x}"


def test_the_same_verification_is_queued_once(queue: VerificationJobs):
    first = queue.enqueue(Inputs(_id(1)), requested_by="key1")
    again = queue.enqueue(Inputs(_id(1)), requested_by="key2")
    assert first.queued and not again.queued
    assert again.job == first.job
    assert (first.job.status, first.job.attempts, first.job.requested_by) == ("queued", 0, "key1")
    assert [job.id for job in queue.list()] == [_id(1)]


def test_a_failed_verification_asked_again_is_queued_anew(queue: VerificationJobs):
    queue.enqueue(Inputs(_id(1)))
    job = queue.claim(owner="a", lease_seconds=60)
    assert job is not None
    state = queue.fail(job.id, owner="a", code="signature_mismatch", message="m", retry=False)
    assert state == "failed"
    failed = queue.get(job.id)
    assert (failed.error_code, failed.finished_at is not None) == ("signature_mismatch", True)

    again = queue.enqueue(Inputs(_id(1)), requested_by="key9")
    assert again.queued
    assert (again.job.status, again.job.attempts, again.job.error_code) == ("queued", 0, None)
    assert (again.job.finished_at, again.job.requested_by) == (None, "key9")


def test_a_claim_is_a_lease_and_counts_an_attempt(queue: VerificationJobs, clock: Clock):
    queue.enqueue(Inputs(_id(1)))
    clock.now += 1
    queue.enqueue(Inputs(_id(2)))
    first = queue.claim(owner="a", lease_seconds=60)
    second = queue.claim(owner="b", lease_seconds=60)
    assert first is not None and second is not None
    assert (first.id, second.id) == (_id(1), _id(2))  # oldest first
    assert (first.status, first.attempts, first.lease_owner) == ("running", 1, "a")
    assert first.lease_until == clock.now + 60
    assert queue.claim(owner="c", lease_seconds=60) is None  # both leased

    assert queue.complete(first.id, owner="b") is False  # not b's
    assert queue.complete(first.id, owner="a") is True
    done = queue.get(first.id)
    assert (done.status, done.lease_owner, done.finished_at) == ("succeeded", None, clock.now)
    assert queue.counts() == {"queued": 0, "running": 1, "succeeded": 1, "failed": 0}


def test_a_renewed_lease_is_kept_and_an_expired_one_is_taken_over(
    queue: VerificationJobs, clock: Clock
):
    queue.enqueue(Inputs(_id(1)))
    job = queue.claim(owner="dead", lease_seconds=10)
    assert job is not None
    clock.now += 8
    assert queue.renew(job.id, owner="dead", lease_seconds=10)
    clock.now += 8  # 16 s after the claim, 8 after the renewal: still held
    assert queue.claim(owner="other", lease_seconds=10) is None
    clock.now += 3  # the runner stopped renewing: its lease is over
    taken = queue.claim(owner="other", lease_seconds=10)
    assert taken is not None
    assert (taken.id, taken.lease_owner, taken.attempts) == (job.id, "other", 2)
    # The dead runner, back, holds nothing: it can neither renew nor finish the job.
    assert not queue.renew(job.id, owner="dead", lease_seconds=10)
    assert not queue.complete(job.id, owner="dead")
    assert queue.fail(job.id, owner="dead", code="x", message="y", retry=True) is None


def test_a_job_whose_runners_keep_dying_fails_after_its_attempts(
    queue: VerificationJobs, clock: Clock
):
    queue.enqueue(Inputs(_id(1)))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        job = queue.claim(owner=f"runner{attempt}", lease_seconds=5)
        assert job is not None and job.attempts == attempt
        clock.now += 6  # it dies: nothing renews, nothing records
    assert queue.claim(owner="next", lease_seconds=5) is None
    failed = queue.get(_id(1))
    assert (failed.status, failed.error_code) == ("failed", "verification_failed")
    assert f"{MAX_ATTEMPTS} attempts" in (failed.error_message or "")


def test_retries_wait_their_delay_and_stop_after_the_last_attempt(
    queue: VerificationJobs, clock: Clock
):
    queue.enqueue(Inputs(_id(1)))
    states = []
    for _ in range(MAX_ATTEMPTS):
        job = queue.claim(owner="a", lease_seconds=60)
        assert job is not None
        states.append(
            queue.fail(
                job.id,
                owner="a",
                code="backend_unavailable",
                message="m",
                retry=True,
                retry_delay=30,
            )
        )
        if states[-1] == "queued":
            assert queue.claim(owner="a", lease_seconds=60) is None  # not before its delay
            clock.now += 31
    assert states == ["queued"] * (MAX_ATTEMPTS - 1) + ["failed"]
    failed = queue.get(_id(1))
    assert (failed.status, failed.attempts, failed.error_code) == (
        "failed",
        MAX_ATTEMPTS,
        "backend_unavailable",
    )


def test_claims_racing_in_threads_take_each_job_once(database: str):
    queue = VerificationJobs(open_database(database))
    total = 30
    for n in range(total):
        queue.enqueue(Inputs(_id(n)))
    taken: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def runner(name: str) -> None:
        start.wait()
        while (job := queue.claim(owner=name, lease_seconds=60)) is not None:
            with lock:
                taken.append(job.id)
            queue.complete(job.id, owner=name)
            time.sleep(0.001)

    threads = [threading.Thread(target=runner, args=(f"r{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(taken) == sorted(_id(n) for n in range(total))  # each exactly once
    assert queue.counts()["succeeded"] == total
    assert all(job.attempts == 1 for job in queue.list(limit=total))
