"""The deployed stack beside embedded SQLite: registration, reads, webhook delivery, scale-out.

The library (``HokusaiModelRegistry``) on a loopback stack — PostgreSQL (one database for
MLflow and Hokusai), moto's S3 server, ``mlflow server`` with proxied artifacts — side by side
with the embedded store (SQLite, local artifacts), interleaved: registration latency, uuid lookup
and lineage, registration→delivery latency and a burst's deliveries/s; then registrations/s of
1, 2 and 4 processes registering through the tracking server at once. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as common
import _registrars
import _stack
import registration as registration_bench
import webhooks as webhooks_bench
from _common import fmt_ms, fmt_ratio, goal, progress, ratio, summarize

NAME = "stack"
SIDES = ("embedded", "stack")
SIDE_LABELS = {
    "embedded": "embedded (SQLite, local artifacts)",
    "stack": "stack (PostgreSQL, S3, mlflow server)",
}
MODEL_TYPE = "bench_stack"
CONTRIBUTOR = _registrars.CONTRIBUTOR
READS = ("get_model_by_uuid", "get_model_lineage")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.Parser(__doc__)
    rounds = "registration rounds (each: one baseline and one improvement per side)"
    parser.sized("--rounds", 3, 20, rounds)
    parser.sized("--reads", 30, 300, "timed reads per read and side")
    parser.add_argument("--warmup", type=int, default=10, help="untimed reads first")
    parser.sized("--burst", 50, 200, "events per webhook burst")
    parser.sized("--bursts", 1, 3, "bursts per side (interleaved)")
    counts = "comma-separated numbers of registering processes"
    parser.add_argument("--processes", type=common.comma_ints, default=[1, 2, 4], help=counts)
    parser.sized("--per-process", 2, 10, "timed registrations per registering process")
    workers = "mlflow server --workers (default 2, the deployment's default)"
    parser.add_argument("--mlflow-workers", type=int, default=2, help=workers)
    parser.add_argument("--dataset", choices=("iris", "breast_cancer"), default="iris")
    parser.add_argument("--trees", type=int, default=10, help="RandomForest n_estimators")
    admin = f"PostgreSQL admin URL (default {_stack.POSTGRES_ADMIN_URL}); a fresh database is "
    admin += "made and dropped"
    parser.add_argument("--postgres-admin-url", default=_stack.POSTGRES_ADMIN_URL, help=admin)
    args = parser.parse(argv)
    parser.require(min(args.rounds, args.reads, args.bursts, args.per_process) >= 1, "counts ≥ 1")
    parser.require(args.burst >= 2 and args.warmup >= 0, "--burst ≥ 2, --warmup ≥ 0")
    parser.require(min(args.processes) >= 1 and args.mlflow_workers >= 1, "processes ≥ 1")
    return args


# ---- the two sides ---------------------------------------------------------------------------


@dataclass
class Registered:
    """One timed registration: what it made and when (wall clock, for the delivery latency)."""

    kind: str
    model_id: str
    model_uuid: str
    called: float
    returned: float
    seconds: float


@dataclass
class Side:
    """One registry and the configuration its webhook worker shares."""

    name: str
    fields: dict[str, Any]
    registry: Any
    root_id: str = ""
    chain: list[str] = field(default_factory=list)
    registered: list[Registered] = field(default_factory=list)
    warmup_ids: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The same configuration as ``HOKUSAI_*`` variables (for the worker process)."""
        shown = {True: "true", False: "false"}
        return {
            f"HOKUSAI_{key.upper()}": shown.get(value, str(value))
            for key, value in self.fields.items()
        }

    @property
    def hooks(self) -> Any:
        return self.registry.webhooks


