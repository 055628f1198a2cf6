"""Bad input in paths, queries and bodies is a clear 4xx naming the problem, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hokusai.config import Settings
from tests.conftest import CONTRIBUTOR
from tests.rest.conftest import bearer


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """One app for the module (every request here is refused before anything is written)."""
    from hokusai.rest.app import create_app

    home = tmp_path_factory.mktemp("bad-input") / "home"
    app = create_app(Settings(home=home, webhook_background=False))
    with TestClient(app) as test_client:
        store = app.state.components.keys
        keys = {s: store.create(name=f"test-{s}", scope=s)[1] for s in ("read", "write", "admin")}
        yield test_client, keys


@pytest.fixture
def client(served: tuple[TestClient, dict[str, str]]) -> TestClient:
    return served[0]


@pytest.fixture
def keys(served: tuple[TestClient, dict[str, str]]) -> dict[str, str]:
    return served[1]


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    return str(response.json()["error"]["message"])


def test_a_contributor_address_with_a_trailing_newline_is_422_not_500(client, keys):
    # `re.match(r"^0x[0-9a-fA-F]{40}$")` accepted the "\n"; eth-utils then raised ValueError.
    response = client.get(
        f"/api/v1/contributors/{CONTRIBUTOR.lower()}%0A/models", headers=bearer(keys["read"])
    )
    message = _error(response, 422, "invalid_contributor")
    assert "expected '0x' followed by 40 hex digits" in message


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/api/v1/models?model_type=classification%0A", "invalid_model_type"),
        ("/api/v1/models?kind=baseline%0A", "validation_error"),  # pydantic: `$` ends the text
        ("/api/v1/models/hokusai_x_baseline/versions/1%0A", "invalid_model_id"),
        ("/api/v1/models/hokusai_x_baseline%0A/versions/1", "invalid_model_id"),
        ("/api/v1/models/hokusai_x_baseline/versions/%C2%B2", "invalid_model_id"),  # "²"
        ("/api/v1/models/hokusai_x_baseline/versions/" + "9" * 25, "invalid_model_id"),
        ("/api/v1/models/hokusai_x_baseline/versions/1%0A/lineage", "invalid_model_id"),
    ],
)
def test_bad_path_and_query_values_are_422(client, keys, path, code):
    _error(client.get(path, headers=bearer(keys["read"])), 422, code)


def test_a_query_enum_with_a_trailing_newline_is_422(client, keys):
    # pydantic-core's (Rust) regex: `$` is the end of the text, unlike Python's re.match.
    response = client.get(
        "/api/v1/webhooks/deliveries?state=dead%0A", headers=bearer(keys["admin"])
    )
    _error(response, 422, "validation_error")


def test_an_alias_or_version_with_a_trailing_newline_is_422(client, keys):
    write = bearer(keys["write"])
    path = "/api/v1/models/hokusai_x_baseline/aliases"
    message = _error(
        client.put(f"{path}/champion%0A", json={"version": "1"}, headers=write),
        422,
        "validation_error",
    )
    assert "Invalid alias" in message
    _error(
        client.put(f"{path}/champion", json={"version": "1\n"}, headers=write),
        422,
        "validation_error",
    )
