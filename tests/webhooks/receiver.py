"""A real HTTP receiver on loopback that verifies signatures and answers as scripted."""

from __future__ import annotations

import json
import threading
import time
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


# (status, extra headers, delay seconds, body)
Answer = tuple[int, dict[str, str], float, str]


@dataclass
class Receiver:
    url: str
    secret: str | None
    received: list[Received] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)
    default: Answer = (200, {}, 0.0, "ok")
    lock: threading.Lock = field(default_factory=threading.Lock)

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
            ok = True
            if receiver.secret is not None:
                try:
                    standard_webhook(receiver.secret).verify(body, headers)
                except Exception:
                    ok = False
            status, extra, delay, text = receiver.next_answer()
            if delay:
                time.sleep(delay)
            with receiver.lock:
                receiver.received.append(Received(headers, body, time.time()))
                receiver.verified.append(ok)
            payload = text.encode()
            try:
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

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
