"""The model source chain (a contract with deployments): the first source that resolves (and
later loads) wins.

1. ``MODEL_VARIANT`` — ``models:/name/Stage``, ``models:/name/<version>``, ``models:/name@alias``
2. ``MODEL_RUN_ID`` — that run's model
3. ``MODEL_RUN_NAME`` (default ``ml_xgboost``) — the latest finished run with that name in the
   experiment named in ``config.yaml``
4. the local pickle (``config.yaml`` ``fallback_model_path``)

Resolution turns a source into a concrete, comparable *identity* (``name/version``, a run id,
or the pickle's path and mtime): the server swaps models when the identity changes, which is
how a moved alias or stage is picked up without a restart. Every MLflow call is bounded in time,
so an unreachable tracking server costs seconds, not MLflow's minutes of retries.

``MODEL_VARIANT`` and ``MODEL_RUN_ID`` are *configured* sources: set on purpose, so serving a
lower source while one of them is skipped is a degraded state, not a normal one. In strict mode
(``HOKUSAI_SERVING_STRICT``) the chain is its first source alone.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from hokusai.registry.filters import Condition, equals

__all__ = ["Resolved", "Skip", "SourceChain"]

SourceKind = Literal["MODEL_VARIANT", "MODEL_RUN_ID", "MODEL_RUN_NAME", "pickle"]
T = TypeVar("T")

_VARIANT_RE = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<ref>[^/@]+)|@(?P<alias>[^/@]+))")


@dataclass(frozen=True)
class Resolved:
    """A concrete model to load."""

    kind: SourceKind
    uri: str
    identity: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    requested: str | None = None
    """What was configured (``models:/fraud@champion``), when it differs from ``uri``."""
    location: str | None = None
    """Where the model's files are (artifact storage URI), resolved with the chain's client."""


@dataclass(frozen=True)
class Skip:
    """A source that was not used, and why."""

    source: SourceKind
    reason: str
    tried: bool = True
    """False for a source that was never attempted (not set, or left out by strict mode)."""

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "reason": self.reason}


class SourceChain:
    """Resolves the configured sources in order."""

    def __init__(
        self,
        *,
        client: Any,
        variant: str | None,
        run_id: str | None,
        run_name: str | None,
        experiment_name: str,
        fallback_path: Path,
        timeout: float,
        strict: bool = False,
    ) -> None:
        self._client = client
        self.variant = variant
        self.run_id = run_id
        self.run_name = run_name
        self.experiment_name = experiment_name
        self.fallback_path = fallback_path
        self.timeout = timeout
        self.strict = strict

    def candidates(self) -> list[tuple[SourceKind, Callable[[], Resolved]]]:
        """The sources to try, in priority order, as deferred resolutions (strict: the first)."""
        chain = self._all_candidates()
        return chain[:1] if self.strict else chain

    def _all_candidates(self) -> list[tuple[SourceKind, Callable[[], Resolved]]]:
        chain: list[tuple[SourceKind, Callable[[], Resolved]]] = []
        if self.variant:
            chain.append(("MODEL_VARIANT", lambda: self._variant(str(self.variant))))
        if self.run_id:
            chain.append(("MODEL_RUN_ID", lambda: self._run(str(self.run_id))))
        if self.run_name:
            chain.append(("MODEL_RUN_NAME", lambda: self._run_named(str(self.run_name))))
        chain.append(("pickle", self._pickle))
        return chain

    @property
    def first(self) -> SourceKind:
        """The highest source that is set: the one strict mode serves."""
        return self._all_candidates()[0][0]

    @property
    def configured(self) -> frozenset[SourceKind]:
        """The sources set on purpose (MODEL_VARIANT, MODEL_RUN_ID): while one of them is
        skipped, a lower source serving is a degraded state."""
        kinds: list[SourceKind] = []
        if self.variant:
            kinds.append("MODEL_VARIANT")
        if self.run_id:
            kinds.append("MODEL_RUN_ID")
        return frozenset(kinds)

    def unconfigured(self) -> list[Skip]:
        """Sources that are never tried: not set, or below the first one in strict mode."""
        skips = []
        if not self.variant:
            skips.append(Skip("MODEL_VARIANT", "not set", tried=False))
        if not self.run_id:
            skips.append(Skip("MODEL_RUN_ID", "not set", tried=False))
        if not self.run_name:
            skips.append(Skip("MODEL_RUN_NAME", "not set", tried=False))
        if self.strict:
            reason = f"not used: HOKUSAI_SERVING_STRICT serves {self.first} only"
            skips.extend(Skip(kind, reason, tried=False) for kind, _ in self._all_candidates()[1:])
        return skips

    def describe(self, kind: SourceKind) -> str:
        """A source as an operator configured it: ``MODEL_VARIANT=models:/fraud@champion``."""
        value = {
            "MODEL_VARIANT": self.variant,
            "MODEL_RUN_ID": self.run_id,
            "MODEL_RUN_NAME": self.run_name,
            "pickle": str(self.fallback_path),
        }[kind]
        return f"{kind}={value}" if kind != "pickle" else f"pickle {value}"

    def bounded(self, call: Callable[[], T]) -> T:
        """Run ``call`` with the chain's timeout.

        The call runs in a daemon thread: one stuck in MLflow's HTTP retries is abandoned, and
        can never hold up the process at exit (a thread pool's workers would be joined).
        """
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                outcome["value"] = call()
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name="hokusai-resolve", daemon=True).start()
        if not done.wait(self.timeout):
            raise SourceUnavailable(f"no answer from MLflow within {self.timeout:g}s")
        if "error" in outcome:
            raise outcome["error"]
        value: T = outcome["value"]
        return value

    # ---- each source ---------------------------------------------------------------------

    def _variant(self, variant: str) -> Resolved:
        match = _VARIANT_RE.fullmatch(variant)
        if match is None:
            raise SourceUnavailable(
                f"{variant!r} is not models:/<name>/<stage|version> or models:/<name>@<alias>"
            )
        name = match["name"]
        if match["alias"]:
            mv = self.bounded(lambda: self._client.get_model_version_by_alias(name, match["alias"]))
        elif match["ref"].isascii() and match["ref"].isdigit():
            mv = self.bounded(lambda: self._client.get_model_version(name, match["ref"]))
        else:
            stage = match["ref"]
            versions = self.bounded(lambda: self._latest_in_stage(name, stage))
            if not versions:
                raise SourceUnavailable(f"no version of {name} is in stage {stage!r}")
            mv = versions[0]
        version = str(mv.version)
        location = self.bounded(lambda: self._client.get_model_version_download_uri(name, version))
        return Resolved(
            kind="MODEL_VARIANT",
            uri=f"models:/{name}/{version}",
            identity=f"{name}/{version}",
            name=name,
            version=version,
            run_id=mv.run_id,
            requested=variant,
            location=location,
        )

    def _latest_in_stage(self, name: str, stage: str) -> list[Any]:
        # Stages are deprecated in MLflow (FutureWarning) but part of our contract.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return list(self._client.get_latest_versions(name, [stage]))

    def _run(self, run_id: str) -> Resolved:
        run = self.bounded(lambda: self._client.get_run(run_id))
        return self._run_model(run, kind="MODEL_RUN_ID")

    def _run_named(self, run_name: str) -> Resolved:
        experiment = self.bounded(lambda: self._client.get_experiment_by_name(self.experiment_name))
        if experiment is None:
            raise SourceUnavailable(f"experiment {self.experiment_name!r} does not exist")
        named = equals("attributes.run_name", run_name)
        run = self.bounded(lambda: self._latest_finished(experiment.experiment_id, named))
        if run is None:
            raise SourceUnavailable(
                f"no finished run named {run_name!r} in experiment {self.experiment_name!r}"
            )
        return self._run_model(run, kind="MODEL_RUN_NAME")

    def _latest_finished(self, experiment_id: str, named: Condition) -> Any | None:
        """The newest finished run whose name is exactly ``named.value``.

        When no filter literal can carry the name (see :mod:`hokusai.registry.filters`), MLflow
        returns a superset, newest first: pages are read until the first exact name.
        """
        token = None
        while True:
            page = self._client.search_runs(
                [experiment_id],
                filter_string=f"{named.text} AND attributes.status = 'FINISHED'",
                order_by=["attributes.start_time DESC"],
                max_results=1 if named.exact else 1000,
                page_token=token,
            )
            for run in page:
                if named.admits(run.info.run_name):
                    return run
            token = page.token
            if named.exact or not token:
                return None

    def _run_model(self, run: Any, *, kind: SourceKind) -> Resolved:
        run_id = run.info.run_id
        models = self.bounded(
            lambda: self._client.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=equals("source_run_id", run_id).text,  # 32 hex: always exact
                order_by=[{"field_name": "creation_time", "ascending": False}],
            )
        )
        models = [m for m in models if m.source_run_id == run_id]
        if not models:
            raise SourceUnavailable(f"run {run_id} logged no model")
        model_id = models[0].model_id
        return Resolved(
            kind=kind,
            uri=f"models:/{model_id}",
            identity=f"run:{run_id}:{model_id}",
            name=run.info.run_name,
            run_id=run_id,
            location=models[0].artifact_location,
        )

    def _pickle(self) -> Resolved:
        path = self.fallback_path
        if not path.exists():
            raise SourceUnavailable(f"{path} does not exist")
        stat = path.stat()
        return Resolved(
            kind="pickle",
            uri=str(path.resolve()),
            identity=f"pickle:{path.resolve()}:{stat.st_mtime_ns}:{stat.st_size}",
            name=path.name,
        )


class SourceUnavailable(Exception):  # noqa: N818 - a reason to skip a source, not a failure
    """A source cannot be used now; the message is the skip reason."""
