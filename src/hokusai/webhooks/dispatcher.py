"""Delivery loops: the worker (``hokusai webhooks worker``) and the in-process background sender.

Both run :meth:`Dispatcher.run_once` — claim one due delivery, send it, record it, repeat — and
may run side by side in any number of processes. A delivery is claimed right before it is sent,
with a lease at least twice the attempt's total deadline, so no attempt is ever in flight twice.
Nothing that goes wrong with one delivery stops the pass: a sender failure is recorded as that
delivery's failed attempt, and the pass goes on to the next.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

import httpx

from hokusai.webhooks.outbox import Claim, Outbox
from hokusai.webhooks.retry import Attempt, RetryPolicy
from hokusai.webhooks.sender import send

__all__ = ["BackgroundSender", "Dispatcher"]

logger = logging.getLogger(__name__)


def _owner_name(kind: str) -> str:
    return f"{kind}-{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Dispatcher:
    """Claims due deliveries one at a time and sends them.

    ``timeout`` is each attempt's total deadline; the lease is ``lease_seconds`` but never less
    than twice that. ``batch_size`` bounds the attempts of one :meth:`run_once` pass.
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        policy: RetryPolicy,
        client: httpx.Client,
        timeout: float,
        lease_seconds: float,
        batch_size: int = 50,
        owner: str | None = None,
        reconcile: Callable[[], object] | None = None,
    ) -> None:
        self.outbox = outbox
        self.policy = policy
        self.client = client
        self.timeout = timeout
        self.lease_seconds = max(lease_seconds, timeout * 2)
        self.batch_size = batch_size
        self.owner = owner or _owner_name("worker")
        self._reconcile = reconcile

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Attempt up to ``batch_size`` due deliveries; returns how many were attempted."""
        done = 0
        while done < self.batch_size and not (stop is not None and stop.is_set()):
            claims = self.outbox.claim(
                owner=self.owner, lease_seconds=self.lease_seconds, policy=self.policy
            )
            if not claims:
                break
            for claim in claims:
                self.attempt(claim)
                done += 1
        return done

    def attempt(self, claim: Claim) -> Attempt:
        """Send one claimed delivery and record the outcome; never raises for one delivery's
        sake (if even recording fails, the lease expires and the attempt counts as lost)."""
        try:
            attempt = send(self.client, claim, timeout=self.timeout)
        except Exception as exc:  # send() should not raise; if it does, record it
            logger.exception("delivery %s: the sender failed", claim.delivery_id)
            attempt = Attempt(None, 0.0, error=f"sender error: {type(exc).__name__}: {exc}"[:500])
        try:
            decision = self.outbox.complete(claim, attempt, owner=self.owner, policy=self.policy)
        except Exception:  # the next claim (or another sender) settles it
            logger.exception(
                "delivery %s: recording attempt %d failed; it will count as lost",
                claim.delivery_id,
                claim.attempt,
            )
            return attempt
        log = logger.info if decision.state == "delivered" else logger.warning
        log(
            "delivery %s event=%s endpoint=%s attempt=%d status=%s -> %s%s",
            claim.delivery_id,
            claim.event_id,
            claim.endpoint_id,
            claim.attempt,
            attempt.status_code if attempt.status_code is not None else attempt.error,
            decision.state,
            f" (retry in {decision.delay:.1f}s)" if decision.state == "pending" else "",
        )
        return attempt

    def run(
        self,
        stop: threading.Event,
        *,
        poll_seconds: float,
        wake: threading.Event | None = None,
        reconcile_every: float = 60.0,
        idle_exit_after: float | None = None,
    ) -> None:
        """Deliver until ``stop`` is set (or idle for ``idle_exit_after`` seconds)."""
        import time

        last_reconcile = 0.0
        idle_since = time.monotonic()
        while not stop.is_set():
            if wake is not None:
                wake.clear()  # before looking: a notify() from now on is not lost
            try:
                sent = self.run_once(stop)
            except Exception:
                logger.exception("delivery pass failed; retrying in %.1fs", poll_seconds * 20)
                stop.wait(poll_seconds * 20)
                continue
            if sent:
                idle_since = time.monotonic()
                continue
            # Due deliveries first; a reconciler pass when there are none (and one is due), so
            # a pass never delays an event that is ready to go.
            if self._reconcile is not None and time.monotonic() - last_reconcile >= reconcile_every:
                last_reconcile = time.monotonic()
                try:
                    self._reconcile()
                except Exception:
                    logger.exception("reconciler pass failed; delivery continues")
                continue
            if idle_exit_after is not None and time.monotonic() - idle_since > idle_exit_after:
                return
            if wake is not None:
                wake.wait(poll_seconds)
            else:
                stop.wait(poll_seconds)


class BackgroundSender:
    """A daemon thread in the registering process that delivers new events promptly.

    It sleeps when idle and exits after a while without work; the next registration starts it
    again. At interpreter exit it gets a short grace to finish first attempts; whatever is left
    stays in the outbox for the next sender or a worker.
    """

    def __init__(self, dispatcher: Dispatcher, *, poll_seconds: float, exit_grace: float) -> None:
        self._dispatcher = dispatcher
        self._poll = poll_seconds
        self._exit_grace = exit_grace
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def notify(self) -> None:
        """New work: wake the thread, starting it if needed."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._dispatcher.run,
                    args=(self._stop,),
                    kwargs={
                        "poll_seconds": self._poll,
                        "wake": self._wake,
                        "idle_exit_after": 10.0,
                    },
                    name="hokusai-webhooks",
                    daemon=True,
                )
                self._thread.start()
        self._wake.set()

    def drain(self) -> None:
        """At exit: finish due first attempts and the one in flight, within the exit grace."""
        import time

        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        deadline = time.monotonic() + self._exit_grace
        while time.monotonic() < deadline and self._dispatcher.outbox.due_count() > 0:
            self._wake.set()
            time.sleep(0.02)
        self.stop(timeout=max(deadline - time.monotonic(), 0.05))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread after the attempt in flight."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
