"""The source chain (a contract): each source, each skip reason, MLflow down → the pickle, fast."""

from __future__ import annotations

import time

import pytest

from tests.serving.conftest import MODEL, write_pickle


def _health(client):
    response = client.get("/health")
    return response.status_code, response.json()


def _skips(body) -> dict[str, str]:
    return {s["source"]: s["reason"] for s in body["skipped"]}


def test_model_variant_alias_wins(store, models, data, make_client):
    features, _ = data
    info = store.log(models[0], example=features.head(3))
    version = store.register(info, alias="champion")
    write_pickle(store, models[1])
    client = make_client(model_variant=f"models:/{MODEL}@champion", model_run_name="ml_xgboost")
    status, body = _health(client)
    assert status == 200
    assert body["model"]["source"] == "MODEL_VARIANT"
    assert body["model"]["name"] == MODEL
    assert body["model"]["version"] == version
    assert body["model"]["requested"] == f"models:/{MODEL}@champion"
    assert body["model"]["fast_path"] is True
    assert _skips(body) == {"MODEL_RUN_ID": "not set"}


@pytest.mark.parametrize("reference", ["1", "Production"])
def test_model_variant_by_version_and_stage(store, models, data, make_client, reference):
    features, _ = data
    version = store.register(store.log(models[0], example=features.head(3)))
    with pytest.warns(FutureWarning):  # stages are deprecated in MLflow, still in our contract
        store.client.transition_model_version_stage(MODEL, version, "Production")
    client = make_client(model_variant=f"models:/{MODEL}/{reference}")
    assert client.get("/health").json()["model"]["version"] == version


def test_run_id_then_run_name_then_pickle(store, models, data, make_client):
    features, _ = data
    older = store.log(models[0], example=features.head(3))
    newer = store.log(models[1], example=features.head(3))
    by_id = make_client(model_run_id=older.run_id)
    assert by_id.get("/health").json()["model"]["run_id"] == older.run_id
    by_name = make_client(model_run_name="ml_xgboost")
    body = by_name.get("/health").json()
    assert body["model"]["source"] == "MODEL_RUN_NAME"
    assert body["model"]["run_id"] == newer.run_id  # the latest run with that name


def test_every_skip_is_reported_with_its_reason(store, models, data, make_client):
    features, _ = data
    write_pickle(store, models[0])
    client = make_client(
        model_variant=f"models:/{MODEL}@missing",
        model_run_id="0123456789abcdef0123456789abcdef",
        model_run_name="ml_nothing",
    )
    status, body = _health(client)
    assert status == 200
    assert body["model"]["source"] == "pickle"
    skips = _skips(body)
    assert set(skips) == {"MODEL_VARIANT", "MODEL_RUN_ID", "MODEL_RUN_NAME"}
    assert "RESOURCE_DOES_NOT_EXIST" in skips["MODEL_VARIANT"] or "not" in skips["MODEL_VARIANT"]
    assert "no finished run named 'ml_nothing'" in skips["MODEL_RUN_NAME"]
    response = client.post("/predict", json=[features.iloc[0].to_dict()])
    assert response.status_code == 200
    assert response.headers["x-model-source"] == "pickle"


def test_a_malformed_variant_is_a_skip_reason(store, models, make_client):
    write_pickle(store, models[0])
    body = make_client(model_variant="fraud-latest").get("/health").json()
    assert "is not models:/<name>/<stage|version>" in _skips(body)["MODEL_VARIANT"]


def test_nothing_loads_means_not_ready_with_reasons(store, make_client):
    client = make_client()
    status, body = _health(client)
    assert status == 503
    assert body["model"] is None
    assert "does not exist" in _skips(body)["pickle"]
    assert client.get("/ready").status_code == 503
    assert client.get("/live").status_code == 200
    refused = client.post("/invocations", json={"inputs": [[1.0]]})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "model_not_loaded"


def test_mlflow_unreachable_falls_back_to_the_pickle_within_seconds(store, models, make_client):
    store.config.write_text(store.config.read_text() + "tracking_uri: http://127.0.0.1:9\n")
    write_pickle(store, models[0])
    started = time.monotonic()
    client = make_client(model_variant=f"models:/{MODEL}@champion", model_run_name="ml_xgboost")
    elapsed = time.monotonic() - started
    status, body = _health(client)
    assert status == 200
    assert body["model"]["source"] == "pickle"
    assert elapsed < 15
    assert "MODEL_VARIANT" in _skips(body)
