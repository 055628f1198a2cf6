"""Request bodies → a validated numeric matrix in the model's column order.

Accepted: MLflow's scoring formats (``dataframe_split``, ``dataframe_records``, ``instances``,
``inputs``; a CSV or Parquet table through :func:`parse_frame`) on ``/invocations``, and
``{"records": [...]}`` (or a bare list of records) on ``/predict``. Columns are checked against
the model's signature before anything reaches the model: a missing, extra, repeated or mistyped
column is an :class:`InputError` naming it (422); missing and undeclared columns are all named
in one error, with their count.
Whatever JSON arrives, the parser returns a finite float matrix of at least one row and one
column, or raises :class:`InputError` (``tests/serving/test_input_fuzz.py`` checks this).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hokusai.errors import InvalidInputError as InputError

__all__ = [
    "Columns",
    "InputError",
    "check_matrix",
    "check_size",
    "name_column_difference",
    "parse_frame",
    "parse_invocation",
    "parse_records",
]

NUMERIC_TYPES = {"double", "float", "long", "integer", "boolean"}
INTEGER_TYPES: dict[str, type[np.signedinteger[Any]]] = {"long": np.int64, "integer": np.int32}
"""MLflow's integer column types and the numpy type each is predicted in."""


@dataclass(frozen=True)
class Columns:
    """What the model expects: names in order and their MLflow types (None = unknown)."""

    names: tuple[str, ...] | None
    types: tuple[str | None, ...] | None = None

    @property
    def numeric(self) -> bool:
        return self.types is None or all(t is None or t in NUMERIC_TYPES for t in self.types)


def parse_invocation(body: Any, columns: Columns, *, max_rows: int) -> np.ndarray[Any, Any]:
    """An ``/invocations`` body in any of MLflow's scoring formats."""
    if not isinstance(body, Mapping):
        raise InputError(
            "The body must be a JSON object with one of dataframe_split, "
            "dataframe_records, instances or inputs."
        )
    keys = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs") if k in body]
    unknown = [
        k
        for k in body
        if k not in ("dataframe_split", "dataframe_records", "instances", "inputs", "params")
    ]
    if len(keys) != 1 or unknown:
        raise InputError(
            "The body must have exactly one of dataframe_split, dataframe_records, instances or "
            f"inputs{f'; unknown field {unknown[0]!r}' if unknown else ''}."
        )
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        return _split(value, columns, max_rows=max_rows)
    if key == "dataframe_records":
        return parse_records(value, columns, max_rows=max_rows)
    # instances / inputs: records, rows, or a column → values mapping
    if isinstance(value, Mapping):
        return _column_mapping(value, columns, max_rows=max_rows)
    if isinstance(value, list) and value and all(isinstance(r, Mapping) for r in value):
        return parse_records(value, columns, max_rows=max_rows)
    return _rows(value, columns, max_rows=max_rows)


def parse_records(records: Any, columns: Columns, *, max_rows: int) -> np.ndarray[Any, Any]:
    """A list of ``{column: value}`` records."""
    if isinstance(records, Mapping) and "records" in records and len(records) == 1:
        records = records["records"]
    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise InputError("Expected a list of records (objects mapping column to value).")
    check_size(len(records), max_rows)
    names = columns.names
    if names is None:
        names = tuple(str(k) for k in records[0])
    expected = set(names)
    for record in records:
        if record.keys() != expected:
            name_column_difference(record, names)
    rows = [[record[name] for name in names] for record in records]
    return _matrix(rows, names, columns)


def parse_frame(frame: Any, columns: Columns, *, max_rows: int) -> np.ndarray[Any, Any]:
    """A pandas DataFrame read from a ``text/csv`` or Parquet body: its header names the
    columns, checked as ``dataframe_split``'s are."""
    names = [str(name) for name in frame.columns]
    rows = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return _split({"columns": names, "data": rows}, columns, max_rows=max_rows)


def _split(value: Any, columns: Columns, *, max_rows: int) -> np.ndarray[Any, Any]:
    if not isinstance(value, Mapping) or "data" not in value:
        raise InputError("dataframe_split needs 'columns' and 'data'.")
    data = value["data"]
    given = value.get("columns")
    if not isinstance(data, list):
        raise InputError("dataframe_split.data must be a list of rows.")
    check_size(len(data), max_rows)
    if given is None:
        return _rows(data, columns, max_rows=max_rows)
    if not isinstance(given, list) or not all(isinstance(c, str) for c in given):
        raise InputError("dataframe_split.columns must be a list of column names.")
    _refuse_repeated(given, "dataframe_split.columns")
    names = columns.names or tuple(given)
    if set(given) != set(names):
        name_column_difference(given, names)
    for row in data:
        if not isinstance(row, list) or len(row) != len(given):
            raise InputError(f"Every dataframe_split row must have {len(given)} values.")
    if list(given) != list(names):
        order = [given.index(name) for name in names]
        data = [[row[i] for i in order] for row in data]
    return _matrix(data, names, columns)


