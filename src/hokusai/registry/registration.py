"""One registration as one unit of work: a run, a logged model, one version, the hooks, the
commit point — or, when any of them fails, none of them — and then the announcement.

Everything the caller can get wrong is checked before this module is reached
(:mod:`hokusai.registry.validation`); what is left to fail here is MLflow or a hook, and each
failure before the commit point rolls back what this registration created. The announcement
comes after it: the registration has succeeded by then, so an announcer failure is logged and
repaired by the reconciler, never rolled back.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hokusai.errors import (
    BackendUnavailableError,
    HokusaiError,
    RegistrationError,
    RollbackIncompleteError,
)
from hokusai.registry.announcer import Announcer
from hokusai.registry.backend import is_not_found, mlflow_scope, translate_mlflow_error
from hokusai.registry.filters import equals
from hokusai.registry.index import IndexEntry, RegistryIndex
from hokusai.registry.records import (
    COMPLETE,
    DELTA_METRIC_PREFIX,
    FAILED,
    MLFLOW_GIT_COMMIT,
    REGISTERING,
    TAG_BASELINE_ID,
    TAG_CONTRIBUTOR,
    TAG_DELTA_METRICS,
    TAG_IS_BASELINE,
    TAG_MODEL_TYPE,
    TAG_MODEL_UUID,
    TAG_REGISTRATION_RUN,
    TAG_REGISTRATION_STATE,
    VersionRecord,
    iso_timestamp,
)
from hokusai.registry.results import RegistrationResult

__all__ = ["Attribution", "LoggedInfo", "RegistrationHook", "RegistrationWriter"]

logger = logging.getLogger(__name__)

RegistrationHook = Callable[[RegistrationResult], None]
"""Called with the result of each registration while it can still be rolled back.

