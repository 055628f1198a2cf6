"""The Open Inference Protocol V2 (KServe, MLServer, Triton), spoken to by Triton's own client
(``tritonclient[http]``): health, server and model metadata, inference with one tensor per column
and with one 2-D tensor, JSON and binary tensors both ways, a hot swap under V2 load, the metrics
labelled by protocol, and malformed bodies — a table of them and a fuzz — that are always a 4xx
with ``{"error": str, "code": str}``, never a 5xx.

One store per module with two registered versions, each served by a real uvicorn server: an
xgboost model on double columns (version 1) and a pyfunc model whose signature has one column of
each numeric MLflow type (version 2). Predictions are compared with
``mlflow.pyfunc.load_model(uri).predict`` on the same rows. Fuzz generation is derandomized, as in
tests/serving/test_input_fuzz.py.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

import hokusai
from tests.serving.conftest import (
    MODEL,
    LiveServer,
    Served,
    Store,
    client_of,
    serving_settings,
    store_in,
    write_pickle,
)

FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow],
)
V2_TYPES = {
    "float64": "FP64",
    "float32": "FP32",
    "int64": "INT64",
    "int32": "INT32",
    "bool": "BOOL",
}


class Mixed(mlflow.pyfunc.PythonModel):
    """One column of each numeric MLflow type; each weighs differently in the prediction."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        frame = model_input
        return frame["d"] + 2 * frame["f"] + 3 * frame["l"] + 5 * frame["i"] + 7 * frame["b"]


def _mixed_frame() -> pd.DataFrame:
    """Values exact in every dtype they travel in (float32 included)."""
    return pd.DataFrame(
        {
            "d": np.array([0.5, -1.25, 3.0, 8.0]),
            "f": np.array([1.5, 0.25, -2.0, 0.0], dtype=np.float32),
            "l": np.array([1, -2, 40, 0], dtype=np.int64),
            "i": np.array([3, 0, -7, 1], dtype=np.int32),
            "b": np.array([True, False, True, False]),
        }
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, models: list[Any], data: Any) -> Store:
    """Version 1 (alias champion): xgboost on double columns; version 2: :class:`Mixed`."""
    store = store_in(tmp_path_factory.mktemp("protocol-v2"))
    features, _ = data
    store.register(store.log(models[0], example=features.head(3)), alias="champion")
    store.register(store.log(Mixed(), example=_mixed_frame().head(2), flavor="pyfunc"))
    return store


def _serve(store: Store, variant: str, version: str, frame: pd.DataFrame) -> Iterator[Served]:
    from hokusai.serving.app import create_app

    app = create_app(
        serving_settings(store, model_variant=variant, max_batch_rows=500), store.settings
    )
    pyfunc = mlflow.pyfunc.load_model(store.client.get_model_version_download_uri(MODEL, version))
    with LiveServer(app) as server:
        yield Served(server, pyfunc, frame, version)


@pytest.fixture(scope="module")
def xgb(registry: Store, data: Any) -> Iterator[Served]:
    features, _ = data
    yield from _serve(registry, f"models:/{MODEL}@champion", "1", features.head(7))


@pytest.fixture(scope="module")
def mixed(registry: Store) -> Iterator[Served]:
    yield from _serve(registry, f"models:/{MODEL}/2", "2", _mixed_frame())


@pytest.fixture(scope="module")
def http(xgb: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=xgb.url, timeout=30) as client:
        yield client


def _triton(served: Served) -> Any:
    return triton.InferenceServerClient(url=f"127.0.0.1:{served.server.port}")


@pytest.fixture
def client(xgb: Served) -> Iterator[Any]:
    connection = _triton(xgb)
    yield connection
    connection.close()


def _column_tensors(
    frame: pd.DataFrame, *, binary: bool, as_column: bool = False, order: list[str] | None = None
) -> list[Any]:
    """One tensor per column, named by it: shape ``[n]`` (or ``[n, 1]``), its own datatype."""
    tensors = []
    for name in order or list(frame.columns):
        values = frame[name].to_numpy()
        if as_column:
            values = values.reshape(-1, 1)
        tensor = triton.InferInput(str(name), list(values.shape), np_to_triton_dtype(values.dtype))
        tensor.set_data_from_numpy(values, binary_data=binary)
        tensors.append(tensor)
    return tensors


def _matrix_tensor(frame: pd.DataFrame, *, binary: bool, dtype: Any = np.float64) -> list[Any]:
    """The whole frame as one 2-D tensor ``[n, k]``, columns in the frame's (signature's) order."""
    values = frame.to_numpy(dtype=dtype)
    tensor = triton.InferInput("input", list(values.shape), np_to_triton_dtype(values.dtype))
    tensor.set_data_from_numpy(values, binary_data=binary)
    return [tensor]


