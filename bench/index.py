"""Registry index: lineage, contributor listing and uuid lookup at 1,000 and 100,000 versions.

The index (``HokusaiModelRegistry.get_model_lineage`` / ``get_contributor_models`` /
``get_model_by_uuid`` once the index is built) against the MLflow-backed path the reads took
before it (``registry.queries.lineage`` / ``contributor_models`` / ``by_uuid``), with the project
database on SQLite and on PostgreSQL, embedded and through a remote ``mlflow server``; and the
cost a registration pays to write its index row. See bench/README.md.

How the store is built. Real registrations through ``HokusaiModelRegistry`` (a tiny
LogisticRegression, explicit pip requirements): a family of a baseline and 20 chained
improvements (``bench_family``), and one contributor's four improvements of another baseline
(``bench_contrib``). That store is copied once per size and grown to the size by bulk inserts
(``executemany``, one transaction per 5,000 versions), never through MLflow's API — registering
100,000 models would take hours:

* MLflow's tables (``sqlite3`` on the store's file, the columns of MLflow's SQLAlchemy models):
  ``registered_models`` (one row per new name; ``last_updated_time`` set to the newest version,
  as ``create_model_version`` does), ``model_versions`` (a real version's row with name, version,
  times, ``source`` and ``storage_location`` replaced) and ``model_version_tags`` (the real
  version's ``hokusai.*`` tags with model type, uuid, baseline, contributor and deltas replaced);
* the index's tables (SQLAlchemy Core, the same rows on SQLite and on PostgreSQL):
  ``hokusai_index_versions`` (the real version's row and JSON document with the same fields
  replaced, the family root resolved as ``RegistryIndex.put`` does) and ``hokusai_index_models``
  (each model's last-update time, so the first sync finds nothing changed).

A quarter of the filler (``--same-type-share``) goes to the family's own registered models
(baselines of other families and improvements on them): the MLflow path's lineage reads every
improved version of the family's type, so that is what made it slow. The rest is spread over
eight other types, improvements credited to 200 other contributors. Filler versions have no
logged model or run of their own (they reuse a real run): no timed read touches them except as
rows to skip. Two filler versions per size are checked against what the index would have
written for them from MLflow (``IndexEntry.from_mlflow``; their MLmodel file is written for it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import sqlite3
import sys
import time
import uuid as uuid_module
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as common
import _procs as procs
from _common import fmt_ms, fmt_ratio, goal, progress, ratio, summarize

NAME = "index"
GOAL_SIZES = (1_000, 100_000)
GOAL_P50_S = {"lineage": 0.030, "contributor": 0.005, "uuid": 0.002}
GOAL_GROWTH = 1.3
GOAL_REMOTE = 2.0
GOAL_RECORD_P50_S = 0.002
READS = ("lineage", "contributor", "uuid")
READ_LABELS = {
    "lineage": "lineage of a 21-version family",
    "contributor": "contributor listing (4 versions)",
    "uuid": "uuid lookup",
}
# Before the index (issue #11's figures: embedded SQLite medians, this machine's kind).
OLD_FIGURES_S = {
    "embedded": {"lineage": 0.158, "contributor": 0.009},
    "embedded_with_5000_more_of_the_type": {"lineage": 1.367, "contributor": 0.015},
    "remote_mlflow_server": {"uuid": 0.0245, "lineage_of_6": 0.198, "contributor_of_5": 0.026},
}
FAMILY_TYPE = "bench_family"
CONTRIB_TYPE = "bench_contrib"
WRITE_TYPE = "bench_write"
CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
FAMILY_CONTRIBUTORS = (
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
)
FILLER_TYPES = ("lead_scoring", "churn", "fraud", "credit_risk", "demand_forecast", "sentiment")
FILLER_TYPES += ("ranking", "pricing")
CHUNK = 5_000
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.Parser(__doc__)
    sizes = "comma-separated registry sizes in versions, ascending"
    parser.sized("--sizes", [200, 2_000], list(GOAL_SIZES), sizes, type=common.comma_ints)
    parser.sized("--reps", 30, 400, "timed index reads per read, size and backend")
    parser.add_argument("--warmup", type=int, default=10, help="untimed index reads first")
    old = "timed reads of the MLflow path per read and size (at most)"
    parser.sized("--mlflow-reps", 5, 30, old)
    budget = "seconds the MLflow path may take per read, size and mode (fewer reps past it)"
    parser.sized("--mlflow-budget", 2.0, 40.0, budget, type=float)
    parser.sized("--registrations", 3, 15, "registrations timed per size, backend and mode")
    parser.add_argument("--family-size", type=int, default=21, help="versions in the family")
    share = "share of the filler in the family's own registered models (default 0.25)"
    parser.add_argument("--same-type-share", type=float, default=0.25, help=share)
    parser.add_argument("--contributors", type=int, default=200, help="filler contributors")
    backends = "comma-separated project databases: sqlite,postgresql (default both)"
    parser.add_argument("--backends", default="sqlite,postgresql", help=backends)
    admin = f"PostgreSQL admin URL (default {POSTGRES_ADMIN_URL}); fresh databases made, dropped"
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL, help=admin)
    remote = "skip the remote mlflow server measurement"
    parser.add_argument("--skip-remote", action="store_true", help=remote)
    remote_old = "largest size at which the MLflow path is also timed through mlflow server"
    parser.sized("--remote-mlflow-path-max-size", 200, 1_000, remote_old)
    parser.add_argument("--seed", type=int, default=0, help="random seed (filler, targets)")
    store = "where the temporary stores are made (default /dev/shm when writable)"
    parser.add_argument("--store-dir", type=Path, default=None, help=store)
    args = parser.parse(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    parser.require(
        bool(args.backends) and set(args.backends) <= set(BACKENDS),
        "--backends must name sqlite and/or postgresql",
    )
    ascending = all(a < b for a, b in zip(args.sizes, args.sizes[1:], strict=False))
    parser.require(ascending and args.sizes[0] >= 100, "--sizes must be ascending, ≥ 100")
    parser.require(args.family_size >= 2, "--family-size must be ≥ 2")
    parser.require(0 <= args.same_type_share <= 1, "--same-type-share must be within 0..1")
    parser.require(args.reps >= 2 and args.mlflow_reps >= 1, "--reps ≥ 2, --mlflow-reps ≥ 1")
    if args.store_dir is None:
        shm = Path("/dev/shm")
        args.store_dir = shm if shm.is_dir() and shutil.disk_usage(shm).free > 4e9 else None
    return args


# ---- real registrations ----------------------------------------------------------------------


@dataclass
class Real:
    """What the real registrations made: the ids the timed reads use."""

    family: list[str]
    """model ids of the family, baseline first; the last is the leaf lineage is asked of."""
    contributor_versions: list[str]
    uuids: list[str]
    seconds: float
    record_step_s: list[float]


def tiny_model() -> tuple[Any, Any]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.RandomState(0)
    features = rng.rand(40, 4)
    target = (features[:, 0] > 0.5).astype(int)
    return LogisticRegression().fit(features, target), features[:3]


PIP = ["scikit-learn"]


def register_real(registry: Any, family_size: int, contributor_versions: int = 4) -> Real:
    """The family (baseline + chained improvements) and the contributor's versions."""
    model, _ = tiny_model()
    started = time.perf_counter()
    with timed_record_step() as record_step:
        base = registry.register_baseline(
            model, FAMILY_TYPE, {"family": "bench"}, metrics={"accuracy": 0.8}, pip_requirements=PIP
        )
        family, uuids = [base["model_id"]], [base["model_uuid"]]
        for index in range(family_size - 1):
            improved = registry.register_improved_model(
                model,
                family[-1],
                {"accuracy": 0.005, "f1": 0.002},
                FAMILY_CONTRIBUTORS[index % len(FAMILY_CONTRIBUTORS)],
                metrics={"accuracy": 0.8 + 0.005 * (index + 1)},
                pip_requirements=PIP,
            )
            family.append(improved["model_id"])
            uuids.append(improved["model_uuid"])
        other = registry.register_baseline(model, CONTRIB_TYPE, {}, pip_requirements=PIP)
        uuids.append(other["model_uuid"])
        mine = []
        for index in range(contributor_versions):
            improved = registry.register_improved_model(
                model,
                other["model_id"],
                {"auc": 0.01 * (index + 1)},
                CONTRIBUTOR,
                pip_requirements=PIP,
            )
            mine.append(improved["model_id"])
            uuids.append(improved["model_uuid"])
    return Real(family, mine, uuids, time.perf_counter() - started, record_step)


