"""Lookup cost: ``get_model_by_uuid`` as the registry grows, against MLflow's tag search.

Ours vs ``search_model_versions("tags.`hokusai.model_uuid` = '<uuid>'")`` on a fresh SQLite store
filled to each size (filler written through MLflow's client, checked against real registrations),
timed after each fill and interleaved across sizes. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as common
from _common import fmt_ms, fmt_ratio, goal, local_path, progress, ratio, summarize, timings

NAME = "lookup"
GOAL_P50_S = 0.010
GOAL_GROWTH = 1.3
GOAL_SIZE = 10_000
REAL_TYPE = "bench_rf"
FILLER_TYPES = ("lead_scoring", "churn", "fraud", "credit_risk", "demand_forecast", "sentiment")
FILLER_TYPES += ("ranking", "pricing")
VERSION_TAG = "hokusai.model_uuid"
MODEL_VERSIONS_TAG = "mlflow.modelVersions"
MODES = (("interleaved", "interleaved"), ("after_fill", "after fill"))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.Parser(__doc__)
    sizes = "comma-separated registry sizes in versions, ascending"
    parser.sized("--sizes", [200, 1000], [1000, GOAL_SIZE], sizes, type=common.comma_ints)
    parser.sized("--lookups", 60, 300, "timed lookups per size for each side")
    parser.add_argument("--warmup", type=int, default=20, help="untimed lookups per side and size")
    add_store_arguments(parser, 2, 4)
    parser.add_argument("--seed", type=int, default=0, help="random seed (targets, filler)")
    args = parser.parse(argv)
    minimum = 2 * args.real_baselines + 2  # real models + the two checked filler versions
    ascending = all(a < b for a, b in zip(args.sizes, args.sizes[1:], strict=False))
    message = f"--sizes must be strictly ascending and at least {minimum}"
    parser.require(ascending and args.sizes[0] >= minimum, message)
    check_store_arguments(parser, args)
    parser.require(args.lookups >= 2 and args.warmup >= 0, "--lookups must be ≥ 2, --warmup ≥ 0")
    return args


def add_store_arguments(parser: common.Parser, quick_baselines: int, baselines: int) -> None:
    """``--real-baselines``, ``--filler-types``, ``--versions-per-run``, ``--durable-fill``."""
    real = "real baselines registered through the library, each with one improvement"
    parser.sized("--real-baselines", quick_baselines, baselines, real)
    types = f"model types the filler is spread over (×2 names each; max {len(FILLER_TYPES)})"
    parser.add_argument("--filler-types", type=int, default=6, help=types)
    per_run = "filler versions sharing one run"
    parser.add_argument("--versions-per-run", type=int, default=100, help=per_run)
    durable = "keep SQLite's fsync on every commit while filling (slower; reads always do)"
    parser.add_argument("--durable-fill", action="store_true", help=durable)


def check_store_arguments(parser: common.Parser, args: argparse.Namespace) -> None:
    types = f"--filler-types must be between 1 and {len(FILLER_TYPES)}"
    parser.require(1 <= args.filler_types <= len(FILLER_TYPES), types)
    parser.require(args.versions_per_run >= 1, "--versions-per-run must be ≥ 1")


# ---- real models ---------------------------------------------------------------------------


def register_real_models(registry: Any, baselines: int, rng: random.Random) -> list[str]:
    """Register ``baselines`` baselines and one improvement of each through the library."""
    progress(f"registering {2 * baselines} real models through the library")
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    features, target = load_iris(return_X_y=True, as_frame=True)
    example = features.head(5)
    uuids: list[str] = []
    for index in range(baselines):
        model = RandomForestClassifier(n_estimators=10, random_state=index).fit(features, target)
        metadata = {"dataset": "iris", "owner": {"team": "bench"}, "index": index}
        metrics = {"accuracy": 0.9 + index / 100}
        base = registry.register_baseline(
            model, REAL_TYPE, metadata=metadata, input_example=example, metrics=metrics
        )
        contribution = (base["model_id"], {"accuracy": 0.01}, _address(rng))
        metadata = {"dataset": "iris+contrib"}
        improved = registry.register_improved_model(
            model, *contribution, input_example=example, metadata=metadata
        )
        uuids += [base["model_uuid"], improved["model_uuid"]]
    return uuids


def _address(rng: random.Random) -> str:
    from eth_utils.address import to_checksum_address

    checksum: str = to_checksum_address("0x" + "".join(rng.choices("0123456789abcdef", k=40)))
    return checksum


# ---- filler --------------------------------------------------------------------------------


@dataclass
class Template:
    """What a real registration wrote, for filler to copy."""

    logged_model_tags: dict[str, str]
    mlmodel_text: str
    model_id: str
    run_id: str

    @classmethod
    def from_real(cls, client: Any, model_uuid: str) -> Template:
        logged = client.get_logged_model(model_uuid)
        tags = {k: v for k, v in logged.tags.items() if k != MODEL_VERSIONS_TAG}
        text = (local_path(logged.artifact_location) / "MLmodel").read_text(encoding="utf-8")
        return cls(tags, text, logged.model_id, logged.source_run_id)


@dataclass
class Filler:
    """Writes realistic Hokusai versions through MLflow's client, cheaply."""

    client: Any
    experiment_id: str
    template: Template
    rng: random.Random
    model_types: Sequence[str]
    versions_per_run: int
    contributors: list[str]
    uuids: list[str] = field(default_factory=list)
    baselines: dict[str, list[str]] = field(default_factory=dict)
    _runs: dict[str, tuple[str, int]] = field(default_factory=dict)
    _names: set[str] = field(default_factory=set)
    _versions: dict[str, int] = field(default_factory=dict)
    relinked: int = 0
    seconds_per_version: list[float] = field(default_factory=list)

    def _run_for(self, name: str, model_type: str) -> str:
        run_id, used = self._runs.get(name, ("", self.versions_per_run))
        if used >= self.versions_per_run:
            if run_id:
                self.client.set_terminated(run_id, "FINISHED")
            run = self.client.create_run(
                self.experiment_id,
                run_name=f"register-{name}",
                tags={"hokusai.model_type": model_type},
            )
            run_id, used = run.info.run_id, 0
        self._runs[name] = (run_id, used + 1)
        return run_id

    def close(self) -> None:
        for run_id, _ in self._runs.values():
            self.client.set_terminated(run_id, "FINISHED")
        self._runs.clear()

    def fill_to(self, total: int, *, already: int = 0, every: int = 0) -> float:
        """Add versions until ``already`` + the filler's make ``total`` (a progress note every
        ``every``), then close the runs; returns the seconds it took."""
        started = time.perf_counter()
        while already + len(self.uuids) < total:
            self.add()
            done = already + len(self.uuids)
            if every and done % every == 0:
                progress(f"{done:,} versions ({time.perf_counter() - started:.0f} s)")
        self.close()
        return time.perf_counter() - started

    def add(self, *, improved: bool | None = None) -> str:
        """One version, as a registration would write it; returns its ``m-…`` uuid.

        Baseline or improvement at random (an improvement needs a baseline of its type), unless
        ``improved`` says which.
        """
        from mlflow.entities import LoggedModelStatus

        start = time.perf_counter()
        if improved:
            model_type = self.rng.choice(sorted(self.baselines))
        else:
            model_type = self.rng.choice(self.model_types)
        existing = self.baselines.get(model_type, [])
        is_baseline = (
            (not existing or self.rng.random() < 0.5) if improved is None else not improved
        )
        kind = "baseline" if is_baseline else "improved"
        name = f"hokusai_{model_type}_{kind}"
        if name not in self._names:
            self.client.create_registered_model(name)
            self._names.add(name)
        run_id = self._run_for(name, model_type)
        params = {"model_type": model_type, "is_baseline": str(is_baseline)}
        tags = {"hokusai.model_type": model_type, "hokusai.is_baseline": str(is_baseline).lower()}
        if not is_baseline:
            baseline_id = self.rng.choice(existing)
            contributor = self.rng.choice(self.contributors)
            delta = {"accuracy": round(self.rng.uniform(0.001, 0.05), 4)}
            params.update(baseline_model_id=baseline_id, contributor_address=contributor)
            tags.update(
                {
                    "hokusai.baseline_id": baseline_id,
                    "hokusai.contributor": contributor,
                    "hokusai.delta_metrics": json.dumps(delta, separators=(",", ":")),
                }
            )
        # mlflow.register_model tags the logged model with its version; versions are numbered
        # max + 1 per name, so write the tag with the logged model and check the number after.
        expected = self._versions.get(name, 0) + 1
        link = json.dumps([{"name": name, "version": expected}])
        logged = self.client.create_logged_model(
            experiment_id=self.experiment_id,
            name="model",
            source_run_id=run_id,
            params=params,
            tags={**self.template.logged_model_tags, MODEL_VERSIONS_TAG: link},
        )
        model_id: str = logged.model_id
        folder = local_path(logged.artifact_location)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "MLmodel").write_text(
            self.template.mlmodel_text.replace(self.template.model_id, model_id).replace(
                self.template.run_id, run_id
            ),
            encoding="utf-8",
        )
        self.client.finalize_logged_model(model_id, LoggedModelStatus.READY)
        # The tags of a complete registration (its state is set to "complete" by a second call).
        tags |= {VERSION_TAG: model_id, "hokusai.registration_run_id": run_id}
        tags["hokusai.registration_state"] = "complete"
        version = self.client.create_model_version(
            name, f"models:/{model_id}", run_id=run_id, tags=tags, model_id=model_id
        )
        self._versions[name] = int(version.version)
        if int(version.version) != expected:  # someone else wrote: set the tag as MLflow does
            self.relinked += 1
            self.client.set_logged_model_tags(
                model_id,
                {MODEL_VERSIONS_TAG: json.dumps([{"name": name, "version": version.version}])},
            )
        if is_baseline:
            self.baselines.setdefault(model_type, []).append(f"{name}/{version.version}")
        self.uuids.append(model_id)
        self.seconds_per_version.append(time.perf_counter() - start)
        return model_id