def _v2_error(response: Any, statuses: set[int] | int) -> dict[str, Any]:
    """A V2 error: the status expected and ``{"error": message, "code": machine code}``."""
    allowed = {statuses} if isinstance(statuses, int) else statuses
    assert response.status_code in allowed, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("code"), str) and body["code"], body
    return dict(body)


# Health and metadata ------------------------------------------------------------------------


def test_server_live_ready_and_metadata(client, http):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.get_server_metadata() == {
        "name": "hokusai",
        "version": hokusai.__version__,
        "extensions": ["binary_tensor_data"],
    }
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").json() == {"ready": True}


def test_the_model_answers_to_its_registered_name_to_model_and_to_its_version(client, http):
    for name in (MODEL, "model"):
        assert client.is_model_ready(name)
        assert client.is_model_ready(name, "1")
        ready = http.get(f"/v2/models/{name}/ready")
        assert ready.status_code == 200
        assert ready.json() == {"name": MODEL, "ready": True}
    assert not client.is_model_ready("nope")
    assert not client.is_model_ready(MODEL, "2")  # registered, but not the version serving
    assert not client.is_model_ready("model", "7")
    _v2_error(http.get("/v2/models/nope/ready"), 404)
    _v2_error(http.get(f"/v2/models/{MODEL}/versions/2/ready"), 404)


def test_model_metadata_comes_from_the_signature(client, xgb):
    expected = {
        "name": MODEL,
        "versions": ["1"],
        "platform": "mlflow-xgboost",
        "inputs": [{"name": c, "datatype": "FP64", "shape": [-1]} for c in xgb.columns],
        "outputs": [
            {
                "name": "predict",
                "datatype": V2_TYPES[str(np.asarray(xgb.pyfunc.predict(xgb.frame)).dtype)],
                "shape": [-1],
            }
        ],
    }
    assert client.get_model_metadata(MODEL) == expected
    assert client.get_model_metadata("model") == expected
    assert client.get_model_metadata(MODEL, "1") == expected
    assert client.get_model_metadata("model", "1") == expected


def test_every_numeric_mlflow_type_has_its_v2_datatype(mixed):
    connection = _triton(mixed)
    try:
        metadata = connection.get_model_metadata(MODEL, "2")
    finally:
        connection.close()
    assert metadata["platform"] == "mlflow-pyfunc"
    assert metadata["versions"] == ["2"]
    assert metadata["inputs"] == [
        {"name": "d", "datatype": "FP64", "shape": [-1]},
        {"name": "f", "datatype": "FP32", "shape": [-1]},
        {"name": "l", "datatype": "INT64", "shape": [-1]},
        {"name": "i", "datatype": "INT32", "shape": [-1]},
        {"name": "b", "datatype": "BOOL", "shape": [-1]},
    ]
    assert metadata["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]


def test_unknown_models_and_versions_are_404(client, http):
    for call in (
        lambda: client.get_model_metadata("nope"),
        lambda: client.get_model_metadata(MODEL, "7"),
        lambda: client.infer("nope", _matrix_tensor(pd.DataFrame([[1.0] * 6]), binary=False)),
        lambda: client.infer(
            MODEL, _matrix_tensor(pd.DataFrame([[1.0] * 6]), binary=False), model_version="2"
        ),
    ):
        with pytest.raises(InferenceServerException) as info:
            call()
        assert info.value.status() == "404"
        assert info.value.message()
    for path in (
        "/v2/models/nope",
        f"/v2/models/{MODEL}/versions/7",
        "/v2/models/model/versions/0",
    ):
        _v2_error(http.get(path), 404)


# Inference ----------------------------------------------------------------------------------


@pytest.mark.parametrize("binary_in", [False, True], ids=["json-in", "binary-in"])
@pytest.mark.parametrize("binary_out", [False, True], ids=["json-out", "binary-out"])
def test_one_tensor_per_column_predicts_like_pyfunc(client, xgb, binary_in, binary_out):
    outputs = [triton.InferRequestedOutput("predict", binary_data=binary_out)]
    result = client.infer(
        MODEL,
        _column_tensors(xgb.frame, binary=binary_in),
        outputs=outputs,
        request_id="req-1",
    )
    assert result.as_numpy("predict").tolist() == xgb.expected()
    response = result.get_response()
    assert response["model_name"] == MODEL
    assert response["model_version"] == "1"
    assert response["id"] == "req-1"
    (output,) = response["outputs"]
    assert output["name"] == "predict"
    assert output["datatype"] == "INT64"
    assert output["shape"] == [len(xgb.frame)]
    if binary_out:
        assert output["parameters"]["binary_data_size"] == 8 * len(xgb.frame)
        assert "data" not in output
    else:
        assert output["data"] == xgb.expected()


def test_columns_come_in_any_order_and_as_n_by_1(client, xgb):
    order = xgb.columns[::-1]
    for as_column in (False, True):
        tensors = _column_tensors(xgb.frame, binary=False, as_column=as_column, order=order)
        result = client.infer("model", tensors, model_version="1")
        assert result.as_numpy("predict").tolist() == xgb.expected()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["FP64", "FP32"])
