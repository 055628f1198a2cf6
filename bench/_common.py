"""Helpers shared by the benchmark scripts: statistics, report printing, environment, results,
the argument parser, temporary stores. See bench/README.md."""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

_DISTRIBUTIONS = ("mlflow", "scikit-learn", "skops", "numpy", "scipy", "pandas", "SQLAlchemy")


# ---- statistics ----------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation between ranks (numpy's default).

    With few samples the high percentiles are close to the maximum: p99 of 30 samples is
    essentially the slowest one, which is what it honestly is.
    """
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(samples: Sequence[float]) -> dict[str, float | int]:
    """Count, min, median (= p50), p90, p99, max, mean and stdev of ``samples`` (seconds)."""
    if not samples:
        raise ValueError("summary of no samples")
    return {
        "n": len(samples),
        "min": min(samples),
        "median": statistics.median(samples),
        "p50": percentile(samples, 50),
        "p90": percentile(samples, 90),
        "p99": percentile(samples, 99),
        "max": max(samples),
        "mean": statistics.fmean(samples),
        "stdev": statistics.stdev(samples) if len(samples) > 1 else 0.0,
    }


def summaries(**samples: Sequence[float]) -> dict[str, Any]:
    """The summary of each non-empty sample list."""
    return {key: summarize(values) for key, values in samples.items() if values}


def timings(samples: Sequence[float]) -> dict[str, Any]:
    """``{"timings_s": samples, "stats_s": summarize(samples)}``."""
    return {"timings_s": samples, "stats_s": summarize(samples)}


def timed_calls(call: Callable[[], Any], count: int) -> list[float]:
    """Seconds each of ``count`` calls of ``call`` took."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; infinity when the denominator is zero."""
    return numerator / denominator if denominator else math.inf


# ---- formatting ----------------------------------------------------------------------------


def fmt_ms(seconds: float) -> str:
    """Seconds as milliseconds with sensible precision."""
    ms = seconds * 1000
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def fmt_ratio(value: float) -> str:
    return f"{value:.3f}×"


def yes(flag: Any) -> str:
    return "yes" if flag else "NO"