@contextlib.contextmanager
def timed_record_step() -> Iterator[list[float]]:
    """Time ``RegistrationWriter._record`` — the entry built from the registration, its
    ``RegistryIndex.put`` and the ``model_registered`` event in one transaction, committed —
    on every registration made meanwhile."""
    from hokusai.registry.registration import RegistrationWriter

    samples: list[float] = []
    original = RegistrationWriter._record

    def timed(self: Any, *args: Any, **kwargs: Any) -> None:
        start = time.perf_counter()
        try:
            original(self, *args, **kwargs)
        finally:
            samples.append(time.perf_counter() - start)

    RegistrationWriter._record = timed  # type: ignore[method-assign]
    try:
        yield samples
    finally:
        RegistrationWriter._record = original  # type: ignore[method-assign]


# ---- bulk filler -----------------------------------------------------------------------------


@dataclass
class Template:
    """A real version as MLflow and the index hold it, for filler to copy."""

    version_row: dict[str, Any]
    tags: dict[str, str]
    index_row: dict[str, Any]
    document: dict[str, Any]
    model_uuid: str


def _templates(mlflow_db: Path, index_url: str) -> dict[bool, Template]:
    """A real baseline (True) and a real improved version (False) to copy."""
    import sqlalchemy as sa

    from hokusai.registry.index import index_tables

    versions = index_tables()[0]
    engine = sa.create_engine(index_url)
    found: dict[bool, Template] = {}
    with contextlib.closing(sqlite3.connect(mlflow_db)) as db, engine.connect() as conn:
        db.row_factory = sqlite3.Row
        for is_baseline in (True, False):
            row = (
                conn.execute(
                    sa.select(versions)
                    .where(versions.c.is_baseline == is_baseline)
                    .order_by(versions.c.created_at.desc())
                    .limit(1)
                )
                .mappings()
                .one()
            )
            key = (row["model_name"], row["version"])
            mv = dict(
                db.execute(
                    "SELECT * FROM model_versions WHERE name = ? AND version = ?", key
                ).fetchone()
            )
            tags = dict(
                db.execute(
                    "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?", key
                ).fetchall()
            )
            found[is_baseline] = Template(
                dict(mv), tags, dict(row), json.loads(row["document"]), row["model_uuid"]
            )
    engine.dispose()
    return found


@dataclass
class FillReport:
    versions_added: int = 0
    uuids: list[str] = field(default_factory=list)
    mlflow_seconds: float = 0.0
    index_seconds: dict[str, float] = field(default_factory=dict)
    generate_seconds: float = 0.0
    names: int = 0
    same_type: int = 0
    samples: list[tuple[str, int]] = field(default_factory=list)
    """The first filler baseline and improvement (checked against ``from_mlflow``)."""
    templates: dict[str, tuple[str, str]] = field(default_factory=dict)
    """model id → (template uuid, template storage location) of the sampled versions."""

    def as_json(self) -> dict[str, Any]:
        return {
            "versions_added": self.versions_added,
            "registered_model_names_used": self.names,
            "in_the_familys_registered_models": self.same_type,
            "seconds_generating_rows": self.generate_seconds,
            "seconds_inserting_mlflow_tables": self.mlflow_seconds,
            "seconds_inserting_index_tables": self.index_seconds,
        }


