"""The by-uuid lookup's hot path answers exactly what the library answers, aliases included,
and ``in_thread`` runs work in another thread with the caller's context."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest

from hokusai.rest.threads import in_thread
from tests.rest.conftest import bearer
from tests.rest.test_app import _register


def test_by_uuid_is_the_librarys_answer_with_aliases(client, app, keys, logged_uris) -> None:
    base = _register(client, keys["write"], logged_uris[0])
    read = bearer(keys["read"])
    moved = client.put(
        f"/api/v1/models/{base['model_name']}/aliases/champion",
        json={"version": base["version"]},
        headers=bearer(keys["write"]),
    )
    assert moved.status_code == 200, moved.text
    answer = client.get(f"/api/v1/models/by-uuid/{base['model_uuid']}", headers=read)
    assert answer.status_code == 200
    registry = app.state.components.registry
    assert answer.json() == registry.get_model_by_uuid(base["model_uuid"])
    assert answer.json()["aliases"] == ["champion"]
    assert answer.json() == registry.queries.by_uuid(base["model_uuid"])
    missing = client.get("/api/v1/models/by-uuid/m-" + "0" * 32, headers=read)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def test_in_thread_runs_elsewhere_with_the_callers_context() -> None:
    def work(suffix: str) -> tuple[str, str]:
        return REQUEST_ID.get() + suffix, threading.current_thread().name

    async def main() -> Any:
        REQUEST_ID.set("r1")
        return await in_thread(work, "!")

    value, thread = asyncio.run(main())
    assert value == "r1!"
    assert thread.startswith("hokusai-api") and thread != threading.current_thread().name


def test_in_thread_raises_the_threads_exception() -> None:
    def fail() -> None:
        raise LookupError("from the thread")

    with pytest.raises(LookupError, match="from the thread"):
        asyncio.run(in_thread(fail))
