"""The registry index answers exactly what MLflow answers, and keeps agreeing with it.

Every test compares the index's answers with the MLflow-backed queries (the reference: what
every read returned before the index existed) on a real store, after the change named.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hokusai.config import Settings
from hokusai.errors import RegistrationError
from hokusai.registry.index import RegistryIndex, index_tables
from tests.webhooks import pg

CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
OTHER = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """The project database (outbox and index) on embedded SQLite, then on PostgreSQL."""
    if request.param == "sqlite":
        yield Settings(home=tmp_path / "home")
        return
    with pg.temporary_database() as url:
        yield Settings(home=tmp_path / "home", database_url=url)


def _open(settings: Settings, **kwargs: Any) -> Any:
    from hokusai.services.model_registry import HokusaiModelRegistry

    return HokusaiModelRegistry(settings=settings, **kwargs)


def _agree(
    registry: Any, *, uuids: list[str], lineages: list[str], contributors: list[str]
) -> None:
    """The index answers every read exactly as MLflow does, field for field."""
    index: RegistryIndex = registry.index
    queries = registry.queries
    assert index.answers()
    for uuid in uuids:
        assert index.by_uuid(uuid) == queries.by_uuid(uuid), uuid
    for model_id in lineages:
        assert index.lineage(model_id) == queries.lineage(model_id), model_id
    for address in contributors:
        assert index.contributor_models(address) == queries.contributor_models(address), address
    drift = index.check()
    assert drift.clean, drift.to_dict()


@pytest.fixture
def family(registry: Any, forest: Any, iris: Any) -> dict[str, Any]:
    features, _ = iris
    base = registry.register_baseline(
        forest,
        "classification",
        {"dataset": "iris"},
        input_example=features.head(3),
        metrics={"accuracy": 0.9},
    )
    first = registry.register_improved_model(
        forest, base["model_id"], {"accuracy": 0.02}, CONTRIBUTOR, metrics={"accuracy": 0.92}
    )
    second = registry.register_improved_model(
        forest, first["model_id"], {"accuracy": 0.01, "f1": 0.03}, OTHER
    )
    sibling = registry.register_improved_model(forest, base["model_id"], {"f1": 0.05}, CONTRIBUTOR)
    return {"base": base, "first": first, "second": second, "sibling": sibling}


def test_registrations_are_indexed_and_answer_as_mlflow_does(registry, family):
    ids = [r["model_id"] for r in family.values()]
    _agree(
        registry,
        uuids=[r["model_uuid"] for r in family.values()] + ["m-" + "0" * 32],
        lineages=[*ids, "hokusai_classification_improved", "hokusai_classification_baseline"],
        contributors=[CONTRIBUTOR.lower(), OTHER],
    )
    with registry.index.engine.connect() as conn:
        rows = conn.execute(sa.select(index_tables()[0])).all()
    assert sorted(f"{r.model_name}/{r.version}" for r in rows) == sorted(ids)
    assert {r.root_id for r in rows} == {family["base"]["model_id"]}


def test_the_library_answers_from_the_index(registry, family, monkeypatch):
    """Once built, reads do not touch MLflow's version search at all."""
    registry.get_model_lineage(family["second"]["model_id"])  # syncs if due

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("read went to MLflow")

    monkeypatch.setattr(registry.queries, "by_uuid", refuse)
    monkeypatch.setattr(registry.queries, "lineage", refuse)
    monkeypatch.setattr(registry.queries, "contributor_models", refuse)
    assert (
        registry.get_model_by_uuid(family["first"]["model_uuid"])["model_id"]
        == family["first"]["model_id"]
    )
    assert len(registry.get_model_lineage(family["second"]["model_id"])) == 4
    assert len(registry.get_contributor_models(CONTRIBUTOR)) == 2


