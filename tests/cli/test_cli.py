"""The ``hokusai`` command line, against a real store under a temp HOKUSAI_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hokusai.cli.main import app
from tests.conftest import CONTRIBUTOR
from tests.legacy_code import legacy_register_baseline

runner = CliRunner()


@pytest.fixture
def registered(registry, forest) -> dict[str, Any]:
    base = registry.register_baseline(forest, "classification", {"team": "a"})
    improved = registry.register_improved_model(
        forest, base["model_id"], {"acc": 0.02}, CONTRIBUTOR
    )
    return {"base": base, "improved": improved}


def _json(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_models_get_json_and_table(registered):
    uuid = registered["improved"]["model_uuid"]
    found = _json(["models", "get", uuid, "--json"])
    assert found["model_id"] == registered["improved"]["model_id"]
    assert found["contributor"] == CONTRIBUTOR
    table = runner.invoke(app, ["models", "get", uuid])
    assert table.exit_code == 0
    assert registered["improved"]["model_id"] in table.stdout


def test_models_lineage(registered):
    entries = _json(["models", "lineage", registered["improved"]["model_id"], "--json"])
    assert [e["model_id"] for e in entries] == [
        registered["base"]["model_id"],
        registered["improved"]["model_id"],
    ]
    table = runner.invoke(app, ["models", "lineage", registered["base"]["model_id"]])
    assert table.exit_code == 0 and "acc=+0.0200" in table.stdout


def test_contributors_models(registered):
    found = _json(["contributors", "models", CONTRIBUTOR.lower(), "--json"])
    assert [m["model_id"] for m in found] == [registered["improved"]["model_id"]]
    table = runner.invoke(app, ["contributors", "models", CONTRIBUTOR])
    assert table.exit_code == 0 and "1 version(s)" in table.stdout


def test_global_home_option_points_at_another_store(registered, tmp_path):
    empty = _json(
        ["--home", str(tmp_path / "elsewhere"), "contributors", "models", CONTRIBUTOR, "--json"]
    )
    assert empty == []


def test_registry_backfill_dry_run_then_for_real(registry, settings):
    legacy = legacy_register_baseline(registry.tracking_uri, settings.home_path, "ranking", {})
    report = _json(["registry", "backfill", "--dry-run", "--json"])
    assert report["dry_run"] is True and legacy["model_id"] in report["updated"]
    assert (
        "hokusai.model_uuid"
        not in registry.client.get_model_version(*legacy["model_id"].split("/")).tags
    )
    result = runner.invoke(app, ["registry", "backfill"])
    assert result.exit_code == 0, result.output
    assert "tagged 2" in result.stdout
    assert (
        "hokusai.model_uuid"
        in registry.client.get_model_version(*legacy["model_id"].split("/")).tags
    )


def test_quickstart_registers_a_baseline_and_an_improvement(settings):
    result = runner.invoke(app, ["quickstart"])
    assert result.exit_code == 0, result.output
    assert "hokusai_quickstart_cancer_improved/1" in result.stdout
    # 80 columns: the lineage is one block per version, nothing cut mid-word
    assert "  • hokusai_quickstart_cancer_improved/1\n" in result.stdout, result.stdout
    assert "  hokusai models get hokusai_quickstart_cancer_improved/1\n" in result.stdout
    from hokusai.services.model_registry import HokusaiModelRegistry

    registry = HokusaiModelRegistry(settings=settings)
    lineage = registry.get_model_lineage("hokusai_quickstart_cancer_improved/1")
    assert len(lineage) == 2 and lineage[1]["contributor"] == CONTRIBUTOR


def _hokusai(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env["HOKUSAI_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "hokusai.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["contributors", "models", "0xnope"], "invalid_contributor"),
        (["models", "get", "m-00000000000000000000000000000000"], "model_not_found"),
        (["models", "lineage", "a/b/c"], "invalid_model_id"),
    ],
)
def test_errors_are_one_line_on_stderr_with_non_zero_exit(tmp_path, args, code):
    result = _hokusai(*args, home=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error[{code}]: ")


def test_version_and_help_do_not_need_mlflow(tmp_path):
    result = _hokusai("--version", home=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("hokusai ")
    assert _hokusai("--help", home=tmp_path).returncode == 0


def test_models_get_by_model_id_and_a_value_that_is_neither(registered):
    improved = registered["improved"]
    by_id = _json(["models", "get", improved["model_id"], "--json"])
    by_uuid = _json(["models", "get", improved["model_uuid"], "--json"])
    assert by_id == by_uuid and by_id["model_id"] == improved["model_id"]
    neither = runner.invoke(app, ["models", "get", "hokusai_classification_improved"])
    assert neither.exit_code != 0 and neither.exception.code == "invalid_model_id"
    assert "m-" in str(neither.exception) and "{model_name}/{version}" in str(neither.exception)


def test_models_promote_moves_an_alias_and_demote_removes_it(registry, registered):
    base, improved = registered["base"]["model_id"], registered["improved"]["model_id"]
    name = improved.split("/")[0]
    moved = runner.invoke(app, ["models", "promote", improved, "--alias", "champion"])
    assert moved.exit_code == 0, moved.output
    assert moved.stdout.strip() == f"{name}@champion: unset → version 1"
    assert registry.get_model(improved)["aliases"] == ["champion"]
    change = _json(["models", "promote", improved, "--alias", "champion", "--json"])
    assert change["previous_version"] == "1" and change["event_id"].startswith("evt_")
    assert registry.webhooks.outbox.event(change["event_id"])["event_type"] == "model_promoted"
    removed = runner.invoke(app, ["models", "demote", name, "--alias", "champion"])
    assert removed.exit_code == 0, removed.output
    assert "removed" in removed.stdout and registry.get_model(improved)["aliases"] == []
    # Not a version of that model: refused, nothing moved.
    other = runner.invoke(app, ["models", "promote", f"{name}/7", "--alias", "champion"])
    assert other.exit_code != 0 and other.exception.code == "model_not_found"
    assert registry.get_model(base)["aliases"] == []


def test_lineage_and_contributor_tables_fit_80_columns_and_widen_when_they_can(
    registered, monkeypatch
):
    from hokusai.cli._common import console

    improved = registered["improved"]
    for args in (
        ["models", "lineage", improved["model_id"]],
        ["contributors", "models", CONTRIBUTOR],
    ):
        narrow = runner.invoke(app, args)
        assert narrow.exit_code == 0, narrow.output
        lines = narrow.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, narrow.stdout
        assert any(line.split()[-1] == improved["model_uuid"] for line in lines if line.split())
        assert any(improved["model_id"] in line for line in lines)  # never cut
    monkeypatch.setattr(console, "width", 200)
    wide = runner.invoke(app, ["models", "lineage", improved["model_id"]])
    assert "┃ model" in wide.stdout and "acc=+0.0200" in wide.stdout


def test_webhooks_stats_rounds_latencies(settings):
    from hokusai.webhooks import Webhooks
    from hokusai.webhooks.tables import attempts, deliveries, endpoints, events

    hooks = Webhooks(settings.model_copy(update={"webhook_background": False}))
    now = 1_700_000_000.0
    with hooks.outbox.engine.begin() as conn:  # one delivery that took 3.76… ms
        conn.execute(
            endpoints.insert().values(
                id="ep_1",
                url="https://example.com/hook",
                secret="s",
                events="*",
                enabled=True,
                source="cli",
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            events.insert().values(
                id="evt_1", event_type="ping", dedupe_key="evt_1", payload="{}", created_at=now
            )
        )
        conn.execute(
            deliveries.insert().values(
                id="dlv_1",
                event_id="evt_1",
                endpoint_id="ep_1",
                state="delivered",
                attempts=1,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            attempts.insert().values(
                delivery_id="dlv_1",
                attempted_at=now,
                status_code=200,
                latency_ms=3.7614329999087204,
                worker="w",
            )
        )
    found = _json(["webhooks", "stats", "--json"])
    assert found["latency_ms_p50"] == 3.8 and found["latency_ms_p99"] == 3.8
    text = runner.invoke(app, ["webhooks", "stats"]).stdout
    assert "latency_ms_p50=3.8 " in text and len(text.splitlines()) == 1


def test_help_imports_neither_mlflow_nor_the_settings():
    heavy = ("mlflow", "sqlalchemy", "pandas", "pydantic_settings", "hokusai.config", "httpx")
    code = f"import sys, hokusai.cli.main; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registry_check_reports_drift_and_reindex_repairs_it(registered, registry):
    """An emptied index: `check` names what is missing and exits 1; `reindex` rebuilds it;
    `check` then agrees and exits 0."""
    import sqlalchemy as sa

    from hokusai.registry.index import index_tables

    assert runner.invoke(app, ["registry", "check"]).exit_code == 0
    with registry.index.engine.begin() as conn:
        for table in index_tables():
            conn.execute(sa.delete(table))
    drift = runner.invoke(app, ["registry", "check", "--json"])
    assert drift.exit_code == 1
    report = json.loads(drift.stdout)
    assert report["built"] is False
    assert sorted(report["missing"]) == sorted(
        [registered["base"]["model_id"], registered["improved"]["model_id"]]
    )
    rebuilt = _json(["registry", "reindex", "--json"])
    assert rebuilt["indexed"] == 2 and rebuilt["built"] is True
    clean = runner.invoke(app, ["registry", "check"])
    assert clean.exit_code == 0 and "agrees with MLflow" in clean.stdout


def test_read_commands_answer_from_the_index_without_mlflow_when_nothing_changed(
    registered, registry
):
    """After a sync, the index answers the read commands on its own (the probe finds MLflow
    unchanged); a change made in MLflow directly makes them ask MLflow again, and see it."""
    from hokusai.registry.index import open_fast_index, probe_registry

    improved = registered["improved"]
    registry.index.sync()
    assert probe_registry(registry.settings.resolved_registry_uri) is not None
    fast = open_fast_index(registry.settings)
    assert fast is not None
    assert fast.by_uuid(improved["model_uuid"]) == registry.queries.by_uuid(improved["model_uuid"])
    via_cli = _json(["models", "get", improved["model_uuid"], "--json"])
    assert via_cli == registry.queries.by_uuid(improved["model_uuid"])
    assert _json(["models", "get", improved["model_id"], "--json"]) == via_cli
    assert _json(["models", "lineage", improved["model_id"], "--json"]) == (
        registry.queries.lineage(improved["model_id"])
    )
    # An alias moved in MLflow, not through Hokusai: the shortcut is off until a sync.
    registry.client.set_registered_model_alias(improved["model_name"], "champion", "1")
    assert open_fast_index(registry.settings) is None
    assert _json(["models", "get", improved["model_uuid"], "--json"])["aliases"] == ["champion"]
    assert open_fast_index(registry.settings) is not None  # that read synced
