"""Webhook delivery: outbox throughput, write→receipt latency, registration-time cost, MLflow's.

One dispatcher's deliveries/s, write→receipt latency of three deliverers at Poisson arrivals,
``announce_registration`` cost, and ``mlflow server``'s own webhooks, all to a loopback receiver
in its own process that verifies every signature. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as common
import _procs as procs
from _common import fmt_ms, fmt_stats, goal, progress, stat_ms, summaries, summarize
from _procs import stop

NAME = "webhooks"
GOAL_THROUGHPUT = 200.0
GOAL_LATENCY_P50_S = 0.050
GOAL_ANNOUNCE_S = 0.005
HOKUSAI_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a bench-only secret
MLFLOW_SECRET = "bench-mlflow-webhook-secret"  # MLflow signs with the raw string
RECEIVER_ENV = "HOKUSAI_BENCH_RECEIVER_SECRETS"
MLFLOW_KEY_PREFIX = "mlflow:"
LATENCY_MODES = ("worker_thread", "worker_process", "background_sender")
MODE_LABELS = {
    "worker_thread": "worker thread (Dispatcher.run)",
    "worker_process": "worker process (hokusai webhooks worker)",
    "background_sender": "background sender (in-process)",
    "mlflow_server": "MLflow server webhooks",
}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.Parser(__doc__)
    parser.sized("--events", 200, 1000, "throughput events")
    parser.sized("--latency-events", 60, 300, "events per latency mode")
    parser.add_argument("--rate", type=float, default=20.0, help="latency write rate, events/s")
    parser.sized("--announce-calls", 100, 500, "timed announce_registration calls")
    parser.sized("--mlflow-versions", 20, 100, "model versions created through mlflow server")
    parser.add_argument("--skip-mlflow", action="store_true", help="do not start mlflow server")
    profile = "cProfile the throughput dispatcher loop into this file (slows it down)"
    parser.add_argument("--profile", type=Path, default=None, help=profile)
    parser.add_argument("--seed", type=int, default=0, help="random seed (arrival times)")
    parser.add_argument("--serve-receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse(argv)
    counts = (args.events, args.latency_events, args.announce_calls, args.mlflow_versions)
    parser.require(min(counts) >= 2, "counts must be ≥ 2")
    parser.require(0 < args.rate <= 500, "--rate must be in (0, 500]")
    return args


# ---- realistic registration results --------------------------------------------------------

_SIGNATURE = (
    "inputs: \n  ['sepal length (cm)': double (required), 'sepal width (cm)': double "
    "(required), 'petal length (cm)': double (required), 'petal width (cm)': double "
    "(required)]\noutputs: \n  [Tensor('int64', (-1,))]\nparams: \n  None\n"
)


def realistic_result(n: int) -> dict[str, Any]:
    """A registration result shaped like ``HokusaiModelRegistry.register_*`` returns it.

    Every fourth is a baseline; the others are improvements with a contributor and deltas.
    """
    is_baseline = n % 4 == 0
    model_type = ("lead_scoring", "churn", "fraud")[n % 3]
    name = f"hokusai_{model_type}_{'baseline' if is_baseline else 'improved'}"
    uuid = f"m-{n:032x}"
    result: dict[str, Any] = {
        "model_id": f"{name}/{n}",
        "model_name": name,
        "version": str(n),
        "model_type": model_type,
        "is_baseline": is_baseline,
        "run_id": f"{n:032x}",
        "registration_timestamp": "2026-11-22T00:00:00.000000+00:00",
        "model_uri": f"models:/{uuid}",
        "model_uuid": uuid,
        "artifact_path": "model",
        "mlflow_version": "3.17.2",
        "flavors": ["python_function", "sklearn"],
        "signature": _SIGNATURE,
        "metadata": {"dataset": "leads-2026-11", "owner": {"team": "growth"}, "n": n},
        "metrics": {"accuracy": 0.91, "auroc": 0.95},
        "code_paths": [],
        "git_commit": f"{n:040x}",
    }
    if not is_baseline:
        result.update(
            baseline_id=f"hokusai_{model_type}_baseline/1",
            contributor="0x" + f"{n:040x}",
            delta_metrics={"accuracy": 0.012, "auroc": 0.004},
        )
    return result


# ---- the receiver (its own process) --------------------------------------------------------


def receiver_app(secrets: Mapping[str, str]) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A raw ASGI app: verify, stamp, answer 200; ``GET /_count`` and ``GET /_receipts``."""
    from hokusai.webhooks.signing import standard_webhook

    receipts: dict[str, list[Any]] = {}  # key -> [received_at, verified, times_received]
    counts = {"hokusai": 0, "mlflow": 0, "unverified": 0, "duplicates": 0, "other": 0}

    async def respond(send: Send, status: int, body: bytes, kind: bytes) -> None:
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        received_at = time.time()
        body = b"".join(chunks)
        if scope["method"] == "GET":
            data = counts if scope["path"] == "/_count" else receipts
            await respond(send, 200, json.dumps(data).encode(), b"application/json")
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if "x-mlflow-delivery-id" in headers:
            kind = "mlflow"
            standard = {
                "webhook-id": headers["x-mlflow-delivery-id"],
                "webhook-timestamp": headers.get("x-mlflow-timestamp", ""),
                "webhook-signature": headers.get("x-mlflow-signature", ""),
            }
            try:
                data = json.loads(body)["data"]
                key = f"{MLFLOW_KEY_PREFIX}{data['name']}/{data['version']}"
            except (ValueError, KeyError, TypeError):
                key = f"{MLFLOW_KEY_PREFIX}?{headers['x-mlflow-delivery-id']}"
        elif "webhook-id" in headers:
            kind, standard, key = "hokusai", headers, headers["webhook-id"]
        else:
            counts["other"] += 1
            await respond(send, 400, b"no webhook headers", b"text/plain")
            return
        try:
            standard_webhook(secrets[kind]).verify(body, standard)
            verified = True
        except Exception:
            verified = False
        counts[kind] += 1
        if not verified:
            counts["unverified"] += 1
        entry = receipts.get(key)
        if entry is None:
            receipts[key] = [received_at, verified, 1]
        else:
            counts["duplicates"] += 1
            entry[1] = entry[1] and verified
            entry[2] += 1
        await respond(send, 200, b"ok", b"text/plain")

    return app


