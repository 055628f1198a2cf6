"""Request formats, the 422 matrix, malformed bodies, headers, metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.serving.conftest import MODEL


@pytest.fixture
def served(store, models, data, make_client) -> Any:
    features, _ = data
    version = store.register(store.log(models[0], example=features.head(3)), alias="champion")
    client = make_client(model_variant=f"models:/{MODEL}@champion")
    expected = models[0].predict(features.head(4)).tolist()
    return client, features.head(4), expected, version


def test_every_scoring_format_gives_the_models_predictions(served):
    client, frame, expected, version = served
    columns = list(frame.columns)
    bodies = [
        {"dataframe_split": {"columns": columns, "data": frame.to_numpy().tolist()}},
        {
            "dataframe_split": {
                "columns": columns[::-1],
                "data": frame[columns[::-1]].to_numpy().tolist(),
            }
        },
        {"dataframe_records": frame.to_dict(orient="records")},
        {"instances": frame.to_dict(orient="records")},
        {"instances": frame.to_numpy().tolist()},
        {"inputs": frame.to_dict(orient="list")},
        {"inputs": frame.to_numpy().tolist()},
    ]
    for body in bodies:
        response = client.post("/invocations", json=body)
        assert response.status_code == 200, (body, response.text)
        assert response.json() == {"predictions": expected}
        assert response.headers["x-model-name"] == MODEL
        assert response.headers["x-model-version"] == version
        assert response.headers["x-model-source"] == "MODEL_VARIANT"
    for body in (frame.to_dict(orient="records"), {"records": frame.to_dict(orient="records")}):
        response = client.post("/predict", json=body)
        assert response.json() == {"predictions": expected}


def test_fast_path_matches_pyfunc_semantics(served, store):
    import mlflow.pyfunc

    client, frame, _, _ = served
    pyfunc = mlflow.pyfunc.load_model(store.client.get_model_version_download_uri(MODEL, "1"))
    ours = client.post("/predict", json=frame.to_dict(orient="records")).json()["predictions"]
    assert ours == np.asarray(pyfunc.predict(frame)).tolist()


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    return str(response.json()["error"]["message"])


def test_the_422_matrix_names_the_column(served):
    client, frame, _, _ = served
    record = frame.iloc[0].to_dict()
    first = next(iter(record))
    missing = {k: v for k, v in record.items() if k != first}
    message = _error(client.post("/predict", json=[missing]), 422, "invalid_input")
    assert message == (
        f"Missing 1 of the {len(record)} columns the model signature requires: {first!r}."
    )
    message = _error(client.post("/predict", json=[{**record, "extra": 1.0}]), 422, "invalid_input")
    assert message == "1 column not in the model signature: 'extra'."
    message = _error(
        client.post("/predict", json=[{**record, first: "high"}]), 422, "invalid_input"
    )
    assert f"Column {first!r} must be numeric" in message
    message = _error(client.post("/predict", json=[{**record, first: "1.5"}]), 422, "invalid_input")
    assert first in message
    message = _error(client.post("/predict", json=[{**record, first: None}]), 422, "invalid_input")
    assert f"Column {first!r} has a missing value" in message
    split = {
        "dataframe_split": {"columns": list(record)[:-1], "data": [list(record.values())[:-1]]}
    }
    assert list(record)[-1] in _error(client.post("/invocations", json=split), 422, "invalid_input")


def test_every_missing_and_undeclared_column_is_named_in_one_error(served):
    """Not one column per round trip: all of them, missing ones in signature order, counted."""
    client, frame, _, _ = served
    names = list(frame.columns)
    sent = {"zeta": 1.0, names[4]: 1.0, "alpha": 2.0, names[1]: 3.0}
    expected = (
        f"Missing 4 of the {len(names)} columns the model signature requires: "
        f"{names[0]!r}, {names[2]!r}, {names[3]!r}, {names[5]!r}; "
        "2 columns not in the model signature: 'zeta', 'alpha'."
    )
    assert _error(client.post("/predict", json=[sent]), 422, "invalid_input") == expected
    split = {"dataframe_split": {"columns": list(sent), "data": [list(sent.values())]}}
    assert _error(client.post("/invocations", json=split), 422, "invalid_input") == expected
    mapping = {"inputs": {name: [value] for name, value in sent.items()}}
    assert _error(client.post("/invocations", json=mapping), 422, "invalid_input") == expected


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b'{"dataframe_records": []}', 422, "invalid_input"),
        (b'{"instances": [[1, 2]]}', 422, "invalid_input"),
        (b'{"nothing": 1}', 422, "invalid_input"),
        (b'{"inputs": [[1]], "instances": [[1]]}', 422, "invalid_input"),
        (b"[1, 2, 3]", 422, "invalid_input"),
        (b'"text"', 422, "invalid_input"),
    ],
)
def test_malformed_bodies_are_4xx(served, content, status, code):
    client, *_ = served
    response = client.post(
        "/invocations", content=content, headers={"content-type": "application/json"}
    )
    _error(response, status, code)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"model_uri": "x",}', b'[{"a": 1}', b"\x80{}", b'{"a": "\\x"}'],
)
def test_both_servers_answer_malformed_json_byte_for_byte_alike(served, store, content):
    """The registry API used to answer 422 "body.43: JSON decode error", this server 400.
    ``/invocations`` says the same in MLflow's shape, our envelope beside it."""
    from fastapi.testclient import TestClient

    from hokusai.config import Settings
    from hokusai.rest.app import create_app

    serving, *_ = served
    headers = {"content-type": "application/json"}
    predicted = serving.post("/predict", content=content, headers=headers)
    scored = serving.post("/invocations", content=content, headers=headers)
    registry_app = create_app(Settings(home=store.settings.home, webhook_background=False))
    with TestClient(registry_app) as registry:
        key = registry_app.state.components.keys.create(name="ci", scope="write")[1]
        registered = registry.post(
            "/api/v1/models",
            content=content,
            headers={**headers, "Authorization": f"Bearer {key}"},
        )
    assert predicted.status_code == registered.status_code == 400, registered.text
    assert predicted.headers["content-type"] == registered.headers["content-type"]
    assert predicted.content == registered.content
    error = predicted.json()["error"]
    assert error["code"] == "invalid_json"
    assert error["message"].startswith("The body is not valid JSON: ")
    assert set(error) == {"code", "message"}
    assert scored.status_code == 400
    assert scored.json() == {
        "error_code": "BAD_REQUEST",
        "message": error["message"],
        "error": error,
    }


