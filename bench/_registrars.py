"""Registering processes for ``stack.py``'s concurrency measurement.

A module of its own, and a light one, because ``spawn`` children import it (and nothing of
the benchmark script) before they run :func:`register_improvements`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def register_improvements(
    barrier: Any,
    settings: dict[str, Any],
    work: dict[str, Any],
    count: int,
    out: Any,
    verbose: bool = False,
) -> None:
    """Register one untimed improvement (imports, the experiment, first-call caches), wait for
    the other processes, then ``count`` improvements of ``work["baseline_id"]`` back to back.

    Puts ``("ok", {"warmup": model_id, "timed": [(model_id, started, ended), …]})`` on ``out``
    — the times from ``time.monotonic()``, one clock for every process of the machine — or
    ``("error", message)``.
    """
    try:
        import _common

        _common.quiet_mlflow(verbose=verbose)  # as in the parent: a fresh process is not quiet

        from hokusai.config import Settings
        from hokusai.services.model_registry import HokusaiModelRegistry

        registry = HokusaiModelRegistry(settings=Settings(**settings))

        def register(n: int) -> Any:
            return registry.register_improved_model(
                work["model"],
                work["baseline_id"],
                {"accuracy": 0.001 * (n + 1)},
                CONTRIBUTOR,
                signature=work["signature"],
                input_example=work["input_example"],
            )

        warmup = register(-1)["model_id"]
        barrier.wait(timeout=300)
        timed: list[tuple[str, float, float]] = []
        for n in range(count):
            started = time.monotonic()
            model_id = register(n)["model_id"]
            timed.append((model_id, started, time.monotonic()))
        out.put(("ok", {"warmup": warmup, "timed": timed}))
    except threading.BrokenBarrierError:
        out.put(("error", "the barrier broke (another process failed first)"))
    except BaseException as exc:  # reported to the parent, which fails the check
        out.put(("error", f"{type(exc).__name__}: {exc}"[:800]))