def serve_receiver() -> int:
    """Entry point of the receiver process: bind, print the port, serve until SIGTERM."""
    import uvicorn

    secrets = json.loads(os.environ[RECEIVER_ENV])
    # IPPROTO_TCP: only then does asyncio set TCP_NODELAY on accepted sockets (else each
    # response waits ~40 ms for the client's delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    options = {"lifespan": "off", "log_level": "warning", "access_log": False, "http": "auto"}
    config = uvicorn.Config(receiver_app(secrets), **options, loop="asyncio", timeout_keep_alive=60)
    print(sock.getsockname()[1], flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


@dataclass
class Receiver:
    """Handle on the receiver process."""

    process: subprocess.Popen[bytes]
    port: int
    control: Any  # httpx.Client

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = self.control.get(f"{self.base}/_count").json()
        return counts

    def receipts(self) -> dict[str, tuple[float, bool, int]]:
        raw = self.control.get(f"{self.base}/_receipts").json()
        return {key: (float(at), bool(ok), int(times)) for key, (at, ok, times) in raw.items()}

    def wait_for(self, keys: Sequence[str], timeout: float) -> dict[str, tuple[float, bool, int]]:
        """Receipts of ``keys`` once all have arrived (or whatever arrived by ``timeout``)."""
        deadline = time.monotonic() + timeout
        wanted = set(keys)
        while True:
            found = self.receipts()
            if wanted <= found.keys() or time.monotonic() > deadline:
                return {key: found[key] for key in wanted if key in found}
            time.sleep(0.1)


@contextmanager
def running_receiver(log: Path) -> Iterator[Receiver]:
    import httpx

    env = {
        **os.environ,
        RECEIVER_ENV: json.dumps({"hokusai": HOKUSAI_SECRET, "mlflow": MLFLOW_SECRET}),
    }
    with log.open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-receiver"],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
        )
        try:
            port = int(_read_line(process, timeout=60))
            control = httpx.Client(timeout=10)
            receiver = Receiver(process, port, control)
            deadline = time.monotonic() + 20
            while True:
                try:
                    receiver.counts()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield receiver
            control.close()
        finally:
            stop(process, group=False)


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError(f"receiver did not start within {timeout:g} s")
    line = process.stdout.readline().decode().strip()
    if not line:
        raise RuntimeError(f"receiver exited with {process.wait(5)} before printing its port")
    return line


