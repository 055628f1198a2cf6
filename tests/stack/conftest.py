"""Fixtures of the tests on the loopback stack: a tracking server per artifact mode, settings
pointing at it, and the client environment each mode needs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hokusai.config import Settings
from tests.stack.stack import MODES, LoopbackStack, TrackingServer


@pytest.fixture(params=MODES)
def tracking(
    request: pytest.FixtureRequest, loopback_stack: LoopbackStack, monkeypatch: pytest.MonkeyPatch
) -> TrackingServer:
    """The session's tracking server of each artifact mode, with this test's environment set
    as a client of that mode needs it (no S3 credentials at all in the proxied mode)."""
    server = loopback_stack.tracking(request.param)
    for key in ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in server.client_env.items():
        monkeypatch.setenv(key, value)
    return server


@pytest.fixture
def stack_settings(tmp_path: Path, tracking: TrackingServer) -> Settings:
    """Hokusai on the stack: MLflow through the tracking server and Hokusai's own tables in
    the same PostgreSQL database (the one-database deployment)."""
    return Settings(
        home=tmp_path / "home",
        tracking_uri=tracking.url,
        database_url=tracking.database_url,
    )


@pytest.fixture
def model_type() -> str:
    """A model type of this test alone: the stack's database is shared by the session."""
    return f"stack{uuid.uuid4().hex[:10]}"


@pytest.fixture
def project_database(loopback_stack: LoopbackStack) -> Iterator[str]:
    """A PostgreSQL database of this test alone for Hokusai's tables (endpoints, outbox),
    for tests that count deliveries; MLflow stays on the session's database."""
    url = loopback_stack.create_database("project")
    try:
        yield url
    finally:
        from hokusai.db import dispose_engines

        dispose_engines()
        loopback_stack.drop_database(url)


def log_model(tracking: TrackingServer, model: Any, *, example: Any = None) -> str:
    """Log ``model`` with plain MLflow to the tracking server, as a CI job would; returns its
    ``models:/m-…`` URI."""
    import mlflow
    import mlflow.sklearn

    from hokusai.registry.backend import mlflow_scope

    client = mlflow.MlflowClient(tracking.url)
    experiment = client.get_experiment_by_name("ci-jobs")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("ci-jobs")
    with mlflow_scope(tracking.url, tracking.url), mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=example, pip_requirements=["scikit-learn"]
        )
    return str(info.model_uri)
