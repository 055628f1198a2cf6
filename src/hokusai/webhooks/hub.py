"""``Webhooks``: the webhook layer over one project database, built from settings.

It owns the endpoint store, the outbox, the retry policy and the in-process background sender,
and is the registry's :class:`~hokusai.registry.Announcer`: every registration, alias move and
verification becomes an outbox event in the same step.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
from datetime import datetime, timezone
from typing import Any

import httpx

from hokusai.config import Settings, get_settings
from hokusai.db import open_database, write_transaction
from hokusai.errors import ConflictError, ValidationError
from hokusai.registry.index import IndexTransaction
from hokusai.registry.queries import RegistryQueries
from hokusai.registry.results import ModelVersionInfo, RegistrationResult, VerificationResult
from hokusai.webhooks.dispatcher import BackgroundSender, Dispatcher
from hokusai.webhooks.endpoints import EVENT_TYPES, Endpoint, EndpointStore, validate_events
from hokusai.webhooks.outbox import Outbox
from hokusai.webhooks.payloads import (
    DELTAONE_ACCEPTED,
    IMPROVEMENT_VERIFIED,
    MODEL_PROMOTED,
    MODEL_REGISTERED,
    PING,
    deltaone_accepted_payload,
    improvement_verified_payload,
    model_promoted_payload,
    model_registered_payload,
    new_event_id,
    ping_payload,
)
from hokusai.webhooks.reconciler import reconcile, registered_key_of
from hokusai.webhooks.retry import Attempt, RetryPolicy
from hokusai.webhooks.sender import send
from hokusai.webhooks.signing import generate_secret
from hokusai.webhooks.urlpolicy import DestinationPolicy

__all__ = ["Webhooks"]

logger = logging.getLogger(__name__)

_SENDERS: dict[str, BackgroundSender] = {}
_SENDERS_LOCK = threading.Lock()


class Webhooks:
    """The webhook layer of one project database."""

    def __init__(
        self, settings: Settings | None = None, *, destinations: DestinationPolicy | None = None
    ) -> None:
        self.settings = settings or get_settings()
        self.engine = open_database(
            self.settings.resolved_database_url, migrate=self.settings.database_auto_migrate
        )
        self.policy = RetryPolicy(self.settings.retry_schedule)
        self.outbox = Outbox(self.engine, policy=self.policy)
        # Where webhooks may go: checked when an endpoint is added and on every connection.
        self.destinations = destinations or DestinationPolicy.from_settings(self.settings)
        self.endpoints = EndpointStore(self.engine, policy=self.destinations)
        self._queries: RegistryQueries | None = None
        if self.settings.webhook_url:
            secret = self.settings.webhook_secret
            if secret is None or not secret.get_secret_value():
                raise ValidationError(
                    "HOKUSAI_WEBHOOK_URL is set but HOKUSAI_WEBHOOK_SECRET is not: "
                    "unsigned webhooks are never sent."
                )
            self.endpoints.sync_env_endpoint(self.settings.webhook_url, secret.get_secret_value())

    # ---- the registry's announcer ---------------------------------------------------------

    def prepare(self) -> None:
        """Nothing to do: the database was opened and the configuration checked at start."""

    def announce_registration(
        self, result: RegistrationResult, *, transaction: IndexTransaction | None = None
    ) -> str | None:
        """Record ``model_registered`` for a registration; returns the event id (None if the
        version already had one). Deliveries start at once in a background thread (once
        ``transaction``, when given and of this database, has committed)."""
        event_id = new_event_id()
        event: dict[str, Any] = {
            "event_id": event_id,
            "event_type": MODEL_REGISTERED,
            "dedupe_key": registered_key_of(result),
            "payload": dict(model_registered_payload(result, event_id=event_id)),
            "model_name": result["model_name"],
            "model_version": str(result["version"]),
        }
        if transaction is not None and transaction.database_url == self.database_url:
            created = self.outbox.record(**event, connection=transaction.connection)
            if created is None:
                return None
            transaction.after_commit(lambda: self._wake_sender(created))
            return event_id
        created = self._record(**event)
        if created is None:
            return None
        self._wake_sender(created)
        return event_id

    @property
    def database_url(self) -> str:
        """The project database's URL (with its password: compared, never shown)."""
        return self.engine.url.render_as_string(hide_password=False)

    def announce_promotion(
        self, version: ModelVersionInfo, *, alias: str, previous_version: str | None
    ) -> str:
        """Record ``model_promoted`` (an alias now points at ``version``); returns the event id."""
        event_id = new_event_id()
        created = self._record(
            event_id=event_id,
            event_type=MODEL_PROMOTED,
            dedupe_key=f"{MODEL_PROMOTED}:{version['model_name']}@{alias}:{event_id}",
            payload=model_promoted_payload(
                version, event_id=event_id, alias=alias, previous_version=previous_version
            ),
            model_name=version["model_name"],
            model_version=str(version["version"]),
        )
        self._wake_sender(created)
        return event_id

    def announce_verification(self, result: VerificationResult) -> list[str]:
        """Record ``improvement.verified`` and, when the verification was accepted,
        ``deltaone.accepted``; returns the ids of the events recorded now.

        Both payloads are built (and checked) before anything is written, and both events are
        written in one transaction, so a verification never has its ``deltaone.accepted``
        without its ``improvement.verified``. Each event's dedupe key is its type and the
        verification's idempotency key: announcing the same verification again records
        nothing and returns ``[]``. An accepted verification without a contributor (a legacy
        candidate) has no one to credit: only ``improvement.verified`` is recorded.
        """
        recorded = self._record_together(_verification_events(result))
        self._wake_sender(sum(deliveries for _, deliveries in recorded))
        return [event_id for event_id, _ in recorded]

    def _record_together(self, events: list[dict[str, Any]]) -> list[tuple[str, int]]:
        """Record ``events`` in one transaction; (event id, deliveries) of those not already
        recorded. A write that raised but whose events are there (a lost commit
        acknowledgement) counts as recorded, like :meth:`_record`."""
        try:
            recorded: list[tuple[str, int]] = []
            with write_transaction(self.engine) as conn:
                for event in events:
                    created = self.outbox.record(**event, connection=conn)
                    if created is not None:
                        recorded.append((event["event_id"], created))
            return recorded
        except Exception as write_error:  # noqa: BLE001 - re-raised unless the events are there
            try:
                for event in events:
                    self.outbox.event(event["event_id"])
            except Exception:  # noqa: BLE001 - not there, or unknowable: the write failed
                raise write_error from None
            logger.warning("verification events were recorded although their write failed")
            return [(event["event_id"], 1) for event in events]

    def _record(self, *, event_id: str, **event: Any) -> int | None:
        """``outbox.record``, telling a lost commit acknowledgement from a failed write: when
        the write raised but the event is there, it was recorded."""
        try:
            return self.outbox.record(event_id=event_id, **event)
        except Exception as write_error:  # noqa: BLE001 - re-raised unless the event is there
            try:
                self.outbox.event(event_id)
            except Exception:  # noqa: BLE001 - not there, or unknowable: the write failed
                raise write_error from None
            logger.warning("event %s was recorded although its write reported an error", event_id)
            return 1

    def _wake_sender(self, deliveries: int | None) -> None:
        """Start delivering at once; the event is already durable, so a failure to start the
        thread is only logged (a worker or the next sender delivers it)."""
        if not deliveries or not self.settings.webhook_background:
            return
        try:
            self.background_sender().notify()
        except Exception:
            logger.exception("could not start the background webhook sender")

    def reconcile(
        self, queries: RegistryQueries, *, limit: int = 500, min_age_seconds: float | None = None
    ) -> list[str]:
        """Record the missing ``model_registered`` events of registered versions (see
        :mod:`hokusai.webhooks.reconciler`); returns their model ids."""
        if min_age_seconds is None:
            min_age_seconds = self.settings.webhook_reconcile_min_age_seconds
        return reconcile(self.outbox, queries, limit=limit, min_age_seconds=min_age_seconds)

    def attach_registry(self, queries: RegistryQueries, *, reconcile_now: bool = True) -> None:
        """Keep the events of this registry complete from this process too: one reconciler
        pass now (in a background thread, unless ``reconcile_now`` is false), and one a minute
        while the background sender runs. This is what repairs the gaps of library-only users,
        who run no worker."""
        self._queries = queries
        if reconcile_now:
            threading.Thread(
                target=self._reconcile_quietly, name="hokusai-reconcile", daemon=True
            ).start()

    def _reconcile_quietly(self) -> None:
        if self._queries is None:
            return
        try:
            self.reconcile(self._queries)
        except Exception:
            logger.exception("reconciler pass failed; the next one retries")

    def background_sender(self) -> BackgroundSender:
        """The process-wide background sender for this database (created on first use)."""
        url = self.settings.resolved_database_url
        with _SENDERS_LOCK:
            sender = _SENDERS.get(url)
            if sender is None:
                reconcile = (
                    functools.partial(self.reconcile, self._queries)
                    if self._queries is not None
                    else None
                )
                dispatcher = self.dispatcher(owner_kind="inproc", reconcile=reconcile)
                sender = BackgroundSender(
                    dispatcher,
                    poll_seconds=self.settings.webhook_poll_seconds,
                    exit_grace=self.settings.webhook_exit_grace_seconds,
                )
                _SENDERS[url] = sender
                atexit.register(sender.drain)
        return sender

    def dispatcher(
        self, *, owner_kind: str = "worker", client: httpx.Client | None = None, **kwargs: Any
    ) -> Dispatcher:
        """A dispatcher over this outbox (a new HTTP client, guarded by the destination policy,
        unless one is given)."""
        from hokusai.webhooks.dispatcher import _owner_name

        return Dispatcher(
            self.outbox,
            policy=self.policy,
            client=client or self.destinations.client(),
            timeout=self.settings.webhook_timeout_seconds,
            lease_seconds=self.settings.webhook_lease_seconds,
            owner=_owner_name(owner_kind),
            **kwargs,
        )

    # ---- endpoints ---------------------------------------------------------------------

    def add_endpoint(
        self,
        url: str,
        *,
        events: list[str] | str | None = None,
        secret: str | None = None,
        description: str | None = None,
        source: str = "cli",
    ) -> tuple[Endpoint, str]:
        """Create an endpoint; returns it and its secret (shown once, never again)."""
        secret = secret or generate_secret()
        endpoint = self.endpoints.add(
            url, secret=secret, events=events, description=description, source=source
        )
        return endpoint, secret

    def test_endpoint(self, endpoint_or_url: str, *, client: httpx.Client | None = None) -> Attempt:
        """Send a signed ``ping`` to a configured endpoint now (recorded like any event).

        The ping's delivery is created already leased to this call, so a background sender or
        worker polling the outbox cannot take it first.
        """
        endpoint = self.endpoints.get(endpoint_or_url)
        if not endpoint.enabled:
            raise ConflictError(
                f"Endpoint {endpoint.id} is disabled ({endpoint.disabled_reason}); enable it first."
            )
        event_id = new_event_id()
        dispatcher = self.dispatcher(owner_kind="test", client=client)
        once = RetryPolicy([])
        self.outbox.record(
            event_id=event_id,
            event_type=PING,
            dedupe_key=f"{PING}:{event_id}",
            payload=ping_payload(event_id=event_id, endpoint_id=endpoint.id),
            endpoint_ids=[endpoint.id],
            lease=(dispatcher.owner, dispatcher.lease_seconds),
        )
        claims = self.outbox.claim(
            owner=dispatcher.owner,
            lease_seconds=dispatcher.lease_seconds,
            event_id=event_id,
            policy=once,
        )
        if not claims:  # disabled between the check and the write
            raise ConflictError(f"Endpoint {endpoint.id} was disabled; enable it first.")
        claim = claims[0]
        try:
            attempt = send(dispatcher.client, claim, timeout=self.settings.webhook_timeout_seconds)
        finally:
            if client is None:
                dispatcher.client.close()  # the one-off client made for this ping
        self.outbox.complete(claim, attempt, owner=dispatcher.owner, policy=once)
        return attempt

    def enable_endpoint(self, endpoint_or_url: str) -> Endpoint:
        """Re-enable an endpoint (clearing its disabled reason); its pending deliveries resume.

        Events recorded while it was disabled were not queued for it: :meth:`replay` them.
        """
        endpoint = self.endpoints.get(endpoint_or_url)
        self.endpoints.set_enabled(endpoint.id, True)
        if self.settings.webhook_background and self.outbox.due_count():
            self.background_sender().notify()
        return self.endpoints.get(endpoint.id)

    def replay(
        self,
        endpoint_or_url: str,
        *,
        since: datetime,
        until: datetime | None = None,
        event_types: list[str] | None = None,
    ) -> int:
        """Queue for an endpoint the recorded events of [since, until) it is subscribed to (of
        ``event_types`` only, if given), with their original event ids; returns how many
        deliveries were queued. Events it already has a delivery for are skipped unless that
        delivery failed or is dead (then it is re-queued). Naive times are UTC.
        """
        endpoint = self.endpoints.get(endpoint_or_url)
        if not endpoint.enabled:
            raise ConflictError(
                f"Endpoint {endpoint.id} is disabled ({endpoint.disabled_reason}); enable it first."
            )
        start = _epoch(since)
        end = None if until is None else _epoch(until)
        if end is not None and end <= start:
            raise ValidationError("until must be later than since.")
        wanted = None if event_types is None else validate_events(list(event_types))
        subscribed = list(EVENT_TYPES) if "*" in endpoint.events else endpoint.events
        chosen = [t for t in subscribed if wanted is None or "*" in wanted or t in wanted]
        queued = self.outbox.replay(endpoint.id, since=start, until=end, event_types=chosen)
        if queued and self.settings.webhook_background:
            self.background_sender().notify()
        return queued

    def close(self) -> None:
        """Stop this database's background sender and release connections."""
        with _SENDERS_LOCK:
            sender = _SENDERS.pop(self.settings.resolved_database_url, None)
        if sender is not None:
            sender.stop()
        self.engine.dispose()


