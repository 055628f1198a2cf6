"""The registry index: every read in O(answer), whatever the registry's size and wherever MLflow is.

MLflow stays the source of truth. The index is a table in Hokusai's own database (the one holding
the outbox), derived from MLflow and rebuildable from it at any time, holding per registered
Hokusai version exactly what the reads return (the description ``get_model_by_uuid`` gives, the
summary listings give, the run metrics lineage shows) plus the keys they look up by: model uuid,
family root, contributor. A lookup is then one indexed query of Hokusai's database, with no MLflow
call at all.

How it stays true to MLflow:

- **Registrations** write their row in the same database transaction as their
  ``model_registered`` event, right after the registration's commit point. A crash between the
  two leaves a complete version without row *and* event; the reconciler gives it both.
- **Changes made outside Hokusai** (an alias moved, a version deleted or registered, a stage
  transition, in MLflow's UI or with another client) are picked up by :meth:`RegistryIndex.sync`:
  one ``search_registered_models`` call compares every Hokusai registered model's aliases and
  last-update time with what the index saw, and rescans the versions of the models that changed.
  Every read first makes sure the last sync is at most
  ``HOKUSAI_REGISTRY_INDEX_MAX_STALENESS_SECONDS`` old (default 5 s); long-running processes
  (the REST service) sync in the background so their reads never wait for it.
- **Coverage**: the index answers only once it is *built* — created on a registry with no
  Hokusai version yet, or filled by ``hokusai registry reindex`` (resumable, bounded memory).
  Until then, and for anything it does not hold, reads go to MLflow as before.
- ``hokusai registry check`` compares the index with MLflow and reports drift.

Versions still registering, failed, or not Hokusai's are never indexed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from hokusai.config import mask_secrets
from hokusai.db import read_rows, write_transaction
from hokusai.errors import HokusaiError, ModelNotFoundError
from hokusai.registry.filters import equals
from hokusai.registry.queries import RegistryQueries, verified_improvement_bps
from hokusai.registry.records import (
    COMPLETE,
    LEGACY_TAG_CONTRIBUTOR,
    REGISTERING,
    TAG_CONTRIBUTOR,
    TAG_REGISTRATION_RUN,
    TAG_REGISTRATION_STATE,
    VersionRecord,
    improved_model_name,
    is_hokusai_model_name,
    iso_timestamp,
    split_run_metrics,
    verification_summary,
)
from hokusai.registry.results import (
    LineageEntry,
    ModelSummary,
    ModelVersionInfo,
    RegistrationResult,
)
from hokusai.registry.validation import MODEL_NAME_RE, normalize_contributor, parse_model_id

__all__ = [
    "DriftReport",
    "IndexEntry",
    "IndexTransaction",
    "RegistryIndex",
    "ReindexReport",
    "index_tables",
]

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

versions = sa.Table(
    "hokusai_index_versions",
    metadata,
    sa.Column("model_name", sa.String(256), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("registration_run_id", sa.String(64)),
    sa.Column("model_uuid", sa.String(64)),
    sa.Column("model_type", sa.String(256), nullable=False),
    sa.Column("is_baseline", sa.Boolean, nullable=False),
    sa.Column("baseline_id", sa.String(300)),
    sa.Column("root_id", sa.String(300), nullable=False),
    sa.Column("contributor", sa.String(64)),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("stage", sa.String(32)),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("indexed_at", sa.Float, nullable=False),
)
aliases = sa.Table(
    "hokusai_index_aliases",
    metadata,
    sa.Column("model_name", sa.String(256), primary_key=True),
    sa.Column("alias", sa.String(256), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)
models = sa.Table(
    "hokusai_index_models",
    metadata,
    sa.Column("model_name", sa.String(256), primary_key=True),
    sa.Column("last_updated_at", sa.BigInteger, nullable=False),
    sa.Column("synced_at", sa.Float, nullable=False),
)
state = sa.Table(
    "hokusai_index_state",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# The uuid lookup (the REST service's hot path) as one statement: the newest version registered
# from the uuid, with its aliases (LEFT JOIN: one row per alias, or one row with NULL).
_BY_UUID = (
    sa.select(
        versions.c.model_name,
        versions.c.version,
        versions.c.stage,
        versions.c.document,
        aliases.c.alias,
    )
    .select_from(
        versions.outerjoin(
            aliases,
            sa.and_(
                aliases.c.model_name == versions.c.model_name,
                aliases.c.version == versions.c.version,
            ),
        )
    )
    .where(versions.c.model_uuid == sa.bindparam("model_uuid"))
    .order_by(versions.c.created_at.desc(), versions.c.version.desc(), aliases.c.alias)
)

_BUILT = "built"
_REINDEX_CURSOR = "reindex_cursor"
_FINGERPRINT = "mlflow_fingerprint"
_SYNC_ADD_LIMIT = 200
"""Versions one sync adds from MLflow (registered by other tools); the next sync goes on."""


def index_tables() -> list[sa.Table]:
    """The index's tables (for tests and ``hokusai registry check``)."""
    return [versions, aliases, models, state]


