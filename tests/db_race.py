"""Processes that open one fresh project database at the same instant (tests/test_db.py).

A small module on purpose: ``spawn`` children import it, and it imports nothing heavy.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


def _worker(barrier: Any, tasks: Any, results: Any) -> None:
    """Take a URL, wait until every other worker has one too, then open it together."""
    # Import now what opening imports lazily, so that after the barrier nothing staggers them.
    import alembic.command
    import alembic.runtime.migration  # noqa: F401
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401

    from hokusai.db import open_database

    while True:
        url = tasks.get()
        if url is None:
            return
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            results.put("the barrier broke")
            continue
        try:
            open_database(url, migrate=True).dispose()
            results.put(None)
        except BaseException as exc:
            results.put(f"{type(exc).__name__}: {exc}")


@dataclass
class Racers:
    """``size`` spawned processes, reused round after round."""

    size: int
    tasks: Any
    results: Any

    def race(self, url: str, timeout: float = 120) -> list[str | None]:
        """Every process opens ``url`` at once; one result each (None: it worked)."""
        for _ in range(self.size):
            self.tasks.put(url)
        return [self.results.get(timeout=timeout) for _ in range(self.size)]


@contextmanager
def racers(size: int) -> Iterator[Racers]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(size)
    tasks = context.Queue()
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(barrier, tasks, results), daemon=True)
        for _ in range(size)
    ]
    for process in processes:
        process.start()
    try:
        yield Racers(size, tasks, results)
    finally:
        # Every round has been answered: the workers hold nothing, and a clean interpreter exit
        # of eight processes costs seconds on a small machine.
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)