def test_one_2d_tensor_predicts_like_pyfunc(client, xgb, binary, dtype):
    """XGBoost predicts in float32: a frame sent as FP32 predicts exactly as the same frame."""
    for name in (MODEL, "model"):
        result = client.infer(name, _matrix_tensor(xgb.frame, binary=binary, dtype=dtype))
        # No outputs named: tritonclient asks for binary outputs (binary_data_output).
        assert result.get_response()["outputs"][0]["parameters"]["binary_data_size"] > 0
        assert result.as_numpy("predict").tolist() == xgb.expected()


def test_flat_and_nested_data_mean_the_same_rows(http, xgb):
    rows = xgb.frame.to_numpy().tolist()
    shape = [len(rows), len(xgb.columns)]
    for data in (rows, [value for row in rows for value in row]):
        body = {"inputs": [{"name": "x", "shape": shape, "datatype": "FP64", "data": data}]}
        response = http.post(f"/v2/models/{MODEL}/infer", json=body)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        answer = response.json()
        assert answer["outputs"][0]["data"] == xgb.expected()
        assert uuid.UUID(answer["id"])  # none was sent: one is made
        assert answer["parameters"] == {}
        assert response.headers["x-model-name"] == MODEL
        assert response.headers["x-model-version"] == "1"
        assert response.headers["x-model-source"] == "MODEL_VARIANT"
        assert response.headers["x-model-run-id"]


def test_a_binary_request_written_by_hand(http, xgb):
    """Triton's framing without Triton's client: JSON header, then the raw little-endian rows."""
    matrix = xgb.frame.to_numpy(dtype="<f8")
    header = {
        "inputs": [
            {
                "name": "rows",
                "shape": list(matrix.shape),
                "datatype": "FP64",
                "parameters": {"binary_data_size": matrix.nbytes},
            }
        ],
        "outputs": [{"name": "predict", "parameters": {"binary_data": False}}],
    }
    head = json.dumps(header).encode()
    response = http.post(
        f"/v2/models/{MODEL}/infer",
        content=head + matrix.tobytes(),
        headers={
            "Inference-Header-Content-Length": str(len(head)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == xgb.expected()
    header["outputs"] = [{"name": "predict", "parameters": {"binary_data": True}}]
    head = json.dumps(header).encode()
    binary = http.post(
        f"/v2/models/{MODEL}/infer",
        content=head + matrix.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert binary.status_code == 200, binary.text
    assert binary.headers["content-type"].startswith("application/octet-stream")
    length = int(binary.headers["inference-header-content-length"])
    answer = json.loads(binary.content[:length])
    (output,) = answer["outputs"]
    size = output["parameters"]["binary_data_size"]
    assert len(binary.content) == length + size
    assert np.frombuffer(binary.content[length:], dtype="<i8").tolist() == xgb.expected()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_each_numeric_datatype_reaches_a_pyfunc_model(mixed, binary):
    connection = _triton(mixed)
    try:
        per_column = connection.infer(
            MODEL,
            _column_tensors(mixed.frame, binary=binary),
            outputs=[triton.InferRequestedOutput("predict", binary_data=binary)],
        )
        matrix = connection.infer("model", _matrix_tensor(mixed.frame, binary=binary))
    finally:
        connection.close()
    assert per_column.as_numpy("predict").tolist() == mixed.expected()
    assert per_column.get_response()["model_version"] == "2"
    assert per_column.get_response()["outputs"][0]["datatype"] == "FP64"
    # One FP64 tensor for all columns: whole numbers fit the integer columns, 0/1 the boolean.
    assert matrix.as_numpy("predict").tolist() == mixed.expected()


def test_values_an_integer_column_cannot_hold_are_422_naming_it(mixed):
    """Before the model sees them: a fraction, or a whole number beyond the column's type; in a
    boolean column, anything but 0 and 1."""
    frame = mixed.frame

    def infer(column: str, values: list[Any], datatype: str) -> Any:
        inputs = [
            {"name": name, "shape": [len(frame)], "datatype": datatype_of, "data": data}
            for name, datatype_of, data in (
                (name, V2_TYPES[str(frame[name].dtype)], frame[name].tolist())
                for name in frame.columns
            )
        ]
        for tensor in inputs:
            if tensor["name"] == column:
                tensor["data"], tensor["datatype"] = values, datatype
        return httpx.post(f"{mixed.url}/v2/models/model/infer", json={"inputs": inputs})

    assert infer("l", [1, 2, 3, 4], "INT64").status_code == 200
    for column, values, datatype in (
        ("l", [1.5, 2, 3, 4], "FP64"),
        ("i", [2**40, 0, 0, 0], "INT64"),
        ("l", [2.0**64, 0, 0, 0], "FP64"),
        ("b", [2, 0, 1, 0], "INT64"),
        ("b", [0.5, 0, 1, 0], "FP64"),
    ):
        error = _v2_error(infer(column, values, datatype), 422)
        assert error["code"] == "invalid_input"
        assert f"Column {column!r}" in error["error"], error
    records = frame.astype(object).to_dict(orient="records")
    records[0]["i"] = 2**40
    response = httpx.post(f"{mixed.url}/invocations", json={"dataframe_records": records})
    assert response.status_code == 422, response.text
    assert "Column 'i' holds a value outside the range of integer" in response.json()["message"]


def test_a_model_without_a_registry_version_answers_unversioned_only(store, models, data):
    from fastapi.testclient import TestClient

    from hokusai.serving.app import create_app

    features, _ = data
    write_pickle(store, models[0])
    app = create_app(serving_settings(store), store.settings)
    rows = features.head(3).to_numpy()
    body = {"inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": []}]}
    body["inputs"][0]["data"] = rows.tolist()
    with TestClient(app) as client:
        name = client.get("/model").json()["name"]
        served = client.post(f"/v2/models/{name}/infer", json=body)
        assert served.status_code == 200, served.text
        assert served.headers["x-model-source"] == "pickle"
        assert served.json()["model_name"] == served.headers["x-model-name"] == name
        assert served.json()["outputs"][0]["data"] == models[0].predict(features.head(3)).tolist()
        metadata = client.get("/v2/models/model").json()
        assert metadata["name"] == name
        assert metadata["versions"] == []
        assert client.post("/v2/models/model/infer", json=body).status_code == 200
        _v2_error(client.post("/v2/models/model/versions/1/infer", json=body), 404)
        _v2_error(client.get("/v2/models/model/versions/1"), 404)


def test_with_no_model_v2_is_live_but_not_ready(registry):
    body = {"inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP64", "data": [1.0] * 6}]}
    with client_of(registry, model_variant="models:/nope@champion") as client:
        assert client.get("/v2/health/live").json() == {"live": True}
        not_ready = client.get("/v2/health/ready")
        assert not_ready.status_code == 503
        assert not_ready.json() == {"ready": False}
        assert client.get("/v2").status_code == 200
        assert client.get("/v2/models/model/ready").status_code == 503
        _v2_error(client.post("/v2/models/model/infer", json=body), 503)


