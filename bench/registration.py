"""Registration cost: ``HokusaiModelRegistry.register_baseline`` against bare MLflow.

One RandomForest registration (run + log_model + register_model) timed interleaved with bare
MLflow's fluent API, with defaults and with explicit ``pip_requirements``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    Parser,
    environment,
    finish,
    fmt_ms,
    fmt_ratio,
    load_average,
    local_path,
    print_footer,
    print_load,
    print_table,
    progress,
    quiet_mlflow,
    ratio,
    summarize,
    temp_home,
    timings,
)

NAME = "registration"
MODEL_TYPE = "bench_rf"
BARE_MODEL_NAME = "bare_mlflow_bench_rf"
PINNED_DISTRIBUTIONS = ("mlflow", "scikit-learn", "skops", "numpy", "scipy", "pandas")
GOAL_DEFAULTS = 0.10
GOAL_EXPLICIT = 1.05
_PIN_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;=<>!~,]+)$")


@dataclass(frozen=True)
class Workload:
    """The model and everything logged with it."""

    model: Any
    signature: Any
    input_example: Any
    dataset: str
    n_estimators: int
    skops_trusted_types: list[str]
    pip_requirements: list[str]


@dataclass
class Comparison:
    """Interleaved timings of ours and the reference for one configuration."""

    key: str
    title: str
    goal: float
    goal_text: str
    ours: list[float]
    bare: list[float]

    @property
    def ratio(self) -> float:
        return ratio(summarize(self.ours)["median"], summarize(self.bare)["median"])

    @property
    def met(self) -> bool:
        return self.ratio <= self.goal

    def as_json(self) -> dict[str, Any]:
        ours, bare = summarize(self.ours), summarize(self.bare)
        return {
            "title": self.title,
            "reps": len(self.ours),
            "ours": timings(self.ours),
            "reference": timings(self.bare),
            "ratios": {
                "median": self.ratio,
                "p99": ratio(ours["p99"], bare["p99"]),
                "mean": ratio(ours["mean"], bare["mean"]),
            },
            "overhead_median_s": ours["median"] - bare["median"],
            "goal": {"metric": "median(ours) / median(bare MLflow)", "max_ratio": self.goal},
            "goal_text": self.goal_text,
            "goal_met": self.met,
        }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = Parser(__doc__)
    parser.sized(
        "--reps-defaults", 1, 5, "repetitions of comparison (a), each ~5 s (default 5; --quick: 1)"
    )
    parser.sized("--reps-explicit", 5, 30, "repetitions of comparison (b) (default 30; --quick: 5)")
    parser.add_argument(
        "--dataset", choices=("iris", "breast_cancer"), default="iris", help="training data"
    )
    parser.add_argument("--trees", type=int, default=10, help="RandomForest n_estimators")
    parser.add_argument(
        "--no-announce",
        action="store_true",
        help="register with announcer=None (no webhook outbox event) to see what it costs",
    )
    parser.add_argument(
        "--skip-defaults",
        action="store_true",
        help="skip comparison (a) (the slow one: MLflow's requirement inference)",
    )
    args = parser.parse(argv)
    if args.reps_defaults < 1 or args.reps_explicit < 1 or args.trees < 1:
        parser.error("repetitions and --trees must be positive")
    return args


def build_workload(dataset: str, n_estimators: int) -> Workload:
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.datasets import load_breast_cancer, load_iris
    from sklearn.ensemble import RandomForestClassifier

    loader = load_iris if dataset == "iris" else load_breast_cancer
    bunch = loader(as_frame=True)
    features, target = bunch.data, bunch.target
    model = RandomForestClassifier(n_estimators=n_estimators, random_state=0).fit(features, target)
    signature = infer_signature(features, model.predict(features))
    trusted = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    pins = [f"{d}=={importlib.metadata.version(d)}" for d in PINNED_DISTRIBUTIONS]
    return Workload(
        model=model,
        signature=signature,
        input_example=features.head(5),
        dataset=dataset,
        n_estimators=n_estimators,
        skops_trusted_types=trusted,
        pip_requirements=pins,
    )


class FluentURI:
    """Points MLflow's process-global tracking URI at the store, or back to unset."""

    def __init__(self, store_uri: str) -> None:
        import mlflow
        from mlflow.tracking._tracking_service import utils as tracking_utils

        self._mlflow = mlflow
        self._utils = tracking_utils
        self._store_uri = store_uri
        self._initial: str | None = tracking_utils._tracking_uri

    def store(self) -> None:
        self._mlflow.set_tracking_uri(self._store_uri)

    def unset(self) -> None:
        self._mlflow.set_tracking_uri(self._initial)  # type: ignore[arg-type]