def fill_direct(
    mlflow_db: Path,
    index_urls: dict[str, str],
    total: int,
    rng: random.Random,
    *,
    family_type: str | None = FAMILY_TYPE,
    same_type_share: float = 0.25,
    filler_types: Sequence[str] = FILLER_TYPES,
    contributors: int = 200,
    keep_uuids: bool = False,
) -> FillReport:
    """Grow the store to ``total`` versions with bulk inserts into MLflow's tables (SQLite
    file ``mlflow_db``) and into the index tables of every project database in
    ``index_urls`` (backend → URL, already migrated and holding the real rows)."""
    import sqlalchemy as sa

    from hokusai.registry.index import index_tables
    from hokusai.registry.records import (
        TAG_BASELINE_ID,
        TAG_CONTRIBUTOR,
        TAG_DELTA_METRICS,
        TAG_IS_BASELINE,
        TAG_MODEL_TYPE,
        TAG_MODEL_UUID,
        iso_timestamp,
    )

    report = FillReport()
    first_url = next(iter(index_urls.values()))
    templates = _templates(mlflow_db, first_url)
    versions_table, _, models_table, _ = index_tables()
    engines = {backend: sa.create_engine(url) for backend, url in index_urls.items()}
    addresses = [_address(rng) for _ in range(contributors)]
    db = sqlite3.connect(mlflow_db, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    try:
        existing = db.execute("SELECT count(*) FROM model_versions").fetchone()[0]
        to_add = total - existing
        if to_add <= 0:
            return report
        next_version = dict(
            db.execute("SELECT name, max(version) FROM model_versions GROUP BY name")
        )
        names_before = {r[0] for r in db.execute("SELECT name FROM registered_models")}
        oldest = db.execute("SELECT min(creation_time) FROM model_versions").fetchone()[0]
        # Filler was registered before the real versions (a registry's history), 1 ms apart.
        clock = int(oldest) - to_add - 1000
        version_columns = list(templates[True].version_row)
        baselines: dict[str, list[tuple[str, str]]] = {}  # type → [(model_id, root_id)]
        for t in [family_type, *filler_types] if family_type else filler_types:
            baselines[t] = []
        new_names: dict[str, int] = {}
        index_columns = [c.name for c in versions_table.columns]
        sampled: set[bool] = set()
        done = 0
        while done < to_add:
            chunk = min(CHUNK, to_add - done)
            started = time.perf_counter()
            mv_rows: list[tuple[Any, ...]] = []
            tag_rows: list[dict[str, Any]] = []
            index_rows: list[dict[str, Any]] = []
            for _ in range(chunk):
                same = family_type is not None and rng.random() < same_type_share
                model_type = family_type if same else rng.choice(list(filler_types))
                assert model_type is not None
                have = baselines[model_type]
                is_baseline = not have or rng.random() < 0.3
                template = templates[is_baseline]
                name = f"hokusai_{model_type}_{'baseline' if is_baseline else 'improved'}"
                version = next_version.get(name, 0) + 1
                next_version[name] = version
                if name not in names_before and name not in new_names:
                    new_names[name] = clock
                model_id = f"{name}/{version}"
                model_uuid = "m-" + uuid_module.UUID(int=rng.getrandbits(128)).hex
                clock += 1
                row = dict(template.version_row)
                row |= {"name": name, "version": version}
                row |= {"creation_time": clock, "last_updated_time": clock}
                for column in ("source", "storage_location"):
                    if row.get(column):
                        row[column] = row[column].replace(template.model_uuid, model_uuid)
                mv_rows.append(tuple(row[c] for c in version_columns))
                tags = dict(template.tags)
                tags |= {TAG_MODEL_TYPE: model_type, TAG_MODEL_UUID: model_uuid}
                tags[TAG_IS_BASELINE] = "true" if is_baseline else "false"
                baseline_id = contributor = None
                deltas: dict[str, float] = {}
                if is_baseline:
                    root_id = model_id
                else:
                    baseline_id, root_id = rng.choice(have)
                    contributor = rng.choice(addresses)
                    deltas = {"accuracy": round(rng.uniform(0.001, 0.05), 4)}
                    tags[TAG_BASELINE_ID] = baseline_id
                    tags[TAG_CONTRIBUTOR] = contributor
                    tags[TAG_DELTA_METRICS] = json.dumps(deltas, separators=(",", ":"))
                workspace = row.get("workspace")
                for key, value in tags.items():
                    tag: dict[str, Any] = {"key": key, "value": value, "name": name}
                    tag["version"] = version
                    if workspace is not None:
                        tag["workspace"] = workspace
                    tag_rows.append(tag)
                have.append((model_id, root_id))
                if same:
                    report.same_type += 1
                document = _document(
                    template,
                    name,
                    str(version),
                    model_type,
                    model_uuid,
                    is_baseline,
                    baseline_id,
                    contributor,
                    deltas,
                    clock,
                    iso_timestamp(clock),
                )
                index_row = dict(template.index_row)
                index_row |= {
                    "model_name": name,
                    "version": version,
                    "model_uuid": model_uuid,
                    "model_type": model_type,
                    "is_baseline": is_baseline,
                    "baseline_id": baseline_id,
                    "root_id": root_id,
                    "contributor": contributor,
                    "created_at": clock,
                    "stage": None,
                    "document": document,
                    "indexed_at": time.time(),
                }
                index_rows.append({c: index_row[c] for c in index_columns})
                if keep_uuids:
                    report.uuids.append(model_uuid)
                if is_baseline not in sampled:
                    sampled.add(is_baseline)
                    report.samples.append((name, version))
                    report.templates[model_id] = (
                        template.model_uuid,
                        str(template.version_row.get("storage_location") or ""),
                    )
            report.generate_seconds += time.perf_counter() - started
            started = time.perf_counter()
            db.execute("BEGIN")
            for name, created in new_names.items():
                if name not in names_before:
                    db.execute(
                        "INSERT INTO registered_models (name, creation_time, last_updated_time, "
                        "description) VALUES (?, ?, ?, NULL)",
                        (name, created, created),
                    )
                    names_before.add(name)
            columns, marks = ", ".join(version_columns), ", ".join("?" for _ in version_columns)
            db.executemany(
                f"INSERT INTO model_versions ({columns}) VALUES ({marks})",
                mv_rows,
            )
            tag_columns = list(tag_rows[0])
            db.executemany(
                f"INSERT INTO model_version_tags ({', '.join(tag_columns)}) VALUES "
                f"({', '.join('?' for _ in tag_columns)})",
                [tuple(t[c] for c in tag_columns) for t in tag_rows],
            )
            db.execute("COMMIT")
            report.mlflow_seconds += time.perf_counter() - started
            for backend, engine in engines.items():
                started = time.perf_counter()
                with engine.begin() as conn:
                    conn.execute(sa.insert(versions_table), index_rows)
                report.index_seconds[backend] = (
                    report.index_seconds.get(backend, 0.0) + time.perf_counter() - started
                )
            done += chunk
            report.versions_added = done
            if to_add > 4 * CHUNK and done % (4 * CHUNK) == 0:
                progress(f"{existing + done:,} / {total:,} versions")
        # What create_model_version leaves: each model's last update is its newest version.
        db.execute("BEGIN")
        db.execute(
            "UPDATE registered_models SET last_updated_time = (SELECT max(last_updated_time) "
            "FROM model_versions v WHERE v.name = registered_models.name) "
            "WHERE name IN (SELECT DISTINCT name FROM model_versions)"
        )
        db.execute("COMMIT")
        updated = dict(db.execute("SELECT name, last_updated_time FROM registered_models"))
        report.names = len(updated)
    finally:
        db.close()
    # The index saw every model at that last update: the first sync finds nothing changed.
    for backend, engine in engines.items():
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.delete(models_table))
            conn.execute(
                sa.insert(models_table),
                [
                    {"model_name": n, "last_updated_at": int(t or 0), "synced_at": time.time()}
                    for n, t in updated.items()
                    if n.startswith("hokusai_")
                ],
            )
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("ANALYZE")
        report.index_seconds[backend] += time.perf_counter() - started
        engine.dispose()
    return report


