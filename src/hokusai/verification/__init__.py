"""Verified improvements: the registry measures a candidate's gain over its baseline itself.

:mod:`hokusai.verification.statistics` is the pure statistics core (metrics, paired bootstrap,
exact McNemar, basis points, the acceptance rule); it imports only numpy, scipy, scikit-learn and
:mod:`hokusai.errors`, so it can be checked against reference implementations on its own.
"""

from hokusai.verification.statistics import (
    METRICS,
    Direction,
    Metric,
    PairedResult,
    Task,
    accepted,
    custom_metric,
    get_metric,
    mcnemar_exact,
    paired_comparison,
    to_bps,
)

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
