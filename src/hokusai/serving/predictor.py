"""A loaded model and its fast predict path.

For the XGBoost and scikit-learn flavors the native model predicts straight on the validated
numpy matrix — no pandas DataFrame, no pyfunc dispatch per request — which is what MLflow's
pyfunc wrapper would call anyway (``model.predict`` on the inputs in signature order). Other
flavors go through ``mlflow.pyfunc`` with MLflow's own schema enforcement. Single-row requests
arriving together are micro-batched: one native call for many requests.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hokusai.errors import InvalidInputError
from hokusai.serving.inputs import Columns
from hokusai.serving.sources import Resolved

__all__ = ["LoadedModel", "MicroBatcher", "load_model"]

logger = logging.getLogger(__name__)

# We validate and order the columns ourselves, then hand scikit-learn a matrix; its warning
# that the matrix has no feature names is expected here, and costs time on every call.
warnings.filterwarnings("ignore", message="X does not have valid feature names")


class MicroBatcher:
    """Groups concurrent small requests into one ``predict`` call.

    A request that arrives alone is predicted at once. When requests overlap, each new batch
    waits up to ``max_wait`` for company (adaptive: only after concurrency was seen), so the
    added latency is bounded while throughput rises with load.
    """

    def __init__(self, predict: Any, *, max_wait: float, max_rows: int = 256) -> None:
        self._predict = predict
        self._max_wait = max_wait
        self._max_rows = max_rows
        self._pending: list[tuple[np.ndarray[Any, Any], asyncio.Future[Any]]] = []
        self._scheduled = False
        self._last_batch = 1

    async def submit(self, matrix: np.ndarray[Any, Any]) -> Any:
        """Predict ``matrix`` (possibly together with others); returns its predictions."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((matrix, future))
        if sum(len(m) for m, _ in self._pending) >= self._max_rows:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            delay = self._max_wait if self._last_batch > 1 else 0.0
            loop.call_later(delay, self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        self._last_batch = len(batch)
        try:
            if len(batch) == 1:
                outputs = [self._predict(batch[0][0])]
            else:
                stacked = np.vstack([m for m, _ in batch])
                predictions = np.asarray(self._predict(stacked))
                outputs, start = [], 0
                for matrix, _ in batch:
                    outputs.append(predictions[start : start + len(matrix)])
                    start += len(matrix)
        except Exception as exc:  # noqa: BLE001 - each waiting request gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), output in zip(batch, outputs, strict=True):
            if not future.done():
                future.set_result(output)


@dataclass
class LoadedModel:
    """A model ready to serve, with where it came from."""

    source: Resolved
    flavor: str
    columns: Columns
    signature: str | None
    native: Any
    pyfunc: Any | None
    loaded_at: float = field(default_factory=time.time)
    input_example: Any | None = None
    batcher: MicroBatcher | None = None
    accepts_params: bool = False
    """The signature declares inference params: requests' params go to ``pyfunc.predict``."""
    output_name: str | None = None
    """The signature's output name, when it has one."""
    output_dtype: np.dtype[Any] | None = None
    """What predictions are made of: read off the smoke prediction, else the signature."""
    _warned_params: bool = field(default=False, repr=False)

    @property
    def fast(self) -> bool:
        """True when requests go straight to the native model."""
        return self.native is not None and self.columns.numeric

    def predict_matrix(self, matrix: np.ndarray[Any, Any]) -> Any:
        """Predict on a validated matrix (columns in signature order)."""
        if self.fast:
            return self.native.predict(matrix)
        import pandas as pd

        names = list(self.columns.names or range(matrix.shape[1]))
        frame = pd.DataFrame(matrix, columns=names)
        assert self.pyfunc is not None
        return self.pyfunc.predict(frame)

    def predict_with_params(self, matrix: np.ndarray[Any, Any], params: dict[str, Any]) -> Any:
        """Predict through ``mlflow.pyfunc`` with inference params, which MLflow checks against
        the signature's params schema. A model without one ignores params, as MLflow's scoring
        server does (said once in the log)."""
        if not self.accepts_params:
            if not self._warned_params:
                self._warned_params = True
                logger.warning(
                    "params %s ignored: the model's signature declares no params",
                    sorted(params),
                )
            return self.predict_matrix(matrix)
        import pandas as pd
        from mlflow.exceptions import MlflowException

        names = list(self.columns.names or range(matrix.shape[1]))
        assert self.pyfunc is not None
        try:
            return self.pyfunc.predict(pd.DataFrame(matrix, columns=names), params=params)
        except MlflowException as exc:
            if exc.error_code == "INVALID_PARAMETER_VALUE":
                raise InvalidInputError(f"Invalid params: {exc.message}") from exc
            raise

    def describe(self) -> dict[str, Any]:
        """What ``/health`` and ``/model`` show about the model serving."""
        return {
            "source": self.source.kind,
            "uri": self.source.uri,
            "requested": self.source.requested,
            "name": self.source.name,
            "version": self.source.version,
            "run_id": self.source.run_id,
            "flavor": self.flavor,
            "fast_path": self.fast,
            "loaded_at": self.loaded_at,
            "signature": self.signature,
            "columns": list(self.columns.names) if self.columns.names else None,
        }


def load_model(source: Resolved, *, tracking_uri: str, batch_wait: float) -> LoadedModel:
    """Load ``source`` and smoke-test it on its input example (raises on any failure)."""
    model = _load_pickle(source) if source.kind == "pickle" else _load_mlflow(source, tracking_uri)
    _smoke_test(model)
    model.batcher = MicroBatcher(model.predict_matrix, max_wait=batch_wait)
    return model


def _load_mlflow(source: Resolved, tracking_uri: str) -> LoadedModel:
    import mlflow.artifacts
    from mlflow.models import Model

    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=source.location or source.uri, tracking_uri=tracking_uri
        )
    )
    card = Model.load(str(local / "MLmodel"))
    columns = _columns(card.signature)
    native = None
    if "xgboost" in card.flavors:
        import mlflow.xgboost

        candidate = mlflow.xgboost.load_model(str(local))
        native = candidate if hasattr(candidate, "get_params") else None  # sklearn API only
        if native is not None:
            # One OpenMP thread per predict: requests are small and micro-batched, and a thread
            # pool per call costs more than it saves (and causes latency spikes) on few cores.
            native.set_params(n_jobs=1)
        flavor = "xgboost"
    elif "sklearn" in card.flavors:
        import mlflow.sklearn

        conf = card.flavors["sklearn"]
        native = mlflow.sklearn.load_model(str(local))
        if conf.get("pyfunc_predict_fn", "predict") != "predict":
            native = None  # e.g. predict_proba: keep pyfunc's semantics
        flavor = "sklearn"
    else:
        flavor = "pyfunc"
    accepts_params = card.signature is not None and card.signature.params is not None
    pyfunc = None
    if native is None or not columns.numeric or accepts_params:
        import mlflow.pyfunc

        pyfunc = mlflow.pyfunc.load_model(str(local))
    example = None
    if card.saved_input_example_info is not None:
        try:
            example = card.load_input_example(str(local))
        except Exception:  # noqa: BLE001 - an unreadable example only skips the smoke test
            example = None
    output_name, output_dtype = _output(card.signature)
    return LoadedModel(
        source=source,
        flavor=flavor,
        columns=columns,
        signature=str(card.signature) if card.signature is not None else None,
        native=native,
        pyfunc=pyfunc,
        input_example=example,
        accepts_params=accepts_params,
        output_name=output_name,
        output_dtype=output_dtype,
    )


