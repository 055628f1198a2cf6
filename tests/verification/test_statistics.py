"""The statistics core against scikit-learn, statsmodels and simulation with a known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm
from statsmodels.stats.contingency_tables import mcnemar

from hokusai.errors import InvalidDatasetError, MetricMismatchError, ValidationError
from hokusai.verification import (
    METRICS,
    PairedResult,
    Task,
    accepted,
    custom_metric,
    mcnemar_exact,
    paired_comparison,
    to_bps,
)


def _labels(n: int, seed: int, classes: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    base = np.where(rng.random(n) < 0.75, y, rng.integers(0, classes, n))
    cand = np.where(rng.random(n) < 0.8, y, rng.integers(0, classes, n))
    return y, base, cand


def _scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    base = 1 / (1 + np.exp(-(1.0 * (2 * y - 1) + rng.normal(size=n))))
    cand = 1 / (1 + np.exp(-(1.3 * (2 * y - 1) + rng.normal(size=n))))
    return y, base, cand


def _regression(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return y, y + rng.normal(size=n), y + 0.9 * rng.normal(size=n)


REFERENCE = {
    "accuracy": skm.accuracy_score,
    "balanced_accuracy": skm.balanced_accuracy_score,
    "f1": skm.f1_score,
    "roc_auc": skm.roc_auc_score,
    "log_loss": skm.log_loss,
    "rmse": skm.root_mean_squared_error,
    "mae": skm.mean_absolute_error,
}
DATA = {Task.LABELS: _labels, Task.SCORES: _scores, Task.REGRESSION: _regression}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_scores_equal_scikit_learn(name: str):
    metric = METRICS[name]
    y, base, cand = DATA[metric.task](3000, seed=7)
    result = paired_comparison(y, base, cand, name, n_boot=200)
    assert result.baseline_score == pytest.approx(REFERENCE[name](y, base), rel=1e-12)
    assert result.candidate_score == pytest.approx(REFERENCE[name](y, cand), rel=1e-12)
    assert result.delta == pytest.approx(result.candidate_score - result.baseline_score)
    assert result.ci_low < result.delta < result.ci_high
    assert result.n == 3000


def test_multiclass_label_metrics_equal_scikit_learn():
    y, base, cand = _labels(3000, seed=3, classes=4)
    f1 = paired_comparison(y, base, cand, "f1", n_boot=200)
    assert f1.candidate_score == pytest.approx(skm.f1_score(y, cand, average="macro"))
    bal = paired_comparison(y, base, cand, "balanced_accuracy", n_boot=200)
    assert bal.baseline_score == pytest.approx(skm.balanced_accuracy_score(y, base))


@pytest.mark.parametrize("seed", range(6))
def test_mcnemar_equals_statsmodels_exact(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    b_ok = rng.random(n) < rng.uniform(0.3, 0.9)
    c_ok = np.where(rng.random(n) < 0.7, b_ok, rng.random(n) < 0.5)
    table = [
        [np.sum(b_ok & c_ok), np.sum(b_ok & ~c_ok)],
        [np.sum(~b_ok & c_ok), np.sum(~b_ok & ~c_ok)],
    ]
    expected = mcnemar(table, exact=True).pvalue
    assert mcnemar_exact(b_ok, c_ok) == pytest.approx(expected, rel=1e-12)


def test_accuracy_carries_the_mcnemar_p_value_and_others_none():
    y, base, cand = _labels(500, seed=1)
    result = paired_comparison(y, base, cand, "accuracy", n_boot=100)
    assert result.p_value == pytest.approx(mcnemar_exact(y == base, y == cand))
    assert paired_comparison(y, base, cand, "f1", n_boot=100).p_value is None


def test_mcnemar_without_discordant_rows_is_one():
    assert mcnemar_exact([True, False], [True, False]) == 1.0


@pytest.mark.parametrize("name", ["accuracy", "f1", "log_loss", "mae", "rmse"])
def test_same_inputs_same_floats_and_the_seed_matters(name: str):
    y, base, cand = DATA[METRICS[name].task](1000, seed=2)
    first = paired_comparison(y, base, cand, name, n_boot=300, seed=11)
    again = paired_comparison(y, base, cand, name, n_boot=300, seed=11)
    other = paired_comparison(y, base, cand, name, n_boot=300, seed=12)
    assert first == again
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)


def test_roc_auc_delong_interval_agrees_with_a_plain_bootstrap():
    y, base, cand = _scores(2000, seed=5)
    delong = paired_comparison(y, base, cand, "roc_auc")
    assert delong.method == "delong"
    boot = paired_comparison(
        y,
        base,
        cand,
        custom_metric("auc", skm.roc_auc_score, direction="higher", task=Task.SCORES),
        n_boot=400,
    )
    assert boot.method == "paired_bootstrap"
    assert delong.ci_high - delong.ci_low == pytest.approx(boot.ci_high - boot.ci_low, rel=0.2)


def test_block_bootstrap_for_large_inputs_matches_the_row_bootstrap():
    # 200,000 rows × 2,000 replicates is past the row-resampling budget (blocks); × 1,000 is not.
    y, base, cand = _regression(200_000, seed=9)
    blocks = paired_comparison(y, base, cand, "mae", n_boot=2000)
    rows = paired_comparison(y, base, cand, "mae", n_boot=1000)
    assert blocks.ci_high - blocks.ci_low == pytest.approx(rows.ci_high - rows.ci_low, rel=0.1)
    assert blocks.ci_low == pytest.approx(rows.ci_low, abs=0.1 * (rows.ci_high - rows.ci_low))


def test_custom_metric_recomputed_per_resample():
    y, base, cand = _regression(500, seed=4)
    maxerr = custom_metric("max_error", skm.max_error, direction="lower")
    result = paired_comparison(y, base, cand, maxerr, n_boot=200)
    assert result.baseline_score == skm.max_error(y, base)
    assert result.ci_low <= result.ci_high
    with pytest.raises(MetricMismatchError):
        custom_metric("x", skm.max_error, direction="sideways")  # type: ignore[arg-type]


def _paired_accuracy_trial(rng: np.random.Generator, n: int, true_delta: float):
    # Row kinds: both right, baseline only, candidate only, both wrong.
    p = np.array([0.70, 0.06, 0.06 + true_delta, 0.18 - true_delta])
    kind = rng.choice(4, size=n, p=p)
    y = rng.integers(0, 2, n)
    base = np.where((kind == 0) | (kind == 1), y, 1 - y)
    cand = np.where((kind == 0) | (kind == 2), y, 1 - y)
    return y, base, cand


def test_interval_covers_a_known_true_delta_93_to_97_percent_of_400_trials():
    rng = np.random.default_rng(2024)
    covered = 0
    for trial in range(400):
        y, base, cand = _paired_accuracy_trial(rng, 2000, true_delta=0.02)
        r = paired_comparison(y, base, cand, "accuracy", n_boot=500, seed=trial)
        covered += r.ci_low <= 0.02 <= r.ci_high
    assert 0.93 <= covered / 400 <= 0.97, covered


def test_mae_interval_covers_a_known_true_delta_93_to_97_percent_of_400_trials():
    # |N(0, σ)| has mean σ·√(2/π): candidate σ 0.9 against baseline 1.0.
    true_delta = (0.9 - 1.0) * math.sqrt(2 / math.pi)
    rng = np.random.default_rng(77)
    covered = 0
    for trial in range(400):
        y = rng.normal(size=2000)
        base = y + rng.normal(size=2000)
        cand = y + 0.9 * rng.normal(size=2000)
        r = paired_comparison(y, base, cand, "mae", n_boot=500, seed=trial)
        covered += r.ci_low <= true_delta <= r.ci_high
    assert 0.93 <= covered / 400 <= 0.97, covered


def test_a_zero_delta_candidate_is_accepted_in_at_most_5_percent_of_400_trials():
    rng = np.random.default_rng(99)
    hits = 0
    lenient = 0
    for trial in range(400):
        y, base, cand = _paired_accuracy_trial(rng, 2000, true_delta=0.0)
        r = paired_comparison(y, base, cand, "accuracy", n_boot=500, seed=trial)
        hits += accepted(r, threshold_bps=100, direction="higher")
        lenient += accepted(r, threshold_bps=0, direction="higher")
    assert hits / 400 <= 0.05
    # The interval alone (no threshold) is what keeps false acceptances near α/2.
    assert lenient / 400 <= 0.05, lenient


@pytest.mark.parametrize(
    ("x", "bps"),
    [(0.0123, 123), (-0.0123, -123), (0.00125, 12), (0.00135, 14), (0.0, 0), (1.0, 10_000)],
)
def test_to_bps_rounds_half_to_even(x: float, bps: int):
    assert to_bps(x) == bps


@pytest.mark.parametrize("x", [math.nan, math.inf])
def test_to_bps_refuses_non_finite(x: float):
    with pytest.raises(ValidationError):
        to_bps(x)


def _result(delta: float, low: float, high: float) -> PairedResult:
    return PairedResult("m", 0.5, 0.5 + delta, delta, low, high, "paired_bootstrap", None, 100, 10)


def test_accepted_needs_the_threshold_and_the_interval_clear_of_zero():
    assert accepted(_result(0.0100, 0.001, 0.02), direction="higher")
    assert not accepted(_result(0.0099, 0.001, 0.02), direction="higher")
    assert not accepted(_result(0.02, -0.001, 0.04), direction="higher")
    assert accepted(_result(0.004, 0.001, 0.01), threshold_bps=40, direction="higher")
    # Lower is better: the candidate must reduce the metric and the interval sit below zero.
    assert accepted(_result(-0.02, -0.03, -0.01), direction="lower")
    assert not accepted(_result(-0.02, -0.03, 0.001), direction="lower")
    assert not accepted(_result(0.02, 0.01, 0.03), direction="lower")


def test_mismatched_lengths_are_invalid_data():
    with pytest.raises(InvalidDatasetError, match="lengths differ"):
        paired_comparison([0, 1, 1], [0, 1], [0, 1, 1], "accuracy")


def test_no_rows_are_invalid_data():
    with pytest.raises(InvalidDatasetError):
        paired_comparison([], [], [], "mae")


@pytest.mark.parametrize(
    "y", [np.array([0.0, np.nan, 1.0]), np.array(["a", None, "b"], dtype=object)]
)
def test_nan_targets_are_invalid_data(y: np.ndarray):
    with pytest.raises(InvalidDatasetError, match="missing"):
        paired_comparison(y, y[::-1], y, "accuracy")


def test_nan_predictions_are_invalid_data():
    with pytest.raises(InvalidDatasetError, match="candidate"):
        paired_comparison([1.0, 2.0], [1.0, 2.0], [1.0, np.nan], "mae")


@pytest.mark.parametrize(
    ("metric", "y", "pred"),
    [
        ("roc_auc", [0.3, 1.7, 2.2, 0.1], [0.1, 0.9, 0.8, 0.2]),  # continuous target
        ("log_loss", [0.5, 1.5, 2.5], [0.1, 0.9, 0.8]),
        ("roc_auc", [0, 1, 2, 1], [0.1, 0.9, 0.8, 0.2]),  # three classes
        ("accuracy", [0, 1, 1, 0], [0.2, 0.7, 0.9, 0.4]),  # probabilities, not labels
        ("rmse", ["a", "b"], ["a", "a"]),  # labels on a regression metric
        ("log_loss", [0, 1, 1, 0], [-0.2, 1.7, 0.9, 0.4]),  # not probabilities
        ("accuracy", [0.3, 1.7, 2.2], [0, 2, 2]),  # continuous target
        ("no_such_metric", [0, 1], [0, 1]),
    ],
)
def test_a_metric_that_does_not_fit_is_a_metric_mismatch(metric: str, y: list, pred: list):
    with pytest.raises(MetricMismatchError):
        paired_comparison(y, pred, pred, metric, n_boot=10)


def test_errors_are_validation_errors_with_codes():
    assert issubclass(InvalidDatasetError, ValidationError)
    assert InvalidDatasetError.code == "invalid_dataset"
    assert MetricMismatchError.code == "metric_mismatch"