def test_oversize_v2_bodies_are_413(registry, data):
    features, _ = data
    rows = features.head(200).to_numpy()
    body = {"inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": []}]}
    body["inputs"][0]["data"] = rows.tolist()
    with client_of(registry, model_variant=f"models:/{MODEL}/1", max_body_bytes=4096) as client:
        _v2_error(client.post(f"/v2/models/{MODEL}/infer", json=body), 413)


# Malformed requests -------------------------------------------------------------------------

Body = Callable[[list[str]], Any]


def _columns(names: list[str], n: int = 2, **changes: Any) -> list[dict[str, Any]]:
    """A well-formed per-column request's inputs, every tensor with ``changes`` applied."""
    data = [float(i + 1) for i in range(n)]
    return [
        {"name": name, "shape": [n], "datatype": "FP64", "data": data, **changes} for name in names
    ]


def _first(names: list[str], **changes: Any) -> dict[str, Any]:
    """A well-formed request whose first tensor has ``changes`` applied (None deletes a key)."""
    inputs = _columns(names)
    first = {**inputs[0], **changes}
    inputs[0] = {k: v for k, v in first.items() if v is not None}
    return {"inputs": inputs}


def _matrix(names: list[str], rows: int = 2, width: int | None = None, **changes: Any) -> Any:
    k = len(names) if width is None else width
    tensor = {"name": "x", "shape": [rows, k], "datatype": "FP64", "data": [0.5] * (rows * k)}
    return {"inputs": [{**tensor, **changes}]}


