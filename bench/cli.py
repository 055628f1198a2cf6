"""CLI latency: wall time of ``hokusai`` commands a person waits on, each a fresh process.

``hokusai --help``, ``models get <uuid>``, ``models lineage <model_id>`` and ``contributors
models <address>`` on a small embedded registry (a baseline and an improvement registered here),
interleaved, median of ``--runs``; beside them the floors no read through MLflow can go under
(the interpreter; importing MLflow and reading one logged model and its version through its
client) and where each command's import time goes. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _common as common
from _common import fmt_ms, goal, progress, summarize, timings, yes

NAME = "cli"
GOAL_HELP_S = 0.3
GOAL_READ_S = 0.8
MODEL_TYPE = "bench_cli"
CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
SRC = common.REPO_ROOT / "src"
# key: (shown as, goal in seconds)
COMMANDS = {
    "help": ("hokusai --help", GOAL_HELP_S),
    "models_get": ("hokusai models get <uuid>", GOAL_READ_S),
    "models_lineage": ("hokusai models lineage <model_id>", GOAL_READ_S),
    "contributors_models": ("hokusai contributors models <address>", GOAL_READ_S),
}
FLOORS = {
    "python": "python -c pass",
    "mlflow_read": "bare MLflow read: import, client, logged model + version",
}
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \| (\s*)(\S+)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.Parser(__doc__)
    parser.sized("--runs", 3, 11, "timed runs of each command (interleaved)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each command")
    parser.add_argument(
        "--no-importtime", action="store_true", help="skip the -X importtime breakdown"
    )
    args = parser.parse(argv)
    parser.require(args.runs >= 1 and args.warmup >= 0, "--runs must be ≥ 1, --warmup ≥ 0")
    return args


def environment_for(home: Path) -> dict[str, str]:
    """A user's environment (no HOKUSAI_*/MLFLOW_* inherited), this checkout's ``src`` first on
    the path, the store under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    env["HOKUSAI_HOME"] = str(home)
    env["COLUMNS"] = "100"
    return env


def register_models(home: Path) -> dict[str, str]:
    """A baseline and one improvement of a tiny RandomForest, through the library."""
    progress("registering a baseline and an improvement")
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    from hokusai.config import Settings
    from hokusai.services.model_registry import HokusaiModelRegistry

    features, target = load_iris(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(features, target)
    registry = HokusaiModelRegistry(settings=Settings(home=home), announcer=None)
    example = features.head(2)
    base = registry.register_baseline(model, MODEL_TYPE, {"rows": 150}, input_example=example)
    better = registry.register_improved_model(
        model, base["model_id"], {"accuracy": 0.02}, CONTRIBUTOR, input_example=example
    )
    return {
        "uuid": str(better["model_uuid"]),
        "model_id": better["model_id"],
        "tracking_uri": registry.tracking_uri,
    }


def commands_for(found: dict[str, str]) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "hokusai.cli.main"]
    name, version = found["model_id"].split("/")
    mlflow_read = (
        f"from mlflow import MlflowClient; client = MlflowClient({found['tracking_uri']!r}); "
        f"client.get_logged_model({found['uuid']!r}); "
        f"client.get_model_version({name!r}, {version!r})"
    )
    return {
        "help": [*cli, "--help"],
        "models_get": [*cli, "models", "get", found["uuid"]],
        "models_lineage": [*cli, "models", "lineage", found["model_id"]],
        "contributors_models": [*cli, "contributors", "models", CONTRIBUTOR],
        "python": [sys.executable, "-c", "pass"],
        "mlflow_read": [sys.executable, "-c", mlflow_read],
    }