def compare_with_real(
    client: Any, registry: Any, real_uuid: str, filler_uuid: str
) -> dict[str, Any]:
    """Check that a filler version has the same shape as a real one, field by field."""
    checks: dict[str, bool] = {}
    real_lm, fill_lm = client.get_logged_model(real_uuid), client.get_logged_model(filler_uuid)
    checks["logged_model_status"] = str(real_lm.status) == str(fill_lm.status)
    checks["logged_model_tag_keys"] = set(real_lm.tags) == set(fill_lm.tags)
    checks["logged_model_param_keys"] = set(real_lm.params) == set(fill_lm.params)
    checks["logged_model_name"] = real_lm.name == fill_lm.name
    real_links = json.loads(real_lm.tags[MODEL_VERSIONS_TAG])
    fill_links = json.loads(fill_lm.tags[MODEL_VERSIONS_TAG])
    checks["model_versions_tag_shape"] = [sorted(e) for e in real_links] == [
        sorted(e) for e in fill_links
    ] and [type(e["version"]) for e in real_links] == [type(e["version"]) for e in fill_links]
    real_mv = client.get_model_version(real_links[0]["name"], str(real_links[0]["version"]))
    fill_mv = client.get_model_version(fill_links[0]["name"], str(fill_links[0]["version"]))
    checks["version_source"] = (
        real_mv.source == f"models:/{real_uuid}" and fill_mv.source == f"models:/{filler_uuid}"
    )
    checks["version_run_id"] = bool(real_mv.run_id) and bool(fill_mv.run_id)
    checks["version_status"] = real_mv.status == fill_mv.status == "READY"
    checks["version_tag_keys"] = set(real_mv.tags) == set(fill_mv.tags)
    checks["version_download_uri"] = client.get_model_version_download_uri(
        fill_mv.name, fill_mv.version
    ) == (fill_lm.artifact_location)
    real = registry.get_model_by_uuid(real_uuid)
    fill = registry.get_model_by_uuid(filler_uuid)
    checks["lookup_keys"] = set(real) == set(fill)
    checks["lookup_uuid"] = fill["model_uuid"] == filler_uuid
    checks["lookup_signature_and_flavors"] = (
        fill["signature"] == real["signature"] and fill["flavors"] == real["flavors"]
    )
    return {
        "real": real_uuid,
        "filler": filler_uuid,
        "real_version_tags": sorted(real_mv.tags),
        "filler_version_tags": sorted(fill_mv.tags),
        "checks": checks,
        "ok": all(checks.values()),
    }


