"""``hokusai verify`` on a real embedded MLflow store: the summary, --json, --check, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hokusai.cli.main import app, main
from hokusai.config import get_settings
from tests.verification.conftest import make_family, verification_runs

runner = CliRunner()


def test_verify_prints_a_summary_then_the_recorded_result(tmp_path: Path) -> None:
    family = make_family(get_settings(), tmp_path)
    candidate = family.candidate["model_id"]
    shown = runner.invoke(app, ["verify", candidate, "--benchmark", family.benchmark])
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    (run,) = verification_runs(family.registry)
    assert f"of {candidate} against {family.baseline['model_id']}" in text
    assert "benchmark   verifydemo-v1 (2000 rows, target label)" in text
    assert "accuracy    baseline 0.7" in text
    assert "guardrail ±0.01: passed" in text
    assert "claim       +0.0500 accuracy: reproduced" in text
    assert "decision    ACCEPTED (threshold 100 bps)" in text
    assert f"run         {run.info.run_id} (experiment hokusai-verifications)" in text

    again = runner.invoke(app, ["verify", candidate, "--benchmark", family.benchmark, "--json"])
    assert again.exit_code == 0, again.output
    result = json.loads(again.stdout)
    assert result["reused"] is True and result["mlflow_run_id"] == run.info.run_id
    assert result["accepted"] is True and result["candidate_id"] == candidate
    assert len(verification_runs(family.registry)) == 1


def test_check_fails_a_result_that_is_not_accepted(tmp_path: Path) -> None:
    family = make_family(get_settings(), tmp_path)
    args = ["verify", family.candidate["model_id"], "--benchmark", family.benchmark]
    refused = runner.invoke(app, [*args, "--threshold-bps", "5000", "--check"])
    assert refused.exit_code == 1, refused.output
    assert "NOT ACCEPTED (threshold 5000 bps): below_threshold" in refused.stdout
    # without --check, a completed verification exits 0 whatever it decided
    completed = runner.invoke(app, [*args, "--threshold-bps", "5000", "--json"])
    assert completed.exit_code == 0 and json.loads(completed.stdout)["accepted"] is False
    accepted = runner.invoke(app, [*args, "--check", "--seed", "1"])
    assert accepted.exit_code == 0, accepted.output


def _main(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str]:
    """``hokusai ARGS`` through ``main()``, which turns errors into one line and a status."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(args)
    return int(exited.value.code or 0), capsys.readouterr().err


def test_errors_are_one_line_and_record_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.setenv(name, os.environ.get(name, "2"))  # main() sets them; given back
    family = make_family(get_settings(), tmp_path)
    status, err = _main(
        capsys, ["verify", family.baseline["model_id"], "--benchmark", family.benchmark]
    )
    assert status == 1 and err.startswith("error[not_an_improvement]: ")
    assert len(err.strip().splitlines()) <= 2
    status, err = _main(capsys, ["verify", family.candidate["model_id"], "--benchmark", "nope"])
    assert status == 1 and err.startswith("error[benchmark_not_found]: ")
    assert verification_runs(family.registry) == []