# ---- entries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexEntry:
    """One indexed version: its keys and the document the reads return."""

    model_name: str
    version: str
    registration_run_id: str | None
    model_uuid: str | None
    model_type: str
    is_baseline: bool
    baseline_id: str | None
    contributor: str | None
    created_at: int
    stage: str | None
    aliases: list[str]
    description: dict[str, Any]
    """What ``describe`` returns, without the mutable ``stage`` and ``aliases``."""
    summary: dict[str, Any]
    """What listings return, without ``stage`` and ``aliases``."""
    metrics: dict[str, float]
    """The run's absolute metrics, as lineage shows them."""
    lineage_deltas: dict[str, float]
    """The deltas lineage shows (the run's ``delta.*`` metrics for legacy versions)."""
    family_parent: str | None = None
    """The version it is listed under in its family's lineage: its baseline as its tags name
    it (a legacy version attributed only in its run is not listed)."""
    listed_contributor: str | None = None
    """The contributor a search by contributor finds it under (its tags name one)."""
    root_id: str | None = field(default=None)

    @property
    def model_id(self) -> str:
        return f"{self.model_name}/{self.version}"

    def document(self) -> str:
        return json.dumps(
            {
                "describe": self.description,
                "summary": self.summary,
                "metrics": self.metrics,
                "lineage_deltas": self.lineage_deltas,
                "family_parent": self.family_parent,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def of(
        cls,
        record: VersionRecord,
        description: ModelVersionInfo,
        summary: ModelSummary,
        *,
        metrics: dict[str, float],
        lineage_deltas: dict[str, float],
    ) -> IndexEntry:
        assert record.model_type is not None
        tagged = record.tags_only()
        listed = tagged.is_hokusai and tagged.model_name == improved_model_name(
            tagged.model_type or ""
        )
        return cls(
            family_parent=tagged.baseline_id if listed else None,
            listed_contributor=(
                record.contributor
                if TAG_CONTRIBUTOR in record.tags or LEGACY_TAG_CONTRIBUTOR in record.tags
                else None
            ),
            model_name=record.model_name,
            version=record.version,
            registration_run_id=record.registration_run_id,
            model_uuid=description["model_uuid"],
            model_type=record.model_type,
            is_baseline=record.is_baseline,
            baseline_id=record.baseline_id,
            contributor=record.contributor,
            created_at=record.created_at,
            stage=record.stage,
            aliases=sorted(record.aliases),
            description=_without_mutable(dict(description)),
            summary=_without_mutable(dict(summary)),
            metrics=metrics,
            lineage_deltas=lineage_deltas,
        )

    @classmethod
    def from_mlflow(cls, queries: RegistryQueries, mv: Any) -> IndexEntry | None:
        """The entry of an MLflow ``ModelVersion`` read the way the MLflow-backed queries read
        it (None when it is not a registered Hokusai version)."""
        return cls.from_record(queries, queries.record_of(mv))

    @classmethod
    def from_record(cls, queries: RegistryQueries, record: VersionRecord) -> IndexEntry | None:
        """The entry of a version's record, with what MLflow holds beside it (run, MLmodel)."""
        if not record.is_hokusai:
            return None
        run = queries.run(record.run_id) if record.run_id else None
        node = record.with_run(run)
        metrics, logged_deltas = split_run_metrics(dict(run.data.metrics) if run else {})
        if node.pre_upgrade and not node.is_baseline:
            metrics = {}
        return cls.of(
            record,
            queries.describe(record, run=run),
            queries.summary(record),
            metrics=metrics,
            lineage_deltas=node.delta_metrics or logged_deltas,
        )

    @classmethod
    def from_registration(
        cls, record: VersionRecord, result: RegistrationResult, *, run_metrics: dict[str, float]
    ) -> IndexEntry:
        """The entry of a registration that just completed, from what it wrote (no reads):
        field for field what :meth:`from_mlflow` would read back."""
        description: ModelVersionInfo = {
            "model_id": record.model_id,
            "model_name": record.model_name,
            "version": record.version,
            "model_uuid": record.model_uuid or record.logged_model_id,
            "model_uri": (
                f"models:/{record.logged_model_id}" if record.logged_model_id else record.source
            ),
            "run_id": record.run_id,
            "stage": record.stage,
            "aliases": record.aliases,
            "status": record.status,
            "model_type": record.model_type,
            "is_baseline": record.is_baseline,
            "baseline_id": record.baseline_id,
            "contributor": record.contributor,
            "delta_metrics": record.delta_metrics,
            "metadata": result["metadata"],
            "signature": result["signature"],
            "flavors": result["flavors"],
            "code_paths": result["code_paths"],
            "mlflow_version": result["mlflow_version"],
            "artifact_path": result["artifact_path"],
            "git_commit": result["git_commit"],
            "registration_timestamp": iso_timestamp(record.created_at),
            "created_at": record.created_at,
            "legacy": record.legacy,
            "verification": verification_summary(record.tags),
        }
        metrics, _ = split_run_metrics(run_metrics)
        summary = RegistryQueries.summary(record)
        return cls.of(
            record, description, summary, metrics=metrics, lineage_deltas=record.delta_metrics
        )


def _without_mutable(values: dict[str, Any]) -> dict[str, Any]:
    values.pop("stage", None)
    values.pop("aliases", None)
    return values


@dataclass
class IndexTransaction:
    """An open write transaction of the project database, shared by the index row and the
    registration's event, with callbacks to run once it has committed."""

    connection: sa.Connection
    database_url: str
    _after: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (never if it rolls back)."""
        self._after.append(callback)


@dataclass
class ReindexReport:
    """What ``hokusai registry reindex`` did."""

    models: int = 0
    versions_seen: int = 0
    indexed: int = 0
    removed: int = 0
    resumed_from: str | None = None
    built: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DriftReport:
    """Differences between the index and MLflow (empty lists: none)."""

    missing: list[str] = field(default_factory=list)
    """Registered Hokusai versions the index does not hold."""
    extra: list[str] = field(default_factory=list)
    """Indexed versions MLflow no longer has as registered Hokusai versions."""
    different: list[str] = field(default_factory=list)
    """Versions whose indexed answer differs from MLflow's (``model_id: field, …``)."""
    aliases: list[str] = field(default_factory=list)
    """Aliases that differ (``name@alias: index → mlflow``)."""
    built: bool = False

    @property
    def clean(self) -> bool:
        return self.built and not (self.missing or self.extra or self.different or self.aliases)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "clean": self.clean}


ProgressCallback = Callable[[str, int, int | None], None]


# ---- the index -------------------------------------------------------------------------


class RegistryIndex:
    """The index of one registry, in one project database."""

    def __init__(
        self,
        engine: sa.Engine,
        queries: RegistryQueries | None,
        *,
        max_staleness_seconds: float = 5.0,
        registry_uri: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        # What "built" records: which MLflow registry the rows were derived from (a project
        # database pointed at another registry holds nothing about it).
        self._built_value = _registry_key(registry_uri)
        self._registry_uri = registry_uri
        self._queries_or_none = queries
        self._max_staleness = max_staleness_seconds
        self._clock = clock
        self._built = False
        self._last_sync = float("-inf")
        self._sync_lock = threading.RLock()
        self._postgres = engine.dialect.name == "postgresql"

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    @property
    def queries(self) -> RegistryQueries:
        """The MLflow-backed queries the index is derived from (syncs, rebuilds, checks)."""
        if self._queries_or_none is None:
            raise RuntimeError("this index was opened to read only; it has no MLflow queries")
        return self._queries_or_none

    @property
    def _queries(self) -> RegistryQueries:
        return self.queries

    @property
    def database_url(self) -> str:
        return self._engine.url.render_as_string(hide_password=False)

    # ---- transactions ------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[IndexTransaction]:
        """A write transaction; its ``after_commit`` callbacks run once it committed."""
        with write_transaction(self._engine) as connection:
            tx = IndexTransaction(connection, self.database_url)
            yield tx
        for callback in tx._after:
            try:
                callback()
            except Exception:
                logger.exception("after-commit callback failed")

    # ---- coverage ----------------------------------------------------------------------

    def built(self) -> bool:
        """Whether the index holds every registered Hokusai version (then it answers reads).

        The first time an index is asked on a registry with no Hokusai model at all, it is
        built by definition: every registration from then on writes its row."""
        if self._built:
            return True
        with self._engine.connect() as conn:
            value = conn.execute(sa.select(state.c.value).where(state.c.key == _BUILT)).scalar()
        if value == self._built_value:
            self._built = True
            return True
        if not any(True for _ in self._hokusai_models()):
            self._set_state(_BUILT, self._built_value)
            self._built = True
        return self._built

    def _hokusai_models(self) -> Iterator[Any]:
        for model in self._queries.registered_models("hokusai_%"):
            if is_hokusai_model_name(model.name):
                yield model

    def _set_state(self, key: str, value: str | None, conn: sa.Connection | None = None) -> None:
        def write(connection: sa.Connection) -> None:
            connection.execute(sa.delete(state).where(state.c.key == key))
            if value is not None:
                connection.execute(sa.insert(state).values(key=key, value=value))

        if conn is not None:
            write(conn)
            return
        with write_transaction(self._engine) as connection:
            write(connection)

    def _state(self, key: str) -> str | None:
        with self._engine.connect() as conn:
            value = conn.execute(sa.select(state.c.value).where(state.c.key == key)).scalar()
        return str(value) if value is not None else None

    # ---- writes ------------------------------------------------------------------------

    def put(self, conn: sa.Connection, entry: IndexEntry) -> None:
        """Insert or replace ``entry``'s row (its family root resolved here)."""
        root_id = entry.root_id or self._root_id(conn, entry)
        values = {
            "model_name": entry.model_name,
            "version": int(entry.version),
            "registration_run_id": entry.registration_run_id,
            "model_uuid": entry.model_uuid,
            "model_type": entry.model_type,
            "is_baseline": entry.is_baseline,
            "baseline_id": entry.baseline_id,
            "root_id": root_id,
            "contributor": entry.listed_contributor,
            "created_at": entry.created_at,
            "stage": entry.stage,
            "document": entry.document(),
            "indexed_at": self._clock(),
        }
        conn.execute(
            sa.delete(versions).where(
                versions.c.model_name == entry.model_name,
                versions.c.version == int(entry.version),
            )
        )
        conn.execute(sa.insert(versions).values(**values))
        # The version's aliases as MLflow had them when the entry was read.
        conn.execute(
            sa.delete(aliases).where(
                aliases.c.model_name == entry.model_name,
                aliases.c.version == int(entry.version),
                aliases.c.alias.not_in(entry.aliases) if entry.aliases else sa.true(),
            )
        )
        for alias in entry.aliases:
            self._put_alias(conn, entry.model_name, alias, entry.version)

    def _root_id(self, conn: sa.Connection, entry: IndexEntry) -> str:
        if entry.is_baseline or not entry.baseline_id:
            return entry.model_id
        try:
            name, version = parse_model_id(entry.baseline_id)
        except HokusaiError:
            return entry.model_id  # a legacy free-form baseline id: the oldest we can know
        parent_root = conn.execute(
            sa.select(versions.c.root_id).where(
                versions.c.model_name == name, versions.c.version == int(version)
            )
        ).scalar()
        if parent_root is not None:
            return str(parent_root)
        parent = self._queries.record(name, version)
        if parent is None:
            return entry.model_id
        return self._queries.root_of(parent).model_id

    def _put_alias(self, conn: sa.Connection, name: str, alias: str, version: str) -> None:
        conn.execute(
            sa.delete(aliases).where(aliases.c.model_name == name, aliases.c.alias == alias)
        )
        conn.execute(sa.insert(aliases).values(model_name=name, alias=alias, version=int(version)))

    def set_alias(self, name: str, alias: str, version: str | None) -> None:
        """Record an alias move Hokusai made (``version`` None: the alias was removed), so the
        next read shows it without waiting for a sync."""
        with write_transaction(self._engine) as conn:
            if version is None:
                conn.execute(
                    sa.delete(aliases).where(aliases.c.model_name == name, aliases.c.alias == alias)
                )
            else:
                self._put_alias(conn, name, alias, version)

    def remove(self, conn: sa.Connection, name: str, version: str) -> None:
        """Forget a version (deleted, or no longer a registered Hokusai version)."""
        conn.execute(
            sa.delete(versions).where(
                versions.c.model_name == name, versions.c.version == int(version)
            )
        )
        conn.execute(
            sa.delete(aliases).where(
                aliases.c.model_name == name, aliases.c.version == int(version)
            )
        )

    def holds(self, conn: sa.Connection, name: str, version: str, run_id: str | None) -> bool:
        """Whether the index has this version (of this registration run)."""
        found = conn.execute(
            sa.select(versions.c.registration_run_id).where(
                versions.c.model_name == name, versions.c.version == int(version)
            )
        ).first()
        return found is not None and (run_id is None or found[0] in (None, run_id))

    # ---- reads -------------------------------------------------------------------------

    def answers(self) -> bool:
        """Whether reads may be answered from the index now (built, and synced recently
        enough); syncs first when the last sync is too old."""
        return self.built() and self.ensure_fresh()

    def ensure_fresh(self) -> bool:
        """Sync with MLflow unless this process did within the staleness bound; False when the
        index cannot be made fresh (MLflow unreachable): then it must not answer, since it
        may be older than the bound promises."""
        if self._clock() - self._last_sync <= self._max_staleness:
            return True
        try:
            with self._sync_lock:  # threads that waited here find it synced by the first
                if self._clock() - self._last_sync <= self._max_staleness:
                    return True
                self.sync()
        except Exception as exc:  # noqa: BLE001 - the caller asks MLflow, which says what is wrong
            logger.info("registry index: sync with MLflow failed (%s)", mask_secrets(str(exc)))
            return False
        return True

    def by_uuid(self, model_uuid: str) -> ModelVersionInfo | None:
        """The indexed version registered from ``model_uuid`` (the newest, if several)."""
        rows = read_rows(self._engine, _BY_UUID, {"model_uuid": model_uuid})
        if not rows:
            return None
        row = rows[0]
        names = {
            (row.model_name, int(row.version)): [
                r.alias
                for r in rows
                if r.alias is not None
                and (r.model_name, r.version) == (row.model_name, row.version)
            ]
        }
        document = json.loads(row.document)
        found: ModelVersionInfo = self._described(document["describe"], row, names)
        return found

    def get(self, model_id: str) -> ModelVersionInfo | None:
        """The indexed version ``name/version`` (None when the index does not hold it)."""
        try:
            name, version = parse_model_id(model_id)
        except HokusaiError:
            return None
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    versions.c.model_name, versions.c.version, versions.c.stage, versions.c.document
                ).where(versions.c.model_name == name, versions.c.version == int(version))
            ).first()
            if row is None:
                return None
            names = self._aliases(conn, [row.model_name])
        found: ModelVersionInfo = self._described(json.loads(row.document)["describe"], row, names)
        return found

    def lineage(self, model_id: str) -> list[LineageEntry] | None:
        """Lineage from the index; None when the index does not hold ``model_id`` (the
        caller asks MLflow, which knows why)."""
        with self._engine.connect() as conn:
            if (
                isinstance(model_id, str)
                and "/" not in model_id
                and MODEL_NAME_RE.fullmatch(model_id)
            ):
                roots = [
                    r[0]
                    for r in conn.execute(
                        sa.select(versions.c.root_id)
                        .where(versions.c.model_name == model_id)
                        .order_by(versions.c.version)
                    )
                ]
            else:
                try:
                    name, version = parse_model_id(model_id)
                except HokusaiError:
                    return None
                root = conn.execute(
                    sa.select(versions.c.root_id).where(
                        versions.c.model_name == name, versions.c.version == int(version)
                    )
                ).scalar()
                roots = [] if root is None else [root]
            if not roots:
                return None
            families: list[list[Any]] = []
            done: set[str] = set()
            for root_id in roots:
                if root_id in done:
                    continue
                done.add(root_id)
                families.append(
                    list(conn.execute(sa.select(versions).where(versions.c.root_id == root_id)))
                )
            names = self._aliases(conn, sorted({r.model_name for f in families for r in f}))
        entries: list[LineageEntry] = []
        for root_id, rows in zip(dict.fromkeys(roots), families, strict=True):
            entries.extend(self._family(root_id, rows, names))
        return entries

    def _family(
        self, root_id: str, rows: list[Any], alias_map: dict[tuple[str, int], list[str]]
    ) -> list[LineageEntry]:
        by_id = {f"{r.model_name}/{r.version}": r for r in rows}
        root = by_id.get(root_id)
        if root is None:
            return []
        documents = {key: json.loads(r.document) for key, r in by_id.items()}
        children: dict[str, list[Any]] = {}
        for key, r in by_id.items():
            parent = documents[key].get("family_parent")
            if parent and key != root_id:
                children.setdefault(parent, []).append(r)
        entries: list[LineageEntry] = []
        queue: deque[tuple[Any, int, dict[str, float], int]] = deque([(root, 0, {}, 0)])
        seen: set[str] = set()
        while queue:
            row, depth, inherited, verified_bps = queue.popleft()
            model_id = f"{row.model_name}/{row.version}"
            if model_id in seen:
                continue
            seen.add(model_id)
            document = documents[model_id]
            deltas: dict[str, float] = document["lineage_deltas"]
            cumulative = dict(inherited)
            for name, delta in deltas.items():
                cumulative[name] = cumulative.get(name, 0.0) + delta
            description = self._described(document["describe"], row, alias_map)
            verified_bps += verified_improvement_bps(description["verification"])
            entries.append(
                {  # type: ignore[typeddict-item]
                    **description,
                    "metrics": document["metrics"],
                    "delta_metrics": deltas,
                    "depth": depth,
                    "parent_id": None if model_id == root_id else row.baseline_id,
                    "cumulative_improvement": {**cumulative, "total_improvements": depth},
                    "cumulative_verified_improvement_bps": verified_bps,
                }
            )
            for child in sorted(children.get(model_id, []), key=lambda r: r.created_at):
                queue.append((child, depth + 1, cumulative, verified_bps))
        return entries

    def contributor_models(self, address: str) -> list[ModelSummary]:
        """Every indexed version attributed to ``address``, oldest first."""
        checksum = normalize_contributor(address)
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    versions.c.model_name, versions.c.version, versions.c.stage, versions.c.document
                )
                .where(versions.c.contributor == checksum)
                .order_by(versions.c.created_at, versions.c.model_name, versions.c.version)
            ).all()
            names = self._aliases(conn, sorted({r.model_name for r in rows}))
        result: list[ModelSummary] = []
        for row in rows:
            summary = json.loads(row.document)["summary"]
            result.append(
                {**self._described(summary, row, names), "contributor": checksum}  # type: ignore[typeddict-item]
            )
        return result

    def search(
        self,
        *,
        query: str | None = None,
        model_type: str | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[ModelSummary], int]:
        """Indexed versions newest first, ``limit`` of them from ``offset``, and how many match
        in all: the web console's listing, one page in two indexed queries whatever the
        registry's size.

        ``query`` matches any part of the model name, type, contributor address or model uuid,
        in any letter case; ``kind`` is ``"baseline"`` or ``"improved"``.
        """
        conditions: list[Any] = []
        if query:
            pattern = "%" + _like_escape(query.lower()) + "%"
            conditions.append(
                sa.or_(
                    *(
                        sa.func.lower(column).like(pattern, escape="\\")
                        for column in (
                            versions.c.model_name,
                            versions.c.model_type,
                            versions.c.contributor,
                            versions.c.model_uuid,
                        )
                    )
                )
            )
        if model_type is not None:
            conditions.append(versions.c.model_type == model_type)
        if kind is not None:
            conditions.append(versions.c.is_baseline.is_(kind == "baseline"))
        listing = (
            sa.select(
                versions.c.model_name, versions.c.version, versions.c.stage, versions.c.document
            )
            .where(*conditions)
            .order_by(
                versions.c.created_at.desc(), versions.c.model_name, versions.c.version.desc()
            )
            .offset(max(0, offset))
        )
        if limit is not None:
            listing = listing.limit(limit)
        with self._engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(versions).where(*conditions)
            ).scalar_one()
            rows = conn.execute(listing).all()
            names = self._aliases(conn, sorted({r.model_name for r in rows}))
        found = [self._described(json.loads(row.document)["summary"], row, names) for row in rows]
        return found, int(total)

    @staticmethod
    def _aliases(conn: sa.Connection, names: list[str]) -> dict[tuple[str, int], list[str]]:
        if not names:
            return {}
        found: dict[tuple[str, int], list[str]] = {}
        for name, alias, version in conn.execute(
            sa.select(aliases.c.model_name, aliases.c.alias, aliases.c.version)
            .where(aliases.c.model_name.in_(names))
            .order_by(aliases.c.alias)
        ):
            found.setdefault((name, int(version)), []).append(alias)
        return found

    @staticmethod
    def _described(
        values: dict[str, Any], row: Any, alias_map: dict[tuple[str, int], list[str]]
    ) -> Any:
        described = dict(values)
        # Rows indexed before versions were verified have no such key: never verified then.
        described.setdefault("verification", None)
        described["stage"] = row.stage
        described["aliases"] = list(alias_map.get((row.model_name, int(row.version)), []))
        return described

    # ---- sync with MLflow --------------------------------------------------------------

    def sync(self) -> dict[str, int]:
        """Bring the index up to date with changes made in MLflow: aliases of every Hokusai
        registered model, and the versions of models changed since the last sync (added,
        deleted, stage moved). Returns counts of what changed."""
        with self._sync_lock:
            started = self._clock()
            counts = {"models": 0, "rescanned": 0, "added": 0, "removed": 0, "aliases": 0}
            if self._unchanged_since_last_sync():
                self._last_sync = started
                return counts
            with self._engine.connect() as conn:
                known = {r.model_name: r.last_updated_at for r in conn.execute(sa.select(models))}
                indexed_names = {
                    r[0] for r in conn.execute(sa.select(versions.c.model_name).distinct())
                }
                alias_rows = {
                    (r.model_name, r.alias): str(r.version)
                    for r in conn.execute(sa.select(aliases))
                }
            seen: set[str] = set()
            budget = _SYNC_ADD_LIMIT
            fingerprint: list[Any] = []
            all_synced = True
            for model in self._hokusai_models():
                counts["models"] += 1
                seen.add(model.name)
                updated = int(model.last_updated_timestamp or 0)
                fingerprint.append(_model_fingerprint(model.name, updated, model.aliases or {}))
                if known.get(model.name) != updated or (
                    model.name in indexed_names and model.name not in known
                ):
                    added, removed, complete = self._rescan(model.name, budget)
                    budget -= added
                    counts["rescanned"] += 1
                    counts["added"] += added
                    counts["removed"] += removed
                    if complete:
                        self._mark_model(model.name, updated)
                    else:
                        all_synced = False
                counts["aliases"] += self._sync_aliases(model, alias_rows)
            gone = (indexed_names | set(known)) - seen
            if gone:
                with write_transaction(self._engine) as conn:
                    for name in gone:
                        counts["removed"] += conn.execute(
                            sa.delete(versions).where(versions.c.model_name == name)
                        ).rowcount
                        conn.execute(sa.delete(aliases).where(aliases.c.model_name == name))
                        conn.execute(sa.delete(models).where(models.c.model_name == name))
            self._last_sync = started
            # What MLflow looked like when the index last matched it in full: a process that
            # finds MLflow unchanged (probe_registry) may answer from the index without MLflow.
            self._set_state(_FINGERPRINT, _fingerprint_text(fingerprint) if all_synced else None)
            if counts["added"] or counts["removed"] or counts["aliases"]:
                logger.info("registry index synced with MLflow: %s", counts)
            return counts

    def _unchanged_since_last_sync(self) -> bool:
        """Whether MLflow, read cheaply (:func:`probe_registry`), looks exactly as it did at the
        last complete sync — then there is nothing to compare. MLflow's own search of registered
        models reads every version behind them (most of a sync's cost on a big registry)."""
        if self._registry_uri is None:
            return False
        stored = self._state(_FINGERPRINT)
        return stored is not None and probe_registry(self._registry_uri) == stored

    def _mark_model(self, name: str, last_updated: int) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(sa.delete(models).where(models.c.model_name == name))
            conn.execute(
                sa.insert(models).values(
                    model_name=name, last_updated_at=last_updated, synced_at=self._clock()
                )
            )

    def _rescan(self, name: str, budget: int) -> tuple[int, int, bool]:
        """Compare the versions of ``name`` in MLflow with the index: (added, removed, whether
        every missing version could be added within ``budget``).

        A database store is listed straight from MLflow's tables (one query, tens of
        milliseconds for 100k versions); otherwise every version is paged through MLflow's
        search (seconds at that size). Only versions the index lacks are then read in full."""
        listed = self._listing_from_tables(name)
        if listed is None:
            listed = {}
            named = equals("name", name)
            for mv in self._queries.search(named.text):
                if named.admits(mv.name):
                    record = VersionRecord.from_version(mv)
                    listed[str(mv.version)] = _Listed(
                        record.stage,
                        record.registration_run_id,
                        record.tags.get(TAG_REGISTRATION_STATE),
                        mv,
                    )
        with self._engine.connect() as conn:
            rows = {
                str(r.version): r
                for r in conn.execute(
                    sa.select(
                        versions.c.version, versions.c.registration_run_id, versions.c.stage
                    ).where(versions.c.model_name == name)
                )
            }
        removed = added = 0
        complete = True
        with write_transaction(self._engine) as conn:
            for version, row in rows.items():
                seen = listed.get(version)
                if seen is None or not seen.complete or not seen.same_run(row.registration_run_id):
                    self.remove(conn, name, version)
                    removed += 1
                elif seen.stage != row.stage:
                    conn.execute(
                        sa.update(versions)
                        .where(versions.c.model_name == name, versions.c.version == int(version))
                        .values(stage=seen.stage)
                    )
        for version, seen in sorted(listed.items(), key=lambda item: int(item[0])):
            if version in rows and seen.same_run(rows[version].registration_run_id):
                continue
            if added >= budget:
                complete = False
                break
            if seen.state == REGISTERING:
                # Its registration writes its row when it completes; should it crash first,
                # this model stays "changed" so a later sync adds the row.
                complete = False
                continue
            if seen.mv is not None:
                entry = IndexEntry.from_mlflow(self._queries, seen.mv)
            else:
                fetched = self._queries.record(name, version)
                entry = IndexEntry.from_record(self._queries, fetched) if fetched else None
            if entry is None:
                continue
            with write_transaction(self._engine) as conn:
                self.put(conn, entry)
            added += 1
        return added, removed, complete

    def _listing_from_tables(self, name: str) -> dict[str, _Listed] | None:
        if self._registry_uri is None or not self._registry_uri.startswith(_SQL_SCHEMES):
            return None
        try:
            return _list_versions_sql(self._registry_uri, name)
        except Exception as exc:  # noqa: BLE001 - MLflow's own search still works
            logger.debug("listing %s from MLflow's tables failed (%s)", name, exc)
            return None

    def _sync_aliases(self, model: Any, alias_rows: dict[tuple[str, str], str]) -> int:
        wanted = {str(alias): str(version) for alias, version in (model.aliases or {}).items()}
        have = {alias: v for (name, alias), v in alias_rows.items() if name == model.name}
        if wanted == have:
            return 0
        with write_transaction(self._engine) as conn:
            conn.execute(sa.delete(aliases).where(aliases.c.model_name == model.name))
            for alias, version in wanted.items():
                conn.execute(
                    sa.insert(aliases).values(
                        model_name=model.name, alias=alias, version=int(version)
                    )
                )
        return 1

    def keep(self, stop: threading.Event) -> None:
        """Keep the index built and fresh until ``stop`` is set (a long-running process's
        background thread): rebuild it when it is not built, then sync at twice the staleness
        bound's rate, so reads never wait for a sync."""
        interval = max(0.5, self._max_staleness / 2)
        while not stop.is_set():
            try:
                if not self.built():
                    logger.info("registry index not built yet: rebuilding it from MLflow")
                    report = self.reindex()
                    logger.info("registry index built: %s", report.to_dict())
                else:
                    self.sync()
            except Exception as exc:  # noqa: BLE001 - retried at the next tick
                logger.warning(
                    "registry index upkeep failed (%s); retrying", mask_secrets(str(exc))
                )
            stop.wait(interval)

    # ---- rebuild and check ---------------------------------------------------------------

    def reindex(
        self, *, restart: bool = False, on_progress: ProgressCallback | None = None
    ) -> ReindexReport:
        """Rebuild the index from MLflow, model by model, version by version (one page in
        memory at a time). Resumable: an interrupted run continues where it stopped, unless
        ``restart``. Marks the index built when done."""
        report = ReindexReport()
        cursor = None if restart else self._state(_REINDEX_CURSOR)
        if restart:
            self._set_state(_BUILT, None)
            self._built = False
        resume_model, _, resume_version = cursor.rpartition("/") if cursor else ("", "", "")
        report.resumed_from = cursor
        names = sorted(model.name for model in self._hokusai_models())
        total = None
        for name in names:
            if resume_model and name < resume_model:
                continue
            report.models += 1
            # Read before the scan: a change during the scan leaves the model "changed", so
            # the next sync rescans it.
            last_updated = self._last_updated(name)
            named = equals("name", name)
            present: set[str] = set()
            for mv in self._queries.search(named.text, order_by=["version_number ASC"]):
                if not named.admits(mv.name):
                    continue
                version = str(mv.version)
                present.add(version)
                report.versions_seen += 1
                if name == resume_model and resume_version and int(version) <= int(resume_version):
                    continue
                entry = IndexEntry.from_mlflow(self._queries, mv)
                with write_transaction(self._engine) as conn:
                    if entry is None:
                        self.remove(conn, name, version)
                    else:
                        self.put(conn, entry)
                        report.indexed += 1
                    self._set_state(_REINDEX_CURSOR, f"{name}/{version}", conn)
                if on_progress is not None:
                    on_progress(name, report.versions_seen, total)
            with write_transaction(self._engine) as conn:
                stale = [
                    str(r[0])
                    for r in conn.execute(
                        sa.select(versions.c.version).where(versions.c.model_name == name)
                    )
                    if str(r[0]) not in present
                ]
                for version in stale:
                    self.remove(conn, name, version)
                report.removed += len(stale)
            if last_updated is not None:
                self._mark_model(name, last_updated)
            resume_model = resume_version = ""
        with write_transaction(self._engine) as conn:
            gone = [
                r[0]
                for r in conn.execute(sa.select(versions.c.model_name).distinct())
                if r[0] not in names
            ]
            for name in gone:
                report.removed += conn.execute(
                    sa.delete(versions).where(versions.c.model_name == name)
                ).rowcount
                conn.execute(sa.delete(aliases).where(aliases.c.model_name == name))
            self._set_state(_REINDEX_CURSOR, None, conn)
            self._set_state(_BUILT, self._built_value, conn)
        self._built = True
        report.built = True
        self._last_sync = float("-inf")
        self.sync()  # aliases, and whatever changed during the rebuild
        return report

    def _last_updated(self, name: str) -> int | None:
        try:
            model = self._queries.registered_model(name)
        except ModelNotFoundError:
            return None
        return int(model.last_updated_timestamp or 0)

    def check(self, *, on_progress: ProgressCallback | None = None) -> DriftReport:
        """Compare every indexed answer with what MLflow answers (slow: reads all of MLflow)."""
        report = DriftReport(built=self.built())
        with self._engine.connect() as conn:
            indexed = {f"{r.model_name}/{r.version}": r for r in conn.execute(sa.select(versions))}
            alias_map = self._aliases(conn, sorted({r.model_name for r in indexed.values()}))
        seen = 0
        for model in self._hokusai_models():
            named = equals("name", model.name)
            for mv in self._queries.search(named.text):
                if not named.admits(mv.name):
                    continue
                entry = IndexEntry.from_mlflow(self._queries, mv)
                seen += 1
                if on_progress is not None:
                    on_progress(model.name, seen, None)
                if entry is None:
                    continue
                row = indexed.pop(entry.model_id, None)
                if row is None:
                    report.missing.append(entry.model_id)
                    continue
                document = json.loads(row.document)
                fields = [
                    key
                    for key, value in entry.description.items()
                    if document["describe"].get(key) != value
                ]
                if row.stage != entry.stage:
                    fields.append("stage")
                if document["metrics"] != entry.metrics:
                    fields.append("metrics")
                if fields:
                    report.different.append(f"{entry.model_id}: {', '.join(sorted(fields))}")
            wanted = {str(a): str(v) for a, v in (model.aliases or {}).items()}
            have = {
                alias: str(version)
                for (name, version), names in alias_map.items()
                if name == model.name
                for alias in names
            }
            for alias in sorted(set(wanted) | set(have)):
                if wanted.get(alias) != have.get(alias):
                    report.aliases.append(
                        f"{model.name}@{alias}: index {have.get(alias)} "
                        f"→ mlflow {wanted.get(alias)}"
                    )
        report.extra = sorted(indexed)
        return report