def bare_register(work: Workload, *, explicit: bool) -> tuple[Any, Any]:
    """Bare MLflow: one run, ``log_model`` with default arguments, ``register_model``."""
    import mlflow
    import mlflow.sklearn

    extra: dict[str, Any] = {"pip_requirements": work.pip_requirements} if explicit else {}
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            work.model,
            name="model",
            signature=work.signature,
            input_example=work.input_example,
            skops_trusted_types=work.skops_trusted_types,
            **extra,
        )
        version = mlflow.register_model(info.model_uri, BARE_MODEL_NAME)
    return info, version


def interleave(
    reps: int,
    ours: Callable[[], Any],
    bare: Callable[[], Any],
    before_ours: Callable[[], None],
    before_bare: Callable[[], None],
    label: str,
) -> tuple[list[float], list[float]]:
    """Time ``ours`` and ``bare`` alternately ``reps`` times each (setup calls untimed)."""
    ours_times: list[float] = []
    bare_times: list[float] = []
    for rep in range(reps):
        before_ours()
        start = time.perf_counter()
        ours()
        ours_times.append(time.perf_counter() - start)
        before_bare()
        start = time.perf_counter()
        bare()
        bare_times.append(time.perf_counter() - start)
        if reps < 10 or (rep + 1) % 10 == 0:
            progress(
                f"{label}: {rep + 1}/{reps}  ours {fmt_ms(ours_times[-1])}, "
                f"bare {fmt_ms(bare_times[-1])}"
            )
    return ours_times, bare_times


def read_requirements(artifact_uri: str) -> list[str]:
    text = (local_path(artifact_uri) / "requirements.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def check_pins(lines: list[str], expected: list[str]) -> dict[str, Any]:
    """Are all lines ``name==version`` pins of the installed versions, with nothing missing?"""
    problems: list[str] = []
    for line in lines:
        match = _PIN_RE.match(line)
        if match is None:
            problems.append(f"not an exact pin: {line!r}")
            continue
        try:
            installed = importlib.metadata.version(match["name"])
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"not installed here: {line!r}")
            continue
        if installed != match["version"]:
            problems.append(f"{line!r} but {installed} is installed")
    missing = sorted(set(expected) - set(lines))
    problems.extend(f"missing {pin!r}" for pin in missing)
    return {"lines": lines, "expected": expected, "problems": problems, "ok": not problems}


def preparation_costs(work: Workload, reps: int = 15) -> dict[str, Any]:
    """Median cost of the library's own pre-registration steps, timed alone (diagnostic).

    These run inside every ``register_baseline`` before MLflow is called, and have no
    counterpart in bare MLflow: choosing the flavor (which serialises the model once with
    skops to list the types it must trust) and checking the input example against the
    signature (which also runs ``predict`` on it).
    """
    from hokusai.registry.flavors import plan_flavor
    from hokusai.registry.signatures import resolve_signature

    plan = plan_flavor(work.model)
    steps: dict[str, Callable[[], Any]] = {
        "plan_flavor": lambda: plan_flavor(work.model),
        "resolve_signature": lambda: resolve_signature(
            work.signature, work.input_example, plan.predict
        ),
    }
    result: dict[str, Any] = {}
    for name, step in steps.items():
        samples = []
        for _ in range(reps):
            start = time.perf_counter()
            step()
            samples.append(time.perf_counter() - start)
        result[name] = {"median_s": summarize(samples)["median"], "reps": reps}
    return result


def check_loads(model_uri: str, work: Workload) -> bool:
    import mlflow.pyfunc

    predictions = mlflow.pyfunc.load_model(model_uri).predict(work.input_example)
    return len(predictions) == len(work.input_example)