def _load_pickle(source: Resolved) -> LoadedModel:
    with open(source.uri, "rb") as handle:
        native = pickle.load(handle)  # noqa: S301 - the operator's own fallback artifact
    if not callable(getattr(native, "predict", None)):
        raise TypeError(f"{source.uri} holds a {type(native).__name__}, which cannot predict")
    names = getattr(native, "feature_names_in_", None)
    if names is None and hasattr(native, "get_booster"):
        names = native.get_booster().feature_names
    columns = Columns(tuple(str(n) for n in names) if names is not None else None)
    return LoadedModel(
        source=source, flavor="pickle", columns=columns, signature=None, native=native, pyfunc=None
    )


def _columns(signature: Any) -> Columns:
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        return Columns(None)
    names = tuple(spec.name for spec in signature.inputs.inputs)
    types = tuple(getattr(spec.type, "name", None) for spec in signature.inputs.inputs)
    return Columns(names, types)


def _output(signature: Any) -> tuple[str | None, np.dtype[Any] | None]:
    """The signature's first output: its name (when it has one) and numpy dtype."""
    outputs = getattr(signature, "outputs", None)
    if outputs is None or not outputs.inputs:
        return None, None
    spec = outputs.inputs[0]
    name = spec.name if outputs.has_input_names() else None
    kind = spec.type
    try:
        dtype = kind if isinstance(kind, np.dtype) else np.dtype(kind.to_numpy())
    except (AttributeError, TypeError):
        dtype = None
    return name, dtype


def _smoke_test(model: LoadedModel) -> None:
    """A model that cannot predict on its own input example never serves."""
    example = model.input_example
    if example is None:
        return
    import pandas as pd

    frame = example if isinstance(example, pd.DataFrame) else pd.DataFrame(example)
    if model.columns.names is not None:
        frame = frame[list(model.columns.names)]
    if model.fast:
        output = model.predict_matrix(frame.to_numpy(dtype=np.float64))
    else:
        assert model.pyfunc is not None
        output = model.pyfunc.predict(frame)
    predictions = np.asarray(output)
    if len(predictions) != len(frame):
        raise ValueError("the smoke prediction returned the wrong number of rows")
    model.output_dtype = predictions.dtype