# ---- Hokusai side --------------------------------------------------------------------------


def settings_env(home: Path, receiver: Receiver) -> dict[str, str]:
    """The ``HOKUSAI_*`` environment of one measurement (used for settings and the worker)."""
    return {
        "HOKUSAI_HOME": str(home),
        "HOKUSAI_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "HOKUSAI_DATABASE_URL": f"sqlite:///{home / 'hokusai.db'}",
        "HOKUSAI_WEBHOOK_URL": f"{receiver.base}/hooks",
        "HOKUSAI_WEBHOOK_SECRET": HOKUSAI_SECRET,
        "HOKUSAI_WEBHOOK_ALLOW_INSECURE": "true",
    }


def make_webhooks(home: Path, receiver: Receiver, *, background: bool) -> Any:
    from pydantic import SecretStr

    from hokusai.config import Settings
    from hokusai.webhooks import Webhooks

    env = settings_env(home, receiver)
    urls = {key: env[f"HOKUSAI_{key.upper()}"] for key in ("tracking_uri", "database_url")}
    secret = {
        "webhook_url": env["HOKUSAI_WEBHOOK_URL"],
        "webhook_secret": SecretStr(HOKUSAI_SECRET),
    }
    options = {"webhook_allow_insecure": True, "webhook_background": background}
    return Webhooks(Settings(home=home, **urls, **secret, **options))


def _timed(owner: Any, name: str, bucket: dict[str, list[float]]) -> None:
    """Wrap ``owner.name`` (an instance attribute) to add each call's duration to ``bucket``."""
    inner = getattr(owner, name)
    samples = bucket.setdefault(name, [])

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            samples.append(time.perf_counter() - started)

    setattr(owner, name, wrapper)


def raw_posts(receiver: Receiver, count: int, tag: str) -> list[float]:
    """The floor: ``count`` serial signed POSTs of the same payloads, same client, no outbox."""
    import httpx

    from hokusai.webhooks.payloads import MODEL_REGISTERED, model_registered_payload
    from hokusai.webhooks.signing import sign_headers

    samples: list[float] = []
    with httpx.Client(follow_redirects=False) as client:
        for n in range(count):
            started = time.perf_counter()
            event_id = f"evt_floor_{tag}_{n}"
            payload = dict(model_registered_payload(realistic_result(n + 1), event_id=event_id))
            body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
            headers = sign_headers(
                secret=HOKUSAI_SECRET, event_id=event_id, event_type=MODEL_REGISTERED, body=body
            )
            response = client.post(
                f"{receiver.base}/hooks", content=body.encode(), headers=headers, timeout=10
            )
            if response.status_code != 200:
                raise RuntimeError(f"receiver answered {response.status_code} to a floor POST")
            samples.append(time.perf_counter() - started)
    return samples