def make_side(
    name: str, home: Path, receiver: Any, *, tracking_uri: str | None, database_url: str | None
) -> Side:
    """The registry of one side, its project database opened (and migrated) now, so the worker
    started next finds it ready."""
    from hokusai.config import Settings
    from hokusai.services.model_registry import HokusaiModelRegistry

    fields: dict[str, Any] = {
        "home": str(home),
        "tracking_uri": tracking_uri or f"sqlite:///{home / 'mlflow.db'}",
        "database_url": database_url or f"sqlite:///{home / 'hokusai.db'}",
        "webhook_url": f"{receiver.base}/hooks",
        "webhook_secret": webhooks_bench.HOKUSAI_SECRET,
        "webhook_allow_http": True,
        "webhook_allow_private_networks": True,
        # Only the worker process delivers (as in a deployment): the same deliverer on both
        # sides, so the outbox's database is what differs.
        "webhook_background": False,
    }
    home.mkdir(parents=True, exist_ok=True)
    side = Side(name, fields, HokusaiModelRegistry(settings=Settings(**fields)))
    side.hooks.prepare()
    return side


@contextlib.contextmanager
def delivering(sides: Sequence[Side], root: Path) -> Iterator[None]:
    """A ``hokusai webhooks worker`` process per side (reconciler off), stopped afterwards."""
    with contextlib.ExitStack() as workers:
        for side in sides:
            log = root / f"worker-{side.name}.log"
            workers.enter_context(
                webhooks_bench.deliverer("worker_process", side.hooks, side.env, log)
            )
        yield


# ---- registration and registration→delivery ------------------------------------------------


def measure_registrations(sides: Sequence[Side], work: Any, rounds: int) -> None:
    """A warm-up baseline per side (the family's root), then ``rounds`` rounds of one baseline
    and one improvement (chained on the previous one) per side, the side order reversed every
    other round so drift on the machine hits both alike."""

    def baseline() -> Callable[[Side], Any]:
        return lambda side: side.registry.register_baseline(
            work.model, MODEL_TYPE, signature=work.signature, input_example=work.input_example
        )

    def improvement(n: int) -> Callable[[Side], Any]:
        return lambda side: side.registry.register_improved_model(
            work.model,
            side.chain[-1] if side.chain else side.root_id,
            {"accuracy": 0.001 * (n + 1)},
            CONTRIBUTOR,
            signature=work.signature,
            input_example=work.input_example,
        )

    for side in sides:
        warm = baseline()(side)
        side.root_id = warm["model_id"]
        side.warmup_ids.append(warm["model_id"])
    for n in range(rounds):
        for side in sides if n % 2 == 0 else reversed(sides):
            for kind, register in (("register_baseline", baseline()), ("improve", improvement(n))):
                called, started = time.time(), time.perf_counter()
                result = register(side)
                seconds, returned = time.perf_counter() - started, time.time()
                label = "register_improved_model" if kind == "improve" else kind
                side.registered.append(
                    Registered(
                        label, result["model_id"], result["model_uuid"], called, returned, seconds
                    )
                )
                if kind == "improve":
                    side.chain.append(result["model_id"])


def registered_events(engine: Any) -> dict[str, tuple[str, float]]:
    """``model_id`` → (event id, created_at) of every ``model_registered`` event."""
    import sqlalchemy as sa

    query = (
        "SELECT id, model_name, model_version, created_at FROM hokusai_webhook_events "
        "WHERE event_type = 'model_registered'"
    )
    with engine.connect() as conn:
        rows = conn.execute(sa.text(query)).all()
    return {f"{name}/{version}": (str(key), float(at)) for key, name, version, at in rows}


