"""What the console says about a version's gain, and the contributor leaderboard.

A version's gain is its verification when the registry verified it (the ``verification`` field,
a :class:`~hokusai.registry.results.VerificationSummary`), else what its contributor claimed
(``delta_metrics``), always labelled as such. Records are read with ``.get``: listings made
before verification existed simply have no ``verification``.

A gain is an *improvement*: positive when the metric moved in its better direction
(:data:`~hokusai.registry.benchmarks.METRIC_DIRECTIONS`; a metric not listed there is taken as
higher-is-better). A claimed log-loss delta of −0.01 is a +100 bps improvement, and the claimed
delta shown and ranked is the one that improved most in that sense.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from hokusai.registry.benchmarks import METRIC_DIRECTIONS

__all__ = [
    "ContributorStanding",
    "Gain",
    "gain_of",
    "higher_is_better",
    "improvement",
    "leaderboard",
    "timestamp_ms",
]


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (unknown metrics: yes)."""
    return METRIC_DIRECTIONS.get(metric, "higher") != "lower"


@dataclass(frozen=True)
class Gain:
    """One version's headline gain: its improvement in the metric's better direction, in the
    metric's units (``value``) and in basis points (``bps``), and the raw change of the metric
    (``change``: negative when a lower-is-better metric went down)."""

    metric: str
    value: float
    bps: int
    verified: bool
    accepted: bool | None = None
    """For a verified gain: whether the verification accepted it."""
    claim_status: str | None = None
    change: float | None = None
    """The metric's own change; None means the same as ``value`` (higher-is-better)."""

    @property
    def lower_is_better(self) -> bool:
        return not higher_is_better(self.metric)

    @property
    def label(self) -> str:
        """``accuracy +0.0120``; for a lower-is-better metric the metric's own change and
        whether it is better: ``log_loss -0.0120 (better)``."""
        if not self.lower_is_better:
            return f"{self.metric} {self.value:+.4f}"
        change = -self.value if self.change is None else self.change
        verdict = "better" if self.bps > 0 else "worse" if self.bps < 0 else "unchanged"
        return f"{self.metric} {change:+.4f} ({verdict})"

    @property
    def kind(self) -> str:
        """``verified``, ``rejected`` (verified, not accepted) or ``claimed``."""
        if not self.verified:
            return "claimed"
        return "verified" if self.accepted else "rejected"


def improvement(metric: str, delta: float) -> float:
    """A metric's change turned into an improvement (positive = better)."""
    return float(delta) if higher_is_better(metric) else -float(delta)


def gain_of(version: Mapping[str, Any]) -> Gain | None:
    """The verified gain of ``version`` if any, else its claimed delta that improves most in
    its metric's direction, else None (a baseline, or an improvement that claimed nothing)."""
    verification = version.get("verification")
    if isinstance(verification, Mapping) and "improvement_bps" in verification:
        bps = int(verification["improvement_bps"])
        metric = str(verification.get("metric", ""))
        delta_bps = verification.get("delta_bps")
        return Gain(
            metric=metric,
            value=bps / 10_000,
            bps=bps,
            verified=True,
            accepted=bool(verification.get("accepted")),
            claim_status=verification.get("claim_status"),
            change=int(delta_bps) / 10_000 if delta_bps is not None else None,
        )
    deltas = version.get("delta_metrics") or {}
    if version.get("is_baseline") or not deltas:
        return None
    metric, delta = max(sorted(deltas.items()), key=lambda item: improvement(*item))
    value = improvement(metric, delta)
    return Gain(
        metric=metric,
        value=value,
        bps=round(value * 10_000),
        verified=False,
        change=float(delta),
    )


@dataclass
class ContributorStanding:
    """A contributor's place on the leaderboard."""

    address: str
    versions: int = 0
    verified_bps: int = 0
    """Sum of the accepted verifications' improvements."""
    verified_versions: int = 0
    claimed_bps: int = 0
    """Sum of the unverified versions' claimed improvements (each version's best one, in its
    metric's better direction)."""
    first_ms: int | None = None
    last_ms: int | None = None
    model_types: set[str] = field(default_factory=set)

    @property
    def rank_key(self) -> tuple[int, int, int, str]:
        return (-self.verified_bps, -self.claimed_bps, -self.versions, self.address)


def leaderboard(versions: Iterable[Mapping[str, Any]]) -> list[ContributorStanding]:
    """Contributors ranked by verified improvement, then by claimed (unverified) improvement."""
    standings: dict[str, ContributorStanding] = {}
    for version in versions:
        address = version.get("contributor")
        if not address:
            continue
        standing = standings.setdefault(address, ContributorStanding(address=address))
        standing.versions += 1
        if version.get("model_type"):
            standing.model_types.add(str(version["model_type"]))
        moment = timestamp_ms(version)
        if moment is not None:
            standing.first_ms = (
                moment if standing.first_ms is None else min(standing.first_ms, moment)
            )
            standing.last_ms = moment if standing.last_ms is None else max(standing.last_ms, moment)
        gain = gain_of(version)
        if gain is None:
            continue
        if gain.verified:
            standing.verified_versions += 1
            if gain.accepted:
                standing.verified_bps += gain.bps
        else:
            standing.claimed_bps += gain.bps
    return sorted(standings.values(), key=lambda s: s.rank_key)


def timestamp_ms(version: Mapping[str, Any]) -> int | None:
    """When a version was registered, in ms since the epoch (``created_at`` or the ISO
    ``registration_timestamp``)."""
    created = version.get("created_at")
    if isinstance(created, int | float) and created > 0:
        return int(created)
    text = version.get("registration_timestamp")
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)
