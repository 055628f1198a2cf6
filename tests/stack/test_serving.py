"""The prediction server and ``hokusai train`` on the stack: a model trained by the CLI is
logged and registered through the tracking server, and the prediction server loads it from
there (through the server or straight from the bucket, by mode)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from hokusai.cli.main import app as cli
from hokusai.training.datasets import load_default_dataset


def test_train_on_the_stack_then_serve_the_registered_version(
    tmp_path: Path, stack_settings, tracking, loopback_stack, model_type, monkeypatch
):
    from fastapi.testclient import TestClient

    from hokusai.config import ServingSettings
    from hokusai.serving.app import create_app

    config = tmp_path / "config.yaml"
    config.write_text(
        f"experiment_name: stack-training\nfallback_model_path: {tmp_path / 'xgb_model.pkl'}\n"
    )
    monkeypatch.setenv("CONFIG_PATH", str(config))
    monkeypatch.setenv("HOKUSAI_DATABASE_URL", tracking.database_url)
    trained = CliRunner().invoke(
        cli,
        ["train", "--model-type", "logistic_regression", "--register-as", model_type, "--json"],
    )
    assert trained.exit_code == 0, trained.output
    body = json.loads(trained.stdout)
    assert body["tracking_uri"] == tracking.url
    assert body["serving_uri"] == f"models:/hokusai_{model_type}_baseline/1"
    keys = loopback_stack.s3.keys(tracking.artifact_prefix)
    assert any(f"/models/{body['model_uuid']}/" in key for key in keys)

    serving = ServingSettings(
        config_path=config,
        model_variant=body["serving_uri"],
        model_run_name=None,
        model_refresh_seconds=0,
        mlflow_timeout_seconds=60,  # a loaded shared machine; the bound is not under test here
    )
    with TestClient(create_app(serving, stack_settings)) as client:
        health = client.get("/health")
        assert health.status_code == 200, health.text
        rows = load_default_dataset().features.head(3)
        split = {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}
        response = client.post("/invocations", json={"dataframe_split": split})
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 3
        assert response.headers["x-model-source"] == "MODEL_VARIANT"
        assert response.headers["x-model-name"] == f"hokusai_{model_type}_baseline"
        assert response.headers["x-model-version"] == "1"