def collect_deliveries(side: Side, receiver: Any, timeout: float = 60) -> dict[str, Any]:
    """Each registration's event as the receiver got it: latency from the registration's return
    and from the event's creation (its row's ``created_at``), counts, duplicates."""
    events = registered_events(side.hooks.engine)
    ids = [*side.warmup_ids, *(r.model_id for r in side.registered)]
    missing_events = [model_id for model_id in ids if model_id not in events]
    receipts = receiver.wait_for([events[m][0] for m in ids if m in events], timeout=timeout)
    from_return: list[float] = []
    from_event: list[float] = []
    for item in side.registered:
        event_id, created_at = events.get(item.model_id, ("", 0.0))
        if event_id in receipts:
            at = receipts[event_id][0]
            from_return.append(at - item.returned)
            from_event.append(at - created_at)
    return {
        "registrations": len(ids),
        "events": sum(1 for model_id in ids if model_id in events),
        "registrations_without_event": missing_events,
        "received": len(receipts),
        "verified": sum(1 for _, ok, _ in receipts.values() if ok),
        "duplicates": sum(times - 1 for _, _, times in receipts.values()),
        **common.summaries(
            latency_from_registration_return_s=from_return,
            latency_from_event_created_s=from_event,
        ),
    }


# ---- reads -----------------------------------------------------------------------------------


def check_reads(side: Side) -> dict[str, Any]:
    """Every registered uuid finds its version; the lineage of the newest improvement is the
    whole chain (the root and every improvement)."""
    wrong = [
        r.model_id
        for r in side.registered
        if (found := side.registry.get_model_by_uuid(r.model_uuid)) is None
        or found["model_id"] != r.model_id
    ]
    lineage = [entry["model_id"] for entry in side.registry.get_model_lineage(side.chain[-1])]
    expected = [side.root_id, *side.chain]
    return {
        "ok": not wrong and lineage == expected,
        "uuids_checked": len(side.registered),
        "uuids_wrong": wrong,
        "lineage_length": len(lineage),
        "lineage_expected_length": len(expected),
    }


