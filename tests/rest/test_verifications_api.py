"""``/api/v1/verifications`` end to end: a real TestClient, a real MLflow store, real models and
a real benchmark; the evaluation runs in the app's background runner (or in runners a test
drives), through the library's ``run_verification``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from hokusai.config import Settings
from hokusai.jobs import VerificationRunner
from hokusai.jobs.tables import verification_jobs
from tests.backends import Backend
from tests.conftest import CONTRIBUTOR
from tests.rest.conftest import bearer
from tests.rest.verify_world import BENCHMARK, World, build_world
from tests.webhooks import pg

POLL_TIMEOUT = 180.0


@pytest.fixture
def api_settings(backend: Backend, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """The conftest's settings with a runner that polls often and retries at once; the project
    database (the job table) on PostgreSQL when the test asks for ``"postgresql"``."""
    overrides: dict[str, Any] = {
        "webhook_background": False,
        "verify_poll_seconds": 0.05,
        "verify_retry_seconds": 0,
    }
    if getattr(request, "param", "sqlite") != "postgresql":
        yield backend.settings(**overrides)
        return
    from hokusai.db import dispose_engines

    with pg.temporary_database() as url:
        yield backend.settings(database_url=url, **overrides)
        dispose_engines()  # its pools, before the database goes


@pytest.fixture
def world(app: Any, tmp_path: Path, backend: Backend) -> World:
    """Names of this test alone on a shared stack (model type, contributor, benchmark)."""
    components = app.state.components
    return build_world(
        components.registry,
        components.benchmarks,
        tmp_path / "benchmarks",
        model_type=backend.model_type("cancer"),
        contributor=backend.address(CONTRIBUTOR),
        benchmark=BENCHMARK if backend.embedded else f"{BENCHMARK}-{backend.tag}",
    )


@pytest.fixture
def idle_app(api_settings: Settings) -> Any:
    """The API without its runner: jobs wait until a test runs them."""
    from hokusai.rest.app import create_app

    return create_app(api_settings, run_verifications=False)


@pytest.fixture
def idle_client(idle_app: Any) -> Any:
    with TestClient(idle_app) as test_client:
        yield test_client


def _job_rows(app: Any) -> list[Any]:
    engine = app.state.components.verifications.engine
    with engine.connect() as conn:
        return list(conn.execute(sa.select(verification_jobs)))


def _verification_runs(app: Any, world: World) -> list[Any]:
    """The evaluation runs of the world's candidate (any state, deleted ones too)."""
    client = app.state.components.registry.client
    experiment = client.get_experiment_by_name("hokusai-verifications")
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], run_view_type=3)
    return [r for r in runs if r.data.params.get("candidate_id") == world.candidate_id]


