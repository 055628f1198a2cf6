"""Runners side by side on PostgreSQL, and ``hokusai verifications worker|list|show``: real
verifications (real models, a real benchmark, MLflow on a temp store) queued in a real project
database."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hokusai.config import Settings
from hokusai.db import open_database
from hokusai.jobs import MAX_ATTEMPTS, VerificationJobs, VerificationRunner
from tests.rest.verify_world import build_world, more_candidates
from tests.webhooks import pg


class Counting:
    """The registry, counting the evaluations each verification id gets (every call goes to
    the real ``run_verification``)."""

    def __init__(self, registry: Any, counts: Counter[str], lock: threading.Lock) -> None:
        self._registry = registry
        self._counts = counts
        self._lock = lock

    def plan_verification(self, *args: Any, **kwargs: Any) -> Any:
        return self._registry.plan_verification(*args, **kwargs)

    def run_verification(self, plan: Any, *, abort: Any = None) -> Any:
        with self._lock:
            self._counts[plan.verification_id] += 1
        return self._registry.run_verification(plan, abort=abort)


def test_two_runners_on_postgresql_evaluate_each_job_exactly_once(tmp_path: Path):
    from hokusai.registry import ModelRegistry
    from hokusai.registry.benchmarks import BenchmarkStore

    with pg.temporary_database() as url:
        settings = Settings(home=tmp_path / "home", database_url=url, webhook_background=False)
        registry = ModelRegistry(settings=settings)
        world = build_world(registry, BenchmarkStore(settings), tmp_path / "benchmarks")
        jobs = VerificationJobs(open_database(url))
        # One job per candidate: two verifications of one version at once would both tag it,
        # and MLflow's tag writes race (the loser's attempt is retried: not what this counts).
        candidates = [world.candidate_id, *more_candidates(registry, world, 5)]
        plans = [
            registry.plan_verification(candidate, world.benchmark, n_boot=200)
            for candidate in candidates
        ]
        for plan in plans:
            assert jobs.enqueue(plan).queued

        counts: Counter[str] = Counter()
        lock = threading.Lock()
        stop = threading.Event()
        # Two replicas: each its own registry (its own MLflow client) and runner.
        runners = [
            VerificationRunner(
                jobs,
                Counting(ModelRegistry(settings=settings), counts, lock),
                lease_seconds=30,
                owner=f"replica-{n}",
            )
            for n in range(2)
        ]
        threads = [
            threading.Thread(
                target=runner.run,
                args=(stop,),
                kwargs={"poll_seconds": 0.05, "idle_exit_after": 1.0},
            )
            for runner in runners
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in threads)

        wanted = sorted(plan.verification_id for plan in plans)
        assert sorted(counts) == wanted and set(counts.values()) == {1}
        done = {job.id: job for job in jobs.list()}
        assert sorted(done) == wanted
        assert {(job.status, job.attempts) for job in done.values()} == {("succeeded", 1)}
        assert {job.lease_owner for job in done.values()} == {None}
        results = [registry.get_verification(vid) for vid in wanted]
        assert [r["verification_id"] for r in results] == wanted
        assert len({r["mlflow_run_id"] for r in results}) == len(wanted)


def test_the_cli_worker_evaluates_the_queue_and_list_and_show_read_it(tmp_path: Path):
    from hokusai.cli.main import app
    from hokusai.registry import ModelRegistry
    from hokusai.registry.benchmarks import BenchmarkStore

    home = tmp_path / "home"
    settings = Settings(home=home, webhook_background=False)
    registry = ModelRegistry(settings=settings)
    world = build_world(registry, BenchmarkStore(settings), tmp_path / "benchmarks")
    jobs = VerificationJobs(open_database(settings.resolved_database_url))
    plan = registry.plan_verification(world.candidate_id, world.benchmark, n_boot=200)
    jobs.enqueue(plan, requested_by="key1")

    cli = CliRunner()
    base = ["--home", str(home), "verifications"]
    queued = cli.invoke(app, [*base, "list", "--json"])
    assert queued.exit_code == 0, queued.output
    assert [(j["id"], j["status"]) for j in json.loads(queued.stdout)] == [
        (plan.verification_id, "queued")
    ]

    worked = cli.invoke(app, [*base, "worker", "--once"])
    assert worked.exit_code == 0, worked.output
    shown = cli.invoke(app, [*base, "show", plan.verification_id, "--json"])
    assert shown.exit_code == 0, shown.output
    job = json.loads(shown.stdout)
    assert (job["status"], job["attempts"], job["requested_by"]) == ("succeeded", 1, "key1")
    assert registry.get_verification(plan.verification_id)["verification_id"] == job["id"]

    table = cli.invoke(app, [*base, "list", "--state", "succeeded"])
    assert table.exit_code == 0 and "succeeded" in table.stdout and "ver_" in table.stdout
    none = cli.invoke(app, [*base, "list", "--state", "failed", "--json"])
    assert none.exit_code == 0 and json.loads(none.stdout) == []
    text = cli.invoke(app, [*base, "show", plan.verification_id])
    assert text.exit_code == 0 and "succeeded" in text.stdout


class Slow:
    """The registry, with evaluations that take ``seconds`` longer (a big benchmark's)."""

    def __init__(self, registry: Any, seconds: float) -> None:
        self._registry = registry
        self._seconds = seconds

    def plan_verification(self, *args: Any, **kwargs: Any) -> Any:
        return self._registry.plan_verification(*args, **kwargs)

    def run_verification(self, plan: Any, *, abort: Any = None) -> Any:
        time.sleep(self._seconds)
        return self._registry.run_verification(plan, abort=abort)


def _embedded_world(tmp_path: Path) -> tuple[Settings, Any, Any, VerificationJobs]:
    from hokusai.registry import ModelRegistry
    from hokusai.registry.benchmarks import BenchmarkStore

    settings = Settings(home=tmp_path / "home", webhook_background=False)
    registry = ModelRegistry(settings=settings)
    world = build_world(registry, BenchmarkStore(settings), tmp_path / "benchmarks")
    jobs = VerificationJobs(open_database(settings.resolved_database_url))
    return settings, registry, world, jobs


def test_a_long_evaluation_keeps_its_lease(tmp_path: Path):
    _, registry, world, jobs = _embedded_world(tmp_path)
    plan = registry.plan_verification(world.candidate_id, world.benchmark, n_boot=200)
    jobs.enqueue(plan)
    # Evaluating takes 5 s, two and a half leases: the heartbeat keeps renewing it.
    slow = VerificationRunner(jobs, Slow(registry, 5.0), lease_seconds=2.0, owner="slow")
    claimed = jobs.claim(owner=slow.owner, lease_seconds=slow.lease_seconds)
    assert claimed is not None
    worker = threading.Thread(target=slow.execute, args=(claimed,))
    worker.start()
    other = VerificationRunner(jobs, registry, lease_seconds=2.0, owner="other")
    stolen = []
    while worker.is_alive():
        taken = other.run_once()
        if taken is not None:
            stolen.append(taken.id)
        time.sleep(0.05)
    worker.join()
    assert stolen == []
    job = jobs.get(plan.verification_id)
    assert (job.status, job.attempts, job.lease_owner) == ("succeeded", 1, None)


class StalledRenewals(VerificationJobs):
    """The real queue, whose lease renewals stall ``seconds`` first (a runner paused past its
    lease: a long garbage collection, a suspended container)."""

    def __init__(self, engine: Any, seconds: float) -> None:
        super().__init__(engine)
        self.seconds = seconds

    def renew(self, job_id: str, *, owner: str, lease_seconds: float) -> bool:
        time.sleep(self.seconds)
        return super().renew(job_id, owner=owner, lease_seconds=lease_seconds)


class UntilAborted:
    """The registry, with an evaluation that lasts until it is told to stop (at most 30 s)."""

    def __init__(self, registry: Any) -> None:
        self._registry = registry
        self.aborted = False

    def plan_verification(self, *args: Any, **kwargs: Any) -> Any:
        return self._registry.plan_verification(*args, **kwargs)

    def run_verification(self, plan: Any, *, abort: Any = None) -> Any:
        deadline = time.monotonic() + 30
        while abort is not None and not abort() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.aborted = abort is not None and abort()
        return self._registry.run_verification(plan, abort=abort)


def test_a_runner_that_lost_its_lease_stops_before_recording(tmp_path: Path):
    settings, registry, world, jobs = _embedded_world(tmp_path)
    plan = registry.plan_verification(world.candidate_id, world.benchmark, n_boot=200)
    jobs.enqueue(plan)
    stalled = StalledRenewals(open_database(settings.resolved_database_url), seconds=1.5)
    verifier = UntilAborted(registry)
    paused = VerificationRunner(stalled, verifier, lease_seconds=0.6, owner="paused")
    claimed = stalled.claim(owner=paused.owner, lease_seconds=paused.lease_seconds)
    assert claimed is not None
    outcome: list[str | None] = []
    worker = threading.Thread(target=lambda: outcome.append(paused.execute(claimed)))
    worker.start()
    # The lease runs out while the paused runner's renewal stalls: another runner takes it.
    deadline = time.monotonic() + 10
    taken = None
    while taken is None and time.monotonic() < deadline:
        taken = jobs.claim(owner="other", lease_seconds=60)
        time.sleep(0.05)
    assert taken is not None and taken.id == plan.verification_id
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert verifier.aborted and outcome == [None]
    # Nothing recorded, and the job is the other runner's, untouched.
    assert registry.list_verifications() == []
    job = jobs.get(plan.verification_id)
    assert (job.status, job.lease_owner, job.attempts, job.error_code) == (
        "running",
        "other",
        2,
        None,
    )


def test_a_store_that_does_not_answer_is_tried_three_times_then_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import socket

    from hokusai.registry import ModelRegistry

    settings, registry, world, jobs = _embedded_world(tmp_path)
    plan = registry.plan_verification(world.candidate_id, world.benchmark, n_boot=200)
    jobs.enqueue(plan)
    # An evaluation replica whose MLflow does not answer (nothing listens on the port).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cut_off = ModelRegistry(settings=settings.model_copy(update={"tracking_uri": closed}))
    runner = VerificationRunner(jobs, cut_off, retry_delay=0, owner="cut-off")
    states = []
    while (job := runner.run_once()) is not None:
        states.append(jobs.get(job.id).status)
    assert states == ["queued", "queued", "failed"]
    failed = jobs.get(plan.verification_id)
    assert (failed.attempts, failed.error_code) == (MAX_ATTEMPTS, "backend_unavailable")
    assert "reference err_" in (failed.error_message or "")
    assert closed not in (failed.error_message or "")  # the details are in the log only

    # Asked for again once MLflow answers: queued anew, and evaluated.
    assert jobs.enqueue(plan).queued
    assert VerificationRunner(jobs, registry, owner="healthy").run_once() is not None
    assert jobs.get(plan.verification_id).status == "succeeded"


def test_verifications_of_one_candidate_at_once_all_succeed(tmp_path: Path):
    """Two runners verifying one version at once both tag it; when MLflow's tag writes collide,
    the loser's attempt failed for a reason other than its input and is tried again."""
    from hokusai.registry import ModelRegistry

    settings, registry, world, jobs = _embedded_world(tmp_path)
    plans = [
        registry.plan_verification(world.candidate_id, world.benchmark, seed=seed, n_boot=200)
        for seed in range(4)
    ]
    for plan in plans:
        jobs.enqueue(plan)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=VerificationRunner(
                jobs, ModelRegistry(settings=settings), retry_delay=0, owner=f"r{n}"
            ).run,
            args=(stop,),
            kwargs={"poll_seconds": 0.05, "idle_exit_after": 1.0},
        )
        for n in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    done = jobs.list()
    assert {job.status for job in done} == {"succeeded"}
    assert len(done) == 4 and all(1 <= job.attempts <= MAX_ATTEMPTS for job in done)
    latest = registry.get_model(world.candidate_id)["verification"]
    assert latest["verification_id"] in {plan.verification_id for plan in plans}
