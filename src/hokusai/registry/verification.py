"""Verified improvements: the registry scores a candidate and its baseline itself.

A contributor registers an improved model with the gain they *claim* (``delta_metrics``). A
verification measures the gain instead: both models predict every row of a benchmark
(:mod:`hokusai.registry.benchmarks`), :mod:`hokusai.verification.statistics` compares them on
the same rows (a paired interval for the difference), and the decision — accepted or not, and
whether the claim was reproduced — is recorded where anyone can check it:

1. :meth:`Verifier.plan` validates everything (typed errors, nothing written) and fixes the
   inputs: their canonical JSON hashes to the attestation hash, and with the candidate's id to
   the idempotency key and the verification id. The same inputs always give the same three.
2. :meth:`Verifier.run` returns the recorded verification of those inputs when there is one
   (``reused=True``, nothing written). Otherwise it streams the benchmark's Parquet rows in
   batches through both models (loaded once, in their native flavor), compares, and records
   one run of the ``hokusai-verifications`` experiment (params, metrics, the per-row
   predictions, a manifest, the result), tags the candidate version with the latest
   verification, updates its index row and announces it. A failure part-way leaves nothing:
   scoring happens before anything is written, and a failure while recording deletes the run
   and puts the candidate's tags back.

A run counts once its ``hokusai.verification.state`` tag is ``complete``, the last write of a
verification (after the candidate's tags): a crash before it leaves a run no read returns, and
running the same inputs again records them afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hokusai.config import Settings
from hokusai.errors import (
    BaselineNotFoundError,
    BenchmarkNotFoundError,
    HokusaiError,
    InvalidDatasetError,
    MetricMismatchError,
    ModelNotFoundError,
    ModelPredictionError,
    NotAnImprovementError,
    SignatureMismatchError,
    ValidationError,
    VerificationError,
    VerificationNotFoundError,
)
from hokusai.registry.backend import is_not_found, translate_mlflow_error
from hokusai.registry.benchmarks import Benchmark, BenchmarkStore
from hokusai.registry.experiments import ensure_experiment
from hokusai.registry.filters import equals
from hokusai.registry.queries import RegistryQueries
from hokusai.registry.records import (
    TAG_VERIFICATION,
    TAG_VERIFIED,
    TAG_VERIFIED_DELTA_BPS,
    VersionRecord,
)
from hokusai.registry.results import (
    BenchmarkRef,
    GuardrailCheck,
    MetricComparison,
    VerificationResult,
)
from hokusai.registry.validation import parse_model_id
from hokusai.verification.statistics import (
    Direction,
    PairedResult,
    Task,
    accepted,
    get_metric,
    paired_comparison,
    to_bps,
)

if TYPE_CHECKING:
    from hokusai.registry.announcer import Announcer

__all__ = [
    "ALPHA",
    "METHOD",
    "VERIFICATION_EXPERIMENT",
    "VerificationPlan",
    "Verifier",
    "attestation",
    "canonical_json",
    "check_target_values",
]

logger = logging.getLogger(__name__)

VERIFICATION_EXPERIMENT = "hokusai-verifications"
METHOD = "hokusai.verify/v1"
ALPHA = 0.05
"""Every interval is a 95% one (the manifest records it, so a later change shows)."""

_RUN_TAG = "hokusai.verification."
_STATE = f"{_RUN_TAG}state"
_RECORDING = "recording"
_COMPLETE = "complete"
_ARTIFACT_DIR = "verification"
_RESULT_TAG_LIMIT = 8000  # MLflow's limit on a tag value
_ID_RE = re.compile(r"ver_[0-9a-f]{24}")
_CANDIDATE_TAGS = (
    TAG_VERIFIED,
    TAG_VERIFIED_DELTA_BPS,
    *(
        f"{TAG_VERIFICATION}{key}"
        for key in (
            "id",
            "run_id",
            "benchmark",
            "benchmark_hash",
            "metric",
            "improvement_bps",
            "accepted",
            "claim_status",
            "verified_at",
        )
    ),
)


# ---- the inputs and their hashes -----------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 JSON the hashes are taken of (sorted keys, no spaces, no escapes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


@dataclass(frozen=True)
class _Hashes:
    attestation_hash: str
    model_id_uint: str
    idempotency_key: str
    verification_id: str


def attestation(inputs: Mapping[str, Any], candidate_id: str) -> _Hashes:
    """The attestation hash of ``inputs``, the candidate's id as a uint256, the idempotency key
    and the verification id (see the module's documentation)."""
    attestation_hex = hashlib.sha256(canonical_json(inputs)).hexdigest()
    model_id_uint = str(
        int.from_bytes(hashlib.sha256(candidate_id.encode("utf-8")).digest(), "big")
    )
    key_hex = hashlib.sha256(f"{model_id_uint}:{attestation_hex}".encode()).hexdigest()
    return _Hashes(
        attestation_hash="0x" + attestation_hex,
        model_id_uint=model_id_uint,
        idempotency_key="0x" + key_hex,
        verification_id="ver_" + key_hex[:24],
    )


@dataclass(frozen=True)
class VerificationPlan:
    """A validated verification, not yet run: what it will measure and the ids it will have.

    Built by :meth:`ModelRegistry.plan_verification <hokusai.registry.ModelRegistry>`;
    :meth:`~hokusai.registry.ModelRegistry.run_verification` runs it. Everything but
    ``prepared`` is plain data (a plan can be rebuilt from ``candidate_id``, ``benchmark``,
    ``threshold_bps``, ``seed`` and ``n_boot``; running a plan without ``prepared`` does so).
    """

    verification_id: str
    idempotency_key: str
    attestation_hash: str
    model_id_uint: str
    candidate_id: str
    baseline_id: str
    benchmark: str
    """The benchmark's name."""
    threshold_bps: int
    seed: int
    n_boot: int
    inputs: dict[str, Any]
    """What the attestation hash is taken of (``canonical_json(inputs)``)."""
    alpha: float = ALPHA
    prepared: _Prepared | None = field(default=None, compare=False, repr=False)
    """The records, benchmark and loaded models the plan was validated with (this process)."""

    def release(self) -> None:
        """Free what planning holds in this process (the loaded models and the temporary
        folders of the benchmark's rows and the models' files). A released plan is planned
        again when it is run. Running a plan releases it."""
        prepared = self.prepared
        if prepared is None:
            return
        object.__setattr__(self, "prepared", None)
        _cleanup(prepared.cleanup)


# ---- models --------------------------------------------------------------------------------


_NUMERIC_ARROW = ("int", "uint", "float", "double", "bool", "halffloat", "decimal")
_NUMERIC_SIGNATURE = ("double", "float", "long", "integer", "boolean")


@dataclass
class _Model:
    """One loaded model and how it is fed: its native object when MLflow saved one (XGBoost,
    LightGBM, scikit-learn: ``predict_proba`` gives the scores ROC AUC and log loss need),
    else MLflow's pyfunc."""

    role: str
    model_id: str
    flavor: str
    model: Any
    columns: list[str]
    """The benchmark columns it is fed, in its own order."""
    frame: bool
    """Fed a pandas DataFrame (fitted on named columns, or a pyfunc) rather than a matrix."""
    classes: np.ndarray | None
    has_proba: bool
    signature_columns: list[str] | None
    signature_types: dict[str, str] = field(default_factory=dict)

    @classmethod
    def pyfunc(
        cls, role: str, model_id: str, model: Any, signature: list[tuple[str, str]] | None
    ) -> _Model:
        """A model fed through pyfunc: a DataFrame of its signature's columns, labels only."""
        columns = [name for name, _ in signature] if signature else []
        return cls(
            role=role,
            model_id=model_id,
            flavor="pyfunc",
            model=model,
            columns=columns,
            frame=True,
            classes=None,
            has_proba=False,
            signature_columns=columns or None,
            signature_types=dict(signature or []),
        )

    @property
    def label(self) -> str:
        return f"{self.role} {self.model_id}"

    def predict(self, batch: Any) -> np.ndarray:
        """Predicted labels or values of one batch (a ``pyarrow.RecordBatch``)."""
        return _one_dimensional(self.model.predict(self._features(batch)))

    def predict_both(self, batch: Any, positive: Any) -> tuple[np.ndarray, np.ndarray]:
        """(labels, the positive class's probability) of one batch, predicting once where the
        model's own labels are a function of its probabilities (XGBoost: ``p > 0.5`` for two
        classes, the largest probability otherwise)."""
        features = self._features(batch)
        proba = np.asarray(self.model.predict_proba(features))
        scores = self._positive_column(proba, positive)
        if self.flavor == "xgboost" and self.classes is not None and proba.ndim == 2:
            if proba.shape[1] == 2:
                labels = self.classes[(proba[:, 1] > 0.5).astype(np.intp)]
            else:
                labels = self.classes[np.argmax(proba, axis=1)]
            return labels, scores
        return _one_dimensional(self.model.predict(features)), scores

    def _positive_column(self, proba: np.ndarray, positive: Any) -> np.ndarray:
        if proba.ndim == 1:
            return proba.astype(np.float64, copy=False)
        column = proba.shape[1] - 1
        if self.classes is not None:
            found = np.flatnonzero(_same_values(self.classes, positive))
            if found.size:
                column = int(found[0])
        return np.asarray(proba[:, column], dtype=np.float64)

    def _features(self, batch: Any) -> Any:
        selected = batch.select(self.columns)
        if self.frame:
            return selected.to_pandas()
        return _matrix(selected)


def _same_values(classes: np.ndarray, value: Any) -> np.ndarray:
    try:
        return np.asarray(classes == value, dtype=bool)
    except (TypeError, ValueError):
        return np.asarray([c == value for c in classes], dtype=bool)


def _one_dimensional(values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    return array


def _matrix(batch: Any) -> np.ndarray:
    """A numeric record batch as one float matrix (columns in the batch's order)."""
    columns = [column.to_numpy(zero_copy_only=False) for column in batch.columns]
    return np.column_stack(columns) if columns else np.empty((batch.num_rows, 0))


def _is_numeric_arrow(arrow_type: Any) -> bool:
    return any(str(arrow_type).startswith(prefix) for prefix in _NUMERIC_ARROW)


# ---- validation helpers --------------------------------------------------------------------


def check_target_values(benchmark: str, target: str, values: Any) -> np.ndarray:
    """The target column as a NumPy array; :class:`InvalidDatasetError` when a value is
    missing (null, NaN or empty text): a row without a target cannot be scored."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidDatasetError(f"Target {target!r} of benchmark {benchmark!r} is not a column.")
    if array.size == 0:
        raise InvalidDatasetError(f"Benchmark {benchmark!r} has no rows.")
    if array.dtype.kind in "fc":
        missing = int(np.isnan(array).sum())
    elif array.dtype.kind == "O":
        missing = sum(
            1
            for v in array
            if v is None
            or (isinstance(v, float) and math.isnan(v))
            or (isinstance(v, str) and not v.strip())
        )
    else:
        missing = 0
    if missing:
        raise InvalidDatasetError(
            f"Target {target!r} of benchmark {benchmark!r} has {missing} missing (null or NaN) "
            "value(s): every row needs a target to be scored."
        )
    return array


def _check_metric_fits(
    metric: str, y: np.ndarray, models: list[_Model], benchmark: str, target: str
) -> None:
    """MetricMismatchError unless ``metric`` can score these models on this target."""
    spec = get_metric(metric)
    numeric = y.dtype.kind in "biuf"
    continuous = y.dtype.kind == "f" and not bool(np.all(y == np.round(y)))
    where = f"benchmark {benchmark!r} (target {target!r})"
    if spec.task is Task.REGRESSION:
        if not numeric:
            raise MetricMismatchError(
                f"{metric} is a regression metric; the target of {where} is not numeric."
            )
        return
    if continuous:
        raise MetricMismatchError(
            f"{metric} is a classification metric; the target of {where} is continuous."
        )
    if spec.task is Task.SCORES:
        classes = np.unique(y)
        if classes.size != 2:
            raise MetricMismatchError(
                f"{metric} needs a binary target; {where} has {classes.size} class(es)."
            )
        for model in models:
            if not model.has_proba:
                raise MetricMismatchError(
                    f"{metric} needs the positive class's probability, and the {model.label} "
                    f"({model.flavor}) has no predict_proba."
                )


def _signature_inputs(signature: Any) -> list[tuple[str, str]] | None:
    """(column, type) of a signature's named inputs; None without named inputs."""
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        return None
    return [
        (spec.name, str(getattr(getattr(spec, "type", None), "name", "")))
        for spec in signature.inputs.inputs
    ]


def _native_columns(model: Any) -> list[str] | None:
    """The column names a native model was fitted on, if it knows them."""
    names = getattr(model, "feature_names_in_", None)
    if names is None and hasattr(model, "get_booster"):
        with contextlib.suppress(Exception):
            names = model.get_booster().feature_names
    if names is None and hasattr(model, "booster_"):
        with contextlib.suppress(Exception):  # LightGBM: fitted or not, it may raise
            names = model.feature_name_
    if names is None:
        return None
    found = [str(n) for n in names]
    if found == [f"Column_{i}" for i in range(len(found))]:
        return None  # LightGBM's names for an unnamed matrix, not the data's
    return found


# ---- prepared state ------------------------------------------------------------------------


@dataclass
class _Prepared:
    candidate: VersionRecord
    baseline: VersionRecord
    bench: Benchmark
    rows_path: Path
    cleanup: list[Any]
    models: dict[str, _Model]
    target: np.ndarray
    metrics: list[str]


# ---- the verifier --------------------------------------------------------------------------


class Verifier:
    """Plans, runs and reads verifications on one registry's MLflow store."""

    def __init__(
        self,
        client: Any,
        queries: RegistryQueries,
        settings: Settings,
        *,
        tracking_uri: str,
        announcer: Announcer | None = None,
        reindex: Any = None,
    ) -> None:
        self._client = client
        self._queries = queries
        self._settings = settings
        self._tracking_uri = tracking_uri
        self._announcer = announcer
        self._reindex = reindex
        self._experiment_id: str | None = None

    # ---- step 1 and 2: the plan ------------------------------------------------------------

    def plan(
        self,
        candidate_id: str,
        benchmark: str | Benchmark,
        *,
        threshold_bps: int | None = None,
        seed: int = 0,
        n_boot: int = 2000,
    ) -> VerificationPlan:
        """Validate a verification and fix its inputs and ids; writes nothing."""
        threshold = self._settings.verify_threshold_bps if threshold_bps is None else threshold_bps
        _check_int("threshold_bps", threshold, minimum=0)
        _check_int("seed", seed, minimum=0)
        _check_int("n_boot", n_boot, minimum=1)
        candidate, baseline = self._records(candidate_id)
        bench = self._benchmark(benchmark)
        rows_path, cleanup = self._rows(bench)
        try:
            models = {
                "baseline": self._load(baseline, "baseline", cleanup),
                "candidate": self._load(candidate, "candidate", cleanup),
            }
            target = self._check_columns(bench, rows_path, list(models.values()))
            metrics = [bench.metric, *(m for m in bench.guardrails if m != bench.metric)]
            for metric in metrics:
                _check_metric_fits(metric, target, list(models.values()), bench.name, bench.target)
        except BaseException:
            _cleanup(cleanup)
            raise
        inputs = self._inputs(candidate, baseline, bench, threshold, seed, n_boot)
        hashes = attestation(inputs, candidate.model_id)
        return VerificationPlan(
            verification_id=hashes.verification_id,
            idempotency_key=hashes.idempotency_key,
            attestation_hash=hashes.attestation_hash,
            model_id_uint=hashes.model_id_uint,
            candidate_id=candidate.model_id,
            baseline_id=baseline.model_id,
            benchmark=bench.name,
            threshold_bps=threshold,
            seed=seed,
            n_boot=n_boot,
            inputs=inputs,
            prepared=_Prepared(
                candidate=candidate,
                baseline=baseline,
                bench=bench,
                rows_path=rows_path,
                cleanup=cleanup,
                models=models,
                target=target,
                metrics=metrics,
            ),
        )

    @staticmethod
    def _inputs(
        candidate: VersionRecord,
        baseline: VersionRecord,
        bench: Benchmark,
        threshold: int,
        seed: int,
        n_boot: int,
    ) -> dict[str, Any]:
        return {
            "method": METHOD,
            "candidate": {
                "model_id": candidate.model_id,
                "model_uuid": candidate.model_uuid or candidate.logged_model_id,
            },
            "baseline": {
                "model_id": baseline.model_id,
                "model_uuid": baseline.model_uuid or baseline.logged_model_id,
            },
            "benchmark": {
                "name": bench.name,
                "content_hash": bench.content_hash,
                "num_rows": bench.num_rows,
                "target": bench.target,
                "metric": bench.metric,
                "direction": bench.direction,
                "guardrails": dict(sorted(bench.guardrails.items())),
            },
            "threshold_bps": threshold,
            "seed": seed,
            "n_boot": n_boot,
            "alpha": ALPHA,
        }

    def _records(self, candidate_id: str) -> tuple[VersionRecord, VersionRecord]:
        name, version = parse_model_id(candidate_id)
        candidate = self._queries.record(name, version)
        if candidate is None or not candidate.is_hokusai:
            raise ModelNotFoundError(f"Model {name}/{version} is not a registered Hokusai version.")
        if candidate.is_baseline or not candidate.baseline_id:
            raise NotAnImprovementError(
                f"{candidate.model_id} is a baseline, not an improved model: only an improvement "
                "is verified against the version it improves."
            )
        try:
            base_name, base_version = parse_model_id(candidate.baseline_id)
        except HokusaiError:
            base_name = base_version = ""
        baseline = self._queries.record(base_name, base_version) if base_name else None
        if baseline is None or not baseline.is_hokusai:
            raise BaselineNotFoundError(
                f"The baseline of {candidate.model_id}, {candidate.baseline_id!r}, is not an "
                "existing Hokusai version (deleted?): there is nothing to compare it with."
            )
        return candidate, baseline

    def _benchmark(self, benchmark: str | Benchmark) -> Benchmark:
        store = BenchmarkStore(self._settings, client=self._client)
        if isinstance(benchmark, Benchmark):
            stored = store.get(benchmark.name)
            if stored.content_hash != benchmark.content_hash:
                raise BenchmarkNotFoundError(
                    f"Benchmark {benchmark.name!r} is stored with content {stored.content_hash}, "
                    f"not {benchmark.content_hash}."
                )
            return stored
        if not isinstance(benchmark, str) or not benchmark:
            raise ValidationError("benchmark must be a benchmark's name or a Benchmark.")
        return store.get(benchmark)

    def _rows(self, bench: Benchmark) -> tuple[Path, list[Any]]:
        """The benchmark's Parquet file on local disk (read in place when it is local)."""
        local = _local_file(bench.artifact_uri)
        if local is not None and local.is_file():
            return local, []
        import mlflow.artifacts

        tmp = tempfile.TemporaryDirectory(prefix="hokusai-verify-")
        try:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=bench.artifact_uri, dst_path=tmp.name, tracking_uri=self._tracking_uri
            )
        except Exception as exc:
            tmp.cleanup()
            raise translate_mlflow_error(
                exc, f"reading the rows of benchmark {bench.name!r}"
            ) from exc
        return Path(path), [tmp]

    def _load(self, record: VersionRecord, role: str, cleanup: list[Any]) -> _Model:
        """Load a version's model once: its native flavor when MLflow saved one, else pyfunc.
        (A download of a remote store's files lives as long as the plan: ``cleanup``.)"""
        from mlflow.models import Model

        try:
            uri = self._client.get_model_version_download_uri(record.model_name, record.version)
            local = _local_file(uri)
            if local is None or not local.is_dir():
                import mlflow.artifacts

                tmp = tempfile.TemporaryDirectory(prefix="hokusai-verify-model-")
                cleanup.append(tmp)
                local = Path(
                    mlflow.artifacts.download_artifacts(
                        artifact_uri=uri, dst_path=tmp.name, tracking_uri=self._tracking_uri
                    )
                )
            card = Model.load(str(local / "MLmodel"))
        except Exception as exc:
            if is_not_found(exc) or isinstance(exc, FileNotFoundError | OSError):
                raise ModelNotFoundError(
                    f"The model files of {role} {record.model_id} cannot be read: {exc}"
                ) from exc
            raise translate_mlflow_error(exc, f"reading {record.model_id}") from exc
        flavors = card.flavors or {}
        signature = _signature_inputs(card.signature)
        try:
            for flavor in _NATIVE_FLAVORS:
                if flavor in flavors:
                    native = _native_module(flavor).load_model(str(local))
                    if hasattr(native, "predict") and _native_predicts(flavor, native):
                        return self._native(record.model_id, role, flavor, native, signature)
            import mlflow.pyfunc

            pyfunc = mlflow.pyfunc.load_model(str(local))
        except HokusaiError:
            raise
        except Exception as exc:
            raise ModelPredictionError(
                f"The {role} {record.model_id} cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        return _Model.pyfunc(role, record.model_id, pyfunc, signature)

    def precheck(
        self,
        model: Any,
        signature: Any,
        benchmark: str | Benchmark,
        *,
        baseline: VersionRecord,
    ) -> Benchmark:
        """What can be told of a verification before ``model`` is registered as an improvement
        on ``baseline``: the benchmark exists, the model's columns (its signature, else what
        it was fitted on) are benchmark features, and the metrics can score it and the
        baseline on this target. The stored benchmark."""
        from hokusai.registry.flavors import plan_flavor

        bench = self._benchmark(benchmark)
        rows_path, cleanup = self._rows(bench)
        try:
            flavor = plan_flavor(model).flavor
            sig = _signature_inputs(signature)
            described = "the model being registered"
            if flavor in _NATIVE_FLAVORS and _native_predicts(flavor, model):
                candidate = self._native(described, "candidate", flavor, model, sig)
            else:
                candidate = _Model.pyfunc("candidate", described, model, sig)
            models = [self._load(baseline, "baseline", cleanup), candidate]
            target = self._check_columns(bench, rows_path, models)
            for metric in [bench.metric, *bench.guardrails]:
                _check_metric_fits(metric, target, models, bench.name, bench.target)
        finally:
            _cleanup(cleanup)
        return bench

    @staticmethod
    def _native(
        model_id: str,
        role: str,
        flavor: str,
        native: Any,
        signature: list[tuple[str, str]] | None,
    ) -> _Model:
        fitted = _native_columns(native)
        sig_columns = [name for name, _ in signature] if signature else None
        named = getattr(native, "feature_names_in_", None) is not None
        columns = fitted or sig_columns or []
        classes = getattr(native, "classes_", None)
        return _Model(
            role=role,
            model_id=model_id,
            flavor=flavor,
            model=native,
            columns=list(columns),
            # A scikit-learn model fitted on named columns is fed them by name (a pipeline may
            # select columns by name); XGBoost and LightGBM take a plain matrix, faster.
            frame=flavor == "sklearn" and named,
            classes=None if classes is None else np.asarray(classes),
            has_proba=callable(getattr(native, "predict_proba", None)),
            signature_columns=sig_columns,
            signature_types=dict(signature or []),
        )

    def _check_columns(self, bench: Benchmark, rows_path: Path, models: list[_Model]) -> np.ndarray:
        """Every column each model needs is a benchmark feature of a fitting type; the target
        column, read and checked for missing values."""
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(rows_path)
        except Exception as exc:
            raise InvalidDatasetError(
                f"The rows of benchmark {bench.name!r} cannot be read: {exc}"
            ) from exc
        available = [name for name in schema.names if name != bench.target]
        types = {name: schema.field(name).type for name in schema.names}
        for model in models:
            if not model.columns:
                model.columns = list(available)
            wanted = list(dict.fromkeys([*model.columns, *(model.signature_columns or [])]))
            missing = [c for c in wanted if c not in available]
            if missing:
                raise SignatureMismatchError(
                    f"Benchmark {bench.name!r} has no feature column(s) "
                    f"{', '.join(map(repr, missing))} that the {model.label} needs "
                    f"(its features: {', '.join(available) or 'none'}; target {bench.target!r}).",
                    column=missing[0],
                )
            if not model.frame:
                text = [c for c in model.columns if not _is_numeric_arrow(types[c])]
                if text:
                    model.frame = True  # a matrix only holds numbers; the model gets a frame
        for model in models:
            self._check_types(bench, model, types)
        if bench.target not in types:
            raise InvalidDatasetError(
                f"Benchmark {bench.name!r} has no target column {bench.target!r}."
            )
        column = pq.read_table(rows_path, columns=[bench.target]).column(0)
        return check_target_values(bench.name, bench.target, column.to_numpy(zero_copy_only=False))

    @staticmethod
    def _check_types(bench: Benchmark, model: _Model, types: dict[str, Any]) -> None:
        """Numbers where the signature declares numbers, text where it declares text (what a
        Parquet column can contradict; finer differences are the model's to convert)."""
        for column, declared in model.signature_types.items():
            numeric_declared = declared in _NUMERIC_SIGNATURE
            if declared not in (*_NUMERIC_SIGNATURE, "string"):
                continue
            if numeric_declared != _is_numeric_arrow(types[column]):
                raise SignatureMismatchError(
                    f"Column {column!r} of benchmark {bench.name!r} is {types[column]}, and the "
                    f"signature of the {model.label} declares {declared}.",
                    column=column,
                )

    # ---- step 3 to 7: the run --------------------------------------------------------------

    def run(
        self,
        plan: VerificationPlan,
        *,
        batch_rows: int = 100_000,
        abort: Callable[[], bool] | None = None,
    ) -> VerificationResult:
        """Run a plan (see the module's documentation). ``abort``, when given, is asked after
        scoring, just before anything is written: True stops the run (VerificationError,
        nothing recorded) — a job runner that lost its lease leaves the job to its new owner.
        The plan's temporary files are removed when the run ends, whatever the outcome."""
        _check_int("batch_rows", batch_rows, minimum=1)
        used = plan
        try:
            if used.prepared is None:
                used = self._replan(plan)
            assert used.prepared is not None
            return self._run(used, used.prepared, batch_rows, abort)
        finally:
            used.release()
            plan.release()

    def _run(
        self,
        plan: VerificationPlan,
        prepared: _Prepared,
        batch_rows: int,
        abort: Callable[[], bool] | None,
    ) -> VerificationResult:
        existing = self._find_by_key(plan.idempotency_key)
        if existing is not None:
            logger.info("verification %s already recorded: reused", plan.verification_id)
            return self._reused(existing)
        scored = self._score(prepared, batch_rows)
        result = self._evaluate(plan, prepared, scored)
        if abort is not None and abort():
            raise VerificationError(
                f"Verification {plan.verification_id} was stopped before recording (nothing "
                "was recorded)."
            )
        earlier = self._record(plan, prepared, scored, result)
        if earlier is not None:
            logger.info(
                "verification %s was recorded meanwhile by another run: reused",
                plan.verification_id,
            )
            return self._reused(earlier)
        self._note_in_index(result["candidate_id"])
        result["event_ids"] = self._announce(result)
        logger.info(
            "verified %s on %s: %s (%+d bps, run %s)",
            result["candidate_id"],
            result["benchmark"]["name"],
            "accepted" if result["accepted"] else "not accepted",
            result["primary"]["improvement_bps"],
            result["mlflow_run_id"],
        )
        return result

    def _reused(self, run: Any) -> VerificationResult:
        """The recorded result of ``run``, returned again. Its announcement is made now if it
        never succeeded (no event ids noted on the run; a lost announcement is recovered by
        verifying again): the outbox dedupes events on their type and the idempotency key, so
        announcing again is safe. ``event_ids`` are the events recorded by this call."""
        existing = self._result_of(run)
        event_ids: list[str] = []
        if f"{_RUN_TAG}event_ids" not in run.data.tags:
            event_ids = self._announce(existing)
        return {**existing, "event_ids": event_ids, "reused": True}

    def _replan(self, plan: VerificationPlan) -> VerificationPlan:
        """A plan built elsewhere (or deserialised): validated again here, and run only if its
        inputs are still the same."""
        fresh = self.plan(
            plan.candidate_id,
            plan.benchmark,
            threshold_bps=plan.threshold_bps,
            seed=plan.seed,
            n_boot=plan.n_boot,
        )
        if fresh.idempotency_key != plan.idempotency_key:
            raise VerificationError(
                f"The inputs of {plan.verification_id} changed since it was planned (now "
                f"{fresh.verification_id}): plan it again."
            )
        return fresh

    # ---- step 3: scoring -------------------------------------------------------------------

    def _score(self, prepared: _Prepared, batch_rows: int) -> _Scored:
        """Both models over the benchmark's rows, ``batch_rows`` at a time: only the targets
        and the predictions are kept, never the feature matrix."""
        import pyarrow.parquet as pq

        bench = prepared.bench
        need_scores = any(get_metric(m).task is Task.SCORES for m in prepared.metrics)
        positive = np.unique(prepared.target)[-1] if need_scores else None
        models = prepared.models
        wanted = [c for model in models.values() for c in model.columns]
        columns = list(dict.fromkeys([*wanted, bench.target]))
        targets: list[np.ndarray] = []
        preds: dict[str, list[np.ndarray]] = {role: [] for role in models}
        scores: dict[str, list[np.ndarray]] = {role: [] for role in models}
        start = 0
        try:
            # pre_buffer off: with it, pyarrow keeps the whole file's column chunks cached
            # until the file is closed (the feature matrix in memory, which streaming avoids).
            batches = pq.ParquetFile(prepared.rows_path, pre_buffer=False).iter_batches(
                batch_size=batch_rows, columns=columns
            )
        except Exception as exc:
            raise InvalidDatasetError(
                f"The rows of benchmark {bench.name!r} cannot be read: {exc}"
            ) from exc
        for batch in batches:
            # A copy: a view would keep the batch's buffers alive.
            targets.append(np.array(batch.column(bench.target).to_numpy(zero_copy_only=False)))
            for role, model in models.items():
                labels, score = _predict(model, batch, positive, bench.name, start)
                preds[role].append(labels)
                if score is not None:
                    scores[role].append(score)
            start += batch.num_rows
        y = check_target_values(bench.name, bench.target, _concat(targets))
        return _Scored(
            y=y,
            preds={role: _concat(parts) for role, parts in preds.items()},
            scores={role: _concat(parts) for role, parts in scores.items()} if need_scores else {},
        )

    # ---- step 4: statistics and the decision -----------------------------------------------

    def _evaluate(
        self, plan: VerificationPlan, prepared: _Prepared, scored: _Scored
    ) -> VerificationResult:
        bench = prepared.bench
        compared: dict[str, MetricComparison] = {}
        for metric in prepared.metrics:
            spec = get_metric(metric)
            source = scored.scores if spec.task is Task.SCORES else scored.preds
            paired = paired_comparison(
                scored.y,
                source["baseline"],
                source["candidate"],
                metric,
                n_boot=plan.n_boot,
                seed=plan.seed,
                alpha=plan.alpha,
            )
            direction = bench.direction if metric == bench.metric else spec.direction
            compared[metric] = _comparison(paired, direction)
        primary = compared[bench.metric]
        guardrails = [
            _guardrail(compared[metric], tolerance)
            for metric, tolerance in bench.guardrails.items()
        ]
        reasons = _reasons(primary, guardrails, plan.threshold_bps)
        paired_primary = _as_paired(primary, scored.y.shape[0], plan.n_boot)
        decision = accepted(
            paired_primary, threshold_bps=plan.threshold_bps, direction=_direction(primary)
        ) and all(g["passed"] for g in guardrails)
        candidate = prepared.candidate
        claimed = candidate.delta_metrics.get(bench.metric)
        result: VerificationResult = {
            "verification_id": plan.verification_id,
            "candidate_id": candidate.model_id,
            "baseline_id": prepared.baseline.model_id,
            "candidate_model_uuid": plan.inputs["candidate"]["model_uuid"],
            "baseline_model_uuid": plan.inputs["baseline"]["model_uuid"],
            "contributor": candidate.contributor,
            "benchmark": _benchmark_ref(bench),
            "primary": primary,
            "guardrails": guardrails,
            "threshold_bps": plan.threshold_bps,
            "accepted": decision,
            "reasons": reasons,
            "claimed_delta": claimed,
            "claimed_delta_metrics": dict(candidate.delta_metrics),
            "claim_status": _claim_status(claimed, primary),
            "n_rows": int(scored.y.shape[0]),
            "n_boot": plan.n_boot,
            "seed": plan.seed,
            "alpha": plan.alpha,
            "mlflow_run_id": "",
            "attestation_hash": plan.attestation_hash,
            "idempotency_key": plan.idempotency_key,
            "model_id_uint": plan.model_id_uint,
            "verified_at": datetime.now(UTC).isoformat(),
            "event_ids": [],
            "reused": False,
        }
        return result

    # ---- step 5 and 6: the record and the candidate's tags ---------------------------------

    def _experiment(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = ensure_experiment(
                self._client, VERIFICATION_EXPERIMENT, self._settings.resolved_artifact_location
            )
        return self._experiment_id

    def _record(
        self,
        plan: VerificationPlan,
        prepared: _Prepared,
        scored: _Scored,
        result: VerificationResult,
    ) -> Any | None:
        """One run holding everything, then the candidate's tags, then the run's ``complete``
        mark; any failure deletes the run and puts the candidate's tags back.

        Another run of the same inputs may have completed meanwhile (a job runner that stalled
        past its lease while another took the job over): then this run is deleted before the
        candidate is tagged, and that run is returned (None when this one was recorded)."""
        client = self._client
        candidate = prepared.candidate
        run_id: str | None = None
        before: dict[str, str] | None = None
        try:
            run = client.create_run(
                self._experiment(),
                run_name=plan.verification_id,
                tags=_run_tags(plan, result),
            )
            run_id = run.info.run_id
            result["mlflow_run_id"] = run_id
            _log_values(client, run_id, plan, result)
            with tempfile.TemporaryDirectory(prefix="hokusai-verification-") as tmp:
                folder = Path(tmp)
                _write_predictions(folder / "predictions.parquet", scored)
                _write_json(folder / "manifest.json", _manifest(plan, result))
                _write_json(folder / "result.json", _stored(result))
                client.log_artifacts(run_id, tmp, artifact_path=_ARTIFACT_DIR)
            stored = json.dumps(_stored(result), sort_keys=True, separators=(",", ":"))
            if len(stored) <= _RESULT_TAG_LIMIT:
                client.set_tag(run_id, f"{_RUN_TAG}result", stored)
            client.set_terminated(run_id, "FINISHED")
            earlier = self._find_by_key(plan.idempotency_key)
            if earlier is not None:
                self._undo(candidate, None, run_id)
                return earlier
            current = self._queries.record(candidate.model_name, candidate.version)
            before = dict(current.tags) if current is not None else {}
            for key, value in _candidate_tags(result).items():
                client.set_model_version_tag(candidate.model_name, candidate.version, key, value)
            client.set_tag(run_id, _STATE, _COMPLETE)  # the commit point
        except BaseException as exc:
            self._undo(candidate, before, run_id)
            if isinstance(exc, HokusaiError) or not isinstance(exc, Exception):
                raise
            error = translate_mlflow_error(exc, f"Recording verification {plan.verification_id}")
            raise VerificationError(f"{error.message} (nothing was recorded)") from exc
        return None

    def _undo(
        self, candidate: VersionRecord, before: dict[str, str] | None, run_id: str | None
    ) -> None:
        """Put the candidate's verification tags back as they were and delete the run.

        The tags are put back only while they are still this run's (``…verification.run_id``
        read afresh): another verification of the candidate may have tagged it since the
        snapshot, and its tags stand."""
        client = self._client
        if before is not None and self._tagged_by(candidate, run_id):
            for key in _CANDIDATE_TAGS:
                try:
                    if key in before:
                        client.set_model_version_tag(
                            candidate.model_name, candidate.version, key, before[key]
                        )
                    else:
                        client.delete_model_version_tag(
                            candidate.model_name, candidate.version, key
                        )
                except Exception as exc:  # noqa: BLE001 - an undo tries every step
                    if not is_not_found(exc):
                        logger.error(
                            "could not restore tag %s of %s: %s", key, candidate.model_id, exc
                        )
        if run_id is not None:
            try:
                client.delete_run(run_id)
            except Exception as exc:  # noqa: BLE001 - an incomplete run is never read anyway
                logger.error("could not delete the unfinished verification run %s: %s", run_id, exc)

    def _tagged_by(self, candidate: VersionRecord, run_id: str | None) -> bool:
        """Whether the candidate's verification tags are (still) those of run ``run_id``."""
        try:
            version = self._client.get_model_version(candidate.model_name, candidate.version)
        except Exception as exc:  # noqa: BLE001 - unknowable: leave the tags alone
            logger.error("could not read the tags of %s: %s", candidate.model_id, exc)
            return False
        return bool(run_id) and (version.tags or {}).get(f"{TAG_VERIFICATION}run_id") == run_id

    def _note_in_index(self, model_id: str) -> None:
        """Show the candidate's new tags in the registry index at once (tag writes do not show
        in what the index's sync watches)."""
        if self._reindex is None:
            return
        try:
            self._reindex([model_id])
        except Exception:
            logger.exception(
                "%s is verified but its index row was not updated; `hokusai registry reindex "
                "--restart` rebuilds it",
                model_id,
            )

    # ---- step 7: the announcement ----------------------------------------------------------

    def _announce(self, result: VerificationResult) -> list[str]:
        if self._announcer is None:
            return []
        try:
            event_ids = list(self._announcer.announce_verification(result) or [])
        except Exception as exc:
            logger.warning(
                "verification %s is recorded but its events could not be recorded now: %s: %s",
                result["verification_id"],
                type(exc).__name__,
                exc,
                exc_info=logger.isEnabledFor(logging.DEBUG),
            )
            return []
        # Noted even when empty: the tag is how a later run of the same inputs knows the
        # announcement succeeded (without it, that run announces again).
        try:
            self._client.set_tag(
                result["mlflow_run_id"], f"{_RUN_TAG}event_ids", json.dumps(event_ids)
            )
        except Exception:  # noqa: BLE001 - bookkeeping: the events are recorded
            logger.warning("could not note the event ids of %s", result["verification_id"])
        return event_ids

    # ---- reads -----------------------------------------------------------------------------

    def get(self, verification_id: str) -> VerificationResult:
        """The recorded verification ``verification_id``; VerificationNotFoundError."""
        if not isinstance(verification_id, str) or not _ID_RE.fullmatch(verification_id):
            raise VerificationNotFoundError(f"No verification is named {verification_id!r}.")
        runs = self._complete_runs(equals(f"tags.`{_RUN_TAG}id`", verification_id).text)
        if not runs:
            raise VerificationNotFoundError(f"No verification is named {verification_id!r}.")
        return self._result_of(runs[0])

    def recorded(self, candidate_id: str | None = None) -> list[VerificationResult]:
        """Every recorded verification (of ``candidate_id``), newest first."""
        text = ""
        if candidate_id is not None:
            name, version = parse_model_id(candidate_id)
            text = equals(f"tags.`{_RUN_TAG}candidate_id`", f"{name}/{version}").text
        runs = self._complete_runs(text)
        first: dict[str, Any] = {}
        for run in runs:  # one per verification id: the first recorded
            first.setdefault(run.data.tags[f"{_RUN_TAG}id"], run)
        ordered = sorted(first.values(), key=lambda r: r.info.start_time or 0, reverse=True)
        return [self._result_of(run) for run in ordered]

    def _find_by_key(self, key: str) -> Any | None:
        """The first complete run of idempotency key ``key`` (None when there is none)."""
        runs = self._complete_runs(equals(f"tags.`{_RUN_TAG}idempotency_key`", key).text)
        return runs[0] if runs else None

    def _complete_runs(self, filter_text: str) -> list[Any]:
        """Complete verification runs matching ``filter_text``, oldest first."""
        try:
            experiment = self._client.get_experiment_by_name(VERIFICATION_EXPERIMENT)
        except Exception as exc:
            raise translate_mlflow_error(exc, "reading verifications") from exc
        if experiment is None:
            return []
        complete = equals(f"tags.`{_STATE}`", _COMPLETE).text
        text = f"{filter_text} and {complete}" if filter_text else complete
        runs: list[Any] = []
        token = None
        try:
            while True:
                page = self._client.search_runs(
                    [experiment.experiment_id],
                    filter_string=text,
                    max_results=1000,
                    order_by=["attributes.start_time ASC"],
                    page_token=token,
                )
                runs.extend(page)
                token = page.token
                if not token:
                    break
        except Exception as exc:
            raise translate_mlflow_error(exc, "reading verifications") from exc
        return [
            r
            for r in runs
            if r.data.tags.get(_STATE) == _COMPLETE and r.info.lifecycle_stage == "active"
        ]

    def _result_of(self, run: Any) -> VerificationResult:
        tags = run.data.tags
        text = tags.get(f"{_RUN_TAG}result")
        if text is None:
            try:
                path = self._client.download_artifacts(
                    run.info.run_id, f"{_ARTIFACT_DIR}/result.json"
                )
                text = Path(path).read_text(encoding="utf-8")
            except Exception as exc:
                raise translate_mlflow_error(
                    exc, f"reading verification {tags.get(f'{_RUN_TAG}id')}"
                ) from exc
        stored: dict[str, Any] = json.loads(text)
        event_ids = json.loads(tags.get(f"{_RUN_TAG}event_ids", "[]"))
        result: VerificationResult = {**stored, "event_ids": event_ids, "reused": False}  # type: ignore[typeddict-item]
        return result


# ---- scoring and result helpers ------------------------------------------------------------


@dataclass
class _Scored:
    y: np.ndarray
    preds: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]


def _predict(
    model: _Model, batch: Any, positive: Any, benchmark: str, start: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """(labels or values, positive-class scores or None) of one batch; ModelPredictionError
    naming the model and the rows when the model raises or answers the wrong number of rows."""
    rows = f"rows {start}-{start + batch.num_rows - 1}"
    try:
        if positive is not None:
            labels, score = model.predict_both(batch, positive)
        else:
            labels, score = model.predict(batch), None
    except Exception as exc:
        raise ModelPredictionError(
            f"The {model.label} failed to predict on benchmark {benchmark!r} ({rows}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    for values in (labels, score):
        if values is not None and (values.ndim != 1 or values.shape[0] != batch.num_rows):
            raise ModelPredictionError(
                f"The {model.label} answered {values.shape} predictions for {batch.num_rows} "
                f"rows of benchmark {benchmark!r} ({rows}); one per row is needed."
            )
    return labels, score


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.empty(0)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _comparison(paired: PairedResult, direction: str) -> MetricComparison:
    baseline_bps = to_bps(paired.baseline_score)
    candidate_bps = to_bps(paired.candidate_score)
    delta = paired.delta
    return {
        "metric": paired.metric,
        "direction": direction,
        "baseline_score": paired.baseline_score,
        "candidate_score": paired.candidate_score,
        "delta": delta,
        "ci_low": paired.ci_low,
        "ci_high": paired.ci_high,
        "ci_method": paired.method,
        "p_value": paired.p_value,
        "baseline_score_bps": baseline_bps,
        "candidate_score_bps": candidate_bps,
        "delta_bps": candidate_bps - baseline_bps,
        "improvement_bps": to_bps(delta) if direction == "higher" else to_bps(-delta),
    }


def _direction(comparison: MetricComparison) -> Direction:
    return "lower" if comparison["direction"] == "lower" else "higher"


def _as_paired(comparison: MetricComparison, n: int, n_boot: int) -> PairedResult:
    return PairedResult(
        metric=comparison["metric"],
        baseline_score=comparison["baseline_score"],
        candidate_score=comparison["candidate_score"],
        delta=comparison["delta"],
        ci_low=comparison["ci_low"],
        ci_high=comparison["ci_high"],
        method=comparison["ci_method"],
        p_value=comparison["p_value"],
        n=n,
        n_boot=n_boot,
    )


def _guardrail(comparison: MetricComparison, tolerance: float) -> GuardrailCheck:
    """Passed when the candidate is at most ``tolerance`` worse (point estimate)."""
    delta = comparison["delta"]
    passed = delta >= -tolerance if comparison["direction"] == "higher" else delta <= tolerance
    return {**comparison, "tolerance": float(tolerance), "passed": bool(passed)}


def _reasons(
    primary: MetricComparison, guardrails: list[GuardrailCheck], threshold: int
) -> list[str]:
    reasons = []
    if primary["improvement_bps"] < threshold:
        reasons.append("below_threshold")
    better_side = (
        primary["ci_low"] > 0 if primary["direction"] == "higher" else primary["ci_high"] < 0
    )
    if not better_side:
        reasons.append("interval_includes_zero")
    reasons.extend(f"guardrail_failed:{g['metric']}" for g in guardrails if not g["passed"])
    return reasons


def _claim_status(claimed: float | None, primary: MetricComparison) -> str:
    """``not_claimed``; ``not_reproduced`` when the claim is beyond the interval on the better
    side (it claims more than the data allow); else ``reproduced``."""
    if claimed is None:
        return "not_claimed"
    if primary["direction"] == "higher":
        return "not_reproduced" if claimed > primary["ci_high"] else "reproduced"
    return "not_reproduced" if claimed < primary["ci_low"] else "reproduced"


def _benchmark_ref(bench: Benchmark) -> BenchmarkRef:
    return {
        "name": bench.name,
        "content_hash": bench.content_hash,
        "num_rows": bench.num_rows,
        "target": bench.target,
        "metric": bench.metric,
        "direction": bench.direction,
    }


def _stored(result: VerificationResult) -> dict[str, Any]:
    """What is recorded of a result: everything but the event ids and ``reused``."""
    return {k: v for k, v in result.items() if k not in ("event_ids", "reused")}


def _run_tags(plan: VerificationPlan, result: VerificationResult) -> dict[str, str]:
    tags = {
        f"{_RUN_TAG}id": plan.verification_id,
        f"{_RUN_TAG}idempotency_key": plan.idempotency_key,
        f"{_RUN_TAG}attestation_hash": plan.attestation_hash,
        f"{_RUN_TAG}candidate_id": plan.candidate_id,
        f"{_RUN_TAG}baseline_id": plan.baseline_id,
        f"{_RUN_TAG}benchmark": plan.benchmark,
        f"{_RUN_TAG}accepted": "true" if result["accepted"] else "false",
        _STATE: _RECORDING,
    }
    if result["contributor"]:
        tags[f"{_RUN_TAG}contributor"] = result["contributor"]
    return tags


def _log_values(
    client: Any, run_id: str, plan: VerificationPlan, result: VerificationResult
) -> None:
    from mlflow.entities import Metric, Param

    params = {
        "candidate_id": plan.candidate_id,
        "baseline_id": plan.baseline_id,
        "benchmark": plan.benchmark,
        "benchmark_hash": result["benchmark"]["content_hash"],
        "metric": result["benchmark"]["metric"],
        "threshold_bps": plan.threshold_bps,
        "seed": plan.seed,
        "n_boot": plan.n_boot,
    }
    values: dict[str, float] = {}
    for comparison in [result["primary"], *result["guardrails"]]:
        name = comparison["metric"]
        values[f"baseline_{name}"] = comparison["baseline_score"]
        values[f"candidate_{name}"] = comparison["candidate_score"]
        values[f"delta_{name}"] = comparison["delta"]
        values[f"delta_{name}_ci_low"] = comparison["ci_low"]
        values[f"delta_{name}_ci_high"] = comparison["ci_high"]
    values["accepted"] = 1.0 if result["accepted"] else 0.0
    now = int(datetime.now(UTC).timestamp() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in values.items()],
        params=[Param(k, str(v)) for k, v in params.items()],
    )


def _manifest(plan: VerificationPlan, result: VerificationResult) -> dict[str, Any]:
    """The inputs (whose canonical JSON the attestation hash is of), the ids and the results."""
    results = {
        key: result[key]
        for key in (
            "primary",
            "guardrails",
            "accepted",
            "reasons",
            "claimed_delta",
            "claimed_delta_metrics",
            "claim_status",
            "n_rows",
            "verified_at",
        )
    }
    return {
        "verification_id": plan.verification_id,
        "inputs": plan.inputs,
        "attestation_hash": plan.attestation_hash,
        "model_id_uint": plan.model_id_uint,
        "idempotency_key": plan.idempotency_key,
        "mlflow_run_id": result["mlflow_run_id"],
        "results": results,
    }


def _write_json(path: Path, value: Any) -> None:
    path.write_text(
        json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def _write_predictions(path: Path, scored: _Scored) -> None:
    """Per row: the target and both models' predictions (and scores when a metric used them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, Any] = {
        "row": pa.array(np.arange(scored.y.shape[0], dtype=np.int64)),
        "target": _arrow(scored.y),
        "baseline_pred": _arrow(scored.preds["baseline"]),
        "candidate_pred": _arrow(scored.preds["candidate"]),
    }
    if scored.scores:
        columns["baseline_score"] = _arrow(scored.scores["baseline"])
        columns["candidate_score"] = _arrow(scored.scores["candidate"])
    pq.write_table(pa.table(columns), path)


def _arrow(values: np.ndarray) -> Any:
    import pyarrow as pa

    if values.dtype.kind == "O":
        return pa.array(values.tolist())
    return pa.array(values)


def _candidate_tags(result: VerificationResult) -> dict[str, str]:
    primary = result["primary"]
    prefix = TAG_VERIFICATION
    # The run id first: a failure part-way leaves tags an undo can tell are this run's.
    return {
        f"{prefix}run_id": result["mlflow_run_id"],
        TAG_VERIFIED: "true",
        TAG_VERIFIED_DELTA_BPS: str(primary["delta_bps"]),
        f"{prefix}id": result["verification_id"],
        f"{prefix}benchmark": result["benchmark"]["name"],
        f"{prefix}benchmark_hash": result["benchmark"]["content_hash"],
        f"{prefix}metric": primary["metric"],
        f"{prefix}improvement_bps": str(primary["improvement_bps"]),
        f"{prefix}accepted": "true" if result["accepted"] else "false",
        f"{prefix}claim_status": result["claim_status"],
        f"{prefix}verified_at": result["verified_at"],
    }


# ---- small helpers -------------------------------------------------------------------------


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(f"{name} must be an integer ≥ {minimum}, got {value!r}.")


_NATIVE_FLAVORS = ("xgboost", "lightgbm", "sklearn")


def _native_predicts(flavor: str, model: Any) -> bool:
    """Whether the registry can feed ``model`` of a native flavor itself: a raw XGBoost Booster
    predicts on a DMatrix only, so pyfunc feeds it."""
    return flavor != "xgboost" or hasattr(model, "get_params")


def _native_module(flavor: str) -> Any:
    if flavor == "xgboost":
        import mlflow.xgboost

        return mlflow.xgboost
    if flavor == "lightgbm":
        import mlflow.lightgbm

        return mlflow.lightgbm
    import mlflow.sklearn

    return mlflow.sklearn


def _local_file(uri: str) -> Path | None:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    return None


def _cleanup(items: list[Any]) -> None:
    for item in items:
        with contextlib.suppress(Exception):
            item.cleanup()
