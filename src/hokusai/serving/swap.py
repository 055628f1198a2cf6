"""Which model serves, and swapping it with no downtime.

:class:`ModelManager` resolves the source chain, loads the winner and keeps it in one
attribute. A refresh resolves again; when the identity changed (an alias or stage moved, a newer
run, a new pickle) it loads the new model *beside* the serving one, smoke-tests it, and swaps the
reference atomically. Requests hold the model they started with, so those in flight finish on
the old one. A model that fails to load or to predict on its input example never replaces the
one serving; the failure shows in ``/health`` and the metrics, and that identity is not retried
until it changes (or ``/admin/reload`` forces it).

Every source that was tried and skipped is logged at WARNING with its reason: at start-up and on
each ``/admin/reload`` always, on the periodic refresh only when the skips changed (a source
down for a day is one warning, not one every 30 seconds). When nothing loads, one ERROR line
says so and names every source tried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from hokusai.config import mask_secrets
from hokusai.serving.predictor import LoadedModel, load_model
from hokusai.serving.sources import Resolved, Skip, SourceChain, SourceUnavailable

__all__ = ["ModelManager", "RefreshOutcome", "Trigger"]

logger = logging.getLogger(__name__)

Trigger = Literal["start-up", "reload", "refresh"]
"""Why a refresh runs: start-up and an explicit reload report every skip; the periodic refresh
reports changes."""


@dataclass
class RefreshOutcome:
    """What one refresh did."""

    action: str  # "loaded", "swapped", "unchanged", "failed", "none"
    identity: str | None = None
    error: str | None = None
    skipped: list[Skip] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "identity": self.identity,
            "error": self.error,
            "skipped": [s.as_dict() for s in self.skipped],
            "seconds": round(self.seconds, 4),
        }


class ModelManager:
    """Holds the serving model; refreshes and swaps it."""

    def __init__(self, chain: SourceChain, *, tracking_uri: str, batch_wait: float) -> None:
        self.chain = chain
        self.tracking_uri = tracking_uri
        self.batch_wait = batch_wait
        self.current: LoadedModel | None = None
        self.skipped: list[Skip] = []
        self.last_error: str | None = None
        self.failed_identity: str | None = None
        self.swaps = 0
        self.load_failures = 0
        self.last_refresh: RefreshOutcome | None = None
        self._reported: tuple[tuple[str, str], ...] = ()
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def on_refresh(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every refresh (start-up, periodic, admin reload)."""
        self._listeners.append(listener)

    @property
    def degraded(self) -> bool:
        """A model serves, but a configured source (MODEL_VARIANT, MODEL_RUN_ID) is skipped:
        what serves is not what was asked for."""
        configured = self.chain.configured
        return self.current is not None and any(
            s.tried and s.source in configured for s in self.skipped
        )

    def refresh(self, *, force: bool = False, trigger: Trigger = "refresh") -> RefreshOutcome:
        """Resolve the chain; load and swap in a new winner. Safe to call from any thread."""
        with self._lock:
            started = time.perf_counter()
            outcome = self._refresh(force=force)
            outcome.seconds = time.perf_counter() - started
            self.last_refresh = outcome
            self._report(outcome, trigger)
            for listener in self._listeners:
                try:
                    listener()
                except Exception:  # a listener (the metrics) never fails a refresh
                    logger.exception("a refresh listener failed")
            return outcome

    def _report(self, outcome: RefreshOutcome, trigger: Trigger) -> None:
        """Log the skipped sources (see the module's docstring for when)."""
        tried = [s for s in outcome.skipped if s.tried]
        key = tuple((s.source, s.reason) for s in tried)
        changed = key != self._reported
        self._reported = key
        if trigger == "refresh" and not changed:
            return
        for skip in tried:
            logger.warning(
                "%s: model source %s skipped: %s",
                trigger,
                mask_secrets(self.chain.describe(skip.source)),
                mask_secrets(skip.reason),
            )
        if self.current is None and not (self.chain.strict and trigger == "start-up"):
            # (A strict server that loads nothing does not start: the refusal says so.)
            logger.error(
                "%s: no model could be loaded; tried: %s; requests get 503 until one loads",
                trigger,
                mask_secrets(
                    "; ".join(f"{self.chain.describe(s.source)} ({s.reason})" for s in tried)
                    or "nothing"
                ),
            )
        elif not tried and changed:
            logger.info("%s: no model source is skipped any more", trigger)

    def _refresh(self, *, force: bool) -> RefreshOutcome:
        skipped = self.chain.unconfigured()
        for kind, resolve in self.chain.candidates():
            try:
                resolved = resolve()
            except SourceUnavailable as exc:
                skipped.append(Skip(kind, str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - any MLflow failure is a reason to skip
                skipped.append(Skip(kind, _reason(exc)))
                continue
            current = self.current
            if current is not None and current.source.identity == resolved.identity:
                self.skipped = skipped
                return RefreshOutcome("unchanged", resolved.identity, skipped=skipped)
            if resolved.identity == self.failed_identity and not force:
                # Known broken: keep serving what we have (or try the next source).
                skipped.append(Skip(kind, f"{resolved.identity} failed to load: {self.last_error}"))
                if current is not None:
                    self.skipped = skipped
                    return RefreshOutcome("failed", resolved.identity, self.last_error, skipped)
                continue
            try:
                loaded = load_model(
                    resolved, tracking_uri=self.tracking_uri, batch_wait=self.batch_wait
                )
            except Exception as exc:  # noqa: BLE001 - a bad model never replaces a good one
                self.load_failures += 1
                self.last_error = _reason(exc)
                self.failed_identity = resolved.identity
                logger.error("model %s failed to load: %s", resolved.identity, self.last_error)
                skipped.append(Skip(kind, f"{resolved.identity} failed to load: {self.last_error}"))
                if current is not None:
                    self.skipped = skipped
                    return RefreshOutcome("failed", resolved.identity, self.last_error, skipped)
                continue
            self.skipped = skipped
            self.failed_identity = None
            self.last_error = None
            action = "loaded" if current is None else "swapped"
            self.current = loaded  # the atomic swap: one reference assignment
            if current is not None:
                self.swaps += 1
            logger.info(
                "%s model %s from %s (skipped: %s)",
                action,
                resolved.identity,
                resolved.kind,
                "; ".join(f"{s.source}: {s.reason}" for s in skipped) or "none",
            )
            return RefreshOutcome(action, resolved.identity, skipped=skipped)
        self.skipped = skipped
        return RefreshOutcome("none", None, self.last_error, skipped)

    def run(self, stop: threading.Event, *, every: float) -> None:
        """Refresh every ``every`` seconds until ``stop`` is set."""
        while not stop.wait(every):
            try:
                self.refresh()
            except Exception:
                logger.exception("model refresh failed")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300]


def describe_source(resolved: Resolved) -> str:
    """``name/version`` or the run id or the pickle path, for headers."""
    if resolved.version:
        return f"{resolved.name}/{resolved.version}"
    return resolved.run_id or resolved.uri
