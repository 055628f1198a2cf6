"""The documented commands, end to end from the repository root:
``python models/train.py --model-type xgboost`` then ``python -m uvicorn api.app:app``."""

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

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:app", "--port", str(port)],
        cwd=ROOT,
        env={**env, "MODEL_VARIANT": "models:/fraud@champion"},
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
        from sklearn.datasets import load_breast_cancer

        frame = load_breast_cancer(as_frame=True).data.head(3)
        body = {
            "dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}
        }
        response = httpx.post(f"{url}/invocations", json=body, timeout=10)
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 3
        assert response.headers["x-model-name"] == "fraud"
        assert response.headers["x-model-version"] == "1"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
