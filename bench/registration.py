"""Registration cost: ``HokusaiModelRegistry.register_baseline`` against bare MLflow.

One RandomForest registration (run + log_model + register_model) timed interleaved with bare
MLflow's fluent API, with defaults and with explicit ``pip_requirements``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import _common as common
from _common import fmt_ms, progress, ratio, summarize, timed_calls, timings, yes

NAME = "registration"
MODEL_TYPE = "bench_rf"
BARE_MODEL_NAME = "bare_mlflow_bench_rf"
PINNED_DISTRIBUTIONS = ("mlflow", "scikit-learn", "skops", "numpy", "scipy", "pandas")
COMPARISONS = {  # key: title, goal (max median ratio), goal text
    "defaults": ("(a) defaults: bare MLflow infers pip requirements", 0.10, "ours ≤ 0.1×"),
    "explicit_pip_requirements": ("(b) both with explicit pip_requirements", 1.05, "ours ≤ 1.05×"),
}
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
            "ratios": {q: ratio(ours[q], bare[q]) for q in ("median", "p99", "mean")},
            "overhead_median_s": ours["median"] - bare["median"],
            "goal": {"metric": "median(ours) / median(bare MLflow)", "max_ratio": self.goal},
            "goal_text": self.goal_text,
            "goal_met": self.met,
        }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.Parser(__doc__)
    parser.sized("--reps-defaults", 1, 5, "repetitions of comparison (a), each ~5 s")
    parser.sized("--reps-explicit", 5, 30, "repetitions of comparison (b)")
    parser.add_argument("--dataset", choices=("iris", "breast_cancer"), default="iris")
    parser.add_argument("--trees", type=int, default=10, help="RandomForest n_estimators")
    flag = {"action": "store_true"}
    parser.add_argument("--no-announce", **flag, help="register with announcer=None (no event)")
    parser.add_argument("--skip-defaults", **flag, help="skip the slow comparison (a)")
    args = parser.parse(argv)
    positive = min(args.reps_defaults, args.reps_explicit, args.trees) >= 1
    parser.require(positive, "repetitions and --trees must be positive")
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
    return Workload(model, signature, features.head(5), dataset, n_estimators, trusted, pins)


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
        ours_times += timed_calls(ours, 1)
        before_bare()
        bare_times += timed_calls(bare, 1)
        if reps < 10 or (rep + 1) % 10 == 0:
            progress(
                f"{label}: {rep + 1}/{reps}  ours {fmt_ms(ours_times[-1])}, "
                f"bare {fmt_ms(bare_times[-1])}"
            )
    return ours_times, bare_times


def read_requirements(artifact_uri: str) -> list[str]:
    text = (common.local_path(artifact_uri) / "requirements.txt").read_text(encoding="utf-8")
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
    """Median cost of the library's own steps before MLflow is called, timed alone."""
    from hokusai.registry.flavors import plan_flavor
    from hokusai.registry.signatures import resolve_signature

    plan = plan_flavor(work.model)
    steps: dict[str, Callable[[], Any]] = {
        "plan_flavor": lambda: plan_flavor(work.model),
        "resolve_signature": lambda: resolve_signature(
            work.signature, work.input_example, plan.predict
        ),
    }
    median = {name: summarize(timed_calls(step, reps))["median"] for name, step in steps.items()}
    return {name: {"median_s": value, "reps": reps} for name, value in median.items()}