EITHER = {400, 422}
MALFORMED: dict[str, tuple[Body, set[int] | int]] = {
    "json-array": (lambda c: [], 400),
    "json-string": (lambda c: "inputs", 400),
    "json-null": (lambda c: None, 400),
    "no-inputs": (lambda c: {}, 400),
    "inputs-null": (lambda c: {"inputs": None}, 400),
    "inputs-object": (lambda c: {"inputs": {"x": [1.0]}}, 400),
    "inputs-empty": (lambda c: {"inputs": []}, EITHER),
    "tensor-not-object": (lambda c: {"inputs": [1.0]}, 400),
    "no-name": (lambda c: _first(c, name=None), 400),
    "name-not-string": (lambda c: _first(c, name=3), EITHER),
    "no-shape": (lambda c: _first(c, shape=None), 400),
    "no-datatype": (lambda c: _first(c, datatype=None), 400),
    "no-data": (lambda c: _first(c, data=None), 400),
    "shape-not-list": (lambda c: _first(c, shape=2), 400),
    "shape-negative": (lambda c: _first(c, shape=[-2]), 400),
    "shape-strings": (lambda c: _first(c, shape=["2"]), 400),
    "shape-float": (lambda c: _first(c, shape=[2.0]), EITHER),
    "shape-empty": (lambda c: _first(c, shape=[], data=[1.0]), EITHER),
    "shape-3d": (lambda c: _matrix(c, shape=[2, len(c), 1]), EITHER),
    "shape-huge": (lambda c: _first(c, shape=[10**12]), 400),
    "count-short": (lambda c: _first(c, data=[1.0]), 400),
    "count-long": (lambda c: _first(c, data=[1.0, 2.0, 3.0]), 400),
    "data-not-list": (lambda c: _first(c, data=1.0), EITHER),
    "data-object": (lambda c: _first(c, data={"a": 1.0}), 400),
    "nested-ragged": (lambda c: _matrix(c, data=[[0.5] * len(c), [0.5] * (len(c) - 1)]), 400),
    "unknown-datatype": (lambda c: _first(c, datatype="FP128"), 400),
    "datatype-not-string": (lambda c: _first(c, datatype=64), 400),
    "bytes-datatype": (lambda c: _first(c, datatype="BYTES", data=["a", "b"]), EITHER),
    "strings-in-fp64": (lambda c: _first(c, data=["1.0", "2.0"]), EITHER),
    "null-in-fp64": (lambda c: _first(c, data=[None, 1.0]), EITHER),
    "list-in-fp64": (lambda c: _first(c, data=[[1.0], 2.0]), EITHER),
    "fraction-in-int64": (lambda c: _first(c, datatype="INT64", data=[1.5, 2]), EITHER),
    "string-in-bool": (lambda c: _first(c, datatype="BOOL", data=["yes", "no"]), EITHER),
    "overflow-int8": (lambda c: _first(c, datatype="INT8", data=[300, 1]), EITHER),
    "negative-uint8": (lambda c: _first(c, datatype="UINT8", data=[-1, 2]), EITHER),
    "beyond-int64": (lambda c: _first(c, datatype="INT64", data=[2**70, 1]), EITHER),
    "beyond-fp16": (lambda c: _first(c, datatype="FP16", data=[1e6, 1.0]), EITHER),
    "missing-column": (lambda c: {"inputs": _columns(c[1:])}, 422),
    "extra-column": (lambda c: {"inputs": _columns([*c, "zeta"])}, 422),
    "duplicate-column": (lambda c: {"inputs": _columns([*c, c[0]])}, EITHER),
    "rows-disagree": (lambda c: {"inputs": _columns(c[:1], n=3) + _columns(c[1:])}, EITHER),
    "matrix-too-narrow": (lambda c: _matrix(c, width=len(c) - 1), EITHER),
    "matrix-too-wide": (lambda c: _matrix(c, width=len(c) + 1), EITHER),
    "matrix-and-column": (lambda c: {"inputs": _matrix(c)["inputs"] + _columns(c[:1])}, EITHER),
    "zero-rows": (lambda c: {"inputs": _columns(c, n=0)}, EITHER),
    "zero-rows-matrix": (lambda c: _matrix(c, rows=0), EITHER),
    "outputs-unknown": (lambda c: {**_first(c), "outputs": [{"name": "proba"}]}, 404),
    "outputs-not-list": (lambda c: {**_first(c), "outputs": "predict"}, 400),
    "output-without-name": (lambda c: {**_first(c), "outputs": [{}]}, 400),
    "parameters-not-object": (lambda c: {**_first(c), "parameters": [1]}, 400),
    "tensor-parameters-not-object": (lambda c: _first(c, parameters="binary"), 400),
    "binary-size-without-header": (
        lambda c: _first(c, data=None, parameters={"binary_data_size": 16}),
        400,
    ),
    "id-not-string": (lambda c: {**_first(c), "id": 5}, EITHER),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_v2_bodies_are_4xx_with_error_and_code(http, xgb, case):
    build, statuses = MALFORMED[case]
    body = build(xgb.columns)
    response = http.post(
        f"/v2/models/{MODEL}/infer",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    _v2_error(response, statuses)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"inputs": [}', b"", b"\x80\x81", b'{"inputs": NaN}', b"1e400"],
)
def test_bodies_that_are_not_json_are_400(http, content):
    response = http.post(
        f"/v2/models/{MODEL}/infer", content=content, headers={"Content-Type": "application/json"}
    )
    _v2_error(response, 400)


def _binary_request(names: list[str], matrix: np.ndarray[Any, Any]) -> tuple[bytes, int]:
    header = {
        "inputs": [
            {
                "name": "x",
                "shape": list(matrix.shape),
                "datatype": "FP64",
                "parameters": {"binary_data_size": matrix.nbytes},
            }
        ]
    }
    head = json.dumps(header).encode()
    return head + matrix.astype("<f8").tobytes(), len(head)


def test_bad_binary_framing_is_400_and_non_finite_values_422(http, xgb):
    matrix = xgb.frame.head(2).to_numpy(dtype=np.float64)
    body, length = _binary_request(xgb.columns, matrix)
    route = f"/v2/models/{MODEL}/infer"

    def post(content: bytes, header: str) -> Any:
        return http.post(
            route, content=content, headers={"Inference-Header-Content-Length": header}
        )

    assert post(body, str(length)).status_code == 200  # the framing below is all that changes
    _v2_error(post(body, str(len(body) + 10)), 400)  # header longer than the body
    _v2_error(post(body, "-1"), 400)
    _v2_error(post(body, "twelve"), 400)
    _v2_error(post(body, str(length - 1)), 400)  # the JSON header is cut
    _v2_error(post(body[:-8], str(length)), 400)  # fewer bytes than binary_data_size
    _v2_error(post(body + b"\0" * 8, str(length)), 400)  # more bytes than announced
    for bad in (np.nan, np.inf, -np.inf):
        poisoned = matrix.copy()
        poisoned[1, 2] = bad
        content, size = _binary_request(xgb.columns, poisoned)
        _v2_error(post(content, str(size)), 422)


def test_other_v2_routes_answer_errors_in_v2s_shape(http):
    _v2_error(http.get(f"/v2/models/{MODEL}/infer"), 405)
    _v2_error(http.post(f"/v2/models/{MODEL}/explain", json={}), 404)
    _v2_error(http.get("/v2/nothing/here"), 404)


# The fuzz: anything sent to infer is predictions or a 4xx -----------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=20,
)
NUMBERS = st.one_of(st.integers(-300, 300), st.floats(-1e6, 1e6), st.booleans())
CELLS = st.one_of(NUMBERS, NUMBERS, NUMBERS, SCALARS, st.lists(NUMBERS, max_size=2))
DATATYPES = st.sampled_from(
    [
        *("FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT8", "BOOL"),
        *("BYTES", "BF16", "fp64", "", "FLOAT"),
    ]
)


