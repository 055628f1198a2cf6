"""Versions registered by the pre-upgrade code stay readable, and the backfill tags them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hokusai.services.model_registry import HokusaiModelRegistry
from tests.conftest import CONTRIBUTOR
from tests.legacy_code import (
    legacy_register_baseline,
    legacy_register_improved,
    mlflow2_style_baseline,
)


@pytest.fixture
def legacy(registry: HokusaiModelRegistry, settings) -> dict[str, Any]:
    home = settings.home_path
    base = legacy_register_baseline(
        registry.tracking_uri, home, "lead_scoring", {"dataset": "crm-2024", "rows": 1200}
    )
    improved = legacy_register_improved(
        registry.tracking_uri, home, base["model_id"], {"accuracy": 0.03}, CONTRIBUTOR.lower()
    )
    return {"base": base, "improved": improved}


def test_legacy_layout_is_what_the_old_code_wrote(registry, legacy):
    versions = registry.client.search_model_versions("name = 'hokusai_lead_scoring_baseline'")
    assert len(versions) == 2  # the old code registered every model twice
    improved = registry.client.get_model_version(*legacy["improved"]["model_id"].split("/"))
    assert improved.tags == {
        "baseline_model_id": legacy["base"]["model_id"],
        "contributor": CONTRIBUTOR.lower(),
    }


def test_legacy_versions_are_readable_by_lineage(registry, legacy, forest):
    # A new improvement on top of the legacy one joins the same family.
    newer = registry.register_improved_model(
        forest, legacy["improved"]["model_id"], {"accuracy": 0.01}, CONTRIBUTOR
    )
    lineage = registry.get_model_lineage(newer["model_id"])
    assert [e["model_id"] for e in lineage] == [
        legacy["base"]["model_id"],
        legacy["improved"]["model_id"],
        newer["model_id"],
    ]
    base, old, new = lineage
    assert base["is_baseline"] and base["legacy"]
    assert base["metadata"] == {"dataset": "crm-2024", "rows": "1200"}
    assert base["model_type"] == "lead_scoring"
    assert old["contributor"] == CONTRIBUTOR  # stored as typed, returned in checksum form
    assert old["legacy"]
    assert old["delta_metrics"] == {"accuracy": 0.03}
    assert old["metrics"] == {}
    assert new["cumulative_improvement"] == pytest.approx(
        {"accuracy": 0.04, "total_improvements": 2}
    )


def test_legacy_versions_are_found_by_contributor_in_any_case(registry, legacy):
    found = registry.get_contributor_models(CONTRIBUTOR)
    assert [m["model_id"] for m in found] == [legacy["improved"]["model_id"]]
    assert found[0]["delta_metrics"] == {"accuracy": 0.03}
    assert found[0]["legacy"] is True


def _tags(registry: HokusaiModelRegistry, model_id: str) -> dict[str, str]:
    return dict(registry.client.get_model_version(*model_id.split("/")).tags)


def test_backfill_dry_run_reports_and_writes_nothing(registry, legacy):
    before = _tags(registry, legacy["improved"]["model_id"])
    report = registry.backfill(dry_run=True)
    assert report.dry_run
    assert report.scanned == 4
    assert set(report.updated) == {
        "hokusai_lead_scoring_baseline/1",
        "hokusai_lead_scoring_baseline/2",
        "hokusai_lead_scoring_improved/1",
        "hokusai_lead_scoring_improved/2",
    }
    assert _tags(registry, legacy["improved"]["model_id"]) == before


def test_backfill_tags_legacy_versions_idempotently(registry, legacy):
    progress: list[tuple[int, int]] = []
    report = registry.backfill(on_progress=lambda done, total: progress.append((done, total)))
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert report.failed == {}
    improved_id = legacy["improved"]["model_id"]
    tags = _tags(registry, improved_id)
    assert tags["hokusai.contributor"] == CONTRIBUTOR
    assert tags["hokusai.baseline_id"] == legacy["base"]["model_id"]
    assert json.loads(tags["hokusai.delta_metrics"]) == {"accuracy": 0.03}
    assert tags["hokusai.model_type"] == "lead_scoring"
    assert tags["hokusai.backfilled"] == "true"
    uuid = tags["hokusai.model_uuid"]
    assert uuid.startswith("m-")

    found = registry.get_model_by_uuid(uuid)
    assert found is not None and found["model_id"] == improved_id
    assert found["contributor"] == CONTRIBUTOR and found["legacy"] is False

    lineage = registry.get_model_lineage(improved_id)
    assert lineage[0]["metadata"] == {"dataset": "crm-2024", "rows": "1200"}
    assert lineage[1]["metrics"] == {} and lineage[1]["delta_metrics"] == {"accuracy": 0.03}

    again = registry.backfill()
    assert again.updated == {} and again.already_tagged == 4


def test_backfill_reads_the_uuid_of_mlflow2_era_versions_from_mlmodel(registry, settings):
    old = mlflow2_style_baseline(registry.tracking_uri, settings.home_path, "ranking")
    expected = yaml.safe_load((Path(old["folder"]) / "MLmodel").read_text())["model_uuid"]
    assert not expected.startswith("m-")
    report = registry.backfill()
    assert report.updated[old["model_id"]]["hokusai.model_uuid"] == expected
    found = registry.get_model_by_uuid(expected)
    assert found is not None and found["model_id"] == old["model_id"]
    assert found["is_baseline"] is True


def test_the_index_agrees_with_mlflow_on_legacy_versions_before_and_after_backfill(
    registry, legacy
):
    """Reindexing a pre-upgrade registry, then backfilling it: every indexed answer is what
    MLflow answers, field for field."""
    index = registry.index
    assert not index.built()  # versions existed before the index: it needs a reindex
    report = index.reindex()
    assert report.built and report.indexed == 4  # the old code registered each twice
    ids = [legacy["base"]["model_id"], legacy["improved"]["model_id"]]

    def agree() -> None:
        assert index.answers()
        for model_id in ids:
            ours, theirs = index.lineage(model_id), registry.queries.lineage(model_id)
            assert [e["model_id"] for e in ours] == [e["model_id"] for e in theirs]
            for a, b in zip(ours, theirs, strict=True):
                assert {k: v for k, v in a.items() if b.get(k) != v} == {}, a["model_id"]
        assert index.contributor_models(CONTRIBUTOR) == registry.queries.contributor_models(
            CONTRIBUTOR
        )
        assert index.check().clean

    agree()
    registry.backfill()
    agree()
    uuid = _tags(registry, legacy["improved"]["model_id"])["hokusai.model_uuid"]
    assert index.by_uuid(uuid) == registry.queries.by_uuid(uuid)