def test_registration_by_uri_is_indexed_as_mlflow_reads_it(registry, forest, iris):
    import mlflow

    features, _ = iris
    mlflow.set_tracking_uri(registry.tracking_uri)
    try:
        experiment = registry.client.create_experiment(
            "ci", artifact_location=(registry.settings.home_path / "ci").as_uri()
        )
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.sklearn.log_model(
                forest,
                name="m",
                input_example=features.head(2),
                serialization_format="cloudpickle",
                pip_requirements=["scikit-learn"],
            )
    finally:
        mlflow.set_tracking_uri(None)
    plain = registry.register_from_uri(info.model_uri, "iris")
    tagged = registry.register_from_uri(
        info.model_uri,
        "iris",
        {"rows": 150},
        baseline_id=plain["model_id"],
        contributor=CONTRIBUTOR,
        delta_metrics={"accuracy": 0.1},
    )
    _agree(
        registry,
        uuids=[info.model_uuid],
        lineages=[plain["model_id"], tagged["model_id"]],
        contributors=[CONTRIBUTOR],
    )


def test_alias_moves_and_deletions_made_in_mlflow_show_within_the_bound(settings, family):
    registry = _open(settings.model_copy(update={"registry_index_max_staleness_seconds": 0}))
    client = registry.client
    base, first = family["base"], family["first"]
    client.set_registered_model_alias(base["model_name"], "champion", base["version"])
    assert registry.get_model_by_uuid(base["model_uuid"])["aliases"] == ["champion"]
    client.delete_registered_model_alias(base["model_name"], "champion")
    assert registry.get_model_by_uuid(base["model_uuid"])["aliases"] == []
    # A version deleted in MLflow is never returned as existing once the bound has passed.
    client.delete_model_version(family["sibling"]["model_name"], family["sibling"]["version"])
    assert registry.get_model_by_uuid(family["sibling"]["model_uuid"]) is None
    lineage = registry.get_model_lineage(first["model_id"])
    assert family["sibling"]["model_id"] not in [e["model_id"] for e in lineage]
    _agree(
        registry,
        uuids=[r["model_uuid"] for r in family.values()],
        lineages=[first["model_id"]],
        contributors=[CONTRIBUTOR],
    )


def test_stage_transitions_and_a_deleted_registered_model(settings, family):
    registry = _open(settings.model_copy(update={"registry_index_max_staleness_seconds": 0}))
    client = registry.client
    base = family["base"]
    with pytest.warns(FutureWarning):  # stages are deprecated, and still used
        client.transition_model_version_stage(base["model_name"], base["version"], "Production")
    assert registry.get_model_by_uuid(base["model_uuid"])["stage"] == "Production"
    client.delete_registered_model("hokusai_classification_improved")
    assert registry.get_contributor_models(CONTRIBUTOR) == []
    assert [e["model_id"] for e in registry.get_model_lineage(base["model_id"])] == [
        base["model_id"]
    ]
    _agree(registry, uuids=[base["model_uuid"]], lineages=[base["model_id"]], contributors=[])


def test_versions_registered_by_other_tools_are_added_by_the_sync(settings, family, forest):
    """A registry with the index off writes no rows (like another tool); the sync finds them."""
    off = _open(settings.model_copy(update={"registry_index": False}), announcer=None)
    foreign = off.register_improved_model(forest, family["base"]["model_id"], {"f1": 0.1}, OTHER)
    registry = _open(settings.model_copy(update={"registry_index_max_staleness_seconds": 0}))
    found = registry.get_model_by_uuid(foreign["model_uuid"])
    assert found is not None and found["model_id"] == foreign["model_id"]
    _agree(
        registry,
        uuids=[foreign["model_uuid"]],
        lineages=[foreign["model_id"]],
        contributors=[OTHER],
    )


