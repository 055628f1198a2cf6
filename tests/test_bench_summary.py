"""bench/results/summary.md is what bench/summary.py makes of the committed results, and every
results file is in a shape the overview knows: the one-page overview cannot drift."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
RESULTS = BENCH / "results"


@pytest.fixture(scope="module")
def summary() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("summary")
    finally:
        sys.path.remove(str(BENCH))


def test_the_committed_overview_is_the_one_the_results_make(summary):
    committed = (RESULTS / summary.SUMMARY_NAME).read_text(encoding="utf-8")
    assert committed == summary.render(RESULTS), "rerun: python bench/summary.py"


@pytest.mark.parametrize("name", sorted(p.stem for p in RESULTS.glob("*.json")))
def test_every_results_file_gives_its_headline_rows(summary, name):
    extract = summary.SOURCES[name][1]  # a results file of no known script fails here too
    rows = extract(json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8")))
    assert rows
    assert all(row.embedded != "—" or row.stack != "—" for row in rows)


def test_a_results_file_in_an_unknown_shape_is_a_row_saying_so(summary, tmp_path):
    (tmp_path / "lookup.json").write_text(json.dumps({"goals": {}}), encoding="utf-8")
    page = summary.render(tmp_path)
    assert "| uuid lookup | (results in a shape this page does not know: KeyError" in page
    assert "Not run yet: `bench/registration.py`" in page
