"""HokusaiModelRegistry: registers baseline and improved models on MLflow 3, and reads them back.

One registration is one MLflow run, one logged model (``log_model`` → ``ModelInfo``) and exactly
one model version (``mlflow.register_model`` → ``ModelVersion``), tagged with Hokusai's
attribution. Everything is validated before anything is written; a failure after the run was
created ends the run as FAILED and deletes the version and the logged model it created, so
nothing half-registered is ever visible or announced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hokusai.config import Settings, get_settings

if TYPE_CHECKING:
    from hokusai.webhooks.service import Webhooks
from hokusai.errors import (
    BaselineNotFoundError,
    HokusaiError,
    InvalidMetricsError,
    ModelNotFoundError,
    RegistrationError,
    ValidationError,
)
from hokusai.registry.backend import (
    is_not_found,
    mlflow_scope,
    read_model_card,
    translate_mlflow_error,
)
from hokusai.registry.backfill import BackfillReport, ProgressCallback, backfill
from hokusai.registry.flavors import FlavorPlan, plan_flavor
from hokusai.registry.queries import RegistryQueries
from hokusai.registry.records import (
    DELTA_METRIC_PREFIX,
    MLFLOW_GIT_COMMIT,
    TAG_BASELINE_ID,
    TAG_CONTRIBUTOR,
    TAG_DELTA_METRICS,
    TAG_IS_BASELINE,
    TAG_METADATA_ARTIFACT,
    TAG_MODEL_TYPE,
    TAG_MODEL_UUID,
    VersionRecord,
    baseline_model_name,
    improved_model_name,
    iso_timestamp,
)
from hokusai.registry.signatures import resolve_signature
from hokusai.registry.validation import (
    normalize_contributor,
    normalize_metadata,
    normalize_metrics,
    parse_model_id,
    validate_alias,
    validate_model_type,
)

__all__ = ["HokusaiModelRegistry", "RegistrationHook"]

logger = logging.getLogger(__name__)

RegistrationHook = Callable[[dict[str, Any]], None]
"""Called with the result of each registration while it can still be rolled back.

