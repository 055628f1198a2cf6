"""HTTP lookup by uuid: ``GET /api/v1/models/by-uuid/{uuid}`` against ``mlflow server``.

Ours vs ``mlflow server``'s ``model-versions/search`` on the ``hokusai.model_uuid`` tag, one
worker each on the same SQLite store of 10,000 versions (bench/lookup.py's filler): latency at
concurrency 1, requests/s at 8, in ABBA rounds (wrk, else httpx). See bench/README.md.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import _common as common
import _load
import _procs as procs
import lookup
from _common import fmt_ms, fmt_ratio, goal, progress, ratio, summarize
from _procs import Server, stop

NAME = "api"
GOAL_P50_S = 0.015
GOAL_RPS_RATIO = 10.0
GOAL_RPS = 1000.0
GOAL_P99_S = 0.010
GOAL_VERSIONS = 10_000
SIDES = ("ours", "mlflow")
LABELS = {"ours": "hokusai API", "mlflow": "mlflow server"}
# Out of the way of a benchmark; the limiter still runs on every request.
RATE_LIMIT_ENV = {
    "HOKUSAI_RATE_LIMIT_PER_MINUTE": "100000000",
    "HOKUSAI_RATE_LIMIT_BURST": "1000000",
}
_KEY_LINE = re.compile(r"export HOKUSAI_API_KEY=(\S+)")
_SOCKET_ERRORS = re.compile(r"Socket errors:.*")

# One keep-alive connection per wrk thread; every latency recorded; SIGINT once all are done.
WRK_SCRIPT = r"""
-- Written by bench/api.py. wrk only knows durations (-d), so: one connection per thread, at most
-- BENCH_LIMIT requests per thread, each latency timed with CLOCK_MONOTONIC (LuaJIT FFI); the
-- last thread to reach its limit interrupts wrk's duration sleep with SIGINT, and -d bounds the
-- run in time. done() writes every thread's samples to BENCH_OUT.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
int kill(int pid, int sig);
int getpid(void);
]]
local SIGINT, CLOCK_MONOTONIC = 2, 1
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local targets = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do
  local uuid, path = line:match("^(%S+) (%S+)$")
  targets[#targets + 1] = {uuid, path}
end
local out = os.getenv("BENCH_OUT")
local limit = tonumber(os.getenv("BENCH_LIMIT"))
local nthreads = tonumber(os.getenv("BENCH_THREADS"))
local seed = tonumber(os.getenv("BENCH_SEED"))
local auth = os.getenv("BENCH_AUTH")
local headers = {}
if auth ~= nil and auth ~= "" then headers["Authorization"] = auth end

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

latencies, first, last, errors, mismatches = {}, 0, 0, 0, 0
local sent, current = 0, nil

function init(args)
  math.randomseed(seed + 7919 * id)
end

function request()
  current = targets[math.random(#targets)]
  sent = now()
  if first == 0 then first = sent end
  return wrk.format("GET", current[2], headers)
end

function response(status, hdrs, body)
  last = now()
  latencies[#latencies + 1] = last - sent
  if status ~= 200 then
    errors = errors + 1
  elseif body == nil or not string.find(body, current[1], 1, true) then
    mismatches = mismatches + 1
  end
  if #latencies ~= limit then return end
  wrk.thread:stop()
  io.open(out .. "." .. id .. ".done", "w"):close()
  for i = 0, nthreads - 1 do
    local marker = io.open(out .. "." .. i .. ".done", "r")
    if marker == nil then return end
    marker:close()
  end
  ffi.C.kill(ffi.C.getpid(), SIGINT)
end

function done(summary, latency, requests)
  local f = assert(io.open(out, "w"))
  for _, thread in ipairs(threads) do
    local samples = thread:get("latencies")
    f:write(string.format("thread %.9f %.9f %d %d %d\n", thread:get("first"),
      thread:get("last"), thread:get("errors"), thread:get("mismatches"), #samples))
    for i = 1, #samples do f:write(string.format("%.9f\n", samples[i])) end
  end
  f:close()
end
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.Parser(__doc__)
    parser.sized("--versions", 1000, GOAL_VERSIONS, "registered versions in the store")
    parser.sized("--requests", 300, 2000, "timed requests per server per concurrency")
    parser.sized("--warmup", 50, 200, "untimed requests per server per concurrency first")
    concurrency = "comma-separated connection counts (default 1,8: latency, throughput)"
    parser.add_argument("--concurrency", type=common.comma_ints, default=[1, 8], help=concurrency)
    rounds = "rounds the timed requests are split into, ABBA order (default 2)"
    parser.add_argument("--rounds", type=int, default=2, help=rounds)
    _load.add_loadgen(parser)
    store = "where the temporary store is made (default /dev/shm when writable, else $TMPDIR)"
    parser.add_argument("--store-dir", type=Path, default=None, help=store)
    lookup.add_store_arguments(parser, 1, 2)
    fill = "direct: bulk inserts into MLflow's tables and the index (seconds); client: MLflow's "
    fill += "client API as a registration writes, then a reindex (minutes)"
    parser.add_argument("--fill", choices=("direct", "client"), default="direct", help=fill)
    jobs = "leave mlflow server's huey job consumers on (MLflow's default; off here)"
    parser.add_argument("--mlflow-job-execution", action="store_true", help=jobs)
    cap = "time cap on each timed load run (then reported as truncated); warm-ups get a quarter"
    parser.sized("--max-run-seconds", 15.0, 30.0, cap, type=float)
    parser.add_argument("--seed", type=int, default=0, help="random seed (store, targets)")
    args = parser.parse(argv)
    enough = args.versions > 2 * args.real_baselines + 2 and args.real_baselines >= 1
    parser.require(enough, "--versions must exceed the real models plus two, --real-baselines ≥ 1")
    within = args.concurrency and 1 <= min(args.concurrency) <= max(args.concurrency) <= 64
    parser.require(bool(within), "--concurrency must be between 1 and 64")
    split = args.rounds >= 1 and args.requests >= args.rounds * max(args.concurrency)
    parser.require(split, "--rounds must be ≥ 1 and --requests ≥ rounds × the largest concurrency")
    sane = args.warmup >= 0 and args.max_run_seconds >= 4
    parser.require(sane, "--warmup must be ≥ 0 and --max-run-seconds ≥ 4")
    lookup.check_store_arguments(parser, args)
    args.loadgen = _load.pick_loadgen(args.loadgen, parser)
    if args.store_dir is None:
        shm = Path("/dev/shm")
        args.store_dir = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return args


# ---- the store -----------------------------------------------------------------------------


def build_store(
    home: Path, args: argparse.Namespace, rng: random.Random
) -> tuple[list[str], dict[str, Any]]:
    """Real models through the library, then filler up to ``args.versions``: every uuid, and
    the results' store part. The registry index holds every version when the servers start
    (ours answers from it): ``--fill direct`` writes filler rows into MLflow's tables and the
    index together (bench/index.py's bulk inserts); ``--fill client`` writes them through
    MLflow's client (bench/lookup.py's filler) and then rebuilds the index from MLflow."""
    from hokusai.config import Settings
    from hokusai.services.model_registry import HokusaiModelRegistry

    started = time.perf_counter()
    # A registry on an empty store: its index is built from the start (every registration
    # writes its row), which is the state row a fresh server then finds.
    registry = HokusaiModelRegistry(settings=Settings(home=home, webhook_background=False))
    client = registry.client
    real = lookup.register_real_models(registry, args.real_baselines, rng)
    real_seconds = time.perf_counter() - started
    if args.fill == "direct":
        uuids, part = _fill_direct(home, args, rng, len(real))
    else:
        uuids, part = _fill_client(registry, args, rng, real)
    found = lookup.count_versions(client, args.versions)
    if found != args.versions:
        raise RuntimeError(f"expected {args.versions:,} versions in the store, found {found:,}")
    index = registry.index
    assert index is not None
    sync = index.sync()
    if sync["added"] or sync["removed"] or not index.built():
        raise RuntimeError(f"the index does not hold the store as MLflow does: {sync}")
    index.engine.dispose()
    return real + uuids, {
        "versions": len(real) + len(uuids),
        "fill": args.fill,
        "real_models_seconds": real_seconds,
        "index_sync_after_fill": sync,
        **part,
    }


def _fill_direct(
    home: Path, args: argparse.Namespace, rng: random.Random, real: int
) -> tuple[list[str], dict[str, Any]]:
    import index as bulk

    progress(f"filling to {args.versions:,} versions by bulk inserts (MLflow's tables, index)")
    started = time.perf_counter()
    fill = bulk.fill_direct(
        home / "mlflow.db",
        {"sqlite": f"sqlite:///{home / 'hokusai.db'}"},
        args.versions,
        rng,
        family_type=None,
        filler_types=lookup.FILLER_TYPES[: args.filler_types],
        contributors=50,
        keep_uuids=True,
    )
    return fill.uuids, {
        "fill_seconds": time.perf_counter() - started,
        "bulk_fill": fill.as_json(),
    }


def _fill_client(
    registry: Any, args: argparse.Namespace, rng: random.Random, real: list[str]
) -> tuple[list[str], dict[str, Any]]:
    import mlflow

    client = registry.client
    # create_model_version resolves a models:/m-… source through the process-global tracking
    # URI (see bench/lookup.py), so point it at the store while filling.
    mlflow.set_tracking_uri(registry.tracking_uri)
    try:
        with lookup.relaxed_durability(client, enabled=not args.durable_fill):
            filler, equivalence = lookup.start_filler(registry, real, rng, args)
            progress(f"filling to {args.versions:,} versions with MLflow's client")
            fill_seconds = filler.fill_to(args.versions, already=len(real), every=2000)
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    progress("rebuilding the registry index from MLflow (hokusai registry reindex)")
    started = time.perf_counter()
    registry.index.reindex(restart=True)
    return filler.uuids, {
        "fill_seconds": fill_seconds,
        "reindex_seconds": time.perf_counter() - started,
        "filler_seconds_per_version": summarize(filler.seconds_per_version),
        "filler_versions_relinked": filler.relinked,
        "equivalence_with_real_registration": equivalence,
    }


# ---- servers -------------------------------------------------------------------------------


def start(side: str, command: list[str], port: int, overrides: dict[str, str], log: Path) -> Server:
    env = procs.server_environment(overrides)
    server = procs.start_server(
        side, command, port=port, log=log, env=env, cwd=log.parent, env_overrides=overrides
    )
    server.started = time.perf_counter()  # ready_after_s counts from after the spawn, as always
    return server


def start_ours(home: Path, workdir: Path) -> Server:
    port = procs.free_port()
    command = [sys.executable, "-m", "hokusai.cli.main", "server", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    overrides = {"HOKUSAI_HOME": str(home), "HOKUSAI_WEBHOOK_BACKGROUND": "false", **RATE_LIMIT_ENV}
    return start("ours", command, port, overrides, workdir / "hokusai-server.log")


def start_mlflow(home: Path, workdir: Path, *, job_execution: bool) -> Server:
    port = procs.free_port()
    overrides = {} if job_execution else {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    command = procs.mlflow_server_command(home, port)
    return start("mlflow", command, port, overrides, workdir / "mlflow-server.log")


def wait_ready(server: Server, path: str) -> None:
    """Until ``path`` answers 200 (and, for ours, the bootstrap key line is in the log)."""

    def has_key() -> bool:
        if server.side == "ours" and not server.auth:
            match = _KEY_LINE.search(server.log.read_text(errors="replace"))
            if match:
                server.auth = f"Bearer {match.group(1)}"
        return server.side != "ours" or bool(server.auth)

    if not procs.wait_http(server, path, also=has_key):
        raise RuntimeError(f"{LABELS[server.side]} did not become ready: {server.tail()}")


# ---- targets and checks --------------------------------------------------------------------


def target_path(side: str, uuid: str) -> str:
    if side == "ours":
        return f"/api/v1/models/by-uuid/{uuid}"
    query = quote(f"tags.`{lookup.VERSION_TAG}` = '{uuid}'", safe="")
    return f"/api/2.0/mlflow/model-versions/search?filter={query}"


def check_agreement(
    servers: dict[str, Server], uuids: Sequence[str], rng: random.Random, count: int = 20
) -> dict[str, Any]:
    """Both servers find the same single version for ``count`` uuids (real ones included)."""
    import httpx

    sample = list(dict.fromkeys([*uuids[:4], *rng.sample(list(uuids), count)]))
    disagreements: list[str] = []
    with httpx.Client(timeout=30) as client:
        for uuid in sample:
            ours = client.get(
                servers["ours"].base + target_path("ours", uuid), headers=servers["ours"].headers
            )
            theirs = client.get(servers["mlflow"].base + target_path("mlflow", uuid))
            if ours.status_code != 200 or theirs.status_code != 200:
                disagreements.append(f"{uuid}: HTTP {ours.status_code} / {theirs.status_code}")
                continue
            mine = ours.json()
            versions = theirs.json().get("model_versions", [])
            found = [(v["name"], str(v["version"])) for v in versions]
            if mine.get("model_uuid") != uuid or found != [(mine["model_name"], mine["version"])]:
                disagreements.append(f"{uuid}: ours {mine.get('model_id')}, MLflow {found}")
    return {"checked": len(sample), "disagreements": disagreements, "ok": not disagreements}


# ---- load ----------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One load run against one server."""

    planned: int
    latencies: list[float]
    elapsed: float
    errors: int
    mismatches: int
    server_cpu_s: float | None = None
    socket_errors: str | None = None

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def truncated(self) -> bool:
        """Ended by the time cap before all planned requests were answered."""
        return self.requests < self.planned


@dataclass
class LoadGenerator:
    """Runs ``requests`` requests at ``concurrency`` against a server, by wrk or httpx."""

    kind: str
    workdir: Path
    targets: dict[str, list[tuple[str, str]]]
    runs: int = 0
    _paths: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind == "wrk":
            (self.workdir / "lookup.lua").write_text(WRK_SCRIPT, encoding="utf-8")
            for side, pairs in self.targets.items():
                path = self.workdir / f"targets-{side}.txt"
                path.write_text("".join(f"{u} {p}\n" for u, p in pairs), encoding="utf-8")
                self._paths[side] = path

    def run(
        self, server: Server, concurrency: int, requests: int, seed: int, seconds: float
    ) -> RunResult:
        """``requests`` requests (rounded up to a multiple of ``concurrency``), or fewer when
        ``seconds`` run out first."""
        self.runs += 1
        per_connection = math.ceil(requests / concurrency)
        before = server.cpu_seconds()
        if self.kind == "wrk":
            result = self._wrk(server, concurrency, per_connection, seed, seconds)
        else:
            result = self._httpx(server, concurrency, per_connection, seed, seconds)
        if not result.latencies:
            raise RuntimeError(f"no answer from {LABELS[server.side]} within {seconds:g} s")
        result.server_cpu_s = procs.cpu_used(before, server.cpu_seconds())
        if server.process.poll() is not None:
            raise RuntimeError(f"{LABELS[server.side]} exited during the run; see {server.log}")
        return result

    def _wrk(
        self, server: Server, concurrency: int, per_connection: int, seed: int, seconds: float
    ) -> RunResult:
        out = self.workdir / f"run{self.runs:03d}-{server.side}.txt"
        paths, limit = str(self._paths[server.side]), str(per_connection)
        lua = {"PATHS": paths, "OUT": str(out), "LIMIT": limit, "THREADS": str(concurrency)}
        lua |= {"SEED": str(seed), "AUTH": server.auth}
        env = {**os.environ, **{f"BENCH_{name}": value for name, value in lua.items()}}
        script, cap = self.workdir / "lookup.lua", math.ceil(seconds)
        done = _load.run_wrk(server.base, script, concurrency, cap, threads=concurrency, env=env)
        if not out.exists():
            raise RuntimeError(
                f"wrk against {LABELS[server.side]} wrote no results (exit {done.returncode}): "
                f"{(done.stdout + done.stderr)[-800:]}"
            )
        starts: list[float] = []
        ends: list[float] = []
        latencies: list[float] = []
        errors = mismatches = 0
        for line in out.read_text(encoding="utf-8").splitlines():
            if not line.startswith("thread "):
                latencies.append(float(line))
                continue
            _, start, end, bad, wrong, count = line.split()
            if int(count):
                starts.append(float(start))
                ends.append(float(end))
            errors += int(bad)
            mismatches += int(wrong)
        for marker in self.workdir.glob(f"{out.name}.*.done"):
            marker.unlink()
        out.unlink()
        socket_errors = _SOCKET_ERRORS.search(done.stdout)
        return RunResult(
            planned=per_connection * concurrency,
            latencies=latencies,
            elapsed=max(ends) - min(starts) if starts else 0.0,
            errors=errors,
            mismatches=mismatches,
            socket_errors=socket_errors.group(0) if socket_errors else None,
        )

    def _httpx(
        self, server: Server, concurrency: int, per_connection: int, seed: int, seconds: float
    ) -> RunResult:
        pairs = self.targets[server.side]
        latencies: list[float] = []
        starts: list[float] = []
        ends: list[float] = []
        counts = {"errors": 0, "mismatches": 0}
        deadline = time.perf_counter() + seconds

        async def connection(client: Any, index: int) -> None:
            rng = random.Random(seed + 7919 * index)
            starts.append(time.perf_counter())
            for _ in range(per_connection):
                if time.perf_counter() >= deadline:
                    break
                uuid, path = rng.choice(pairs)
                sent = time.perf_counter()
                response = await client.get(path)
                received = time.perf_counter()
                latencies.append(received - sent)
                if response.status_code != 200:
                    counts["errors"] += 1
                elif uuid not in response.text:
                    counts["mismatches"] += 1
            ends.append(time.perf_counter())

        _load.run_httpx(
            concurrency, connection, base_url=server.base, headers=server.headers, timeout=10
        )
        return RunResult(
            planned=per_connection * concurrency,
            latencies=latencies,
            elapsed=max(ends) - min(starts),
            errors=counts["errors"],
            mismatches=counts["mismatches"],
        )


@dataclass
class Side:
    """Everything measured for one server at one concurrency."""

    rounds: list[RunResult] = field(default_factory=list)
    warmup: RunResult | None = None

    @property
    def latencies(self) -> list[float]:
        return [value for run in self.rounds for value in run.latencies]

    @property
    def requests(self) -> int:
        return sum(run.requests for run in self.rounds)

    @property
    def elapsed(self) -> float:
        return sum(run.elapsed for run in self.rounds)

    @property
    def requests_per_s(self) -> float:
        return ratio(self.requests, self.elapsed)

    @property
    def failures(self) -> int:
        return sum(run.errors + run.mismatches for run in self.rounds)

    @property
    def truncated_rounds(self) -> int:
        return sum(run.truncated for run in self.rounds)

    @property
    def cpu_ms_per_request(self) -> float | None:
        cpu = [run.server_cpu_s for run in self.rounds]
        if any(value is None for value in cpu):
            return None
        return 1000 * sum(value for value in cpu if value is not None) / self.requests

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "requests_planned": sum(run.planned for run in self.rounds),
            "rounds_ended_by_time_cap": self.truncated_rounds,
            "elapsed_s": self.elapsed,
            "requests_per_s": self.requests_per_s,
            "latency_stats_s": summarize(self.latencies),
            "errors_non_200": sum(run.errors for run in self.rounds),
            "mismatches_uuid_not_in_body": sum(run.mismatches for run in self.rounds),
            "socket_errors": [run.socket_errors for run in self.rounds if run.socket_errors],
            "server_cpu_ms_per_request": self.cpu_ms_per_request,
            "per_round": [
                {
                    "requests": run.requests,
                    "planned": run.planned,
                    "elapsed_s": run.elapsed,
                    "requests_per_s": ratio(run.requests, run.elapsed),
                    "p50_s": summarize(run.latencies)["p50"],
                    "server_cpu_s": run.server_cpu_s,
                }
                for run in self.rounds
            ],
            "warmup": None
            if self.warmup is None
            else {
                "requests": self.warmup.requests,
                "p50_s": summarize(self.warmup.latencies)["p50"],
                "failures": self.warmup.errors + self.warmup.mismatches,
            },
            "timings_s": [round(value, 7) for value in self.latencies],
        }


def measure(
    load: LoadGenerator,
    servers: dict[str, Server],
    concurrencies: Sequence[int],
    args: argparse.Namespace,
) -> dict[int, dict[str, Side]]:
    """Warm-up then ABBA rounds, for each concurrency; the same targets for both servers."""
    results: dict[int, dict[str, Side]] = {}
    seconds = args.max_run_seconds
    warmup_seconds = max(seconds / 4, 3.0)
    for position, concurrency in enumerate(concurrencies):
        sides = {side: Side() for side in SIDES}
        results[concurrency] = sides
        order = list(SIDES) if position % 2 == 0 else list(reversed(SIDES))
        if args.warmup:
            progress(f"concurrency {concurrency}: {args.warmup} warm-up requests per server")
            for side in order:
                warm = max(args.warmup, concurrency)
                sides[side].warmup = load.run(
                    servers[side], concurrency, warm, args.seed + 1, warmup_seconds
                )
        per_round = math.ceil(args.requests / args.rounds)
        for round_index in range(args.rounds):
            seed = args.seed + 1000 * concurrency + 10 + round_index
            for side in order if round_index % 2 == 0 else list(reversed(order)):
                result = load.run(servers[side], concurrency, per_round, seed, seconds)
                sides[side].rounds.append(result)
                cut = f" (time cap {seconds:g} s reached)" if result.truncated else ""
                progress(
                    f"concurrency {concurrency}, round {round_index + 1}/{args.rounds}, "
                    f"{LABELS[side]}: {result.requests} requests{cut}, p50 "
                    f"{fmt_ms(summarize(result.latencies)['p50'])}, "
                    f"{ratio(result.requests, result.elapsed):.0f} req/s"
                )
    return results


# ---- run, results, report ------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    removed = sorted(name for name in os.environ if name.startswith("HOKUSAI_"))
    for name in removed:  # the store and servers are configured explicitly, nothing else
        del os.environ[name]
    rng = random.Random(args.seed)
    with common.temp_home(NAME, keep=args.keep_store, directory=args.store_dir) as root:
        home = root / "home"
        workdir = root / "work"
        workdir.mkdir()
        uuids, store = build_store(home, args, rng)
        servers: dict[str, Server] = {}
        try:
            progress("starting both servers")
            servers["ours"] = start_ours(home, workdir)
            servers["mlflow"] = start_mlflow(home, workdir, job_execution=args.mlflow_job_execution)
            wait_ready(servers["ours"], "/live")
            wait_ready(servers["mlflow"], "/health")
            agreement = check_agreement(servers, uuids, rng)
            if not agreement["ok"]:
                raise RuntimeError(f"the servers disagree: {agreement['disagreements'][:5]}")
            load = LoadGenerator(
                kind=args.loadgen,
                workdir=workdir,
                targets={
                    side: [(uuid, target_path(side, uuid)) for uuid in uuids] for side in SIDES
                },
            )
            results = measure(load, servers, args.concurrency, args)
        finally:
            for server in servers.values():
                stop(server.process)
        server_info = {
            side: {
                "command": [
                    str(part).replace(str(root), "<tmp>") for part in servers[side].command
                ],
                "environment_overrides": {
                    name: value.replace(str(root), "<tmp>")
                    for name, value in servers[side].env_overrides.items()
                },
                "ready_after_s": servers[side].ready_seconds,
            }
            for side in SIDES
        }

    return build_payload(args, store, results, server_info, agreement, removed)


def build_payload(
    args: argparse.Namespace,
    store: dict[str, Any],
    results: dict[int, dict[str, Side]],
    server_info: dict[str, Any],
    agreement: dict[str, Any],
    removed_env: list[str],
) -> dict[str, Any]:
    latency_c, throughput_c = min(results), max(results)
    ratios = {str(c): compare(sides) for c, sides in results.items()}
    p50 = summarize(results[latency_c]["ours"].latencies)["p50"]
    rps_ratio = ratios[str(throughput_c)]["requests_per_s_ours_to_mlflow"]
    rps = results[throughput_c]["ours"].requests_per_s
    p99 = summarize(results[throughput_c]["ours"].latencies)["p99"]
    clean = all(side.failures == 0 for sides in results.values() for side in sides.values())
    goals = {
        "p50_latency": goal(
            f"ours p50 ≤ {GOAL_P50_S * 1000:g} ms at concurrency {latency_c}",
            p50 <= GOAL_P50_S,
            concurrency=latency_c,
            value_s=p50,
            max_s=GOAL_P50_S,
        ),
        "throughput_ratio": goal(
            f"ours requests/s ≥ {GOAL_RPS_RATIO:g}× mlflow server's at concurrency {throughput_c}",
            rps_ratio >= GOAL_RPS_RATIO,
            concurrency=throughput_c,
            value=rps_ratio,
            min=GOAL_RPS_RATIO,
        ),
        "throughput": goal(
            f"ours ≥ {GOAL_RPS:,.0f} requests/s at concurrency {throughput_c}",
            rps >= GOAL_RPS,
            concurrency=throughput_c,
            value_per_s=rps,
            min_per_s=GOAL_RPS,
        ),
        "p99_under_load": goal(
            f"ours p99 ≤ {GOAL_P99_S * 1000:g} ms at concurrency {throughput_c}",
            p99 <= GOAL_P99_S,
            concurrency=throughput_c,
            value_s=p99,
            max_s=GOAL_P99_S,
        ),
        "no_failed_requests": goal(
            "every timed response is 200 and names the uuid asked for", clean
        ),
    }
    return {
        "description": (
            "GET /api/v1/models/by-uuid/{uuid} on the Hokusai API vs mlflow server's "
            "model-versions/search on the hokusai.model_uuid tag, over HTTP on 127.0.0.1, "
            f"one worker each, same SQLite store of {args.versions:,} versions; latency "
            f"(concurrency {latency_c}) and requests/s (concurrency {throughput_c})."
        ),
        "environment": common.environment() | {"load_average_at_start": args.load_at_start},
        "parameters": {
            "quick": args.quick,
            "versions": args.versions,
            "requests_per_server_per_concurrency": args.requests,
            "warmup_per_server_per_concurrency": args.warmup,
            "concurrency": list(results),
            "rounds": args.rounds,
            "max_seconds_per_timed_run": args.max_run_seconds,
            "max_seconds_per_warmup_run": max(args.max_run_seconds / 4, 3.0),
            "order": "per concurrency: warm-up both, then rounds in ABBA order",
            "load_generator": args.loadgen,
            "load_generator_version": (
                _load.wrk_version()
                if args.loadgen == "wrk"
                else f"httpx {_load.httpx_version()} AsyncClient"
            ),
            "connections": "keep-alive, one per wrk thread (-t C -c C), closed loop",
            "targets": "uuids drawn at random (seeded) from all registered; same for both",
            "seed": args.seed,
            "store_dir": str(args.store_dir) if args.store_dir else None,
            "store_filesystem": _filesystem(args.store_dir),
            "real_models": 2 * args.real_baselines,
            "filler_model_types": list(lookup.FILLER_TYPES[: args.filler_types]),
            "filler_versions_per_run": args.versions_per_run,
            "fill_sqlite_synchronous_off": not args.durable_fill,
            "ours_request": "GET /api/v1/models/by-uuid/<uuid>, Authorization: Bearer <key>",
            "mlflow_request": (
                "GET /api/2.0/mlflow/model-versions/search?filter="
                "tags.`hokusai.model_uuid` = '<uuid>' (URL-encoded)"
            ),
            "servers": server_info,
            "server_stack": server_stack(),
            "rate_limit_note": (
                "ours' per-key limit raised via HOKUSAI_RATE_LIMIT_*; the limiter still runs"
            ),
            "mlflow_job_execution": args.mlflow_job_execution,
            "hokusai_env_removed_from_bench_process": removed_env,
        },
        "store": store,
        "agreement_check": agreement,
        "results": {
            str(c): {side: sides[side].as_json() for side in SIDES} for c, sides in results.items()
        },
        "ratios": ratios,
        "goals": goals,
        "goals_evaluated_at_target_size": args.versions == GOAL_VERSIONS,
        "goals_met": all(g["met"] for g in goals.values()),
    }


def compare(sides: dict[str, Side]) -> dict[str, float]:
    ours, theirs = summarize(sides["ours"].latencies), summarize(sides["mlflow"].latencies)
    return {
        "requests_per_s_ours_to_mlflow": ratio(
            sides["ours"].requests_per_s, sides["mlflow"].requests_per_s
        ),
        "p50_mlflow_to_ours": ratio(theirs["p50"], ours["p50"]),
        "p99_mlflow_to_ours": ratio(theirs["p99"], ours["p99"]),
    }


def server_stack() -> dict[str, Any]:
    """What both servers run on: uvicorn picks uvloop and httptools when they are installed
    (``--loop auto --http auto``, the default of both ``hokusai server`` and ``mlflow server``)."""
    import importlib.util

    return {
        "versions": {
            name: common.package_version(name)
            for name in ("uvicorn", "uvloop", "httptools", "h11", "fastapi", "starlette", "flask")
        },
        "uvicorn_loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "uvicorn_http": common.http_parser(),
    }


def _filesystem(directory: Path | None) -> str | None:
    target = str((directory or Path(os.environ.get("TMPDIR", "/tmp"))).resolve())
    best, kind = "", None
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and target.startswith(parts[1]) and len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    except OSError:
        return None
    return kind


def report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    params, results, store = payload["parameters"], payload["results"], payload["store"]
    title = f"GET by uuid over HTTP, {args.versions:,} versions, one worker each: Hokusai API vs "
    title += "mlflow server's tag search (model-versions/search)"
    about = f"{params['load_generator_version']}; {args.requests:,} requests per server per "
    about += f"concurrency after {args.warmup} warm-up, {args.rounds} rounds ABBA; store on "
    common.print_header(title, args, payload["environment"], about + params["store_filesystem"])
    rows = []
    for concurrency, sides in results.items():
        for side in SIDES:
            doc = sides[side]
            stats = [fmt_ms(doc["latency_stats_s"][q]) for q in ("p50", "p90", "p99", "max")]
            capped = "*" if doc["rounds_ended_by_time_cap"] else ""
            cpu = doc["server_cpu_ms_per_request"]
            cpu_text = "-" if cpu is None else f"{cpu:.1f}"
            failed = doc["errors_non_200"] + doc["mismatches_uuid_not_in_body"]
            rows.append([concurrency, LABELS[side], f"{doc['requests']:,}{capped}", *stats])
            rows[-1] += [f"{doc['requests_per_s']:.1f}", cpu_text, failed]
    headers = ["concurrency", "server", "requests", "p50", "p90", "p99", "max", "req/s"]
    common.print_table([*headers, "server CPU ms/req", "failed"], rows)
    if any(sides[side]["rounds_ended_by_time_cap"] for sides in results.values() for side in SIDES):
        print(f"* some rounds hit the {args.max_run_seconds:g} s time cap")
    print()
    for concurrency, doc in payload["ratios"].items():
        shown = ", ".join(f"{key} {fmt_ratio(value)}" for key, value in doc.items())
        print(f"concurrency {concurrency}: {shown}")
    common.print_goals(payload["goals"])
    if not payload["goals_evaluated_at_target_size"]:
        print(f"  (evaluated at {args.versions:,} versions, not {GOAL_VERSIONS:,})")
    agree = payload["agreement_check"]
    if store["fill"] == "client":
        same = common.yes(all(e["ok"] for e in store["equivalence_with_real_registration"]))
        how = (
            f"through MLflow's client in {store['fill_seconds']:.0f} s (median "
            f"{fmt_ms(store['filler_seconds_per_version']['median'])} each; same shape as a real "
            f"registration: {same}), index rebuilt in {store['reindex_seconds']:.0f} s"
        )
    else:
        how = f"by bulk inserts (MLflow's tables and the index) in {store['fill_seconds']:.1f} s"
    print(
        f"store: {store['versions']:,} versions, filled {how}; servers agree on "
        f"{agree['checked']} uuids: {common.yes(agree['ok'])}"
    )
    stack = params["server_stack"]
    ready = {side: params["servers"][side]["ready_after_s"] for side in SIDES}
    print(
        f"both servers: uvicorn {stack['versions']['uvicorn']} with {stack['uvicorn_loop']} and "
        f"{stack['uvicorn_http']}, one worker; ours FastAPI {stack['versions']['fastapi']}, "
        f"MLflow's Flask {stack['versions']['flask']} under FastAPI; ready after: hokusai API "
        f"{ready['ours']:.1f} s, mlflow server {ready['mlflow']:.1f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_main(NAME, parse_args(argv), run, report)


if __name__ == "__main__":
    sys.exit(main())
