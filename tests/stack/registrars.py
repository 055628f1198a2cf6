"""Processes that register through the tracking server at the same instant
(tests/stack/test_concurrency.py).

A small module on purpose: ``spawn`` children import it, and it imports nothing heavy.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _register(
    barrier: Any, settings: dict[str, Any], model: Any, model_type: str, out: Any
) -> None:
    """Import everything a registration needs, wait for the others, then register at once."""
    try:
        import mlflow.sklearn  # noqa: F401 - imported before the barrier, not after it

        from hokusai.config import Settings
        from hokusai.services.model_registry import HokusaiModelRegistry

        registry = HokusaiModelRegistry(settings=Settings(**settings))
        barrier.wait(timeout=120)
        result = registry.register_baseline(model, model_type)
        out.put(("ok", result["model_id"], result["model_uuid"]))
    except threading.BrokenBarrierError:
        out.put(("error", "the barrier broke", None))
    except BaseException as exc:
        out.put(("error", f"{type(exc).__name__}: {exc}", None))


@contextmanager
def registering_at_once(
    count: int, settings: dict[str, Any], model: Any, model_type: str
) -> Iterator[list[tuple[str, str, str | None]]]:
    """``count`` spawned processes each register ``model`` once, together; yields their
    results (``("ok", model_id, model_uuid)`` or ``("error", message, None)``)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    out = context.Queue()
    processes = [
        context.Process(
            target=_register, args=(barrier, settings, model, model_type, out), daemon=True
        )
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    try:
        yield [out.get(timeout=300) for _ in range(count)]
    finally:
        for process in processes:
            process.join(timeout=30)
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
