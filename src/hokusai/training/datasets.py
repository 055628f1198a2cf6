"""Training data: a CSV the user names, or a dataset that ships with scikit-learn.

Whatever the source, a :class:`Dataset` is ready to train on: every feature column is
``float64`` (so the logged signature declares ``double`` and never rejects a float where the
CSV happened to hold integers), nothing is missing or infinite, and the target is encoded as
class indices ``0 … k-1`` with the original labels kept in :attr:`Dataset.classes`. Problems
are :class:`~hokusai.errors.ValidationError` naming the file and column, raised before any
model is trained or anything is written.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hokusai.errors import ValidationError

__all__ = ["DEFAULT_DATASET", "Dataset", "load_csv", "load_dataset", "load_default_dataset"]

DEFAULT_DATASET = "sklearn.breast_cancer"
"""Name of the dataset trained on when no CSV is given (569 rows, 30 features, 2 classes)."""

MIN_ROWS_PER_CLASS = 2
"""A stratified split needs every class on both sides of it."""


@dataclass(frozen=True)
class Dataset:
    """Features and encoded target, ready for a classifier."""

    name: str
    """``sklearn.breast_cancer`` or the CSV's path."""
    features: Any
    """``pandas.DataFrame`` of ``float64`` columns, in file order, with the file's names."""
    target: Any
    """``pandas.Series`` of ``int64`` class indices ``0 … k-1``."""
    target_name: str
    """Name of the target column."""
    classes: list[Any]
    """Original labels; ``classes[i]`` is the label of class index ``i``."""
    digest: str = ""
    """``sha256:<hex>`` of the CSV file's bytes (``sha256sum`` gives the same hex), or of the
    default dataset written as CSV: what a registration records as trained on."""

    @property
    def feature_names(self) -> list[str]:
        """Column names of :attr:`features`."""
        return [str(c) for c in self.features.columns]


def load_dataset(data: str | Path | None = None, target: str | None = None) -> Dataset:
    """The CSV at ``data`` labelled by column ``target``, or the default dataset."""
    if data is None:
        if target is not None:
            raise ValidationError(
                f"--target {target!r} needs --data: the default dataset has its own target."
            )
        return load_default_dataset()
    if target is None:
        raise ValidationError(f"--data {data} needs --target naming the label column.")
    return load_csv(data, target)


def load_default_dataset() -> Dataset:
    """scikit-learn's breast cancer dataset (0 = malignant, 1 = benign)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    digest = _sha256(bunch.frame.to_csv(index=False).encode("utf-8"))
    return _prepare(bunch.frame, str(bunch.target.name), name=DEFAULT_DATASET, digest=digest)


def load_csv(path: str | Path, target: str) -> Dataset:
    """Read and validate a CSV with a header row; ``target`` names the label column."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise ValidationError(f"Training data {path} {what}.")
    try:
        raw = path.read_bytes()  # read once: the digest is of exactly what was trained on
        frame = pd.read_csv(io.BytesIO(raw))
    except pd.errors.EmptyDataError as exc:
        raise ValidationError(f"Training data {path} is empty.") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise ValidationError(f"Training data {path} is not a readable CSV: {exc}") from exc
    return _prepare(frame, target, name=str(path), digest=_sha256(raw))


def _sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _prepare(frame: Any, target: str, *, name: str, digest: str) -> Dataset:
    """Validate a frame and split it into float features and an encoded target."""
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    if target not in columns:
        raise ValidationError(
            f"{name}: target column {target!r} not found; columns are {_list(columns)}."
        )
    if len(set(columns)) != len(columns):
        duplicate = next(c for c in columns if columns.count(c) > 1)
        raise ValidationError(f"{name}: column {duplicate!r} appears more than once.")
    feature_names = [c for c in columns if c != target]
    if not feature_names:
        raise ValidationError(f"{name}: there are no feature columns besides {target!r}.")
    if len(frame) == 0:
        raise ValidationError(f"{name}: there are no data rows.")

    for column in columns:
        _check_complete(frame[column], column, name=name)
    features = pd.DataFrame(
        {column: _numeric(frame[column], column, name=name) for column in feature_names},
        index=pd.RangeIndex(len(frame)),
    )
    codes, classes = _encode_target(frame[target].reset_index(drop=True), target, name=name)
    return Dataset(
        name=name,
        features=features,
        target=pd.Series(codes, name=target, dtype="int64"),
        target_name=target,
        classes=classes,
        digest=digest,
    )


def _check_complete(column: Any, label: str, *, name: str) -> None:
    missing = column.isna().to_numpy()
    if missing.any():
        first = int(missing.argmax()) + 1
        raise ValidationError(
            f"{name}: column {label!r} has {int(missing.sum())} missing value(s) "
            f"(first in data row {first}); fill or drop them before training."
        )


def _numeric(column: Any, label: str, *, name: str) -> Any:
    """The column as ``float64``, or a ValidationError naming it."""
    import numpy as np
    import pandas as pd

    if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
        sample = next((v for v in column if not _is_number(v)), column.iloc[0])
        raise ValidationError(
            f"{name}: feature column {label!r} is not numeric (found {sample!r}); "
            "encode it as numbers or drop it."
        )
    values = column.astype("float64").to_numpy()
    infinite = ~np.isfinite(values)
    if infinite.any():
        first = int(infinite.argmax()) + 1
        raise ValidationError(
            f"{name}: feature column {label!r} has an infinite value (data row {first})."
        )
    return values


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _encode_target(column: Any, label: str, *, name: str) -> tuple[Any, list[Any]]:
    """Class indices and the sorted original labels."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_float_dtype(column):
        values = column.to_numpy()
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise ValidationError(
                f"{name}: target column {label!r} holds continuous values; training is "
                "classification and needs class labels."
            )
        column = column.astype("int64")
    elif not (
        pd.api.types.is_integer_dtype(column)
        or pd.api.types.is_bool_dtype(column)
        or pd.api.types.is_string_dtype(column)
        or pd.api.types.is_object_dtype(column)
    ):
        raise ValidationError(
            f"{name}: target column {label!r} has type {column.dtype}; expected class labels."
        )
    try:
        classes, codes = np.unique(column.to_numpy(), return_inverse=True)
    except TypeError as exc:  # labels of mixed types cannot be ordered
        raise ValidationError(
            f"{name}: target column {label!r} mixes label types; use one type of label."
        ) from exc
    if len(classes) < 2:
        found = f"only {_plain(classes[0])!r}" if len(classes) else "no labels"
        raise ValidationError(
            f"{name}: target column {label!r} needs at least 2 classes; found {found}."
        )
    counts = np.bincount(codes, minlength=len(classes))
    rare = int(counts.argmin())
    if counts[rare] < MIN_ROWS_PER_CLASS:
        raise ValidationError(
            f"{name}: class {_plain(classes[rare])!r} of target column {label!r} has "
            f"{int(counts[rare])} row(s); every class needs at least {MIN_ROWS_PER_CLASS} "
            "for a stratified train/test split."
        )
    return codes.astype("int64"), [_plain(c) for c in classes]


def _plain(value: Any) -> Any:
    """numpy scalars → Python values, so labels are JSON-serialisable."""
    return value.item() if hasattr(value, "item") else value


def _list(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")
