"""Helpers shared by the benchmark scripts: statistics, environment, results, temp stores.

Every benchmark runs against a fresh, throw-away MLflow store (a SQLite database and an artifact
folder under a temporary directory), so results never depend on, or pollute, a developer's
``./.hokusai``. Results are printed as a short table and written to
``bench/results/<name>.json`` for machines (CI trend lines, release notes).
"""

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


def timings(samples: Sequence[float]) -> dict[str, Any]:
    """``{"timings_s": samples, "stats_s": summarize(samples)}``."""
    return {"timings_s": samples, "stats_s": summarize(samples)}


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; infinity when the denominator is zero."""
    return numerator / denominator if denominator else math.inf


# ---- formatting ----------------------------------------------------------------------------


def fmt_ms(seconds: float) -> str:
    """Seconds as milliseconds with sensible precision."""
    ms = seconds * 1000
    if ms >= 1000:
        return f"{ms:,.0f} ms"
    if ms >= 100:
        return f"{ms:.0f} ms"
    return f"{ms:.1f} ms"


def fmt_ratio(value: float) -> str:
    return f"{value:.3f}×"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a plain, aligned text table (first column left-aligned, the rest right)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def progress(message: str) -> None:
    """A progress note on stderr (the result table goes to stdout)."""
    print(f"  … {message}", file=sys.stderr, flush=True)


def print_load(env: Mapping[str, Any]) -> None:
    print(
        f"load average (1/5/15 min) at start {env.get('load_average_at_start')}, "
        f"at end {env.get('load_average_at_end')}"
    )


def print_footer(payload: Mapping[str, Any], path: Path) -> None:
    print(f"all goals met: {'yes' if payload['goals_met'] else 'NO'}")
    print(f"results: {path}  ({payload['duration_s']:.0f} s)")


# ---- environment and results ---------------------------------------------------------------


def package_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
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
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def write_results(name: str, payload: Mapping[str, Any], directory: Path | None = None) -> Path:
    """Write ``<directory>/<name>.json`` atomically (a ``.tmp`` file renamed into place)."""
    directory = directory or RESULTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.json"
    tmp = target.with_suffix(".json.tmp")
    document = {
        "benchmark": name,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **payload,
    }
    tmp.write_text(
        json.dumps(document, indent=2, default=_json_default, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    os.replace(tmp, target)
    return target


def finish(
    name: str, args: argparse.Namespace, payload: Mapping[str, Any], report: Callable[[Path], None]
) -> int:
    """Write the results, print the report; exit status 1 if ``--check`` and a goal is not met."""
    path = write_results(name, payload, args.results_dir)
    report(path)
    return 1 if args.check and not payload["goals_met"] else 0


# ---- stores and MLflow noise ---------------------------------------------------------------


@contextlib.contextmanager
def temp_home(prefix: str, *, keep: bool = False, directory: Path | None = None) -> Iterator[Path]:
    """A fresh folder for one benchmark's MLflow store; removed afterwards unless ``keep``.

    It is made in ``directory`` when given, else in the system's temporary folder.
    """
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
    """Silence MLflow's per-call chatter ("Created version …", INFO logs) and warnings.

    Both sides of every comparison run with the same settings, so this changes no ratio; it
    only keeps the output readable. Call it before the first registry is created. Errors still
    surface as exceptions.
    """
    import logging
    import warnings

    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    # MLflow's usage telemetry posts from background threads (and retries without network):
    # noise for a benchmark. An explicit MLFLOW_DISABLE_TELEMETRY=false still wins.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(variable, None)  # each benchmark uses only its own temp store
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
    """``--quick``, ``--keep-store``, ``--results-dir``, ``--check`` and ``--verbose``, and
    sizes that ``--quick`` shrinks (:meth:`sized`)."""

    def __init__(self, doc: str | None) -> None:
        super().__init__(description=doc.split("\n\n")[0] if doc else None)
        self.add_argument(
            "--quick",
            action="store_true",
            help="smoke run: few repetitions and small sizes; numbers are indicative only",
        )
        self.add_argument(
            "--keep-store",
            action="store_true",
            help="do not delete the temporary MLflow store (its path is printed)",
        )
        self.add_argument(
            "--results-dir",
            type=Path,
            default=RESULTS_DIR,
            help=f"where to write <name>.json (default: {RESULTS_DIR.relative_to(REPO_ROOT)})",
        )
        self.add_argument(
            "--check",
            action="store_true",
            help="exit with status 1 when a goal is not met (default: report only)",
        )
        self.add_argument(
            "--verbose",
            action="store_true",
            help="let MLflow print its own messages and warnings",
        )
        self.sizes: dict[str, tuple[Any, Any]] = {}

    def sized(self, flag: str, quick: Any, full: Any, help: str, type: Any = int) -> None:
        """An option defaulting to ``quick`` under ``--quick``, else to ``full``."""
        self.sizes[self.add_argument(flag, type=type, default=None, help=help).dest] = (quick, full)

    def parse(self, argv: Sequence[str] | None) -> argparse.Namespace:
        args = self.parse_args(argv)
        for name, (quick, full) in self.sizes.items():
            if getattr(args, name) is None:
                setattr(args, name, quick if args.quick else full)
        return args


def comma_ints(text: str) -> list[int]:
    """``"1,8"`` → ``[1, 8]`` (an argparse type)."""
    return [int(part) for part in text.split(",")]


def goal(description: str, met: bool, **fields: Any) -> dict[str, Any]:
    """A goal's record in the results: description, its figures, whether it is met."""
    return {"description": description, **fields, "met": met}
