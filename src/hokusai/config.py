"""Settings: the only module that reads the environment.

Every setting is declared once here, typed and documented. Settings are read when a
:class:`Settings` is built (``get_settings()``), never at import, so two registries created under
different environments in one process each see their own configuration.

With nothing configured everything is embedded under ``HOKUSAI_HOME`` (default ``./.hokusai``):
MLflow tracking and registry in ``sqlite:///<home>/mlflow.db`` and artifacts in
``<home>/artifacts``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "ProjectConfig",
    "ServingSettings",
    "Settings",
    "bound_mlflow_client",
    "export_to_environment",
    "get_settings",
    "load_project_config",
    "mask_secrets",
    "parse_retry_schedule",
    "public_location",
    "public_text",
]


class Settings(BaseSettings):
    """Hokusai configuration, read from ``HOKUSAI_*`` variables (and MLflow's own)."""

    model_config = SettingsConfigDict(env_prefix="HOKUSAI_", extra="ignore", populate_by_name=True)

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
    database_url: str | None = Field(
        default=None,
        description=(
            "The project's own database (webhook endpoints, outbox, delivery log). "
            "Default: sqlite:///<home>/hokusai.db; PostgreSQL: postgresql+psycopg://…"
        ),
    )
    database_auto_migrate: bool = Field(
        default=True,
        description=(
            "Bring the project database's schema to head when a process first opens it "
            "(serialised across processes). Off: a schema behind head is an error until "
            "`hokusai db upgrade` has run."
        ),
    )
    webhook_url: str | None = Field(
        default=None, description="One webhook endpoint with zero setup (with webhook_secret)."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="Secret of HOKUSAI_WEBHOOK_URL (whsec_<base64> or any string)."
    )
    webhook_allow_http: bool | None = Field(
        default=None,
        description=(
            "Allow http:// webhook URLs. Default: HOKUSAI_WEBHOOK_ALLOW_INSECURE if set, else "
            "true only in the embedded mode."
        ),
    )
    webhook_allow_private_networks: bool | None = Field(
        default=None,
        description=(
            "Allow webhook hosts that resolve to loopback, private, link-local, CGNAT or other "
            "non-public addresses (local receivers). Default: HOKUSAI_WEBHOOK_ALLOW_INSECURE "
            "if set, else false."
        ),
    )
    webhook_allow_insecure: bool | None = Field(
        default=None,
        description=(
            "Deprecated: sets both webhook_allow_http and webhook_allow_private_networks "
            "(either one set explicitly wins)."
        ),
    )
    webhook_retry_schedule: str = Field(
        default="5,30,120,600,1800,3600,7200,14400,28800,43200",
        description="Seconds to wait before each retry (comma-separated, decimals allowed).",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Total deadline of one delivery attempt (connect + send + read).",
    )
    webhook_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a claimed delivery stays claimed before another worker may retry.",
    )
    webhook_poll_seconds: float = Field(
        default=0.05, gt=0, description="How often an idle worker looks for due deliveries."
    )
    webhook_background: bool = Field(
        default=True,
        description="Deliver from a background thread of the registering process.",
    )
    webhook_exit_grace_seconds: float = Field(
        default=2.0,
        ge=0,
        description="At exit, how long the background sender may finish first attempts.",
    )
    webhook_reconcile_min_age_seconds: float = Field(
        default=30.0,
        ge=0,
        description="The reconciler leaves versions younger than this to their own registration.",
    )

    registry_index: bool = Field(
        default=True,
        description=(
            "Answer registry reads from the index in the project database (MLflow stays the "
            "source of truth; `hokusai registry reindex` rebuilds it). Off: every read asks MLflow."
        ),
    )
    registry_index_max_staleness_seconds: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Longest a change made outside Hokusai (an alias moved, a version deleted or "
            "registered in MLflow) takes to show in the index's answers."
        ),
    )

    verify_threshold_bps: int = Field(
        default=100,
        ge=0,
        description=(
            "Smallest verified gain, in basis points of the benchmark's metric, that accepts an "
            "improvement (when a verification is not given its own threshold)."
        ),
    )

    api_host: str = Field(default="127.0.0.1", description="Address `hokusai server` binds.")
    api_port: int = Field(default=8000, ge=0, le=65535, description="Port `hokusai server` binds.")
    api_max_body_bytes: int = Field(
        default=4 * 1024 * 1024, gt=0, description="Largest request body the API accepts."
    )
    rate_limit_per_minute: int = Field(
        default=600, gt=0, description="Sustained requests per minute allowed to one API key."
    )
    rate_limit_burst: int = Field(
        default=60, gt=0, description="Requests one API key may make at once above the rate."
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for rate limits shared by API replicas (in-memory when unset).",
    )
    rate_limit_redis_down: Literal["memory", "refuse"] = Field(
        default="memory",
        description=(
            "While Redis is unreachable: 'memory' limits each replica on its own (degraded), "
            "'refuse' answers 503 rate_limiter_unavailable."
        ),
    )
    api_key: SecretStr | None = Field(
        default=None, description="API key the CLI sends when talking to a server (--server)."
    )
    api_bootstrap_admin_key: bool = Field(
        default=True,
        description=(
            "On the first start of the embedded server on a brand-new database (no API key "
            "ever created), create an admin key and print it once."
        ),
    )
    verify_background: bool = Field(
        default=True,
        description=(
            "Evaluate the verifications asked for over the API in a thread of each API process "
            "(off for replicas that should not evaluate: `hokusai verifications worker` does)."
        ),
    )
    verify_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle verification runner looks for jobs."
    )
    verify_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "How long a claimed verification stays claimed without its runner renewing it "
            "(renewed every third of it): a job of a runner that died is taken over after this."
        ),
    )
    verify_retry_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long a verification that failed for a reason other than its input "
        "waits before its next attempt (3 attempts in all).",
    )

    console_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Signs the web console's session cookies and CSRF tokens. Default: a random "
            "secret generated once and kept in the project database, so replicas agree."
        ),
    )
    console_session_hours: float = Field(
        default=8.0, gt=0, le=24 * 7, description="How long a console sign-in lasts."
    )
    console_serving_alias: str = Field(
        default="champion",
        description="The alias the console highlights as the one serving (lineage graphs).",
    )
    console_trust_forwarded_proto: bool = Field(
        default=False,
        description=(
            "Mark the console's cookies Secure when X-Forwarded-Proto says https (only behind a "
            "TLS-terminating proxy that sets that header itself)."
        ),
    )

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        parse_retry_schedule(value)
        return value

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
    def resolved_database_url(self) -> str:
        """The project database in force: configured, or SQLite under ``home``."""
        return self.database_url or f"sqlite:///{self.home_path / 'hokusai.db'}"

    @property
    def resolved_webhook_allow_http(self) -> bool:
        """Whether http:// webhook URLs are allowed."""
        for value in (self.webhook_allow_http, self.webhook_allow_insecure):
            if value is not None:
                return value
        return self.is_embedded

    @property
    def resolved_webhook_allow_private_networks(self) -> bool:
        """Whether webhooks may go to loopback, private and other non-public addresses."""
        for value in (self.webhook_allow_private_networks, self.webhook_allow_insecure):
            if value is not None:
                return value
        return False

    @property
    def retry_schedule(self) -> list[float]:
        """The retry schedule as seconds."""
        return parse_retry_schedule(self.webhook_retry_schedule)

    @property
    def resolved_artifact_location(self) -> str | None:
        """Artifact root for a new experiment, or None to let the tracking server decide."""
        if self.artifact_location:
            return self.artifact_location
        if self.is_embedded:
            return (self.home_path / "artifacts").as_uri()
        return None


