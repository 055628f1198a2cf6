"""The statistics behind a verified improvement: metrics, paired intervals, basis points.

Both models are scored on the *same rows*, so the comparison is paired: every bootstrap replicate
resamples row indices once and scores both models on that one resample, which keeps the
row-to-row correlation between the models (most rows are easy or hard for both) out of the
interval. An unpaired test treats the two score lists as independent and gives intervals several
times too wide for the same data.

How each metric's bootstrap is computed, all drawn from one ``numpy.random.default_rng(seed)`` so
the same inputs give the same floats:

* **Label metrics** (accuracy, balanced accuracy, F1) depend on the rows only through the counts
  of ``(target, baseline label, candidate label)`` triples. Resampling *n* rows with replacement
  gives those counts a multinomial distribution over the observed triples, so each replicate is
  one multinomial draw over a handful of categories, not *n* index draws: exact, and independent
  of the number of rows (1,000,000 rows × 2,000 replicates takes milliseconds).
* **Mean-of-row metrics** (MAE, RMSE, log loss) resample row indices in batches bounded to a few
  million indices, and average per-row losses of both models over the same indices. Past 2×10⁸
  index draws (100,000 rows × 2,000 replicates) they resample 10,000 random blocks of rows
  instead, which keeps the replicate mean's first three moments (see :func:`_mean_bootstrap`).
* **ROC AUC** uses DeLong's rank-based method for two correlated AUCs (one sort per model, no
  resampling; ``method="delong"``): a bootstrap would re-rank a million rows per replicate.
* **Custom metrics** (a plain callable) fall back to recomputing the callable on each resample,
  so their cost is ``n_boot`` times the callable's; pass a smaller ``n_boot`` for large data.

The interval is the bootstrap percentile interval (DeLong's is the normal one). Accuracy also gets
the exact McNemar test on the discordant rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import Enum
from types import MappingProxyType
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats
from sklearn import metrics as skm

from hokusai.errors import InvalidDatasetError, MetricMismatchError, ValidationError

__all__ = [
    "METRICS",
    "Direction",
    "Metric",
    "PairedResult",
    "Task",
    "accepted",
    "custom_metric",
    "get_metric",
    "mcnemar_exact",
    "paired_comparison",
    "to_bps",
]

Direction = Literal["higher", "lower"]
FloatArray = npt.NDArray[np.float64]
MetricFn = Callable[[np.ndarray, np.ndarray], float]

_MAX_BATCH_INDICES = 4_000_000  # indices drawn per bootstrap batch: bounds memory at ~32 MB
_EXACT_BOOTSTRAP_DRAWS = 200_000_000  # beyond this many index draws, resample row blocks
_BLOCKS = 10_000


class Task(str, Enum):
    """What a metric needs from the models' predictions (and so which benchmarks it fits)."""

    LABELS = "classification_labels"
    """Classification scored on predicted labels (accuracy, balanced accuracy, F1)."""
    SCORES = "classification_scores"
    """Binary classification scored on the positive class's probability or score."""
    REGRESSION = "regression"
    """A numeric target scored on numeric predictions."""


@dataclass(frozen=True)
class Metric:
    """A named metric: its function, the task it fits and which way is better.

    ``per_row`` and ``finish`` (metric = ``finish(mean(per_row(y, pred)))``) or ``from_confusion``
    (metric from a stack of confusion matrices) let the bootstrap run vectorised; a metric with
    neither is recomputed with ``fn`` on every resample.
    """

    name: str
    fn: MetricFn
    task: Task
    direction: Direction
    per_row: Callable[[np.ndarray, np.ndarray], FloatArray] | None = None
    finish: Callable[[FloatArray], FloatArray] | None = None
    from_confusion: Callable[[FloatArray], FloatArray] | None = None


@dataclass(frozen=True)
class PairedResult:
    """Baseline and candidate scored on the same rows; ``delta`` is candidate − baseline.

    ``ci_low``/``ci_high`` bound ``delta`` at confidence ``1 − alpha``; ``method`` names how
    (``"paired_bootstrap"`` or ``"delong"``); ``p_value`` is exact McNemar for accuracy, else
    ``None``; ``n`` is the number of rows.
    """

    metric: str
    baseline_score: float
    candidate_score: float
    delta: float
    ci_low: float
    ci_high: float
    method: str
    p_value: float | None
    n: int
    n_boot: int


# --- metric definitions -------------------------------------------------------------------