def check_loads(model_uri: str, work: Workload) -> bool:
    import mlflow.pyfunc

    predictions = mlflow.pyfunc.load_model(model_uri).predict(work.input_example)
    return len(predictions) == len(work.input_example)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from hokusai.config import Settings
    from hokusai.services.model_registry import HokusaiModelRegistry

    work = build_workload(args.dataset, args.trees)
    with common.temp_home(NAME, keep=args.keep_store) as home:
        options = {"announcer": None} if args.no_announce else {}
        registry = HokusaiModelRegistry(settings=Settings(home=home), **options)
        # MLflow's process-global tracking URI: the store for bare MLflow, unset for ours.
        fluent_store = partial(mlflow.set_tracking_uri, registry.tracking_uri)
        fluent_unset = partial(mlflow.set_tracking_uri, tracking_utils._tracking_uri)

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
        fluent_unset()
        ours_defaults()
        ours_explicit()
        fluent_store()
        mlflow.set_experiment(registry.settings.experiment_name)
        if not args.skip_defaults:
            bare_defaults()
        bare_explicit()

        plan = [("explicit_pip_requirements", args.reps_explicit, ours_explicit, bare_explicit)]
        if not args.skip_defaults:
            plan.insert(0, ("defaults", args.reps_defaults, ours_defaults, bare_defaults))
        comparisons: list[Comparison] = []
        for key, reps, ours, bare in plan:
            title, goal, goal_text = COMPARISONS[key]
            goal_text += " bare MLflow" + (" (< 5% overhead)" if goal > 1 else "")
            times = interleave(reps, ours, bare, fluent_unset, fluent_store, title[:3])
            comparisons.append(Comparison(key, title, goal, goal_text, *times))

        # Checks, outside the timings, on the last registration of each kind.
        progress("checking requirements.txt and loading the models back")
        fluent_store()
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
        fluent_unset()

    return {
        "description": (
            "Median wall time of one registration (run + log_model + register_model) of a "
            f"RandomForestClassifier({args.trees} trees) with signature and input example, "
            "ours (HokusaiModelRegistry.register_baseline) vs bare MLflow, interleaved, on a "
            "fresh SQLite store."
        ),
        "environment": common.environment() | {"load_average_at_start": args.load_at_start},
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
    }


def report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    params, checks = payload["parameters"], payload["checks"]
    title = f"Registration of {params['model']} on {params['dataset']}, signature + input example"
    announces = f"ours announces a webhook event: {yes(params['ours_announce_webhook_event'])}"
    common.print_header(title + ", fresh SQLite store", args, payload["environment"], announces)
    rows = []
    for c in payload["comparisons"].values():
        ours, bare = c["ours"]["stats_s"], c["reference"]["stats_s"]
        times = [fmt_ms(side[q]) for q in ("median", "p99") for side in (ours, bare)]
        goal = f"≤ {c['goal']['max_ratio']:g}×"
        rows.append([c["title"], c["reps"], *times, common.fmt_ratio(c["ratios"]["median"]), goal])
        rows[-1].append(yes(c["goal_met"]))
    headers = ["comparison", "reps", "ours p50", "bare p50", "ours p99", "bare p99", "ratio"]
    common.print_table([*headers, "goal", "met"], rows)
    pins, loads = checks["ours_requirements_txt"], checks["models_load"]
    verdict = "exact pins of the installed versions" if pins["ok"] else "PROBLEMS"
    print(f"\nours requirements.txt: {verdict}: {', '.join(pins['lines'])}")
    for problem in pins["problems"]:
        print(f"  - {problem}")
    bare_lines = ", ".join(checks["bare_mlflow_requirements_txt"])
    print(
        f"bare MLflow requirements.txt ({checks['bare_mlflow_requirements_source']}): {bare_lines}"
    )
    print(f"bare MLflow was given skops_trusted_types={params['bare_skops_trusted_types']}")
    print(f"models load back: ours {yes(loads['ours'])}, bare {yes(loads['bare_mlflow'])}")
    prep = payload["diagnostics"]["ours_preparation_median_s"]
    steps = ", ".join(f"{name} {fmt_ms(step['median_s'])}" for name, step in prep.items())
    print(f"ours' own steps before MLflow (timed alone): {steps}")


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_main(NAME, parse_args(argv), run, report)


if __name__ == "__main__":
    sys.exit(main())
