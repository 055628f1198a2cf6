"""Serving fixtures: a real MLflow store with real models trained here, a config.yaml in tmp."""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hokusai.config import ServingSettings, Settings

MODEL = "fraud"


class Store:
    """Logs and registers models the way a training job does."""

    def __init__(self, home: Path, config: Path) -> None:
        import mlflow

        self.settings = Settings(home=home)
        self.config = config
        self.tracking_uri = self.settings.resolved_tracking_uri
        self.client = mlflow.MlflowClient(self.tracking_uri)
        home.mkdir(parents=True, exist_ok=True)
        self.experiment_id = self.client.create_experiment(
            "hokusai-models", artifact_location=(home / "artifacts").as_uri()
        )

    def log(
        self,
        model: Any,
        *,
        run_name: str = "ml_xgboost",
        example: Any = None,
        flavor: str = "xgboost",
    ) -> Any:
        import mlflow
        import mlflow.pyfunc
        import mlflow.xgboost
        from mlflow.models import infer_signature

        from hokusai.registry.backend import mlflow_scope

        with (
            mlflow_scope(self.tracking_uri, self.tracking_uri),
            mlflow.start_run(experiment_id=self.experiment_id, run_name=run_name),
        ):
            if flavor == "xgboost":
                signature = infer_signature(example, model.predict(example))
                info = mlflow.xgboost.log_model(
                    model,
                    name="model",
                    signature=signature,
                    input_example=example,
                    pip_requirements=["xgboost"],
                )
            else:
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=model,
                    input_example=example,
                    pip_requirements=["pandas"],
                )
        return info

    def register(self, info: Any, *, alias: str | None = None) -> str:
        import mlflow

        from hokusai.registry.backend import mlflow_scope

        with mlflow_scope(self.tracking_uri, self.tracking_uri):
            mv = mlflow.register_model(info.model_uri, MODEL)
        if alias:
            self.client.set_registered_model_alias(MODEL, alias, mv.version)
        return str(mv.version)


@pytest.fixture(scope="session")
def data() -> Any:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True)
    features = frame.data.iloc[:, :6].copy()
    features.columns = [c.replace(" ", "_") for c in features.columns]
    return features, frame.target


@pytest.fixture(scope="session")
def models(data: Any) -> list[Any]:
    """Two different xgboost models (so a swap is visible in the predictions too)."""
    import xgboost

    features, target = data
    first = xgboost.XGBClassifier(n_estimators=5, max_depth=2, random_state=0)
    second = xgboost.XGBClassifier(n_estimators=30, max_depth=4, random_state=1)
    return [first.fit(features, target), second.fit(features, target)]


def store_in(root: Path) -> Store:
    """A store with its config.yaml under ``root``; module-scoped fixtures build theirs with it,
    so a module loads its models once instead of once per test."""
    config = root / "config.yaml"
    config.write_text(
        f"experiment_name: hokusai-models\nfallback_model_path: {root / 'xgb_model.pkl'}\n"
    )
    return Store(root / "home", config)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return store_in(tmp_path)


def write_pickle(store: Store, model: Any) -> Path:
    path = Path(str(store.config.parent / "xgb_model.pkl"))
    path.write_bytes(pickle.dumps(model))
    return path


def serving_settings(store: Store, **values: Any) -> ServingSettings:
    values.setdefault("model_refresh_seconds", 0)
    values.setdefault("model_run_name", None)
    return ServingSettings(config_path=store.config, **values)


@pytest.fixture
def make_client(store: Store) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from hokusai.serving.app import create_app

    clients: list[TestClient] = []

    def build(**values: Any) -> TestClient:
        app = create_app(serving_settings(store, **values), store.settings)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@contextmanager
def client_of(store: Store, **values: Any) -> Iterator[Any]:
    """A TestClient of a new server on ``store``: for a module's own store, where make_client
    would cost a new store (and its database) per test."""
    from fastapi.testclient import TestClient

    from hokusai.serving.app import create_app

    with TestClient(create_app(serving_settings(store, **values), store.settings)) as client:
        yield client


class LiveServer:
    """A real uvicorn server in a thread (as the httpx test-suite does)."""

    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class Served:
    """A live server, the model it serves loaded the way MLflow loads it, and rows for it (the
    protocol tests compare every answer with ``pyfunc``'s predictions)."""

    server: LiveServer
    pyfunc: Any
    frame: Any
    version: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def expected(self, frame: Any = None, **params: Any) -> list[Any]:
        import numpy as np

        rows = self.frame if frame is None else frame
        return np.asarray(self.pyfunc.predict(rows, params=params or None)).tolist()