A hook that raises makes the registration fail and roll back. Hooks run before the webhook
outbox write, the registration's last step, so a version is announced if and only if it was
registered.
"""

MODEL_ARTIFACT_NAME = "model"
METADATA_ARTIFACT = "hokusai/metadata.json"


class HokusaiModelRegistry:
    """Centralised model registry for all Hokusai projects, on MLflow 3.

    Args:
        tracking_uri: MLflow tracking URI. Default: ``HOKUSAI_TRACKING_URI`` /
            ``MLFLOW_TRACKING_URI``, else the embedded ``sqlite:///<HOKUSAI_HOME>/mlflow.db``.
        registry_uri: MLflow registry URI. Default: the tracking URI.
        settings: Settings to use instead of reading the environment now.
        hooks: Callables run with each registration's result before it is final.
        webhooks: The webhook layer to announce registrations through. Default: built from
            the settings on first registration (the project database under HOKUSAI_HOME).
        announce: Record a ``model_registered`` event for every registration (default). Only
            tests and tools that must not announce turn this off.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        registry_uri: str | None = None,
        settings: Settings | None = None,
        hooks: Sequence[RegistrationHook] = (),
        webhooks: Webhooks | None = None,
        announce: bool = True,
    ) -> None:
        from mlflow import MlflowClient

        settings = settings or get_settings()
        if tracking_uri is not None:
            settings = settings.model_copy(update={"tracking_uri": tracking_uri})
        if registry_uri is not None:
            settings = settings.model_copy(update={"registry_uri": registry_uri})
        self.settings = settings
        self.tracking_uri = settings.resolved_tracking_uri
        self.registry_uri = settings.resolved_registry_uri
        if settings.is_embedded:
            settings.home_path.mkdir(parents=True, exist_ok=True)
        self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        self._queries = RegistryQueries(self._client, tracking_uri=self.tracking_uri)
        self._hooks: list[RegistrationHook] = list(hooks)
        self._webhooks = webhooks
        self._announce = announce
        self._experiment_id: str | None = None

    @property
    def client(self) -> Any:
        """The ``MlflowClient`` bound to this registry's store."""
        return self._client

    @property
    def webhooks(self) -> Webhooks:
        """The webhook layer registrations are announced through (built on first use)."""
        if self._webhooks is None:
            from hokusai.webhooks.service import Webhooks

            self._webhooks = Webhooks(self.settings)
        return self._webhooks

    def add_hook(self, hook: RegistrationHook) -> None:
        """Run ``hook`` with every later registration's result (see :data:`RegistrationHook`)."""
        self._hooks.append(hook)

    # ---- registration ----------------------------------------------------------------

    def register_baseline(
        self,
        model: Any,
        model_type: str,
        metadata: Mapping[str, Any] | None = None,
        signature: Any = None,
        input_example: Any = None,
        code_paths: Sequence[str | Path] | None = None,
        *,
        metrics: Mapping[str, float] | None = None,
        pip_requirements: Sequence[str] | None = None,
        extra_pip_requirements: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Register a baseline model as a new version of ``hokusai_{model_type}_baseline``.

        Returns the registration result (ARCHITECTURE §2): model_id, model_name, version,
        model_uuid, model_uri, run_id, signature, flavors, metadata, … .
        """
        model_type = validate_model_type(model_type)
        return self._register(
            model=model,
            model_type=model_type,
            model_name=baseline_model_name(model_type),
            is_baseline=True,
            metadata=metadata,
            signature=signature,
            input_example=input_example,
            code_paths=code_paths,
            metrics=metrics,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
        )

    def register_improved_model(
        self,
        model: Any,
        baseline_id: str,
        delta_metrics: Mapping[str, float],
        contributor: str,
        signature: Any = None,
        input_example: Any = None,
        code_paths: Sequence[str | Path] | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        pip_requirements: Sequence[str] | None = None,
        extra_pip_requirements: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Register a model improved by ``contributor``'s data over ``baseline_id``.

        ``baseline_id`` is the ``model_id`` of any existing Hokusai version (a baseline or an
        earlier improvement, which makes a chain). The new version goes to
        ``hokusai_{model_type}_improved`` with the baseline's model type.
        """
        parent, contributor, deltas = self._check_improvement(
            baseline_id, contributor, delta_metrics
        )
        assert parent.model_type is not None
        return self._register(
            model=model,
            model_type=parent.model_type,
            model_name=improved_model_name(parent.model_type),
            is_baseline=False,
            metadata=metadata,
            signature=signature,
            input_example=input_example,
            code_paths=code_paths,
            metrics=metrics,
            baseline_id=parent.model_id,
            contributor=contributor,
            delta_metrics=deltas,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
        )

    def _register(
        self,
        *,
        model: Any,
        model_type: str,
        model_name: str,
        is_baseline: bool,
        metadata: Mapping[str, Any] | None,
        signature: Any,
        input_example: Any,
        code_paths: Sequence[str | Path] | None,
        metrics: Mapping[str, float] | None,
        pip_requirements: Sequence[str] | None,
        extra_pip_requirements: Sequence[str] | None,
        baseline_id: str | None = None,
        contributor: str | None = None,
        delta_metrics: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        # Everything that can be checked is checked before anything is written.
        clean_metadata = normalize_metadata(metadata)
        clean_metrics = normalize_metrics(metrics)
        paths = _check_code_paths(code_paths)
        plan = plan_flavor(model)
        signature = resolve_signature(signature, input_example, plan.predict)
        requirements = _requirements(plan, pip_requirements, extra_pip_requirements, input_example)

        def log(_run_id: str) -> LoggedInfo:
            info = plan.log_model(
                name=MODEL_ARTIFACT_NAME,
                signature=signature,
                input_example=input_example,
                code_paths=paths,
                metadata=clean_metadata,
                **requirements,
            )
            return LoggedInfo.from_model_info(info, code_paths=paths)

        return self._record_registration(
            log=log,
            model_type=model_type,
            model_name=model_name,
            is_baseline=is_baseline,
            metadata=clean_metadata,
            metrics=clean_metrics,
            baseline_id=baseline_id,
            contributor=contributor,
            delta_metrics=delta_metrics,
        )

    def register_from_uri(
        self,
        model_uri: str,
        model_type: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        baseline_id: str | None = None,
        contributor: str | None = None,
        delta_metrics: Mapping[str, float] | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """Register an already-logged model (``models:/m-…``, ``runs:/<run>/<name>``,
        ``models:/<name>/<version>`` or ``models:/<name>@<alias>``) as a Hokusai version.

        A baseline when ``baseline_id`` is omitted; otherwise an improved model, which needs
        ``contributor`` and ``delta_metrics`` and must have the baseline's ``model_type``. Same
        validation, result, rollback and event as the in-process registrations. ``metadata`` is
        stored beside the registration run (the logged model's own MLmodel cannot change).
        """
        model_type = validate_model_type(model_type)
        clean_metadata = normalize_metadata(metadata)
        clean_metrics = normalize_metrics(metrics)
        improved = baseline_id is not None or contributor is not None or delta_metrics is not None
        attribution: dict[str, Any] = {
            "baseline_id": None,
            "contributor": None,
            "delta_metrics": None,
        }
        if improved:
            if baseline_id is None or contributor is None or delta_metrics is None:
                raise ValidationError(
                    "An improved model needs baseline_id, contributor and delta_metrics together."
                )
            parent, checksum, deltas = self._check_improvement(
                baseline_id, contributor, delta_metrics
            )
            if parent.model_type != model_type:
                raise ValidationError(
                    f"model_type {model_type!r} differs from the baseline's "
                    f"{parent.model_type!r}; an improvement keeps its baseline's type."
                )
            attribution = {
                "baseline_id": parent.model_id,
                "contributor": checksum,
                "delta_metrics": deltas,
            }
        logged = self._queries.resolve_logged_model(model_uri)

        def log(run_id: str) -> LoggedInfo:
            extra: dict[str, str] = {}
            if clean_metadata:
                import mlflow

                mlflow.log_dict(clean_metadata, METADATA_ARTIFACT)
                extra[TAG_METADATA_ARTIFACT] = f"runs:/{run_id}/{METADATA_ARTIFACT}"
            card = read_model_card(logged.artifact_location, tracking_uri=self.tracking_uri)
            return LoggedInfo(
                model_uri=f"models:/{logged.model_id}",
                model_uuid=logged.model_id,
                run_id=logged.source_run_id,
                artifact_path=logged.artifact_location,
                mlflow_version=card.mlflow_version,
                flavors=card.flavors,
                signature=card.signature,
                code_paths=card.code_paths,
                extra_tags=extra,
            )

        return self._record_registration(
            log=log,
            model_type=model_type,
            model_name=(improved_model_name if improved else baseline_model_name)(model_type),
            is_baseline=not improved,
            metadata=clean_metadata,
            metrics=clean_metrics,
            **attribution,
        )

    def _check_improvement(
        self, baseline_id: str, contributor: str, delta_metrics: Mapping[str, float]
    ) -> tuple[VersionRecord, str, dict[str, float]]:
        """Validate an improvement's attribution; returns (parent, checksum address, deltas)."""
        checksum = normalize_contributor(contributor)
        deltas = normalize_metrics(delta_metrics, what="delta_metrics")
        if not deltas:
            raise InvalidMetricsError("delta_metrics must name at least one metric.")
        name, version = parse_model_id(baseline_id)
        parent = self._queries.record(name, version)
        if parent is None or not parent.is_hokusai or parent.model_type is None:
            raise BaselineNotFoundError(
                f"baseline_id {baseline_id!r} does not name an existing Hokusai model version."
            )
        return parent, checksum, deltas

    def _record_registration(
        self,
        *,
        log: Callable[[str], LoggedInfo],
        model_type: str,
        model_name: str,
        is_baseline: bool,
        metadata: dict[str, Any],
        metrics: dict[str, float],
        baseline_id: str | None,
        contributor: str | None,
        delta_metrics: dict[str, float] | None,
    ) -> dict[str, Any]:
        """One run, one logged model (``log``), one version, hooks, the event; or nothing."""
        tags = {TAG_MODEL_TYPE: model_type, TAG_IS_BASELINE: "true" if is_baseline else "false"}
        params: dict[str, Any] = {"model_type": model_type, "is_baseline": is_baseline}
        run_metrics = dict(metrics)
        if not is_baseline:
            assert baseline_id is not None
            assert contributor is not None
            assert delta_metrics
            tags.update(
                {
                    TAG_BASELINE_ID: baseline_id,
                    TAG_CONTRIBUTOR: contributor,
                    TAG_DELTA_METRICS: _json(delta_metrics),
                }
            )
            params.update(baseline_model_id=baseline_id, contributor_address=contributor)
            run_metrics.update({DELTA_METRIC_PREFIX + k: v for k, v in delta_metrics.items()})

        import mlflow

        # Open the webhook layer before writing anything: its configuration errors (a webhook
        # URL without a secret, an unreachable project database) must not cost a rollback.
        webhooks = self.webhooks if self._announce else None
        with mlflow_scope(self.tracking_uri, self.registry_uri):
            experiment_id = self._ensure_experiment()
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
            try:
                _log_batch(self._client, run_id, params, run_metrics)
                info = log(run_id)
                version = mlflow.register_model(
                    info.model_uri,
                    model_name,
                    tags={**tags, **info.extra_tags, TAG_MODEL_UUID: info.model_uuid},
                )
                result = _result(
                    info=info,
                    version=version,
                    model_type=model_type,
                    is_baseline=is_baseline,
                    metadata=metadata,
                    metrics=metrics,
                    git_commit=run.data.tags.get(MLFLOW_GIT_COMMIT),
                    baseline_id=baseline_id,
                    contributor=contributor,
                    delta_metrics=delta_metrics,
                )
                for hook in self._hooks:
                    hook(result)
                if webhooks is not None:
                    # Last step, same registration: the event exists iff the version does.
                    webhooks.announce_registration(result)
            except BaseException as exc:
                self._roll_back(run_id, experiment_id)
                if isinstance(exc, HokusaiError | KeyboardInterrupt | SystemExit):
                    raise
                if isinstance(exc, Exception):
                    error = translate_mlflow_error(exc, f"Registering {model_name} failed")
                    raise RegistrationError(
                        f"{error.message} (rolled back: no version was created)"
                    ) from exc
                raise
            mlflow.end_run("FINISHED")
        logger.info(
            "registered %s model_uuid=%s run_id=%s",
            result["model_id"],
            result["model_uuid"],
            run_id,
        )
        return result

    def _ensure_experiment(self) -> str:
        if self._experiment_id is not None:
            return self._experiment_id
        name = self.settings.experiment_name
        try:
            experiment = self._client.get_experiment_by_name(name)
            if experiment is None:
                try:
                    experiment_id = self._client.create_experiment(
                        name, artifact_location=self.settings.resolved_artifact_location
                    )
                except Exception:
                    experiment = self._client.get_experiment_by_name(name)
                    if experiment is None:
                        raise
                    experiment_id = experiment.experiment_id
            else:
                experiment_id = experiment.experiment_id
        except Exception as exc:
            raise translate_mlflow_error(exc, f"opening experiment {name!r}") from exc
        self._experiment_id = str(experiment_id)
        return self._experiment_id

    def _roll_back(self, run_id: str, experiment_id: str) -> None:
        """Undo a failed registration: delete its versions and logged models, fail the run."""
        import mlflow

        try:
            run_started = self._client.get_run(run_id).info.start_time or 0
            for mv in self._client.search_model_versions(f"run_id = '{run_id}'"):
                self._client.delete_model_version(mv.name, mv.version)
                logger.warning("rolled back %s/%s (run %s)", mv.name, mv.version, run_id)
                self._drop_if_created_empty(mv.name, since=run_started)
            for logged in self._client.search_logged_models(
                experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}'"
            ):
                self._client.delete_logged_model(logged.model_id)
        except Exception:
            logger.exception("rolling back run %s was incomplete", run_id)
        finally:
            mlflow.end_run("FAILED")

    def _drop_if_created_empty(self, name: str, *, since: int) -> None:
        """Delete a registered model this registration created and left without versions."""
        model = self._client.get_registered_model(name)
        if (model.creation_timestamp or 0) < since:
            return
        if not list(self._client.search_model_versions(f"name = '{name}'", max_results=1)):
            self._client.delete_registered_model(name)

    # ---- queries ---------------------------------------------------------------------

    def get_model_by_uuid(self, model_uuid: str) -> dict[str, Any] | None:
        """The version registered from logged model ``model_uuid`` (``m-…``), or None."""
        return self._queries.by_uuid(model_uuid)

    def get_model(self, model_id: str) -> dict[str, Any]:
        """One version by ``"{model_name}/{version}"``; raises ModelNotFoundError."""
        return self._queries.describe(self._queries.resolve(model_id))

    def get_model_lineage(self, model_id: str) -> list[dict[str, Any]]:
        """The baseline of ``model_id``'s family and every improvement built on it.

        Entries come baseline first, then breadth-first by registration time; each carries
        metrics, delta_metrics, contributor, timestamps, depth, parent_id and
        ``cumulative_improvement`` (per-metric sum of deltas from the baseline to it). A bare
        registered model name means its latest version.
        """
        return self._queries.lineage(model_id)

    def get_contributor_models(self, address: str) -> list[dict[str, Any]]:
        """Every version attributed to ``address`` (any letter case), oldest first."""
        return self._queries.contributor_models(address)

    def list_models(
        self,
        *,
        model_type: str | None = None,
        kind: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of Hokusai versions, newest first: (summaries, next page token or None).

        ``kind`` is ``"baseline"`` or ``"improved"``.
        """
        if model_type is not None:
            validate_model_type(model_type)
        if kind not in (None, "baseline", "improved"):
            raise ValidationError(f"kind must be 'baseline' or 'improved', got {kind!r}.")
        return self._queries.list_versions(
            model_type=model_type, kind=kind, max_results=max_results, page_token=page_token
        )

    def set_alias(self, model_name: str, alias: str, version: str) -> dict[str, Any]:
        """Point ``alias`` of a Hokusai model at ``version`` (promote, or roll back by pointing
        it at an older one) and announce ``model_promoted``."""
        alias = validate_alias(alias)
        name, version = parse_model_id(f"{model_name}/{version}")
        record = self._queries.record(name, version)
        if record is None or not record.is_hokusai:
            raise ModelNotFoundError(f"Model {name}/{version} not found.")
        previous = self._alias_target(name, alias)
        try:
            self._client.set_registered_model_alias(name, alias, version)
        except Exception as exc:
            raise translate_mlflow_error(exc, f"setting alias {name}@{alias}") from exc
        event_id = None
        if self._announce:
            event_id = self.webhooks.announce_promotion(
                self._queries.describe(record), alias=alias, previous_version=previous
            )
        logger.info("alias %s@%s -> %s (was %s)", name, alias, version, previous)
        return {
            "model_name": name,
            "alias": alias,
            "version": version,
            "previous_version": previous,
            "model_id": record.model_id,
            "model_uuid": record.model_uuid,
            "event_id": event_id,
        }

    def delete_alias(self, model_name: str, alias: str) -> dict[str, Any]:
        """Remove ``alias`` from a model; ModelNotFoundError when it is not set."""
        alias = validate_alias(alias)
        previous = self._alias_target(model_name, alias)
        if previous is None:
            raise ModelNotFoundError(f"Model {model_name} has no alias {alias!r}.")
        try:
            self._client.delete_registered_model_alias(model_name, alias)
        except Exception as exc:
            raise translate_mlflow_error(exc, f"deleting alias {model_name}@{alias}") from exc
        return {"model_name": model_name, "alias": alias, "previous_version": previous}

    def _alias_target(self, model_name: str, alias: str) -> str | None:
        try:
            return str(self._client.get_model_version_by_alias(model_name, alias).version)
        except Exception as exc:
            if is_not_found(exc) or getattr(exc, "error_code", "") == "INVALID_PARAMETER_VALUE":
                return None
            raise translate_mlflow_error(exc, f"reading alias {model_name}@{alias}") from exc

    def reconcile_webhook_events(
        self, *, limit: int = 500, min_age_seconds: float = 30.0
    ) -> list[str]:
        """Record the missing ``model_registered`` event of any of the newest ``limit`` Hokusai
        versions (see :mod:`hokusai.webhooks.reconciler`); returns their model ids."""
        from hokusai.webhooks.reconciler import reconcile

        return reconcile(
            self._queries, self.webhooks.outbox, limit=limit, min_age_seconds=min_age_seconds
        )

    def backfill(
        self, *, dry_run: bool = False, on_progress: ProgressCallback | None = None
    ) -> BackfillReport:
        """Give versions registered by the pre-upgrade code today's ``hokusai.*`` tags.

        ``dry_run`` reports what would be written without writing; ``on_progress(done, total)``
        is called after each version scanned.
        """
        return backfill(self._client, self._queries, dry_run=dry_run, on_progress=on_progress)


def _check_code_paths(code_paths: Sequence[str | Path] | None) -> list[str] | None:
    if code_paths is None:
        return None
    if isinstance(code_paths, str | Path):
        code_paths = [code_paths]
    missing = [str(p) for p in code_paths if not Path(p).exists()]
    if missing:
        raise ValidationError(f"code_paths entry {missing[0]!r} does not exist.")
    return [str(p) for p in code_paths]


def _requirements(
    plan: FlavorPlan,
    pip_requirements: Sequence[str] | None,
    extra_pip_requirements: Sequence[str] | None,
    input_example: Any,
) -> dict[str, list[str]]:
    if pip_requirements is not None:
        if extra_pip_requirements is not None:
            raise ValidationError("Pass pip_requirements or extra_pip_requirements, not both.")
        return {"pip_requirements": list(pip_requirements)}
    if plan.pip_requirements is not None:
        return {"pip_requirements": [*plan.pip_requirements, *(extra_pip_requirements or [])]}
    if extra_pip_requirements is not None:
        return {"extra_pip_requirements": list(extra_pip_requirements)}
    if input_example is None and plan.flavor == "pyfunc":
        # MLflow needs something to go on for a callable; its own defaults are the honest floor.
        import mlflow.pyfunc

        return {"pip_requirements": list(mlflow.pyfunc.get_default_pip_requirements())}
    return {}


def _log_batch(client: Any, run_id: str, params: dict[str, Any], metrics: dict[str, float]) -> None:
    """Params and metrics in one store call (two fewer round trips than the fluent calls)."""
    import time

    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
        params=[Param(key, str(value)) for key, value in params.items()],
    )


def _json(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _result(
    *,
    info: LoggedInfo,
    version: Any,
    model_type: str,
    is_baseline: bool,
    metadata: dict[str, Any],
    metrics: dict[str, float],
    git_commit: str | None,
    baseline_id: str | None,
    contributor: str | None,
    delta_metrics: dict[str, float] | None,
) -> dict[str, Any]:
    """ModelInfo + ModelVersion → the registration result (ARCHITECTURE §2)."""
    result: dict[str, Any] = {
        "model_id": f"{version.name}/{version.version}",
        "model_name": version.name,
        "version": str(version.version),
        "model_type": model_type,
        "is_baseline": is_baseline,
        "run_id": version.run_id or info.run_id,
        "registration_timestamp": iso_timestamp(version.creation_timestamp),
        "model_uri": info.model_uri,
        "model_uuid": info.model_uuid,
        "artifact_path": info.artifact_path,
        "mlflow_version": info.mlflow_version,
        "flavors": info.flavors,
        "signature": info.signature,
        "metadata": metadata,
        "metrics": metrics,
        "code_paths": info.code_paths,
        "git_commit": git_commit,
    }
    if not is_baseline:
        result.update(baseline_id=baseline_id, contributor=contributor, delta_metrics=delta_metrics)
    return result


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