A hook that raises makes the registration fail and roll back. Hooks run before the
announcement, the registration's last step, so a version is announced if and only if it was
registered.
"""


@dataclass(frozen=True)
class Attribution:
    """What a registration records about a version besides the model: validated input."""

    model_type: str
    model_name: str
    is_baseline: bool
    metadata: dict[str, Any]
    metrics: dict[str, float]
    baseline_id: str | None = None
    contributor: str | None = None
    delta_metrics: dict[str, float] | None = None

    def tags(self) -> dict[str, str]:
        """The ``hokusai.*`` tags of the run and the version."""
        tags = {
            TAG_MODEL_TYPE: self.model_type,
            TAG_IS_BASELINE: "true" if self.is_baseline else "false",
        }
        if not self.is_baseline:
            assert self.baseline_id is not None
            assert self.contributor is not None
            assert self.delta_metrics
            tags[TAG_BASELINE_ID] = self.baseline_id
            tags[TAG_CONTRIBUTOR] = self.contributor
            tags[TAG_DELTA_METRICS] = json.dumps(
                self.delta_metrics, sort_keys=True, separators=(",", ":")
            )
        return tags

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"model_type": self.model_type, "is_baseline": self.is_baseline}
        if not self.is_baseline:
            params.update(baseline_model_id=self.baseline_id, contributor_address=self.contributor)
        return params

    def run_metrics(self) -> dict[str, float]:
        """Absolute metrics, and each delta as ``delta.<name>``."""
        deltas = self.delta_metrics or {}
        return {**self.metrics, **{DELTA_METRIC_PREFIX + k: v for k, v in deltas.items()}}


@dataclass(frozen=True)
class LoggedInfo:
    """What a registration needs from the logged model: MLflow's ``ModelInfo``, or the same
    fields read back from an already-logged model."""

    model_uri: str
    model_uuid: str
    run_id: str | None
    artifact_path: str | None
    mlflow_version: str | None
    flavors: list[str]
    signature: str | None
    code_paths: list[str]
    extra_tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_model_info(cls, info: Any, *, code_paths: list[str] | None) -> LoggedInfo:
        return cls(
            model_uri=info.model_uri,
            model_uuid=info.model_uuid,
            run_id=info.run_id,
            artifact_path=info.artifact_path,
            mlflow_version=info.mlflow_version,
            flavors=sorted(info.flavors or {}),
            signature=str(info.signature) if info.signature is not None else None,
            code_paths=[f"code/{Path(p).name}" for p in code_paths or []],
        )


LogModel = Callable[[str], LoggedInfo]
"""Logs (or looks up) the model inside the registration run, given the run id."""


class RegistrationWriter:
    """Writes registrations to one MLflow store, with rollback, hooks and announcements."""

    def __init__(
        self,
        client: Any,
        *,
        tracking_uri: str,
        registry_uri: str,
        experiment_id: Callable[[], str],
        hooks: Sequence[RegistrationHook],
        announcer: Announcer | None,
        index: RegistryIndex | None = None,
    ) -> None:
        self._client = client
        self._tracking_uri = tracking_uri
        self._registry_uri = registry_uri
        self._experiment_id = experiment_id
        self._hooks = hooks
        self._announcer = announcer
        self._index = index

    def write(self, log: LogModel, attribution: Attribution) -> RegistrationResult:
        """One run, one logged model (``log``), one version, hooks, the completion mark, then
        the event; or, when anything before the mark fails, none of them."""
        import mlflow

        model_name = attribution.model_name
        tags = attribution.tags()
        # Ready the announcer before writing anything: its configuration errors must not cost
        # a rollback.
        if self._announcer is not None:
            self._announcer.prepare()
        with mlflow_scope(self._tracking_uri, self._registry_uri):
            experiment_id = self._experiment_id()
            try:
                run = mlflow.start_run(
                    experiment_id=experiment_id,
                    run_name=f"register-{model_name}",
                    tags=tags,
                    nested=mlflow.active_run() is not None,
                )
            except Exception as exc:
                raise translate_mlflow_error(exc, "starting the registration run") from exc
            run_id = run.info.run_id
            created: list[tuple[str, str]] = []
            try:
                _log_batch(self._client, run_id, attribution.params(), attribution.run_metrics())
                info = log(run_id)
                version = mlflow.register_model(
                    info.model_uri,
                    model_name,
                    tags={
                        **tags,
                        **info.extra_tags,
                        TAG_MODEL_UUID: info.model_uuid,
                        TAG_REGISTRATION_RUN: run_id,
                        TAG_REGISTRATION_STATE: REGISTERING,
                    },
                )
                created.append((str(version.name), str(version.version)))
                result = build_result(
                    info,
                    version,
                    attribution,
                    git_commit=run.data.tags.get(MLFLOW_GIT_COMMIT),
                    registration_run_id=run_id,
                )
                for hook in self._hooks:
                    hook(result)
                # The commit point: from this write on, the version is registered. Until it,
                # no read returns the version and nothing announces it.
                self._client.set_model_version_tag(
                    version.name, version.version, TAG_REGISTRATION_STATE, COMPLETE
                )
            except BaseException as exc:
                self._fail(exc, run_id, experiment_id, created, model_name)
                raise  # _fail raises; this line only tells type checkers so
            _end_run("FINISHED", run_id)
        self._record(result, version, attribution)
        logger.info(
            "registered %s model_uuid=%s run_id=%s",
            result["model_id"],
            result["model_uuid"],
            run_id,
        )
        return result

    def _record(self, result: RegistrationResult, version: Any, attribution: Attribution) -> None:
        """Record a complete registration: its index row and its event, in one transaction of
        the project database. A failure here does not undo the registration (it succeeded):
        the reconciler records the missing row and event later."""
        if self._announcer is None and self._index is None:
            return
        try:
            if self._index is None:
                assert self._announcer is not None
                self._announcer.announce_registration(result)
                return
            record = VersionRecord.from_version(version)
            record = replace(record, tags={**record.tags, TAG_REGISTRATION_STATE: COMPLETE})
            if result["run_id"] in (None, result["registration_run_id"]):
                # Logged in the registration run: everything the entry holds is known here.
                entry: IndexEntry | None = IndexEntry.from_registration(
                    record, result, run_metrics=attribution.run_metrics()
                )
            else:
                # Registered from a model logged elsewhere: read back what MLflow shows.
                entry = IndexEntry.from_record(self._index.queries, record)
            assert entry is not None
            shared = self._announcer is not None and _takes_transaction(self._announcer)
            with self._index.transaction() as tx:
                self._index.put(tx.connection, entry)
                if shared:
                    assert self._announcer is not None
                    self._announcer.announce_registration(result, transaction=tx)
            if self._announcer is not None and not shared:
                self._announcer.announce_registration(result)
        except Exception:
            logger.exception(
                "%s is registered but its index row and model_registered event could not be "
                "recorded now; the reconciler will record them",
                result["model_id"],
            )

    def _fail(
        self,
        exc: BaseException,
        run_id: str,
        experiment_id: str,
        created: list[tuple[str, str]],
        model_name: str,
    ) -> None:
        """Roll back, then raise what the caller must know: the original error, or the truth
        that the rollback left something behind.

        When MLflow became unreachable, that is the error (:class:`BackendUnavailableError`,
        a 503 to API clients, which retry later), whether or not the rollback — which needs
        MLflow too — finished; its message says what is left behind.
        """
        remaining = self._roll_back(run_id, experiment_id, created)
        left = (
            f"the rollback is incomplete: {'; '.join(remaining)}. A version left behind is "
            f"marked '{FAILED}' (or still '{REGISTERING}'): no read returns it and it is never "
            "announced."
            if remaining
            else "rolled back: no version was created"
        )
        if isinstance(exc, Exception):
            cause = translate_mlflow_error(exc, f"Registering {model_name} failed")
            if isinstance(cause, BackendUnavailableError):
                raise BackendUnavailableError(f"{cause.message} ({left})") from exc
        if remaining:
            raise RollbackIncompleteError(
                f"Registering {model_name} failed ({_describe(exc)}) and {left}"
            ) from exc
        if isinstance(exc, HokusaiError) or not isinstance(exc, Exception):
            raise exc
        error = translate_mlflow_error(exc, f"Registering {model_name} failed")
        raise RegistrationError(f"{error.message} ({left})") from exc

    def _roll_back(
        self, run_id: str, experiment_id: str, created: list[tuple[str, str]]
    ) -> list[str]:
        """Undo a failed registration: delete exactly the versions it created (and a registered
        model it created empty), the logged models its run logged, and fail the run. Returns
        what could not be undone."""
        client = self._client
        remaining: list[str] = []
        versions = set(created)
        try:
            # Also what a lost MLflow response may have created without telling us.
            for mv in client.search_model_versions(
                equals(f"tags.`{TAG_REGISTRATION_RUN}`", run_id).text
            ):
                versions.add((str(mv.name), str(mv.version)))
        except Exception as exc:  # noqa: BLE001 - a rollback tries every step
            if not versions:
                remaining.append(f"versions of run {run_id} could not be searched ({exc})")
        try:
            run_started = client.get_run(run_id).info.start_time or 0
        except Exception:  # noqa: BLE001 - a rollback tries every step
            run_started = int(time.time() * 1000) - 3_600_000
        for name, version in sorted(versions):
            try:
                # First mark it failed: should the delete below fail too, a version whose
                # "complete" mark was written (its acknowledgement lost) is still never read
                # or announced.
                client.set_model_version_tag(name, version, TAG_REGISTRATION_STATE, FAILED)
            except Exception as exc:  # noqa: BLE001 - a rollback tries every step
                logger.warning("could not mark %s/%s failed: %s", name, version, exc)
            try:
                client.delete_model_version(name, version)
                logger.warning("rolled back %s/%s (run %s)", name, version, run_id)
            except Exception as exc:  # noqa: BLE001 - a rollback tries every step
                if not is_not_found(exc):
                    remaining.append(f"version {name}/{version} could not be deleted ({exc})")
                    continue
            try:
                self._drop_if_created_empty(name, since=run_started)
            except Exception as exc:  # noqa: BLE001 - a rollback tries every step
                logger.warning("could not drop empty registered model %s: %s", name, exc)
        try:
            for logged in client.search_logged_models(
                experiment_ids=[experiment_id], filter_string=equals("source_run_id", run_id).text
            ):
                client.delete_logged_model(logged.model_id)
        except Exception as exc:  # noqa: BLE001 - a rollback tries every step
            # Not a version: nothing reads or announces a logged model without one.
            logger.warning("logged models of run %s were not deleted: %s", run_id, exc)
        _end_run("FAILED", run_id)
        for item in remaining:
            logger.error("rollback of run %s incomplete: %s", run_id, item)
        return remaining

    def _drop_if_created_empty(self, name: str, *, since: int) -> None:
        """Delete a registered model this registration created and left without versions."""
        model = self._client.get_registered_model(name)
        if (model.creation_timestamp or 0) < since:
            return
        if not list(self._client.search_model_versions(equals("name", name).text, max_results=1)):
            self._client.delete_registered_model(name)


def _takes_transaction(announcer: Announcer) -> bool:
    """Whether an announcer can record its event in the index's transaction (announcers
    written before it could are called as before)."""
    try:
        parameters = inspect.signature(announcer.announce_registration).parameters
    except (TypeError, ValueError):
        return False
    return "transaction" in parameters


def _end_run(status: str, run_id: str) -> None:
    """End the registration run; its status is bookkeeping, so a failure is only logged."""
    import mlflow

    try:
        mlflow.end_run(status)
    except Exception as exc:  # noqa: BLE001 - a rollback tries every step
        logger.warning("could not mark run %s %s: %s", run_id, status, exc)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _log_batch(client: Any, run_id: str, params: dict[str, Any], metrics: dict[str, float]) -> None:
    """Params and metrics in one store call (two fewer round trips than the fluent calls)."""
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
        params=[Param(key, str(value)) for key, value in params.items()],
    )


def build_result(
    info: LoggedInfo,
    version: Any,
    attribution: Attribution,
    *,
    git_commit: str | None,
    registration_run_id: str,
) -> RegistrationResult:
    """``ModelInfo`` + ``ModelVersion`` → the registration result."""
    result: RegistrationResult = {
        "model_id": f"{version.name}/{version.version}",
        "model_name": version.name,
        "version": str(version.version),
        "model_type": attribution.model_type,
        "is_baseline": attribution.is_baseline,
        "run_id": version.run_id or info.run_id,
        "registration_timestamp": iso_timestamp(version.creation_timestamp),
        "model_uri": info.model_uri,
        "model_uuid": info.model_uuid,
        "artifact_path": info.artifact_path,
        "mlflow_version": info.mlflow_version,
        "flavors": info.flavors,
        "signature": info.signature,
        "metadata": attribution.metadata,
        "metrics": attribution.metrics,
        "code_paths": info.code_paths,
        "git_commit": git_commit,
        "registration_run_id": registration_run_id,
    }
    if not attribution.is_baseline:
        result["baseline_id"] = attribution.baseline_id
        result["contributor"] = attribution.contributor
        result["delta_metrics"] = attribution.delta_metrics
    return result