def v2_bodies(names: list[str]) -> st.SearchStrategy[Any]:
    """Bodies close to the two layouts for a model with columns ``names`` (right and wrong
    names, shapes and counts that agree or not, every datatype), and any JSON."""
    name = st.sampled_from([*names, "input", "x", ""])
    size = st.integers(0, 4)
    shape = st.one_of(
        size.map(lambda n: [n]),
        size.map(lambda n: [n, 1]),
        st.tuples(size, st.integers(len(names) - 1, len(names) + 1)).map(list),
        st.lists(st.integers(-2, 5), max_size=3),
        JSON,
    )
    flat = st.lists(CELLS, max_size=12)
    nested = st.lists(st.lists(CELLS, max_size=len(names) + 1), max_size=4)
    tensor = st.fixed_dictionaries(
        {
            "name": st.one_of(name, name, JSON),
            "shape": shape,
            "datatype": st.one_of(DATATYPES, DATATYPES, JSON),
            "data": st.one_of(flat, nested, JSON),
        },
        optional={"parameters": st.one_of(JSON, st.fixed_dictionaries({"binary_data": JSON}))},
    )

    numeric = st.sampled_from(["FP64", "FP64", "FP32", "INT64", "INT32", "INT8", "BOOL"])
    whole = st.integers(-100, 100)
    values = {"FP64": NUMBERS, "FP32": NUMBERS, "BOOL": st.booleans()}

    def good(datatype: Any) -> st.SearchStrategy[Any]:
        """Values that fit ``datatype`` (most of the time: NUMBERS mixes in booleans)."""
        return values.get(datatype, whole) if isinstance(datatype, str) else NUMBERS

    @st.composite
    def columns(draw: Any) -> list[dict[str, Any]]:
        """One tensor per column, one n for all, data of n numbers — mostly: now and then a
        name too many or too few, a datatype or a data list that is off."""
        n = draw(st.integers(1, 4))
        chosen = draw(
            st.permutations(names).flatmap(
                lambda o: st.lists(name, max_size=1).map(lambda extra: [*o, *extra])
            )
        )
        keep = draw(st.sampled_from([len(names)] * 4 + [len(names) - 1, len(chosen)]))
        datatype = draw(st.one_of(numeric, numeric, numeric, DATATYPES))
        cells = st.lists(good(datatype), min_size=n, max_size=n)
        return [
            {
                "name": column,
                "shape": draw(st.sampled_from([[n], [n], [n, 1]])),
                "datatype": datatype,
                "data": draw(st.one_of(cells, cells, cells, cells, st.lists(CELLS, max_size=5))),
            }
            for column in chosen[:keep]
        ]

    @st.composite
    def matrix(draw: Any) -> list[dict[str, Any]]:
        """One 2-D tensor of n rows, flat or nested, its width right mostly."""
        n = draw(st.integers(1, 4))
        k = draw(st.sampled_from([len(names)] * 4 + [len(names) - 1, len(names) + 1]))
        datatype = draw(st.one_of(numeric, numeric, DATATYPES))
        row = st.lists(good(datatype), min_size=k, max_size=k)
        rows = draw(st.lists(row, min_size=n, max_size=n))
        data = draw(st.sampled_from([rows, [v for row in rows for v in row]]))
        return [{"name": draw(name), "shape": [n, k], "datatype": datatype, "data": data}]

    wild_outputs = st.lists(
        st.fixed_dictionaries(
            {"name": st.sampled_from(["predict", "proba"]) | JSON},
            optional={"parameters": st.fixed_dictionaries({"binary_data": JSON}) | JSON},
        ),
        max_size=2,
    )
    wild = st.fixed_dictionaries(
        {"inputs": st.one_of(st.lists(tensor, max_size=7), columns(), matrix(), JSON)},
        optional={"id": JSON, "parameters": JSON, "outputs": wild_outputs | JSON},
    )
    outputs = st.lists(
        st.fixed_dictionaries(
            {"name": st.just("predict")},
            optional={"parameters": st.fixed_dictionaries({"binary_data": st.booleans()})},
        ),
        max_size=1,
    )
    near = st.fixed_dictionaries(
        {"inputs": st.one_of(columns(), matrix())},
        optional={
            "id": st.text(max_size=8),
            "parameters": st.fixed_dictionaries({}, optional={"binary_data_output": st.booleans()}),
            "outputs": outputs,
        },
    )
    return st.one_of(JSON, wild, wild, near, near, near)