def measure_throughput(
    home: Path, receiver: Receiver, events: int, profile: Path | None
) -> dict[str, Any]:
    """One dispatcher delivering ``events`` written beforehand; the results' throughput part."""
    hooks = make_webhooks(home, receiver, background=False)
    floor = raw_posts(receiver, events // 2, "before")
    try:
        hooks.announce_registration(realistic_result(0))  # warm-up (tables, statements)
        warm = hooks.dispatcher()
        while warm.run_once():
            pass
        warm.client.close()
        ids: list[str] = []
        write_seconds: list[float] = []
        for n in range(1, events + 1):
            started = time.perf_counter()
            event_id = hooks.announce_registration(realistic_result(n))
            write_seconds.append(time.perf_counter() - started)
            ids.append(event_id)
        if hooks.outbox.due_count() != events:
            raise RuntimeError(
                f"expected {events} due deliveries, found {hooks.outbox.due_count()}"
            )
        dispatcher = hooks.dispatcher()
        breakdown: dict[str, list[float]] = {}
        timed = ((hooks.outbox, "claim"), (dispatcher.client, "send"), (hooks.outbox, "complete"))
        for owner, name in timed:
            _timed(owner, name, breakdown)
        profiler = None
        if profile is not None:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        passes = 0
        delivered = 0
        receiver_cpu = procs.process_cpu_seconds(receiver.process.pid)
        sender_cpu = time.process_time()
        started = time.perf_counter()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            passes += 1
            if dispatcher.run_once():
                continue
            delivered = hooks.outbox.stats()["delivered"] - 1  # minus the warm-up
            if delivered >= events:
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        sender_cpu = time.process_time() - sender_cpu
        receiver_cpu = procs.cpu_used(receiver_cpu, procs.process_cpu_seconds(receiver.process.pid))
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
            _print_profile(profile)
        stats = hooks.outbox.stats()
        dispatcher.client.close()
    finally:
        hooks.close()
    got = receiver.wait_for(ids, timeout=10)
    floor += raw_posts(receiver, events - events // 2, "after")
    per_s = delivered / elapsed if elapsed else 0.0
    floor_per_s = len(floor) / sum(floor) if floor else 0.0
    return {
        "events": events,
        "floor_serial_signed_posts_per_s": floor_per_s,
        "floor_post_s": summarize(floor),
        "ratio_to_floor": per_s / floor_per_s if floor_per_s else None,
        "where_the_time_goes_s": {
            name: {"calls": len(v), "total": sum(v), "mean": sum(v) / len(v)}
            for name, v in breakdown.items()
            if v
        },
        "sender_process_cpu_s": sender_cpu,
        "receiver_process_cpu_s": receiver_cpu,
        "delivered": delivered,
        "received": len(got),
        "verified": sum(1 for _, ok, _ in got.values() if ok),
        "duplicates": sum(times - 1 for _, _, times in got.values()),
        "deliver_seconds": elapsed,
        "deliveries_per_s": per_s,
        "run_once_calls": passes,
        "announce_back_to_back_s": summarize(write_seconds),
        "writes_per_s": len(write_seconds) / sum(write_seconds),
        "outbox_stats_after": stats,
    }


def _print_profile(path: Path) -> None:
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)
    print(out.getvalue(), file=sys.stderr)


@dataclass
class Latency:
    mode: str
    written: int
    received: int = 0
    verified: int = 0
    from_call: list[float] = field(default_factory=list)
    from_return: list[float] = field(default_factory=list)
    write_seconds: list[float] = field(default_factory=list)
    achieved_rate: float = 0.0
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "label": MODE_LABELS[self.mode],
            "written": self.written,
            "received": self.received,
            "verified": self.verified,
            "achieved_write_rate_per_s": self.achieved_rate,
            "error": self.error,
        } | summaries(
            latency_from_write_call_s=self.from_call,
            latency_from_write_return_s=self.from_return,
            write_call_s=self.write_seconds,
        )


def paced(
    count: int, rate: float, write: Callable[[int], str], rng: random.Random
) -> list[tuple[str, float, float]]:
    """Call ``write(i)`` at Poisson arrivals of mean ``rate``/s: ``(key, called_at, returned_at)``.

    Exponential gaps on a schedule fixed in advance (a late write does not shift the next ones),
    so arrivals cannot phase-lock with the deliverer's fixed poll interval.
    """
    out: list[tuple[str, float, float]] = []
    due = time.monotonic() + 0.05
    for i in range(count):
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        called = time.time()
        key = write(i)
        out.append((key, called, time.time()))
        due += rng.expovariate(rate)
    return out