class ProjectConfig(BaseModel):
    """``config.yaml`` (path from ``CONFIG_PATH``): what training and serving share."""

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; default: the Hokusai settings' one."
    )
    experiment_name: str = Field(default="hokusai-models", min_length=1)
    fallback_model_path: Path = Field(
        default=Path("models/artifacts/xgb_model.pkl"),
        description="Local pickle served when no MLflow source loads.",
    )
    port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Port `hokusai serve` binds (HOKUSAI_SERVING_PORT and --port win over it).",
    )


class ServingSettings(BaseSettings):
    """The prediction server's settings (names fixed by the product spec, no prefix)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    model_variant: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MODEL_VARIANT", "model_variant"),
        description="models:/name/Stage, models:/name/version or models:/name@alias.",
    )
    model_run_id: str | None = Field(
        default=None, validation_alias=AliasChoices("MODEL_RUN_ID", "model_run_id")
    )
    model_run_name: str | None = Field(
        default="ml_xgboost",
        validation_alias=AliasChoices("MODEL_RUN_NAME", "model_run_name"),
        description="Latest finished run with this name; empty disables this source.",
    )
    model_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        validation_alias=AliasChoices("MODEL_REFRESH_SECONDS", "model_refresh_seconds"),
        description="How often the source is resolved again (0 disables hot swap).",
    )
    config_path: Path = Field(
        default=Path("config.yaml"), validation_alias=AliasChoices("CONFIG_PATH", "config_path")
    )
    mlflow_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        validation_alias=AliasChoices("HOKUSAI_SERVING_MLFLOW_TIMEOUT", "mlflow_timeout_seconds"),
        description="Bound on each MLflow call while resolving a source.",
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        gt=0,
        validation_alias=AliasChoices("HOKUSAI_SERVING_MAX_BODY_BYTES", "max_body_bytes"),
    )
    max_batch_rows: int = Field(
        default=10_000,
        gt=0,
        validation_alias=AliasChoices("HOKUSAI_SERVING_MAX_BATCH_ROWS", "max_batch_rows"),
    )
    batch_wait_ms: float = Field(
        default=2.0,
        ge=0,
        validation_alias=AliasChoices("HOKUSAI_SERVING_BATCH_WAIT_MS", "batch_wait_ms"),
        description="Longest a single-row request waits to share a batch under concurrency.",
    )
    admin_reload: bool = Field(
        default=True,
        validation_alias=AliasChoices("HOKUSAI_SERVING_ADMIN_RELOAD", "admin_reload"),
        description="Serve POST /admin/reload (always behind an admin key); false removes it.",
    )
    # With populate_by_name a field's own name is read from the environment too (names are
    # case-insensitive): `port` would read PORT, which platforms set for other programs.
    serving_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("HOKUSAI_SERVING_PORT", "serving_port"),
        description="Port `hokusai serve` binds; wins over config.yaml's port, --port over it.",
    )
    strict_sources: bool = Field(
        default=False,
        validation_alias=AliasChoices("HOKUSAI_SERVING_STRICT", "strict_sources"),
        description=(
            "Serve only the first source of the chain: start-up fails when it does not load, "
            "and a refresh never moves down to a lower source."
        ),
    )

    @field_validator("model_variant", "model_run_id", "model_run_name")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    def project(self) -> ProjectConfig:
        """``config.yaml`` at ``config_path`` (defaults when the file does not exist)."""
        return load_project_config(self.config_path)

    @property
    def resolved_port(self) -> int:
        """The port `hokusai serve` binds without ``--port``: HOKUSAI_SERVING_PORT, else
        config.yaml's ``port`` (default 8080)."""
        return self.serving_port if self.serving_port is not None else self.project().port


