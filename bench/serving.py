"""Prediction serving: our server against ``mlflow models serve``, side by side in one run.

XGBoost and RandomForest models served by both (one uvicorn worker each): load at two request
shapes (wrk, else httpx), cold start to ready, and our alias swap under load. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import _common as common
import _load
import _procs as procs
from _common import REPO_ROOT, fmt_ms, fmt_stats, goal, progress, ratio, summarize
from _procs import Server, stop

NAME = "serving"
GOAL_RPS_RATIO = 5.0
GOAL_COLD_START_AFTER_IMPORT_S = 3.0
ALIAS = "champion"
XGB = "bench_serving_xgb"
RF = "bench_serving_rf"
SIDES = ("ours", "mlflow")
LABELS = {"ours": "ours (api.app)", "mlflow": "mlflow models serve"}
READY_PATH = {"ours": "/ready", "mlflow": "/ping"}
BATCH_ROWS = 100
SINGLE_CONNECTIONS = 8
NOTES_REFERENCE: dict[str, Any] = {
    "source": "figures measured earlier on this machine kind",
    "mlflow_models_serve_rf10_single_8c": {
        "requests_per_s": [101, 137],
        "p50_ms": [58, 80],
        "p99_ms": [104, 124],
    },
    "fastapi_native_numpy_single_8c": {"requests_per_s": 440, "p99_ms": 23},
}

HTTPX_CAVEAT = (
    "httpx load generator: ~2 ms of client CPU per request in this process, on the same cores "
    "as the servers; it caps the fast server's requests/s and inflates its latency, so the "
    "ratios understate ours. Install wrk for the reference figures."
)

WRK_SCRIPT = """-- POSTs one JSON body (read from a file); prints the latency percentiles as JSON.
local handle = assert(io.open({body_path}, "rb"))
wrk.method = "POST"
wrk.body = handle:read("*a")
handle:close()
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "mean_us": %.1f, "min_us": %d, "max_us": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency.min, latency.max, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.Parser(__doc__)
    _load.add_loadgen(parser)
    parser.sized("--duration", 2, 5, "seconds per timed wrk run")
    parser.sized("--rounds", 1, 3, "XGBoost rounds per shape")
    parser.sized("--rf-rounds", 1, 2, "RandomForest rounds")
    requests = "httpx fallback: timed single-row requests per run (batch runs: a fifth)"
    parser.sized("--requests", 200, 1000, requests)
    parser.sized("--cold-starts", 1, 3, "starts of each server")
    parser.sized("--swaps", 2, 4, "alias moves + reloads")
    parser.add_argument("--skip-rf", action="store_true", help="do not serve the RandomForest")
    parser.add_argument("--startup-breakdown", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse(argv)
    counts = (args.duration, args.rounds, args.rf_rounds, args.cold_starts, args.swaps)
    parser.require(min(counts) >= 1, "counts and durations must be ≥ 1")
    minimum = 2 * SINGLE_CONNECTIONS
    parser.require(args.requests >= minimum, f"--requests must be ≥ {minimum}")
    args.loadgen = _load.pick_loadgen(args.loadgen, parser)
    return args


# ---- the model store -----------------------------------------------------------------------


@dataclass
class Store:
    """The temporary MLflow store and what the servers are pointed at."""

    root: Path
    tracking_uri: str
    columns: list[str]
    single_body: bytes
    batch_body: bytes
    versions: dict[str, list[str]] = field(default_factory=dict)
    build_seconds: float = 0.0

    def variant(self, name: str) -> str:
        return f"models:/{name}@{ALIAS}"


def build_store(root: Path, *, with_rf: bool) -> Store:
    """Train, log (signature + input example) and register the models; alias ``champion``."""
    started = time.perf_counter()
    import mlflow
    import mlflow.sklearn
    import mlflow.xgboost
    import sklearn
    import skops.io
    import xgboost
    from mlflow.models import infer_signature
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    frame = load_breast_cancer(as_frame=True)
    features = frame.data.copy()
    features.columns = [c.replace(" ", "_") for c in features.columns]
    target = frame.target
    columns = list(features.columns)
    example = features.iloc[:5]

    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.create_experiment(
        "bench-serving", artifact_location=(root / "artifacts").as_uri()
    )
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    store = Store(
        root=root,
        tracking_uri=tracking_uri,
        columns=columns,
        single_body=_dataframe_split(columns, features.iloc[:1].to_numpy().tolist()),
        batch_body=_dataframe_split(columns, features.iloc[:BATCH_ROWS].to_numpy().tolist()),
    )

    def register(name: str, flavor: Any, model: Any, **options: Any) -> None:
        with mlflow.start_run(experiment_id=experiment, run_name=name):
            info = flavor.log_model(
                model,
                name="model",
                signature=infer_signature(example, model.predict(example)),
                input_example=example,
                **options,
            )
        version = str(mlflow.register_model(info.model_uri, name).version)
        store.versions.setdefault(name, []).append(version)

    for params in ({"random_state": 0}, {"random_state": 1, "subsample": 0.8}):
        model = xgboost.XGBClassifier(n_estimators=50, max_depth=4, **params).fit(features, target)
        register(XGB, mlflow.xgboost, model, pip_requirements=[f"xgboost=={xgboost.__version__}"])
    client.set_registered_model_alias(XGB, ALIAS, store.versions[XGB][0])
    if with_rf:
        forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(features, target)
        pins = [f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"]
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(forest))
        register(RF, mlflow.sklearn, forest, skops_trusted_types=trusted, pip_requirements=pins)
        client.set_registered_model_alias(RF, ALIAS, store.versions[RF][0])
    store.build_seconds = time.perf_counter() - started
    return store


def _dataframe_split(columns: list[str], rows: list[list[float]]) -> bytes:
    return json.dumps({"dataframe_split": {"columns": columns, "data": rows}}).encode()


# ---- servers -------------------------------------------------------------------------------

SERVING_VARIABLES = ("MODEL_VARIANT", "MODEL_RUN_ID", "MODEL_RUN_NAME", "MODEL_REFRESH_SECONDS")


def serving_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """This environment minus MLflow/Hokusai/serving variables, venv bin first on PATH."""
    drop = (*SERVING_VARIABLES, "CONFIG_PATH")
    return procs.server_environment(overrides, drop=drop, unbuffered=True)


def ours_environment(store: Store, model: str) -> dict[str, str]:
    return serving_environment(
        {
            "MODEL_VARIANT": store.variant(model),
            "CONFIG_PATH": str(store.root / "config.yaml"),
            "HOKUSAI_HOME": str(store.root / "hokusai-home"),
            "MODEL_REFRESH_SECONDS": "0",
        }
    )


def start(side: str, model: str, store: Store, tag: str) -> Server:
    """Start ``side`` serving ``model``'s champion; returns at once (see :func:`wait_ready`)."""
    port = procs.free_port()
    host = ["--host", "127.0.0.1", "--port", str(port)]
    if side == "mlflow":
        mlflow = procs.venv_command("mlflow", "mlflow")
        command = [*mlflow, "models", "serve", "-m", store.variant(model), "--env-manager", "local"]
        command += [*host, "--workers", "1"]
        env = serving_environment({"MLFLOW_TRACKING_URI": store.tracking_uri})
        cwd = store.root
    else:
        (store.root / "hokusai-home").mkdir(exist_ok=True)
        config = store.root / "config.yaml"
        if not config.exists():
            config.write_text(
                f"tracking_uri: {store.tracking_uri}\nexperiment_name: bench-serving\n"
                f"fallback_model_path: {store.root / 'xgb_model.pkl'}\n",
                encoding="utf-8",
            )
        command = [sys.executable, "-m", "uvicorn", "api.app:app", *host]
        env, cwd = ours_environment(store, model), REPO_ROOT
    log = store.root / f"{side}-{tag}.log"
    return procs.start_server(
        side, command, port=port, log=log, env=env, cwd=cwd, append=True, model=model
    )


def wait_ready(server: Server, timeout: float = 120.0) -> float:
    """Poll the ready URL every 10 ms; seconds from process start to the first 200."""
    if not procs.wait_http(server, READY_PATH[server.side], timeout=timeout, interval=0.01):
        tail = server.tail()
        raise RuntimeError(f"{LABELS[server.side]} was not ready within {timeout:g} s:\n{tail}")
    assert server.ready_seconds is not None
    return server.ready_seconds


@contextlib.contextmanager
def running(
    model: str, store: Store, tag: str, sides: Sequence[str] = SIDES
) -> Iterator[dict[str, Server]]:
    """``sides`` serving ``model``, started one after the other (so they do not compete)."""
    started: dict[str, Server] = {}
    try:
        for side in sides:
            started[side] = start(side, model, store, tag)
            wait_ready(started[side])
        yield started
    finally:
        for server in started.values():
            stop(server.process)


def predictions(server: Server, body: bytes) -> tuple[list[Any], dict[str, str]]:
    import httpx

    headers = {"Content-Type": "application/json"}
    response = httpx.post(server.base + "/invocations", content=body, headers=headers, timeout=30)
    if response.status_code != 200:
        answer = f"{response.status_code}: {response.text[:500]}"
        raise RuntimeError(f"{LABELS[server.side]} answered {answer}")
    return list(response.json()["predictions"]), dict(response.headers)


def check_agreement(pair: Mapping[str, Server], store: Store) -> dict[str, Any]:
    """Both servers must return the same predictions for both request shapes."""
    outcome: dict[str, Any] = {}
    for shape, body in (("single", store.single_body), ("batch", store.batch_body)):
        ours, headers = predictions(pair["ours"], body)
        theirs, _ = predictions(pair["mlflow"], body)
        if [float(v) for v in ours] != [float(v) for v in theirs]:
            raise RuntimeError(f"predictions differ ({shape}): ours {ours[:5]} mlflow {theirs[:5]}")
        outcome[shape] = {"rows": len(ours), "agree": True}
        outcome["ours_headers"] = {k: v for k, v in headers.items() if k.startswith("x-model")}
    return outcome


# ---- load generation -----------------------------------------------------------------------


@dataclass
class Shape:
    name: str
    connections: int
    rows: int
    body: bytes
    path: str = "/invocations"
    """The route POSTed to (protocols.py also loads the V2 infer route)."""


@dataclass
class RunResult:
    side: str
    shape: str
    tool: str
    requests: int
    seconds: float
    requests_per_s: float
    p50_s: float
    p90_s: float
    p99_s: float
    p999_s: float | None
    max_s: float
    mean_s: float
    errors: int
    server_cpu_s: float | None = None
    latency_text: str | None = None

    @property
    def cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.requests:
            return None
        return 1000 * self.server_cpu_s / self.requests


class LoadGenerator:
    """wrk (``-t1``, duration-based) or the httpx fallback (request-count based)."""

    def __init__(self, tool: str, workdir: Path, args: argparse.Namespace) -> None:
        self.tool = tool
        self.workdir = workdir
        self.duration = args.duration
        self.requests = args.requests
        self.scripts: dict[str, Path] = {}
        self.runs = 0

    def script(self, shape: Shape) -> Path:
        if shape.name not in self.scripts:
            body_path = self.workdir / f"body-{shape.name}.json"
            body_path.write_bytes(shape.body)
            lua = self.workdir / f"post-{shape.name}.lua"
            lua.write_text(WRK_SCRIPT.format(body_path=json.dumps(str(body_path))), "utf-8")
            self.scripts[shape.name] = lua
        return self.scripts[shape.name]

    def run(self, server: Server, shape: Shape) -> RunResult:
        self.runs += 1
        url = server.base + shape.path
        if self.tool == "wrk":
            self._wrk(url, shape, seconds=1)  # warm-up at the same settings
            before = server.cpu_seconds()
            result = self._wrk(url, shape, seconds=self.duration)
        else:
            count = self.requests if shape.connections > 1 else max(self.requests // 5, 20)
            warmup = max(count // 10, 2 * shape.connections)
            _httpx_load(url, shape, warmup)
            before = server.cpu_seconds()
            result = _httpx_load(url, shape, count)
        result.server_cpu_s = procs.cpu_used(before, server.cpu_seconds())
        result.side = server.side
        if server.process.poll() is not None:
            label = LABELS.get(server.side, server.side)
            raise RuntimeError(f"{label} exited during a run; see {server.log}")
        return result

    def _wrk(self, url: str, shape: Shape, *, seconds: int) -> RunResult:
        script = self.script(shape)
        done = _load.run_wrk(url, script, shape.connections, seconds, latency=True)
        match = re.search(r"^BENCH_JSON (.*)$", done.stdout, re.MULTILINE)
        if done.returncode != 0 or match is None:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
        data = json.loads(match.group(1))
        errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
        distribution = re.search(r"Latency Distribution.*?(?=\n\s*\d+ requests)", done.stdout, re.S)
        elapsed = data["duration_us"] / 1e6
        return RunResult(
            side="",
            shape=shape.name,
            tool="wrk",
            requests=data["requests"],
            seconds=elapsed,
            requests_per_s=data["requests"] / elapsed,
            **{
                f"{k}_s": data[f"{k}_us"] / 1e6
                for k in ("p50", "p90", "p99", "p999", "max", "mean")
            },
            errors=errors,
            latency_text=" ".join(distribution.group(0).split()) if distribution else None,
        )


def _httpx_load(url: str, shape: Shape, count: int) -> RunResult:
    """``count`` requests over ``shape.connections`` keep-alive connections (one task each)."""
    import httpx

    latencies: list[float] = []
    errors = 0
    remaining = count

    async def connection(client: Any, _index: int) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            sent = time.perf_counter()
            try:
                response = await client.post(url, content=shape.body)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - sent)
            errors += not ok

    headers = {"Content-Type": "application/json"}
    elapsed = _load.run_httpx(shape.connections, connection, timeout=30, headers=headers)
    stats = summarize(latencies)
    return RunResult(
        side="",
        shape=shape.name,
        tool="httpx",
        requests=len(latencies),
        seconds=elapsed,
        requests_per_s=len(latencies) / elapsed,
        **{f"{k}_s": stats[k] for k in ("p50", "p90", "p99", "max", "mean")},
        p999_s=None,
        errors=errors,
    )


def measure_load(
    pair: Mapping[str, Server], shapes: Sequence[Shape], loadgen: LoadGenerator, rounds: int
) -> dict[str, dict[str, list[RunResult]]]:
    """Every shape on both servers, ``rounds`` times, in ABBA order."""
    results: dict[str, dict[str, list[RunResult]]] = {
        s.name: {x: [] for x in SIDES} for s in shapes
    }
    for round_index in range(rounds):
        for shape_index, shape in enumerate(shapes):
            # each shape alternates who goes first from round to round (ABBA…)
            flip = (round_index + shape_index) % 2
            order = tuple(reversed(SIDES)) if flip else SIDES
            for side in order:
                result = loadgen.run(pair[side], shape)
                results[shape.name][side].append(result)
                progress(
                    f"{pair[side].model} {shape.name} round {round_index + 1}/{rounds} "
                    f"{side}: {result.requests_per_s:,.0f} req/s, p50 {fmt_ms(result.p50_s)}, "
                    f"p99 {fmt_ms(result.p99_s)}, errors {result.errors}"
                )
    return results


def aggregate(runs: Sequence[RunResult]) -> dict[str, Any]:
    """Median over rounds of each figure; totals of requests and errors."""

    def median(key: str) -> float | None:
        present = [v for v in (getattr(r, key) for r in runs) if v is not None]
        return statistics.median(present) if present else None

    return {
        "rounds": len(runs),
        "requests": sum(r.requests for r in runs),
        "errors": sum(r.errors for r in runs),
        **{key: median(key) for key in ("requests_per_s", "p50_s", "p90_s", "p99_s")},
        "p99_worst_round_s": max(r.p99_s for r in runs),
        "max_s": max(r.max_s for r in runs),
        "cpu_ms_per_request": median("cpu_ms_per_request"),
        "raw": [{**asdict(r), "cpu_ms_per_request": r.cpu_ms_per_request} for r in runs],
    }


def compare(load: Mapping[str, Mapping[str, Sequence[RunResult]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for shape, sides in load.items():
        ours, theirs = aggregate(sides["ours"]), aggregate(sides["mlflow"])
        out[shape] = {
            "ours": ours,
            "mlflow": theirs,
            "requests_per_s_ratio": ratio(ours["requests_per_s"], theirs["requests_per_s"]),
            "ours_p99_over_mlflow_p50": ratio(ours["p99_s"], theirs["p50_s"]),
            "cpu_per_request_ratio": (
                ratio(theirs["cpu_ms_per_request"], ours["cpu_ms_per_request"])
                if ours["cpu_ms_per_request"] and theirs["cpu_ms_per_request"]
                else None
            ),
        }
    return out


# ---- cold start ----------------------------------------------------------------------------


def time_python(code: str) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of ``python -c code`` in a fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], env=serving_environment({}), check=True, timeout=120
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def startup_breakdown() -> int:
    """(Child mode) Our start-up, phase by phase, in this fresh process; prints JSON."""
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = now - mark
        mark = now

    import mlflow  # noqa: F401 - timed on purpose

    lap("import mlflow")
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401

    lap("import fastapi + uvicorn")
    from hokusai.serving import app as serving_app
    from hokusai.serving import predictor

    lap("import hokusai.serving.app")
    app = serving_app.create_app()
    lap("create_app() (settings, MlflowClient)")
    manager = app.state.manager
    kind, resolve = manager.chain.candidates()[0]
    resolved = resolve()
    lap(f"first resolution of {kind} (registry calls)")
    timed: dict[str, float] = {}

    def timing(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **k: Any) -> Any:
            begun = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                timed[name] = timed.get(name, 0.0) + time.perf_counter() - begun

        return wrapper

    # Patched in this throw-away process only: load_model looks both up at call time.
    predictor._load_mlflow = timing("load (download, MLmodel, flavor)", predictor._load_mlflow)
    predictor._smoke_test = timing("smoke test (pandas, predict)", predictor._smoke_test)
    outcome = manager.refresh()
    lap("manager.refresh() (resolve again + load)")
    found = {"identity": resolved.identity, "action": outcome.action, "phases_s": phases}
    print(json.dumps({**found, "inside_refresh_s": timed, "modules_loaded": len(sys.modules)}))
    return 0


def measure_breakdown(store: Store) -> dict[str, Any]:
    env = ours_environment(store, XGB)
    started = time.perf_counter()
    command = [sys.executable, str(Path(__file__).resolve()), "--startup-breakdown"]
    done = subprocess.run(
        command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stdout + done.stderr)[-1500:]}
    result: dict[str, Any] = json.loads(lines[-1])
    result["process_wall_s"] = wall
    return result


def measure_cold_starts(store: Store, repeats: int) -> dict[str, Any]:
    """``repeats`` rounds of: ``python -c "import mlflow"``, ours, MLflow — each alone, rotated.

    Timing the import in the same rounds puts it under the same machine conditions as the
    starts, so ``ours − import`` can be taken per round (paired).
    """
    kinds = ("import_mlflow", *SIDES)
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    for index in range(repeats):
        shift = index % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            if kind == "import_mlflow":
                wall, used = time_python("import mlflow")
                samples[kind].append(wall)
                cpu[kind].append(used)
                continue
            with running(XGB, store, f"cold{index}", [kind]) as servers:
                server = servers[kind]
                assert server.ready_seconds is not None
                samples[kind].append(server.ready_seconds)
                if server.ready_cpu_seconds is not None:
                    cpu[kind].append(server.ready_cpu_seconds)
        progress(
            f"cold start round {index + 1}/{repeats}: "
            + ", ".join(f"{kind} {samples[kind][-1]:.2f} s" for kind in kinds)
        )
    after_import = [o - i for o, i in zip(samples["ours"], samples["import_mlflow"], strict=True)]
    cpu["ours_minus_import_mlflow"] = [
        o - i for o, i in zip(cpu["ours"], cpu["import_mlflow"], strict=False)
    ]
    samples["ours_minus_import_mlflow"] = after_import
    return {
        kind: summarize(values)
        | {
            "samples": values,
            "cpu_samples": cpu[kind],
            "cpu_median": statistics.median(cpu[kind]) if cpu[kind] else None,
        }
        for kind, values in samples.items()
    }


# ---- swap ----------------------------------------------------------------------------------


class Probe:
    """Single-row requests back to back on one keep-alive connection, in a thread."""

    def __init__(self, server: Server, body: bytes) -> None:
        self.url = server.base + "/invocations"
        self.body = body
        self.seen: list[tuple[float, float, int, str | None]] = []  # sent, received, status, v
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="swap-probe", daemon=True)

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=10, headers={"Content-Type": "application/json"}) as client:
            while not self.stop.is_set():
                sent = time.perf_counter()
                try:
                    response = client.post(self.url, content=self.body)
                    status, version = response.status_code, response.headers.get("x-model-version")
                except httpx.HTTPError:
                    status, version = 0, None
                self.seen.append((sent, time.perf_counter(), status, version))

    def first_with(self, version: str, after: float, timeout: float) -> float | None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for sent, received, _status, seen in list(self.seen):
                if seen == version and sent >= after:
                    return received
            time.sleep(0.002)
        return None


def measure_swaps(server: Server, store: Store, swaps: int) -> dict[str, Any]:
    """Move the alias back and forth ``swaps`` times, reloading after each move."""
    import httpx
    import mlflow

    from hokusai.auth import ApiKeyStore
    from hokusai.config import Settings
    from hokusai.db import open_database

    client = mlflow.MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.tracking_uri)
    first, second = store.versions[XGB][:2]
    # POST /admin/reload needs an admin key of the server's project database.
    settings = Settings(home=store.root / "hokusai-home")
    keys = ApiKeyStore(open_database(settings.resolved_database_url))
    admin = {"Authorization": f"Bearer {keys.create(name='bench-swaps', scope='admin')[1]}"}
    probe = Probe(server, store.single_body)
    probe.thread.start()
    records: list[dict[str, Any]] = []
    # (reload returned, the version every later answer must carry, next alias move)
    windows: list[tuple[float, str]] = []
    moves: list[float] = []
    try:
        time.sleep(0.3)  # the probe is running and warm
        for index in range(swaps):
            target = second if index % 2 == 0 else first
            moved_at = time.perf_counter()
            moves.append(moved_at)
            client.set_registered_model_alias(XGB, ALIAS, target)
            reload_at = time.perf_counter()
            response = httpx.post(server.base + "/admin/reload", headers=admin, timeout=60)
            if response.status_code != 200:
                raise RuntimeError(
                    f"/admin/reload answered {response.status_code}: {response.text}"
                )
            returned_at = time.perf_counter()
            windows.append((returned_at, target))
            arrived = probe.first_with(target, after=reload_at, timeout=30)
            body = response.json() if response.status_code == 200 else {"text": response.text}
            records.append(
                {
                    "to_version": target,
                    "reload_status": response.status_code,
                    "reload_action": body.get("action"),
                    "server_refresh_s": body.get("seconds"),
                    "alias_move_s": reload_at - moved_at,
                    "reload_call_s": returned_at - reload_at,
                    "alias_move_to_new_version_s": None if arrived is None else arrived - moved_at,
                    "reload_to_new_version_s": None if arrived is None else arrived - reload_at,
                }
            )
            progress(
                f"swap to v{target}: reload {fmt_ms(returned_at - reload_at)}, "
                f"action {body.get('action')}"
            )
            time.sleep(0.3)
    finally:
        probe.stop.set()
        probe.thread.join(15)
    seen = list(probe.seen)
    stale = 0  # old-version answers to requests sent after a reload returned (till next move)
    for index, (returned_at, target) in enumerate(windows):
        until = moves[index + 1] if index + 1 < len(moves) else float("inf")
        stale += sum(1 for s in seen if returned_at <= s[0] < until and s[3] != target)
    arrived = all(r["alias_move_to_new_version_s"] is not None for r in records)

    def times(key: str) -> dict[str, float] | None:
        return summarize([r[key] for r in records]) if arrived else None

    return {
        "swaps": records,
        "probe_requests": len(seen),
        "probe_failed": sum(1 for s in seen if s[2] != 200),
        "probe_latency": summarize([r - s for s, r, _, _ in seen]) if seen else None,
        "stale_after_reload": stale,
        "reload_call": summarize([r["reload_call_s"] for r in records]),
        "alias_move_to_new_version": times("alias_move_to_new_version_s"),
        "reload_to_new_version": times("reload_to_new_version_s"),
    }


