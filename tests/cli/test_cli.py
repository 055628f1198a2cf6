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
