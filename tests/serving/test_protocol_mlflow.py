"""MLflow's scoring protocol, spoken to by MLflow's own client: ``/ping``, ``/version`` and
``/invocations`` in JSON, CSV and parquet, params, the 415s, and the error body a client of
``mlflow models serve`` reads (``error_code`` and ``message``) beside ours (``error``).

One store per module, with two registered versions: an xgboost model (the fast path) and a pyfunc
model whose signature has a params schema (MLflow's path). Each is served by a real uvicorn
server; predictions are compared with ``mlflow.pyfunc.load_model(uri).predict`` on the same rows.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import mlflow.pyfunc
import pandas as pd
import pytest
import requests

from tests.serving import conftest
from tests.serving.conftest import (
    MODEL,
    LiveServer,
    Store,
    client_of,
    serving_settings,
    store_in,
)


class Scaled(mlflow.pyfunc.PythonModel):
    """``x * scale + y``: the prediction shows whether ``scale`` reached the model. ``y`` is a
    long column: MLflow's schema enforcement refuses it as floats, so the server must send it
    in its signature's type."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        scale = (params or {}).get("scale", 1.0)
        return model_input["x"] * scale + model_input["y"]


class Served(conftest.Served):
    def client(self) -> Any:
        from mlflow.pyfunc.scoring_server.client import ScoringServerClient

        return ScoringServerClient("127.0.0.1", self.server.port)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, models: list[Any], data: Any) -> Store:
    """Version 1: xgboost with a signature; version 2: a pyfunc with a params schema."""
    store = store_in(tmp_path_factory.mktemp("protocol-mlflow"))
    features, _ = data
    store.register(store.log(models[0], example=features.head(3)))
    scaled = pd.DataFrame({"x": [1.0, 2.0, 3.5], "y": [1, -2, 4]})  # y: a long column
    store.register(store.log(Scaled(), example=(scaled, {"scale": 1.0}), flavor="pyfunc"))
    return store


def _serve(store: Store, version: str, frame: pd.DataFrame) -> Iterator[Served]:
    from hokusai.serving.app import create_app

    app = create_app(
        serving_settings(store, model_variant=f"models:/{MODEL}/{version}"), store.settings
    )
    pyfunc = mlflow.pyfunc.load_model(store.client.get_model_version_download_uri(MODEL, version))
    with LiveServer(app) as server:
        yield Served(server, pyfunc, frame, version)


@pytest.fixture(scope="module")
def xgb(registry: Store, data: Any) -> Iterator[Served]:
    features, _ = data
    yield from _serve(registry, "1", features.head(5))


@pytest.fixture(scope="module")
def scaled(registry: Store) -> Iterator[Served]:
    yield from _serve(registry, "2", pd.DataFrame({"x": [1.0, -2.0, 0.25], "y": [3, 0, -15]}))