def collate(
    result: Latency,
    writes: list[tuple[str, float, float]],
    receipts: Mapping[str, tuple[float, bool, int]],
) -> Latency:
    result.written = len(writes)
    result.write_seconds = [returned - called for _, called, returned in writes]
    if len(writes) > 1:
        result.achieved_rate = (len(writes) - 1) / (writes[-1][1] - writes[0][1])
    for key, called, returned in writes:
        if key in receipts:
            at, ok, _ = receipts[key]
            result.received += 1
            result.verified += ok
            result.from_call.append(at - called)
            result.from_return.append(at - returned)
    return result


@contextmanager
def deliverer(mode: str, hooks: Any, env: Mapping[str, str], log: Path) -> Iterator[None]:
    """Start the deliverer of ``mode`` for ``hooks``'s database; stop it afterwards."""
    if mode == "background_sender":
        yield
        return
    if mode == "worker_thread":
        halt = threading.Event()
        dispatcher = hooks.dispatcher()
        thread = threading.Thread(
            target=dispatcher.run,
            args=(halt,),
            kwargs={"poll_seconds": hooks.settings.webhook_poll_seconds},
            name="bench-worker",
            daemon=True,
        )
        thread.start()
        try:
            yield
        finally:
            halt.set()
            thread.join(10)
            dispatcher.client.close()
        return
    command = procs.venv_command("hokusai", "hokusai.cli.main")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "webhooks", "worker", "--reconcile-every", "0"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        try:
            deadline = time.monotonic() + 60
            while b"delivering from" not in log.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"hokusai webhooks worker did not start: {log.read_text()[-500:]}"
                    )
                time.sleep(0.05)
            yield
        finally:
            stop(process, group=False, grace=10)


def measure_latency(
    mode: str, home: Path, receiver: Receiver, count: int, rate: float, seed: int
) -> Latency:
    rng = random.Random(seed)
    hooks = make_webhooks(home, receiver, background=mode == "background_sender")
    base = 1_000_000
    try:
        with deliverer(mode, hooks, settings_env(home, receiver), home / "worker.log"):
            warm = paced(
                5, rate, lambda i: hooks.announce_registration(realistic_result(base + i)), rng
            )
            if len(receiver.wait_for([k for k, _, _ in warm], timeout=30)) != len(warm):
                raise RuntimeError(f"{mode}: warm-up events were not delivered within 30 s")
            writes = paced(
                count, rate, lambda i: hooks.announce_registration(realistic_result(i + 1)), rng
            )
            receipts = receiver.wait_for([k for k, _, _ in writes], timeout=30)
    finally:
        hooks.close()
    return collate(Latency(mode, count), writes, receipts)


def measure_announce(home: Path, receiver: Receiver, calls: int) -> list[float]:
    hooks = make_webhooks(home, receiver, background=False)
    try:
        for n in range(1, 31):
            hooks.announce_registration(realistic_result(-n))
        results = iter([realistic_result(n) for n in range(1, calls + 1)])
        return common.timed_calls(lambda: hooks.announce_registration(next(results)), calls)
    finally:
        hooks.close()


# ---- MLflow's own webhooks -----------------------------------------------------------------


@dataclass
class MlflowRun:
    latency: Latency
    server_start_seconds: float | None = None
    create_call_s: list[float] = field(default_factory=list)
    settle_seconds: float = 0.0
    reason: str | None = None
    env_names: list[str] = field(default_factory=list)
    from_server_timestamp: list[float] = field(default_factory=list)


