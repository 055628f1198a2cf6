"""Request bodies, fuzzed: any JSON gives predictions or a 4xx-coded HokusaiError, never another
exception; a column named twice is a 422 naming it.

The parser is fuzzed directly (many examples, with and without a signature) and through
``/invocations`` and ``/predict`` of a server on a real MLflow store (fewer examples). Generation
is derandomized, as in tests/rest/test_fuzz.py: a failure reproduces on every machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hokusai.errors import HTTP_STATUS, InvalidInputError
from hokusai.serving.inputs import Columns, parse_invocation, parse_records
from tests.serving.conftest import MODEL, Store, serving_settings

MAX_ROWS = 20
FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=400)

SIGNED = Columns(("a", "b", "c"), ("double", "long", "double"))
UNSIGNED = Columns(None)
COLUMNS = [SIGNED, Columns(("a", "b", "c"), None), UNSIGNED]
IDS = ["signed", "names-only", "unsigned"]

# JSON values as a client can send them: what Python's json module (or orjson) produces.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=25,
)
NUMBERS = st.one_of(st.integers(-5, 5), st.floats(-10, 10), st.booleans())
CELLS = st.one_of(NUMBERS, NUMBERS, NUMBERS, SCALARS, st.lists(NUMBERS, max_size=2))


def bodies(names: list[str]) -> st.SearchStrategy[Any]:
    """Bodies close to the four scoring formats for a model with columns ``names`` (so the
    fuzzing reaches deep into each: right names, some repeated, missing or unknown), and any
    JSON."""
    name = st.sampled_from([*names, "x", ""])
    width = len(names)
    column_lists = st.one_of(
        st.lists(name, max_size=width + 2),
        st.permutations(names).flatmap(
            lambda order: st.lists(name, max_size=2).map(lambda extra: [*order, *extra])
        ),
    )
    row = st.lists(CELLS, min_size=0, max_size=width + 1) | st.lists(
        NUMBERS, min_size=width, max_size=width
    )
    rows = st.lists(row, max_size=4)
    record = st.dictionaries(name, CELLS, max_size=width + 1) | st.fixed_dictionaries(
        {n: NUMBERS for n in names}, optional={"x": CELLS}
    )
    records = st.lists(record, max_size=4)
    mapping = st.dictionaries(name, st.one_of(CELLS, st.lists(CELLS, max_size=3)), max_size=width)
    split = st.fixed_dictionaries(
        {"data": st.one_of(rows, rows, JSON), "columns": st.one_of(column_lists, JSON)},
        optional={"index": JSON},
    ) | st.fixed_dictionaries({"data": st.one_of(rows, JSON)})
    formats = st.one_of(
        st.fixed_dictionaries({"dataframe_split": st.one_of(split, JSON)}),
        st.fixed_dictionaries({"dataframe_records": st.one_of(records, JSON)}),
        st.fixed_dictionaries({"instances": st.one_of(records, rows, mapping)}),
        st.fixed_dictionaries(
            {"inputs": st.one_of(records, rows, mapping)}, optional={"params": JSON, "extra": JSON}
        ),
    )
    return st.one_of(JSON, formats, formats)


def predict_bodies(names: list[str]) -> st.SearchStrategy[Any]:
    """``/predict`` bodies: a list of records, ``{"records": [...]}``, or any JSON."""
    name = st.sampled_from([*names, "x", ""])
    record = st.dictionaries(name, CELLS, max_size=len(names) + 1) | st.fixed_dictionaries(
        {n: NUMBERS for n in names}, optional={"x": CELLS}
    )
    records = st.lists(record, max_size=4)
    return st.one_of(JSON, records, st.fixed_dictionaries({"records": records}))


SIGNATURE = ["a", "b", "c"]
BODIES = bodies(SIGNATURE)
PREDICT_BODIES = predict_bodies(SIGNATURE)


def _parsed_or_refused(parse: Any, body: Any, columns: Columns) -> None:
    try:
        matrix = parse(body, columns, max_rows=MAX_ROWS)
    except InvalidInputError as exc:
        refused = exc  # any other exception fails the test
    else:
        refused = None
    if refused is not None:
        assert refused.code == "invalid_input" and refused.status == 422
        return
    assert isinstance(matrix, np.ndarray) and matrix.dtype == np.float64
    assert matrix.ndim == 2 and 1 <= matrix.shape[0] <= MAX_ROWS and matrix.shape[1] >= 1
    assert np.isfinite(matrix).all()
    if columns.names is not None:
        assert matrix.shape[1] == len(columns.names)


@pytest.mark.parametrize("columns", COLUMNS, ids=IDS)
@FUZZ
@given(body=BODIES)
def test_any_invocation_body_parses_to_a_matrix_or_is_invalid_input(columns, body):
    _parsed_or_refused(parse_invocation, body, columns)


@pytest.mark.parametrize("columns", COLUMNS, ids=IDS)
@settings(FUZZ, max_examples=200)
@given(body=PREDICT_BODIES)
def test_any_predict_body_parses_to_a_matrix_or_is_invalid_input(columns, body):
    _parsed_or_refused(parse_records, body, columns)


@pytest.mark.parametrize("columns", COLUMNS, ids=IDS)
def test_a_column_named_twice_is_refused_naming_it(columns):
    body = {"dataframe_split": {"columns": ["a", "b", "a", "c"], "data": [[1, 2, 3, 4]]}}
    with pytest.raises(InvalidInputError, match="Column 'a' appears more than once") as info:
        parse_invocation(body, columns, max_rows=MAX_ROWS)
    assert info.value.code == "invalid_input"
    assert info.value.column == "a"


def test_rows_without_columns_are_refused():
    for body in ({"inputs": [[]]}, {"dataframe_records": [{}]}):
        with pytest.raises(InvalidInputError, match="at least one column") as info:
            parse_invocation(body, UNSIGNED, max_rows=MAX_ROWS)
        assert info.value.code == "invalid_input"


# Through the server ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, models: list[Any], data: Any
) -> Iterator[tuple[TestClient, list[str]]]:
    """One prediction server on a real store serving an xgboost model with a signature."""
    from hokusai.serving.app import create_app

    root = tmp_path_factory.mktemp("serving-fuzz")
    config = root / "config.yaml"
    config.write_text(
        f"experiment_name: hokusai-models\nfallback_model_path: {root / 'xgb_model.pkl'}\n"
    )
    store = Store(root / "home", config)
    features, _ = data
    store.register(store.log(models[0], example=features.head(3)), alias="champion")
    app = create_app(
        serving_settings(store, model_variant=f"models:/{MODEL}@champion", max_batch_rows=50),
        store.settings,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, list(features.columns)


def _answered(response: Any) -> None:
    """200 with one prediction per row, or a 4xx whose code carries that status."""
    if response.status_code == 200:
        assert isinstance(response.json()["predictions"], list)
        return
    assert 400 <= response.status_code < 500, response.text
    code = response.json()["error"]["code"]
    assert HTTP_STATUS[code] == response.status_code, response.text


def _post(client: TestClient, route: str, body: Any) -> Any:
    # Python's json writes what orjson may refuse (integers beyond 64 bits): a 400, not a crash.
    return client.post(
        route, content=json.dumps(body), headers={"content-type": "application/json"}
    )


@settings(FUZZ, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_body_on_invocations_is_predictions_or_4xx(server, data):
    client, columns = server
    _answered(_post(client, "/invocations", data.draw(bodies(columns))))


@settings(FUZZ, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_body_on_predict_is_predictions_or_4xx(server, data):
    client, columns = server
    _answered(_post(client, "/predict", data.draw(predict_bodies(columns))))


@settings(FUZZ, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.lists(NUMBERS, min_size=6, max_size=6), min_size=1, max_size=5))
def test_well_formed_bodies_always_predict(server, rows):
    client, columns = server
    for body in (
        {"dataframe_split": {"columns": columns, "data": rows}},
        {"inputs": rows},
        {"dataframe_records": [dict(zip(columns, row, strict=True)) for row in rows]},
    ):
        response = _post(client, "/invocations", body)
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == len(rows)


def test_duplicate_column_names_are_422_naming_the_column(server):
    client, columns = server
    body = {"dataframe_split": {"columns": [*columns, columns[0]], "data": [[0.5] * 7]}}
    response = _post(client, "/invocations", body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert (
        f"Column {columns[0]!r} appears more than once in dataframe_split.columns"
        in (error["message"])
    )
