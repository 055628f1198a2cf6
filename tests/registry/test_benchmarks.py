"""Benchmarks on a real MLflow store: content hash invariance, idempotency, conflicts, every bad
input refused with nothing recorded, and the MLflow dataset input MLflow shows on the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hokusai.config import Settings
from hokusai.errors import (
    BenchmarkConflictError,
    BenchmarkNotFoundError,
    InvalidBenchmarkError,
    InvalidDatasetError,
)
from hokusai.registry.benchmarks import BENCHMARK_EXPERIMENT, BenchmarkStore, content_hash


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 27, 62, 38],
            "income": [1200.5, 3400.0, 980.25, 5100.0, 2200.75],
            "city": ["Kyoto", "Osaka", "Tokyo", "Nara", "Kobe"],
            "label": [0, 1, 0, 1, 1],
        }
    )


@pytest.fixture
def store(settings: Settings) -> BenchmarkStore:
    return BenchmarkStore(settings)


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "bench.csv"
    _frame().to_csv(path, index=False)
    return path


def _runs(store: BenchmarkStore) -> list[Any]:
    experiment = store._client.get_experiment_by_name(BENCHMARK_EXPERIMENT)
    if experiment is None:
        return []
    return list(store._client.search_runs([experiment.experiment_id], run_view_type=3))


# ---- the content hash -------------------------------------------------------------------------


def test_the_hash_ignores_file_format_row_order_and_column_order(tmp_path: Path, csv: Path):
    from hokusai.registry.benchmarks import read_frame

    shuffled = _frame().sample(frac=1.0, random_state=7)[["label", "city", "income", "age"]]
    parquet = tmp_path / "bench.parquet"
    shuffled.to_parquet(parquet, index=False)
    shuffled_csv = tmp_path / "shuffled.csv"
    shuffled.to_csv(shuffled_csv, index=False)
    hashes = {content_hash(read_frame(p)) for p in (csv, parquet, shuffled_csv)}
    assert len(hashes) == 1
    (digest,) = hashes
    assert digest.startswith("0x") and len(digest) == 66


def test_the_hash_changes_with_the_content(csv: Path, tmp_path: Path):
    from hokusai.registry.benchmarks import read_frame

    changed = _frame()
    changed.loc[2, "income"] = 981.25
    other = tmp_path / "other.csv"
    changed.to_csv(other, index=False)
    renamed = _frame().rename(columns={"city": "town"})
    assert content_hash(read_frame(csv)) != content_hash(read_frame(other))
    assert content_hash(read_frame(csv)) != content_hash(renamed)
    doubled = pd.concat([_frame(), _frame().iloc[:1]])
    assert content_hash(doubled) != content_hash(_frame())  # duplicate rows count


# ---- add, get, list ---------------------------------------------------------------------------


def test_add_records_the_definition_and_get_and_list_return_it(store: BenchmarkStore, csv: Path):
    added = store.add("churn-v1", csv, "label", "f1", guardrails=["accuracy:0.01", "roc_auc:0"])
    assert added.direction == "higher"
    assert added.guardrails == {"accuracy": 0.01, "roc_auc": 0.0}
    assert added.num_rows == 5
    assert added.columns == ["age", "income", "city", "label"]
    assert added.content_hash == content_hash(_frame())
    assert store.get("churn-v1") == added
    lower = store.add("churn-loss", csv, "label", "log_loss")
    assert lower.direction == "lower"
    assert [b.name for b in store.list()] == ["churn-loss", "churn-v1"]
    assert json.loads(json.dumps(added.to_dict()))["content_hash"] == added.content_hash


def test_the_rows_are_in_the_artifact_store(store: BenchmarkStore, csv: Path):
    import mlflow.artifacts

    added = store.add("churn-v1", csv, "label", "accuracy")
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=added.artifact_uri, tracking_uri=store.tracking_uri
    )
    assert content_hash(pd.read_parquet(local)) == added.content_hash


def test_the_run_shows_an_mlflow_dataset_input(store: BenchmarkStore, csv: Path):
    added = store.add("churn-v1", csv, "label", "accuracy")
    run = store._client.get_run(added.run_id)
    (dataset_input,) = run.inputs.dataset_inputs
    dataset = dataset_input.dataset
    assert dataset.name == "churn-v1"
    assert dataset.digest == added.dataset_digest and dataset.digest
    assert json.loads(dataset.profile)["num_rows"] == 5
    schema = json.loads(dataset.schema)["mlflow_colspec"]
    assert [c["name"] for c in schema] == ["age", "income", "city", "label"]
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "benchmark"
    assert run.data.params == {"target": "label", "metric": "accuracy", "direction": "higher"}


def test_adding_the_same_content_again_is_idempotent(
    store: BenchmarkStore, csv: Path, tmp_path: Path
):
    first = store.add("churn-v1", csv, "label", "accuracy", direction="higher")
    parquet = tmp_path / "same.parquet"
    _frame().iloc[::-1].to_parquet(parquet, index=False)
    again = store.add("churn-v1", parquet, "label", "accuracy")
    assert again == first
    assert len(_runs(store)) == 1


def test_a_name_never_changes_content_or_definition(
    store: BenchmarkStore, csv: Path, tmp_path: Path
):
    first = store.add("churn-v1", csv, "label", "accuracy")
    other = tmp_path / "other.csv"
    _frame().iloc[:4].to_csv(other, index=False)
    with pytest.raises(BenchmarkConflictError, match="other content"):
        store.add("churn-v1", other, "label", "accuracy")
    with pytest.raises(BenchmarkConflictError, match="other settings"):
        store.add("churn-v1", csv, "label", "accuracy", guardrails=["f1:0.1"])
    with pytest.raises(BenchmarkConflictError):
        store.add("churn-v1", csv, "label", "accuracy", direction="lower")
    assert store.get("churn-v1") == first
    assert len(_runs(store)) == 1


def test_an_unknown_name_is_not_found(store: BenchmarkStore):
    with pytest.raises(BenchmarkNotFoundError):
        store.get("nope")
    assert store.list() == []


# ---- bad input: a typed error, nothing recorded -----------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BAD: list[tuple[str, Any, type[Exception], str]] = [
    ("missing file", lambda t, c: (t / "nope.csv", "label", "accuracy"), InvalidDatasetError,
     "does not exist"),
    ("json file", lambda t, c: (_write(t, "d.json", "{}"), "label", "accuracy"),
     InvalidDatasetError, "not a .csv or .parquet"),
    ("a folder", lambda t, c: ((t / "dir.csv").mkdir() or t / "dir.csv", "label", "accuracy"),
     InvalidDatasetError, "not a file"),
    ("bad parquet", lambda t, c: (_write(t, "d.parquet", "not parquet"), "label", "accuracy"),
     InvalidDatasetError, "cannot be read"),
    ("empty file", lambda t, c: (_write(t, "e.csv", ""), "label", "accuracy"),
     InvalidDatasetError, "no rows"),
    ("header only", lambda t, c: (_write(t, "h.csv", "a,label\n"), "label", "accuracy"),
     InvalidDatasetError, "no rows"),
    ("no target", lambda t, c: (c, "churned", "accuracy"), InvalidDatasetError, "churned"),
    ("nan target", lambda t, c: (_write(t, "n.csv", "a,label\n1,0\n2,\n"), "label", "accuracy"),
     InvalidDatasetError, "1 empty or NaN"),
    ("blank target", lambda t, c: (_write(t, "b.csv", "a,label\n1,x\n2,\" \"\n"), "label", "f1"),
     InvalidDatasetError, "empty"),
    ("unknown metric", lambda t, c: (c, "label", "precision"), InvalidBenchmarkError, "precision"),
]  # fmt: skip


@pytest.mark.parametrize(("_case", "make", "error", "match"), BAD, ids=[b[0] for b in BAD])
def test_bad_data_or_metric_is_refused(
    store: BenchmarkStore, csv: Path, tmp_path: Path, _case: str, make: Any, error: Any, match: str
):
    data, target, metric = make(tmp_path, csv)
    with pytest.raises(error, match=match):
        store.add("bench", data, target, metric)
    assert _runs(store) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"direction": "up"}, "Direction"),
        ({"guardrails": ["accuracy"]}, "METRIC:TOLERANCE"),
        ({"guardrails": ["accuracy:"]}, "METRIC:TOLERANCE"),
        ({"guardrails": ["accuracy:abc"]}, "not a number"),
        ({"guardrails": ["accuracy:-0.1"]}, "≥ 0"),
        ({"guardrails": ["accuracy:nan"]}, "≥ 0"),
        ({"guardrails": ["precision:0.1"]}, "Unknown metric"),
        ({"guardrails": ["f1:0.1", "f1:0.2"]}, "twice"),
        ({"name": "bad name"}, "Benchmark name"),
        ({"name": ""}, "Benchmark name"),
    ],
)
def test_a_bad_definition_is_refused(
    store: BenchmarkStore, csv: Path, kwargs: dict[str, Any], match: str
):
    name = kwargs.pop("name", "bench")
    with pytest.raises(InvalidBenchmarkError, match=match):
        store.add(name, csv, "label", "accuracy", **kwargs)
    assert _runs(store) == []


def test_a_failure_while_recording_leaves_no_benchmark(
    store: BenchmarkStore, csv: Path, tmp_path: Path
):
    """The artifact root is a file, so logging the rows fails after the run was created: the
    run is deleted and the name stays free."""
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    settings = store.settings.model_copy(update={"artifact_location": blocked.as_uri()})
    failing = BenchmarkStore(settings)
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the kind is checked below
        failing.add("churn-v1", csv, "label", "accuracy")
    assert getattr(raised.value, "code", None) == "backend_error"
    assert failing.list() == []
    assert all(r.info.lifecycle_stage == "deleted" for r in _runs(failing))


class _RacingStore(BenchmarkStore):
    """A store whose first look-up misses, as when another process adds the same name between
    this one's check and its write."""

    missed = False

    def _find(self, name: str) -> Any:
        if not self.missed:
            self.missed = True
            return None
        return super()._find(name)


def test_a_concurrent_add_of_the_same_name_keeps_the_first(
    store: BenchmarkStore, csv: Path, tmp_path: Path
):
    first = store.add("churn-v1", csv, "label", "accuracy")
    same = _RacingStore(store.settings).add("churn-v1", csv, "label", "accuracy")
    assert same == first
    other = tmp_path / "other.csv"
    _frame().iloc[:3].to_csv(other, index=False)
    with pytest.raises(BenchmarkConflictError, match="other content"):
        _RacingStore(store.settings).add("churn-v1", other, "label", "accuracy")
    assert store.list() == [first]
    live = [r for r in _runs(store) if r.info.lifecycle_stage == "active"]
    assert [r.info.run_id for r in live] == [first.run_id]