def fmt_value(key: str, value: Any) -> str:
    """A figure by its key's unit: ``*_per_s`` a rate, ``*_s`` seconds, other floats ratios."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return yes(value)
    if isinstance(value, (str, list)):
        return str(value)
    if key.endswith("_per_s"):
        return f"{value:,.0f}/s"
    if key.endswith("_s"):
        return fmt_ms(value)
    return fmt_ratio(value) if isinstance(value, float) else f"{value:,}"


def stat_ms(summary: Mapping[str, Any] | None, key: str) -> str:
    """``summary[key]`` in ms; "—" when there is no summary."""
    return fmt_ms(summary[key]) if summary else "—"


def fmt_stats(summary: Mapping[str, Any] | None, *keys: str) -> str:
    """``median 1.2 ms, p99 3.4 ms`` (for ``keys`` median and p99)."""
    return ", ".join(f"{key} {stat_ms(summary, key)}" for key in keys)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a plain, aligned text table (first column left-aligned, the rest right)."""
    widths = [max(len(str(cell)) for cell in col) for col in zip(headers, *rows, strict=True)]
    for row in [headers, ["-" * w for w in widths], *rows]:
        cells = [
            (str(c).rjust if i else str(c).ljust)(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())


def progress(message: str) -> None:
    """A progress note on stderr (the result table goes to stdout)."""
    print(f"  … {message}", file=sys.stderr, flush=True)


def print_header(title: str, args: argparse.Namespace, env: Mapping[str, Any], *more: str) -> None:
    """Title, versions and CPUs (and ``more``), load averages at start and end."""
    about = [f"python {env['python']}", f"mlflow {env['mlflow']}", f"scikit-learn {env['sklearn']}"]
    quick = "  [--quick: indicative only]" if args.quick else ""
    print(title)
    print(", ".join([*about, f"{env['cpu_count']} CPUs", *more]) + quick)
    print(
        f"load average (1/5/15 min) at start {args.load_at_start}, at end "
        f"{env['load_average_at_end']}\n"
    )


_NOT_SHOWN = {"description", "met", "max_s", "max", "min", "min_per_s", "target", "target_s"}


def print_goals(goals: Mapping[str, Mapping[str, Any]], word: str = "goal") -> None:
    """One line per goal: its description, its figures (not its threshold), met or not."""
    for g in goals.values():
        shown = ", ".join(f"{k} {fmt_value(k, v)}" for k, v in g.items() if k not in _NOT_SHOWN)
        verdict = ("met" if g["met"] else "NOT met") if word == "goal" else yes(g["met"])
        print(f"{word}: {g['description']}{': ' + shown if shown else ''} → {verdict}")


# ---- environment and results ---------------------------------------------------------------


def package_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        command = ["git", *args]
        out = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def http_parser() -> str:
    """What uvicorn's ``--http auto`` picks: httptools when installed, else h11."""
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (other work on the machine skews every number)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def environment() -> dict[str, Any]:
    """What the numbers depend on: interpreter, library versions, machine."""
    try:
        usable_cpus: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        usable_cpus = None
    src_status = _git("status", "--porcelain", "--", "src")
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "cpu_count_usable": usable_cpus,
        "mlflow": package_version("mlflow"),
        "sklearn": package_version("scikit-learn"),
        "packages": {name: package_version(name) for name in _DISTRIBUTIONS},
        "hokusai": package_version("hokusai-model-registry"),
        "git_commit": _git("rev-parse", "HEAD") or None,
        "git_uncommitted_changes_in_src": None if src_status is None else src_status != "",
        "mlflow_telemetry_disabled": os.environ.get("MLFLOW_DISABLE_TELEMETRY"),
        "load_average_at_end": load_average(),
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    """Non-finite floats as None, all the way down (``json.dumps`` never passes a float to
    its ``default``, and with ``allow_nan=False`` it raises on one)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    return [_finite(item) for item in value] if isinstance(value, (list, tuple)) else value


def write_results(name: str, payload: Mapping[str, Any], directory: Path | None = None) -> Path:
    """Write ``<directory>/<name>.json`` atomically (a ``.tmp`` file renamed into place)."""
    directory = directory or RESULTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.json"
    tmp = target.with_suffix(".json.tmp")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    document = _finite({"benchmark": name, "generated_at": now, **payload})
    text = json.dumps(document, indent=2, default=_json_default, allow_nan=False)
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def run_main(
    name: str,
    args: argparse.Namespace,
    measure: Callable[[argparse.Namespace], dict[str, Any]],
    report: Callable[[dict[str, Any], argparse.Namespace], None],
) -> int:
    """Quiet MLflow, ``measure(args)`` (``args.load_at_start`` set), write the results with
    ``duration_s`` and the overview beside them (``summary.md``), print the report; exit status
    1 if ``--check`` and a goal is not met."""
    started = time.perf_counter()
    args.load_at_start = load_average()
    quiet_mlflow(verbose=args.verbose)
    payload = measure(args)
    payload["duration_s"] = time.perf_counter() - started
    path = write_results(name, payload, args.results_dir)
    from summary import write_summary  # the one-page overview, never behind the results

    overview = write_summary(path.parent)
    report(payload, args)
    print(f"all goals met: {yes(payload['goals_met'])}")
    print(f"results: {path}  ({payload['duration_s']:.0f} s); overview: {overview}")
    return 1 if args.check and not payload["goals_met"] else 0


# ---- stores and MLflow noise ---------------------------------------------------------------


@contextlib.contextmanager
def temp_home(prefix: str, *, keep: bool = False, directory: Path | None = None) -> Iterator[Path]:
    """A fresh folder (in ``directory`` or the system's temporary folder) for one benchmark's
    MLflow store; removed afterwards unless ``keep``."""
    home = Path(tempfile.mkdtemp(prefix=f"hokusai-bench-{prefix}-", dir=directory))
    try:
        yield home
    finally:
        if keep:
            progress(f"kept the store in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def local_path(uri: str) -> Path:
    """A ``file:`` URI (or a plain path) as a local path."""
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(uri)


def quiet_mlflow(*, verbose: bool = False) -> None:
    """Silence MLflow's chatter and warnings (both sides alike: no ratio changes), telemetry off
    unless set, no inherited tracking URIs. Call it before the first registry is created."""
    import logging
    import warnings

    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(variable, None)
    if verbose:
        return
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)
    from mlflow.utils import logging_utils

    # ``disable_logging()`` is not enough: log_model re-enables the stream on its way out.
    # MLflow's eprint() and its log handler both write through this one stream object.
    stream: Any = logging_utils.MLFLOW_LOGGING_STREAM
    stream.write = len
    stream.flush = lambda: None
    for name in ("mlflow", "alembic", "skops"):
        logging.getLogger(name).setLevel(logging.ERROR)


class Parser(argparse.ArgumentParser):
    """The options every script takes, sizes that ``--quick`` shrinks (:meth:`sized`) and
    :meth:`require`."""

    def __init__(self, doc: str | None) -> None:
        super().__init__(description=doc.split("\n\n")[0] if doc else None)
        flag = {"action": "store_true"}
        self.add_argument("--quick", **flag, help="smoke run: few repetitions, small sizes")
        self.add_argument("--keep-store", **flag, help="keep the temporary MLflow store")
        where = RESULTS_DIR.relative_to(REPO_ROOT)
        self.add_argument(
            "--results-dir",
            type=Path,
            default=RESULTS_DIR,
            help=f"where to write <name>.json (default {where})",
        )
        self.add_argument("--check", **flag, help="exit with status 1 when a goal is not met")
        self.add_argument("--verbose", **flag, help="let MLflow print its messages and warnings")
        self.sizes: dict[str, tuple[Any, Any]] = {}

    def sized(self, flag: str, quick: Any, full: Any, help: str, type: Any = int) -> None:
        """An option defaulting to ``quick`` under ``--quick``, else to ``full``."""
        shown = [",".join(map(str, v)) if isinstance(v, list) else v for v in (full, quick)]
        help = f"{help} (default {shown[0]}; --quick: {shown[1]})"
        self.sizes[self.add_argument(flag, type=type, default=None, help=help).dest] = (quick, full)

    def parse(self, argv: Sequence[str] | None) -> argparse.Namespace:
        args = self.parse_args(argv)
        for name, (quick, full) in self.sizes.items():
            if getattr(args, name) is None:
                setattr(args, name, quick if args.quick else full)
        return args

    def require(self, condition: bool, message: str) -> None:
        if not condition:
            self.error(message)


def comma_ints(text: str) -> list[int]:
    """``"1,8"`` → ``[1, 8]`` (an argparse type)."""
    return [int(part) for part in text.split(",")]


def goal(description: str, met: bool, **fields: Any) -> dict[str, Any]:
    """A goal's record in the results: description, its figures, whether it is met."""
    return {"description": description, **fields, "met": met}
