"""Benchmarks: named, immutable evaluation datasets stored in MLflow.

A benchmark is one run of the ``hokusai-benchmarks`` experiment: its rows are a Parquet
artifact of that run, an MLflow dataset input (context ``benchmark``) makes MLflow show their
digest, schema and row count, and the run's tags hold the definition (target, metric, direction,
guardrails) and the content hash.

The content hash identifies the data, not the file it came from: the same rows as CSV or
Parquet, in any row or column order, hash the same. Columns are sorted by name; a column whose
values are all numbers is read as float64 (CSV and Parquet disagree on int vs float, and a
CSV reader cannot tell a string of digits from a number), anything else as text; each row is
serialised as JSON and hashed; the sorted row hashes are hashed once more with the header.
Duplicate rows count.

A benchmark never changes once added: adding a name again with the same content and
definition returns the stored benchmark; with anything different it raises
:class:`~hokusai.errors.BenchmarkConflictError` (new data needs a new name, so a score against
a benchmark always means the same thing). Everything is validated before MLflow is touched, and
a run left half-written by a failure is deleted.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import math
import re
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hokusai.config import Settings, get_settings
from hokusai.errors import (
    BenchmarkConflictError,
    BenchmarkNotFoundError,
    HokusaiError,
    InvalidBenchmarkError,
    InvalidDatasetError,
)
from hokusai.registry.backend import translate_mlflow_error
from hokusai.registry.experiments import ensure_experiment

__all__ = [
    "BENCHMARK_EXPERIMENT",
    "METRIC_DIRECTIONS",
    "Benchmark",
    "BenchmarkStore",
    "check_definition",
    "content_hash",
    "parse_guardrail",
    "read_frame",
]

BENCHMARK_EXPERIMENT = "hokusai-benchmarks"
METRIC_DIRECTIONS: Mapping[str, str] = {
    "accuracy": "higher",
    "balanced_accuracy": "higher",
    "f1": "higher",
    "roc_auc": "higher",
    "log_loss": "lower",
    "rmse": "lower",
    "mae": "lower",
}
_DIRECTIONS = ("higher", "lower")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_TAG = "hokusai.benchmark."
_ROWS_ARTIFACT = "benchmark"
_ROWS_FILE = "rows.parquet"
_ROW_GROUP = 100_000


@dataclass(frozen=True)
class Benchmark:
    """A stored benchmark: its definition, its data's identity, and where MLflow keeps it."""

    name: str
    content_hash: str
    target: str
    metric: str
    direction: str
    guardrails: dict[str, float]
    num_rows: int
    columns: list[str]
    artifact_uri: str
    run_id: str
    dataset_digest: str
    created_at: str = field(default="")

    def to_dict(self) -> dict[str, Any]:
        """The benchmark as ``--json`` prints it."""
        return asdict(self)


# ---- reading and hashing --------------------------------------------------------------------