def test_oversize_bodies_and_batches_are_refused(store, models, data, make_client):
    features, _ = data
    store.register(store.log(models[0], example=features.head(3)), alias="champion")
    client = make_client(
        model_variant=f"models:/{MODEL}@champion", max_body_bytes=4096, max_batch_rows=50
    )
    big = {"dataframe_records": features.head(200).to_dict(orient="records")}
    _error(client.post("/invocations", json=big), 413, "payload_too_large")
    roomy = make_client(model_variant=f"models:/{MODEL}@champion", max_batch_rows=50)
    assert "at most 50" in _error(roomy.post("/invocations", json=big), 422, "invalid_input")


def test_health_model_and_metrics(served):
    client, frame, _, version = served
    client.post("/predict", json=frame.to_dict(orient="records"))
    client.post("/predict", json=[{"bad": 1}])
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["model"]["signature"]
    assert health["model"]["loaded_at"] > 0
    assert client.get("/model").json()["version"] == version
    text = client.get("/metrics").text
    assert (
        'hokusai_serving_requests_total{protocol="hokusai",route="/predict",status="200"} 1.0'
        in text
    )
    assert 'hokusai_serving_errors_total{kind="invalid_input"} 1.0' in text
    assert f'name="{MODEL}"' in text
    assert "hokusai_serving_rows_total 4.0" in text
