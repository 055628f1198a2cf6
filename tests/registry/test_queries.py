"""uuid lookup, lineage and contributor queries on a real MLflow store."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hokusai.errors import InvalidContributorError, InvalidModelIdError, ModelNotFoundError
from tests.conftest import CONTRIBUTOR

OTHER = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"


@pytest.mark.backends
def test_get_model_by_uuid_returns_the_version_with_stage_and_aliases(registry, backend, forest):
    result = registry.register_baseline(forest, backend.model_type("classification"), {"team": "a"})
    registry.client.set_registered_model_alias(result["model_name"], "champion", result["version"])
    found = registry.get_model_by_uuid(result["model_uuid"])
    assert found is not None
    for key in ("model_id", "model_name", "version", "model_uuid", "run_id", "model_uri"):
        assert found[key] == result[key]
    assert found["aliases"] == ["champion"]
    assert found["stage"] is None  # MLflow says "None"; JSON gets null
    assert found["metadata"] == {"team": "a"}
    assert found["flavors"] == result["flavors"]
    assert found["is_baseline"] is True
    assert found["registration_timestamp"] == result["registration_timestamp"]


@pytest.mark.parametrize(
    "uuid", ["m-00000000000000000000000000000000", "nope", "", "m-'; DROP", "x" * 500]
)
def test_get_model_by_uuid_returns_none_for_unknown_ids(registry, forest, uuid):
    registry.register_baseline(forest, "classification", {})
    assert registry.get_model_by_uuid(uuid) is None


def test_get_model_by_name_and_version(registry, forest):
    result = registry.register_baseline(forest, "classification", {})
    assert registry.get_model(result["model_id"])["model_uuid"] == result["model_uuid"]
    with pytest.raises(ModelNotFoundError, match="not found"):
        registry.get_model("hokusai_classification_baseline/9")


@pytest.fixture
def contributors(backend):
    """CONTRIBUTOR and OTHER — on the stack, two addresses of this test alone."""
    return backend.address(CONTRIBUTOR), backend.address(OTHER)


@pytest.fixture
def family(registry, backend, contributors, forest):
    """baseline ← a (OTHER) ← c (CONTRIBUTOR);  baseline ← b (CONTRIBUTOR)."""
    contributor, other = contributors
    base = registry.register_baseline(
        forest, backend.model_type("classification"), {}, metrics={"accuracy": 0.8}
    )
    a = registry.register_improved_model(
        forest, base["model_id"], {"accuracy": 0.05}, other, metrics={"accuracy": 0.85}
    )
    b = registry.register_improved_model(forest, base["model_id"], {"accuracy": 0.01}, contributor)
    c = registry.register_improved_model(
        forest, a["model_id"], {"accuracy": 0.02, "f1": 0.1}, contributor.lower()
    )
    return base, a, b, c


@pytest.mark.backends
def test_lineage_walks_the_whole_tree_with_cumulative_improvement(registry, family, contributors):
    base, a, b, c = family
    _, other = contributors
    for start in (base, a, c):
        lineage = registry.get_model_lineage(start["model_id"])
        assert [e["model_id"] for e in lineage] == [
            base["model_id"],
            a["model_id"],
            b["model_id"],
            c["model_id"],
        ]
    lineage = registry.get_model_lineage(c["model_id"])
    root, first, second, third = lineage
    assert root["is_baseline"] and root["depth"] == 0 and root["parent_id"] is None
    assert root["metrics"] == {"accuracy": 0.8}
    assert root["cumulative_improvement"] == {"total_improvements": 0}
    assert first["contributor"] == other and first["metrics"] == {"accuracy": 0.85}
    assert second["parent_id"] == base["model_id"]
    assert second["cumulative_improvement"] == {"accuracy": 0.01, "total_improvements": 1}
    assert third["parent_id"] == a["model_id"] and third["depth"] == 2
    assert third["delta_metrics"] == {"accuracy": 0.02, "f1": 0.1}
    assert third["cumulative_improvement"] == pytest.approx(
        {"accuracy": 0.07, "f1": 0.1, "total_improvements": 2}
    )
    for entry in lineage:
        assert entry["model_uuid"].startswith("m-")
        assert entry["registration_timestamp"] and entry["created_at"] > 0


def test_lineage_of_a_bare_model_name_covers_every_family_in_it(registry, family, forest):
    base, a, b, c = family
    second_base = registry.register_baseline(forest, "classification", {})
    e = registry.register_improved_model(forest, second_base["model_id"], {"f1": 0.2}, OTHER)
    lineage = registry.get_model_lineage(base["model_name"])
    assert [x["model_id"] for x in lineage] == [
        base["model_id"],
        a["model_id"],
        b["model_id"],
        c["model_id"],
        second_base["model_id"],
        e["model_id"],
    ]
    assert lineage[-1]["cumulative_improvement"] == {"f1": 0.2, "total_improvements": 1}
    # name/version still means that version's own family only
    assert len(registry.get_model_lineage(second_base["model_id"])) == 2


def test_lineage_of_unknown_models_raises_not_found(registry, family):
    with pytest.raises(ModelNotFoundError, match="not found"):
        registry.get_model_lineage("hokusai_classification_baseline/42")
    with pytest.raises(ModelNotFoundError, match="not found"):
        registry.get_model_lineage("no_such_model")
    with pytest.raises(InvalidModelIdError):
        registry.get_model_lineage("a/b/c")


@pytest.mark.backends
def test_contributor_models_in_any_letter_case_across_model_types(
    registry, backend, family, contributors, forest
):
    base, a, b, c = family
    contributor, other = contributors
    other_base = registry.register_baseline(forest, backend.model_type("ranking"), {})
    d = registry.register_improved_model(forest, other_base["model_id"], {"ndcg": 0.1}, contributor)
    for spelling in (contributor, contributor.lower(), "0x" + contributor[2:].upper()):
        found = registry.get_contributor_models(spelling)
        assert [m["model_id"] for m in found] == [b["model_id"], c["model_id"], d["model_id"]]
    assert {m["model_type"] for m in found} == {
        backend.model_type("classification"),
        backend.model_type("ranking"),
    }
    assert all(m["contributor"] == contributor for m in found)
    assert [m["model_id"] for m in registry.get_contributor_models(other)] == [a["model_id"]]
    assert registry.get_contributor_models("0x" + "0" * 40) == []
    with pytest.raises(InvalidContributorError):
        registry.get_contributor_models("not an address")


def test_git_commit_is_recorded_when_registering_from_a_git_checkout(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "register.py"
    script.write_text(
        textwrap.dedent(
            """
            import json
            from sklearn.datasets import load_iris
            from sklearn.linear_model import LogisticRegression
            from hokusai.services.model_registry import HokusaiModelRegistry

            x, y = load_iris(return_X_y=True)
            registry = HokusaiModelRegistry()
            result = registry.register_baseline(LogisticRegression(max_iter=300).fit(x, y),
                                                "classification", {})
            found = registry.get_model_by_uuid(result["model_uuid"])
            print(json.dumps([result["git_commit"], found["git_commit"]]))
            """
        )
    )
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "train"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    out = subprocess.run(
        [sys.executable, str(script)], cwd=repo, check=True, capture_output=True, text=True
    )
    assert out.stdout.strip().splitlines()[-1] == f'["{head}", "{head}"]'
