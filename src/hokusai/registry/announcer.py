"""How the registry tells the world about registrations and promotions, without knowing who
listens.

The registry owns this interface; the webhook layer implements it
(:class:`hokusai.webhooks.Webhooks`) and whoever assembles the application hands it in
(:func:`hokusai.open_registry`, the REST service, the CLI). The registry never imports the
webhook layer.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from hokusai.registry.index import IndexTransaction
from hokusai.registry.results import ModelVersionInfo, RegistrationResult, VerificationResult

__all__ = ["Announcer"]


@runtime_checkable
class Announcer(Protocol):
    """Records the events of registrations, alias moves and verifications (durably, before they
    return)."""

    def prepare(self) -> None:
        """Make ready before a registration writes anything: a configuration error raised here
        (a webhook URL without a secret, an unreachable database) costs no rollback."""

    def announce_registration(
        self, result: RegistrationResult, *, transaction: IndexTransaction | None = None
    ) -> str | None:
        """Record ``model_registered`` for a registration; the event id, or None if the version
        already had one. Runs right after the registration's commit point: the registration has
        succeeded, so an error here is logged, not raised, and the reconciler records the event
        later. With ``transaction`` (the project database's, writing the version's index row),
        an announcer writing to that same database records the event in it, so the row and
        the event are committed together or not at all."""

    def announce_promotion(
        self, version: ModelVersionInfo, *, alias: str, previous_version: str | None
    ) -> str | None:
        """Record ``model_promoted`` (``alias`` now points at ``version``); the event id."""

    def announce_verification(self, result: VerificationResult) -> list[str]:
        """Record ``improvement.verified`` for a verification and, when it was accepted,
        ``deltaone.accepted``; the ids of the events recorded. Each is recorded at most once per
        idempotency key: announcing the same verification again records nothing (an empty
        list). Runs after the evaluation run and the candidate's tags are complete; an error
        here is logged, not raised."""