# ---- answering without MLflow --------------------------------------------------------------


def _like_escape(text: str) -> str:
    """``text`` matched literally inside a ``LIKE`` pattern (``\\`` is the escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _registry_key(registry_uri: str | None) -> str:
    if registry_uri is None:
        return "true"
    return "registry:" + hashlib.sha256(registry_uri.encode()).hexdigest()[:32]


def _model_fingerprint(name: str, last_updated: int, model_aliases: Any) -> list[Any]:
    pairs = (
        model_aliases.items()
        if isinstance(model_aliases, dict)
        else ((a["alias"], a["version"]) for a in model_aliases)
    )
    return [name, int(last_updated), sorted([str(a), str(v)] for a, v in pairs)]


def _fingerprint_text(fingerprint: list[Any]) -> str:
    return json.dumps(sorted(fingerprint), separators=(",", ":"))


def probe_registry(registry_uri: str, *, timeout: float = 5.0) -> str | None:
    """What :meth:`RegistryIndex.sync` compares — every Hokusai registered model's name,
    last-update time and aliases — read without MLflow's client (whose import alone costs
    seconds): from MLflow's tables for a database store, from its REST API for a tracking
    server. None when the store is neither (or cannot be read this way)."""
    try:
        if registry_uri.startswith(("http://", "https://")):
            return _probe_http(registry_uri, timeout)
        if registry_uri.startswith(("sqlite:", "postgresql", "mysql", "mssql")):
            return _probe_sql(registry_uri)
    except Exception:
        logger.debug("registry probe failed", exc_info=True)
    return None


_PROBE_ENGINES: dict[str, sa.Engine] = {}


@dataclass(frozen=True)
class _Listed:
    """What a rescan needs of one version MLflow lists."""

    stage: str | None
    registration_run_id: str | None
    state: str | None
    mv: Any = None

    @property
    def complete(self) -> bool:
        return self.state in (None, COMPLETE)

    def same_run(self, indexed_run_id: str | None) -> bool:
        return indexed_run_id is None or self.registration_run_id == indexed_run_id


_SQL_SCHEMES = ("sqlite:", "postgresql", "mysql", "mssql")

_VERSIONS_SQL = sa.text(
    "SELECT mv.version, mv.current_stage, "
    "(SELECT t.value FROM model_version_tags t WHERE t.name = mv.name "
    " AND t.version = mv.version AND t.key = :run_key) AS run_id, "
    "(SELECT t.value FROM model_version_tags t WHERE t.name = mv.name "
    " AND t.version = mv.version AND t.key = :state_key) AS state "
    "FROM model_versions mv WHERE mv.name = :name AND mv.current_stage <> :deleted"
)


def _list_versions_sql(uri: str, name: str) -> dict[str, _Listed]:
    """The live versions of ``name`` with their stage, registration run and state, read from
    MLflow's tables (deleted versions stay there with the stage ``Deleted_Internal``)."""
    engine = _probe_engine(uri)
    if engine is None:
        raise FileNotFoundError(uri)
    with engine.connect() as conn:
        return {
            str(version): _Listed(None if stage in (None, "None") else str(stage), run_id, state)
            for version, stage, run_id, state in conn.execute(
                _VERSIONS_SQL,
                {
                    "name": name,
                    "run_key": TAG_REGISTRATION_RUN,
                    "state_key": TAG_REGISTRATION_STATE,
                    "deleted": "Deleted_Internal",
                },
            )
        }


