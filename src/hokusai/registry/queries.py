"""Read side of the registry: uuid lookup, lineage, contributor models.

All reads go through one ``MlflowClient`` bound to the registry's URIs; none needs MLflow's
process-global state.

``get_model_by_uuid`` is constant-time for MLflow 3 ids: ``m-…`` is the logged model's primary
key, and the logged model's ``mlflow.modelVersions`` tag names the versions registered from it, so
the lookup is two primary-key reads plus the ``MLmodel`` file, whatever the registry's size. Only
ids of pre-MLflow-3 versions (added by ``hokusai registry backfill``) need a tag search.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hokusai.errors import HokusaiError, ModelNotFoundError, ValidationError
from hokusai.registry.backend import (
    ModelCard,
    is_not_found,
    read_model_card,
    translate_mlflow_error,
)
from hokusai.registry.filters import equals, like
from hokusai.registry.records import (
    LEGACY_TAG_CONTRIBUTOR,
    MLFLOW_GIT_COMMIT,
    TAG_CONTRIBUTOR,
    TAG_METADATA_ARTIFACT,
    TAG_MODEL_UUID,
    VersionRecord,
    improved_model_name,
    iso_timestamp,
    legacy_metadata,
    split_run_metrics,
    verification_summary,
)
from hokusai.registry.results import (
    LineageEntry,
    ModelSummary,
    ModelVersionInfo,
    VerificationSummary,
)
from hokusai.registry.validation import MODEL_NAME_RE, normalize_contributor, parse_model_id

__all__ = ["RegistryQueries", "verified_improvement_bps"]

# MLflow 3 logged-model ids (m-…) and MLflow 2 MLmodel uuids (32 hex, found via the backfill's
# tag); anything else cannot name a model, and must not trigger a tag scan.
_UUID_RE = re.compile(r"(m-)?[0-9a-f]{32}")
_PAGE = 1000


class RegistryQueries:
    """Queries over one MLflow registry."""

    def __init__(self, client: Any, *, tracking_uri: str) -> None:
        self._client = client
        self._tracking_uri = tracking_uri

    # ---- single versions -------------------------------------------------------------

    def record(self, name: str, version: str) -> VersionRecord | None:
        """The version's record, or None when it does not exist."""
        try:
            mv = self._client.get_model_version(name, version)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise translate_mlflow_error(exc, f"reading {name}/{version}") from exc
        return self.record_of(mv)

    def record_of(self, mv: Any) -> VersionRecord:
        """The record of an MLflow ``ModelVersion`` (legacy ones read with their run)."""
        record = VersionRecord.from_version(mv)
        if record.legacy and mv.run_id:
            record = record.with_run(self.run(mv.run_id))
        return record

    def run(self, run_id: str) -> Any | None:
        """The MLflow run, or None when it does not exist."""
        try:
            return self._client.get_run(run_id)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise translate_mlflow_error(exc, f"reading run {run_id}") from exc

    def by_uuid(self, model_uuid: str) -> ModelVersionInfo | None:
        """The version registered from logged model ``model_uuid``, described; or None."""
        if not isinstance(model_uuid, str) or not _UUID_RE.fullmatch(model_uuid):
            return None
        logged = None
        if model_uuid.startswith("m-"):
            logged = self._logged_model(model_uuid)
            if logged is None:
                return None
            for name, version in reversed(_registered_versions(logged)):
                record = self.record(name, version)
                if record is not None and record.is_hokusai:
                    return self.describe(record, logged_model=logged)
        by_tag = equals(f"tags.`{TAG_MODEL_UUID}`", model_uuid)
        for mv in self.search(by_tag.text):
            if by_tag.admits((mv.tags or {}).get(TAG_MODEL_UUID)):
                record = self.record_of(mv)
                if record.is_hokusai:
                    return self.describe(record, logged_model=logged)
        return None

    def _logged_model(self, model_id: str) -> Any | None:
        try:
            return self._client.get_logged_model(model_id)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise translate_mlflow_error(exc, f"reading logged model {model_id}") from exc

    def describe(
        self,
        record: VersionRecord,
        *,
        logged_model: Any | None = None,
        run: Any | None = None,
    ) -> ModelVersionInfo:
        """Everything known about one version, as the lookup APIs return it."""
        logged_id = record.logged_model_id
        if logged_model is None and logged_id is not None:
            logged_model = self._logged_model(logged_id)
        card = self._card(record, logged_model)
        metadata = card.metadata if card else {}
        if TAG_METADATA_ARTIFACT in record.tags:
            metadata = self._metadata_artifact(record.tags[TAG_METADATA_ARTIFACT])
        if record.pre_upgrade and not metadata and record.run_id:
            run = run or self.run(record.run_id)
            metadata = legacy_metadata(run) if run is not None else {}
        git_commit = (logged_model.tags.get(MLFLOW_GIT_COMMIT) if logged_model else None) or (
            run.data.tags.get(MLFLOW_GIT_COMMIT) if run is not None else None
        )
        uuid = record.model_uuid or logged_id or (card.model_uuid if card else None)
        return {
            "model_id": record.model_id,
            "model_name": record.model_name,
            "version": record.version,
            "model_uuid": uuid,
            "model_uri": f"models:/{logged_id}" if logged_id else record.source,
            "run_id": record.run_id,
            "stage": record.stage,
            "aliases": record.aliases,
            "status": record.status,
            "model_type": record.model_type,
            "is_baseline": record.is_baseline,
            "baseline_id": record.baseline_id,
            "contributor": record.contributor,
            "delta_metrics": record.delta_metrics,
            "metadata": metadata,
            "signature": card.signature if card else None,
            "flavors": card.flavors if card else [],
            "code_paths": card.code_paths if card else [],
            "mlflow_version": card.mlflow_version if card else None,
            "artifact_path": logged_model.artifact_location if logged_model else None,
            "git_commit": git_commit,
            "registration_timestamp": iso_timestamp(record.created_at),
            "created_at": record.created_at,
            "legacy": record.legacy,
            "verification": verification_summary(record.tags),
        }

    def _metadata_artifact(self, uri: str) -> dict[str, Any]:
        """Metadata stored beside the registration run (``runs:/<run>/hokusai/metadata.json``)."""
        try:
            run_id, path = uri.removeprefix("runs:/").split("/", 1)
            local = self._client.download_artifacts(run_id, path)
            text = Path(local).read_text(encoding="utf-8")
        except Exception as exc:
            raise translate_mlflow_error(exc, f"reading metadata {uri}") from exc
        value: dict[str, Any] = json.loads(text)
        return value

    def resolve_logged_model(self, model_uri: str) -> Any:
        """The logged model a URI names (``models:/m-…``, ``runs:/<run>/<name>``,
        ``models:/<name>/<version>``, ``models:/<name>@<alias>``); ValidationError otherwise."""
        if not isinstance(model_uri, str) or not model_uri:
            raise ValidationError("model_uri must be a non-empty string.")
        logged = None
        if model_uri.startswith("models:/m-") and "/" not in model_uri.removeprefix("models:/"):
            logged = self._logged_model(model_uri.removeprefix("models:/"))
        elif model_uri.startswith("runs:/"):
            parts = model_uri.removeprefix("runs:/").split("/", 1)
            if len(parts) == 2 and parts[0] and parts[1]:
                logged = self._logged_model_of_run(parts[0], parts[1].rstrip("/"))
        elif model_uri.startswith("models:/"):
            logged = self._logged_model_of_version(model_uri.removeprefix("models:/"))
        else:
            raise ValidationError(
                f"model_uri {model_uri!r} is not an MLflow model URI; log the model with MLflow "
                "first and pass models:/m-…, runs:/<run_id>/<name> or models:/<name>/<version>."
            )
        if logged is None:
            raise ValidationError(f"model_uri {model_uri!r} does not name a logged model.")
        return logged

    def _logged_model_of_run(self, run_id: str, name: str) -> Any | None:
        run = self.run(run_id) if re.fullmatch(r"[0-9a-f]{32}", run_id) else None
        if run is None:
            return None
        try:
            found = self._client.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=equals("source_run_id", run_id).text,  # 32 hex: always exact
            )
        except Exception as exc:
            raise translate_mlflow_error(exc, "searching logged models") from exc
        matches = [m for m in found if m.name == name and m.source_run_id == run_id]
        return matches[-1] if matches else None

    def _logged_model_of_version(self, reference: str) -> Any | None:
        try:
            if "@" in reference:
                name, alias = reference.split("@", 1)
                mv = self._client.get_model_version_by_alias(name, alias)
            elif reference.count("/") == 1:
                name, version = parse_model_id(reference)
                mv = self._client.get_model_version(name, version)
            else:
                return None
        except HokusaiError:
            return None
        except Exception as exc:
            if is_not_found(exc) or "INVALID_PARAMETER_VALUE" in str(
                getattr(exc, "error_code", "")
            ):
                return None
            raise translate_mlflow_error(exc, f"reading {reference}") from exc
        record = VersionRecord.from_version(mv)
        return self._logged_model(record.logged_model_id) if record.logged_model_id else None

    def list_versions(
        self,
        *,
        model_type: str | None = None,
        kind: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[ModelSummary], str | None]:
        """Hokusai versions, newest first, optionally of one type and kind; one page."""
        names = like("name", f"hokusai_{model_type or '%'}_{kind or '%'}")
        try:
            page = self._client.search_model_versions(
                names.text,
                max_results=max_results,
                order_by=["creation_timestamp DESC"],
                page_token=page_token,
            )
        except Exception as exc:
            invalid = getattr(exc, "error_code", "") == "INVALID_PARAMETER_VALUE"
            if page_token is not None and (invalid or isinstance(exc, ValueError)):
                raise ValidationError(
                    "Invalid page_token: pass the next_page_token of a previous page."
                ) from exc
            raise translate_mlflow_error(exc, "listing model versions") from exc
        summaries = []
        for mv in page:
            record = self.record_of(mv)
            if not record.is_hokusai:
                continue
            if model_type is not None and record.model_type != model_type:
                continue  # `_` in the LIKE pattern matches any character
            if kind is not None and not record.model_name.endswith(f"_{kind}"):
                continue
            summaries.append(self.summary(record))
        return summaries, page.token or None

    @staticmethod
    def summary(record: VersionRecord) -> ModelSummary:
        """The short description of a version used in listings (no artifact reads)."""
        return {
            "model_id": record.model_id,
            "model_name": record.model_name,
            "version": record.version,
            "model_uuid": record.model_uuid or record.logged_model_id,
            "model_type": record.model_type,
            "is_baseline": record.is_baseline,
            "run_id": record.run_id,
            "baseline_id": record.baseline_id,
            "contributor": record.contributor,
            "delta_metrics": record.delta_metrics,
            "stage": record.stage,
            "aliases": record.aliases,
            "registration_timestamp": iso_timestamp(record.created_at),
            "legacy": record.legacy,
            "verification": verification_summary(record.tags),
        }

    def card_uuid(self, record: VersionRecord) -> str | None:
        """The ``model_uuid`` the version's MLmodel file records, if any."""
        card = self._card(record, None)
        return card.model_uuid if card else None

    def _card(self, record: VersionRecord, logged_model: Any | None) -> ModelCard | None:
        try:
            if logged_model is not None:
                location = logged_model.artifact_location
            else:
                location = self._client.get_model_version_download_uri(
                    record.model_name, record.version
                )
            return read_model_card(location, tracking_uri=self._tracking_uri)
        except FileNotFoundError:
            return None  # the artifacts were removed (garbage-collected) out of band
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise translate_mlflow_error(exc, f"reading MLmodel of {record.model_id}") from exc

    # ---- lineage ---------------------------------------------------------------------

    def resolve(self, model_id: str) -> VersionRecord:
        """``name/version``, or a bare registered model name meaning its latest version."""
        return self._resolve_all(model_id)[-1]

    def _resolve_all(self, model_id: str) -> list[VersionRecord]:
        """``name/version`` → that version; a bare name → all its versions, oldest first."""
        if isinstance(model_id, str) and "/" not in model_id and MODEL_NAME_RE.fullmatch(model_id):
            named = equals("name", model_id)
            versions = [
                self.record_of(mv)
                for mv in self.search(named.text, order_by=["version_number ASC"])
                if named.admits(mv.name)
            ]
            versions = [v for v in versions if v.complete]  # not registered (yet)
            if not versions:
                raise ModelNotFoundError(f"Model {model_id} not found.")
            return versions
        name, version = parse_model_id(model_id)
        record = self.record(name, version)
        if record is None or not record.complete:
            raise ModelNotFoundError(f"Model {model_id} not found.")
        return [record]

    def lineage(self, model_id: str) -> list[LineageEntry]:
        """The baseline of ``model_id``'s family and every version built on it, tree order.

        A bare registered model name (what pre-upgrade callers passed) means every family that
        has a version of that name, oldest family first.
        """
        records = [r for r in self._resolve_all(model_id) if r.is_hokusai]
        if not records:
            raise ModelNotFoundError(f"Model {model_id} is not a Hokusai model version.")
        entries: list[LineageEntry] = []
        children_by_type: dict[str, dict[str, list[VersionRecord]]] = {}
        done: set[str] = set()
        for record in records:
            root = self.root_of(record)
            if root.model_id in done:
                continue
            done.add(root.model_id)
            key = root.model_type or ""
            if key not in children_by_type:
                children_by_type[key] = self._children(root.model_type)
            family = self._family(root, children_by_type[key])
            done.update(entry["model_id"] for entry in family)
            entries.extend(family)
        return entries

    def _children(self, model_type: str | None) -> dict[str, list[VersionRecord]]:
        """Improved versions of ``model_type`` grouped by the version they improve."""
        children: dict[str, list[VersionRecord]] = {}
        if model_type is not None:
            # model_type is read back from tags (or a legacy run param): any text at all
            named = equals("name", improved_model_name(model_type))
            for mv in self.search(named.text):
                if not named.admits(mv.name):
                    continue
                child = VersionRecord.from_version(mv)
                if child.baseline_id and child.is_hokusai:
                    children.setdefault(child.baseline_id, []).append(child)
        return children

    def _family(
        self, root: VersionRecord, children: dict[str, list[VersionRecord]]
    ) -> list[LineageEntry]:
        """``root`` and everything built on it, breadth first by registration time."""
        entries: list[LineageEntry] = []
        queue: deque[tuple[VersionRecord, int, dict[str, float], int]] = deque([(root, 0, {}, 0)])
        seen: set[str] = set()
        while queue:
            node, depth, inherited, verified_bps = queue.popleft()
            if node.model_id in seen:
                continue
            seen.add(node.model_id)
            run = self.run(node.run_id) if node.run_id else None
            node = node.with_run(run)
            description = self.describe(node, run=run)
            metrics, logged_deltas = split_run_metrics(dict(run.data.metrics) if run else {})
            if node.pre_upgrade and not node.is_baseline:
                metrics = {}  # legacy improved runs logged only their deltas as metrics
            deltas = node.delta_metrics or logged_deltas
            cumulative = dict(inherited)
            for name, delta in deltas.items():
                cumulative[name] = cumulative.get(name, 0.0) + delta
            verified_bps += verified_improvement_bps(description["verification"])
            entries.append(
                {
                    **description,
                    "metrics": metrics,
                    "delta_metrics": deltas,
                    "depth": depth,
                    "parent_id": None if node.model_id == root.model_id else node.baseline_id,
                    "cumulative_improvement": {**cumulative, "total_improvements": depth},
                    "cumulative_verified_improvement_bps": verified_bps,
                }
            )
            for child in sorted(children.get(node.model_id, []), key=lambda r: r.created_at):
                queue.append((child, depth + 1, cumulative, verified_bps))
        return entries

    def root_of(self, record: VersionRecord) -> VersionRecord:
        """The baseline at the start of ``record``'s chain (as far as it can be followed)."""
        seen = {record.model_id}
        while not record.is_baseline and record.baseline_id:
            try:
                name, version = parse_model_id(record.baseline_id)
            except HokusaiError:
                break  # a legacy free-form baseline id: this version is the oldest we can know
            parent = self.record(name, version)
            if parent is None or parent.model_id in seen:
                break
            seen.add(parent.model_id)
            record = parent
        return record

    # ---- contributors ----------------------------------------------------------------

    def contributor_models(self, address: str) -> list[ModelSummary]:
        """Every version attributed to ``address`` (any case), oldest first."""
        checksum = normalize_contributor(address)
        found: dict[str, VersionRecord] = {}
        tagged = equals(f"tags.`{TAG_CONTRIBUTOR}`", checksum)
        for mv in self.search(tagged.text):
            if tagged.admits((mv.tags or {}).get(TAG_CONTRIBUTOR)):
                record = VersionRecord.from_version(mv)
                if record.is_hokusai:
                    found[record.model_id] = record
        legacy = like(f"tags.`{LEGACY_TAG_CONTRIBUTOR}`", checksum, ignore_case=True)
        for mv in self.search(legacy.text):
            record = self.record_of(mv)
            if record.is_hokusai and record.contributor == checksum:
                found.setdefault(record.model_id, record)
        result: list[ModelSummary] = []
        for record in sorted(found.values(), key=lambda r: r.created_at):
            result.append({**self.summary(record), "contributor": checksum})
        return result

    # ---- paging ----------------------------------------------------------------------

    def registered_model(self, name: str) -> Any:
        """The registered model ``name``; ModelNotFoundError when there is none."""
        try:
            return self._client.get_registered_model(name)
        except Exception as exc:
            if is_not_found(exc):
                raise ModelNotFoundError(f"Model {name} not found.") from exc
            raise translate_mlflow_error(exc, f"reading registered model {name}") from exc

    def registered_models(self, pattern: str) -> Iterator[Any]:
        """Registered models whose name is ``LIKE pattern``, across all pages."""
        token = None
        while True:
            try:
                page = self._client.search_registered_models(
                    f"name LIKE '{pattern}'", max_results=_PAGE, page_token=token
                )
            except Exception as exc:
                raise translate_mlflow_error(exc, "searching registered models") from exc
            yield from page
            token = page.token
            if not token:
                return

    def search(
        self, filter_string: str, *, order_by: list[str] | None = None, limit: int | None = None
    ) -> Iterator[Any]:
        """Iterate ``search_model_versions`` across all pages."""
        token = None
        yielded = 0
        while True:
            try:
                page = self._client.search_model_versions(
                    filter_string,
                    max_results=min(_PAGE, limit) if limit else _PAGE,
                    order_by=order_by,
                    page_token=token,
                )
            except Exception as exc:
                raise translate_mlflow_error(exc, "searching model versions") from exc
            for mv in page:
                yield mv
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            token = page.token
            if not token:
                return


def verified_improvement_bps(summary: VerificationSummary | None) -> int:
    """What a version's latest verification adds to its lineage's verified improvement: its
    ``improvement_bps`` when it was accepted, else 0."""
    if summary is None or not summary["accepted"]:
        return 0
    return summary["improvement_bps"]


def _registered_versions(logged_model: Any) -> list[tuple[str, str]]:
    """(name, version) pairs MLflow recorded on a logged model when registering from it."""
    raw = (logged_model.tags or {}).get("mlflow.modelVersions")
    if not raw:
        return []
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError:
        return []
    return [
        (str(e["name"]), str(e["version"]))
        for e in entries
        if isinstance(e, dict) and "name" in e and "version" in e
    ]