def test_reindex_rebuilds_an_existing_registry_and_resumes(settings, family):
    registry = _open(settings)
    index = registry.index
    with index.engine.begin() as conn:
        for table in index_tables():
            conn.execute(sa.delete(table))
    fresh = _open(settings)
    assert not fresh.index.built()  # a registry with versions and an empty index: not built
    # Reads still answer, from MLflow.
    assert (
        fresh.get_model_by_uuid(family["first"]["model_uuid"])["model_id"]
        == family["first"]["model_id"]
    )
    drift = fresh.index.check()
    assert not drift.clean and len(drift.missing) == 4
    # Interrupted after two versions, then resumed.
    seen: list[int] = []

    def interrupt(_name: str, done: int, _total: int | None) -> None:
        seen.append(done)
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fresh.index.reindex(on_progress=interrupt)
    report = fresh.index.reindex()
    assert report.resumed_from is not None and report.built
    assert report.indexed < 4  # it did not redo what the first run had done
    _agree(
        fresh,
        uuids=[r["model_uuid"] for r in family.values()],
        lineages=[family["second"]["model_id"]],
        contributors=[CONTRIBUTOR, OTHER],
    )


def test_a_crash_between_the_mlflow_write_and_the_index_write_is_repaired(settings, forest):
    """The row and the event are written together after the commit point; when that write
    fails, the reconciler gives the version both."""
    from hokusai.webhooks import Webhooks

    hub = Webhooks(settings)

    class Crashing:
        def prepare(self) -> None: ...

        def announce_registration(self, result: Any, *, transaction: Any = None) -> None:
            raise ConnectionError("database went away")

        def announce_promotion(self, *_a: Any, **_k: Any) -> None: ...

    registry = _open(settings, announcer=Crashing())
    base = registry.register_baseline(forest, "classification", {})
    with registry.index.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(index_tables()[0])).scalar() == 0
    assert hub.reconcile(registry.queries, min_age_seconds=0) == [base["model_id"]]
    assert registry.index.by_uuid(base["model_uuid"]) == registry.queries.by_uuid(
        base["model_uuid"]
    )


_REGISTER = """
import json, sys
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from hokusai.services.model_registry import HokusaiModelRegistry
X, y = load_iris(return_X_y=True, as_frame=True)
model = LogisticRegression(max_iter=300).fit(X, y)
print(json.dumps(HokusaiModelRegistry().register_baseline(model, "classification", {})))
"""


def test_two_processes_registering_at_once_both_indexed(settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env.update(
        HOKUSAI_HOME=str(settings.home_path), HOKUSAI_DATABASE_URL=settings.resolved_database_url
    )
    _open(settings).index.built()  # the registry exists, empty, before both start
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _REGISTER],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r["version"] for r in results) == ["1", "2"]
    registry = _open(settings)
    _agree(
        registry,
        uuids=[r["model_uuid"] for r in results],
        lineages=[r["model_id"] for r in results],
        contributors=[],
    )


def test_a_failed_registration_is_never_indexed(settings, forest):
    def explode(_result: Any) -> None:
        raise RuntimeError("hook failed")

    registry = _open(settings, hooks=[explode])
    with pytest.raises(RegistrationError, match="rolled back"):
        registry.register_baseline(forest, "classification", {})
    assert registry.index.check().clean
    with registry.index.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(index_tables()[0])).scalar() == 0


def test_the_rescan_lists_versions_through_mlflow_when_it_cannot_read_its_tables(
    settings, family, monkeypatch
):
    """A tracking server's tables are out of reach: the rescan pages through MLflow's search
    instead, with the same outcome (here forced on the embedded store)."""
    monkeypatch.setattr(RegistryIndex, "_listing_from_tables", lambda _self, _name: None)
    registry = _open(settings.model_copy(update={"registry_index_max_staleness_seconds": 0}))
    client = registry.client
    sibling, base = family["sibling"], family["base"]
    client.delete_model_version(sibling["model_name"], sibling["version"])
    with pytest.warns(FutureWarning):
        client.transition_model_version_stage(base["model_name"], base["version"], "Staging")
    assert registry.get_model_by_uuid(sibling["model_uuid"]) is None
    assert registry.get_model_by_uuid(base["model_uuid"])["stage"] == "Staging"
    _agree(
        registry,
        uuids=[r["model_uuid"] for r in family.values()],
        lineages=[family["second"]["model_id"]],
        contributors=[CONTRIBUTOR],
    )