def _answered(response: Any) -> None:
    """200 with one prediction per row (JSON or binary), or a 4xx in V2's error shape."""
    event(f"status {response.status_code}")  # --hypothesis-show-statistics: how deep it got
    if response.status_code == 200:
        length = response.headers.get("inference-header-content-length")
        head = response.content[: int(length)] if length is not None else response.content
        (output,) = json.loads(head)["outputs"]
        assert output["name"] == "predict"
        assert len(output["shape"]) == 1 and output["shape"][0] >= 1
        if "data" in output:
            assert len(output["data"]) == output["shape"][0]
        return
    assert 400 <= response.status_code < 500, response.text
    _v2_error(response, response.status_code)


@FUZZ
@given(data=st.data())
def test_any_json_body_on_infer_is_predictions_or_a_4xx(http, xgb, data):
    body = data.draw(v2_bodies(xgb.columns))
    # Python's json writes what a strict parser may refuse (integers beyond 64 bits): a 400.
    _answered(
        http.post(
            f"/v2/models/{MODEL}/infer",
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
    )


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_any_binary_body_on_infer_is_predictions_or_a_4xx(http, xgb, data):
    """Triton's framing with every field able to lie: sizes, lengths, shapes and the bytes."""
    k = len(xgb.columns)
    rows = data.draw(st.integers(0, 3))
    layout = data.draw(st.sampled_from(["matrix", "columns"]))
    datatype = data.draw(st.sampled_from(["FP64", "FP32", "INT64", "INT8", "BOOL", "BYTES"]))
    width = {"FP64": 8, "FP32": 4, "INT64": 8, "INT8": 1, "BOOL": 1, "BYTES": 4}[datatype]
    if layout == "matrix":
        tensors = [{"name": "x", "shape": [rows, k], "count": rows * k}]
    else:
        tensors = [{"name": c, "shape": [rows], "count": rows} for c in xgb.columns]
    inputs = []
    for tensor in tensors:
        exact = tensor["count"] * width
        size = data.draw(st.one_of(st.just(exact), st.just(exact), st.integers(-1, exact + 9)))
        inputs.append(
            {
                "name": tensor["name"],
                "shape": tensor["shape"],
                "datatype": datatype,
                "parameters": {"binary_data_size": size},
            }
        )
    header: dict[str, Any] = {"inputs": inputs}
    if data.draw(st.booleans()):
        header["parameters"] = {"binary_data_output": data.draw(st.booleans())}
    head = json.dumps(header).encode()
    announced = sum(max(i["parameters"]["binary_data_size"], 0) for i in inputs)
    payload = data.draw(
        st.one_of(
            st.binary(min_size=announced, max_size=announced),
            st.binary(max_size=announced + 9),
        )
    )
    length = data.draw(
        st.one_of(
            st.just(str(len(head))),
            st.just(str(len(head))),
            st.integers(-3, len(head) + len(payload) + 3).map(str),
            st.sampled_from(["", "x", "1.5", "0x10"]),
        )
    )
    response = http.post(
        f"/v2/models/{MODEL}/infer",
        content=head + payload,
        headers={"Inference-Header-Content-Length": length},
    )
    _answered(response)


# Hot swap under V2 load ---------------------------------------------------------------------


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


@pytest.mark.slow
def test_swap_under_v2_load_without_a_failed_request(store, models, data):
    """Triton clients infer (JSON and binary) while the alias moves to version 2 and back; each
    answer's predictions are those of the version it names."""
    from hokusai.serving.app import create_app

    features, _ = data
    rows = features.head(1)  # the two models disagree on this row
    by_version = {}
    v1 = store.register(store.log(models[0], example=features.head(3)), alias="champion")
    by_version[v1] = models[0].predict(rows).tolist()
    app = create_app(
        serving_settings(
            store, model_variant=f"models:/{MODEL}@champion", model_refresh_seconds=0.1
        ),
        store.settings,
    )
    seen: list[tuple[str, Any]] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer(port: int, binary: bool) -> None:
        connection = triton.InferenceServerClient(url=f"127.0.0.1:{port}", network_timeout=30)
        try:
            while not stop.is_set():
                try:
                    tensors = (
                        _column_tensors(rows, binary=binary)
                        if binary
                        else _matrix_tensor(rows, binary=False)
                    )
                    result = connection.infer(MODEL, tensors)
                except Exception as exc:  # every failure is reported, none is retried
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                version = result.get_response()["model_version"]
                seen.append((version, result.as_numpy("predict").tolist()))
        finally:
            connection.close()

    with LiveServer(app) as server:
        workers = [
            threading.Thread(target=hammer, args=(server.port, i % 2 == 0)) for i in range(4)
        ]
        for worker in workers:
            worker.start()
        try:
            _wait(lambda: len(seen) > 50)
            v2 = store.register(store.log(models[1], example=features.head(3)), alias="champion")
            by_version[v2] = models[1].predict(rows).tolist()
            _wait(lambda: any(v == v2 for v, _ in seen[-20:]))
            swapped_at = len(seen)
            store.client.set_registered_model_alias(MODEL, "champion", v1)  # roll back
            _wait(lambda: all(v == v1 for v, _ in seen[-20:]) and len(seen) > swapped_at + 20)
        finally:
            stop.set()
            for worker in workers:
                worker.join(10)
    assert failures == [], failures[:5]
    versions = [v for v, _ in seen]
    assert versions[0] == v1
    assert v2 in versions
    assert versions[-1] == v1
    assert by_version[v1] != by_version[v2]
    mismatched = [(v, p) for v, p in seen if p != by_version[v]]
    assert mismatched == [], mismatched[:5]


# Metrics ------------------------------------------------------------------------------------


def test_request_metrics_are_labelled_by_protocol(registry, data):
    features, _ = data
    with client_of(registry, model_variant=f"models:/{MODEL}@champion") as client:
        _one_request_per_protocol_then_the_metrics(client, features)


def _one_request_per_protocol_then_the_metrics(client: Any, features: pd.DataFrame) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    rows = features.head(2)
    matrix = rows.to_numpy()
    v2 = {"inputs": [{"name": "x", "shape": list(matrix.shape), "datatype": "FP64", "data": []}]}
    v2["inputs"][0]["data"] = matrix.tolist()
    assert client.post("/invocations", json={"inputs": matrix.tolist()}).status_code == 200
    assert client.post(f"/v2/models/{MODEL}/infer", json=v2).status_code == 200
    assert client.post("/v2/models/model/infer", json=v2).status_code == 200
    assert client.post("/predict", json=rows.to_dict(orient="records")).status_code == 200
    bad = client.post("/v2/models/model/infer", json={"inputs": []}).status_code
    assert bad in EITHER
    families = {
        family.name: family
        for family in text_string_to_metric_families(client.get("/metrics").text)
    }
    requests = {
        (s.labels["protocol"], s.labels["route"], s.labels["status"]): s.value
        for s in families["hokusai_serving_requests"].samples
        if s.name == "hokusai_serving_requests_total"
    }
    assert requests[("mlflow", "/invocations", "200")] == 1.0
    assert requests[("v2", "/v2/models/{name}/infer", "200")] == 2.0  # both names, one route
    assert requests[("v2", "/v2/models/{name}/infer", str(bad))] == 1.0
    assert requests[("hokusai", "/predict", "200")] == 1.0
    durations = {
        (s.labels["protocol"], s.labels["route"])
        for s in families["hokusai_serving_request_duration_seconds"].samples
        if s.name == "hokusai_serving_request_duration_seconds_count"
    }
    assert durations >= {
        ("mlflow", "/invocations"),
        ("v2", "/v2/models/{name}/infer"),
        ("hokusai", "/predict"),
    }