def _column_mapping(
    value: Mapping[str, Any], columns: Columns, *, max_rows: int
) -> np.ndarray[Any, Any]:
    names = columns.names or tuple(str(k) for k in value)
    if set(value) != set(names):
        name_column_difference(value, names)
    lists = [value[name] if isinstance(value[name], list) else [value[name]] for name in names]
    lengths = {len(v) for v in lists}
    if len(lengths) != 1:
        raise InputError("Every column must have the same number of values.")
    check_size(lengths.pop(), max_rows)
    return _matrix([list(row) for row in zip(*lists, strict=True)], names, columns)


def _rows(value: Any, columns: Columns, *, max_rows: int) -> np.ndarray[Any, Any]:
    if not isinstance(value, list) or not all(isinstance(r, list) for r in value):
        raise InputError("Expected a list of rows (lists of values in signature order).")
    check_size(len(value), max_rows)
    width = len(columns.names) if columns.names else (len(value[0]) if value else 0)
    for row in value:
        if len(row) != width:
            raise InputError(f"Every row must have {width} values (the signature's columns).")
    names = columns.names or tuple(str(i) for i in range(width))
    return _matrix(value, names, columns)


def check_size(rows: int, max_rows: int) -> None:
    if rows == 0:
        raise InputError("The batch is empty: send at least one row.")
    if rows > max_rows:
        raise InputError(f"The batch has {rows} rows; at most {max_rows} are accepted.")


def _refuse_repeated(names: Sequence[str], where: str) -> None:
    """A column named twice would be read from one place and silently dropped from the other."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"Column {name!r} appears more than once in {where}.", column=name)
        seen.add(name)


def name_column_difference(given: Iterable[str], expected: Sequence[str]) -> None:
    """One error naming every missing column (in signature order) and every column the
    signature does not declare (in the order sent), with their counts: a client fixing a
    30-column payload learns everything from one answer. ``column`` is the first named."""
    given = list(dict.fromkeys(given))
    sent, declared = set(given), set(expected)
    missing = [name for name in expected if name not in sent]
    extra = [name for name in given if name not in declared]
    parts = []
    if missing:
        parts.append(
            f"Missing {len(missing)} of the {len(expected)} columns the model signature "
            f"requires: {_names(missing)}"
        )
    if extra:
        plural = "s" if len(extra) != 1 else ""
        parts.append(f"{len(extra)} column{plural} not in the model signature: {_names(extra)}")
    if parts:
        raise InputError("; ".join(parts) + ".", column=(missing or extra)[0])


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _matrix(
    rows: Sequence[Sequence[Any]], names: Sequence[str], columns: Columns
) -> np.ndarray[Any, Any]:
    if not names:
        raise InputError("Inputs must have at least one column.")
    try:
        raw = np.asarray(rows)
    except (TypeError, ValueError):  # ragged rows
        raw = None
    if raw is None or raw.ndim != 2 or raw.dtype.kind not in "fiub":
        # strings (even "1.5"), None or nested values: name the first offending column
        _find_bad_column(rows, names)
        raise InputError("Inputs must be rows of numbers.")
    return check_matrix(raw.astype(np.float64, copy=False), names, columns)


def check_matrix(
    matrix: np.ndarray[Any, Any], names: Sequence[str], columns: Columns
) -> np.ndarray[Any, Any]:
    """``matrix`` (float64, columns in signature order) once every value is finite, every
    integer column holds whole numbers its type can hold and every boolean column only 0 and 1;
    else :class:`InputError` naming the column."""
    if not np.isfinite(matrix).all():
        bad = int(np.argwhere(~np.isfinite(matrix))[0][1])
        raise InputError(
            f"Column {names[bad]!r} has a missing or non-finite value.", column=names[bad]
        )
    if columns.types is not None:
        for index, kind in enumerate(columns.types):
            if kind == "boolean" and not np.isin(matrix[:, index], (0.0, 1.0)).all():
                raise InputError(
                    f"Column {names[index]!r} must be a boolean (true/false, or 1/0).",
                    column=names[index],
                )
            integer = INTEGER_TYPES.get(kind or "")
            if integer is None:
                continue
            if not np.all(np.mod(matrix[:, index], 1) == 0):
                raise InputError(
                    f"Column {names[index]!r} must be an integer ({kind}).", column=names[index]
                )
            if not _fits(matrix[:, index], integer):
                raise InputError(
                    f"Column {names[index]!r} holds a value outside the range of {kind}.",
                    column=names[index],
                )
    return matrix


def _fits(column: np.ndarray[Any, Any], dtype: type[np.signedinteger[Any]]) -> bool:
    """Every (whole) value of ``column`` fits ``dtype``; the bounds are powers of two, exact in
    float64, so the comparison is too."""
    bound = -float(np.iinfo(dtype).min)
    return bool(column.size == 0 or (column.min() >= -bound and column.max() < bound))


def _find_bad_column(rows: Sequence[Sequence[Any]], names: Sequence[str]) -> None:
    for row in rows:
        for index, value in enumerate(row):
            if value is None:
                raise InputError(
                    f"Column {names[index]!r} has a missing value.", column=names[index]
                )
            if not isinstance(value, int | float):
                raise InputError(
                    f"Column {names[index]!r} must be numeric; got {value!r}.",
                    column=names[index],
                )
