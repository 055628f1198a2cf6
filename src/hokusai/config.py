"""Settings: the only module that reads the environment.

Every setting is declared once here, typed and documented. Settings are read when a
:class:`Settings` is built (``get_settings()``), never at import, so two registries created under
different environments in one process each see their own configuration.

With nothing configured everything is embedded under ``HOKUSAI_HOME`` (default ``./.hokusai``):
MLflow tracking and registry in ``sqlite:///<home>/mlflow.db`` and artifacts in
``<home>/artifacts``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Hokusai configuration, read from ``HOKUSAI_*`` variables (and MLflow's own)."""

    model_config = SettingsConfigDict(env_prefix="HOKUSAI_", extra="ignore")

    home: Path = Field(
        default=Path(".hokusai"),
        description="Folder for everything embedded: MLflow database, artifacts, project DB.",
    )
    tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("HOKUSAI_TRACKING_URI", "MLFLOW_TRACKING_URI"),
        description="MLflow tracking URI. Default: sqlite:///<home>/mlflow.db.",
    )
    registry_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("HOKUSAI_REGISTRY_URI", "MLFLOW_REGISTRY_URI"),
        description="MLflow model-registry URI. Default: the tracking URI.",
    )
    artifact_location: str | None = Field(
        default=None,
        description=(
            "Artifact root for the experiment Hokusai creates. Default: <home>/artifacts when "
            "tracking is a local database; the tracking server's default otherwise."
        ),
    )
    experiment_name: str = Field(
        default="hokusai",
        description="MLflow experiment that registration runs are logged to.",
    )

    @property
    def home_path(self) -> Path:
        """``home`` as an absolute path (created on demand by the users of it)."""
        return self.home.expanduser().resolve()

    @property
    def resolved_tracking_uri(self) -> str:
        """The tracking URI in force: configured, or the embedded SQLite database."""
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{self.home_path / 'mlflow.db'}"

    @property
    def resolved_registry_uri(self) -> str:
        """The registry URI in force: configured, or the tracking URI."""
        return self.registry_uri or self.resolved_tracking_uri

    @property
    def is_embedded(self) -> bool:
        """True when tracking is a local database file (no tracking server)."""
        return self.resolved_tracking_uri.startswith("sqlite:")

    @property
    def resolved_artifact_location(self) -> str | None:
        """Artifact root for a new experiment, or None to let the tracking server decide."""
        if self.artifact_location:
            return self.artifact_location
        if self.is_embedded:
            return (self.home_path / "artifacts").as_uri()
        return None


def get_settings(**overrides: Any) -> Settings:
    """Read the environment now and return fresh settings; keyword overrides win."""
    return Settings(**overrides)