def measure_mlflow(
    folder: Path, receiver: Receiver, count: int, rate: float, settle: float, seed: int
) -> MlflowRun:
    """Start ``mlflow server``, subscribe the receiver, create ``count`` versions at ``rate``."""
    run = MlflowRun(Latency("mlflow_server", count))
    try:
        from cryptography.fernet import Fernet
        from mlflow import MlflowClient
    except ImportError as exc:  # pragma: no cover - both ship with mlflow
        run.reason = f"cannot import what mlflow server needs: {exc}"
        run.latency.error = run.reason
        return run
    port = procs.free_port()
    extra_env = {
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    run.env_names = sorted(extra_env)
    env = {**os.environ, **extra_env}
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(variable, None)
    folder.mkdir(parents=True, exist_ok=True)
    command = procs.mlflow_server_command(folder, port)
    server = procs.start_server(
        "mlflow", command, port=port, log=folder / "mlflow-server.log", env=env, cwd=folder
    )
    uri = server.base
    try:
        if not procs.wait_http(server, "/health", timeout=90, request_timeout=1):
            run.reason = f"mlflow server did not become healthy within 90 s: {server.tail(800)}"
            run.latency.error = run.reason
            return run
        run.server_start_seconds = server.ready_seconds
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.create_webhook(
            name="bench-receiver",
            url=f"{receiver.base}/mlflow",
            events=["model_version.created"],
            secret=MLFLOW_SECRET,
        )
        name = "bench_mlflow_webhooks"
        client.create_registered_model(name)
        experiment = client.create_experiment("bench-webhooks")
        model_ids = [
            client.create_logged_model(experiment_id=experiment, name="model").model_id
            for _ in range(count + 3)
        ]
        for warm in model_ids[count:]:  # warm-up, not counted (first delivery, caches)
            version = client.create_model_version(name, f"models:/{warm}", model_id=warm)
        receiver.wait_for([f"{MLFLOW_KEY_PREFIX}{name}/{version.version}"], timeout=15)
        stamped: dict[str, float] = {}  # key -> the version's creation_timestamp (server)

        def create(i: int) -> str:
            model_id = model_ids[i]
            created = client.create_model_version(name, f"models:/{model_id}", model_id=model_id)
            key = f"{MLFLOW_KEY_PREFIX}{name}/{created.version}"
            stamped[key] = created.creation_timestamp / 1000
            return key

        writes = paced(count, rate, create, random.Random(seed))
        settle_start = time.monotonic()
        receipts = receiver.wait_for([k for k, _, _ in writes], timeout=settle)
        run.settle_seconds = time.monotonic() - settle_start
        collate(run.latency, writes, receipts)
        run.create_call_s = run.latency.write_seconds
        run.latency.from_return = []  # MLflow often delivers before the REST call returns
        run.from_server_timestamp = [
            receipts[key][0] - stamped[key] for key in stamped if key in receipts
        ]
    except Exception as exc:
        run.reason = f"{type(exc).__name__}: {exc}"[:800]
        run.latency.error = run.reason
    finally:
        stop(server.process, grace=5)
    return run


# ---- run, results, report ------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    with (
        common.temp_home(NAME, keep=args.keep_store) as root,
        running_receiver(root / "receiver.log") as receiver,
    ):
        progress(f"throughput: {args.events:,} events written, then one dispatcher")
        throughput = measure_throughput(root / "throughput", receiver, args.events, args.profile)
        latencies: list[Latency] = []
        for index, mode in enumerate(LATENCY_MODES):
            progress(
                f"latency, {MODE_LABELS[mode]}: {args.latency_events} events, "
                f"Poisson arrivals at {args.rate:g}/s"
            )
            count, seed = args.latency_events, args.seed + index
            try:
                home = root / f"latency-{mode}"
                latencies.append(measure_latency(mode, home, receiver, count, args.rate, seed))
            except (RuntimeError, OSError) as exc:
                latencies.append(Latency(mode, 0, error=f"{type(exc).__name__}: {exc}"))
        progress(f"announce_registration cost: {args.announce_calls} calls")
        announce = measure_announce(root / "announce", receiver, args.announce_calls)
        if args.skip_mlflow:
            mlflow_run = MlflowRun(Latency("mlflow_server", 0), reason="skipped (--skip-mlflow)")
        else:
            progress(
                f"MLflow: mlflow server + {args.mlflow_versions} model versions, Poisson "
                f"arrivals at {args.rate:g}/s"
            )
            count, seed = args.mlflow_versions, args.seed + len(LATENCY_MODES)
            mlflow_run = measure_mlflow(root / "mlflow", receiver, count, args.rate, 30, seed)
        receiver_counts = receiver.counts()
    return build_payload(args, throughput, latencies, announce, mlflow_run, receiver_counts)