def _document(
    template: Template,
    name: str,
    version: str,
    model_type: str,
    model_uuid: str,
    is_baseline: bool,
    baseline_id: str | None,
    contributor: str | None,
    deltas: dict[str, float],
    created_at: int,
    timestamp: str | None,
) -> str:
    """The template's index document with this version's fields (what ``IndexEntry.document``
    would hold for it)."""
    document = json.loads(json.dumps(template.document))
    fields = {
        "model_id": f"{name}/{version}",
        "model_name": name,
        "version": version,
        "model_uuid": model_uuid,
        "model_type": model_type,
        "is_baseline": is_baseline,
        "baseline_id": baseline_id,
        "contributor": contributor,
        "delta_metrics": deltas,
        "registration_timestamp": timestamp,
    }
    describe = document["describe"]
    describe |= fields | {"created_at": created_at, "model_uri": f"models:/{model_uuid}"}
    if describe.get("artifact_path"):
        describe["artifact_path"] = describe["artifact_path"].replace(
            template.model_uuid, model_uuid
        )
    document["summary"] |= fields
    document["family_parent"] = baseline_id
    document["lineage_deltas"] = deltas
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _address(rng: random.Random) -> str:
    from eth_utils.address import to_checksum_address

    checksum: str = to_checksum_address("0x" + "".join(rng.choices("0123456789abcdef", k=40)))
    return checksum


def check_filler(registry: Any, index_url: str, fill: FillReport) -> dict[str, Any]:
    """Filler rows against what the index writes for the same version read from MLflow
    (``IndexEntry.from_mlflow``, its MLmodel file copied in for it). ``artifact_path`` is left
    out: filler has no logged model (the only field that comes from one)."""
    import sqlalchemy as sa

    from hokusai.registry.index import IndexEntry, index_tables

    versions = index_tables()[0]
    client = registry.client
    engine = sa.create_engine(index_url)
    results = []
    try:
        for name, version in fill.samples:
            mv = client.get_model_version(name, str(version))
            template_uuid, template_location = fill.templates[f"{name}/{version}"]
            source = common.local_path(template_location) / "MLmodel"
            target = common.local_path(template_location.replace(template_uuid, mv.source[8:]))
            target.mkdir(parents=True, exist_ok=True)
            text = source.read_text(encoding="utf-8").replace(template_uuid, mv.source[8:])
            (target / "MLmodel").write_text(text, encoding="utf-8")
            with engine.connect() as conn:
                row = (
                    conn.execute(
                        sa.select(versions).where(
                            versions.c.model_name == name, versions.c.version == version
                        )
                    )
                    .mappings()
                    .one()
                )
                entry = IndexEntry.from_mlflow(registry.queries, mv)
                assert entry is not None
                root = registry.index._root_id(conn, entry)
            stored = json.loads(row["document"])
            wanted = json.loads(entry.document())
            differ = []
            for part in ("describe", "summary"):
                for key in set(stored[part]) | set(wanted[part]):
                    if key != "artifact_path" and stored[part].get(key) != wanted[part].get(key):
                        differ.append(f"{part}.{key}")
            for key in ("metrics", "lineage_deltas", "family_parent"):
                if stored[key] != wanted[key]:
                    differ.append(key)
            columns = {
                "root_id": root,
                "contributor": entry.listed_contributor,
                "model_uuid": entry.model_uuid,
                "is_baseline": entry.is_baseline,
                "baseline_id": entry.baseline_id,
                "created_at": entry.created_at,
                "model_type": entry.model_type,
                "registration_run_id": entry.registration_run_id,
            }
            differ += [f"column {k}" for k, v in columns.items() if row[k] != v]
            results.append({"model_id": f"{name}/{version}", "differences": differ})
    finally:
        engine.dispose()
    return {"checked": results, "ok": all(not r["differences"] for r in results)}


# ---- stores ----------------------------------------------------------------------------------


@dataclass
class Cell:
    """One registry size on one project database."""

    size: int
    backend: str
    folder: Path
    url: str
    registry: Any = None
    fill: FillReport | None = None
    sync_seconds: list[float] = field(default_factory=list)
    first_sync: dict[str, int] | None = None


def open_registry(
    folder: Path, database_url: str, *, tracking_uri: str | None = None, index: bool = True
) -> Any:
    from hokusai.config import Settings
    from hokusai.services.model_registry import HokusaiModelRegistry

    settings = Settings(
        home=folder,
        tracking_uri=tracking_uri or f"sqlite:///{folder / 'mlflow.db'}",
        database_url=database_url,
        webhook_background=False,
        registry_index=index,
    )
    return HokusaiModelRegistry(settings=settings)


def sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (WAL included)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    with contextlib.closing(src), contextlib.closing(dst):
        src.backup(dst)


def copy_project_database(source_url: str, target_url: str) -> None:
    """Every row of one project database (the index, the outbox with the real registrations'
    events, the keys) into another one, migrated here: the PostgreSQL copy of a store."""
    import sqlalchemy as sa

    from hokusai.db import VERSION_TABLE, open_database

    target = open_database(target_url, migrate=True)
    source = sa.create_engine(source_url)
    tables = sa.MetaData()
    tables.reflect(bind=target)
    try:
        with source.connect() as read, target.begin() as write:
            present = set(sa.inspect(source).get_table_names())
            for table in reversed(tables.sorted_tables):
                if table.name != VERSION_TABLE:
                    write.execute(sa.delete(table))
            for table in tables.sorted_tables:
                if table.name == VERSION_TABLE or table.name not in present:
                    continue
                flags = [c.name for c in table.columns if isinstance(c.type, sa.Boolean)]
                rows = [
                    dict(r) for r in read.execute(sa.text(f"SELECT * FROM {table.name}")).mappings()
                ]
                for row in rows:
                    for name in flags:
                        if row.get(name) is not None:
                            row[name] = bool(row[name])
                if rows:
                    write.execute(sa.insert(table), rows)
    finally:
        source.dispose()
        target.dispose()


