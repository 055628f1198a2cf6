"""Verification cost: ``verify_improvement`` against scoring both models with
``mlflow.models.evaluate``.

A benchmark of ``--rows`` rows × ``--features`` features (binary target), a baseline and an
improved XGBoost model registered through the library; the benchmark's metric is accuracy with a
ROC AUC guardrail, so ours computes both metrics for both models with paired 95% intervals
(exact McNemar for accuracy, DeLong for ROC AUC), writes the evaluation run, its per-row
predictions and manifest, and tags the candidate. The reference runs MLflow's default classifier
evaluator on each model (the metrics, no intervals; explainability off). Each measurement runs
in a fresh process, so its peak memory (max RSS) is its own and nothing is warm; the two sides
alternate round by round. See bench/README.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _common as common
from _common import fmt_ratio, goal, progress, ratio, summarize

NAME = "verification"
MODEL_TYPE = "bench_verify"
BENCHMARK = "bench-verify"
TARGET = "label"
GOAL_SECONDS = 20.0
GOAL_SPEEDUP = 3.0
CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.Parser(__doc__)
    parser.sized("--rows", 100_000, 1_000_000, "benchmark rows")
    parser.add_argument("--features", type=int, default=20, help="feature columns (default 20)")
    parser.sized("--rounds", 1, 3, "alternating rounds of ours and the reference")
    parser.sized("--train-rows", 20_000, 200_000, "rows the two models are trained on")
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    args = parser.parse(argv)
    parser.require(args.rows >= 1_000 and args.features >= 2, "--rows ≥ 1000, --features ≥ 2")
    parser.require(args.rounds >= 1, "--rounds must be ≥ 1")
    return args


# ---- data and models ------------------------------------------------------------------------


def make_frame(rows: int, features: int, seed: int) -> Any:
    """A binary task whose label depends on every feature (with noise), as a DataFrame."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features), dtype=np.float32)
    weights = np.linspace(1.0, 0.1, features, dtype=np.float32)
    logit = x @ weights + 0.5 * x[:, 0] * x[:, 1] + rng.normal(0, 1.5, rows).astype(np.float32)
    frame = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(features)])
    frame[TARGET] = (logit > 0).astype(np.int64)
    return frame


