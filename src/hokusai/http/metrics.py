"""Prometheus metrics of servers with several worker processes (prometheus_client's
multiprocess mode).

``hokusai server --workers N`` and ``hokusai serve --workers N`` run N uvicorn processes behind
one port. Each process counts only the requests it served, and a scrape reaches one of them
at random: with per-process registries the totals would jump from scrape to scrape. In
multiprocess mode each process writes its values to memory-mapped files in one directory
(``PROMETHEUS_MULTIPROC_DIR``) and ``/metrics`` in any worker adds up every file — also those of
workers that have exited, so a counter never goes down when a worker is replaced.

prometheus_client picks its kind of value once, when it is first imported, from that variable:
the directory has to be in the environment before a worker starts. :func:`worker_metrics_directory`
is the CLI parent's side (it makes the directory before uvicorn spawns the workers); the
servers' side is :func:`scrape_registry`, :func:`multiprocess_directory` and
:func:`forget_this_process`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

__all__ = [
    "MULTIPROC_DIR_VARIABLE",
    "forget_this_process",
    "multiprocess_directory",
    "scrape_registry",
    "worker_metrics_directory",
]

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# The files prometheus_client writes (``counter_<pid>.db``, ``gauge_livemax_<pid>.db``, …): the
# only ones a start may delete from a directory the operator chose.
_VALUE_FILES = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


def multiprocess_directory() -> Path | None:
    """The directory this process's metrics are written to, or None for an in-process registry.

    Both must hold: the variable is set and prometheus_client took it into account when it was
    imported (a variable set later would make ``/metrics`` read files nobody writes).
    """
    path = os.environ.get(MULTIPROC_DIR_VARIABLE)
    if not path or not getattr(values.ValueClass, "_multiprocess", False):
        return None
    return Path(path)


def scrape_registry(
    extra: Iterable[Collector] = (), *, own: CollectorRegistry
) -> CollectorRegistry:
    """The registry ``/metrics`` renders.

    In multiprocess mode, a fresh registry that adds up every worker's files (``own``, where
    the metrics were declared, only holds this process's share); otherwise ``own``. ``extra``
    collectors — values computed at scrape time, the same in every worker — join either.
    """
    path = multiprocess_directory()
    if path is None:
        registry = own
    else:
        registry = CollectorRegistry()
        registry.register(_EveryWorker(path))
    for collector in extra:
        registry.register(collector)
    return registry


class _EveryWorker(Collector):
    """:class:`MultiProcessCollector` that first drops the live gauges of dead workers.

    A worker that exits cleanly drops its own (:func:`forget_this_process`); one killed with
    SIGKILL cannot, so each scrape looks for files of processes that no longer exist.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._files = MultiProcessCollector(None, str(path))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        _drop_dead_live_gauges(self._path)
        yield from self._files.collect()  # type: ignore[no-untyped-call]


def _drop_dead_live_gauges(path: Path) -> None:
    for file in path.glob("gauge_live*_*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            # What mark_process_dead does, file by file: two workers scraping at once may
            # both find the same dead file.
            with contextlib.suppress(FileNotFoundError):
                file.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def forget_this_process() -> None:
    """At a worker's clean exit: drop its live gauges (its counters and histograms stay in the
    totals)."""
    path = multiprocess_directory()
    if path is not None:
        mark_process_dead(os.getpid(), str(path))  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def worker_metrics_directory(workers: int) -> Iterator[Path | None]:
    """The CLI parent's side: the multiprocess directory of one server run, or None.

    ``PROMETHEUS_MULTIPROC_DIR`` given: that directory, created if missing, its value files
    from an earlier run deleted (they would be added to this run's totals). Not given and more
    than one worker: a fresh temporary directory, put in the environment the workers inherit and
    removed when the server exits. One worker and no variable: None, an in-process registry.
    """
    given = os.environ.get(MULTIPROC_DIR_VARIABLE)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for pattern in _VALUE_FILES:
            for stale in path.glob(pattern):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
        yield path
        return
    if workers <= 1:
        yield None
        return
    path = Path(tempfile.mkdtemp(prefix="hokusai-metrics-"))
    os.environ[MULTIPROC_DIR_VARIABLE] = str(path)
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_DIR_VARIABLE, None)
        shutil.rmtree(path, ignore_errors=True)