def _positive_class(y: np.ndarray) -> object:
    return np.unique(y)[-1]


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    labels = np.unique(np.concatenate([y, pred]))
    if labels.size <= 2:
        return float(skm.f1_score(y, pred, pos_label=labels[-1], zero_division=0.0))
    return float(skm.f1_score(y, pred, average="macro", zero_division=0.0))


def _accuracy_from_confusion(conf: FloatArray) -> FloatArray:
    total = conf.sum(axis=(1, 2))
    return np.asarray(np.trace(conf, axis1=1, axis2=2) / total, dtype=np.float64)


def _balanced_accuracy_from_confusion(conf: FloatArray) -> FloatArray:
    # Per-class recall averaged over the classes present in the (resampled) targets, as sklearn.
    support = conf.sum(axis=2)
    diag = np.diagonal(conf, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, diag / support, np.nan)
    return np.asarray(np.nanmean(recall, axis=1), dtype=np.float64)


def _f1_from_confusion(conf: FloatArray) -> FloatArray:
    # Classes are the sorted labels seen in targets or either model's predictions; two classes
    # score the last (positive) one, more average per-class F1 (macro), zero where undefined.
    diag = np.diagonal(conf, axis1=1, axis2=2)
    denom = conf.sum(axis=2) + conf.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(denom > 0, 2 * diag / denom, 0.0)
    if conf.shape[1] <= 2:
        return np.asarray(per_class[:, -1], dtype=np.float64)
    return np.asarray(per_class.mean(axis=1), dtype=np.float64)


def _log_loss_rows(y: np.ndarray, proba: np.ndarray) -> FloatArray:
    positive = (y == _positive_class(y)).astype(np.float64)
    eps = np.finfo(np.float64).eps
    p = np.clip(proba.astype(np.float64), eps, 1 - eps)
    return np.asarray(-(positive * np.log(p) + (1 - positive) * np.log1p(-p)), dtype=np.float64)


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(_log_loss_rows(y, proba)))


def _roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    return float(skm.roc_auc_score(y == _positive_class(y), scores))


def _abs_error(y: np.ndarray, pred: np.ndarray) -> FloatArray:
    return np.asarray(np.abs(y.astype(np.float64) - pred.astype(np.float64)), dtype=np.float64)


def _sq_error(y: np.ndarray, pred: np.ndarray) -> FloatArray:
    return np.asarray((y.astype(np.float64) - pred.astype(np.float64)) ** 2, dtype=np.float64)


def _identity(x: FloatArray) -> FloatArray:
    return x


def _sqrt(x: FloatArray) -> FloatArray:
    return np.asarray(np.sqrt(x), dtype=np.float64)


METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        "accuracy": Metric(
            "accuracy",
            lambda y, p: float(skm.accuracy_score(y, p)),
            Task.LABELS,
            "higher",
            from_confusion=_accuracy_from_confusion,
        ),
        "balanced_accuracy": Metric(
            "balanced_accuracy",
            lambda y, p: float(skm.balanced_accuracy_score(y, p)),
            Task.LABELS,
            "higher",
            from_confusion=_balanced_accuracy_from_confusion,
        ),
        "f1": Metric("f1", _f1, Task.LABELS, "higher", from_confusion=_f1_from_confusion),
        "roc_auc": Metric("roc_auc", _roc_auc, Task.SCORES, "higher"),
        "log_loss": Metric(
            "log_loss", _log_loss, Task.SCORES, "lower", per_row=_log_loss_rows, finish=_identity
        ),
        "rmse": Metric(
            "rmse",
            lambda y, p: float(np.sqrt(np.mean(_sq_error(y, p)))),
            Task.REGRESSION,
            "lower",
            per_row=_sq_error,
            finish=_sqrt,
        ),
        "mae": Metric(
            "mae",
            lambda y, p: float(np.mean(_abs_error(y, p))),
            Task.REGRESSION,
            "lower",
            per_row=_abs_error,
            finish=_identity,
        ),
    }
)
"""The built-in metrics by name."""


def custom_metric(
    name: str, fn: MetricFn, *, direction: Direction, task: Task = Task.REGRESSION
) -> Metric:
    """A metric from a plain callable ``fn(y_true, predictions) -> float``.

    Its bootstrap recomputes ``fn`` on every resample (the library cannot see inside it).
    """
    if direction not in ("higher", "lower"):
        raise MetricMismatchError(f"direction must be 'higher' or 'lower', not {direction!r}")
    if not callable(fn):
        raise MetricMismatchError(f"custom metric {name!r} is not callable")
    return Metric(name, fn, Task(task), direction)