def prepare(home: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Register the baseline and its improvement, add the benchmark; what the children need."""
    import xgboost as xgb

    from hokusai.config import Settings
    from hokusai.registry.benchmarks import BenchmarkStore
    from hokusai.services.model_registry import HokusaiModelRegistry

    settings = Settings(home=home)
    registry = HokusaiModelRegistry(settings=settings)
    progress(f"training two XGBoost models on {args.train_rows:,} rows")
    train = make_frame(args.train_rows, args.features, args.seed + 1)
    features, labels = train.drop(columns=[TARGET]), train[TARGET]
    example = features.head(5)
    small = {"n_estimators": 20, "max_depth": 2, "tree_method": "hist", "n_jobs": 2}
    large = {"n_estimators": 120, "max_depth": 5, "tree_method": "hist", "n_jobs": 2}
    baseline = xgb.XGBClassifier(**small).fit(features, labels)
    candidate = xgb.XGBClassifier(**large).fit(features, labels)
    base = registry.register_baseline(
        baseline, MODEL_TYPE, metadata={"bench": NAME}, input_example=example
    )
    improved = registry.register_improved_model(
        candidate, base["model_id"], {"accuracy": 0.02}, CONTRIBUTOR, input_example=example
    )
    progress(f"writing the benchmark: {args.rows:,} rows × {args.features} features")
    data = home / "benchmark.parquet"
    make_frame(args.rows, args.features, args.seed).to_parquet(data, index=False)
    started = time.perf_counter()
    BenchmarkStore(settings).add(
        BENCHMARK, data, target=TARGET, metric="accuracy", guardrails={"roc_auc": 0.01}
    )
    progress(f"benchmark added in {time.perf_counter() - started:.1f} s")
    return {
        "home": str(home),
        "data": str(data),
        "candidate_id": improved["model_id"],
        "baseline_uri": f"models:/{base['model_name']}/{base['version']}",
        "candidate_uri": f"models:/{improved['model_name']}/{improved['version']}",
    }


# ---- the two sides, each in its own process ------------------------------------------------


def ours(plan: dict[str, Any], seed: int) -> dict[str, Any]:
    """One whole verification through the library (a new seed: a new verification)."""
    from hokusai.config import Settings
    from hokusai.services.model_registry import HokusaiModelRegistry

    started = time.perf_counter()
    registry = HokusaiModelRegistry(settings=Settings(home=Path(plan["home"])))
    result = registry.verify_improvement(plan["candidate_id"], BENCHMARK, seed=seed)
    seconds = time.perf_counter() - started
    assert not result["reused"], "a bench round reused an earlier verification"
    scores = {"accuracy": result["primary"], "roc_auc": result["guardrails"][0]}
    return {
        "seconds": seconds,
        "scores": {
            metric: [comparison["baseline_score"], comparison["candidate_score"]]
            for metric, comparison in scores.items()
        },
        "accepted": result["accepted"],
        "delta_bps": result["primary"]["delta_bps"],
    }


def reference(plan: dict[str, Any], seed: int) -> dict[str, Any]:
    """``mlflow.models.evaluate`` (default classifier evaluator) on the baseline, then the
    candidate, on the same rows read from the same Parquet file."""
    import mlflow
    import pandas as pd

    from hokusai.config import Settings

    started = time.perf_counter()
    settings = Settings(home=Path(plan["home"]))
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    mlflow.set_registry_uri(settings.resolved_registry_uri)
    mlflow.set_experiment("bench-mlflow-evaluate")
    frame = pd.read_parquet(plan["data"])
    scores: dict[str, list[float]] = {"accuracy": [], "roc_auc": []}
    for uri in (plan["baseline_uri"], plan["candidate_uri"]):
        with mlflow.start_run(run_name=f"evaluate-{seed}"):
            result = mlflow.models.evaluate(
                uri,
                frame,
                targets=TARGET,
                model_type="classifier",
                evaluator_config={"log_model_explainability": False},
            )
        scores["accuracy"].append(float(result.metrics["accuracy_score"]))
        scores["roc_auc"].append(float(result.metrics["roc_auc"]))
    return {"seconds": time.perf_counter() - started, "scores": scores}


def _own_peak_rss_mb() -> float:
    """This process's own peak resident memory (``VmHWM``). ``ru_maxrss`` will not do: a child
    starts with its parent's peak, so every side would show the bench's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(side: str, plan: dict[str, Any], seed: int, queue: Any) -> None:
    common.quiet_mlflow()
    measured = (ours if side == "ours" else reference)(plan, seed)
    measured["peak_rss_mb"] = _own_peak_rss_mb()
    queue.put(measured)


def in_child(side: str, plan: dict[str, Any], seed: int) -> dict[str, Any]:
    """Run one side in a fresh (spawned) process; its timings and peak RSS."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(side, plan, seed, queue))
    process.start()
    try:
        measured: dict[str, Any] = queue.get(timeout=1800)
    finally:
        process.join(timeout=60)
    if process.exitcode not in (0, None):
        raise RuntimeError(f"the {side} process exited with {process.exitcode}")
    return measured


# ---- measure and report ---------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with common.temp_home(NAME, keep=args.keep_store) as home:
        plan = prepare(home, args)
        rounds: list[dict[str, Any]] = []
        for index in range(args.rounds):
            progress(f"round {index + 1}/{args.rounds}: ours")
            mine = in_child("ours", plan, seed=index)
            progress(f"round {index + 1}/{args.rounds}: mlflow.models.evaluate on both models")
            theirs = in_child("reference", plan, seed=index)
            rounds.append({"ours": mine, "reference": theirs})
    ours_s = summarize([r["ours"]["seconds"] for r in rounds])
    ref_s = summarize([r["reference"]["seconds"] for r in rounds])
    speedup = ratio(ref_s["median"], ours_s["median"])
    agree = all(
        abs(a - b) < 1e-9
        for r in rounds
        for metric in ("accuracy", "roc_auc")
        for a, b in zip(r["ours"]["scores"][metric], r["reference"]["scores"][metric], strict=True)
    )
    goals = {
        "seconds": goal(
            f"whole verification ≤ {GOAL_SECONDS:.0f} s at {args.rows:,} rows",
            ours_s["median"] <= GOAL_SECONDS,
            median_s=ours_s["median"],
            max_s=GOAL_SECONDS,
        ),
        "speedup": goal(
            f"≥ {GOAL_SPEEDUP:.0f}× faster than mlflow.models.evaluate on both models",
            speedup >= GOAL_SPEEDUP,
            speedup=speedup,
            min=GOAL_SPEEDUP,
        ),
        "scores_agree": goal(
            "our accuracy and ROC AUC equal MLflow's for both models (|Δ| < 1e-9)", agree
        ),
    }
    return {
        "env": common.environment(),
        "params": {
            "rows": args.rows,
            "features": args.features,
            "rounds": args.rounds,
            "train_rows": args.train_rows,
        },
        "ours": {
            "seconds": ours_s,
            "peak_rss_mb": summarize([r["ours"]["peak_rss_mb"] for r in rounds]),
        },
        "reference": {
            "seconds": ref_s,
            "peak_rss_mb": summarize([r["reference"]["peak_rss_mb"] for r in rounds]),
        },
        "speedup": speedup,
        "rounds": rounds,
        "goals": goals,
        "goals_met": all(g["met"] for g in goals.values()),
    }


def report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    params = payload["params"]
    common.print_header(
        f"Verification: {params['rows']:,} rows × {params['features']} features, "
        "two XGBoost models, accuracy + ROC AUC",
        args,
        payload["env"],
    )
    rows = []
    for key, title in (("ours", "verify_improvement"), ("reference", "mlflow.models.evaluate ×2")):
        side = payload[key]
        rows.append(
            [
                title,
                f"{side['seconds']['median']:.2f} s",
                f"{side['seconds']['min']:.2f} s",
                f"{side['peak_rss_mb']['median']:.0f} MB",
            ]
        )
    common.print_table(["", "median", "min", "peak RSS (median)"], rows)
    print(f"speedup (reference / ours, medians): {fmt_ratio(payload['speedup'])}")
    common.print_goals(payload["goals"])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return common.run_main(NAME, args, measure, report)


if __name__ == "__main__":
    sys.exit(main())
