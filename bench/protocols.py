"""Serving protocols: our Open Inference Protocol V2 endpoint against MLServer's MLflow runtime.

One XGBoost model, 1 row, 8 connections, side by side in one run: our ``POST
/v2/models/<name>/infer`` and MLServer's (``mlserver`` + ``mlserver-mlflow``, in a venv of its
own that this script creates on first use), and our ``POST /invocations`` as the yardstick for
our own V2 overhead. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as common
import _load
import _procs as procs
import serving
from _common import BENCH_DIR, REPO_ROOT, fmt_ms, goal, progress, ratio
from _procs import Server, stop

NAME = "protocols"
MODEL = "bench_protocols_xgb"
VERSION = "1"
CONNECTIONS = 8
GOAL_RPS_RATIO = 5.0
GOAL_V2_VS_INVOCATIONS = 0.15
MLSERVER_VERSION = "1.7.1"
DEFAULT_VENV = BENCH_DIR / ".venvs" / "mlserver"
V2_PATH = f"/v2/models/{MODEL}/infer"
CHECK_ROWS = 20

Target = tuple[str, str, str]
"""What is measured: (key, server, route)."""
# In the order of the rounds and of the table.
TARGETS: tuple[Target, ...] = (
    ("ours_v2", "ours", V2_PATH),
    ("mlserver_v2", "mlserver", V2_PATH),
    ("ours_invocations", "ours", "/invocations"),
)
LABELS = {
    "ours_v2": f"ours  POST {V2_PATH}",
    "mlserver_v2": f"MLServer  POST {V2_PATH}",
    "ours_invocations": "ours  POST /invocations",
}
READY_PATH = {"ours": "/ready", "mlserver": f"/v2/models/{MODEL}/ready"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.Parser(__doc__)
    _load.add_loadgen(parser)
    parser.sized("--duration", 2, 5, "seconds per timed wrk run (after a 1 s warm-up)")
    parser.sized("--rounds", 1, 3, "rounds; each measures the three targets, order alternating")
    parser.sized("--requests", 200, 1000, "httpx fallback: timed requests per run")
    parser.add_argument(
        "--mlserver-venv",
        type=Path,
        default=DEFAULT_VENV,
        help=f"MLServer's venv, created when missing (default {_shown(DEFAULT_VENV)})",
    )
    parser.add_argument(
        "--recreate-venv", action="store_true", help="delete MLServer's venv and create it again"
    )
    parser.add_argument(
        "--mlserver-parallel-workers",
        type=int,
        default=1,
        help="MLServer's parallel_workers (default 1, its own default: one inference worker "
        "process beside the HTTP one; 0 runs inference in the server process; see README)",
    )
    keys = ",".join(key for key, _, _ in TARGETS)
    parser.add_argument(
        "--targets",
        type=lambda text: text.split(","),
        default=[key for key, _, _ in TARGETS],
        help=f"what to measure, some of {keys} (default all; the goals need all three)",
    )
    args = parser.parse(argv)
    unknown = set(args.targets) - {key for key, _, _ in TARGETS}
    parser.require(not unknown, f"--targets: unknown {sorted(unknown)}; known: {keys}")
    args.targets = [target for target in TARGETS if target[0] in args.targets]
    parser.require(min(args.duration, args.rounds) >= 1, "counts and durations must be ≥ 1")
    parser.require(args.requests >= 2 * CONNECTIONS, f"--requests must be ≥ {2 * CONNECTIONS}")
    parser.require(args.mlserver_parallel_workers >= 0, "--mlserver-parallel-workers must be ≥ 0")
    args.loadgen = _load.pick_loadgen(args.loadgen, parser)
    return args


# ---- MLServer's venv -----------------------------------------------------------------------

_VERSIONS_CODE = (
    "import importlib.metadata as m, json, platform, sys\n"
    "found = {n: m.version(n) for n in sys.argv[1:]}\n"
    "print(json.dumps({'python': platform.python_version(), **found}))"
)
_VENV_PACKAGES = (
    *("mlserver", "mlserver-mlflow", "mlflow", "xgboost", "pandas", "numpy"),
    *("fastapi", "uvicorn", "httptools", "uvloop"),
)


def mlserver_requirements() -> list[str]:
    """MLServer and its MLflow runtime, with the MLflow and XGBoost this venv has (so both
    servers load the model with the same libraries); httptools, uvicorn's faster HTTP parser,
    which ours has too (``pip install mlserver`` alone leaves uvicorn on h11); and a uvloop
    that MLServer 1.7.1 works with."""
    pins = {name: common.package_version(name) for name in ("mlflow", "xgboost", "httptools")}
    missing = [name for name, version in pins.items() if version is None]
    if missing:
        raise RuntimeError(f"not installed here, needed to pin MLServer's venv: {missing}")
    return [
        f"mlserver=={MLSERVER_VERSION}",
        f"mlserver-mlflow=={MLSERVER_VERSION}",
        *(f"{name}=={version}" for name, version in pins.items()),
        # uvloop 0.22 stopped creating a loop in get_event_loop(); MLServer 1.7.1's inference
        # workers call it before they run one, and die at start (parallel_workers ≥ 1).
        "uvloop<0.22",
    ]


def ensure_mlserver_venv(venv: Path, *, recreate: bool) -> dict[str, Any]:
    """Reuse ``venv`` when it was made for the same requirements, else create it (``python -m
    venv``, then one ``pip install``). MLServer pins a FastAPI older than ours, so it cannot
    share the project's venv; nothing but this benchmark needs it."""
    requirements = mlserver_requirements()
    stamp = venv / "bench-requirements.txt"
    python = venv / "bin" / "python"
    wanted = "\n".join(requirements) + "\n"
    started = time.perf_counter()
    reuse = python.exists() and stamp.exists() and stamp.read_text() == wanted
    if recreate or not reuse:
        shutil.rmtree(venv, ignore_errors=True)
        progress(f"creating MLServer's venv in {_shown(venv)} (one pip install, about a minute)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        log = venv / "pip-install.log"
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *requirements]
        with log.open("wb") as output:
            done = subprocess.run(
                pip, stdout=output, stderr=subprocess.STDOUT, timeout=1800, check=False
            )
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pip install into {venv} failed ({done.returncode}):\n{tail}")
        stamp.write_text(wanted)
    seconds = time.perf_counter() - started
    found = subprocess.run(
        [str(python), "-c", _VERSIONS_CODE, *_VENV_PACKAGES],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {
        "path": _shown(venv),
        "action": "reused" if reuse and not recreate else "created",
        "seconds": seconds,
        "requirements": requirements,
        "versions": json.loads(found.stdout),
    }


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (no machine paths in the results)."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# ---- the model store -----------------------------------------------------------------------


@dataclass
class Store:
    """The temporary MLflow store, the request bodies and the predictions they must get."""

    root: Path
    tracking_uri: str
    bodies: dict[str, bytes]
    """The measured 1-row request, by route."""
    check_bodies: dict[str, bytes]
    """:data:`CHECK_ROWS` rows (both classes), by route: checked once, not measured."""
    expected: list[Any]
    """``mlflow.pyfunc.load_model(uri).predict`` on the check rows, in this process."""
    build_seconds: float

    @property
    def uri(self) -> str:
        return f"models:/{MODEL}/{VERSION}"


def v2_request(columns: Sequence[str], rows: Sequence[Sequence[float]]) -> dict[str, Any]:
    """One FP64 tensor of shape [n] per column, named by the column, and the request-level
    content type ``pd`` (MLServer's pandas codec: the tensors become a DataFrame's columns)."""
    inputs = [
        {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": [r[i] for r in rows]}
        for i, name in enumerate(columns)
    ]
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def request_bodies(columns: Sequence[str], rows: Sequence[Sequence[float]]) -> dict[str, bytes]:
    """The same rows as a V2 request and as MLflow's ``dataframe_split``."""
    split = {"dataframe_split": {"columns": list(columns), "data": [list(r) for r in rows]}}
    return {
        V2_PATH: json.dumps(v2_request(columns, rows)).encode(),
        "/invocations": json.dumps(split).encode(),
    }


def build_store(root: Path) -> Store:
    """Train one XGBoost classifier (as serving.py does), log it with a signature and an input
    example, register it as version 1."""
    started = time.perf_counter()
    import mlflow
    import mlflow.xgboost
    import xgboost
    from mlflow.models import infer_signature
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True)
    features = frame.data.copy()
    features.columns = [c.replace(" ", "_") for c in features.columns]
    columns = list(features.columns)
    example = features.iloc[:5]
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.create_experiment(
        "bench-protocols", artifact_location=(root / "artifacts").as_uri()
    )
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    model = xgboost.XGBClassifier(n_estimators=50, max_depth=4, random_state=0)
    model.fit(features, frame.target)
    with mlflow.start_run(experiment_id=experiment, run_name=MODEL):
        info = mlflow.xgboost.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            pip_requirements=[f"xgboost=={xgboost.__version__}"],
        )
    registered = mlflow.register_model(info.model_uri, MODEL)
    if str(registered.version) != VERSION:
        raise RuntimeError(f"registered as version {registered.version}, expected {VERSION}")
    check = features.iloc[:CHECK_ROWS]
    rows = [[float(v) for v in row] for row in check.to_numpy()]
    predicted = mlflow.pyfunc.load_model(f"models:/{MODEL}/{VERSION}").predict(check)
    return Store(
        root=root,
        tracking_uri=tracking_uri,
        bodies=request_bodies(columns, rows[:1]),
        check_bodies=request_bodies(columns, rows),
        expected=[v.item() if hasattr(v, "item") else v for v in predicted],
        build_seconds=time.perf_counter() - started,
    )