def get_metric(metric: str | Metric) -> Metric:
    """The built-in metric of that name (or the :class:`Metric` itself)."""
    if isinstance(metric, Metric):
        return metric
    try:
        return METRICS[metric]
    except KeyError:
        known = ", ".join(METRICS)
        raise MetricMismatchError(f"unknown metric {metric!r}; known: {known}") from None


# --- input checks -------------------------------------------------------------------------


def _as_1d(name: str, values: object) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidDatasetError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _has_missing(array: np.ndarray) -> bool:
    if array.dtype.kind in "fc":
        return bool(np.isnan(array).any())
    if array.dtype.kind == "O":
        return any(v is None or (isinstance(v, float) and math.isnan(v)) for v in array)
    return False


def _check_inputs(
    metric: Metric, y: np.ndarray, baseline: np.ndarray, candidate: np.ndarray
) -> None:
    if not (y.shape[0] == baseline.shape[0] == candidate.shape[0]):
        raise InvalidDatasetError(
            f"lengths differ: {y.shape[0]} targets, {baseline.shape[0]} baseline and "
            f"{candidate.shape[0]} candidate predictions"
        )
    if y.shape[0] == 0:
        raise InvalidDatasetError("no rows to evaluate")
    if _has_missing(y):
        raise InvalidDatasetError(f"targets contain {_count_missing(y)} missing (NaN) values")
    for label, pred in (("baseline", baseline), ("candidate", candidate)):
        if _has_missing(pred):
            raise InvalidDatasetError(f"{label} predictions contain missing (NaN) values")
    if metric.task is Task.REGRESSION:
        _check_regression(metric, y, baseline, candidate)
    elif metric.task is Task.SCORES:
        _check_scores(metric, y, baseline, candidate)
    else:
        _check_labels(metric, y, baseline, candidate)


def _count_missing(array: np.ndarray) -> int:
    if array.dtype.kind in "fc":
        return int(np.isnan(array).sum())
    return sum(1 for v in array if v is None or (isinstance(v, float) and math.isnan(v)))


def _is_numeric(array: np.ndarray) -> bool:
    return array.dtype.kind in "biuf"


