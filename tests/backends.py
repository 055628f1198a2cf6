"""Where the library, webhook and REST tests run: embedded SQLite, or the loopback stack.

A test marked ``@pytest.mark.backends`` runs once per backend (``[embedded]``, ``[stack]``);
every other test gets the embedded one, as before. The tests reach the store only through the
:class:`Backend` the ``backend`` fixture yields (the ``settings``, ``registry``, webhook and
REST fixtures are built from it), so one test body runs on both:

- **embedded**: MLflow on a temp SQLite file with a temp artifact folder, Hokusai's database
  beside it — what a developer's first ``pip install`` gets.
- **stack**: the session's ``mlflow server`` in the proxied artifact mode (PostgreSQL, artifacts
  in moto's S3 server; this process holds no S3 credentials) and Hokusai's tables in MLflow's
  own PostgreSQL database — the one-database deployment. Tests that count outbox rows or
  deliveries ask for a PostgreSQL database of their own instead (``own_database=True``).

The stack's servers are the session's, shared by every test: what a test registers must not
collide with what the others did. So on the stack a test gets model types, an experiment and
contributor addresses of its own (:meth:`Backend.model_type`, :meth:`Backend.address`);
on the embedded backend those are the literal values the test names, so its assertions read
as before. Stack-side tests skip when PostgreSQL is down, and fail under ``CI=true``
(tests/services.py).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import pytest

from hokusai.config import Settings
from tests.stack.stack import PROXIED, LoopbackStack, TrackingServer

__all__ = ["BACKENDS", "EMBEDDED", "STACK", "Backend", "backend", "parametrize_backends"]

Kind = Literal["embedded", "stack"]
EMBEDDED: Final[Kind] = "embedded"
STACK: Final[Kind] = "stack"
BACKENDS: Final[tuple[Kind, ...]] = (EMBEDDED, STACK)

# A reconciler pass in a project database of a test's own would adopt every version the other
# tests left in the session's registry and announce them to this test's receiver: there, it
# never passes a version (the reconciler on the stack has tests of its own, tests/stack).
_NEVER = 10.0 * 365 * 24 * 3600


@dataclass
class Backend:
    """One test's store: its settings, and names of its own on a shared stack."""

    kind: Kind
    home: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    stack: LoopbackStack | None = None
    tracking: TrackingServer | None = None
    _own_database: str | None = None

    @property
    def embedded(self) -> bool:
        return self.kind == EMBEDDED

    def settings(self, *, own_database: bool = False, **overrides: Any) -> Settings:
        """Settings of this backend; ``overrides`` win. ``own_database``: on the stack, a fresh
        PostgreSQL database for Hokusai's tables (the outbox then holds this test's events
        only); MLflow stays on the session's server either way."""
        values: dict[str, Any] = {"home": self.home}
        if self.tracking is not None:
            values.update(
                tracking_uri=self.tracking.url,
                database_url=(self.own_database() if own_database else self.tracking.database_url),
                experiment_name=f"hokusai-{self.tag}",
                # The test receivers are plain http on loopback (the default allows http only
                # in the embedded mode).
                webhook_allow_http=True,
            )
            if own_database:
                values["webhook_reconcile_min_age_seconds"] = _NEVER
        values.update(overrides)
        return Settings(**values)

    def own_database(self) -> str:
        """This test's own PostgreSQL database (made on first use, dropped with the stack)."""
        assert self.stack is not None, "the embedded backend's databases are the test's already"
        if self._own_database is None:
            self._own_database = self.stack.create_database("project")
        return self._own_database

    def model_type(self, name: str = "classification") -> str:
        """``name`` on the embedded backend; a model type of this test alone on the stack."""
        return name if self.embedded else f"{name}_{self.tag}"

    def model_name(self, name: str = "classification", kind: str = "baseline") -> str:
        """The registered model Hokusai registers ``model_type(name)`` under."""
        return f"hokusai_{self.model_type(name)}_{kind}"

    def address(self, fixed: str) -> str:
        """``fixed`` on the embedded backend; on the stack a fresh address of this test alone,
        in the same (EIP-55 checksum) form, so ``.lower()`` and case checks still apply."""
        if self.embedded:
            return fixed
        from hokusai.registry.validation import normalize_contributor

        return normalize_contributor("0x" + secrets.token_hex(20))

    @property
    def artifact_scheme(self) -> str:
        """How the artifact locations of registered models start."""
        return "file://" if self.embedded else "mlflow-artifacts:"

    @property
    def database_service(self) -> str:
        """The project database's name in /health (the deployment's, for PostgreSQL)."""
        return "database" if self.embedded else "postgres"

    def experiment(self, client: Any, name: str) -> str:
        """The id of experiment ``name`` of this test, made with ``client`` (a CI job's): its
        artifacts under the test's home, or where the tracking server keeps them."""
        if self.embedded:
            location = (self.home.resolve() / name).as_uri()
            return str(client.create_experiment(name, artifact_location=location))
        return str(client.create_experiment(f"{name}-{self.tag}"))


def parametrize_backends(metafunc: pytest.Metafunc) -> None:
    """``pytest_generate_tests``: tests marked ``backends`` run on each backend."""
    if metafunc.definition.get_closest_marker("backends") and "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The test's :class:`Backend`: embedded unless the test is marked ``backends``."""
    kind: Kind = getattr(request, "param", EMBEDDED)
    home = tmp_path / "home"
    if kind == EMBEDDED:
        yield Backend(EMBEDDED, home)
        return
    stack: LoopbackStack = request.getfixturevalue("loopback_stack")
    chosen = Backend(STACK, home, stack=stack, tracking=stack.tracking(PROXIED))
    try:
        yield chosen
    finally:
        if chosen._own_database is not None:
            from hokusai.db import dispose_engines

            dispose_engines()  # its pools, before the database goes
            stack.drop_database(chosen._own_database)