def _mlflow_error(response: Any, status: int, code: str, error_code: str = "BAD_REQUEST") -> str:
    """MLflow's error shape (``error_code``, ``message``) with ours (``error``) beside it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message", "error"}, body
    assert body["error_code"] == error_code
    assert body["error"]["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert body["message"] == body["error"]["message"]
    return str(body["message"])


# MLflow's client ----------------------------------------------------------------------------


def test_mlflow_client_pings_reads_the_version_and_invokes(xgb):
    client = xgb.client()
    client.wait_server_ready(timeout=10)
    client.ping()
    assert client.get_version() == mlflow.__version__
    frame = xgb.frame
    predicted = client.invoke(frame).get_predictions(predictions_format="ndarray")
    assert predicted.tolist() == xgb.expected()
    # A numpy matrix goes as {"inputs": rows}: columns in the signature's order.
    as_array = client.invoke(frame.to_numpy()).get_predictions(predictions_format="ndarray")
    assert as_array.tolist() == xgb.expected()
    # A frame whose columns come in another order is still read by name.
    reordered = frame[list(frame.columns)[::-1]]
    predicted = client.invoke(reordered).get_predictions(predictions_format="ndarray")
    assert predicted.tolist() == xgb.expected()


def test_ping_and_version_answer_like_mlflows_server(xgb):
    import hokusai

    ping = requests.get(f"{xgb.url}/ping", timeout=10)
    assert ping.status_code == 200
    assert ping.text == "\n"
    assert ping.headers["content-type"].startswith("application/json")
    version = requests.get(f"{xgb.url}/version", timeout=10)
    assert version.status_code == 200
    assert version.text == mlflow.__version__  # unquoted, as MLflow's server sends it
    assert version.headers["content-type"].startswith("application/json")
    assert version.headers["x-hokusai-version"] == hokusai.__version__


def test_invocations_carry_the_model_headers(xgb):
    response = requests.post(
        f"{xgb.url}/invocations",
        json={"dataframe_split": xgb.frame.to_dict(orient="split")},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": xgb.expected()}
    assert response.headers["x-model-name"] == MODEL
    assert response.headers["x-model-version"] == xgb.version
    assert response.headers["x-model-source"] == "MODEL_VARIANT"
    assert response.headers["x-model-run-id"]


def test_a_failed_invocation_is_reported_by_mlflows_client_with_its_status(xgb):
    client = xgb.client()
    with pytest.raises(Exception, match=r"error code 422") as info:
        client.invoke(xgb.frame.drop(columns=[xgb.frame.columns[0]]))
    assert repr(xgb.frame.columns[0]) in str(info.value)


# Params -------------------------------------------------------------------------------------


def test_params_reach_a_model_whose_signature_declares_them(scaled):
    client = scaled.client()
    frame = scaled.frame
    tripled = client.invoke(frame, params={"scale": 3.0}).get_predictions(
        predictions_format="ndarray"
    )
    assert tripled.tolist() == scaled.expected(scale=3.0)
    assert tripled.tolist() == (frame["x"] * 3.0 + frame["y"]).tolist()
    default = client.invoke(frame).get_predictions(predictions_format="ndarray")
    assert default.tolist() == scaled.expected()
    assert default.tolist() == (frame["x"] + frame["y"]).tolist()
    assert tripled.tolist() != default.tolist()
    # The same through every JSON format that can carry params.
    for body in (
        {"dataframe_records": frame.to_dict(orient="records"), "params": {"scale": 3.0}},
        {"inputs": frame.to_dict(orient="list"), "params": {"scale": 3.0}},
    ):
        response = requests.post(f"{scaled.url}/invocations", json=body, timeout=10)
        assert response.json() == {"predictions": scaled.expected(scale=3.0)}, body


def test_params_that_do_not_fit_the_params_schema_are_a_4xx(scaled):
    body = {"dataframe_split": scaled.frame.to_dict(orient="split"), "params": {"scale": "big"}}
    response = requests.post(f"{scaled.url}/invocations", json=body, timeout=10)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error_code"] == "BAD_REQUEST"
    assert response.json()["error"]["code"]
    not_an_object = {"dataframe_split": scaled.frame.to_dict(orient="split"), "params": [1]}
    response = requests.post(f"{scaled.url}/invocations", json=not_an_object, timeout=10)
    assert 400 <= response.status_code < 500, response.text


def test_params_are_ignored_by_a_model_without_a_params_schema(xgb):
    """As MLflow does: the request is answered, the params are dropped."""
    client = xgb.client()
    predicted = client.invoke(xgb.frame, params={"scale": 3.0, "anything": "else"})
    assert predicted.get_predictions(predictions_format="ndarray").tolist() == xgb.expected()


# CSV and parquet ----------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/csv", "text/csv; charset=utf-8"])
def test_csv_requests_predict_like_pyfunc(xgb, content_type):
    frame = xgb.frame
    for rows in (frame, frame[list(frame.columns)[::-1]]):
        response = requests.post(
            f"{xgb.url}/invocations",
            data=rows.to_csv(index=False),
            headers={"Content-Type": content_type},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": xgb.expected()}


def test_csv_reaches_a_pyfunc_model_too(scaled):
    response = requests.post(
        f"{scaled.url}/invocations",
        data=scaled.frame.to_csv(index=False),
        headers={"Content-Type": "text/csv"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": scaled.expected()}


def test_bad_csv_is_400_and_csv_that_misses_the_signature_is_422(xgb):
    def post(text: str) -> Any:
        return requests.post(
            f"{xgb.url}/invocations",
            data=text.encode(),
            headers={"Content-Type": "text/csv"},
            timeout=10,
        )

    _mlflow_error(post('"never closed'), 400, "invalid_request")
    _mlflow_error(post(""), 400, "invalid_request")
    first = xgb.frame.columns[0]
    missing = xgb.frame.drop(columns=[first]).to_csv(index=False)
    assert repr(first) in _mlflow_error(post(missing), 422, "invalid_input")
    words = xgb.frame.head(1).astype(object)
    words.iloc[0, 0] = "high"
    assert repr(first) in _mlflow_error(post(words.to_csv(index=False)), 422, "invalid_input")


def test_parquet_requests_predict_like_pyfunc(xgb):
    buffer = io.BytesIO()
    xgb.frame.to_parquet(buffer, index=False)
    response = requests.post(
        f"{xgb.url}/invocations",
        data=buffer.getvalue(),
        headers={"Content-Type": "application/vnd.apache.parquet"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": xgb.expected()}
    garbage = requests.post(
        f"{xgb.url}/invocations",
        data=b"PAR1 not really parquet",
        headers={"Content-Type": "application/vnd.apache.parquet"},
        timeout=10,
    )
    assert garbage.status_code == 400, garbage.text
    assert garbage.json()["error_code"] == "BAD_REQUEST"


# Content types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/json; format=pandas-split",
        "text/csv; charset=utf-16",
        "text/csv; format=pandas-split",
        "application/vnd.apache.parquet; charset=utf-8; x=1",
    ],
)
def test_other_content_types_are_415(xgb, content_type):
    body = {"dataframe_split": xgb.frame.to_dict(orient="split")}
    response = httpx.post(
        f"{xgb.url}/invocations",
        content=json.dumps(body).encode(),
        headers={"Content-Type": content_type},
    )
    message = _mlflow_error(response, 415, "unsupported_media_type")
    assert message


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no content type at all
        {"Content-Type": "application/x-www-form-urlencoded"},  # what curl -d sends
        {"Content-Type": "application/json; charset=utf-8"},
        {"Content-Type": "application/json; charset=UTF-8"},
        {"Content-Type": "Application/JSON"},
    ],
    ids=["none", "form-urlencoded", "charset", "charset-upper", "mixed-case"],
)
def test_json_is_read_leniently_without_or_with_curls_content_type(xgb, headers):
    body = {"dataframe_records": xgb.frame.to_dict(orient="records")}
    response = httpx.post(
        f"{xgb.url}/invocations", content=json.dumps(body).encode(), headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": xgb.expected()}


# Errors -------------------------------------------------------------------------------------


def test_error_bodies_have_mlflows_fields_and_ours(xgb):
    url = f"{xgb.url}/invocations"
    headers = {"Content-Type": "application/json"}
    bad_json = requests.post(url, data=b"{not json", headers=headers, timeout=10)
    assert _mlflow_error(bad_json, 400, "invalid_json").startswith("The body is not valid JSON")
    no_format = requests.post(url, json={"nothing": 1}, timeout=10)
    _mlflow_error(no_format, 422, "invalid_input")
    record = xgb.frame.head(1).to_dict(orient="records")[0]
    first = next(iter(record))
    extra = requests.post(url, json={"dataframe_records": [{**record, first: "high"}]}, timeout=10)
    assert f"Column {first!r} must be numeric" in _mlflow_error(extra, 422, "invalid_input")


def test_oversize_body_is_413_in_mlflows_shape(registry, data):
    features, _ = data
    big = {"dataframe_records": features.head(200).to_dict(orient="records")}
    with client_of(registry, model_variant=f"models:/{MODEL}/1", max_body_bytes=4096) as client:
        _mlflow_error(client.post("/invocations", json=big), 413, "payload_too_large")


def test_with_no_model_ping_and_invocations_are_503(registry, data):
    features, _ = data
    with client_of(registry, model_variant="models:/nope@champion") as client:
        assert client.get("/ping").status_code == 503
        assert client.get("/health").status_code == 503
        assert client.get("/version").status_code == 200  # the server answers without a model
        response = client.post(
            "/invocations",
            json={"dataframe_records": features.head(1).to_dict(orient="records")},
        )
    _mlflow_error(response, 503, "model_not_loaded", error_code="TEMPORARILY_UNAVAILABLE")