def _check_regression(metric: Metric, y: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    if not (_is_numeric(y) and _is_numeric(b) and _is_numeric(c)):
        raise MetricMismatchError(
            f"{metric.name} is a regression metric: targets and predictions must be numeric"
        )


def _check_scores(metric: Metric, y: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    classes = np.unique(y)
    if y.dtype.kind == "f" and not np.all(classes == np.round(classes)):
        raise MetricMismatchError(
            f"{metric.name} is a classification metric; the target is continuous (regression)"
        )
    if classes.size != 2:
        raise MetricMismatchError(
            f"{metric.name} needs a binary target with both classes present, "
            f"found {classes.size} class(es)"
        )
    for label, pred in (("baseline", b), ("candidate", c)):
        if not _is_numeric(pred) or pred.dtype.kind == "b":
            raise MetricMismatchError(
                f"{metric.name} needs the positive class's probability or score; "
                f"{label} predictions are {pred.dtype}"
            )
        if metric.name == "log_loss" and (pred.min() < 0 or pred.max() > 1):
            raise MetricMismatchError(f"log_loss needs probabilities in [0, 1]; {label} has not")


def _check_labels(metric: Metric, y: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise MetricMismatchError(
            f"{metric.name} is a classification metric; the target is continuous (regression)"
        )
    for label, pred in (("baseline", b), ("candidate", c)):
        if pred.dtype.kind == "f" and not np.all(pred == np.round(pred)):
            raise MetricMismatchError(
                f"{metric.name} needs predicted labels; {label} predictions are scores "
                "(threshold them, or use roc_auc or log_loss)"
            )


# --- the paired comparison ----------------------------------------------------------------


def paired_comparison(
    y_true: object,
    baseline_pred: object,
    candidate_pred: object,
    metric: str | Metric,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> PairedResult:
    """Score baseline and candidate on the same rows and bound the difference.

    Raises :class:`InvalidDatasetError` for unusable rows (lengths differ, no rows, NaN) and
    :class:`MetricMismatchError` for a metric that does not fit the target or predictions.
    """
    spec = get_metric(metric)
    if n_boot < 1:
        raise ValidationError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise ValidationError(f"alpha must be in (0, 1), got {alpha}")
    y = _as_1d("targets", y_true)
    base = _as_1d("baseline predictions", baseline_pred)
    cand = _as_1d("candidate predictions", candidate_pred)
    _check_inputs(spec, y, base, cand)

    base_score = float(spec.fn(y, base))
    cand_score = float(spec.fn(y, cand))
    delta = cand_score - base_score
    p_value = mcnemar_exact(y == base, y == cand) if spec.name == "accuracy" else None

    if spec.name == "roc_auc":
        low, high = _delong_interval(y == _positive_class(y), base, cand, alpha)
        method = "delong"
    else:
        rng = np.random.default_rng(seed)
        deltas = _bootstrap_deltas(spec, y, base, cand, n_boot, rng)
        low, high = (float(q) for q in np.nanquantile(deltas, [alpha / 2, 1 - alpha / 2]))
        method = "paired_bootstrap"
    return PairedResult(
        metric=spec.name,
        baseline_score=base_score,
        candidate_score=cand_score,
        delta=delta,
        ci_low=low,
        ci_high=high,
        method=method,
        p_value=p_value,
        n=int(y.shape[0]),
        n_boot=0 if method == "delong" else n_boot,
    )


def _bootstrap_deltas(
    spec: Metric,
    y: np.ndarray,
    base: np.ndarray,
    cand: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
) -> FloatArray:
    if spec.from_confusion is not None:
        return _confusion_bootstrap(spec.from_confusion, y, base, cand, n_boot, rng)
    if spec.per_row is not None:
        finish = spec.finish or _identity
        return _mean_bootstrap(spec.per_row(y, base), spec.per_row(y, cand), finish, n_boot, rng)
    return _callable_bootstrap(spec.fn, y, base, cand, n_boot, rng)


def _confusion_bootstrap(
    from_confusion: Callable[[FloatArray], FloatArray],
    y: np.ndarray,
    base: np.ndarray,
    cand: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Multinomial draws over the observed (target, baseline, candidate) label triples."""
    classes, codes = np.unique(np.concatenate([y, base, cand]), return_inverse=True)
    k = classes.size
    n = y.shape[0]
    yi, bi, ci = codes[:n], codes[n : 2 * n], codes[2 * n :]
    triples, counts = np.unique((yi * k + bi) * k + ci, return_counts=True)
    draws = rng.multinomial(n, counts / n, size=n_boot).astype(np.float64)
    t_y, t_b, t_c = triples // (k * k), (triples // k) % k, triples % k
    conf_b = np.zeros((n_boot, k, k))
    conf_c = np.zeros((n_boot, k, k))
    for j in range(triples.size):
        conf_b[:, t_y[j], t_b[j]] += draws[:, j]
        conf_c[:, t_y[j], t_c[j]] += draws[:, j]
    return from_confusion(conf_c) - from_confusion(conf_b)


def _mean_bootstrap(
    loss_b: FloatArray,
    loss_c: FloatArray,
    finish: Callable[[FloatArray], FloatArray],
    n_boot: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Both models' per-row losses averaged over the same resampled rows, replicate by replicate.

    Up to ``_EXACT_BOOTSTRAP_DRAWS`` index draws in all, row indices are resampled in batches.
    Beyond it (a million rows × 2,000 replicates is two billion draws), the rows are shuffled
    once into ``_BLOCKS`` blocks and the blocks' loss sums are resampled instead: the blocks are
    i.i.d. random subsets, so the replicate mean has the row bootstrap's mean, variance and
    skewness (γ/√n either way), at ``n_boot × _BLOCKS`` work instead of ``n_boot × n``.
    """
    n = loss_b.shape[0]
    if n * n_boot <= _EXACT_BOOTSTRAP_DRAWS or n < 10 * _BLOCKS:
        mean_b, mean_c = _row_resample_means(loss_b, loss_c, n_boot, rng)
    else:
        mean_b, mean_c = _block_resample_means(loss_b, loss_c, n_boot, rng)
    return finish(mean_c) - finish(mean_b)


def _row_resample_means(
    loss_b: FloatArray, loss_c: FloatArray, n_boot: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    n = loss_b.shape[0]
    per_batch = max(1, _MAX_BATCH_INDICES // n)
    mean_b = np.empty(n_boot)
    mean_c = np.empty(n_boot)
    for start in range(0, n_boot, per_batch):
        stop = min(n_boot, start + per_batch)
        idx = rng.integers(0, n, size=(stop - start, n))
        mean_b[start:stop] = np.take(loss_b, idx).mean(axis=1)
        mean_c[start:stop] = np.take(loss_c, idx).mean(axis=1)
    return mean_b, mean_c


def _block_resample_means(
    loss_b: FloatArray, loss_c: FloatArray, n_boot: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    n = loss_b.shape[0]
    order = rng.permutation(n)
    starts = (np.arange(_BLOCKS) * n) // _BLOCKS
    sums = np.stack(
        [np.add.reduceat(loss_b[order], starts), np.add.reduceat(loss_c[order], starts)], axis=1
    )
    sizes = np.diff(np.append(starts, n)).astype(np.float64)
    counts = rng.multinomial(_BLOCKS, np.full(_BLOCKS, 1 / _BLOCKS), size=n_boot)
    weights = counts.astype(np.float64)
    totals = weights @ sums
    rows = weights @ sizes
    return totals[:, 0] / rows, totals[:, 1] / rows


def _callable_bootstrap(
    fn: MetricFn,
    y: np.ndarray,
    base: np.ndarray,
    cand: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
) -> FloatArray:
    n = y.shape[0]
    deltas = np.empty(n_boot)
    for r in range(n_boot):
        idx = rng.integers(0, n, size=n)
        try:
            deltas[r] = float(fn(y[idx], cand[idx])) - float(fn(y[idx], base[idx]))
        except ValueError:  # a resample the metric cannot score (one class only): left out
            deltas[r] = np.nan
    return deltas


def _delong_interval(
    positive: np.ndarray, base: np.ndarray, cand: np.ndarray, alpha: float
) -> tuple[float, float]:
    """DeLong, DeLong & Clarke-Pearson (1988): the covariance of two AUCs on the same rows from
    per-row placement values (midranks), then a normal interval for their difference."""
    pos = np.flatnonzero(positive)
    neg = np.flatnonzero(~positive)
    m, k = pos.size, neg.size
    v10 = np.empty((2, m))
    v01 = np.empty((2, k))
    for row, scores in enumerate((base.astype(np.float64), cand.astype(np.float64))):
        rank_all = stats.rankdata(scores)
        rank_pos = stats.rankdata(scores[pos])
        rank_neg = stats.rankdata(scores[neg])
        v10[row] = (rank_all[pos] - rank_pos) / k
        v01[row] = 1.0 - (rank_all[neg] - rank_neg) / m
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / k
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(v10[1].mean() - v10[0].mean())
    half = float(stats.norm.ppf(1 - alpha / 2)) * math.sqrt(max(var, 0.0))
    return diff - half, diff + half


def mcnemar_exact(baseline_correct: object, candidate_correct: object) -> float:
    """Two-sided exact McNemar p-value: a binomial test on the discordant rows.

    Same as ``statsmodels.stats.contingency_tables.mcnemar(table, exact=True).pvalue``.
    """
    b_ok = np.asarray(baseline_correct, dtype=bool)
    c_ok = np.asarray(candidate_correct, dtype=bool)
    only_b = int(np.count_nonzero(b_ok & ~c_ok))
    only_c = int(np.count_nonzero(~b_ok & c_ok))
    if only_b + only_c == 0:
        return 1.0
    return float(min(1.0, 2 * stats.binom.cdf(min(only_b, only_c), only_b + only_c, 0.5)))


# --- basis points and the decision --------------------------------------------------------


def to_bps(x: float) -> int:
    """``x`` in integer basis points (0.0123 → 123), rounded half to even on its decimal text.

    The shortest decimal text of the float is what is rounded, so 0.00125 gives 12 (a tie, to
    even) rather than whatever the binary approximation of 0.00125 leans to.
    """
    if not math.isfinite(x):
        raise ValidationError(f"cannot express {x!r} in basis points")
    scaled = Decimal(repr(float(x))) * 10_000
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def accepted(result: PairedResult, *, threshold_bps: int = 100, direction: Direction) -> bool:
    """Whether the candidate clears the threshold: gain ≥ ``threshold_bps`` *and* the whole
    interval on the better side of zero (above it when higher is better, below when lower is)."""
    if direction == "higher":
        return to_bps(result.delta) >= threshold_bps and result.ci_low > 0
    if direction == "lower":
        return to_bps(-result.delta) >= threshold_bps and result.ci_high < 0
    raise MetricMismatchError(f"direction must be 'higher' or 'lower', not {direction!r}")