def dispose_probes() -> None:
    """Close the connections the probes of MLflow's tables keep (see ``dispose_engines``)."""
    engines = list(_PROBE_ENGINES.values())
    _PROBE_ENGINES.clear()
    for engine in engines:
        engine.dispose()


def _probe_engine(uri: str) -> sa.Engine | None:
    engine = _PROBE_ENGINES.get(uri)
    if engine is None:
        if uri.startswith("sqlite:"):
            path = sa.engine.make_url(uri).database
            if not path or not os.path.exists(path):
                return None
        engine = _PROBE_ENGINES.setdefault(uri, sa.create_engine(uri, hide_parameters=True))
    return engine


def _probe_sql(uri: str) -> str | None:
    engine = _probe_engine(uri)
    if engine is None:
        return None
    with engine.connect() as conn:
        found = {
            name: [name, int(updated or 0), []]
            for name, updated in conn.execute(
                sa.text(
                    "SELECT name, last_updated_time FROM registered_models "
                    "WHERE name LIKE 'hokusai%'"
                )
            )
            if is_hokusai_model_name(name)
        }
        for name, alias, version in conn.execute(
            sa.text(
                "SELECT name, alias, version FROM registered_model_aliases "
                "WHERE name LIKE 'hokusai%'"
            )
        ):
            if name in found:
                found[name][2].append([str(alias), str(version)])
    return _fingerprint_text([_model_fingerprint(n, u, dict(a)) for n, u, a in found.values()])