def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[Comparison]]:
    started = time.perf_counter()
    load_at_start = load_average()
    quiet_mlflow(verbose=args.verbose)
    import mlflow

    from hokusai.config import Settings
    from hokusai.services.model_registry import HokusaiModelRegistry

    work = build_workload(args.dataset, args.trees)
    with temp_home(NAME, keep=args.keep_store) as home:
        options = {"announcer": None} if args.no_announce else {}
        registry = HokusaiModelRegistry(settings=Settings(home=home), **options)
        fluent = FluentURI(registry.tracking_uri)

        last: dict[str, Any] = {}  # the latest result of each callable, for the checks

        def keeping(key: str, call: Callable[..., Any], *a: Any, **k: Any) -> Callable[[], None]:
            def timed() -> None:
                last[key] = call(*a, **k)

            return timed

        register_ours = (registry.register_baseline, work.model, MODEL_TYPE)
        shown = {"signature": work.signature, "input_example": work.input_example}
        pins = {"pip_requirements": work.pip_requirements}
        ours_defaults = keeping("ours_defaults", *register_ours, **shown)
        ours_explicit = keeping("ours_explicit", *register_ours, **shown, **pins)
        bare_defaults = keeping("bare_defaults", bare_register, work, explicit=False)
        bare_explicit = keeping("bare_explicit", bare_register, work, explicit=True)

        # Warm-up: ours first (it creates the "hokusai" experiment, with its artifact folder
        # inside the temp home), then bare MLflow in that same experiment.
        progress("warm-up (imports, tables, first calls)")
        fluent.unset()
        ours_defaults()
        ours_explicit()
        fluent.store()
        mlflow.set_experiment(registry.settings.experiment_name)
        if not args.skip_defaults:
            bare_defaults()
        bare_explicit()

        comparisons: list[Comparison] = []

        def compare(
            label: str, reps: int, ours: Callable[[], None], bare: Callable[[], None], *about: Any
        ) -> None:
            """Time ``ours`` and ``bare`` interleaved; ``about``: key, title, goal, goal text."""
            times = interleave(reps, ours, bare, fluent.unset, fluent.store, label)
            comparisons.append(Comparison(*about, *times))

        if not args.skip_defaults:
            compare(
                "(a) defaults",
                args.reps_defaults,
                ours_defaults,
                bare_defaults,
                *("defaults", "(a) defaults: bare MLflow infers pip requirements"),
                *(GOAL_DEFAULTS, "ours ≤ 0.1× bare MLflow"),
            )
        compare(
            "(b) explicit pip_requirements",
            args.reps_explicit,
            ours_explicit,
            bare_explicit,
            *("explicit_pip_requirements", "(b) both with explicit pip_requirements"),
            *(GOAL_EXPLICIT, "ours ≤ 1.05× bare MLflow (< 5% overhead)"),
        )

        # Checks, outside the timings, on the last registration of each kind.
        progress("checking requirements.txt and loading the models back")
        fluent.store()
        ours_last = last["ours_defaults"]
        ours_pins = check_pins(read_requirements(ours_last["artifact_path"]), work.pip_requirements)
        bare_key = "bare_explicit" if args.skip_defaults else "bare_defaults"
        bare_info, _ = last[bare_key]
        bare_lines = read_requirements(bare_info.artifact_path)
        loads = {
            "ours": check_loads(ours_last["model_uri"], work),
            "bare_mlflow": check_loads(bare_info.model_uri, work),
        }
        diagnostics = preparation_costs(work)
        versions = {
            "ours_registered_model": ours_last["model_name"],
            "ours_versions_created": int(last["ours_explicit"]["version"]),
            "bare_registered_model": BARE_MODEL_NAME,
            "bare_versions_created": int(last["bare_explicit"][1].version),
        }
        fluent.unset()

    env = environment()
    env["load_average_at_start"] = load_at_start
    payload: dict[str, Any] = {
        "description": (
            "Median wall time of one registration (run + log_model + register_model) of a "
            f"RandomForestClassifier({args.trees} trees) with signature and input example, "
            "ours (HokusaiModelRegistry.register_baseline) vs bare MLflow, interleaved, on a "
            "fresh SQLite store."
        ),
        "environment": env,
        "parameters": {
            "quick": args.quick,
            "dataset": work.dataset,
            "model": f"RandomForestClassifier(n_estimators={work.n_estimators}, random_state=0)",
            "input_example_rows": len(work.input_example),
            "reps_defaults": 0 if args.skip_defaults else args.reps_defaults,
            "reps_explicit": args.reps_explicit,
            "warmup_per_side": 1,
            "ours_announce_webhook_event": not args.no_announce,
            "order": "interleaved: ours, bare, ours, bare, …",
            "store": "fresh sqlite:///<tmp>/mlflow.db + file:<tmp>/artifacts",
            "explicit_pip_requirements": work.pip_requirements,
            "bare_skops_trusted_types": work.skops_trusted_types,
            "bare_skops_note": (
                "MLflow 3.17 saves sklearn models with skops by default and refuses a "
                "RandomForest without skops_trusted_types; bare MLflow gets exactly "
                "skops.io.get_untrusted_types(data=skops.io.dumps(model)), computed once "
                "outside the timings — the minimum for it to work at all."
            ),
            "fluent_tracking_uri": (
                "set to the store for bare MLflow calls, unset for ours (switching is untimed)"
            ),
        },
        "comparisons": {c.key: c.as_json() for c in comparisons},
        "checks": {
            "ours_requirements_txt": ours_pins,
            "bare_mlflow_requirements_txt": bare_lines,
            "bare_mlflow_requirements_source": (
                "explicit pip_requirements" if args.skip_defaults else "MLflow inference"
            ),
            "models_load": loads,
            **versions,
        },
        "diagnostics": {
            "ours_preparation_median_s": diagnostics,
            "note": (
                "library steps before MLflow is called, timed alone: plan_flavor serialises the "
                "model with skops to list its untrusted types (MLflow then serialises it again "
                "to save it); resolve_signature checks the example and runs predict on it"
            ),
        },
        "goals_met": all(c.met for c in comparisons) and ours_pins["ok"],
        "duration_s": time.perf_counter() - started,
    }
    return payload, comparisons


