"""Signature checks at registration: the input example must satisfy the signature.

MLflow enforces a signature only when a logged model is served; a registry that accepts an
example that violates its own signature publishes a model whose documented input does not work.
We check before anything is written, column by column, so the error names the column.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hokusai.errors import ModelPredictionError, SignatureMismatchError

__all__ = ["check_example", "infer_signature", "resolve_signature"]


def _as_frame(example: Any) -> Any:
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        return example
    if isinstance(example, dict):
        return pd.DataFrame(
            {k: v if isinstance(v, list | tuple) else [v] for k, v in example.items()}
        )
    return pd.DataFrame(example)


def check_example(example: Any, signature: Any) -> None:
    """Raise SignatureMismatchError (naming the column) unless ``example`` satisfies it."""
    from mlflow.exceptions import MlflowException
    from mlflow.models.utils import _enforce_schema
    from mlflow.types.schema import Schema

    schema = signature.inputs
    if schema is None:
        return
    if not schema.has_input_names():
        try:
            _enforce_schema(example, schema)
        except MlflowException as exc:
            raise SignatureMismatchError(
                f"Input example does not match the signature: {exc.message}"
            ) from exc
        return

    frame = _as_frame(example)
    declared = schema.input_names()
    present = [str(c) for c in frame.columns]
    for spec in schema.inputs:
        if spec.name not in present and getattr(spec, "required", True):
            raise SignatureMismatchError(
                f"Input example is missing column {spec.name!r} required by the signature.",
                column=spec.name,
            )
    for column in present:
        if column not in declared:
            raise SignatureMismatchError(
                f"Input example has column {column!r}, which the signature does not declare.",
                column=column,
            )
    try:
        _enforce_schema(frame, schema)  # one pass; per column only to name the offender
        return
    except MlflowException as exc:
        whole_error = exc
    for spec in schema.inputs:
        if spec.name not in present:
            continue
        try:
            _enforce_schema(frame[[spec.name]], Schema([spec]))
        except MlflowException as exc:
            raise SignatureMismatchError(
                f"Input example column {spec.name!r} does not match the signature "
                f"({spec.type}): {exc.message}",
                column=spec.name,
            ) from exc
    raise SignatureMismatchError(
        f"Input example does not match the signature: {whole_error.message}"
    ) from whole_error


def _predict(predict: Callable[[Any], Any], example: Any) -> Any:
    try:
        return predict(example)
    except Exception as exc:
        raise ModelPredictionError(
            f"The model failed to predict on its input example: {type(exc).__name__}: {exc}"
        ) from exc


def infer_signature(predict: Callable[[Any], Any], example: Any) -> Any:
    """Infer a signature from the example and the model's own prediction on it."""
    import mlflow.models

    return mlflow.models.infer_signature(example, _predict(predict, example))


def resolve_signature(signature: Any, example: Any, predict: Callable[[Any], Any] | None) -> Any:
    """The signature to log: checked when both are given, inferred when only the example is."""
    if example is None:
        return signature
    if signature is None:
        return infer_signature(predict, example) if predict is not None else None
    check_example(example, signature)
    if predict is not None:
        _predict(predict, example)
    return signature