def _poll(client: TestClient, location: str, key: str, *, until: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        answer = client.get(location, headers=bearer(key))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if body["status"] in until:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def _post(client: TestClient, key: str, **body: Any) -> Any:
    return client.post("/api/v1/verifications", headers=bearer(key), json=body)


# ---- the asynchronous round trip ----------------------------------------------------------------


@pytest.mark.parametrize("api_settings", ["sqlite", "postgresql"], indirect=True)
def test_post_answers_202_and_the_background_runner_evaluates_it(
    app: Any, client: TestClient, keys: dict[str, str], world: World
):
    settings = app.state.components.settings
    wanted = "postgresql" if settings.resolved_database_url.startswith("postgresql") else "sqlite"
    assert app.state.components.verifications.engine.dialect.name == wanted
    answer = _post(
        client, keys["write"], candidate_id=world.candidate_id, benchmark=world.benchmark
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["id"].startswith("ver_") and len(body["id"]) == 28
    assert answer.headers["location"] == f"/api/v1/verifications/{body['id']}"
    assert body["status"] == "queued"
    assert (body["candidate_id"], body["benchmark"]) == (world.candidate_id, world.benchmark)
    assert (body["error"], body["result"], body["finished_at"]) == (None, None, None)
    assert body["threshold_bps"] == app.state.components.settings.verify_threshold_bps

    done = _poll(client, answer.headers["location"], keys["read"], until={"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert done["error"] is None and done["attempts"] == 1
    assert done["started_at"] <= done["finished_at"]
    registry = app.state.components.registry
    recorded = registry.get_verification(body["id"])
    assert done["result"] == json.loads(json.dumps(recorded))
    assert done["result"]["verification_id"] == body["id"]
    assert done["result"]["candidate_id"] == world.candidate_id
    assert done["result"]["baseline_id"] == world.baseline_id
    assert len(_verification_runs(app, world)) == 1

    listed = client.get(
        "/api/v1/verifications",
        params={"candidate_id": world.candidate_id},
        headers=bearer(keys["read"]),
    )
    assert listed.status_code == 200
    assert [v["id"] for v in listed.json()["data"]] == [body["id"]]
    assert listed.json()["data"][0]["result"] == done["result"]

    gains = client.get(
        f"/api/v1/contributors/{world.contributor.lower()}/verified-gains",
        headers=bearer(keys["read"]),
    )
    assert gains.status_code == 200, gains.text
    expected = json.loads(json.dumps(registry.get_contributor_verified_gains(world.contributor)))
    assert gains.json() == {"data": expected, "count": 1}
    assert gains.json()["data"][0]["verification"]["verification_id"] == body["id"]


def test_the_same_inputs_answer_the_same_verification(
    idle_app: Any, idle_client: TestClient, keys: dict[str, str], world: World
):
    keys = {
        scope: idle_app.state.components.keys.create(name=f"idle-{scope}", scope=scope)[1]
        for scope in ("read", "write")
    }
    inputs = {"candidate_id": world.candidate_id, "benchmark": world.benchmark, "seed": 3}
    first = _post(idle_client, keys["write"], **inputs)
    again = _post(idle_client, keys["write"], **inputs)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert again.json()["status"] == "queued"
    other = _post(idle_client, keys["write"], **{**inputs, "seed": 4})
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
    assert len(_job_rows(idle_app)) == 2

    components = idle_app.state.components
    runner = VerificationRunner(components.verifications, components.registry, owner="test")
    while runner.run_once() is not None:
        pass
    done = _post(idle_client, keys["write"], **inputs)
    assert done.status_code == 200
    assert done.json()["status"] == "succeeded"
    assert done.json()["result"]["verification_id"] == first.json()["id"]
    assert len(_job_rows(idle_app)) == 2
    assert len(_verification_runs(idle_app, world)) == 2


def test_a_failed_verification_asked_again_is_queued_anew(
    idle_app: Any, idle_client: TestClient, world: World
):
    components = idle_app.state.components
    write = components.keys.create(name="w", scope="write")[1]
    answer = _post(idle_client, write, candidate_id=world.candidate_id, benchmark=world.benchmark)
    job_id = answer.json()["id"]
    claimed = components.verifications.claim(owner="t", lease_seconds=60)
    components.verifications.fail(
        job_id, owner="t", code="backend_unavailable", message="MLflow was down", retry=False
    )
    failed = idle_client.get(answer.headers["location"], headers=bearer(write)).json()
    assert claimed is not None and failed["status"] == "failed"
    assert failed["error"] == {"code": "backend_unavailable", "message": "MLflow was down"}

    again = _post(idle_client, write, candidate_id=world.candidate_id, benchmark=world.benchmark)
    assert again.status_code == 202
    assert (again.json()["id"], again.json()["status"], again.json()["attempts"]) == (
        job_id,
        "queued",
        0,
    )
    assert again.json()["error"] is None


# ---- refused before anything is recorded --------------------------------------------------------


def _bad_inputs(world: World) -> list[tuple[dict[str, Any], int, str]]:
    return [
        ({"candidate_id": "not a model id", "benchmark": world.benchmark}, 422, "invalid_model_id"),
        (
            {"candidate_id": "hokusai_cancer_improved/99", "benchmark": world.benchmark},
            404,
            "model_not_found",
        ),
        (
            {"candidate_id": world.baseline_id, "benchmark": world.benchmark},
            422,
            "not_an_improvement",
        ),
        (
            {"candidate_id": world.candidate_id, "benchmark": "no-such-benchmark"},
            404,
            "benchmark_not_found",
        ),
        (
            {"candidate_id": world.candidate_id, "benchmark": world.benchmark, "n_boot": 5},
            422,
            "validation_error",
        ),
        (
            {"candidate_id": world.candidate_id, "benchmark": world.benchmark, "seed": -1},
            422,
            "validation_error",
        ),
        (
            {
                "candidate_id": world.candidate_id,
                "benchmark": world.benchmark,
                "threshold_bps": 10_001,
            },
            422,
            "validation_error",
        ),
        ({"benchmark": world.benchmark}, 422, "validation_error"),
    ]


def test_bad_inputs_are_refused_with_their_code_and_nothing_is_recorded(
    app: Any, client: TestClient, keys: dict[str, str], world: World, tmp_path: Path
):
    # A benchmark whose columns do not include the models' inputs.
    import pandas as pd

    narrow = tmp_path / "narrow.csv"
    pd.DataFrame({"x0": [1.0, 2.0, 3.0], "label": [0, 1, 1]}).to_csv(narrow, index=False)
    app.state.components.benchmarks.add("narrow", narrow, target="label", metric="accuracy")

    cases = [
        *_bad_inputs(world),
        (
            {"candidate_id": world.candidate_id, "benchmark": "narrow"},
            422,
            "signature_mismatch",
        ),
    ]
    for body, status, code in cases:
        answer = _post(client, keys["write"], **body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), (
            body,
            answer.text,
        )
        assert "location" not in answer.headers
    assert _job_rows(app) == []
    assert _verification_runs(app, world) == []


def test_a_read_key_cannot_ask_for_a_verification(
    app: Any, client: TestClient, keys: dict[str, str], world: World
):
    body = {"candidate_id": world.candidate_id, "benchmark": world.benchmark}
    answer = _post(client, keys["read"], **body)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert client.post("/api/v1/verifications", json=body).status_code == 401
    assert _job_rows(app) == []
    # …but may read them.
    assert client.get("/api/v1/verifications", headers=bearer(keys["read"])).status_code == 200


def test_an_unknown_verification_is_404(client: TestClient, keys: dict[str, str]):
    for wanted in ("ver_" + "0" * 24, "ver_nope", "x"):
        answer = client.get(f"/api/v1/verifications/{wanted}", headers=bearer(keys["read"]))
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "verification_not_found"


# ---- runners that die, and input that goes away --------------------------------------------------


def test_a_job_of_a_runner_that_died_is_taken_over_by_another(
    idle_app: Any, idle_client: TestClient, world: World
):
    components = idle_app.state.components
    write = components.keys.create(name="w", scope="write")[1]
    answer = _post(idle_client, write, candidate_id=world.candidate_id, benchmark=world.benchmark)
    job_id = answer.json()["id"]
    # A runner claims it and dies at once: nothing renews its lease, nothing records.
    dead = components.verifications.claim(owner="dead-replica", lease_seconds=0.5)
    assert dead is not None and dead.id == job_id
    survivor = VerificationRunner(
        components.verifications, components.registry, lease_seconds=30, owner="survivor"
    )
    assert survivor.run_once() is None  # still leased to the dead one
    running = idle_client.get(answer.headers["location"], headers=bearer(write)).json()
    assert (running["status"], running["attempts"]) == ("running", 1)

    time.sleep(0.6)
    taken = survivor.run_once()
    assert taken is not None and (taken.id, taken.attempts) == (job_id, 2)
    done = idle_client.get(answer.headers["location"], headers=bearer(write)).json()
    assert (done["status"], done["attempts"]) == ("succeeded", 2)
    assert done["result"] == json.loads(json.dumps(components.registry.get_verification(job_id)))
    assert len(_verification_runs(idle_app, world)) == 1


def test_an_input_that_no_longer_fits_fails_the_job_at_once(
    idle_app: Any, idle_client: TestClient, world: World
):
    components = idle_app.state.components
    write = components.keys.create(name="w", scope="write")[1]
    answer = _post(idle_client, write, candidate_id=world.candidate_id, benchmark=world.benchmark)
    # The benchmark's run is deleted from MLflow after the job was queued.
    components.registry.client.delete_run(components.benchmarks.get(world.benchmark).run_id)
    runner = VerificationRunner(components.verifications, components.registry, retry_delay=0)
    assert runner.run_once() is not None
    assert runner.run_once() is None  # not retried
    failed = idle_client.get(answer.headers["location"], headers=bearer(write)).json()
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert failed["error"]["code"] == "benchmark_not_found"
    assert failed["result"] is None


# ---- benchmarks -------------------------------------------------------------------------------


def test_benchmarks_are_listed_and_read(
    app: Any, client: TestClient, keys: dict[str, str], world: World
):
    read = bearer(keys["read"])
    stored = app.state.components.benchmarks.get(world.benchmark).to_dict()
    # Where the rows are stored (a path on the server's disk) is not the read key's business.
    assert stored.pop("artifact_uri")
    listed = client.get("/api/v1/benchmarks", headers=read)
    assert listed.status_code == 200
    assert listed.json() == {"data": [stored], "count": 1}
    one = client.get(f"/api/v1/benchmarks/{world.benchmark}", headers=read)
    assert one.status_code == 200 and one.json() == stored
    assert "artifact_uri" not in json.dumps(client.get("/openapi.json").json()["components"])
    missing = client.get("/api/v1/benchmarks/nope", headers=read)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "benchmark_not_found")
    assert client.get("/api/v1/benchmarks").status_code == 401


def test_the_benchmark_schema_is_the_benchmark_dataclass(app: Any):
    """Every field but where the rows are stored (the library's and the CLI's only)."""
    from dataclasses import fields

    from hokusai.registry.benchmarks import Benchmark

    schema = app.openapi()["components"]["schemas"]["BenchmarkPublic"]
    assert set(schema["properties"]) == {f.name for f in fields(Benchmark)} - {"artifact_uri"}


def test_the_routes_are_documented(app: Any):
    paths = app.openapi()["paths"]
    post = paths["/api/v1/verifications"]["post"]
    assert {"200", "202", "401", "403", "404", "422"} <= set(post["responses"])
    for path in (
        "/api/v1/verifications",
        "/api/v1/verifications/{verification_id}",
        "/api/v1/contributors/{address}/verified-gains",
        "/api/v1/benchmarks",
        "/api/v1/benchmarks/{name}",
    ):
        assert "get" in paths[path], path
        assert "404" in paths[path]["get"]["responses"]


def test_a_job_queued_in_the_process_wakes_its_runner(backend: Backend, world: World):
    """The runner polls every 30 s here; the POST wakes it, so the answer comes in seconds."""
    from hokusai.rest.app import create_app

    slow_poll = create_app(backend.settings(webhook_background=False, verify_poll_seconds=30.0))
    write = slow_poll.state.components.keys.create(name="w", scope="write")[1]
    with TestClient(slow_poll) as client:
        time.sleep(0.5)  # the runner has looked once and waits
        started = time.monotonic()
        answer = _post(client, write, candidate_id=world.candidate_id, benchmark=world.benchmark)
        assert answer.status_code == 202
        done = _poll(client, answer.headers["location"], write, until={"succeeded", "failed"})
        assert done["status"] == "succeeded"
        assert time.monotonic() - started < 15


def _downloads(folder: Path) -> list[str]:
    """The verification downloads (benchmark rows, model files) in temp folder ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("hokusai-verify-"))


@pytest.mark.backends
def test_post_then_poll_on_each_backend(
    app: Any,
    client: TestClient,
    keys: dict[str, str],
    world: World,
    backend: Backend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """On the stack: MLflow behind ``mlflow server`` with proxied artifacts (the models and the
    benchmark rows are downloaded to be scored), the job table in MLflow's PostgreSQL
    database. What the request and the runner download is removed once they are done."""
    import tempfile

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    answer = _post(
        client, keys["write"], candidate_id=world.candidate_id, benchmark=world.benchmark
    )
    assert answer.status_code == 202, answer.text
    done = _poll(client, answer.headers["location"], keys["read"], until={"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert _downloads(temp) == []
    recorded = app.state.components.registry.get_verification(answer.json()["id"])
    assert done["result"] == json.loads(json.dumps(recorded))
    assert len(_verification_runs(app, world)) == 1


@pytest.mark.backends
def test_a_request_and_a_run_keep_nothing_planning_downloaded(
    idle_app: Any,
    idle_client: TestClient,
    world: World,
    backend: Backend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """Planning downloads the benchmark's rows and both models from a remote store (the
    embedded store's files are read in place): the request releases them once the job is
    queued, the runner once it has evaluated it."""
    import tempfile

    components = idle_app.state.components
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    plan = components.registry.plan_verification(world.candidate_id, world.benchmark)
    assert len(_downloads(temp)) == (0 if backend.embedded else 3)  # the rows, both models
    plan.release()
    assert _downloads(temp) == [] and plan.prepared is None
    write = components.keys.create(name="w", scope="write")[1]
    answer = _post(idle_client, write, candidate_id=world.candidate_id, benchmark=world.benchmark)
    assert answer.status_code == 202, answer.text
    assert _downloads(temp) == []
    job = VerificationRunner(components.verifications, components.registry).run_once()
    assert job is not None and components.verifications.get(job.id).status == "succeeded"
    assert _downloads(temp) == []


def test_metrics_count_the_jobs_by_state(idle_app: Any, idle_client: TestClient, world: World):
    components = idle_app.state.components
    write = components.keys.create(name="w", scope="write")[1]
    for seed in (1, 2):
        _post(
            idle_client,
            write,
            candidate_id=world.candidate_id,
            benchmark=world.benchmark,
            seed=seed,
        )
    VerificationRunner(components.verifications, components.registry).run_once()
    text = idle_client.get("/metrics").text
    assert 'hokusai_verification_jobs{state="queued"} 1.0' in text
    assert 'hokusai_verification_jobs{state="succeeded"} 1.0' in text
    assert 'hokusai_verification_jobs{state="failed"} 0.0' in text