def load_project_config(path: Path | str) -> ProjectConfig:
    """Read ``config.yaml``; a missing file means defaults, a malformed one is an error."""
    import yaml

    from hokusai.errors import ValidationError

    path = Path(path)
    if not path.exists():
        return ProjectConfig()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return ProjectConfig.model_validate(raw)
    except (yaml.YAMLError, PydanticValidationError) as exc:
        raise ValidationError(f"{path} is not a valid Hokusai config: {exc}") from exc


def parse_retry_schedule(text: str) -> list[float]:
    """``"5,30,0.5"`` → ``[5.0, 30.0, 0.5]``; raises ValueError for anything else."""
    try:
        delays = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise ValueError(f"retry schedule must be comma-separated seconds: {text!r}") from exc
    if any(delay < 0 or not math.isfinite(delay) for delay in delays):
        raise ValueError(f"retry schedule delays must be finite and non-negative: {text!r}")
    return delays


def bound_mlflow_client(*, max_retries: int = 1, timeout_seconds: int = 10) -> None:
    """Bound the MLflow REST client's retries and timeout (for this process).

    By default an unreachable tracking server makes every MLflow call retry for minutes, which
    would hang requests and health checks — and a library call. The services call this at
    start-up, and a registry on a tracking server when it is built. Values already set in the
    environment win.
    """
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(max_retries))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(timeout_seconds))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")


