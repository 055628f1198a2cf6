"""A real HTTP receiver on loopback that verifies signatures and answers as scripted.

Besides what it received, it knows which requests are *in flight* (arrived, not yet answered,
client still connected — a client that hangs up during the answer's delay is noticed within
10 ms), records every ``webhook-id`` that arrived while another request with the same id was
in flight (``overlaps``), and can stream big or trickling bodies (:class:`Stream`), counting the
bytes the client actually accepted (``sent_bytes``).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hokusai.webhooks.signing import standard_webhook


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass(frozen=True)
class Stream:
    """A body of ``size`` bytes written ``chunk`` bytes at a time, ``interval`` s apart."""

    size: int
    chunk: int = 65536
    interval: float = 0.0


# (status, extra headers, delay seconds — or an event to hold the answer until it is set —, body)
Answer = tuple[int, dict[str, str], float | threading.Event, str | Stream]

HOLD_AT_MOST = 120.0
"""The longest an answer waits for its event."""


@dataclass
class Receiver:
    url: str
    secret: str | None
    received: list[Received] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)
    default: Answer = (200, {}, 0.0, "ok")
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrivals: list[Received] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    overlaps: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    sent_bytes: list[int] = field(default_factory=list)
    finished: int = 0

    def arrived(self, received: Received) -> None:
        with self.lock:
            self.arrivals.append(received)
            key = received.headers.get("webhook-id", "")
            if self.in_flight[key]:
                self.overlaps.append(key)
            self.in_flight[key] += 1

    def ended(self, received: Received, *, abandoned: bool, sent: int | None = None) -> None:
        with self.lock:
            key = received.headers.get("webhook-id", "")
            self.in_flight[key] -= 1
            if abandoned:
                self.abandoned.append(key)
            if sent is not None:
                self.sent_bytes.append(sent)
            self.finished += 1

    def busy(self) -> int:
        """How many requests are in flight now."""
        with self.lock:
            return sum(self.in_flight.values())

    def answer(self, *answers: Answer) -> None:
        with self.lock:
            self.script.extend(answers)

    def always(self, answer: Answer) -> None:
        with self.lock:
            self.default = answer

    def next_answer(self) -> Answer:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(list(self.received)):
                    return
            time.sleep(0.01)
        raise AssertionError(f"receiver: condition not met in {timeout}s; got {len(self.received)}")

    def ids(self) -> list[str]:
        with self.lock:
            return [r.webhook_id for r in self.received]


@contextmanager
def running_receiver(secret: str | None) -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length)
            receiver = holder["r"]
            headers = {k.lower(): v for k, v in self.headers.items()}
            arrival = Received(headers, body, time.time())
            receiver.arrived(arrival)
            ok = True
            if receiver.secret is not None:
                try:
                    standard_webhook(receiver.secret).verify(body, headers)
                except Exception:
                    ok = False
            status, extra, delay, text = receiver.next_answer()
            present = self._hold(delay) if delay else True
            with receiver.lock:
                receiver.received.append(Received(headers, body, time.time()))
                receiver.verified.append(ok)
            if not present:
                receiver.ended(arrival, abandoned=True)
                return
            sent = 0
            try:
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                if isinstance(text, Stream):
                    self.send_header("content-length", str(text.size))
                    self.end_headers()
                    while sent < text.size:
                        piece = b"x" * min(text.chunk, text.size - sent)
                        self.wfile.write(piece)
                        sent += len(piece)
                        if text.interval:
                            time.sleep(text.interval)
                else:
                    payload = text.encode()
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                receiver.ended(arrival, abandoned=True, sent=sent)
                return
            receiver.ended(arrival, abandoned=False, sent=sent)

        def _hold(self, delay: float | threading.Event) -> bool:
            """Wait ``delay`` seconds, or until the event is set; False as soon as the client
            hangs up."""
            release: threading.Event | None = None
            if isinstance(delay, threading.Event):
                release, seconds = delay, HOLD_AT_MOST
            else:
                seconds = delay
            deadline = time.monotonic() + seconds
            # poll(), not select(): select() refuses descriptors above 1023, which a long test
            # session's process can reach.
            poller = select.poll()
            poller.register(self.connection, select.POLLIN)
            while (left := deadline - time.monotonic()) > 0:
                if release is not None and release.is_set():
                    return True
                if poller.poll(min(left, 0.01) * 1000):
                    try:
                        if not self.connection.recv(1, socket.MSG_PEEK):
                            return False
                    except OSError:
                        return False
                    time.sleep(min(left, 0.01))
            return True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["r"] = Receiver(url=f"http://127.0.0.1:{server.server_port}/hooks", secret=secret)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["r"]
    finally:
        server.shutdown()
        server.server_close()
