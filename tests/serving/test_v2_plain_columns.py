"""The V2 reader's shortcut for one tensor per column (:func:`hokusai.serving.v2.plain_columns`)
reads exactly what the general reader (``_tensors`` + ``_matrix``) reads.

Inputs are fuzzed close to that layout (names permuted, repeated, missing or unknown; every
datatype family; shapes ``[n]``, ``[n, 1]`` and others; numbers, booleans, nulls, strings, big
ints, nesting; parameters present or not): whenever the shortcut answers, its matrix (or its
error) must be the general reader's. Generation is derandomized, as in test_input_fuzz.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hokusai.errors import HokusaiError
from hokusai.serving import v2
from hokusai.serving.inputs import Columns

MAX_ROWS = 5
FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=600)
COLUMNS = [
    Columns(("a", "b", "c"), ("double", "long", "double")),
    Columns(("a", "b", "c"), None),
    Columns(("a",), ("double",)),
]
IDS = ["signed", "names-only", "one-column"]

VALUES = st.one_of(
    st.floats(-1e3, 1e3),
    st.floats(-1e3, 1e3),
    st.integers(-5, 5),
    st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, 2**80, 1e308, 0.5]),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
    st.lists(st.floats(-5, 5), min_size=1, max_size=2),
)
DATATYPES = st.sampled_from(["FP64", "FP64", "FP32", "FP16", "INT64", "BOOL", "BYTES", "X"])
PARAMETERS = st.sampled_from([None, None, {}, {"binary_data_size": 8}, {"content_type": "np"}, []])


@st.composite
def requests(draw: st.DrawFn, names: tuple[str, ...]) -> list[Any]:
    """A V2 ``inputs`` list near "one flat tensor per column": half of them exactly that (any
    order, ``[n]`` or ``[n, 1]``, numbers only), half with any of the fields off."""
    plain = draw(st.booleans())
    order = list(draw(st.permutations(names)))
    if not plain:
        order += draw(st.lists(st.sampled_from([*names, "x", ""]), max_size=1))
        if draw(st.booleans()) and len(order) > 1:
            order.pop()
    rows = draw(st.integers(0, MAX_ROWS + 1))
    shapes = [[rows], [rows, 1]]
    if not plain:
        shapes += [[rows, 2], [True] if rows == 1 else [rows + 1], [], "x"]
    inputs: list[Any] = []
    for name in order:
        size = rows if plain or draw(st.integers(0, 9)) else rows + 1
        values = st.floats(-1e3, 1e3) | st.integers(-5, 5) if plain else VALUES
        spec: dict[str, Any] = {
            "name": name,
            "shape": draw(st.sampled_from(shapes)),
            "datatype": "FP64" if plain else draw(DATATYPES),
            "data": draw(st.lists(values, min_size=size, max_size=size)),
        }
        parameters = draw(st.sampled_from([None, {}]) if plain else PARAMETERS)
        if parameters is not None:
            spec["parameters"] = parameters
        inputs.append(spec)
    if not plain and draw(st.integers(0, 9)) == 0:
        inputs.append("not a tensor")
    return inputs


def general(inputs: list[Any], columns: Columns) -> np.ndarray[Any, Any] | HokusaiError:
    try:
        return v2._matrix(v2._tensors(inputs, b""), columns, max_rows=MAX_ROWS)
    except HokusaiError as exc:
        return exc


def shortcut(inputs: list[Any], columns: Columns) -> np.ndarray[Any, Any] | HokusaiError | None:
    try:
        return v2.plain_columns(inputs, columns, max_rows=MAX_ROWS)
    except HokusaiError as exc:
        return exc


def assert_same(fast: np.ndarray[Any, Any] | HokusaiError, slow: Any) -> None:
    if isinstance(fast, HokusaiError):
        assert type(slow) is type(fast) and str(slow) == str(fast)
        return
    assert isinstance(slow, np.ndarray), slow
    assert fast.dtype == slow.dtype == np.float64
    assert fast.shape == slow.shape and fast.flags.c_contiguous
    assert np.array_equal(fast, slow)


@pytest.mark.parametrize("columns", COLUMNS, ids=IDS)
def test_the_shortcut_reads_what_the_general_reader_reads(columns: Columns) -> None:
    assert columns.names is not None
    answered = 0

    @FUZZ
    @given(requests(columns.names))
    def check(inputs: list[Any]) -> None:
        nonlocal answered
        fast = shortcut(inputs, columns)
        if fast is not None:
            answered += 1
            assert_same(fast, general(inputs, columns))

    check()
    assert answered > 200  # the fuzzing reaches the shortcut, not only its refusals


def test_the_usual_request_takes_the_shortcut() -> None:
    columns = COLUMNS[0]
    inputs = [
        {"name": "c", "shape": [2], "datatype": "FP64", "data": [0.5, 1.5]},
        {"name": "a", "shape": [2, 1], "datatype": "FP64", "data": [1.0, 2.0], "parameters": {}},
        {"name": "b", "shape": [2], "datatype": "FP64", "data": [3, 4]},
    ]
    fast = v2.plain_columns(inputs, columns, max_rows=MAX_ROWS)
    assert fast is not None
    assert fast.tolist() == [[1.0, 3.0, 0.5], [2.0, 4.0, 1.5]]
    assert_same(fast, general(inputs, columns))


@pytest.mark.parametrize(
    "change",
    [
        {"datatype": "INT64"},
        {"datatype": "FP32", "data": [1e300]},
        {"datatype": "FP16", "data": [1.0]},
        {"shape": [True]},
        {"data": [True]},
        {"data": [2**64]},
        {"parameters": {"binary_data_size": 8}},
        {"name": "x"},
    ],
    ids=[
        "int-datatype",
        "fp32-out-of-range",
        "fp16",
        "bool-shape",
        "bool-value",
        "int-beyond-64-bits",
        "binary",
        "unknown",
    ],
)
def test_anything_else_goes_the_general_way(change: dict[str, Any]) -> None:
    columns = COLUMNS[2]
    spec = {"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0], **change}
    assert v2.plain_columns([spec], columns, max_rows=MAX_ROWS) is None