def measure_reads(
    sides: Sequence[Side], reps: int, warmup: int
) -> dict[tuple[str, str], list[float]]:
    """``get_model_by_uuid`` (every registered uuid in turn) and ``get_model_lineage`` (the
    newest improvement), both sides interleaved, the order rotated every round. Each timed call
    follows an untimed ``index.ensure_fresh()``: the sync with MLflow the registry runs when the
    last one is older than its staleness bound is timed alone (``index_sync``)."""
    calls: dict[tuple[str, str], Callable[[int], Any]] = {}
    for side in sides:
        uuids = [r.model_uuid for r in side.registered]
        registry, leaf = side.registry, side.chain[-1]
        calls[(side.name, "get_model_by_uuid")] = lambda i, r=registry, u=uuids: (
            r.get_model_by_uuid(u[i % len(u)])
        )
        calls[(side.name, "get_model_lineage")] = lambda i, r=registry, m=leaf: r.get_model_lineage(
            m
        )
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
    keys = list(calls)
    for rep in range(warmup + reps):
        shift = rep % len(keys)
        for key in keys[shift:] + keys[:shift]:
            registry = next(s.registry for s in sides if s.name == key[0])
            if registry.index is not None:
                registry.index.ensure_fresh()
            started = time.perf_counter()
            calls[key](rep)
            elapsed = time.perf_counter() - started
            if rep >= warmup:
                samples[key].append(elapsed)
    for side in sides:
        index = side.registry.index
        if index is not None:
            samples[(side.name, "index_sync")] = common.timed_calls(index.sync, max(5, reps // 20))
    return samples


# ---- webhook bursts ------------------------------------------------------------------------


def measure_burst(side: Side, receiver: Any, events: int, offset: int) -> dict[str, Any]:
    """``events`` events written back to back (``announce_registration``, nothing sending),
    then ONE dispatcher (what ``hokusai webhooks worker`` runs) calling ``run_once()`` until all
    are delivered: deliveries/s over that loop, as webhooks.py measures it."""
    hooks = side.hooks
    ids: list[str] = []
    started = time.perf_counter()
    for n in range(events):
        ids.append(hooks.announce_registration(webhooks_bench.realistic_result(offset + n)))
    write_seconds = time.perf_counter() - started
    due = hooks.outbox.due_count()
    if due != events:
        raise RuntimeError(f"{side.name}: expected {events} due deliveries, found {due}")
    dispatcher = hooks.dispatcher()
    breakdown: dict[str, list[float]] = {}
    timed = ((hooks.outbox, "claim"), (dispatcher.client, "send"), (hooks.outbox, "complete"))
    for owner, name in timed:
        webhooks_bench._timed(owner, name, breakdown)
    before = hooks.outbox.stats().get("delivered", 0)
    delivered = 0
    started = time.perf_counter()
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if dispatcher.run_once():
                continue
            delivered = hooks.outbox.stats().get("delivered", 0) - before
            if delivered >= events:
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
    finally:
        dispatcher.client.close()
        for owner, name in timed:  # the class's methods again (the wrappers are attributes)
            with contextlib.suppress(AttributeError):
                delattr(owner, name)
    got = receiver.wait_for(ids, timeout=30)
    return {
        "events": events,
        "write_seconds": write_seconds,
        "writes_per_s": events / write_seconds,
        "deliver_seconds": elapsed,
        "delivered": delivered,
        "deliveries_per_s": delivered / elapsed if elapsed else 0.0,
        "received": len(got),
        "verified": sum(1 for _, ok, _ in got.values() if ok),
        "duplicates": sum(times - 1 for _, _, times in got.values()),
        "where_the_time_goes_per_delivery_s": {
            name: sum(samples) / max(delivered, 1) for name, samples in breakdown.items()
        },
    }


def measure_bursts(
    sides: Sequence[Side], receiver: Any, events: int, bursts: int
) -> dict[str, Any]:
    rounds: dict[str, list[dict[str, Any]]] = {side.name: [] for side in sides}
    for n in range(bursts):
        for side in sides if n % 2 == 0 else reversed(sides):
            offset = 1_000_000 * (n + 1)
            rounds[side.name].append(measure_burst(side, receiver, events, offset))
    result: dict[str, Any] = {}
    for name, runs in rounds.items():
        per_s = [run["deliveries_per_s"] for run in runs]
        result[name] = {
            "bursts": runs,
            "deliveries_per_s": summarize(per_s)["median"],
            "writes_per_s": summarize([run["writes_per_s"] for run in runs])["median"],
            "per_delivery_s": {
                part: summarize([run["where_the_time_goes_per_delivery_s"][part] for run in runs])[
                    "median"
                ]
                for part in ("claim", "send", "complete")
            },
            "all_delivered_once_verified": all(
                run["received"] == run["verified"] == run["events"] and not run["duplicates"]
                for run in runs
            ),
        }
    return result


# ---- registering processes ---------------------------------------------------------------------


def measure_concurrency(
    stack_side: Side,
    stack: _stack.Stack,
    work: Any,
    counts: Sequence[int],
    per_process: int,
    *,
    verbose: bool = False,
) -> dict[str, Any]:
    """For each count: a baseline of a type of its own, then ``count`` spawned processes that
    each register one untimed improvement of it, wait for the others, and register
    ``per_process`` more back to back. registrations/s = timed registrations / (last end −
    first start); every version must be distinct and have exactly one ``model_registered``
    event, and MLflow must hold as many versions as there were registrations."""
    context = multiprocessing.get_context("spawn")
    home = Path(stack_side.fields["home"]).parent
    results: dict[str, Any] = {}
    for count in counts:
        model_type = f"bench_conc{count}"
        progress(f"{count} registering process(es), {per_process} timed registrations each")
        base = stack_side.registry.register_baseline(
            work.model, model_type, signature=work.signature, input_example=work.input_example
        )
        settings = {
            "home": str(home / f"processes-{count}"),
            "tracking_uri": stack.tracking_uri,
            "database_url": stack.database_url,
            "webhook_background": False,
        }
        payload = {
            "model": work.model,
            "signature": work.signature,
            "input_example": work.input_example,
            "baseline_id": base["model_id"],
        }
        outcomes = run_processes(context, count, settings, payload, per_process, verbose)
        results[str(count)] = concurrency_result(stack, model_type, count, per_process, outcomes)
    return results


def run_processes(
    context: Any,
    count: int,
    settings: dict[str, Any],
    payload: dict[str, Any],
    per_process: int,
    verbose: bool,
) -> list[tuple[str, Any]]:
    barrier, out = context.Barrier(count), context.Queue()
    processes = [
        context.Process(
            target=_registrars.register_improvements,
            args=(barrier, settings, payload, per_process, out, verbose),
            daemon=True,
        )
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    try:
        return [out.get(timeout=900) for _ in range(count)]
    finally:
        for process in processes:
            process.join(timeout=60)
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=10)


def concurrency_result(
    stack: _stack.Stack,
    model_type: str,
    count: int,
    per_process: int,
    outcomes: list[tuple[str, Any]],
) -> dict[str, Any]:
    import sqlalchemy as sa
    from mlflow import MlflowClient

    errors = [detail for state, detail in outcomes if state != "ok"]
    done = [detail for state, detail in outcomes if state == "ok"]
    timed = [record for detail in done for record in detail["timed"]]
    ids = [detail["warmup"] for detail in done] + [model_id for model_id, _, _ in timed]
    name = f"hokusai_{model_type}_improved"
    engine = sa.create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            events = conn.execute(
                sa.text(
                    "SELECT model_version FROM hokusai_webhook_events "
                    "WHERE model_name = :name AND event_type = 'model_registered'"
                ),
                {"name": name},
            ).scalars()
            event_versions = sorted(str(v) for v in events)
    finally:
        engine.dispose()
    client = MlflowClient(tracking_uri=stack.tracking_uri, registry_uri=stack.tracking_uri)
    mlflow_versions = len(client.search_model_versions(f"name = '{name}'"))
    versions = sorted(model_id.rsplit("/", 1)[1] for model_id in ids)
    window = max(end for _, _, end in timed) - min(start for _, start, _ in timed) if timed else 0.0
    ok = (
        not errors
        and len(set(ids)) == len(ids) == count * (1 + per_process)
        and event_versions == versions
        and mlflow_versions == len(ids)
    )
    return {
        "processes": count,
        "errors": errors,
        "registrations": len(ids),
        "timed_registrations": len(timed),
        "seconds": window,
        "registrations_per_s": len(timed) / window if window else None,
        "registration_s": summarize([end - start for _, start, end in timed]) if timed else None,
        "distinct_versions": len(set(ids)),
        "model_registered_events": len(event_versions),
        "events_match_versions": event_versions == versions,
        "versions_in_mlflow": mlflow_versions,
        "ok": ok,
    }


# ---- run, results, report --------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    for name in [n for n in os.environ if n.startswith("HOKUSAI_")]:
        del os.environ[name]
    progress(f"model: RandomForest ({args.trees} trees, {args.dataset})")
    work = registration_bench.build_workload(args.dataset, args.trees)
    with contextlib.ExitStack() as cleanup:
        root = cleanup.enter_context(common.temp_home(NAME, keep=args.keep_store))
        receiver = cleanup.enter_context(webhooks_bench.running_receiver(root / "receiver.log"))
        progress("starting the loopback stack: PostgreSQL database, moto S3, mlflow server")
        (root / "stack").mkdir()
        stack = cleanup.enter_context(
            _stack.loopback_stack(
                root / "stack",
                admin_url=args.postgres_admin_url,
                mlflow_workers=args.mlflow_workers,
            )
        )
        cleanup.callback(dispose_engines)
        sides = [
            make_side(
                "embedded", root / "embedded", receiver, tracking_uri=None, database_url=None
            ),
            make_side(
                "stack",
                root / "stack-client",
                receiver,
                tracking_uri=stack.tracking_uri,
                database_url=stack.database_url,
            ),
        ]
        with delivering(sides, root):
            progress(f"registrations: {args.rounds} rounds, a webhook worker per side delivering")
            measure_registrations(sides, work, args.rounds)
            deliveries = {side.name: collect_deliveries(side, receiver) for side in sides}
        checks = {side.name: check_reads(side) for side in sides}
        progress(f"reads: {args.reads} of each per side, interleaved")
        reads = measure_reads(sides, args.reads, args.warmup)
        progress(f"webhook bursts: {args.bursts} × {args.burst} events per side")
        bursts = measure_bursts(sides, receiver, args.burst, args.bursts)
        concurrency = measure_concurrency(
            sides[1], stack, work, args.processes, args.per_process, verbose=args.verbose
        )
        return build_payload(args, stack, sides, deliveries, checks, reads, bursts, concurrency)


def dispose_engines() -> None:
    """Close this process's pooled connections before the stack's database is dropped."""
    from hokusai.db import dispose_engines as dispose

    dispose()


def build_payload(
    args: argparse.Namespace,
    stack: _stack.Stack,
    sides: Sequence[Side],
    deliveries: dict[str, Any],
    checks: dict[str, Any],
    reads: dict[tuple[str, str], list[float]],
    bursts: dict[str, Any],
    concurrency: dict[str, Any],
) -> dict[str, Any]:
    registrations: dict[str, Any] = {}
    for kind in ("register_baseline", "register_improved_model"):
        per_side = {
            side.name: [r.seconds for r in side.registered if r.kind == kind] for side in sides
        }
        registrations[kind] = side_by_side(per_side)
    read_results = {
        read: side_by_side({side.name: reads[(side.name, read)] for side in sides})
        for read in (*READS, "index_sync")
        if all((side.name, read) in reads for side in sides)
    }
    delivered_ok = all(
        d["received"] == d["verified"] == d["registrations"] == d["events"] and not d["duplicates"]
        for d in deliveries.values()
    )
    goals = {
        "registering_processes": goal(
            "each number of registering processes: every registration succeeds with a distinct "
            "version, one model_registered event each, as many versions in MLflow",
            all(result["ok"] for result in concurrency.values()),
        ),
        "every_registration_delivered": goal(
            "every registration's event is delivered once and verifies, on both sides",
            delivered_ok,
        ),
        "bursts_delivered": goal(
            "every burst event is delivered once and verifies, on both sides",
            all(side["all_delivered_once_verified"] for side in bursts.values()),
        ),
        "reads_answer": goal(
            "every uuid finds its version and the lineage is the whole chain, on both sides",
            all(check["ok"] for check in checks.values()),
        ),
    }
    burst_per_s = {name: side["deliveries_per_s"] for name, side in bursts.items()}
    return {
        "description": (
            "The library on the loopback stack (PostgreSQL for MLflow and Hokusai in one "
            "database, moto S3, mlflow server with proxied artifacts) beside embedded SQLite, "
            "interleaved: registration latency, uuid lookup, lineage, registration→delivery "
            "latency and burst deliveries/s; then registrations/s of concurrent registering "
            "processes through the tracking server."
        ),
        "environment": common.environment(),
        "parameters": {
            "quick": args.quick,
            "load_average_at_start": args.load_at_start,
            "model": f"RandomForestClassifier({args.trees} trees) on {args.dataset}, signature "
            "and input example, pip requirements pinned by the library",
            "rounds": args.rounds,
            "reads": args.reads,
            "read_warmup": args.warmup,
            "burst_events": args.burst,
            "bursts": args.bursts,
            "processes": args.processes,
            "per_process": args.per_process,
            "sides": SIDE_LABELS,
            "stack": stack.describe(),
            "deliverer": "hokusai webhooks worker --reconcile-every 0 (one per side, poll 0.05 s)",
            "receiver": "webhooks.py's receiver: uvicorn in its own process, verifies signatures",
        },
        "registration": registrations,
        "reads": read_results,
        "read_checks": checks,
        "registration_to_delivery": deliveries,
        "webhook_bursts": bursts,
        "burst_deliveries_per_s_stack_to_embedded": ratio(
            burst_per_s.get("stack", 0.0), burst_per_s.get("embedded", 0.0)
        ),
        "registering_processes": concurrency,
        "goals": goals,
        "goals_met": all(g["met"] for g in goals.values()),
    }


def side_by_side(per_side: dict[str, list[float]]) -> dict[str, Any]:
    """Timings and stats of each side, and the ratio of the medians (stack / embedded)."""
    out: dict[str, Any] = {name: common.timings(samples) for name, samples in per_side.items()}
    out["median_stack_to_embedded"] = ratio(
        out["stack"]["stats_s"]["median"], out["embedded"]["stats_s"]["median"]
    )
    return out


def report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    title = "The deployed stack beside embedded SQLite (HokusaiModelRegistry)"
    common.print_header(
        title, args, payload["environment"], "stack: PostgreSQL, moto S3, mlflow server"
    )
    rows: list[list[str]] = []
    for kind, doc in payload["registration"].items():
        rows.append(median_row(f"{kind} median", doc))
    labels = {
        "get_model_by_uuid": "get_model_by_uuid median",
        "get_model_lineage": "get_model_lineage median",
        "index_sync": "index sync with MLflow median",
    }
    for read, doc in payload["reads"].items():
        rows.append(median_row(labels[read], doc))
    delivery = payload["registration_to_delivery"]
    p50 = {
        name: (doc.get("latency_from_registration_return_s") or {}).get("p50")
        for name, doc in delivery.items()
    }
    rows.append(
        [
            "registration → delivery p50",
            *(fmt_ms(p50[s]) if p50[s] is not None else "—" for s in SIDES),
            fmt_ratio(ratio(p50["stack"] or 0.0, p50["embedded"] or 0.0)),
        ]
    )
    bursts = payload["webhook_bursts"]
    rows.append(
        [
            f"burst deliveries/s ({args.burst} events)",
            *(f"{bursts[s]['deliveries_per_s']:,.0f}/s" for s in SIDES),
            fmt_ratio(payload["burst_deliveries_per_s_stack_to_embedded"]),
        ]
    )
    common.print_table(["measure", "embedded", "stack", "stack/embedded"], rows)
    for side in SIDES:
        parts = bursts[side]["per_delivery_s"]
        shown = ", ".join(f"{part} {fmt_ms(seconds)}" for part, seconds in parts.items())
        print(f"  burst, per delivery on the {side} side: {shown}")
    print("\nregistering processes through the tracking server (improvements of one baseline):")
    rows = []
    for doc in payload["registering_processes"].values():
        per_s = doc["registrations_per_s"]
        rows.append(
            [
                str(doc["processes"]),
                str(doc["timed_registrations"]),
                f"{doc['seconds']:.1f} s",
                f"{per_s:.2f}/s" if per_s else "—",
                common.stat_ms(doc["registration_s"], "median"),
                f"{doc['model_registered_events']}/{doc['registrations']}",
                common.yes(doc["ok"]),
            ]
        )
    headers = ["processes", "timed", "window", "registrations/s", "median each", "events", "ok"]
    common.print_table(headers, rows)
    for doc in payload["registering_processes"].values():
        for error in doc["errors"]:
            print(f"  {doc['processes']} processes: ERROR {error}")
    print()
    common.print_goals(payload["goals"], word="check")


def median_row(label: str, doc: dict[str, Any]) -> list[str]:
    return [
        label,
        *(fmt_ms(doc[side]["stats_s"]["median"]) for side in SIDES),
        fmt_ratio(doc["median_stack_to_embedded"]),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_main(NAME, parse_args(argv), run, report)


if __name__ == "__main__":
    sys.exit(main())