# ---- run, results, report ------------------------------------------------------------------


def serve_both(
    pair: dict[str, Server], store: Store, shapes: list[Shape], loadgen: LoadGenerator, rounds: int
) -> dict[str, Any]:
    """Ready times, agreement and the load rounds of one model on both servers."""
    ready = {side: s.ready_seconds for side, s in pair.items()}
    agreement = check_agreement(pair, store)
    load = measure_load(pair, shapes, loadgen, rounds)
    return {"ready_s": ready, "agreement": agreement, "load": compare(load)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    tool = args.loadgen
    with common.temp_home(NAME, keep=args.keep_store) as root:
        progress("training, logging and registering the models")
        store = build_store(root, with_rf=not args.skip_rf)
        progress(f"store ready in {store.build_seconds:.1f} s: {store.versions}")
        loadgen = LoadGenerator(tool, root, args)
        shapes = [
            Shape("single", SINGLE_CONNECTIONS, 1, store.single_body),
            Shape("batch", 1, BATCH_ROWS, store.batch_body),
        ]

        progress("cold starts (and `python -c pass` / `import mlflow`)")
        python_pass = [time_python("pass")[0] for _ in range(2)]
        cold = measure_cold_starts(store, args.cold_starts)
        breakdown = measure_breakdown(store)

        progress(f"XGBoost: both servers, {tool}")
        with running(XGB, store, "xgb") as pair:
            xgb = serve_both(pair, store, shapes, loadgen, args.rounds)
            stop(pair["mlflow"].process)  # only ours swaps; keep the cores for it
            progress("swaps")
            swap = measure_swaps(pair["ours"], store, args.swaps)

        rf: dict[str, Any] | None = None
        if not args.skip_rf:
            progress(f"RandomForest-10: both servers, {tool}")
            with running(RF, store, "rf") as pair:
                rf = serve_both(pair, store, shapes, loadgen, args.rf_rounds)

    return build_payload(args, store, python_pass, cold, breakdown, xgb, rf, swap)


def build_payload(
    args: argparse.Namespace,
    store: Store,
    python_pass: list[float],
    cold: dict[str, Any],
    breakdown: dict[str, Any],
    xgb: dict[str, Any],
    rf: dict[str, Any] | None,
    swap: dict[str, Any],
) -> dict[str, Any]:
    tool = args.loadgen
    single = xgb["load"]["single"]
    batch = xgb["load"]["batch"]
    import_median = cold["import_mlflow"]["median"]
    ours_cold = cold["ours"]["median"]
    after_import = cold["ours_minus_import_mlflow"]["median"]
    goals = {
        "single_row_throughput": goal(
            "ours ≥ 5× MLflow's requests/s (XGBoost, 1 row, 8 connections)",
            single["requests_per_s_ratio"] >= GOAL_RPS_RATIO,
            value=single["requests_per_s_ratio"],
            target=GOAL_RPS_RATIO,
        ),
        "single_row_p99_vs_mlflow_p50": p99_vs_p50("1 row, 8 connections", single),
        "cold_start_after_import": goal(
            "our start → /ready minus `python -c 'import mlflow'` (paired per round, median) ≤ 3 s",
            after_import <= GOAL_COLD_START_AFTER_IMPORT_S,
            value_s=after_import,
            total_s=ours_cold,
            import_mlflow_s=import_median,
            target_s=GOAL_COLD_START_AFTER_IMPORT_S,
        ),
    }
    also = {
        "batch_p99_vs_mlflow_p50": p99_vs_p50("100 rows, 1 connection", batch),
        "swap_clean": goal(
            "while swapping: failed predictions, and old-version answers to "
            "requests sent after the reload returned",
            swap["probe_failed"] == 0 and swap["stale_after_reload"] == 0,
            value=f"{swap['probe_failed']} failed, {swap['stale_after_reload']} stale",
        ),
    }
    return {
        "environment": common.environment(),
        "load_average_at_start": args.load_at_start,
        "quick": args.quick,
        "parameters": {
            "loadgen": tool,
            "loadgen_version": _load.wrk_version()
            if tool == "wrk"
            else f"httpx {_load.httpx_version()}",
            "loadgen_caveat": None if tool == "wrk" else HTTPX_CAVEAT,
            "wrk_command": (
                f"wrk -t1 -c<C> -d{args.duration}s --timeout 10s --latency -s post.lua <url>"
                if tool == "wrk"
                else None
            ),
            "wrk_warmup_s": 1 if tool == "wrk" else None,
            "httpx_requests": args.requests if tool == "httpx" else None,
            "rounds_xgb": args.rounds,
            "rounds_rf": None if rf is None else args.rf_rounds,
            "order": "ABBA across shapes and rounds",
            "shapes": {
                "single": {"rows": 1, "connections": SINGLE_CONNECTIONS},
                "batch": {"rows": BATCH_ROWS, "connections": 1},
            },
            "body_bytes": {"single": len(store.single_body), "batch": len(store.batch_body)},
            "cold_starts": args.cold_starts,
            "swaps": args.swaps,
            "models": {
                XGB: "XGBClassifier(n_estimators=50, max_depth=4); v2 random_state=1 subsample=0.8",
                RF: "RandomForestClassifier(n_estimators=10), skops",
            },
            "data": "sklearn breast_cancer (569×30)",
            "alias": ALIAS,
            "versions": store.versions,
            "commands": {
                "mlflow": "mlflow models serve -m models:/<name>@champion --env-manager local "
                "--host 127.0.0.1 --port P --workers 1  (MLFLOW_TRACKING_URI=<store>)",
                "ours": "python -m uvicorn api.app:app --host 127.0.0.1 --port Q  "
                "(MODEL_VARIANT, CONFIG_PATH, HOKUSAI_HOME, MODEL_REFRESH_SECONDS=0)",
            },
            "store_build_s": store.build_seconds,
        },
        "cold_start": {
            "python_pass": summarize(python_pass) | {"samples": python_pass},
            "rounds": cold,
            "ours_breakdown": breakdown,
            "ready_when_serving_xgb_s": xgb["ready_s"],
            "ready_when_serving_rf_s": None if rf is None else rf["ready_s"],
            "ratio_mlflow_over_ours": ratio(cold["mlflow"]["median"], ours_cold),
            "note": "each start alone; ready = first 200 from /ready (ours) or /ping (MLflow), "
            "polled every 10 ms",
        },
        "xgboost": xgb,
        "random_forest": rf,
        "swap": swap,
        "notes_reference": NOTES_REFERENCE,
        "goals": goals,
        "goals_met": all(g["met"] for g in goals.values()),
        "also_checked": also,
    }


def p99_vs_p50(shape: str, load: Mapping[str, Any]) -> dict[str, Any]:
    ours, theirs = load["ours"]["p99_s"], load["mlflow"]["p50_s"]
    description = f"our p99 ≤ MLflow's p50 (XGBoost, {shape})"
    return goal(description, ours <= theirs, value_s=ours, mlflow_p50_s=theirs)


def _load_rows(load: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for shape, doc in load.items():
        for side in SIDES:
            agg = doc[side]
            cpu = agg["cpu_ms_per_request"]
            rows.append([f"{shape} {LABELS[side]}", f"{agg['requests_per_s']:,.1f}"])
            rows[-1] += [common.fmt_value("_s", agg[key]) for key in ("p50_s", "p90_s", "p99_s")]
            rows[-1] += ["—" if cpu is None else f"{cpu:.2f}", str(agg["errors"])]
        less = doc["cpu_per_request_ratio"]
        cells = [f"{doc['requests_per_s_ratio']:.1f}×", "", ""]
        cells += [f"p99/p50 {doc['ours_p99_over_mlflow_p50']:.2f}"]
        rows.append(
            [f"{shape} ours / mlflow", *cells, "—" if less is None else f"{less:.1f}× less"]
        )
        rows[-1].append("")
    return rows


COLD_LABELS = {
    "import_mlflow": "python -c 'import mlflow'",
    **{side: f"{LABELS[side]} → {READY_PATH[side]}" for side in SIDES},
    "ours_minus_import_mlflow": "ours − import mlflow (paired)",
}


def report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    params, cold, swap = payload["parameters"], payload["cold_start"], payload["swap"]
    loadgen = f"load generator: {params['loadgen_version']}"
    common.print_header(
        "Serving: api.app vs mlflow models serve", args, payload["environment"], loadgen
    )
    if params["loadgen_caveat"]:
        print(f"note: {params['loadgen_caveat']}\n")
    headers = ["shape / server", "req/s", "p50", "p90", "p99", "CPU ms/req", "errors"]
    models = {"xgboost": "XGBoost (50 trees, depth 4)", "random_forest": "RandomForest (10 trees)"}
    rounds = {"xgboost": params["rounds_xgb"], "random_forest": params["rounds_rf"]}
    notes = NOTES_REFERENCE["mlflow_models_serve_rf10_single_8c"]
    span = {key: "–".join(map(str, value)) for key, value in notes.items()}
    for key, title in models.items():
        if payload[key]:
            print(f"{title}, median of {rounds[key]} round(s):")
            common.print_table(headers, _load_rows(payload[key]["load"]))
            if key == "random_forest":
                print(
                    f"  measured earlier on this machine kind, RF-10 single row 8 conn: mlflow "
                    f"{span['requests_per_s']} req/s, p50 {span['p50_ms']} ms, p99 "
                    f"{span['p99_ms']} ms; FastAPI+native ~440 req/s, p99 ~23 ms"
                )
            print()
    print("Cold start (process start → ready), median:")
    rows = [["python -c pass", fmt_ms(cold["python_pass"]["median"]), "", ""]]
    for kind, label in COLD_LABELS.items():
        doc = cold["rounds"][kind]
        spread = f"{fmt_ms(doc['min'])}–{fmt_ms(doc['max'])} (n={doc['n']})"
        rows.append(
            [label, fmt_ms(doc["median"]), spread, common.fmt_value("_s", doc["cpu_median"])]
        )
    common.print_table(["", "median", "range", "CPU (median)"], rows)
    breakdown = cold["ours_breakdown"]
    if "phases_s" in breakdown:
        print("  our start-up by phase (child process):")
        for phase, seconds in breakdown["phases_s"].items():
            print(f"    {phase:<48} {fmt_ms(seconds):>10}")
        for phase, seconds in breakdown["inside_refresh_s"].items():
            print(f"      of which {phase:<37} {fmt_ms(seconds):>10}")
    moved = swap["alias_move_to_new_version"]
    print(
        "\nSwap (alias moved, POST /admin/reload, probe on one connection): reload call "
        f"{fmt_stats(swap['reload_call'], 'median', 'max')}; alias move → new X-Model-Version "
        f"{fmt_stats(moved, 'median') if moved else 'NOT seen'}; probe {swap['probe_requests']} "
        f"requests, {swap['probe_failed']} failed, {swap['stale_after_reload']} stale, "
        f"{fmt_stats(swap['probe_latency'], 'p99')}\n"
    )
    common.print_goals(payload["goals"])
    common.print_goals(payload["also_checked"], "also")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.startup_breakdown:
        return startup_breakdown()

    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds through every finally: servers are stopped

    signal.signal(signal.SIGTERM, terminate)
    return common.run_main(NAME, args, run, report)


if __name__ == "__main__":
    sys.exit(main())