def build_payload(
    args: argparse.Namespace,
    throughput: dict[str, Any],
    latencies: list[Latency],
    announce: list[float],
    mlflow_run: MlflowRun,
    receiver_counts: dict[str, int],
) -> dict[str, Any]:
    announce_summary = summarize(announce)
    median, p99 = announce_summary["median"], announce_summary["p99"]
    per_s = throughput["deliveries_per_s"]
    goals: dict[str, Any] = {
        "throughput": goal(
            f"one dispatcher delivers ≥ {GOAL_THROUGHPUT:g} deliveries/s",
            per_s >= GOAL_THROUGHPUT and throughput["received"] == throughput["events"],
            value_per_s=per_s,
            min_per_s=GOAL_THROUGHPUT,
        ),
        "announce": goal(
            f"announce_registration median ≤ {GOAL_ANNOUNCE_S * 1000:g} ms",
            median <= GOAL_ANNOUNCE_S,
            value_s=median,
            p99_s=p99,
            p99_within_goal=p99 <= GOAL_ANNOUNCE_S,
            max_s=GOAL_ANNOUNCE_S,
        ),
    }
    for lat in latencies:
        p50 = summarize(lat.from_call)["p50"] if lat.from_call else None
        goals[f"latency_{lat.mode}"] = goal(
            f"{MODE_LABELS[lat.mode]}: write→receipt p50 ≤ {GOAL_LATENCY_P50_S * 1000:g} ms",
            p50 is not None
            and p50 <= GOAL_LATENCY_P50_S
            and lat.received == lat.written == lat.verified,
            value_s=p50,
            max_s=GOAL_LATENCY_P50_S,
        )
    mlflow_doc: dict[str, Any] = {
        "ran": mlflow_run.reason is None,
        "reason_not_run": mlflow_run.reason,
        "server_env": mlflow_run.env_names,
        "server_start_s": mlflow_run.server_start_seconds,
        "versions_created": mlflow_run.latency.written,
        "delivered": mlflow_run.latency.received,
        "verified": mlflow_run.latency.verified,
        "waited_for_deliveries_s": mlflow_run.settle_seconds,
        **mlflow_run.latency.as_json(),
        **summaries(
            create_model_version_call_s=mlflow_run.create_call_s,
            latency_from_server_creation_timestamp_s=mlflow_run.from_server_timestamp,
        ),
    }
    mlflow_doc.pop("write_call_s", None)
    return {
        "description": (
            "Webhook outbox: dispatcher throughput to a loopback receiver in its own process "
            "(uvicorn, standardwebhooks verification), write→receipt latency for the worker "
            "thread / worker process / background sender, announce_registration cost, and "
            "MLflow server's own model_version.created webhooks side by side; fresh SQLite "
            "project database per measurement."
        ),
        "environment": common.environment(),
        "parameters": {
            "quick": args.quick,
            "throughput_events": args.events,
            "latency_events_per_mode": args.latency_events,
            "latency_write_rate_per_s": args.rate,
            "announce_calls": args.announce_calls,
            "mlflow_versions": args.mlflow_versions,
            "dispatcher_batch_size": 50,
            "poll_seconds": 0.05,
            "receiver": (
                f"uvicorn ({common.http_parser()}, asyncio) raw ASGI app in a subprocess, "
                "TCP_NODELAY; verifies with standardwebhooks; answers 200 'ok'"
            ),
            "arrivals": "Poisson (exponential gaps), seeded",
            "seed": args.seed,
            "load_average_at_start": args.load_at_start,
            "latency_definition": (
                "receipt time (receiver, time.time() after the body) minus the time the write "
                "call started (announce_registration / create_model_version)"
            ),
            "profiled": args.profile is not None,
        },
        "throughput": throughput,
        "latency": {lat.mode: lat.as_json() for lat in latencies},
        "announce_registration_s": announce_summary,
        "mlflow": mlflow_doc,
        "receiver_counts": receiver_counts,
        "goals": goals,
        "goals_met": all(g["met"] for g in goals.values()),
    }