# ---- servers -------------------------------------------------------------------------------


def start_ours(store: Store) -> Server:
    """``python -m uvicorn api.app:app`` (one worker) serving ``models:/<name>/1``."""
    port = procs.free_port()
    home = store.root / "hokusai-home"
    home.mkdir(exist_ok=True)
    config = store.root / "config.yaml"
    config.write_text(
        f"tracking_uri: {store.tracking_uri}\nexperiment_name: bench-protocols\n"
        f"fallback_model_path: {store.root / 'xgb_model.pkl'}\n",
        encoding="utf-8",
    )
    overrides = {
        "MODEL_VARIANT": store.uri,
        "CONFIG_PATH": str(config),
        "HOKUSAI_HOME": str(home),
        "MODEL_REFRESH_SECONDS": "0",
    }
    command = [sys.executable, "-m", "uvicorn", "api.app:app"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    env = serving.serving_environment(overrides)
    log = store.root / "ours.log"
    return procs.start_server(
        "ours", command, port=port, log=log, env=env, cwd=REPO_ROOT, env_overrides=overrides
    )


def mlserver_settings(parallel_workers: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """``settings.json`` (free ports, ``parallel_workers``, the rest MLServer's defaults) and
    ``model-settings.json`` (the MLflow runtime on the registered version)."""
    settings = {
        "host": "127.0.0.1",
        "http_port": procs.free_port(),
        "grpc_port": procs.free_port(),
        "metrics_port": procs.free_port(),
        "parallel_workers": parallel_workers,
    }
    model = {
        "name": MODEL,
        "implementation": "mlserver_mlflow.MLflowRuntime",
        "parameters": {"uri": f"models:/{MODEL}/{VERSION}", "version": VERSION},
    }
    return settings, model


def start_mlserver(store: Store, venv: Path, parallel_workers: int) -> Server:
    """``mlserver start <folder>`` from its venv, with ``MLFLOW_TRACKING_URI`` = the store."""
    folder = store.root / "mlserver"
    (folder / MODEL).mkdir(parents=True, exist_ok=True)
    settings, model = mlserver_settings(parallel_workers)
    (folder / "settings.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    (folder / MODEL / "model-settings.json").write_text(json.dumps(model, indent=2), "utf-8")
    bin_dir = venv / "bin"
    overrides = {
        "MLFLOW_TRACKING_URI": store.tracking_uri,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
    }
    drop = (*serving.SERVING_VARIABLES, "CONFIG_PATH", "PYTHONPATH", "VIRTUAL_ENV")
    env = procs.server_environment(overrides, drop=drop, unbuffered=True)
    command = [str(bin_dir / "mlserver"), "start", str(folder)]
    port = settings["http_port"]
    server = procs.start_server(
        "mlserver",
        command,
        port=port,
        log=store.root / "mlserver.log",
        env=env,
        cwd=folder,
        env_overrides={"MLFLOW_TRACKING_URI": "<store>"},
    )
    server.model = json.dumps({"settings.json": settings, "model-settings.json": model})
    return server


def wait_ready(server: Server, timeout: float = 180.0) -> None:
    if not procs.wait_http(server, READY_PATH[server.side], timeout=timeout, interval=0.05):
        raise RuntimeError(f"{server.side} was not ready within {timeout:g} s:\n{server.tail()}")


@contextmanager
def running(store: Store, venv: Path, parallel_workers: int) -> Iterator[dict[str, Server]]:
    """Ours, then MLServer, each started once the previous one is ready; both stopped after."""
    with ExitStack() as stack:
        servers: dict[str, Server] = {}
        for side in ("ours", "mlserver"):
            server = (
                start_ours(store)
                if side == "ours"
                else start_mlserver(store, venv, parallel_workers)
            )
            stack.callback(stop, server.process)
            wait_ready(server)
            servers[side] = server
        yield servers


# ---- agreement -----------------------------------------------------------------------------


def _post(server: Server, path: str, body: bytes) -> Any:
    import httpx

    headers = {"Content-Type": "application/json"}
    response = httpx.post(server.base + path, content=body, headers=headers, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(
            f"{server.side} POST {path} answered {response.status_code}: {response.text[:500]}"
        )
    return response.json()


def v2_predictions(answer: Mapping[str, Any]) -> list[Any]:
    outputs = answer["outputs"]
    if len(outputs) != 1:
        raise RuntimeError(f"expected one output, got {[o.get('name') for o in outputs]}")
    data = outputs[0]["data"]
    return [item for row in data for item in row] if data and isinstance(data[0], list) else data


def check_agreement(
    servers: Mapping[str, Server], store: Store, targets: Sequence[Target]
) -> dict[str, Any]:
    """Before any load, on every target: the measured 1-row request and :data:`CHECK_ROWS`
    rows answer 200 with the predictions MLflow's pyfunc gives."""
    expected = [float(v) for v in store.expected]
    answers: dict[str, Any] = {}
    for key, side, path in targets:
        for rows, bodies in ((1, store.bodies), (CHECK_ROWS, store.check_bodies)):
            answer = _post(servers[side], path, bodies[path])
            got = v2_predictions(answer) if path == V2_PATH else answer["predictions"]
            if [float(v) for v in got] != expected[:rows]:
                raise RuntimeError(f"{key} predicted {got}, MLflow's pyfunc {expected[:rows]}")
            if rows == 1:
                answers[key] = answer
    return {"rows_checked": [1, CHECK_ROWS], "expected": store.expected, "answers_1_row": answers}


# ---- load ----------------------------------------------------------------------------------


def measure_load(
    servers: Mapping[str, Server],
    store: Store,
    loadgen: serving.LoadGenerator,
    rounds: int,
    targets: Sequence[Target],
) -> dict[str, list[serving.RunResult]]:
    """``rounds`` rounds of the three targets back to back, the order reversed every other
    round (A B C, C B A, …) so drift on the machine hits all alike."""
    shapes = {
        path: serving.Shape(name, CONNECTIONS, 1, store.bodies[path], path)
        for name, path in (("v2", V2_PATH), ("invocations", "/invocations"))
    }
    results: dict[str, list[serving.RunResult]] = {key: [] for key, _, _ in targets}
    for index in range(rounds):
        order = targets if index % 2 == 0 else tuple(reversed(targets))
        for key, side, path in order:
            result = loadgen.run(servers[side], shapes[path])
            result.side = key
            results[key].append(result)
            progress(
                f"round {index + 1}/{rounds} {key}: {result.requests_per_s:,.0f} req/s, "
                f"p50 {fmt_ms(result.p50_s)}, p99 {fmt_ms(result.p99_s)}, errors {result.errors}"
            )
    return results


# ---- run, results, report ------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    venv = ensure_mlserver_venv(args.mlserver_venv.resolve(), recreate=args.recreate_venv)
    progress(f"MLServer's venv {venv['action']} in {venv['seconds']:.1f} s")
    with common.temp_home(NAME, keep=args.keep_store) as root:
        progress("training, logging and registering the model")
        store = build_store(root)
        progress(f"store ready in {store.build_seconds:.1f} s")
        loadgen = serving.LoadGenerator(args.loadgen, root, args)
        with running(
            store, args.mlserver_venv.resolve(), args.mlserver_parallel_workers
        ) as servers:
            ready = {side: server.ready_seconds for side, server in servers.items()}
            agreement = check_agreement(servers, store, args.targets)
            progress(f"every target agrees with MLflow's pyfunc; load with {loadgen.tool}")
            load = measure_load(servers, store, loadgen, args.rounds, args.targets)
            mlserver_files = json.loads(servers["mlserver"].model)
    return build_payload(args, store, venv, ready, agreement, load, mlserver_files)


def build_payload(
    args: argparse.Namespace,
    store: Store,
    venv: dict[str, Any],
    ready: dict[str, float | None],
    agreement: dict[str, Any],
    load: Mapping[str, Sequence[serving.RunResult]],
    mlserver_files: dict[str, Any],
) -> dict[str, Any]:
    tool = args.loadgen
    figures = {key: serving.aggregate(runs) for key, runs in load.items()}
    ratios = compare(figures)
    goals = judge(figures, ratios)
    return {
        "environment": common.environment(),
        "load_average_at_start": args.load_at_start,
        "quick": args.quick,
        "parameters": {
            "loadgen": tool,
            "loadgen_version": _load.wrk_version()
            if tool == "wrk"
            else f"httpx {_load.httpx_version()}",
            "loadgen_caveat": None if tool == "wrk" else serving.HTTPX_CAVEAT,
            "wrk_command": (
                f"wrk -t1 -c{CONNECTIONS} -d{args.duration}s --timeout 10s --latency "
                "-s post.lua <url>"
                if tool == "wrk"
                else None
            ),
            "wrk_warmup_s": 1 if tool == "wrk" else None,
            "httpx_requests": args.requests if tool == "httpx" else None,
            "rounds": args.rounds,
            "order": "ours V2, MLServer V2, ours /invocations; reversed every other round",
            "connections": CONNECTIONS,
            "rows": 1,
            "model": "XGBClassifier(n_estimators=50, max_depth=4, random_state=0)",
            "data": "sklearn breast_cancer (569×30), the first row",
            "model_uri": store.uri,
            "routes": {key: path for key, _, path in TARGETS},
            "body_bytes": {path: len(body) for path, body in store.bodies.items()},
            "v2_request": json.loads(store.bodies[V2_PATH]),
            "commands": {
                "ours": "python -m uvicorn api.app:app --host 127.0.0.1 --port P  (MODEL_VARIANT="
                f"{store.uri}, CONFIG_PATH, HOKUSAI_HOME, MODEL_REFRESH_SECONDS=0)",
                "mlserver": "<venv>/bin/mlserver start <folder>  (MLFLOW_TRACKING_URI=<store>)",
            },
            "mlserver_parallel_workers": args.mlserver_parallel_workers,
            "mlserver_files": mlserver_files,
            "store_build_s": store.build_seconds,
        },
        "mlserver_venv": venv,
        "ready_s": ready,
        "agreement": agreement,
        "load": figures,
        "ratios": ratios,
        "goals": goals,
        "goals_met": all(g["met"] for g in goals.values()),
    }


def _figure(figures: Mapping[str, Mapping[str, Any]], key: str, name: str) -> Any:
    """``figures[key][name]``; None when ``key`` was not measured (``--targets``)."""
    return figures[key][name] if key in figures else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if not numerator or not denominator else ratio(numerator, denominator)


def compare(figures: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """The ratios the goals are about (None where a target was not measured)."""

    def get(key: str, name: str) -> Any:
        return _figure(figures, key, name)

    return {
        "requests_per_s_ours_v2_to_mlserver": _ratio(
            get("ours_v2", "requests_per_s"), get("mlserver_v2", "requests_per_s")
        ),
        "p99_ours_v2_to_mlserver_p50": _ratio(get("ours_v2", "p99_s"), get("mlserver_v2", "p50_s")),
        "requests_per_s_ours_v2_to_invocations": _ratio(
            get("ours_v2", "requests_per_s"), get("ours_invocations", "requests_per_s")
        ),
        "cpu_per_request_mlserver_to_ours_v2": _ratio(
            get("mlserver_v2", "cpu_ms_per_request"), get("ours_v2", "cpu_ms_per_request")
        ),
    }


def judge(
    figures: Mapping[str, Mapping[str, Any]], ratios: Mapping[str, float | None]
) -> dict[str, dict[str, Any]]:
    """The three goals of issue #15; one is not met when a target it needs is missing or had
    a failed request."""
    clean = all(doc["errors"] == 0 for doc in figures.values())
    shape = "XGBoost, 1 row, 8 connections"
    rps = ratios["requests_per_s_ours_v2_to_mlserver"]
    own = ratios["requests_per_s_ours_v2_to_invocations"]
    p99, p50 = _figure(figures, "ours_v2", "p99_s"), _figure(figures, "mlserver_v2", "p50_s")
    return {
        "v2_throughput_vs_mlserver": goal(
            f"our V2 ≥ {GOAL_RPS_RATIO:g}× MLServer's V2 requests/s ({shape})",
            clean and rps is not None and rps >= GOAL_RPS_RATIO,
            value=rps,
            target=GOAL_RPS_RATIO,
        ),
        "v2_p99_below_mlserver_p50": goal(
            f"our V2 p99 < MLServer's V2 p50 ({shape})",
            clean and p99 is not None and p50 is not None and p99 < p50,
            value_s=p99,
            mlserver_p50_s=p50,
        ),
        "v2_near_invocations": goal(
            f"our V2 requests/s within {GOAL_V2_VS_INVOCATIONS:.0%} of our /invocations' ({shape})",
            clean and own is not None and abs(1 - own) <= GOAL_V2_VS_INVOCATIONS,
            value=own,
            target=GOAL_V2_VS_INVOCATIONS,
        ),
    }


def report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    params, venv, ratios = payload["parameters"], payload["mlserver_venv"], payload["ratios"]
    versions = venv["versions"]
    common.print_header(
        "Serving protocols: our V2 endpoint vs MLServer's MLflow runtime",
        args,
        payload["environment"],
        f"MLServer {versions['mlserver']} (parallel_workers {params['mlserver_parallel_workers']})",
        f"load generator: {params['loadgen_version']}",
    )
    if params["loadgen_caveat"]:
        print(f"note: {params['loadgen_caveat']}\n")
    rounds = params["rounds"]
    print(f"XGBoost, 1 row, {CONNECTIONS} connections, median of {rounds} round(s):")
    headers = ["target", "req/s", "p50", "p90", "p99", "CPU ms/req", "errors"]
    rows = []
    for key, figures in payload["load"].items():
        cpu = figures["cpu_ms_per_request"]
        rows.append(
            [LABELS[key], f"{figures['requests_per_s']:,.0f}"]
            + [common.fmt_value("_s", figures[k]) for k in ("p50_s", "p90_s", "p99_s")]
            + ["—" if cpu is None else f"{cpu:.2f}", str(figures["errors"])]
        )
    common.print_table(headers, rows)

    def times(key: str, digits: int) -> str:
        value = ratios[key]
        return "—" if value is None else f"{value:.{digits}f}×"

    print(
        f"\nour V2 / MLServer: {times('requests_per_s_ours_v2_to_mlserver', 1)} requests/s, "
        f"{times('cpu_per_request_mlserver_to_ours_v2', 1)} less CPU per request; "
        f"our V2 / our /invocations: {times('requests_per_s_ours_v2_to_invocations', 3)} "
        "requests/s"
    )
    ready = payload["ready_s"]
    print(
        f"ready after start: ours {fmt_ms(ready['ours'])}, MLServer {fmt_ms(ready['mlserver'])}; "
        f"MLServer's venv {venv['action']} in {venv['seconds']:.1f} s ({venv['path']})\n"
    )
    common.print_goals(payload["goals"])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds through every finally: servers are stopped

    signal.signal(signal.SIGTERM, terminate)
    return common.run_main(NAME, args, run, report)


if __name__ == "__main__":
    sys.exit(main())
