from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hokusai.config import Settings
from tests.backends import Backend
from tests.webhooks.receiver import Receiver, running_receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The project database on SQLite and, where the machine has it, PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hokusai.db'}"
        return
    from tests.webhooks.pg import temporary_database

    with temporary_database() as url:
        yield url


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(SECRET) as r:
        yield r


@pytest.fixture
def hook_settings(backend: Backend, receiver: Receiver) -> Settings:
    """The test's store (an outbox of its own on the stack) + the env endpoint pointing at the
    receiver (on loopback, so private networks are allowed), fast retries."""
    return backend.settings(
        own_database=True,
        webhook_allow_private_networks=True,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        webhook_retry_schedule="0.05,0.05,0.05",
        webhook_timeout_seconds=1.0,
        webhook_poll_seconds=0.02,
    )


@pytest.fixture
def webhooks(hook_settings: Settings) -> Iterator[Any]:
    from hokusai.webhooks.hub import Webhooks

    hooks = Webhooks(hook_settings)
    yield hooks
    hooks.close()


@pytest.fixture
def hooked_registry(hook_settings: Settings, webhooks: Any) -> Any:
    from hokusai.services.model_registry import HokusaiModelRegistry

    return HokusaiModelRegistry(settings=hook_settings, announcer=webhooks)
