"""One signed POST of one claimed delivery, bounded in time and in what it reads.

- **One total deadline.** httpx's ``timeout`` applies per phase (connect, each write, each
  read), so a receiver trickling bytes could hold an attempt for ever. Here ``timeout`` is the
  wall-clock deadline of the whole attempt: a watchdog shuts the attempt's socket down when it
  passes, which ends whatever read or write is waiting. The socket is taken from httpx's
  ``trace`` extension as soon as it is connected (every attempt asks ``Connection: close``, so
  it has its own connection) or, for a connection an injected client reused, from the response.
  An answer not complete at the deadline is a timeout, whatever its status line said.
- **A bounded read.** The response is streamed, uncompressed (``Accept-Encoding: identity``),
  and read up to :data:`RESPONSE_CAP_BYTES`; the attempt log keeps its first
  :data:`SNIPPET_CHARS` characters.
- **Never raises.** Every failure becomes an :class:`~hokusai.webhooks.retry.Attempt`: a secret
  that cannot sign is a permanent failure, anything else a retryable one.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from hokusai.errors import InvalidWebhookUrlError
from hokusai.webhooks.outbox import Claim
from hokusai.webhooks.retry import Attempt, parse_retry_after
from hokusai.webhooks.signing import sign_headers

__all__ = ["RESPONSE_CAP_BYTES", "SNIPPET_CHARS", "send"]

RESPONSE_CAP_BYTES = 4096
"""At most this much of a response is read (the rest is never received into memory)."""

SNIPPET_CHARS = 500
"""At most this much of a response is kept in the attempt log."""


def send(
    client: httpx.Client,
    claim: Claim,
    *,
    timeout: float,
    clock: Callable[[], float] = time.time,
    response_cap: int = RESPONSE_CAP_BYTES,
) -> Attempt:
    """POST the claim's body to its endpoint within ``timeout`` seconds in all."""
    started = time.perf_counter()
    try:
        headers = sign_headers(
            secret=claim.secret,
            event_id=claim.event_id,
            event_type=claim.event_type,
            body=claim.body,
        )
    except Exception as exc:  # noqa: BLE001 - a secret that cannot sign never will
        return Attempt(
            None,
            _ms(started),
            error=(
                f"cannot sign: the endpoint's secret is invalid ({type(exc).__name__}); "
                "give the receiver an endpoint with a valid secret, then replay"
            ),
            permanent=True,
        )
    headers["connection"] = "close"
    headers["accept-encoding"] = "identity"
    watchdog = _Watchdog(timeout)
    try:
        return _post(client, claim, headers, watchdog, started, clock, response_cap)
    except InvalidWebhookUrlError as exc:  # the destination policy refused the address
        return Attempt(None, _ms(started), error=f"refused: {exc.message}", permanent=True)
    except httpx.TimeoutException as exc:
        return _timed_out(started, timeout, type(exc).__name__)
    except Exception as exc:  # noqa: BLE001 - every failure is an attempt, none stops the pass
        if watchdog.fired:
            return _timed_out(started, timeout, type(exc).__name__)
        return Attempt(None, _ms(started), error=f"{type(exc).__name__}: {exc}"[:SNIPPET_CHARS])
    finally:
        watchdog.finish()


def _post(
    client: httpx.Client,
    claim: Claim,
    headers: dict[str, str],
    watchdog: _Watchdog,
    started: float,
    clock: Callable[[], float],
    response_cap: int,
) -> Attempt:
    request = client.build_request(
        "POST",
        claim.url,
        content=claim.body.encode(),
        headers=headers,
        timeout=watchdog.seconds,
        extensions={"trace": watchdog.trace},
    )
    response = client.send(request, stream=True)
    try:
        watchdog.watch(response.extensions.get("network_stream"))
        body = bytearray()
        during = f"reading the HTTP {response.status_code} body"
        try:
            for chunk in response.iter_raw():
                body.extend(chunk)
                if len(body) >= response_cap:
                    break
            else:
                # The body ended; but a body delimited by the connection's close also "ends"
                # when the watchdog shuts the socket: one that ended past the deadline is cut.
                if watchdog.fired:
                    return _timed_out(started, watchdog.seconds, during)
        except Exception:
            if watchdog.fired:
                return _timed_out(started, watchdog.seconds, during)
            raise
    finally:
        response.close()
    text = bytes(body[:response_cap]).decode("utf-8", errors="replace")
    return Attempt(
        status_code=response.status_code,
        latency_ms=_ms(started),
        error=None if response.is_success else f"HTTP {response.status_code}",
        response_snippet=text[:SNIPPET_CHARS] or None,
        retry_after=parse_retry_after(response.headers.get("retry-after"), now=clock()),
    )


def _timed_out(started: float, seconds: float, during: str) -> Attempt:
    return Attempt(
        None,
        _ms(started),
        error=f"timeout after {seconds:g}s: no complete answer in time ({during})",
    )


class _Watchdog:
    """Shuts the attempt's socket down at its deadline, ending any read or write in progress."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._socket: socket.socket | None = None
        self._finished = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx ``trace`` callback: watch each new connection's socket as soon as it exists."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            self.watch(info.get("return_value"))

    def watch(self, stream: object) -> None:
        """Watch the socket under an httpcore network stream (no-op if there is none)."""
        get_extra_info = getattr(stream, "get_extra_info", None)
        sock = get_extra_info("socket") if callable(get_extra_info) else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self._finished:
                return
            self._socket = sock
            if self.fired:
                self._shutdown()

    def finish(self) -> None:
        """The attempt is over: never touch its socket again."""
        with self._lock:
            self._finished = True
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._socket is not None:
            # A closed socket object has no descriptor any more, so this can never reach a
            # descriptor the process reused for something else.
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