def start_filler(
    registry: Any, real: list[str], rng: random.Random, args: argparse.Namespace
) -> tuple[Filler, list[dict[str, Any]]]:
    """A filler copying ``real[0]``; its first baseline and improvement are checked field by
    field against the real ``real[0]`` and ``real[1]``."""
    client = registry.client
    experiment = client.get_experiment_by_name(registry.settings.experiment_name)
    filler = Filler(
        client=client,
        experiment_id=experiment.experiment_id,
        template=Template.from_real(client, real[0]),
        rng=rng,
        model_types=FILLER_TYPES[: args.filler_types],
        versions_per_run=args.versions_per_run,
        contributors=[_address(rng) for _ in range(50)],
    )
    filler.add(improved=False)
    filler.add(improved=True)
    equivalence = [
        compare_with_real(client, registry, real[0], filler.uuids[0]),
        compare_with_real(client, registry, real[1], filler.uuids[1]),
    ]
    if not all(check["ok"] for check in equivalence):
        raise RuntimeError(f"filler differs from a real registration: {equivalence}")
    return filler, equivalence


# ---- lookups -------------------------------------------------------------------------------


@dataclass
class Samples:
    """Lookup latencies of both sides at one registry size, in one measurement mode."""

    ours_real: list[float] = field(default_factory=list)
    ours_filler: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)

    @property
    def ours(self) -> list[float]:
        return self.ours_real + self.ours_filler

    def as_json(self) -> dict[str, Any]:
        return {
            "ours": timings(self.ours),
            "ours_real_models": timings(self.ours_real),
            "ours_filler": timings(self.ours_filler),
            "reference": timings(self.reference),
            "ratio_ours_to_reference_p50": ratio(
                summarize(self.ours)["p50"], summarize(self.reference)["p50"]
            ),
        }