def report(payload: dict[str, Any], comparisons: list[Comparison], path: Path) -> None:
    params = payload["parameters"]
    env = payload["environment"]
    print(
        f"Registration of {params['model']} on {params['dataset']}, signature + input example, "
        f"fresh SQLite store"
    )
    print(
        f"python {env['python']}, mlflow {env['mlflow']}, scikit-learn {env['sklearn']}, "
        f"{env['cpu_count']} CPUs; ours announces a webhook event: "
        f"{'yes' if params['ours_announce_webhook_event'] else 'no'}"
        f"{'  [--quick: indicative only]' if params['quick'] else ''}"
    )
    print_load(env)
    print()
    rows = []
    for c in comparisons:
        ours, bare = summarize(c.ours), summarize(c.bare)
        times = [fmt_ms(x) for x in (ours["median"], bare["median"], ours["p99"], bare["p99"])]
        verdict = [fmt_ratio(c.ratio), f"≤ {c.goal:g}×", "yes" if c.met else "NO"]
        rows.append([c.title, str(len(c.ours)), *times, *verdict])
    headers = ["comparison", "reps", "ours p50", "bare p50", "ours p99", "bare p99", "ratio"]
    print_table([*headers, "goal", "met"], rows)
    checks = payload["checks"]
    pins = checks["ours_requirements_txt"]
    print()
    verdict = "exact pins of the installed versions" if pins["ok"] else "PROBLEMS"
    print(f"ours requirements.txt: {verdict}: {', '.join(pins['lines'])}")
    for problem in pins["problems"]:
        print(f"  - {problem}")
    print(
        f"bare MLflow requirements.txt ({checks['bare_mlflow_requirements_source']}): "
        f"{', '.join(checks['bare_mlflow_requirements_txt'])}"
    )
    print(
        "bare MLflow was given skops_trusted_types="
        f"{params['bare_skops_trusted_types']} (MLflow 3.17's skops default refuses a "
        "RandomForest without it; the minimum for bare MLflow to work)"
    )
    loads = checks["models_load"]
    print(
        f"models load back: ours {'yes' if loads['ours'] else 'NO'}, "
        f"bare {'yes' if loads['bare_mlflow'] else 'NO'}"
    )
    prep = payload["diagnostics"]["ours_preparation_median_s"]
    print(
        "ours' own steps before MLflow (timed alone): plan_flavor "
        f"{fmt_ms(prep['plan_flavor']['median_s'])} (an extra skops serialisation to list "
        f"trusted types), resolve_signature {fmt_ms(prep['resolve_signature']['median_s'])} "
        "(example check + predict)"
    )
    print_footer(payload, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    payload, comparisons = run(args)
    return finish(NAME, args, payload, lambda path: report(payload, comparisons, path))


if __name__ == "__main__":
    sys.exit(main())