def report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    tp, mlflow, latency = payload["throughput"], payload["mlflow"], payload["latency"]
    title = "Webhook delivery: outbox + dispatcher vs MLflow server webhooks, loopback receiver"
    receiver = "receiver: separate process, verifies every signature"
    common.print_header(title, args, payload["environment"], receiver)
    print(
        f"throughput: {tp['delivered']:,}/{tp['events']:,} delivered by one dispatcher in "
        f"{tp['deliver_seconds']:.2f} s = {tp['deliveries_per_s']:,.0f} deliveries/s (received "
        f"{tp['received']:,}, verified {tp['verified']:,}, duplicates {tp['duplicates']}); "
        f"writing them: {tp['writes_per_s']:,.0f} events/s\n  floor, serial signed httpx POSTs "
        f"without the outbox: {tp['floor_serial_signed_posts_per_s']:,.0f}/s (dispatcher at "
        f"{tp['ratio_to_floor']:.0%} of it)"
    )
    events = max(tp["events"], 1)
    per = {name: part["total"] / events for name, part in tp["where_the_time_goes_s"].items()}
    per["rest"] = tp["deliver_seconds"] / events - sum(per.values())
    cpu = {"sender": tp["sender_process_cpu_s"], "receiver": tp["receiver_process_cpu_s"]}
    per |= {f"CPU {side}": value / events for side, value in cpu.items() if value is not None}
    print("  per delivery: " + ", ".join(f"{name} {fmt_ms(value)}" for name, value in per.items()))
    rows = []
    for doc in [*latency.values(), *([mlflow] if mlflow["ran"] else [])]:
        call = doc.get("write_call_s") or doc.get("create_model_version_call_s")
        stats = [stat_ms(doc.get("latency_from_write_call_s"), q) for q in ("p50", "p90", "p99")]
        rows.append([doc["label"], f"{doc['received']}/{doc['written']}", doc["verified"], *stats])
        rows[-1] += [stat_ms(doc.get("latency_from_write_call_s"), "max"), stat_ms(call, "p50")]
    rate = payload["parameters"]["latency_write_rate_per_s"]
    print(f"\nwrite→receipt latency at {rate:g} writes/s Poisson arrivals (from the write call):")
    headers = ["deliverer", "received", "verified", "p50", "p90", "p99", "max", "write call p50"]
    common.print_table(headers, rows)
    for doc in latency.values():
        if doc["error"]:
            print(f"  {doc['label']}: ERROR {doc['error']}")
    if not mlflow["ran"]:
        print(f"  MLflow server webhooks: not measured — {mlflow['reason_not_run']}")
    else:
        from_stamp = fmt_stats(mlflow.get("latency_from_server_creation_timestamp_s"), "p50", "p99")
        print(
            f"  MLflow: {mlflow['delivered']}/{mlflow['versions_created']} delivered (server "
            f"started in {mlflow['server_start_s']:.1f} s); its write call is create_model_version "
            f"over REST; from the version's creation_timestamp (server clock, ms): {from_stamp}"
        )
    announce = fmt_stats(payload["announce_registration_s"], "median", "p90", "p99", "max")
    calls = payload["announce_registration_s"]["n"]
    print(f"\nannounce_registration (outbox write, {calls} calls, nothing sending): {announce}")
    background = latency.get("background_sender", {}).get("write_call_s")
    if background:
        print(f"  while the background sender delivers: {fmt_stats(background, 'median', 'p99')}")
    back_to_back = fmt_stats(tp["announce_back_to_back_s"], "median", "p99")
    print(f"  {tp['events']:,} back-to-back writes (throughput part): {back_to_back}\n")
    common.print_goals(payload["goals"])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return serve_receiver() if args.serve_receiver else common.run_main(NAME, args, run, report)


if __name__ == "__main__":
    sys.exit(main())