def timed_run(command: list[str], env: dict[str, str], expect: str | None) -> float:
    """Wall seconds of one run; the run must succeed and print ``expect``."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or (expect is not None and expect not in done.stdout):
        raise RuntimeError(f"{command[3:]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def import_breakdown(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One run under ``-X importtime``: total import time and its split by top-level package
    (self times summed), largest first."""
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    by_package: Counter[str] = Counter()
    for match in _IMPORT_LINE.finditer(done.stderr):
        by_package[match.group(3).split(".")[0]] += int(match.group(1))
    total = sum(by_package.values()) / 1e6
    top = {name: us / 1e6 for name, us in by_package.most_common(8)}
    return {"total_s": total, "top_packages_s": top}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with common.temp_home(NAME, keep=args.keep_store) as home:
        found = register_models(home)
        env = environment_for(home)
        commands = commands_for(found)
        expect = {
            "help": "Usage: hokusai",
            "models_get": found["model_id"],
            "models_lineage": found["model_id"],
            "contributors_models": found["model_id"],
        }
        progress(f"warm-up: {args.warmup} run(s) of each")
        for _ in range(args.warmup):
            for key, command in commands.items():
                timed_run(command, env, expect.get(key))
        samples: dict[str, list[float]] = {key: [] for key in commands}
        for round_ in range(args.runs):
            progress(f"round {round_ + 1}/{args.runs}")
            for key, command in commands.items():  # interleaved: drift hits all alike
                samples[key].append(timed_run(command, env, expect.get(key)))
        imports = {}
        if not args.no_importtime:
            progress("import time by package (-X importtime, one run each)")
            imports = {key: import_breakdown(commands[key], env) for key in COMMANDS}

    shown = {key: [c.replace(str(home), "<tmp>") for c in cmd] for key, cmd in commands.items()}
    results = {
        key: {
            "shown_as": COMMANDS[key][0],
            "command": shown[key],
            "goal_s": COMMANDS[key][1],
            **timings(samples[key]),
        }
        for key in COMMANDS
    }
    floors = {
        key: {"shown_as": FLOORS[key], "command": shown[key], **timings(samples[key])}
        for key in FLOORS
    }
    goals = {
        key: goal(
            f"{COMMANDS[key][0]} median ≤ {COMMANDS[key][1] * 1000:.0f} ms",
            summarize(samples[key])["median"] <= COMMANDS[key][1],
            median_s=summarize(samples[key])["median"],
        )
        for key in COMMANDS
    }
    return {
        "description": (
            "Wall time of read-only hokusai commands, each a fresh process "
            "(python -m hokusai.cli.main with this checkout's src first on PYTHONPATH), on an "
            "embedded store holding one baseline and one improvement; interleaved rounds."
        ),
        "environment": common.environment() | {"load_average_at_start": args.load_at_start},
        "parameters": {
            "quick": args.quick,
            "runs": args.runs,
            "warmup": args.warmup,
            "order": "interleaved: each round runs every command once",
            "store": "fresh sqlite:///<tmp>/mlflow.db + <tmp>/artifacts, 2 versions",
            "environment": "caller's, minus HOKUSAI_* and MLFLOW_*; COLUMNS=100",
        },
        "commands": results,
        "floors": floors,
        "import_time": imports,
        "goals": goals,
        "goals_met": all(g["met"] for g in goals.values()),
    }


def report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    params = payload["parameters"]
    more = f"{params['runs']} runs each, interleaved"
    common.print_header("CLI latency (fresh process per run)", args, payload["environment"], more)
    rows = []
    for result in payload["commands"].values():
        stats = result["stats_s"]
        met = yes(stats["median"] <= result["goal_s"])
        times = [fmt_ms(stats[q]) for q in ("median", "p90", "min")]
        rows.append([result["shown_as"], *times, f"≤ {fmt_ms(result['goal_s'])}", met])
    for floor in payload["floors"].values():
        stats = floor["stats_s"]
        times = [fmt_ms(stats[q]) for q in ("median", "p90", "min")]
        rows.append([f"floor: {floor['shown_as']}", *times, "—", "—"])
    common.print_table(["command", "median", "p90", "min", "goal", "met"], rows)
    if payload["import_time"]:
        print("\nimport time (one run under -X importtime; self time by top-level package):")
        for key, found in payload["import_time"].items():
            top = ", ".join(f"{name} {fmt_ms(s)}" for name, s in found["top_packages_s"].items())
            print(f"  {COMMANDS[key][0]}: {fmt_ms(found['total_s'])} — {top}")
    print()
    common.print_goals(payload["goals"])


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_main(NAME, parse_args(argv), run, report)


if __name__ == "__main__":
    sys.exit(main())
