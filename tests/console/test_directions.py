"""Gains of lower-is-better metrics (log loss, RMSE) on every page that shows a gain: a drop is
an improvement, labelled so, ranked as one — on a real registry, one version verified by the
registry on a log-loss benchmark."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.console.conftest import sign_in
from tests.console.store import CONTRIBUTOR, OTHER, _models, _rows

THIRD = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"  # EIP-55 test vector


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A baseline and three improvements: CONTRIBUTOR's claims a log-loss drop and is verified
    on a log-loss benchmark; OTHER claims an RMSE drop of 0.05 (500 bps) beside a tiny accuracy
    gain; THIRD claims +0.03 accuracy (300 bps)."""
    from hokusai.auth import ApiKeyStore
    from hokusai.config import Settings
    from hokusai.db import open_database
    from hokusai.registry.benchmarks import BenchmarkStore
    from hokusai.services.model_registry import HokusaiModelRegistry

    home = tmp_path_factory.mktemp("directions") / "home"
    settings = Settings(home=home, webhook_background=False)
    registry = HokusaiModelRegistry(settings=settings)
    weak, strong, train = _models()
    pip = ["scikit-learn"]
    narrow, wide = train[["f0"]].head(3), train[["f0", "f1", "f2", "f3"]].head(3)
    base = registry.register_baseline(
        weak, "classification", {"dataset": "synthetic"}, input_example=narrow, pip_requirements=pip
    )["model_id"]
    verified = registry.register_improved_model(
        strong,
        base,
        {"log_loss": -0.01, "accuracy": -0.002},
        CONTRIBUTOR,
        input_example=wide,
        pip_requirements=pip,
    )["model_id"]
    rmse = registry.register_improved_model(
        weak,
        base,
        {"rmse": -0.05, "accuracy": 0.001},
        OTHER,
        input_example=narrow,
        pip_requirements=pip,
    )["model_id"]
    third = registry.register_improved_model(
        weak, base, {"accuracy": 0.03}, THIRD, input_example=narrow, pip_requirements=pip
    )["model_id"]
    rows = home.parent / "benchmark.parquet"
    _rows(600, seed=2).to_parquet(rows, index=False)
    BenchmarkStore(settings).add("console-log-loss-v1", rows, "label", "log_loss")
    result = registry.verify_improvement(verified, "console-log-loss-v1", n_boot=200)
    assert result["accepted"], result
    key, plaintext = ApiKeyStore(open_database(settings.resolved_database_url)).create(
        name="directions", scope="read"
    )
    return {
        "settings": settings,
        "base": base,
        "verified": verified,
        "rmse": rmse,
        "third": third,
        "key": plaintext,
        "home": Path(home),
    }


@pytest.fixture(scope="module")
def client(family: dict[str, Any]) -> Any:
    from hokusai.rest.app import create_app

    with TestClient(create_app(family["settings"], deliver_webhooks=False)) as found:
        sign_in(found, family["key"])
        yield found


VERIFIED_LABEL = re.compile(r"log_loss -0\.\d{4} \(better\)")


def test_the_models_page_labels_drops_as_improvements(client: TestClient):
    page = client.get("/ui/models").text
    assert VERIFIED_LABEL.search(page), page
    assert "log_loss +" not in page  # the old label: the improvement as if log loss rose
    assert "rmse -0.0500 (better)" in page  # the claim that improved most, not accuracy +0.001
    assert "accuracy +0.0010" not in page
    assert "accuracy +0.0300" in page  # higher-is-better metrics read as before


def test_the_version_page_says_which_direction_is_better(client: TestClient, family: Any):
    page = client.get(f"/ui/models/{family['verified']}").text
    found = re.search(r"log_loss improved by \+(\d+) bps \(lower is better\)", page)
    assert found and int(found.group(1)) > 0, page
    assert VERIFIED_LABEL.search(page)
    assert re.search(r"<td>log_loss</td><td class=\"num\">-0\.0100</td><td>lower</td>", page)
    assert re.search(r"<td>accuracy</td><td class=\"num\">-0\.0020</td><td>higher</td>", page)


def test_lineage_labels_drops_as_improvements(client: TestClient, family: Any):
    page = client.get(f"/ui/lineage/{family['base']}").text
    assert re.search(r'class="gain-verified">log_loss -0\.\d{4} \(better\) ✓<', page), page
    assert 'class="gain-claimed">rmse -0.0500 (better) (claimed)<' in page
    assert 'class="gain-claimed">accuracy +0.0300 (claimed)<' in page


def test_the_leaderboard_ranks_claimed_drops_as_gains(client: TestClient):
    page = client.get("/ui/contributors").text
    # CONTRIBUTOR verified; OTHER claimed 500 bps (an RMSE drop), THIRD 300 bps of accuracy.
    assert page.index(CONTRIBUTOR) < page.index(OTHER) < page.index(THIRD)
    assert re.search(r"\+\d+ bps <span class=\"tag\">verified", page)
    assert '+500 bps <span class="tag">claimed' in page
    assert '+300 bps <span class="tag">claimed' in page
    assert "-500 bps" not in page


def test_gain_of_follows_the_metric_direction():
    from hokusai.rest.ui.figures import gain_of

    worse = gain_of({"delta_metrics": {"log_loss": 0.02}})
    assert worse is not None
    assert (worse.bps, worse.label) == (-200, "log_loss +0.0200 (worse)")
    # A metric the registry does not know is taken as higher-is-better.
    unknown = gain_of({"delta_metrics": {"ndcg": 0.01, "mae": -0.005}})
    assert unknown is not None and (unknown.metric, unknown.bps) == ("ndcg", 100)
    assert unknown.label == "ndcg +0.0100"
    verified = gain_of(
        {
            "delta_metrics": {"rmse": -0.5},
            "verification": {
                "metric": "rmse",
                "improvement_bps": 75,
                "delta_bps": -75,
                "accepted": True,
                "claim_status": "confirmed",
            },
        }
    )
    assert verified is not None
    assert (verified.bps, verified.label, verified.kind) == (
        75,
        "rmse -0.0075 (better)",
        "verified",
    )
