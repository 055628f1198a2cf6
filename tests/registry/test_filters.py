"""Values in MLflow filter strings (hokusai.registry.filters), on a real MLflow store: a value
with quotes and backslashes is found exactly — not an error, not a wider match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hokusai.registry.filters import equals, like, quote
from hokusai.registry.records import (
    TAG_BASELINE_ID,
    TAG_CONTRIBUTOR,
    TAG_IS_BASELINE,
    TAG_MODEL_TYPE,
)
from tests.conftest import CONTRIBUTOR

TRICKY = [
    "plain_name",
    "it's",
    'say "hi"',
    "back\\slash",
    "it's\\here",
    'say "it\'s"',  # both quotes: no literal can carry it
    "ends\\",  # a trailing backslash escapes the closing quote for sqlparse
    "it's\\",
    "50%_off",
    "new\nline",
    "tab\there",
    "",
]


def _decoy(value: str) -> str:
    """A different value a LIKE widened at every special character would also match."""
    replaced = "".join("x" if ch in "'\"\\%_" else ch for ch in value)
    return replaced if replaced != value else f"{value}x"


@pytest.mark.parametrize("value", TRICKY)
def test_quote_gives_a_literal_or_none(value):
    literal = quote(value)
    if literal is None:
        assert value.endswith("\\") or ("'" in value and '"' in value)
        assert not equals("k", value).exact
        assert "\\" not in equals("k", value).text  # never a backslash in a LIKE pattern
    else:
        assert literal[1:-1] == value and literal[0] == literal[-1] in "'\""
        assert equals("k", value).text == f"k = {literal}"


def test_like_widens_unquotable_characters_and_is_never_exact():
    condition = like("name", "hokusai_it's\\_%")
    assert condition.text == "name LIKE 'hokusai_it_s__%'"
    assert not condition.exact
    assert like("tags.`c`", "0xAB", ignore_case=True).text == "tags.`c` ILIKE '0xAB'"


@pytest.fixture
def client(settings: Any) -> Any:
    from mlflow import MlflowClient

    settings.home_path.mkdir(parents=True, exist_ok=True)
    uri = settings.resolved_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _version(client: Any, name: str, source: Path, tags: dict[str, str]) -> Any:
    """Version 1 of a new registered model ``name``, with ``tags``."""
    client.create_registered_model(name)
    source.mkdir(parents=True, exist_ok=True)
    return client.create_model_version(name, source.as_uri(), tags=tags)


def test_tricky_names_and_tags_are_found_exactly(client, tmp_path):
    for value in TRICKY:
        if value:  # MLflow refuses an empty model name
            _version(client, value, tmp_path / "a", {"t": value})
        _version(
            client, f"decoy-{len(value)}-{_decoy(value)}", tmp_path / "b", {"t": _decoy(value)}
        )
    for value in TRICKY:
        for key, actual in (("name", lambda mv: mv.name), ("tags.t", lambda mv: mv.tags["t"])):
            condition = equals(key, value)
            found = client.search_model_versions(condition.text)  # never an error
            kept = [mv for mv in found if condition.admits(actual(mv))]
            expected = [value] if value else []  # nothing was registered for ""
            assert [actual(mv) for mv in kept] == expected, (key, value)
            if condition.exact:
                assert len(found) == len(kept), (key, value)  # not a wider match


def test_tricky_run_names_are_found_exactly(client):
    experiment = client.create_experiment("runs")
    named = [value for value in TRICKY if value]  # an empty run name gets a generated one
    for value in named:
        for name in (value, _decoy(value)):
            run = client.create_run(experiment, run_name=name)
            client.set_terminated(run.info.run_id)
    for value in named:
        condition = equals("attributes.run_name", value)
        found = client.search_runs([experiment], f"{condition} AND attributes.status = 'FINISHED'")
        assert [r.info.run_name for r in found if condition.admits(r.info.run_name)] == [value]
        if condition.exact:
            assert len(found) == 1


@pytest.mark.parametrize("model_type", ["q'b\\z", "q'b\"z\\"], ids=["one-quote", "both-quotes"])
def test_lineage_of_a_model_type_read_back_from_tags_with_quotes(registry, tmp_path, model_type):
    """A version whose ``hokusai.model_type`` tag holds quotes and a backslash (set by hand): the
    family's filter strings are built safely (no error, no wider match), and the improved
    versions under a name Hokusai could never register to are not attributed — neither the one
    the tag names nor a look-alike."""
    client = registry.client
    source = tmp_path / "artifacts"
    root = _version(
        client,
        "hokusai_tagged_baseline",
        source,
        {TAG_MODEL_TYPE: model_type, TAG_IS_BASELINE: "true"},
    )
    root_id = f"{root.name}/{root.version}"
    child_tags = {
        TAG_MODEL_TYPE: model_type,
        TAG_IS_BASELINE: "false",
        TAG_BASELINE_ID: root_id,
        TAG_CONTRIBUTOR: CONTRIBUTOR,
    }
    child = _version(client, f"hokusai_{model_type}_improved", source, child_tags)
    # Newer, in a registered model whose name a LIKE on the widened pattern would also match.
    _version(client, f"hokusai_{_decoy(model_type)}_improved", source, child_tags)

    lineage = registry.get_model_lineage(root_id)

    assert [entry["model_id"] for entry in lineage] == [root_id]
    assert child.name == f"hokusai_{model_type}_improved"  # it exists, under a foreign name