@contextlib.contextmanager
def postgres_databases(admin_url: str, count: int) -> Iterator[list[str]]:
    """``count`` fresh databases on the PostgreSQL server, dropped afterwards."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = [f"hokusai_bench_{uuid_module.uuid4().hex[:12]}" for _ in range(count)]
    made: list[str] = []
    try:
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
                made.append(name)
        base = admin_url.rsplit("/", 1)[0]
        yield [f"{base}/{name}" for name in names]
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def build_cells(
    root: Path, args: argparse.Namespace, pg_urls: list[str]
) -> tuple[Real, list[Cell], dict[str, Any]]:
    """Real registrations in ``root/base``, then one copy per size grown by bulk inserts,
    its project database on every backend asked for."""
    base = root / "base"
    progress(f"registering {args.family_size + 5} real versions through the library")
    registry = open_registry(base, f"sqlite:///{base / 'hokusai.db'}")
    real = register_real(registry, args.family_size)
    registry.index.engine.dispose()
    cells: list[Cell] = []
    fills: dict[str, Any] = {}
    for position, size in enumerate(args.sizes):
        folder = root / f"at-{size}"
        folder.mkdir()
        for name in ("mlflow.db", "hokusai.db"):
            sqlite_copy(base / name, folder / name)
        urls = {}
        for backend in args.backends:
            if backend == "sqlite":
                urls[backend] = f"sqlite:///{folder / 'hokusai.db'}"
            else:
                urls[backend] = pg_urls[position]
                copy_project_database(f"sqlite:///{folder / 'hokusai.db'}", pg_urls[position])
        if "sqlite" not in urls:  # the templates and checks read the SQLite copy
            urls_for_fill = {"sqlite": f"sqlite:///{folder / 'hokusai.db'}", **urls}
        else:
            urls_for_fill = urls
        progress(f"growing a copy to {size:,} versions by bulk inserts ({', '.join(urls)})")
        fill = fill_direct(
            folder / "mlflow.db",
            urls_for_fill,
            size,
            random.Random(args.seed + size),
            same_type_share=args.same_type_share,
            contributors=args.contributors,
        )
        fills[str(size)] = fill.as_json()
        for backend, url in urls.items():
            cell = Cell(size, backend, folder, url, fill=fill)
            cell.registry = open_registry(folder, url)
            cells.append(cell)
        sqlite_cell = next(c for c in cells if c.size == size)
        fills[str(size)]["filler_checked_against_from_mlflow"] = check_filler(
            sqlite_cell.registry, urls_for_fill["sqlite"], fill
        )
    return real, cells, fills


# ---- measurements ----------------------------------------------------------------------------


def index_calls(registry: Any, real: Real) -> dict[str, Callable[[int], Any]]:
    """The three reads as an application makes them (answered by the index once built)."""
    leaf = real.family[-1]
    return {
        "lineage": lambda _i: registry.get_model_lineage(leaf),
        "contributor": lambda _i: registry.get_contributor_models(CONTRIBUTOR),
        "uuid": lambda i: registry.get_model_by_uuid(real.uuids[i % len(real.uuids)]),
    }


def mlflow_calls(registry: Any, real: Real) -> dict[str, Callable[[int], Any]]:
    """The same reads the way they were answered before the index: MLflow's API."""
    leaf, queries = real.family[-1], registry.queries
    return {
        "lineage": lambda _i: queries.lineage(leaf),
        "contributor": lambda _i: queries.contributor_models(CONTRIBUTOR),
        "uuid": lambda i: queries.by_uuid(real.uuids[i % len(real.uuids)]),
    }


def check_answers(registry: Any, real: Real, reference: Any = None) -> dict[str, Any]:
    """The index answers (and, with ``reference``, the same answers as that registry's MLflow
    path) — every uuid, the family's leaf lineage, the contributor's listing."""
    index = registry._answering_index()
    if index is None:
        return {"ok": False, "why": "the index does not answer (not built?)"}
    other = reference.queries if reference is not None else registry.queries
    problems = []
    lineage = index.lineage(real.family[-1])
    if lineage is None or len(lineage) != len(real.family):
        problems.append(f"lineage has {None if lineage is None else len(lineage)} entries")
    elif lineage != other.lineage(real.family[-1]):
        problems.append("lineage differs from the MLflow path")
    mine = index.contributor_models(CONTRIBUTOR)
    if len(mine) != len(real.contributor_versions):
        problems.append(f"contributor listing has {len(mine)} versions")
    elif mine != other.contributor_models(CONTRIBUTOR):
        problems.append("contributor listing differs from the MLflow path")
    for model_uuid in real.uuids:
        found = index.by_uuid(model_uuid)
        if found is None:
            problems.append(f"{model_uuid} not in the index")
        elif found != other.by_uuid(model_uuid):
            problems.append(f"{model_uuid} differs from the MLflow path")
    return {"ok": not problems, "problems": problems[:10], "uuids": len(real.uuids)}


def measure_index(
    cells: list[Cell], real: Real, reps: int, warmup: int
) -> dict[tuple[int, str, str], list[float]]:
    """Round after round, each read once per cell, rotating which cell goes first (drift on
    the machine hits every size and backend alike). Each timed read follows an untimed
    ``ensure_fresh()``: the sync due every 5 s runs there (the REST service runs it in a
    background thread), and is timed on its own (``sync_s``)."""
    samples: dict[tuple[int, str, str], list[float]] = {}
    calls = {id(cell): index_calls(cell.registry, real) for cell in cells}
    for rep in range(warmup + reps):
        shift = rep % len(cells)
        for cell in cells[shift:] + cells[:shift]:
            index = cell.registry.index
            for read, call in calls[id(cell)].items():
                index.ensure_fresh()
                start = time.perf_counter()
                call(rep)
                elapsed = time.perf_counter() - start
                if rep >= warmup:
                    samples.setdefault((cell.size, cell.backend, read), []).append(elapsed)
    return samples


