"""A small real registry for the console's tests: two families on a real MLflow store (temp
SQLite + artifact folder), improvements credited to two contributors — the first one verified by
the registry on a benchmark, the others only claimed —, an alias, a metadata value that is HTML,
and the webhook events of every registration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hokusai.config import Settings

CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 test vectors
OTHER = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
HOSTILE = "<script>alert('x')</script>"
BENCHMARK = "console-synthetic-v1"


@dataclass
class Store:
    settings: Settings
    baseline: str
    first: str
    second: str
    branch: str
    other_family: str
    keys: dict[str, str]
    key_ids: dict[str, str]


FEATURES = ["f0", "f1", "f2", "f3"]


def _rows(n: int, seed: int) -> Any:
    """Rows whose label depends on every feature: a model seeing only f0 is clearly worse."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    logit = 1.5 * x[:, 0] + 1.2 * x[:, 1] - 1.0 * x[:, 2] + 0.8 * x[:, 3]
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["label"] = (logit + rng.logistic(size=n) * 0.5 > 0).astype(np.int64)
    return frame


def _models() -> tuple[Any, Any, Any]:
    """A weak model (f0 only), a strong one (every feature), and example rows of each."""
    from sklearn.linear_model import LogisticRegression

    train = _rows(1500, seed=1)
    weak = LogisticRegression().fit(train[["f0"]], train["label"])
    strong = LogisticRegression().fit(train[FEATURES], train["label"])
    return weak, strong, train


def build_store(home: Path, **overrides: Any) -> Store:
    """Register the versions (announced to the webhook endpoint ``overrides`` may configure)
    and create a read, a write and an admin key."""
    from hokusai.auth import ApiKeyStore
    from hokusai.db import open_database
    from hokusai.services.model_registry import HokusaiModelRegistry

    settings = Settings(home=home, webhook_background=False, **overrides)
    registry = HokusaiModelRegistry(settings=settings)
    weak, strong, train = _models()
    pip, narrow, wide = ["scikit-learn"], train[["f0"]].head(3), train[FEATURES].head(3)
    base = registry.register_baseline(
        weak,
        "classification",
        {"dataset": "synthetic", "note": HOSTILE},
        input_example=narrow,
        metrics={"accuracy": 0.80, "f1": 0.78},
        pip_requirements=pip,
    )["model_id"]
    first = registry.register_improved_model(
        strong,
        base,
        {"accuracy": 0.02, "f1": 0.01},
        CONTRIBUTOR,
        input_example=wide,
        metrics={"accuracy": 0.82},
        pip_requirements=pip,
    )["model_id"]
    second = registry.register_improved_model(
        strong,
        first,
        {"accuracy": 0.01},
        OTHER,
        input_example=wide,
        metrics={"accuracy": 0.83},
        pip_requirements=pip,
    )["model_id"]
    branch = registry.register_improved_model(
        weak,
        base,
        {"accuracy": 0.005},
        OTHER,
        input_example=narrow,
        metrics={"accuracy": 0.805},
        pip_requirements=pip,
    )["model_id"]
    name, version = second.split("/")
    registry.set_alias(name, "champion", version)
    other = registry.register_baseline(
        weak, "regression", {"dataset": "synthetic"}, input_example=narrow, pip_requirements=pip
    )["model_id"]
    # The registry measures the first improvement itself: its gain is then shown as verified.
    from hokusai.registry.benchmarks import BenchmarkStore

    rows = home.parent / "benchmark.parquet"
    _rows(600, seed=2).to_parquet(rows, index=False)
    BenchmarkStore(settings).add(BENCHMARK, rows, "label", "accuracy")
    verified = registry.verify_improvement(first, BENCHMARK, n_boot=200)
    assert verified["accepted"], verified
    store = ApiKeyStore(open_database(settings.resolved_database_url))
    keys, ids = {}, {}
    for scope in ("read", "write", "admin"):
        key, plaintext = store.create(name=f"console-{scope}", scope=scope)
        keys[scope], ids[scope] = plaintext, key.id
    return Store(settings, base, first, second, branch, other, keys, ids)
