"""``hokusai benchmarks add|list|show`` on a real embedded MLflow store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from typer.testing import CliRunner

from hokusai.cli.main import app

runner = CliRunner()


def _run(home: Path, *args: str) -> Any:
    result = runner.invoke(app, ["--home", str(home), "benchmarks", *args])
    assert result.exit_code == 0, result.output
    return result


def test_add_list_show(tmp_path: Path) -> None:
    home = tmp_path / "home"
    frame = pd.DataFrame({"x": [0.5, 1.5, 2.5, 3.5], "kind": list("abab"), "y": [0, 1, 0, 1]})
    csv = tmp_path / "rows.csv"
    frame.to_csv(csv, index=False)
    parquet = tmp_path / "rows.parquet"
    frame.iloc[::-1][["y", "kind", "x"]].to_parquet(parquet, index=False)

    add = ["--target", "y", "--metric", "rmse", "--guardrail", "mae:0.05", "--json"]
    added = json.loads(_run(home, "add", "reg-v1", "--data", str(csv), *add).stdout)
    assert added["direction"] == "lower"
    assert added["guardrails"] == {"mae": 0.05}
    assert added["num_rows"] == 4
    again = json.loads(_run(home, "add", "reg-v1", "--data", str(parquet), *add).stdout)
    assert again == added

    listed = json.loads(_run(home, "list", "--json").stdout)
    assert [b["content_hash"] for b in listed] == [added["content_hash"]]
    shown = json.loads(_run(home, "show", "reg-v1", "--json").stdout)
    assert shown == added
    table = _run(home, "show", "reg-v1").stdout
    assert "reg-v1" in table and added["content_hash"][:20] in table.replace("\n", "")
    assert "reg-v1" in _run(home, "list").stdout


def test_list_when_there_are_none(tmp_path: Path) -> None:
    assert "No benchmarks." in _run(tmp_path / "home", "list").stdout
    assert json.loads(_run(tmp_path / "home", "list", "--json").stdout) == []