def read_frame(data_path: str | Path) -> Any:
    """The rows of a ``.csv`` or ``.parquet`` file as a DataFrame; anything else, or a file
    that cannot be read, is an :class:`InvalidDatasetError`."""
    import pandas as pd

    path = Path(data_path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise InvalidDatasetError(f"{str(path)!r} is not a .csv or .parquet file.")
    if not path.is_file():
        raise InvalidDatasetError(f"{str(path)!r} does not exist or is not a file.")
    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError as exc:
        raise InvalidDatasetError(f"{str(path)!r} has no rows.") from exc
    except Exception as exc:  # any reader failure is the file's fault
        raise InvalidDatasetError(
            f"{str(path)!r} cannot be read as {suffix[1:]}: {type(exc).__name__}: {exc}"
        ) from exc
    if len(frame.columns) == 0 or len(frame) == 0:
        raise InvalidDatasetError(f"{str(path)!r} has no rows.")
    if len(set(map(str, frame.columns))) != len(frame.columns):
        raise InvalidDatasetError(f"{str(path)!r} has duplicate column names.")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _canonical_column(values: Any) -> list[Any]:
    """One column as JSON-ready values: floats (``None`` for missing) when every present value
    is a number, strings (``None`` for missing) otherwise."""
    import pandas as pd

    missing = values.isna()
    try:
        numbers = pd.to_numeric(values, errors="raise").astype("float64")
    except (ValueError, TypeError):
        return [None if gone else str(v) for v, gone in zip(values, missing, strict=True)]
    return [None if gone else _float(v) for v, gone in zip(numbers, missing, strict=True)]


def _float(value: float) -> float | str:
    # JSON has no NaN/inf; name them so they hash distinctly from missing values.
    return value if math.isfinite(value) else repr(value)


def content_hash(frame: Any) -> str:
    """``0x`` + SHA-256 of ``frame``'s content, independent of row order, column order and
    the file format it was read from."""
    names = sorted(frame.columns)
    columns = [_canonical_column(frame[name]) for name in names]
    row_hashes = sorted(
        hashlib.sha256(
            json.dumps(list(row), separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
        for row in zip(*columns, strict=True)
    )
    digest = hashlib.sha256(json.dumps(names, ensure_ascii=False).encode())
    for row_hash in row_hashes:
        digest.update(row_hash.encode())
    return "0x" + digest.hexdigest()


# ---- validating a definition ----------------------------------------------------------------


def parse_guardrail(text: str) -> tuple[str, float]:
    """``METRIC:TOLERANCE`` → ``(metric, tolerance)``: a known metric and a finite float
    ≥ 0, how much worse than the baseline a candidate may be on that metric."""
    metric, sep, raw = text.partition(":")
    if not sep or not metric or not raw:
        raise InvalidBenchmarkError(f"Guardrail {text!r} is not METRIC:TOLERANCE.")
    _check_metric(metric, f"in guardrail {text!r}")
    try:
        tolerance = float(raw)
    except ValueError:
        raise InvalidBenchmarkError(
            f"Guardrail {text!r}: tolerance {raw!r} is not a number."
        ) from None
    if not math.isfinite(tolerance) or tolerance < 0:
        raise InvalidBenchmarkError(f"Guardrail {text!r}: tolerance must be a finite number ≥ 0.")
    return metric, tolerance


def _check_metric(metric: str, where: str = "") -> None:
    if metric not in METRIC_DIRECTIONS:
        known = ", ".join(METRIC_DIRECTIONS)
        raise InvalidBenchmarkError(
            f"Unknown metric {metric!r}{' ' + where if where else ''}; known: {known}."
        )


def _guardrails(guardrails: Iterable[str] | Mapping[str, float]) -> dict[str, float]:
    items = (
        [f"{k}:{v}" for k, v in guardrails.items()]
        if isinstance(guardrails, Mapping)
        else list(guardrails)
    )
    parsed: dict[str, float] = {}
    for text in items:
        metric, tolerance = parse_guardrail(text)
        if metric in parsed:
            raise InvalidBenchmarkError(f"Guardrail on {metric!r} given twice.")
        parsed[metric] = tolerance
    return dict(sorted(parsed.items()))


def _check_target(frame: Any, target: str, data_path: str | Path) -> None:
    if target not in frame.columns:
        raise InvalidDatasetError(
            f"Target column {target!r} is not in {str(data_path)!r} "
            f"(columns: {', '.join(frame.columns)})."
        )
    values = frame[target]
    empty = values.isna() | values.astype(str).str.strip().eq("")
    if bool(empty.any()):
        raise InvalidDatasetError(
            f"Target column {target!r} has {int(empty.sum())} empty or NaN value(s)."
        )


def check_definition(
    name: str,
    metric: str,
    direction: str | None = None,
    guardrails: Iterable[str] | Mapping[str, float] = (),
) -> tuple[str, dict[str, float]]:
    """Validate a benchmark's definition without reading its data or touching MLflow; the
    direction (the metric's default when None) and the parsed guardrails."""
    if not _NAME_RE.fullmatch(name or ""):
        raise InvalidBenchmarkError(
            f"Benchmark name {name!r} must be 1-100 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit."
        )
    _check_metric(metric)
    direction = direction or METRIC_DIRECTIONS[metric]
    if direction not in _DIRECTIONS:
        raise InvalidBenchmarkError(f"Direction {direction!r} is not 'higher' or 'lower'.")
    rails = _guardrails(guardrails)
    return direction, rails


def _same_or_conflict(existing: Benchmark, wanted: tuple[Any, ...]) -> None:
    have = (
        existing.content_hash,
        existing.target,
        existing.metric,
        existing.direction,
        existing.guardrails,
    )
    if wanted != have:
        what = "content" if wanted[0] != existing.content_hash else "settings"
        raise BenchmarkConflictError(
            f"Benchmark {existing.name!r} exists with other {what} ({existing.content_hash}); "
            "benchmarks never change: add it under a new name."
        )


def _dataset_source(artifact_uri: str, tracking_uri: str) -> Any:
    """What MLflow records as the dataset's source: the artifact URI, or — for a tracking
    server's proxied ``mlflow-artifacts:`` URI, which MLflow's dataset sources do not resolve —
    the HTTP address the server serves that artifact at."""
    from urllib.parse import urlparse

    from mlflow.data.dataset_source_registry import resolve_dataset_source

    try:
        resolve_dataset_source(artifact_uri)
        return artifact_uri
    except Exception:
        if not (
            artifact_uri.startswith("mlflow-artifacts:")
            and tracking_uri.startswith(("http://", "https://"))
        ):
            raise
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    path = urlparse(artifact_uri).path.lstrip("/")
    return HTTPDatasetSource(  # type: ignore[no-untyped-call]
        f"{tracking_uri.rstrip('/')}/api/2.0/mlflow-artifacts/artifacts/{path}"
    )


# ---- the store ------------------------------------------------------------------------------


class BenchmarkStore:
    """Benchmarks on the MLflow tracking store the registry uses (same settings, same URIs)."""

    def __init__(self, settings: Settings | None = None, *, client: Any = None) -> None:
        from mlflow import MlflowClient

        self.settings = settings or get_settings()
        self.tracking_uri = self.settings.resolved_tracking_uri
        if self.settings.is_embedded:
            self.settings.home_path.mkdir(parents=True, exist_ok=True)
        self._client = client or MlflowClient(tracking_uri=self.tracking_uri)
        self._experiment_id: str | None = None

    def _experiment(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = ensure_experiment(
                self._client, BENCHMARK_EXPERIMENT, self.settings.resolved_artifact_location
            )
        return self._experiment_id

    def add(
        self,
        name: str,
        data_path: str | Path,
        target: str,
        metric: str,
        direction: str | None = None,
        guardrails: Sequence[str] | Mapping[str, float] = (),
    ) -> Benchmark:
        """Add benchmark ``name`` from a CSV or Parquet file; idempotent for the same content
        and definition, :class:`BenchmarkConflictError` for a different one under that name."""
        direction, rails = check_definition(name, metric, direction, guardrails)
        frame = read_frame(data_path)
        _check_target(frame, target, data_path)
        digest = content_hash(frame)

        wanted = (digest, target, metric, direction, rails)
        existing = self._find(name)
        if existing is None:
            recorded = self._record(
                name, frame, data_path, digest, target, metric, direction, rails
            )
            existing = self.get(name)
            if existing.run_id == recorded:
                return existing
            # Another process added this name meanwhile, and the first run counts: ours goes.
            self._discard(recorded)
        _same_or_conflict(existing, wanted)
        return existing

    def _record(
        self,
        name: str,
        frame: Any,
        data_path: str | Path,
        digest: str,
        target: str,
        metric: str,
        direction: str,
        rails: dict[str, float],
    ) -> str:
        """Record a new benchmark run; its run id."""
        from mlflow.data.pandas_dataset import from_pandas
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        tags = {
            f"{_TAG}name": name,
            f"{_TAG}content_hash": digest,
            f"{_TAG}target": target,
            f"{_TAG}metric": metric,
            f"{_TAG}direction": direction,
            f"{_TAG}guardrails": json.dumps(rails, sort_keys=True),
            f"{_TAG}num_rows": str(len(frame)),
            f"{_TAG}columns": json.dumps(list(frame.columns)),
            f"{_TAG}source": Path(data_path).name,
        }
        run_id: str | None = None
        try:
            run = self._client.create_run(self._experiment(), run_name=name, tags=tags)
            run_id = run.info.run_id
            for key in ("target", "metric", "direction"):
                self._client.log_param(run_id, key, tags[f"{_TAG}{key}"])
            with tempfile.TemporaryDirectory(prefix="hokusai-benchmark-") as tmp:
                rows = Path(tmp) / _ROWS_FILE
                # Row groups of _ROW_GROUP rows: a verification streams the rows, and a reader
                # decodes a whole row group at a time.
                frame.to_parquet(rows, index=False, row_group_size=_ROW_GROUP)
                self._client.log_artifact(run_id, str(rows), artifact_path=_ROWS_ARTIFACT)
            artifact_uri = f"{run.info.artifact_uri.rstrip('/')}/{_ROWS_ARTIFACT}/{_ROWS_FILE}"
            with warnings.catch_warnings():  # schema hints meant for model signatures
                warnings.simplefilter("ignore")
                dataset = from_pandas(
                    frame,
                    source=_dataset_source(artifact_uri, self.tracking_uri),
                    targets=target,
                    name=name,
                )
            self._client.log_inputs(
                run_id,
                datasets=[
                    DatasetInput(
                        dataset=dataset._to_mlflow_entity(),
                        tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value="benchmark")],
                    )
                ],
            )
            self._client.set_tag(run_id, f"{_TAG}artifact_uri", artifact_uri)
            self._client.set_tag(run_id, f"{_TAG}dataset_digest", dataset.digest)
            self._client.set_terminated(run_id, "FINISHED")
        except Exception as exc:
            if run_id is not None:
                self._discard(run_id)
            raise translate_mlflow_error(exc, f"adding benchmark {name!r}") from exc
        return run_id

    def _discard(self, run_id: str) -> None:
        with contextlib.suppress(Exception):  # the original failure is what gets reported
            self._client.delete_run(run_id)

    def get(self, name: str) -> Benchmark:
        """Benchmark ``name``, or :class:`BenchmarkNotFoundError`."""
        found = self._find(name)
        if found is None:
            raise BenchmarkNotFoundError(f"No benchmark is named {name!r}.")
        return found

    def list(self) -> builtins.list[Benchmark]:
        """Every benchmark, by name."""
        return sorted(
            (b for b in (self._to_benchmark(r) for r in self._runs()) if b is not None),
            key=lambda b: b.name,
        )

    def _find(self, name: str) -> Benchmark | None:
        escaped = name.replace("'", "\\'")
        runs = self._runs(f"tags.`{_TAG}name` = '{escaped}'")
        # Two processes adding one name at once may both record it: the first one counts.
        for run in sorted(runs, key=lambda r: r.info.start_time or 0):
            found = self._to_benchmark(run)
            if found is not None:
                return found
        return None

    def _runs(self, filter_string: str = "") -> builtins.list[Any]:
        try:
            runs: builtins.list[Any] = []
            token = None
            while True:
                page = self._client.search_runs(
                    [self._experiment()],
                    filter_string=filter_string,
                    max_results=1000,
                    page_token=token,
                )
                runs.extend(page)
                token = page.token
                if not token:
                    return runs
        except HokusaiError:
            raise
        except Exception as exc:
            raise translate_mlflow_error(exc, "reading benchmarks") from exc

    @staticmethod
    def _to_benchmark(run: Any) -> Benchmark | None:
        """A finished benchmark run as a :class:`Benchmark`; None for one still being added."""
        tags = run.data.tags
        if run.info.status != "FINISHED" or f"{_TAG}artifact_uri" not in tags:
            return None
        from datetime import UTC, datetime

        started = run.info.start_time
        return Benchmark(
            name=tags[f"{_TAG}name"],
            content_hash=tags[f"{_TAG}content_hash"],
            target=tags[f"{_TAG}target"],
            metric=tags[f"{_TAG}metric"],
            direction=tags[f"{_TAG}direction"],
            guardrails=json.loads(tags[f"{_TAG}guardrails"]),
            num_rows=int(tags[f"{_TAG}num_rows"]),
            columns=json.loads(tags[f"{_TAG}columns"]),
            artifact_uri=tags[f"{_TAG}artifact_uri"],
            run_id=run.info.run_id,
            dataset_digest=tags.get(f"{_TAG}dataset_digest", ""),
            created_at=datetime.fromtimestamp(started / 1000, tz=UTC).isoformat()
            if started
            else "",
        )
