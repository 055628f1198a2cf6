"""A small real registry for the console's tests: two families on a real MLflow store (temp
SQLite + artifact folder), improvements credited to two contributors, an alias, a metadata value
that is HTML, and the webhook events of every registration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hokusai.config import Settings

CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 test vectors
OTHER = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
HOSTILE = "<script>alert('x')</script>"


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


def _model() -> Any:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.RandomState(0)
    features = rng.rand(40, 4)
    return LogisticRegression().fit(features, (features[:, 0] > 0.5).astype(int))


def build_store(home: Path, **overrides: Any) -> Store:
    """Register the versions (announced to the webhook endpoint ``overrides`` may configure)
    and create a read, a write and an admin key."""
    from hokusai.auth import ApiKeyStore
    from hokusai.db import open_database
    from hokusai.services.model_registry import HokusaiModelRegistry

    settings = Settings(home=home, webhook_background=False, **overrides)
    registry = HokusaiModelRegistry(settings=settings)
    model, pip = _model(), ["scikit-learn"]
    base = registry.register_baseline(
        model,
        "classification",
        {"dataset": "iris", "note": HOSTILE},
        metrics={"accuracy": 0.90, "f1": 0.88},
        pip_requirements=pip,
    )["model_id"]
    first = registry.register_improved_model(
        model,
        base,
        {"accuracy": 0.02, "f1": 0.01},
        CONTRIBUTOR,
        metrics={"accuracy": 0.92},
        pip_requirements=pip,
    )["model_id"]
    second = registry.register_improved_model(
        model, first, {"accuracy": 0.01}, OTHER, metrics={"accuracy": 0.93}, pip_requirements=pip
    )["model_id"]
    branch = registry.register_improved_model(
        model, base, {"accuracy": 0.005}, OTHER, metrics={"accuracy": 0.905}, pip_requirements=pip
    )["model_id"]
    name, version = second.split("/")
    registry.set_alias(name, "champion", version)
    other = registry.register_baseline(
        model, "regression", {"dataset": "diabetes"}, pip_requirements=pip
    )["model_id"]
    store = ApiKeyStore(open_database(settings.resolved_database_url))
    keys, ids = {}, {}
    for scope in ("read", "write", "admin"):
        key, plaintext = store.create(name=f"console-{scope}", scope=scope)
        keys[scope], ids[scope] = plaintext, key.id
    return Store(settings, base, first, second, branch, other, keys, ids)
