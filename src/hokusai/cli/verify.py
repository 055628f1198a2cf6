"""``hokusai verify``: measure an improved model's gain over its baseline on a benchmark."""

from __future__ import annotations

from typing import Any

import typer

from hokusai.cli._common import JsonOption, console, print_json, quiet_stderr, registry


def verify(
    ctx: typer.Context,
    candidate_id: str = typer.Argument(
        ..., metavar="CANDIDATE_ID", help="The improved version, '{model_name}/{version}'."
    ),
    benchmark: str = typer.Option(..., "--benchmark", help="The benchmark's name."),
    threshold_bps: int | None = typer.Option(
        None,
        "--threshold-bps",
        help="Smallest gain that accepts, in basis points of the metric. Default: "
        "HOKUSAI_VERIFY_THRESHOLD_BPS (100).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap (same seed, same interval)."),
    as_json: bool = JsonOption,
    check: bool = typer.Option(
        False, "--check", help="Exit 1 when the improvement is not accepted (for CI)."
    ),
) -> None:
    """Score CANDIDATE_ID and its baseline on a benchmark, compare them on the same rows, and
    record the result (an MLflow run of hokusai-verifications and tags on the version). The
    same inputs again print the recorded result. Exit 0 once verified, accepted or not; with
    --check, exit 1 unless accepted."""
    reg = registry(ctx)
    with quiet_stderr(ctx):
        result = reg.verify_improvement(
            candidate_id, benchmark, threshold_bps=threshold_bps, seed=seed
        )
    if as_json:
        print_json(result)
    else:
        _summary(result)
    if check and not result["accepted"]:
        raise typer.Exit(1)


def _summary(result: Any) -> None:
    from rich.markup import escape

    bench = result["benchmark"]
    primary = result["primary"]
    lines = [
        f"Verification {result['verification_id']} of {result['candidate_id']} against "
        f"{result['baseline_id']}",
        f"benchmark   {bench['name']} ({result['n_rows']} rows, target {bench['target']})",
        _metric_line(primary["metric"], primary),
    ]
    for guard in result["guardrails"]:
        verdict = "passed" if guard["passed"] else "FAILED"
        lines.append(
            f"{_metric_line(guard['metric'], guard)}  guardrail ±{guard['tolerance']:g}: {verdict}"
        )
    claimed = result["claimed_delta"]
    claim = "none" if claimed is None else f"{claimed:+.4f} {primary['metric']}"
    lines.append(f"claim       {claim}: {result['claim_status'].replace('_', ' ')}")
    if result["accepted"]:
        decision = f"ACCEPTED (threshold {result['threshold_bps']} bps)"
    else:
        decision = (
            f"NOT ACCEPTED (threshold {result['threshold_bps']} bps): "
            f"{', '.join(result['reasons'])}"
        )
    lines.append(f"decision    {decision}")
    run = f"run         {result['mlflow_run_id']} (experiment hokusai-verifications)"
    if result["reused"]:
        run += ", recorded earlier: nothing new written"
    lines.append(run)
    for line in lines:
        console.print(escape(line), highlight=False, soft_wrap=True)


def _metric_line(name: str, comparison: Any) -> str:
    return (
        f"{name:<11} baseline {comparison['baseline_score']:.4f}  candidate "
        f"{comparison['candidate_score']:.4f}  delta {comparison['delta']:+.4f} "
        f"[{comparison['ci_low']:+.4f}, {comparison['ci_high']:+.4f}]  "
        f"{comparison['improvement_bps']:+d} bps"
    )