def export_to_environment(**overrides: Any) -> None:
    """Set ``HOKUSAI_<NAME>`` for child processes (e.g. uvicorn workers) from overrides."""
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"HOKUSAI_{name.upper()}"] = str(value)


def get_settings(**overrides: Any) -> Settings:
    """Read the environment now and return fresh settings; keyword overrides win."""
    return Settings(**overrides)


# ---- showing settings and errors safely ------------------------------------------------------

# ``scheme://user:password@`` in a URL (a password may be empty; a user alone is not a secret).
_URL_CREDENTIALS: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*):[^@/\s]*@")
# ``?token=…``-like query values and ``password=…`` in a DSN: any parameter whose name says it
# holds a secret.
_SECRET_PARAMETER: Final = re.compile(
    r"(?i)(?<![^?&;\s])([\w.-]*(?:key|token|secret|passw|pwd|auth|signature|credential)"
    r"[\w.-]*=)[^&#\s\"']*"
)
# A Hokusai API key ``hk_<id>_<secret>``: the id is safe to show, the secret is not.
_API_KEY: Final = re.compile(r"(?<![A-Za-z0-9])(hk_[A-Za-z0-9]{12}_)[A-Za-z0-9_-]{20,}")
# Local-file URIs, and absolute paths of two segments or more that are not part of a URI
# (``models:/name/1`` and ``runs:/id/model`` are MLflow references, not paths).
_FILE_URI: Final = re.compile(r"\b((?:file|sqlite):/*)([^\s'\"]+)")
_POSIX_PATH: Final = re.compile(
    r"(?<![\w.~/\\-])(?<!models:)(?<!runs:)(?:/[^\s/'\"<>|:,;()\[\]{}]+){2,}"
)
_WINDOWS_PATH: Final = re.compile(r"\b[A-Za-z]:\\[^\s'\"<>|:,;]+")


def mask_secrets(text: str) -> str:
    """``text`` (a URL, a log line, a message) with every credential replaced by ``***``:
    passwords in URLs (``postgresql://app:***@db/hokusai``), secret-looking query values
    (``?api_key=***``) and the secret part of Hokusai API keys (``hk_<id>_***``).

    The one helper for anything printed or logged: CLI banners, logs, health details.
    """
    if "@" not in text and "=" not in text and "hk_" not in text:
        return text  # nothing any pattern below can match (every access-log line goes here)
    text = _URL_CREDENTIALS.sub(r"\1:***@", text)
    text = _SECRET_PARAMETER.sub(r"\1***", text)
    return _API_KEY.sub(r"\1***", text)


def public_location(url: str) -> str:
    """Where a store is, as a client may see it: ``sqlite (embedded)``, ``file store
    (embedded)``, ``databricks``, or ``scheme://host[:port]`` — never a path, a user or a
    password."""
    scheme, colon, _ = url.partition(":")
    scheme = scheme.lower()
    if scheme.startswith("sqlite"):
        return "sqlite (embedded)"
    if scheme.startswith("databricks"):
        return "databricks"
    if not colon or scheme == "file" or len(scheme) == 1 or "/" in scheme:
        return "file store (embedded)"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return scheme
    return f"{scheme}://{host}{port}" if host else scheme


def public_text(text: str) -> str:
    """:func:`mask_secrets`, and absolute filesystem paths cut to their last part
    (``…/xgb_model.pkl``): what an error or health detail may show a client."""
    text = mask_secrets(text)
    text = _FILE_URI.sub(lambda m: m.group(1) + _last_part(m.group(2), "/"), text)
    text = _POSIX_PATH.sub(lambda m: _last_part(m.group(0), "/"), text)
    return _WINDOWS_PATH.sub(lambda m: _last_part(m.group(0), "\\"), text)


def _last_part(path: str, separator: str) -> str:
    last = path.rstrip(separator).rsplit(separator, 1)[-1]
    return f"…{separator}{last}"
