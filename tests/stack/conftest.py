"""Fixtures of the tests on the loopback stack: a tracking server per artifact mode, settings
pointing at it, and the client environment each mode needs."""

from __future__ import annotations

import uuid
from pathlib import Path

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
