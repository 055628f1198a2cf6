"""The documented commands, end to end from the repository root: ``python models/train.py
--data examples/data/transactions.csv --target is_fraud --register-as fraud --alias champion``
(``hokusai train``'s own entry point) then ``python -m uvicorn api.app:app`` serving
``models:/hokusai_fraud_baseline@champion``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_train_then_serve_with_the_documented_commands(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text(
        f"tracking_uri: sqlite:///{tmp_path / 'mlflow.db'}\n"
        "experiment_name: hokusai-models\n"
        f"fallback_model_path: {tmp_path / 'xgb_model.pkl'}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env.update(CONFIG_PATH=str(config), HOKUSAI_HOME=str(tmp_path / "home"))
    trained = subprocess.run(
        [
            sys.executable,
            "models/train.py",
            "--model-type",
            "xgboost",
            "--data",
            "examples/data/transactions.csv",
            "--target",
            "is_fraud",
            "--register-as",
            "fraud",
            "--alias",
            "champion",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert (tmp_path / "xgb_model.pkl").exists()
    assert "models:/hokusai_fraud_baseline@champion" in trained.stdout
    # The short-lived process left the version's event in the outbox of its project database.
    import sqlalchemy as sa

    from hokusai.webhooks.tables import events

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'hokusai.db'}")
    try:
        with engine.connect() as conn:
            columns = (events.c.event_type, events.c.model_name, events.c.model_version)
            recorded = conn.execute(sa.select(*columns)).all()
    finally:
        engine.dispose()
    assert ("model_registered", "hokusai_fraud_baseline", "1") in [tuple(r) for r in recorded]

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:app", "--port", str(port)],
        cwd=ROOT,
        env={**env, "MODEL_VARIANT": "models:/hokusai_fraud_baseline@champion"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        health = httpx.get(f"{url}/health", timeout=5).json()
        assert health["model"]["source"] == "MODEL_VARIANT"
        assert health["model"]["version"] == "1"
        # JSON integers validate against the float columns the CSV was written with.
        body = {
            "dataframe_split": {
                "columns": ["age", "income", "amount"],
                "data": [[22, 30000, 2500.0], [50, 80000.5, 20], [35.0, 52000, 64.9]],
            }
        }
        response = httpx.post(f"{url}/invocations", json=body, timeout=10)
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 3
        assert response.headers["x-model-name"] == "hokusai_fraud_baseline"
        assert response.headers["x-model-version"] == "1"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