def _probe_http(uri: str, timeout: float) -> str | None:
    import httpx

    headers = {}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    auth = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
        auth = (
            os.environ["MLFLOW_TRACKING_USERNAME"],
            os.environ.get("MLFLOW_TRACKING_PASSWORD", ""),
        )
    fingerprint: list[Any] = []
    token_param = None
    with httpx.Client(base_url=uri.rstrip("/"), timeout=timeout, headers=headers, auth=auth) as c:
        while True:
            params: dict[str, str | int] = {"filter": "name LIKE 'hokusai%'", "max_results": 1000}
            if token_param:
                params["page_token"] = token_param
            response = c.get("/api/2.0/mlflow/registered-models/search", params=params)
            if response.status_code != 200:
                return None
            body = response.json()
            for model in body.get("registered_models", []):
                if is_hokusai_model_name(model.get("name", "")):
                    fingerprint.append(
                        _model_fingerprint(
                            model["name"],
                            int(model.get("last_updated_timestamp") or 0),
                            model.get("aliases") or [],
                        )
                    )
            token_param = body.get("next_page_token")
            if not token_param:
                return _fingerprint_text(fingerprint)


def open_fast_index(settings: Any) -> RegistryIndex | None:
    """The index of ``settings``' registry when it can answer reads right now without MLflow:
    built, and MLflow unchanged since its last complete sync (as :func:`probe_registry` reads
    it). None otherwise — then the caller reads through the registry, which syncs."""
    if not settings.registry_index:
        return None
    from hokusai.db import open_database

    engine = open_database(settings.resolved_database_url, migrate=settings.database_auto_migrate)
    index = RegistryIndex(engine, None, registry_uri=settings.resolved_registry_uri)
    if index._state(_BUILT) != index._built_value:
        return None
    stored = index._state(_FINGERPRINT)
    if stored is None or probe_registry(settings.resolved_registry_uri) != stored:
        return None
    return index