def _verification_events(result: VerificationResult) -> list[dict[str, Any]]:
    """The outbox rows of a verification: its ``improvement.verified`` and, when accepted and
    someone is to be credited, its ``deltaone.accepted``; dedupe keys per idempotency key."""
    key = result["idempotency_key"]
    model_name, _, version = str(result["candidate_id"]).rpartition("/")
    builders: list[tuple[str, Any]] = [(IMPROVEMENT_VERIFIED, improvement_verified_payload)]
    if result["accepted"] and not result.get("contributor"):
        logger.warning(
            "verification %s was accepted but its candidate %s has no contributor: "
            "no deltaone.accepted is sent",
            result["verification_id"],
            result["candidate_id"],
        )
    elif result["accepted"]:
        builders.append((DELTAONE_ACCEPTED, deltaone_accepted_payload))
    rows: list[dict[str, Any]] = []
    for event_type, build in builders:
        event_id = new_event_id()
        rows.append(
            {
                "event_id": event_id,
                "event_type": event_type,
                "dedupe_key": f"{event_type}:{key}",
                "payload": dict(build(result, event_id=event_id)),
                "model_name": model_name,
                "model_version": version,
            }
        )
    return rows


def _epoch(moment: datetime) -> float:
    """Seconds since the epoch; a naive datetime is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
