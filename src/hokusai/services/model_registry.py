"""The assembled registry: the library with the webhook layer wired in.

``from hokusai.services.model_registry import HokusaiModelRegistry`` (or ``from hokusai import
HokusaiModelRegistry``) is the documented entry point. With no arguments it announces every
registration and alias move through the webhook layer of the project database under
``HOKUSAI_HOME`` (opened on the first registration, not at construction). The bare library,
which knows nothing of webhooks, is :class:`hokusai.registry.ModelRegistry`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Final

from hokusai.config import Settings, get_settings
from hokusai.registry import Announcer, ModelRegistry, RegistrationHook
from hokusai.registry.index import IndexTransaction
from hokusai.registry.queries import RegistryQueries
from hokusai.registry.results import ModelVersionInfo, RegistrationResult, VerificationResult
from hokusai.webhooks import Webhooks

__all__ = ["HokusaiModelRegistry", "open_registry"]


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = _Default()


class _WebhooksOnDemand:
    """The webhook layer of ``settings``, opened when the first event is about to be written
    (so building a registry to read never touches the project database)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._webhooks: Webhooks | None = None
        self.queries: RegistryQueries | None = None

    @property
    def webhooks(self) -> Webhooks:
        if self._webhooks is None:
            self._webhooks = Webhooks(self._settings)
            if self.queries is not None:
                self._webhooks.attach_registry(self.queries)
        return self._webhooks

    def prepare(self) -> None:
        self.webhooks.prepare()

    def announce_registration(
        self, result: RegistrationResult, *, transaction: IndexTransaction | None = None
    ) -> str | None:
        return self.webhooks.announce_registration(result, transaction=transaction)

    def announce_promotion(
        self, version: ModelVersionInfo, *, alias: str, previous_version: str | None
    ) -> str | None:
        return self.webhooks.announce_promotion(
            version, alias=alias, previous_version=previous_version
        )

    def announce_verification(self, result: VerificationResult) -> list[str]:
        return self.webhooks.announce_verification(result)


class HokusaiModelRegistry(ModelRegistry):
    """:class:`~hokusai.registry.ModelRegistry` announcing through the webhook layer.

    Args:
        announcer: Default: the webhook layer of ``settings``' project database. Pass a
            :class:`~hokusai.webhooks.Webhooks` to share one, any other
            :class:`~hokusai.registry.Announcer`, or ``None`` to announce nothing.

    The other arguments are :class:`~hokusai.registry.ModelRegistry`'s.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        registry_uri: str | None = None,
        settings: Settings | None = None,
        hooks: Sequence[RegistrationHook] = (),
        announcer: Announcer | _Default | None = DEFAULT,
        client: Any = None,
        webhooks: Webhooks | None = None,
        announce: bool | None = None,
    ) -> None:
        settings = settings or get_settings()
        if webhooks is not None or announce is not None:
            # The 0.2 spellings of the same choice, kept working.
            warnings.warn(
                "webhooks= and announce= are deprecated: pass announcer= (a Webhooks, or None).",
                DeprecationWarning,
                stacklevel=2,
            )
            if announce is False:
                announcer = None
            elif webhooks is not None:
                announcer = webhooks
        if isinstance(announcer, _Default):
            announcer = _WebhooksOnDemand(settings)
        super().__init__(
            tracking_uri,
            registry_uri=registry_uri,
            settings=settings,
            hooks=hooks,
            announcer=announcer,
            client=client,
        )
        if isinstance(announcer, _WebhooksOnDemand):
            announcer.queries = self.queries
        elif isinstance(announcer, Webhooks):
            # A shared layer: its background sender reconciles while it runs (and its owner's
            # workers do); no extra pass from every registry built on it.
            announcer.attach_registry(self.queries, reconcile_now=False)

    @property
    def webhooks(self) -> Webhooks:
        """The webhook layer this registry announces through (opened on first use)."""
        announcer = self.announcer
        if isinstance(announcer, _WebhooksOnDemand):
            return announcer.webhooks
        if isinstance(announcer, Webhooks):
            return announcer
        raise TypeError("This registry does not announce through the webhook layer.")

    def reconcile_webhook_events(
        self, *, limit: int = 500, min_age_seconds: float | None = None
    ) -> list[str]:
        """One bounded reconciler pass (at most ``limit`` versions read, resuming where the last
        pass stopped): records the ``model_registered`` event of every completely registered
        version that has none (see :mod:`hokusai.webhooks.reconciler`); returns their model
        ids. ``min_age_seconds`` defaults to ``HOKUSAI_WEBHOOK_RECONCILE_MIN_AGE_SECONDS``."""
        return self.webhooks.reconcile(self.queries, limit=limit, min_age_seconds=min_age_seconds)


def open_registry(
    settings: Settings | None = None, *, hooks: Sequence[RegistrationHook] = ()
) -> HokusaiModelRegistry:
    """The registry of ``settings`` (default: the environment) with webhooks wired in: the one
    place an application is assembled."""
    return HokusaiModelRegistry(settings=settings, hooks=hooks)
