"""A small improved-model family on a real MLflow store: a weak scikit-learn baseline, a
stronger XGBoost candidate, a benchmark of held-out rows, and an announcer that records what it
is told."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hokusai.config import Settings
from hokusai.registry.verification import VERIFICATION_EXPERIMENT
from tests.conftest import CONTRIBUTOR

FEATURES = ["f0", "f1", "f2", "f3"]


def synthetic(n: int, seed: int) -> pd.DataFrame:
    """Rows whose label depends on all four features (f0 most): a model seeing only f0 is
    clearly worse than one seeing all."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    logit = 1.5 * x[:, 0] + 1.2 * x[:, 1] - 1.0 * x[:, 2] + 0.8 * x[:, 3]
    label = (logit + rng.logistic(size=n) * 0.5 > 0).astype(np.int64)
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["label"] = label
    return frame


class RecordingAnnouncer:
    """An :class:`~hokusai.registry.Announcer` that keeps what it is asked to announce."""

    def __init__(self) -> None:
        self.verifications: list[dict[str, Any]] = []
        self.fail = False

    def prepare(self) -> None:
        pass

    def announce_registration(self, result: Any, *, transaction: Any = None) -> str | None:
        return None

    def announce_promotion(self, *_args: Any, **_kwargs: Any) -> str | None:
        return None

    def announce_verification(self, result: Any) -> list[str]:
        if self.fail:
            raise RuntimeError("the outbox is down")
        self.verifications.append(dict(result))
        ids = [f"evt_verified_{len(self.verifications)}"]
        if result["accepted"]:
            ids.append(f"evt_accepted_{len(self.verifications)}")
        return ids


@dataclass
class Family:
    registry: Any
    announcer: RecordingAnnouncer
    home: Path
    baseline: dict[str, Any]
    candidate: dict[str, Any]
    benchmark: str
    extra: dict[str, Any] = field(default_factory=dict)

    def add_benchmark(self, name: str, frame: pd.DataFrame, metric: str, **kwargs: Any) -> str:
        from hokusai.registry.benchmarks import BenchmarkStore

        path = self.home / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        target = kwargs.pop("target", "label")
        BenchmarkStore(self.registry.settings).add(name, path, target, metric, **kwargs)
        return name


def verification_runs(registry: Any) -> list[Any]:
    """Every run of the verification experiment, deleted ones included."""
    client = registry.client
    experiment = client.get_experiment_by_name(VERIFICATION_EXPERIMENT)
    if experiment is None:
        return []
    return list(client.search_runs([experiment.experiment_id], run_view_type=3))


def verification_tags(registry: Any, model_id: str) -> dict[str, str]:
    name, version = model_id.split("/")
    tags = registry.client.get_model_version(name, version).tags or {}
    return {k: v for k, v in tags.items() if k.startswith(("hokusai.verif", "hokusai.verified"))}


def assert_nothing_recorded(family: Family) -> None:
    assert verification_runs(family.registry) == []
    assert verification_tags(family.registry, family.candidate["model_id"]) == {}
    assert family.announcer.verifications == []


def make_family(
    settings: Settings,
    tmp_path: Path,
    *,
    index: bool = True,
    model_type: str = "verifydemo",
    benchmark: str = "verifydemo-v1",
    contributor: str = CONTRIBUTOR,
) -> Family:
    from sklearn.linear_model import LogisticRegression
    from xgboost import XGBClassifier

    from hokusai.registry import ModelRegistry

    settings = settings.model_copy(update={"registry_index": index})
    announcer = RecordingAnnouncer()
    registry = ModelRegistry(settings=settings, announcer=announcer)
    train = synthetic(3000, seed=1)
    weak = LogisticRegression().fit(train[["f0"]], train["label"])
    strong = XGBClassifier(n_estimators=60, max_depth=3, learning_rate=0.2).fit(
        train[FEATURES], train["label"]
    )
    baseline = registry.register_baseline(weak, "verifydemo", input_example=train[["f0"]].head(3))
    candidate = registry.register_improved_model(
        strong,
        baseline["model_id"],
        {"accuracy": 0.05},
        contributor,
        input_example=train[FEATURES].head(3),
    )
    family = Family(registry, announcer, tmp_path, baseline, candidate, "")
    family.benchmark = family.add_benchmark(
        benchmark, synthetic(2000, seed=2), "accuracy", guardrails=["roc_auc:0.01"]
    )
    return family


@pytest.fixture
def family(settings: Settings, tmp_path: Path) -> Family:
    return make_family(settings, tmp_path)
