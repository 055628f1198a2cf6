from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def fake_result(n: int, *, name: str = "hokusai_lead_scoring_baseline") -> dict[str, Any]:
    """A registration result as the library returns it (for outbox-level tests)."""
    return {
        "model_id": f"{name}/{n}",
        "model_name": name,
        "version": str(n),
        "run_id": f"run{n:028d}",
        "model_uuid": f"m-{n:032x}",
        "model_uri": f"models:/m-{n:032x}",
        "signature": None,
        "metadata": {"n": n},
        "model_type": "lead_scoring",
        "is_baseline": True,
        "registration_timestamp": "2026-11-22T00:00:00+00:00",
    }


def drive(dispatcher: Any, until: Callable[[], bool], timeout: float = 10.0) -> None:
    """Run the dispatcher until ``until()`` holds (polling, never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if until():
            return
        if not dispatcher.run_once():
            time.sleep(0.01)
    raise AssertionError("condition not met before the timeout")
