"""Shared fixtures: a real MLflow store on a temp SQLite file and a temp artifact folder — or,
for tests marked ``backends``, on the loopback stack too (tests/backends.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hokusai.config import Settings
from tests.backends import Backend, parametrize_backends
from tests.backends import backend as backend  # the store every folder's fixtures build on
from tests.stack.stack import loopback_stack  # noqa: F401 - one session stack for every folder

CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 test vector

# MLflow caches up to 200 stores per process (one per store URI), each with a pool of open
# SQLite connections: over a full run, with a fresh store per test, that is hundreds of open
# files. Every test store is throw-away, so MLflow connects per operation here.
os.environ.setdefault("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's MLflow/Hokusai configuration or writes to ./.hokusai."""
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(key, raising=False)
    for key in list(__import__("os").environ):
        if key.startswith("HOKUSAI_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOKUSAI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_PYTHON_REFRESH", "quiet")
    yield
    # Each test's databases are throw-away: close their pools, or a full run keeps well over
    # 1,024 file descriptors open (and select() in the test receivers fails past that).
    from hokusai.db import dispose_engines
    from hokusai.registry.index import dispose_probes

    dispose_engines()
    dispose_probes()


ROOT = Path(__file__).resolve().parents[1]
STRAYS = ("mlflow.db", "mlruns", ".hokusai")


@pytest.fixture(autouse=True, scope="session")
def _nothing_written_to_the_checkout() -> Iterator[None]:
    """MLflow falls back to ./mlflow.db when a global URI is missing: catch any code path
    that lets that happen (it would mean a store outside HOKUSAI_HOME)."""
    before = {name for name in STRAYS if (ROOT / name).exists()}
    yield
    created = {name for name in STRAYS if (ROOT / name).exists()} - before
    assert not created, f"tests wrote {sorted(created)} into the checkout"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_backends(metafunc)


@pytest.fixture
def settings(backend: Backend) -> Settings:
    return backend.settings()


@pytest.fixture
def registry(settings: Settings) -> Any:
    from hokusai.services.model_registry import HokusaiModelRegistry

    return HokusaiModelRegistry(settings=settings)


@pytest.fixture(scope="session")
def iris() -> Any:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True)
    return frame.data, frame.target


@pytest.fixture(scope="session")
def forest(iris: Any) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    features, target = iris
    return RandomForestClassifier(n_estimators=5, random_state=0).fit(features, target)


@pytest.fixture(scope="session")
def logistic(iris: Any) -> Any:
    from sklearn.linear_model import LogisticRegression

    features, target = iris
    return LogisticRegression(max_iter=500).fit(features, target)
