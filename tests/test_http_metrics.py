"""The multiprocess metrics directory: what the CLI parent makes, keeps and removes, and what a
scrape keeps of a worker that died without saying so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hokusai.http.metrics import MULTIPROC_DIR_VARIABLE, worker_metrics_directory


@pytest.fixture(autouse=True)
def _no_directory_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_DIR_VARIABLE, raising=False)


def test_one_worker_keeps_its_metrics_in_process():
    with worker_metrics_directory(1) as directory:
        assert directory is None
        assert MULTIPROC_DIR_VARIABLE not in os.environ


def test_several_workers_get_a_fresh_directory_removed_at_exit():
    with worker_metrics_directory(2) as directory:
        assert directory is not None and directory.is_dir()
        assert list(directory.iterdir()) == []
        assert os.environ[MULTIPROC_DIR_VARIABLE] == str(directory)  # the workers inherit it
        (directory / "counter_123.db").write_bytes(b"")
    assert not directory.exists()
    assert MULTIPROC_DIR_VARIABLE not in os.environ


def test_a_given_directory_is_made_and_loses_only_the_last_runs_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    given = tmp_path / "metrics" / "api"
    monkeypatch.setenv(MULTIPROC_DIR_VARIABLE, str(given))
    with worker_metrics_directory(1) as directory:
        assert directory == given and given.is_dir()
    stale = ["counter_10.db", "histogram_10.db", "gauge_livemax_10.db", "gauge_all_11.db"]
    for name in [*stale, "notes.txt", "counter.db.bak"]:
        (given / name).write_bytes(b"")
    with worker_metrics_directory(4) as directory:
        assert sorted(p.name for p in given.iterdir()) == ["counter.db.bak", "notes.txt"]
    assert given.is_dir()  # the operator's directory stays
    assert os.environ[MULTIPROC_DIR_VARIABLE] == str(given)


WORKER = """
from prometheus_client import Counter, Gauge
Counter("served", "requests").inc(3)
Gauge("serving", "model", ["name"], multiprocess_mode="livemax").labels("{name}").set(1)
{exit}
"""


def _python(code: str, directory: Path) -> str:
    env = {**os.environ, MULTIPROC_DIR_VARIABLE: str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 or done.returncode == -9, done.stderr
    return done.stdout


def test_a_scrape_drops_the_live_gauges_of_dead_workers_and_keeps_their_counts(tmp_path: Path):
    # Two workers that are gone: one exited cleanly, one was killed (SIGKILL) and could not.
    clean = "from hokusai.http.metrics import forget_this_process; forget_this_process()"
    _python(WORKER.format(name="cleanly-exited", exit=clean), tmp_path)
    killed = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    _python(WORKER.format(name="killed", exit=killed), tmp_path)
    scrape = "from prometheus_client import CollectorRegistry, generate_latest\n"
    scrape += "from hokusai.http.metrics import scrape_registry\n"
    scrape += WORKER.format(
        name="alive",
        exit="print(generate_latest(scrape_registry(own=CollectorRegistry())).decode())",
    )
    text = _python(scrape, tmp_path)
    assert "served_total 9.0" in text  # every worker's requests, the dead ones' too
    assert 'serving{name="alive"} 1.0' in text
    assert "cleanly-exited" not in text
    assert "killed" not in text


SWAP = """
from types import SimpleNamespace
from hokusai.serving.metrics import ServingMetrics

def serving(version):
    source = SimpleNamespace(kind="registry", name="fraud", version=version, run_id="r" + version)
    return SimpleNamespace(source=source)

manager = SimpleNamespace(current=serving("1"), swaps=0, load_failures=0, on_refresh=print)
metrics = ServingMetrics(manager)
manager.current, manager.swaps = serving("2"), 1
print(metrics.render().decode())
"""


def test_a_swapped_out_model_reads_0_across_workers_not_1(tmp_path: Path):
    """In multiprocess mode a label set cannot be removed from a worker's file: the model a
    worker stopped serving is set to 0 first, or it would read 1 for ever."""
    text = _python(SWAP, tmp_path)
    info = sorted(line for line in text.splitlines() if line.startswith("hokusai_serving_model"))
    assert len(info) == 2, text
    assert 'version="1"} 0.0' in info[0]
    assert 'version="2"} 1.0' in info[1]
    assert "hokusai_serving_swaps 1.0" in text
