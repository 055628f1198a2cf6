"""What the console says about a version's gain, and the contributor leaderboard.

A version's gain is its verification when the registry verified it (the ``verification`` field,
a :class:`~hokusai.registry.results.VerificationSummary`), else what its contributor claimed
(``delta_metrics``), always labelled as such. Records are read with ``.get``: listings made
before verification existed simply have no ``verification``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "ContributorStanding",
    "Gain",
    "gain_of",
    "leaderboard",
    "timestamp_ms",
]


@dataclass(frozen=True)
class Gain:
    """One version's headline gain: in its metric's units and in basis points."""

    metric: str
    value: float
    bps: int
    verified: bool
    accepted: bool | None = None
    """For a verified gain: whether the verification accepted it."""
    claim_status: str | None = None

    @property
    def label(self) -> str:
        """``accuracy +0.0120`` — the sign always shown."""
        return f"{self.metric} {self.value:+.4f}"

    @property
    def kind(self) -> str:
        """``verified``, ``rejected`` (verified, not accepted) or ``claimed``."""
        if not self.verified:
            return "claimed"
        return "verified" if self.accepted else "rejected"


def gain_of(version: Mapping[str, Any]) -> Gain | None:
    """The verified gain of ``version`` if any, else its largest claimed delta, else None
    (a baseline, or an improvement that claimed nothing)."""
    verification = version.get("verification")
    if isinstance(verification, Mapping) and "improvement_bps" in verification:
        bps = int(verification["improvement_bps"])
        return Gain(
            metric=str(verification.get("metric", "")),
            value=bps / 10_000,
            bps=bps,
            verified=True,
            accepted=bool(verification.get("accepted")),
            claim_status=verification.get("claim_status"),
        )
    deltas = version.get("delta_metrics") or {}
    if version.get("is_baseline") or not deltas:
        return None
    metric, value = max(sorted(deltas.items()), key=lambda item: item[1])
    return Gain(metric=metric, value=float(value), bps=round(float(value) * 10_000), verified=False)


@dataclass
class ContributorStanding:
    """A contributor's place on the leaderboard."""

    address: str
    versions: int = 0
    verified_bps: int = 0
    """Sum of the accepted verifications' improvements."""
    verified_versions: int = 0
    claimed_bps: int = 0
    """Sum of the unverified versions' largest claimed deltas."""
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