def measure_budgeted(
    targets: list[tuple[Any, dict[str, Callable[[int], Any]]]],
    reps: int,
    budget: float,
    *,
    minimum: int = 2,
) -> dict[tuple[Any, str], list[float]]:
    """Slow reads: one untimed call each, then up to ``reps`` timed calls per (target, read),
    interleaved across targets, each (target, read) stopping once it has spent ``budget`` s
    and has ``minimum`` samples."""
    samples: dict[tuple[Any, str], list[float]] = {}
    for read in READS:
        spent: dict[Any, float] = {}
        for key, calls in targets:
            calls[read](0)
            samples[(key, read)] = []
            spent[key] = 0.0
        for rep in range(reps):
            for key, calls in targets:
                taken = samples[(key, read)]
                if spent[key] >= budget and len(taken) >= minimum:
                    continue
                start = time.perf_counter()
                calls[read](rep + 1)
                elapsed = time.perf_counter() - start
                spent[key] += elapsed
                taken.append(elapsed)
    return samples


def measure_remote(
    cell: Cell, real: Real, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """The reads of a registry whose MLflow is a remote ``mlflow server`` (loopback, on the
    same SQLite store), interleaved with the embedded registry's; the MLflow path too up to
    ``--remote-mlflow-path-max-size``."""
    port = procs.free_port()
    command = procs.mlflow_server_command(cell.folder, port)
    overrides = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env = procs.server_environment(overrides)
    log = workdir / f"mlflow-server-{cell.size}.log"
    server = procs.start_server(
        "mlflow", command, port=port, log=log, env=env, cwd=workdir, env_overrides=overrides
    )
    try:
        if not procs.wait_http(server, "/health"):
            raise RuntimeError(f"mlflow server did not start: {server.tail()}")
        remote = open_registry(cell.folder, cell.url, tracking_uri=server.base)
        agreement = check_answers(remote, real, reference=cell.registry)
        if not agreement["ok"]:
            raise RuntimeError(f"remote registry disagrees: {agreement}")
        pair = [cell, Cell(cell.size, "remote", cell.folder, cell.url, registry=remote)]
        index = measure_index(pair, real, args.reps, args.warmup)
        result: dict[str, Any] = {
            "mlflow_server_ready_after_s": server.ready_seconds,
            "agreement_with_embedded": agreement,
            "reads": {},
        }
        old: dict[tuple[Any, str], list[float]] = {}
        if cell.size <= args.remote_mlflow_path_max_size:
            targets = [("embedded", mlflow_calls(cell.registry, real))]
            targets.append(("remote", mlflow_calls(remote, real)))
            old = measure_budgeted(targets, args.mlflow_reps, args.mlflow_budget)
        for read in READS:
            embedded = summarize(index[(cell.size, cell.backend, read)])
            far = summarize(index[(cell.size, "remote", read)])
            doc: dict[str, Any] = {
                "index_embedded_stats_s": embedded,
                "index_remote_stats_s": far,
                "p50_remote_to_embedded": ratio(far["p50"], embedded["p50"]),
            }
            if old:
                near_old, far_old = old[("embedded", read)], old[("remote", read)]
                doc["mlflow_path_embedded_stats_s"] = summarize(near_old)
                doc["mlflow_path_remote_stats_s"] = summarize(far_old)
                doc["mlflow_path_p50_remote_to_embedded"] = ratio(
                    summarize(far_old)["p50"], summarize(near_old)["p50"]
                )
                doc["p50_remote_mlflow_path_to_remote_index"] = ratio(
                    summarize(far_old)["p50"], far["p50"]
                )
            result["reads"][read] = doc
        remote.index.engine.dispose()
        return result
    finally:
        procs.stop(server.process)


def measure_registrations(cells: list[Cell], count: int) -> dict[str, Any]:
    """``RegistrationWriter._record`` (index row + event in one transaction) and the whole
    registration, with the index on and off (alternating), ``count`` of each per cell, after
    one untimed registration of each; baselines of their own type, after every read."""
    model, _ = tiny_model()
    results: dict[str, Any] = {}
    for cell in cells:
        off = open_registry(cell.folder, cell.url, index=False)
        registries = {"index_on": cell.registry, "index_off": off}
        step: dict[str, list[float]] = {mode: [] for mode in registries}
        total: dict[str, list[float]] = {mode: [] for mode in registries}
        for rep in range(count + 1):
            order = list(registries) if rep % 2 == 0 else list(reversed(registries))
            for mode in order:
                with timed_record_step() as recorded:
                    start = time.perf_counter()
                    registries[mode].register_baseline(model, WRITE_TYPE, pip_requirements=PIP)
                    elapsed = time.perf_counter() - start
                if rep:
                    step[mode] += recorded
                    total[mode].append(elapsed)
        on, off_stats = summarize(step["index_on"]), summarize(step["index_off"])
        results[f"{cell.size}/{cell.backend}"] = {
            "size": cell.size,
            "backend": cell.backend,
            "record_step_index_on_stats_s": on,
            "record_step_index_off_stats_s": off_stats,
            "index_write_p50_s": on["p50"] - off_stats["p50"],
            "registration_index_on_stats_s": summarize(total["index_on"]),
            "registration_index_off_stats_s": summarize(total["index_off"]),
        }
    return results


# ---- run, results, report --------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    import os

    for name in [n for n in os.environ if n.startswith("HOKUSAI_")]:
        del os.environ[name]
    pg_count = len(args.sizes) if "postgresql" in args.backends else 0
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(
            common.temp_home(NAME, keep=args.keep_store, directory=args.store_dir)
        )
        pg_urls = stack.enter_context(postgres_databases(args.postgres_admin_url, pg_count))
        real, cells, fills = build_cells(root, args, pg_urls)
        try:
            return measure_all(root, args, real, cells, fills)
        finally:
            for cell in cells:
                with contextlib.suppress(Exception):
                    cell.registry.index.engine.dispose()
            from hokusai.db import _MIGRATED

            _MIGRATED.clear()


def measure_all(
    root: Path, args: argparse.Namespace, real: Real, cells: list[Cell], fills: dict[str, Any]
) -> dict[str, Any]:
    agreement = {}
    for cell in cells:
        cell.first_sync = cell.registry.index.sync()  # the bulk rows as the sync sees them
        agreement[f"{cell.size}/{cell.backend}"] = check_answers(cell.registry, real)
    bad = {k: v for k, v in agreement.items() if not v["ok"]}
    if bad:
        raise RuntimeError(f"the index disagrees with MLflow: {bad}")
    progress(f"index reads: {args.reps} rounds over {len(cells)} registries")
    index = measure_index(cells, real, args.reps, args.warmup)
    for cell in cells:
        cell.sync_seconds = common.timed_calls(cell.registry.index.sync, 5)
    progress("the MLflow path (what the reads did before the index)")
    by_size = {c.size: c for c in reversed(cells)}  # any backend: the MLflow path ignores it
    old = measure_budgeted(
        [(size, mlflow_calls(cell.registry, real)) for size, cell in sorted(by_size.items())],
        args.mlflow_reps,
        args.mlflow_budget,
    )
    remote: dict[str, Any] = {}
    if not args.skip_remote:
        workdir = root / "work"
        workdir.mkdir(exist_ok=True)
        for size, cell in sorted(by_size.items()):
            sqlite_cells = [c for c in cells if c.size == size and c.backend == "sqlite"]
            target = sqlite_cells[0] if sqlite_cells else cell
            progress(f"through a remote mlflow server at {size:,} versions")
            remote[str(size)] = measure_remote(target, real, args, workdir)
    progress(f"registration cost: {args.registrations} registrations per registry and mode")
    registrations = measure_registrations(cells, args.registrations)
    return build_payload(args, real, cells, fills, agreement, index, old, remote, registrations)


def build_payload(
    args: argparse.Namespace,
    real: Real,
    cells: list[Cell],
    fills: dict[str, Any],
    agreement: dict[str, Any],
    index: dict[tuple[int, str, str], list[float]],
    old: dict[tuple[Any, str], list[float]],
    remote: dict[str, Any],
    registrations: dict[str, Any],
) -> dict[str, Any]:
    small, large = args.sizes[0], args.sizes[-1]
    reads: dict[str, Any] = {}
    for read in READS:
        per_size: dict[str, Any] = {}
        for size in args.sizes:
            mlflow_path = old[(size, read)]
            entry: dict[str, Any] = {"mlflow_path_stats_s": summarize(mlflow_path)}
            for backend in args.backends:
                stats = summarize(index[(size, backend, read)])
                entry[f"index_{backend}_stats_s"] = stats
                entry[f"p50_mlflow_path_to_index_{backend}"] = ratio(
                    summarize(mlflow_path)["p50"], stats["p50"]
                )
            per_size[str(size)] = entry
        growth = {
            f"index_{backend}_p50": ratio(
                per_size[str(large)][f"index_{backend}_stats_s"]["p50"],
                per_size[str(small)][f"index_{backend}_stats_s"]["p50"],
            )
            for backend in args.backends
        }
        growth["mlflow_path_p50"] = ratio(
            per_size[str(large)]["mlflow_path_stats_s"]["p50"],
            per_size[str(small)]["mlflow_path_stats_s"]["p50"],
        )
        reads[read] = {"sizes": per_size, "growth_between": [small, large], "growth": growth}
    goals: dict[str, Any] = {}
    for read in READS:
        for backend in args.backends:
            p50 = reads[read]["sizes"][str(large)][f"index_{backend}_stats_s"]["p50"]
            goals[f"{read}_p50_{backend}"] = goal(
                f"{READ_LABELS[read]}: index p50 ≤ {GOAL_P50_S[read] * 1000:g} ms at "
                f"{large:,} versions ({backend})",
                p50 <= GOAL_P50_S[read],
                value_s=p50,
                max_s=GOAL_P50_S[read],
            )
            growth = reads[read]["growth"][f"index_{backend}_p50"]
            goals[f"{read}_growth_{backend}"] = goal(
                f"{READ_LABELS[read]}: index p50({large:,}) / p50({small:,}) ≤ {GOAL_GROWTH:g} "
                f"({backend})",
                growth <= GOAL_GROWTH,
                value=growth,
                max=GOAL_GROWTH,
            )
    for size, doc in remote.items():
        for read in READS:
            value = doc["reads"][read]["p50_remote_to_embedded"]
            goals[f"{read}_remote_{size}"] = goal(
                f"{READ_LABELS[read]}: index p50 through mlflow server ≤ {GOAL_REMOTE:g}× "
                f"embedded at {int(size):,} versions",
                value <= GOAL_REMOTE,
                value=value,
                max=GOAL_REMOTE,
            )
    for doc in registrations.values():
        if doc["size"] == large:
            p50 = doc["record_step_index_on_stats_s"]["p50"]
            goals[f"registration_{doc['backend']}"] = goal(
                f"registration's index write (row + event, one transaction) p50 ≤ "
                f"{GOAL_RECORD_P50_S * 1000:g} ms at {large:,} versions ({doc['backend']})",
                p50 <= GOAL_RECORD_P50_S,
                value_s=p50,
                max_s=GOAL_RECORD_P50_S,
            )
    goals["answers_agree"] = goal(
        "the index answers every timed read exactly as the MLflow path does, every registry",
        all(v["ok"] for v in agreement.values())
        and all(f["filler_checked_against_from_mlflow"]["ok"] for f in fills.values()),
    )
    return {
        "description": (
            "get_model_lineage (21-version family), get_contributor_models (4 versions) and "
            "get_model_by_uuid answered by the registry index vs the MLflow-backed path, at "
            f"{', '.join(f'{s:,}' for s in args.sizes)} versions, project database on "
            f"{' and '.join(args.backends)}; embedded and through mlflow server; the "
            "registration's index write."
        ),
        "environment": common.environment() | {"load_average_at_start": args.load_at_start},
        "parameters": {
            "quick": args.quick,
            "sizes": args.sizes,
            "backends": args.backends,
            "index_reps": args.reps,
            "index_warmup": args.warmup,
            "mlflow_path_max_reps": args.mlflow_reps,
            "mlflow_path_budget_s_per_read_and_size": args.mlflow_budget,
            "registrations_per_registry_and_mode": args.registrations,
            "family_size": args.family_size,
            "contributor_versions": len(real.contributor_versions),
            "real_registrations": len(real.uuids),
            "same_type_share": args.same_type_share,
            "filler_contributors": args.contributors,
            "seed": args.seed,
            "store_dir": str(args.store_dir) if args.store_dir else None,
            "model": "LogisticRegression on 40×4 random rows, pip_requirements=['scikit-learn']",
            "store_build": (
                "real registrations through HokusaiModelRegistry, copied per size, grown by "
                "executemany bulk inserts into registered_models / model_versions / "
                "model_version_tags (sqlite3, synchronous=OFF while inserting) and into "
                "hokusai_index_versions / hokusai_index_models (SQLAlchemy Core, 5,000 rows a "
                "transaction; ANALYZE after on PostgreSQL)"
            ),
            "index_timing": (
                "registry.get_model_lineage / get_contributor_models / get_model_by_uuid, each "
                "after an untimed index.ensure_fresh() (the due sync; timed alone as sync_s); "
                "rounds interleaved across every size and backend"
            ),
            "mlflow_path_timing": (
                "registry.queries.lineage / contributor_models / by_uuid (what the reads did "
                "before the index), one untimed call, then interleaved across sizes until the "
                "reps or the budget are spent (at least 2)"
            ),
            "registration_timing": (
                "RegistrationWriter._record: IndexEntry.from_registration + RegistryIndex.put + "
                "the model_registered event, one transaction, committed (index on); the event "
                "alone (index off); the whole register_baseline call beside it"
            ),
            "uuid_targets": "every real registration's uuid in turn",
            "postgres": "fresh databases on the local server, created and dropped by the run"
            if "postgresql" in args.backends
            else None,
        },
        "store": {
            "real_registrations_s": real.seconds,
            "record_step_during_real_registrations_stats_s": summarize(real.record_step_s),
            "filler": fills,
            "first_sync_after_bulk_build": {f"{c.size}/{c.backend}": c.first_sync for c in cells},
            "sync_s": {f"{c.size}/{c.backend}": summarize(c.sync_seconds) for c in cells},
        },
        "agreement": agreement,
        "reads": reads,
        "remote_mlflow_server": remote,
        "registration": registrations,
        "old_figures_before_the_index_s": OLD_FIGURES_S,
        "goals": goals,
        "goals_evaluated_at_target_sizes": tuple(args.sizes) == GOAL_SIZES,
        "goals_met": all(g["met"] for g in goals.values()),
    }


def report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    params = payload["parameters"]
    title = "Registry index vs the MLflow path: lineage, contributor listing, uuid lookup"
    about = f"{params['index_reps']} index reads per cell; MLflow path "
    about += f"≤ {params['mlflow_path_max_reps']} (time-capped)"
    common.print_header(title, args, payload["environment"], about)
    rows = []
    for read in READS:
        for size, doc in payload["reads"][read]["sizes"].items():
            old = doc["mlflow_path_stats_s"]
            for backend in params["backends"]:
                new = doc[f"index_{backend}_stats_s"]
                rows.append(
                    [
                        READ_LABELS[read],
                        f"{int(size):,}",
                        backend,
                        fmt_ms(old["p50"]),
                        fmt_ms(old["p99"]),
                        str(old["n"]),
                        fmt_ms(new["p50"]),
                        fmt_ms(new["p99"]),
                        fmt_ratio(doc[f"p50_mlflow_path_to_index_{backend}"]),
                    ]
                )
    headers = ["read", "versions", "project db", "MLflow p50", "MLflow p99", "n"]
    common.print_table([*headers, "index p50", "index p99", "speed-up p50"], rows)
    print()
    for read in READS:
        growth = payload["reads"][read]["growth"]
        a, b = payload["reads"][read]["growth_between"]
        shown = ", ".join(f"{k} {fmt_ratio(v)}" for k, v in growth.items())
        print(f"growth {a:,} → {b:,}, {READ_LABELS[read]}: {shown}")
    if payload["remote_mlflow_server"]:
        print()
        rows = []
        for size, doc in payload["remote_mlflow_server"].items():
            for read, r in doc["reads"].items():
                old_e = r.get("mlflow_path_embedded_stats_s")
                old_r = r.get("mlflow_path_remote_stats_s")
                rows.append(
                    [
                        READ_LABELS[read],
                        f"{int(size):,}",
                        fmt_ms(r["index_embedded_stats_s"]["p50"]),
                        fmt_ms(r["index_remote_stats_s"]["p50"]),
                        fmt_ratio(r["p50_remote_to_embedded"]),
                        fmt_ms(old_e["p50"]) if old_e else "—",
                        fmt_ms(old_r["p50"]) if old_r else "—",
                    ]
                )
        headers = ["read (mlflow server)", "versions", "index embedded p50", "index remote p50"]
        common.print_table(
            [*headers, "remote/embedded", "MLflow path emb.", "MLflow path remote"], rows
        )
    print()
    rows = []
    for doc in payload["registration"].values():
        on, off = doc["record_step_index_on_stats_s"], doc["record_step_index_off_stats_s"]
        rows.append(
            [
                f"{doc['size']:,}",
                doc["backend"],
                fmt_ms(on["p50"]),
                fmt_ms(on["p99"]),
                fmt_ms(off["p50"]),
                fmt_ms(doc["index_write_p50_s"]),
                fmt_ms(doc["registration_index_on_stats_s"]["p50"]),
            ]
        )
    headers = ["registration at", "project db", "row+event p50", "row+event p99", "event alone p50"]
    common.print_table([*headers, "index write p50", "whole registration p50"], rows)
    old = payload["old_figures_before_the_index_s"]
    embedded, more = old["embedded"], old["embedded_with_5000_more_of_the_type"]
    far = old["remote_mlflow_server"]
    print(
        f"\nbefore the index (issue #11, embedded SQLite medians): lineage "
        f"{fmt_ms(embedded['lineage'])} ({fmt_ms(more['lineage'])} with 5,000 more improved "
        f"versions of the type), contributor {fmt_ms(embedded['contributor'])} "
        f"({fmt_ms(more['contributor'])}); through mlflow server: uuid {fmt_ms(far['uuid'])}, "
        f"lineage of 6 {fmt_ms(far['lineage_of_6'])}, contributor of 5 "
        f"{fmt_ms(far['contributor_of_5'])}"
    )
    common.print_goals(payload["goals"])
    if not payload["goals_evaluated_at_target_sizes"]:
        print(f"  (evaluated at {args.sizes}, not {list(GOAL_SIZES)})")


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_main(NAME, parse_args(argv), run, report)


if __name__ == "__main__":
    sys.exit(main())
