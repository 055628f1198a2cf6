"""``MODEL_RUN_NAME`` with quotes and backslashes: the run of exactly that name is served, not an
error and not a newer run whose name only looks alike (hokusai.registry.filters)."""

from __future__ import annotations

import time

import pytest

from hokusai.registry.filters import equals


def _lookalike(name: str) -> str:
    return "".join("x" if ch in "'\"\\%_" else ch for ch in name)


@pytest.mark.parametrize(
    "run_name",
    ["ml_it's\\here", 'ml_"it\'s"\\'],
    ids=["one-quote-and-backslash", "both-quotes-and-trailing-backslash"],
)
def test_a_run_name_with_quotes_and_a_backslash_is_found_exactly(
    store, models, data, make_client, run_name
):
    features, _ = data
    info = store.log(models[0], run_name=run_name, example=features.head(3))
    assert equals("attributes.run_name", run_name).exact is (run_name.count('"') == 0)
    # Newer finished runs whose names match the widened LIKE pattern: picking one of them
    # would serve the wrong model (they logged none, so the source would be skipped).
    newer = int(time.time() * 1000) + 60_000
    for offset, name in enumerate([_lookalike(run_name), _lookalike(run_name) + "x"]):
        run = store.client.create_run(store.experiment_id, run_name=name, start_time=newer + offset)
        store.client.set_terminated(run.info.run_id)

    client = make_client(model_run_name=run_name)
    health = client.get("/health").json()

    assert health["status"] == "ok", health
    assert health["model"]["source"] == "MODEL_RUN_NAME"
    assert health["model"]["run_id"] == info.run_id
    assert health["model"]["name"] == run_name
