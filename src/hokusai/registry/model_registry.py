"""HokusaiModelRegistry: registers baseline and improved models on MLflow 3, and reads them back.

One registration is one MLflow run, one logged model (``log_model`` → ``ModelInfo``) and exactly
one model version (``mlflow.register_model`` → ``ModelVersion``), tagged with Hokusai's
attribution (:mod:`hokusai.registry.registration`). Everything is validated before anything is
written; a failure after that rolls back what the registration created, so nothing
half-registered is ever visible or announced.

This class announces through the :class:`~hokusai.registry.announcer.Announcer` it is given and
knows nothing of webhooks. :class:`hokusai.HokusaiModelRegistry` (the documented
``hokusai.services.model_registry`` import) is this class with the webhook layer wired in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from hokusai.config import Settings, bound_mlflow_client, get_settings, mask_secrets
from hokusai.errors import (
    BaselineNotFoundError,
    HokusaiError,
    InvalidMetricsError,
    ModelNotFoundError,
    NotAHokusaiModelError,
    RollbackIncompleteError,
    ValidationError,
    VerificationError,
)
from hokusai.registry.announcer import Announcer
from hokusai.registry.backend import is_not_found, read_model_card, translate_mlflow_error
from hokusai.registry.backfill import BackfillReport, ProgressCallback, backfill
from hokusai.registry.experiments import ensure_experiment
from hokusai.registry.flavors import plan_flavor, requirements_for
from hokusai.registry.index import IndexEntry, RegistryIndex
from hokusai.registry.queries import RegistryQueries
from hokusai.registry.records import (
    TAG_METADATA_ARTIFACT,
    VersionRecord,
    baseline_model_name,
    improved_model_name,
    is_hokusai_model_name,
)
from hokusai.registry.registration import (
    Attribution,
    LoggedInfo,
    RegistrationHook,
    RegistrationWriter,
)
from hokusai.registry.results import (
    AliasChange,
    AliasRemoval,
    LineageEntry,
    ModelSummary,
    ModelVersionInfo,
    RegistrationResult,
    VerificationResult,
)
from hokusai.registry.signatures import resolve_signature
from hokusai.registry.validation import (
    MODEL_NAME_RE,
    normalize_contributor,
    normalize_metadata,
    normalize_metrics,
    parse_model_id,
    validate_alias,
    validate_code_paths,
    validate_model_type,
)

if TYPE_CHECKING:
    # Imported when first used: scoring pulls in SciPy and scikit-learn, which a registry
    # that only registers and reads never needs.
    from hokusai.registry.benchmarks import Benchmark
    from hokusai.registry.verification import VerificationPlan, Verifier

__all__ = ["ModelRegistry", "RegistrationHook"]

_T = TypeVar("_T")

logger = logging.getLogger(__name__)

MODEL_ARTIFACT_NAME = "model"
METADATA_ARTIFACT = "hokusai/metadata.json"


class ModelRegistry:
    """Centralised model registry for all Hokusai projects, on MLflow 3.

    Args:
        tracking_uri: MLflow tracking URI. Default: ``HOKUSAI_TRACKING_URI`` /
            ``MLFLOW_TRACKING_URI``, else the embedded ``sqlite:///<HOKUSAI_HOME>/mlflow.db``.
        registry_uri: MLflow registry URI. Default: the tracking URI.
        settings: Settings to use instead of reading the environment now.
        hooks: Callables run with each registration's result before it is final.
        announcer: Records the events of registrations and alias moves (the webhook layer in
            an assembled application); ``None`` announces nothing.
        client: The ``MlflowClient`` to read and roll back with (default: one bound to the
            URIs above); tests hand in fault-injecting wrappers of a real client.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        registry_uri: str | None = None,
        settings: Settings | None = None,
        hooks: Sequence[RegistrationHook] = (),
        announcer: Announcer | None = None,
        client: Any = None,
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
        else:
            # MLflow retries an unreachable tracking server for minutes by default; a
            # registration must fail within seconds with BackendUnavailableError instead.
            bound_mlflow_client()
        self._client = client or MlflowClient(
            tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
        )
        self._queries = RegistryQueries(self._client, tracking_uri=self.tracking_uri)
        self._hooks: list[RegistrationHook] = list(hooks)
        self._announcer = announcer
        self._experiment_id: str | None = None
        self._index: RegistryIndex | None = None
        self._index_lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The ``MlflowClient`` bound to this registry's store."""
        return self._client

    @property
    def queries(self) -> RegistryQueries:
        """The read side (used by the reconciler and the backfill)."""
        return self._queries

    @property
    def announcer(self) -> Announcer | None:
        """Where registrations and alias moves are announced (None: nowhere)."""
        return self._announcer

    @property
    def index(self) -> RegistryIndex | None:
        """The registry index in the project database (None when ``HOKUSAI_REGISTRY_INDEX`` is
        off); opened, and its schema migrated, on first use."""
        if not self.settings.registry_index:
            return None
        with self._index_lock:
            if self._index is None:
                from hokusai.db import open_database

                engine = open_database(
                    self.settings.resolved_database_url,
                    migrate=self.settings.database_auto_migrate,
                )
                self._index = RegistryIndex(
                    engine,
                    self._queries,
                    max_staleness_seconds=self.settings.registry_index_max_staleness_seconds,
                    registry_uri=self.registry_uri,
                )
                # Before this process registers anything: an index first opened on a registry
                # with no Hokusai version is complete from the start. (MLflow unreachable: asked
                # again at the next read; reads ask MLflow meanwhile.)
                try:
                    self._index.built()
                except Exception as exc:  # noqa: BLE001 - see above
                    logger.info(
                        "registry index: could not ask MLflow yet (%s)", mask_secrets(str(exc))
                    )
            return self._index

    def _answering_index(self) -> RegistryIndex | None:
        """The index when it may answer reads now (built and fresh), else None."""
        try:
            index = self.index
            return index if index is not None and index.answers() else None
        except Exception as exc:  # noqa: BLE001 - MLflow still answers; the index is derived
            # Logged only: the read that follows asks MLflow and reports what is wrong.
            logger.info(
                "registry index unavailable (%s); reading from MLflow", mask_secrets(str(exc))
            )
            return None

    def _from_index(self, read: Callable[[RegistryIndex], _T]) -> _T | None:
        """What the index answers, or None when it may not answer now — also when its
        database fails in the middle of the read: MLflow, which the index is derived from,
        answers instead (a project database going down costs speed, not reads)."""
        index = self._answering_index()
        if index is None:
            return None
        try:
            return read(index)
        except SQLAlchemyError as exc:
            logger.info(
                "registry index unreadable (%s); reading from MLflow", mask_secrets(str(exc))
            )
            return None

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
    ) -> RegistrationResult:
        """Register a baseline model as a new version of ``hokusai_{model_type}_baseline``.

        Returns the registration result (:class:`~hokusai.registry.results.RegistrationResult`):
        model_id, model_name, version, model_uuid, model_uri, run_id, signature, flavors, … .
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
        benchmark: str | Benchmark | None = None,
        threshold_bps: int | None = None,
    ) -> RegistrationResult:
        """Register a model improved by ``contributor``'s data over ``baseline_id``.

        ``baseline_id`` is the ``model_id`` of any existing Hokusai version (a baseline or an
        earlier improvement, which makes a chain). The new version goes to
        ``hokusai_{model_type}_improved`` with the baseline's model type.

        With ``benchmark`` (and optionally ``threshold_bps``), the new version is verified on
        it right after it is registered (:meth:`verify_improvement`) and the result gains
        ``verification``. What can be checked of the verification is checked before anything
        is registered; should the verification fail after the registration, the version stays
        registered and :class:`~hokusai.errors.VerificationError` says to run
        ``hokusai verify``.
        """
        parent, contributor, deltas = self._check_improvement(
            baseline_id, contributor, delta_metrics
        )
        assert parent.model_type is not None
        if benchmark is None:
            if threshold_bps is not None:
                raise ValidationError("threshold_bps is only used with benchmark.")
        else:
            bench = self._verifier().precheck(
                model,
                resolve_signature(signature, input_example, plan_flavor(model).predict),
                benchmark,
                baseline=parent,
            )
        result = self._register(
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
        if benchmark is None:
            return result
        try:
            result["verification"] = self.verify_improvement(
                result["model_id"], bench, threshold_bps=threshold_bps
            )
        except Exception as exc:
            detail = f"[{exc.code}] {exc.message}" if isinstance(exc, HokusaiError) else repr(exc)
            raise VerificationError(
                f"{result['model_id']} is registered, but verifying it on benchmark "
                f"{bench.name!r} failed: {detail}. Run `hokusai verify {result['model_id']} "
                f"--benchmark {bench.name}` to verify it."
            ) from exc
        return result

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
    ) -> RegistrationResult:
        # Everything that can be checked is checked before anything is written.
        clean_metadata = normalize_metadata(metadata)
        clean_metrics = normalize_metrics(metrics)
        paths = validate_code_paths(code_paths)
        plan = plan_flavor(model)
        signature = resolve_signature(signature, input_example, plan.predict)
        requirements = requirements_for(
            plan, pip_requirements, extra_pip_requirements, input_example
        )

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

        return self._writer().write(
            log,
            Attribution(
                model_type=model_type,
                model_name=model_name,
                is_baseline=is_baseline,
                metadata=clean_metadata,
                metrics=clean_metrics,
                baseline_id=baseline_id,
                contributor=contributor,
                delta_metrics=delta_metrics,
            ),
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
    ) -> RegistrationResult:
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
        parent_id: str | None = None
        checksum: str | None = None
        deltas: dict[str, float] | None = None
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
            parent_id = parent.model_id
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

        return self._writer().write(
            log,
            Attribution(
                model_type=model_type,
                model_name=(improved_model_name if improved else baseline_model_name)(model_type),
                is_baseline=not improved,
                metadata=clean_metadata,
                metrics=clean_metrics,
                baseline_id=parent_id,
                contributor=checksum,
                delta_metrics=deltas,
            ),
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

    def _writer(self) -> RegistrationWriter:
        return RegistrationWriter(
            self._client,
            tracking_uri=self.tracking_uri,
            registry_uri=self.registry_uri,
            experiment_id=self._ensure_experiment,
            hooks=self._hooks,
            announcer=self._announcer,
            index=self.index,
        )

    def _ensure_experiment(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = ensure_experiment(
                self._client,
                self.settings.experiment_name,
                self.settings.resolved_artifact_location,
            )
        return self._experiment_id

    # ---- verification ----------------------------------------------------------------

    def _verifier(self) -> Verifier:
        from hokusai.registry.verification import Verifier

        return Verifier(
            self._client,
            self._queries,
            self.settings,
            tracking_uri=self.tracking_uri,
            announcer=self._announcer,
            reindex=self._reindex_versions,
        )

    def plan_verification(
        self,
        candidate_id: str,
        benchmark: str | Benchmark,
        *,
        threshold_bps: int | None = None,
        seed: int = 0,
        n_boot: int = 2000,
    ) -> VerificationPlan:
        """Validate a verification of improved version ``candidate_id`` against its baseline on
        ``benchmark`` (a name or a :class:`~hokusai.registry.benchmarks.Benchmark`) and fix its
        inputs, attestation hash, idempotency key and verification id. Writes nothing.

        Raises (typed, nothing written): InvalidModelIdError, ModelNotFoundError,
        NotAnImprovementError (a baseline), BaselineNotFoundError (its baseline is gone),
        BenchmarkNotFoundError, SignatureMismatchError (a column a model needs is not a
        benchmark feature, or has the wrong kind of values), InvalidDatasetError (missing
        targets), MetricMismatchError (a metric that cannot score these models on this
        target), ValidationError (threshold_bps, seed, n_boot). ``threshold_bps`` defaults to
        ``HOKUSAI_VERIFY_THRESHOLD_BPS``.
        """
        return self._verifier().plan(
            candidate_id, benchmark, threshold_bps=threshold_bps, seed=seed, n_boot=n_boot
        )

    def run_verification(
        self,
        plan: VerificationPlan,
        *,
        batch_rows: int = 100_000,
        abort: Callable[[], bool] | None = None,
    ) -> VerificationResult:
        """Run a plan: score both models on the benchmark (``batch_rows`` rows at a time),
        compare, record the evaluation run, tag the candidate, announce. The recorded result of
        the same inputs when there is one (``reused=True``, nothing written but an
        announcement that had failed). ``abort`` is asked just before recording: True stops
        the run with VerificationError, nothing recorded. The plan is released (its temporary
        files removed) when the run ends."""
        return self._verifier().run(plan, batch_rows=batch_rows, abort=abort)

    def verify_improvement(
        self,
        candidate_id: str,
        benchmark: str | Benchmark,
        *,
        threshold_bps: int | None = None,
        seed: int = 0,
        n_boot: int = 2000,
        batch_rows: int = 100_000,
    ) -> VerificationResult:
        """Measure ``candidate_id``'s gain over its baseline on ``benchmark``:
        :meth:`plan_verification` then :meth:`run_verification`."""
        plan = self.plan_verification(
            candidate_id, benchmark, threshold_bps=threshold_bps, seed=seed, n_boot=n_boot
        )
        return self.run_verification(plan, batch_rows=batch_rows)

    def get_verification(self, verification_id: str) -> VerificationResult:
        """The recorded verification ``verification_id`` (``ver_…``); VerificationNotFoundError."""
        return self._verifier().get(verification_id)

    def list_verifications(self, candidate_id: str | None = None) -> list[VerificationResult]:
        """Every recorded verification, or those of ``candidate_id``, newest first."""
        return self._verifier().recorded(candidate_id)

    def get_contributor_verified_gains(self, address: str) -> list[ModelSummary]:
        """The versions attributed to ``address`` that have a verification, each with its
        latest one (``verification``), most recently verified first. Answered by the registry
        index when it answers (the contributor's rows), else by MLflow."""
        verified = [m for m in self.get_contributor_models(address) if m.get("verification")]

        def verified_at(summary: ModelSummary) -> str:
            verification = summary["verification"]
            return verification["verified_at"] if verification else ""

        return sorted(verified, key=verified_at, reverse=True)

    # ---- queries ---------------------------------------------------------------------

    def get_model_by_uuid(self, model_uuid: str) -> ModelVersionInfo | None:
        """The version registered from logged model ``model_uuid`` (``m-…``), or None."""
        found = self._from_index(lambda index: index.by_uuid(model_uuid))
        if found is not None:
            return found
        return self._queries.by_uuid(model_uuid)

    def get_model(self, model_id: str) -> ModelVersionInfo:
        """One version by ``"{model_name}/{version}"``; raises ModelNotFoundError."""
        return self._queries.describe(self._queries.resolve(model_id))

    def get_model_lineage(self, model_id: str) -> list[LineageEntry]:
        """The baseline of ``model_id``'s family and every improvement built on it.

        Entries come baseline first, then breadth-first by registration time; each carries
        metrics, delta_metrics, contributor, timestamps, depth, parent_id and
        ``cumulative_improvement`` (per-metric sum of deltas from the baseline to it). A bare
        registered model name means its latest version.
        """
        entries = self._from_index(lambda index: index.lineage(model_id))
        if entries is not None:
            return entries
        return self._queries.lineage(model_id)

    def get_contributor_models(self, address: str) -> list[ModelSummary]:
        """Every version attributed to ``address`` (any letter case), oldest first."""
        found = self._from_index(lambda index: index.contributor_models(address))
        if found is not None:
            return found
        return self._queries.contributor_models(address)

    def list_models(
        self,
        *,
        model_type: str | None = None,
        kind: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[ModelSummary], str | None]:
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

    def search_models(
        self,
        *,
        query: str | None = None,
        model_type: str | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[ModelSummary], int]:
        """Hokusai versions newest first whose name, type, contributor or model uuid contains
        ``query`` (any case): ``limit`` of them from ``offset``, and how many match in all.

        The registry index answers in O(page); without it every version is listed from MLflow
        and filtered here (correct, slower).
        """
        if model_type is not None:
            validate_model_type(model_type)
        if kind not in (None, "baseline", "improved"):
            raise ValidationError(f"kind must be 'baseline' or 'improved', got {kind!r}.")
        found = self._from_index(
            lambda index: index.search(
                query=query, model_type=model_type, kind=kind, offset=offset, limit=limit
            )
        )
        if found is not None:
            return found
        matching: list[ModelSummary] = []
        token: str | None = None
        needle = (query or "").lower()
        while True:
            page, token = self._queries.list_versions(
                model_type=model_type, kind=kind, max_results=1000, page_token=token
            )
            matching.extend(s for s in page if _summary_matches(s, needle))
            if token is None:
                break
        start = max(0, offset)
        end = None if limit is None else start + limit
        return matching[start:end], len(matching)

    def set_alias(self, model_name: str, alias: str, version: str) -> AliasChange:
        """Point ``alias`` of a Hokusai model at ``version`` (promote, or roll back by pointing
        it at an older one) and announce ``model_promoted``.

        ModelNotFoundError when there is no such version; NotAHokusaiModelError when the model
        exists in MLflow but Hokusai did not register it."""
        alias = validate_alias(alias)
        name, version = parse_model_id(f"{model_name}/{version}")
        record = self._queries.record(name, version)
        if record is None or not record.is_hokusai:
            raise self._refusal(name, version, record)
        previous = self._alias_target(name, alias)
        # Described before the move: a failure here must not leave the alias moved.
        description = self._queries.describe(record) if self._announcer is not None else None
        if self._announcer is not None:
            self._announcer.prepare()
        try:
            self._client.set_registered_model_alias(name, alias, version)
        except Exception as exc:
            raise translate_mlflow_error(exc, f"setting alias {name}@{alias}") from exc
        event_id = None
        if self._announcer is not None and description is not None:
            try:
                event_id = self._announcer.announce_promotion(
                    description, alias=alias, previous_version=previous
                )
            except BaseException as exc:
                # No event, so no move: put the alias back where it was.
                self._restore_alias(name, alias, previous, moved_to=version, cause=exc)
                raise
        self._note_alias(name, alias, version)
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

    def _note_alias(self, name: str, alias: str, version: str | None) -> None:
        """Show an alias move in the index at once (a sync would within its staleness bound)."""
        try:
            index = self.index
            if index is not None:
                index.set_alias(name, alias, version)
        except Exception:  # noqa: BLE001 - the next sync repairs the index
            logger.warning("could not record alias %s@%s in the index", name, alias)

    def _restore_alias(
        self,
        name: str,
        alias: str,
        previous: str | None,
        *,
        moved_to: str,
        cause: BaseException,
    ) -> None:
        try:
            if self._alias_target(name, alias) != moved_to:
                # Someone moved it since (and recorded their own event): theirs stands.
                logger.warning("alias %s@%s moved again meanwhile; not put back", name, alias)
                return
            if previous is None:
                self._client.delete_registered_model_alias(name, alias)
            else:
                self._client.set_registered_model_alias(name, alias, previous)
        except Exception as exc:  # noqa: BLE001 - reported, with the alias's true state
            raise RollbackIncompleteError(
                f"Recording model_promoted for {name}@{alias} failed ({cause}) and putting the "
                f"alias back on {previous or 'nothing'} failed too ({exc}): the alias has moved "
                "without an event."
            ) from cause

    def delete_alias(self, model_name: str, alias: str) -> AliasRemoval:
        """Remove ``alias`` from a Hokusai model; ModelNotFoundError when the model does not
        exist or the alias is not set, NotAHokusaiModelError when the model (or the version
        the alias points at) exists in MLflow but is not a Hokusai one."""
        alias = validate_alias(alias)
        if not is_hokusai_model_name(model_name):
            raise self._refusal(model_name, None, None)
        previous = self._alias_target(model_name, alias)
        if previous is None:
            raise ModelNotFoundError(f"Model {model_name} has no alias {alias!r}.")
        record = self._queries.record(model_name, previous)
        if record is None or not record.is_hokusai:
            raise self._refusal(
                model_name,
                previous,
                record,
                subject=f"Model {model_name}@{alias} points at version {previous}, which",
            )
        try:
            self._client.delete_registered_model_alias(model_name, alias)
        except Exception as exc:
            raise translate_mlflow_error(exc, f"deleting alias {model_name}@{alias}") from exc
        self._note_alias(model_name, alias, None)
        return {"model_name": model_name, "alias": alias, "previous_version": previous}

    def _refusal(
        self,
        name: str,
        version: str | None,
        record: VersionRecord | None,
        *,
        subject: str | None = None,
    ) -> ModelNotFoundError:
        """Why ``name`` (``name/version``) is no Hokusai version, as the error to raise:
        NotAHokusaiModelError when MLflow has it but Hokusai did not register it (saying how to
        register it), ModelNotFoundError when there is nothing of that name at all (or only a
        version whose registration has not completed)."""
        model_id = name if version is None else f"{name}/{version}"
        if record is not None:
            # Registered, yet without Hokusai's attribution or name.
            foreign = record.complete
        else:
            # No such version: the name alone tells (a Hokusai name never is another's model).
            foreign = not is_hokusai_model_name(name) and self._registered_model_exists(name)
            model_id = name if foreign else model_id
        if not foreign:
            if record is not None:
                return ModelNotFoundError(
                    f"{subject or f'Model {model_id}'} is not a registered Hokusai version."
                )
            if version is None:
                return ModelNotFoundError(
                    f"Model {name!r} not found (Hokusai models are named "
                    "hokusai_<type>_baseline or hokusai_<type>_improved)."
                )
            return ModelNotFoundError(f"Model {model_id} not found.")
        subject = subject or f"Model {model_id!r}"
        uri = f"models:/{model_id}" if record is not None else f"models:/{name}/<version>"
        return NotAHokusaiModelError(
            f"{subject} is not a Hokusai model: it exists in MLflow but was not registered by "
            "Hokusai, so Hokusai aliases, lineage and events do not apply to it. Register it as "
            f"a Hokusai version first (POST /api/v1/models with model_uri {uri}, "
            "register_from_uri, or `hokusai train --register-as TYPE`) and use the "
            "hokusai_<type>_baseline version that creates."
        )

    def _registered_model_exists(self, name: str) -> bool:
        if not isinstance(name, str) or not MODEL_NAME_RE.fullmatch(name):
            return False  # not a name MLflow registers under: nothing to ask it
        try:
            self._client.get_registered_model(name)
        except Exception as exc:
            if is_not_found(exc) or getattr(exc, "error_code", "") == "INVALID_PARAMETER_VALUE":
                return False
            raise translate_mlflow_error(exc, f"reading registered model {name}") from exc
        return True

    def _alias_target(self, model_name: str, alias: str) -> str | None:
        try:
            return str(self._client.get_model_version_by_alias(model_name, alias).version)
        except Exception as exc:
            if is_not_found(exc) or getattr(exc, "error_code", "") == "INVALID_PARAMETER_VALUE":
                return None
            raise translate_mlflow_error(exc, f"reading alias {model_name}@{alias}") from exc

    def backfill(
        self, *, dry_run: bool = False, on_progress: ProgressCallback | None = None
    ) -> BackfillReport:
        """Give versions registered by the pre-upgrade code today's ``hokusai.*`` tags.

        ``dry_run`` reports what would be written without writing; ``on_progress(done, total)``
        is called after each version scanned.
        """
        report = backfill(self._client, self._queries, dry_run=dry_run, on_progress=on_progress)
        if not dry_run and report.updated:
            self._reindex_versions(list(report.updated))
        return report

    def _reindex_versions(self, model_ids: list[str]) -> None:
        """Rewrite the index rows of versions whose tags Hokusai just changed (tag writes do
        not show in MLflow's last-update times, which the sync watches)."""
        index = self.index
        if index is None:
            return
        for model_id in model_ids:
            name, version = parse_model_id(model_id)
            record = self._queries.record(name, version)
            entry = IndexEntry.from_record(self._queries, record) if record else None
            with index.transaction() as tx:
                if entry is None:
                    index.remove(tx.connection, name, version)
                else:
                    index.put(tx.connection, entry)


def _summary_matches(summary: ModelSummary, needle: str) -> bool:
    """Whether ``needle`` (lower case) is part of the summary's name, type, contributor or
    model uuid — what the index's search matches."""
    if not needle:
        return True
    fields = (
        summary["model_name"],
        summary["model_type"],
        summary["contributor"],
        summary["model_uuid"],
    )
    return any(needle in value.lower() for value in fields if value)
