from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.console.store import Store, build_store
from tests.webhooks.receiver import Receiver, running_receiver

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver(WEBHOOK_SECRET) as found:
        yield found


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Store:
    """One real registry per module (registrations take seconds), its events queued for a
    loopback receiver."""
    return build_store(
        tmp_path_factory.mktemp("console") / "home",
        webhook_url=receiver.url,
        webhook_secret=WEBHOOK_SECRET,
        webhook_allow_private_networks=True,
    )


@pytest.fixture(scope="module")
def console_app(store: Store) -> Any:
    from hokusai.rest.app import create_app

    return create_app(store.settings, deliver_webhooks=False)


@pytest.fixture
def client(console_app: Any) -> Iterator[TestClient]:
    with TestClient(console_app) as test_client:
        yield test_client


CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> str:
    """Sign ``key`` in through the form; the session's CSRF token."""
    form = client.get("/ui/sign-in")
    assert form.status_code == 200
    answer = client.post(
        "/ui/sign-in",
        data={"csrf": csrf_of(form.text), "api_key": key},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ui/models"
    return csrf_of(client.get("/ui/models").text)


def artifacts_dir() -> Path:
    folder = Path(__file__).parent / "artifacts"
    folder.mkdir(exist_ok=True)
    return folder
