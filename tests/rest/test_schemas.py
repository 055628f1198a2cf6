"""One declaration per result shape: the REST schemas are the library's TypedDicts, and what
the library returns fits them exactly."""

from __future__ import annotations

from typing import Any

import pytest

from hokusai.registry import results
from tests.conftest import CONTRIBUTOR
from tests.rest.conftest import bearer

SHAPES = {
    "RegistrationResult": results.RegistrationResult,
    "ModelVersionInfo": results.ModelVersionInfo,
    "LineageEntry": results.LineageEntry,
    "ModelSummary": results.ModelSummary,
    "AliasChange": results.AliasChange,
    "VerificationResult": results.VerificationResult,
    "MetricComparison": results.MetricComparison,
    "GuardrailCheck": results.GuardrailCheck,
    "BenchmarkRef": results.BenchmarkRef,
}


def _keys(shape: Any) -> tuple[set[str], set[str]]:
    return set(shape.__required_keys__), set(shape.__optional_keys__)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_openapi_schema_is_the_library_shape(app, name):
    schema = app.openapi()["components"]["schemas"][name]
    required, optional = _keys(SHAPES[name])
    assert set(schema["properties"]) == required | optional
    assert set(schema.get("required", [])) == required


def test_library_results_fit_their_declared_shapes_exactly(app, client, keys, forest):
    registry = app.state.components.registry
    base = registry.register_baseline(forest, "classification", {"k": [1, 2]})
    better = registry.register_improved_model(forest, base["model_id"], {"acc": 0.01}, CONTRIBUTOR)
    required, optional = _keys(results.RegistrationResult)
    for result in (base, better):
        assert required <= set(result) <= required | optional
    # every optional key but `verification`, which only register_improved_model(benchmark=) adds
    assert set(better) == (required | optional) - {"verification"}

    version = registry.get_model_by_uuid(better["model_uuid"])
    assert set(version) == set(results.ModelVersionInfo.__required_keys__)
    lineage = registry.get_model_lineage(better["model_id"])
    assert all(set(e) == set(results.LineageEntry.__required_keys__) for e in lineage)
    summaries = registry.get_contributor_models(CONTRIBUTOR)
    assert [set(s) for s in summaries] == [set(results.ModelSummary.__required_keys__)]
    change = registry.set_alias(base["model_name"], "champion", base["version"])
    assert set(change) == set(results.AliasChange.__required_keys__)

    # The REST service answers in the same shapes, key for key.
    read = bearer(keys["read"])
    answer = client.get(f"/api/v1/models/by-uuid/{better['model_uuid']}", headers=read)
    assert answer.status_code == 200
    assert set(answer.json()) == set(version)


def test_the_cli_prints_keys_of_the_same_shapes():
    from hokusai.cli import models

    assert set(models._GET_FIELDS) <= set(results.ModelVersionInfo.__required_keys__)