@dataclass
class Store:
    """One registry size: its registry (live store or snapshot) and the uuids it holds."""

    size: int
    registry: Any
    real: list[str]
    filler: list[str]
    fill_seconds: float
    after_fill: Samples = field(default_factory=Samples)
    interleaved: Samples = field(default_factory=Samples)

    def target(self, index: int, rng: random.Random) -> tuple[str, bool]:
        """Even indexes: the real models in turn; odd: a random filler version."""
        if index % 2 == 0:
            return self.real[(index // 2) % len(self.real)], True
        return rng.choice(self.filler), False


def lookup_pair(store: Store, uuid: str, is_real: bool, samples: Samples | None) -> None:
    """Ours, then the reference, on the same uuid; both must find the same version."""
    client = store.registry.client
    start = time.perf_counter()
    found = store.registry.get_model_by_uuid(uuid)
    middle = time.perf_counter()
    versions = client.search_model_versions(f"tags.`{VERSION_TAG}` = '{uuid}'")
    end = time.perf_counter()
    if found is None or found["model_uuid"] != uuid:
        raise RuntimeError(f"get_model_by_uuid({uuid!r}) returned {found!r}")
    if [(v.name, str(v.version)) for v in versions] != [(found["model_name"], found["version"])]:
        raise RuntimeError(f"tag search and get_model_by_uuid disagree on {uuid!r}")
    if samples is not None:
        (samples.ours_real if is_real else samples.ours_filler).append(middle - start)
        samples.reference.append(end - middle)


def measure_after_fill(store: Store, lookups: int, warmup: int, rng: random.Random) -> None:
    for index in range(warmup):
        lookup_pair(store, *store.target(index, rng), None)
    for index in range(lookups):
        lookup_pair(store, *store.target(index, rng), store.after_fill)


def measure_interleaved(stores: list[Store], lookups: int, warmup: int, rng: random.Random) -> None:
    """Round after round, one lookup pair per size, rotating which size goes first."""
    for index in range(warmup):
        for store in stores:
            lookup_pair(store, *store.target(index, rng), None)
    for index in range(lookups):
        shift = index % len(stores)
        for store in stores[shift:] + stores[:shift]:
            lookup_pair(store, *store.target(index, rng), store.interleaved)


@contextlib.contextmanager
def relaxed_durability(client: Any, *, enabled: bool) -> Iterator[None]:
    """``PRAGMA synchronous=OFF`` on the store's SQLite connections while the filler writes (no
    fsync per commit); afterwards the pooled connections are dropped, so reads run with FULL."""
    if not enabled:
        yield
        return
    from sqlalchemy import event

    # MLflow internals: the SQLAlchemy engines behind this client's tracking and registry stores.
    stores = (client._tracking_client.store, client._get_registry_client().store)
    engines = list({id(store.engine): store.engine for store in stores}.values())

    def no_fsync(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    for engine in engines:
        event.listen(engine, "checkout", no_fsync)
    try:
        yield
    finally:
        for engine in engines:
            event.remove(engine, "checkout", no_fsync)
            engine.dispose()


def snapshot(database: Path, home: Path) -> Path:
    """A consistent copy of the SQLite store in ``home`` (artifact paths keep pointing at the
    original artifact folder, which only ever grows)."""
    home.mkdir(parents=True)
    source, target = sqlite3.connect(database), sqlite3.connect(home / "mlflow.db")
    with contextlib.closing(source), contextlib.closing(target):
        source.backup(target)
    return home


def count_versions(client: Any, limit: int) -> int:
    return len(client.search_model_versions(max_results=limit + 1))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import mlflow

    from hokusai.config import Settings
    from hokusai.services.model_registry import HokusaiModelRegistry

    rng = random.Random(args.seed)
    stores: list[Store] = []
    with common.temp_home(NAME, keep=args.keep_store) as root:
        home = root / "live"
        registry = HokusaiModelRegistry(settings=Settings(home=home))
        client = registry.client
        real = register_real_models(registry, args.real_baselines, rng)
        # create_model_version resolves a models:/m-… source with a *new* MlflowClient(), i.e.
        # through the process-global tracking URI (MLflow's own TODO), so point it at the store.
        mlflow.set_tracking_uri(registry.tracking_uri)
        filler, equivalence = start_filler(registry, real, rng, args)

        for position, size in enumerate(args.sizes):
            progress(f"filling to {size:,} versions with MLflow's client")
            fill_start = time.perf_counter()
            with relaxed_durability(client, enabled=not args.durable_fill):
                filler.fill_to(size, already=len(real))
            fill_seconds = time.perf_counter() - fill_start
            if count_versions(client, size) != size:
                raise RuntimeError(f"expected {size} versions in the store")
            if position < len(args.sizes) - 1:
                # Keep this size for the interleaved measurement; the live store grows on.
                snap = snapshot(home / "mlflow.db", root / f"at-{size}")
                # Explicit URIs: Settings would take MLFLOW_TRACKING_URI, which
                # mlflow.set_tracking_uri above exported, over ``home``.
                uri = f"sqlite:///{snap / 'mlflow.db'}"
                size_registry = HokusaiModelRegistry(
                    uri, registry_uri=uri, settings=Settings(home=snap)
                )
            else:
                size_registry = registry
            store = Store(size, size_registry, real, list(filler.uuids), fill_seconds)
            stores.append(store)
            progress(f"{size:,} versions (filled in {fill_seconds:.0f} s): {args.lookups} lookups")
            measure_after_fill(store, args.lookups, args.warmup, rng)
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        for store in stores[:-1]:
            found = count_versions(store.registry.client, store.size)
            if found != store.size:
                raise RuntimeError(f"snapshot of {store.size:,} versions holds {found:,}")
        progress(f"{args.lookups} rounds interleaved across all sizes")
        measure_interleaved(stores, args.lookups, args.warmup, rng)

    return build_payload(args, stores, filler, equivalence)


def build_payload(
    args: argparse.Namespace, stores: list[Store], filler: Filler, equivalence: list[dict[str, Any]]
) -> dict[str, Any]:
    first, last = stores[0], stores[-1]
    growth: dict[str, Any] = {"between_versions": [first.size, last.size]}
    for mode, _ in MODES:
        a, b = getattr(first, mode), getattr(last, mode)
        growth[mode] = {
            f"{side}_{q}": ratio(summarize(getattr(b, side))[q], summarize(getattr(a, side))[q])
            for side in ("ours", "reference")
            for q in ("p50", "p99")
        }
    p50_last = summarize(last.interleaved.ours)["p50"]
    growth_ours = growth["interleaved"]["ours_p50"]
    goals = {
        "p50_at_largest": goal(
            f"ours p50 ≤ {GOAL_P50_S * 1000:g} ms at {GOAL_SIZE:,} versions",
            p50_last <= GOAL_P50_S,
            measurement="interleaved",
            evaluated_at_versions=last.size,
            value_s=p50_last,
            max_s=GOAL_P50_S,
        ),
        "growth": goal(
            f"ours p50({GOAL_SIZE:,}) / p50(1,000) ≤ {GOAL_GROWTH:g}",
            growth_ours <= GOAL_GROWTH,
            measurement="interleaved",
            evaluated_between_versions=[first.size, last.size],
            value=growth_ours,
            max=GOAL_GROWTH,
        ),
    }
    per_version = filler.seconds_per_version
    return {
        "description": (
            "get_model_by_uuid latency (p50/p99) at growing registry sizes vs MLflow's "
            "search_model_versions on the hokusai.model_uuid tag, interleaved, fresh SQLite store."
        ),
        "environment": common.environment() | {"load_average_at_start": args.load_at_start},
        "parameters": {
            "quick": args.quick,
            "sizes": args.sizes,
            "lookups_per_size_per_side": args.lookups,
            "warmup_per_size_per_side": args.warmup,
            "real_models": len(first.real),
            "filler_model_types": list(FILLER_TYPES[: args.filler_types]),
            "filler_versions_per_run": args.versions_per_run,
            "seed": args.seed,
            "targets": "alternating: real models (round robin) / random filler versions",
            "order": "ours then the reference on the same uuid, pair after pair",
            "measurements": {
                "after_fill": "right after the store was filled to each size",
                "interleaved": (
                    "after all filling, round-robin across sizes (earlier sizes are SQLite "
                    "snapshots taken when reached), so machine drift hits every size alike; "
                    "the goals are evaluated on this one"
                ),
            },
            "reference_call": (
                "client.search_model_versions(\"tags.`hokusai.model_uuid` = '<uuid>'\")"
            ),
            "filler_method": (
                "MLflow client: create_logged_model (with the mlflow.modelVersions tag of the "
                "version about to be created) + MLmodel copy + finalize_logged_model(READY) + "
                "create_model_version (version number checked)"
            ),
            "sqlite_synchronous_during_fill": "FULL (default)" if args.durable_fill else "OFF",
            "sqlite_synchronous_during_lookups": "FULL (default)",
        },
        "filler": {
            "versions": len(filler.uuids),
            "versions_relinked_after_unexpected_number": filler.relinked,
            "seconds_total": sum(per_version),
            "seconds_per_version": summarize(per_version),
            "equivalence_with_real_registration": equivalence,
        },
        "sizes": {
            str(store.size): {
                "versions": store.size,
                "fill_seconds": store.fill_seconds,
                "interleaved": store.interleaved.as_json(),
                "after_fill": store.after_fill.as_json(),
            }
            for store in stores
        },
        "growth_ratios": growth,
        "goals": goals,
        "goals_evaluated_at_target_sizes": first.size == 1000 and last.size == GOAL_SIZE,
        "goals_met": all(g["met"] for g in goals.values()),
    }


def report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    title = "get_model_by_uuid vs MLflow tag search (search_model_versions on hokusai.model_uuid)"
    lookups = f"{args.lookups} lookups per size per side per measurement"
    common.print_header(title, args, payload["environment"], lookups)
    columns = {"ours p50": ("ours", "p50"), "ours p99": ("ours", "p99")}
    columns |= {"(real p50)": ("ours_real_models", "p50"), "(filler p50)": ("ours_filler", "p50")}
    columns |= {f"tag search {q}": ("reference", q) for q in ("p50", "p99")}
    rows = []
    for mode, label in MODES:
        for size, doc in payload["sizes"].items():
            cells = [fmt_ms(doc[mode][key]["stats_s"][q]) for key, q in columns.values()]
            ours_to_ref = fmt_ratio(doc[mode]["ratio_ours_to_reference_p50"])
            rows.append([f"{int(size):,}", label, *cells, ours_to_ref])
    common.print_table(["versions", "measured", *columns, "ours/ref p50"], rows)
    growth = payload["growth_ratios"]
    a, b = growth["between_versions"]
    print()
    for mode, label in MODES:
        ratios = ", ".join(f"{key} {fmt_ratio(value)}" for key, value in growth[mode].items())
        print(f"growth {a:,} → {b:,} ({label}): {ratios}")
    common.print_goals(payload["goals"])
    if not payload["goals_evaluated_at_target_sizes"]:
        print(f"  (evaluated at {a:,} → {b:,} versions, not the target 1,000 → 10,000)")
    filler = payload["filler"]
    same = common.yes(all(e["ok"] for e in filler["equivalence_with_real_registration"]))
    each = fmt_ms(filler["seconds_per_version"]["median"])
    print(
        f"filler: {filler['versions']:,} versions through MLflow's client in "
        f"{filler['seconds_total']:.0f} s (median {each} each); same shape as a real one: {same}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_main(NAME, parse_args(argv), run, report)


if __name__ == "__main__":
    sys.exit(main())
