"""``hokusai quickstart``: the 2-minute tour on the embedded default.

Trains a baseline on part of a dataset that ships with scikit-learn, then an improved model on
all of it (as if a contributor had supplied the rest), registers both, and shows what was
recorded: uuids, the lineage and the contributor's models.

Everything the user typed (model type, contributor address, server URL, API key) is checked
before anything is trained or written; with ``--server``, the server is asked first whether it
answers and accepts the key, so a refusal leaves nothing behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer

from hokusai.cli._common import (
    console,
    format_metrics,
    quiet_mlflow,
    quiet_stderr,
    registry,
    state_of,
)
from hokusai.cli._errors import CliError, hinted
from hokusai.errors import (
    BackendError,
    BackendUnavailableError,
    InvalidContributorError,
    UnauthenticatedError,
    ValidationError,
)

if TYPE_CHECKING:
    import httpx

SAMPLE_CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
PROBE_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 60.0
_KEY_HINT = (
    "check --api-key / HOKUSAI_API_KEY: `hokusai server` prints an admin key on its first "
    "start; an admin makes more with `hokusai keys create --scope write --name NAME`"
)
_SERVER_HINT = "start the API with `hokusai server` (or `make run`), or check --server"


def _train(features: Any, target: Any, *, seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=25, max_depth=6, random_state=seed).fit(
        features, target
    )


def _score(model: Any, features: Any, target: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    return {
        "accuracy": float(accuracy_score(target, model.predict(features))),
        "f1": float(f1_score(target, model.predict(features))),
        "auroc": float(roc_auc_score(target, model.predict_proba(features)[:, 1])),
    }


def quickstart(
    ctx: typer.Context,
    model_type: str = typer.Option("quickstart_cancer", help="Model type to register under."),
    contributor: str = typer.Option(SAMPLE_CONTRIBUTOR, help="Sample contributor address."),
    server: str | None = typer.Option(
        None, "--server", help="Register through this Hokusai API instead of the library."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", help="API key for --server (default: HOKUSAI_API_KEY)."
    ),
    timeout: float = typer.Option(
        REQUEST_TIMEOUT_S, "--timeout", min=0.1, help="Seconds to wait for each answer of --server."
    ),
) -> None:
    """Train, register a baseline and an improved model, and show what was recorded."""
    from hokusai.registry.validation import normalize_contributor, validate_model_type

    validate_model_type(model_type)
    try:
        contributor = normalize_contributor(contributor)
    except InvalidContributorError as exc:
        raise hinted(
            exc, "--contributor takes 0x and 40 hex digits (leave it out for the sample address)"
        ) from None
    remote = _Remote.connect(ctx, server, api_key, timeout) if server is not None else None

    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    with console.status("Loading data and training…"):
        data = load_breast_cancer(as_frame=True)
        x_train, x_test, y_train, y_test = train_test_split(
            data.data, data.target, test_size=0.3, random_state=7, stratify=data.target
        )
        # The baseline sees a small slice; the "contributed" data completes the training set.
        baseline = _train(x_train.iloc[:60], y_train.iloc[:60], seed=1)
        improved = _train(x_train, y_train, seed=1)
        baseline_metrics = _score(baseline, x_test, y_test)
        improved_metrics = _score(improved, x_test, y_test)
    deltas = {k: improved_metrics[k] - baseline_metrics[k] for k in baseline_metrics}

    if remote is not None:
        with remote:
            remote.register(
                ctx,
                model_type,
                contributor,
                baseline=(baseline, baseline_metrics),
                improved=(improved, improved_metrics),
                deltas=deltas,
                example=x_test.head(3),
            )
        return
    from hokusai.config import mask_secrets

    reg = registry(ctx)
    console.print(f"MLflow store: [bold]{mask_secrets(reg.tracking_uri)}[/bold]")
    with console.status("Registering the baseline…"), quiet_stderr(ctx):
        base = reg.register_baseline(
            baseline,
            model_type,
            {"dataset": "sklearn.breast_cancer", "rows": 60, "features": list(data.data.columns)},
            input_example=x_test.head(3),
            metrics=baseline_metrics,
        )
    _registered("baseline", base["model_id"], base["model_uuid"])
    with console.status("Registering the improved model…"), quiet_stderr(ctx):
        better = reg.register_improved_model(
            improved,
            base["model_id"],
            deltas,
            contributor,
            input_example=x_test.head(3),
            metadata={"contributed_rows": len(x_train) - 60},
            metrics=improved_metrics,
        )
    _registered(
        "improved",
        better["model_id"],
        better["model_uuid"],
        by=better["contributor"],
        delta=format_metrics(deltas),
    )

    from hokusai.cli.models import lineage

    console.print()
    lineage(ctx, better["model_id"], as_json=False)
    console.print("\nNext:", highlight=False)
    console.print(f"  hokusai models get {better['model_id']}", highlight=False)
    console.print(f"  hokusai contributors models {contributor}", highlight=False)


def _registered(kind: str, model_id: str, model_uuid: str | None, **more: str | None) -> None:
    """``baseline  name/1`` then its uuid (and more) on lines of their own: no wrapping at 80
    columns."""
    console.print(f"{kind:<9} [bold]{model_id}[/bold]", highlight=False)
    for name, value in {"uuid": model_uuid, **more}.items():
        console.print(f"{'':<9} {name} {value or '—'}", highlight=False)


def _server_url(text: str) -> str:
    """``text`` as the base URL of an API, or ValidationError (before anything is written)."""
    example = "e.g. --server http://127.0.0.1:8000 (the URL `hokusai server` prints)"
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise hinted(ValidationError(f"--server {text!r} is not a valid URL."), example) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise hinted(
            ValidationError(f"--server {text!r} is not an http:// or https:// URL."), example
        )
    return text.strip().rstrip("/")


class _Remote:
    """A Hokusai API that answered and accepted the key (see :meth:`connect`)."""

    def __init__(self, url: str, client: httpx.Client) -> None:
        self.url = url
        self.client = client

    @classmethod
    def connect(
        cls, ctx: typer.Context, server: str, api_key: str | None, timeout: float
    ) -> _Remote:
        """Check the URL, the key and that the server answers and accepts the key for
        registering, before anything is trained or written."""
        import httpx

        url = _server_url(server)
        settings = state_of(ctx).settings()
        key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
        if not key:
            raise hinted(
                UnauthenticatedError("--server needs an API key: --api-key or HOKUSAI_API_KEY."),
                _KEY_HINT,
            )
        client = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=min(timeout, PROBE_TIMEOUT_S),
        )
        remote = cls(url, client)
        try:
            # An empty registration: refused for the key (401/403) before the body is read,
            # else refused as invalid (422). Nothing is written either way.
            probe = remote.request("POST", "/api/v1/models", json={})
            if probe.status_code in (401, 403, 429) or probe.status_code >= 500:
                raise remote.refusal(probe)
            if probe.status_code != 422 or not _is_error_envelope(probe):
                raise hinted(
                    BackendError(
                        f"{url} does not look like a Hokusai API: POST /api/v1/models answered "
                        f"{probe.status_code}."
                    ),
                    "check --server: it is the URL `hokusai server` prints",
                )
        except BaseException:
            client.close()
            raise
        client.timeout = httpx.Timeout(timeout)
        return remote

    def __enter__(self) -> _Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; a server that does not answer is one error with a hint."""
        import httpx

        try:
            return self.client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            timeout = self.client.timeout.read or PROBE_TIMEOUT_S
            raise hinted(
                BackendUnavailableError(f"{self.url} did not answer within {timeout:g} s."),
                _SERVER_HINT,
            ) from None
        except httpx.TransportError as exc:
            raise hinted(
                BackendUnavailableError(f"Cannot reach {self.url}: {_reason(exc)}."),
                _SERVER_HINT,
            ) from None

    def refusal(self, response: httpx.Response) -> CliError:
        """The server's error answer as one CLI error, with its code."""
        status = response.status_code
        error = _error_of(response)
        code = error.get("code") or ("backend_unavailable" if status >= 500 else "backend_error")
        message = error.get("message") or response.reason_phrase or "no message"
        hint = {
            401: _KEY_HINT,
            403: "registering needs a key of scope write or admin: "
            "hokusai keys create --scope write --name NAME",
            429: "wait a little and retry",
        }.get(status)
        return CliError(str(code), f"{message} ({self.url} answered {status})", hint=hint)

    def post_model(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.request("POST", "/api/v1/models", json=body)
        if response.status_code != 201:
            raise self.refusal(response)
        result: dict[str, Any] = response.json()
        return result

    def register(
        self,
        ctx: typer.Context,
        model_type: str,
        contributor: str,
        *,
        baseline: tuple[Any, dict[str, float]],
        improved: tuple[Any, dict[str, float]],
        deltas: dict[str, float],
        example: Any,
    ) -> None:
        """Log both models with MLflow (the server's store), then register them over HTTP."""
        from hokusai.cli._common import print_json

        uris = _log_models(ctx, [baseline[0], improved[0]], example)
        base = self.post_model(
            {
                "model_uri": uris[0],
                "model_type": model_type,
                "metadata": {"dataset": "sklearn.breast_cancer", "rows": 60},
                "metrics": baseline[1],
            }
        )
        _registered("baseline", base["model_id"], base["model_uuid"])
        better = self.post_model(
            {
                "model_uri": uris[1],
                "model_type": model_type,
                "baseline_id": base["model_id"],
                "contributor": contributor,
                "delta_metrics": deltas,
                "metrics": improved[1],
            }
        )
        _registered("improved", better["model_id"], better["model_uuid"])
        path = f"/api/v1/models/{better['model_name']}/versions/{better['version']}/lineage"
        lineage = self.request("GET", path)
        if lineage.status_code != 200:
            raise self.refusal(lineage)
        print_json(
            [
                {
                    "model_id": e["model_id"],
                    "contributor": e["contributor"],
                    "cumulative_improvement": e["cumulative_improvement"],
                }
                for e in lineage.json()["data"]
            ]
        )


def _log_models(ctx: typer.Context, models: list[Any], example: Any) -> list[str]:
    """Log each model with MLflow into the configured store; their ``models:/m-…`` URIs."""
    import mlflow
    import mlflow.sklearn

    from hokusai.registry.backend import mlflow_scope

    quiet_mlflow(ctx)
    settings = state_of(ctx).settings()
    tracking_uri = settings.resolved_tracking_uri
    uris = []
    with quiet_stderr(ctx):
        mlflow_client = mlflow.MlflowClient(tracking_uri)
        name = f"{settings.experiment_name}-quickstart"
        found = mlflow_client.get_experiment_by_name(name)
        experiment_id = (
            found.experiment_id
            if found is not None
            # artifacts under HOKUSAI_HOME (embedded) or the server's root, never ./mlruns
            else mlflow_client.create_experiment(
                name, artifact_location=settings.resolved_artifact_location
            )
        )
        for model in models:
            with (
                mlflow_scope(tracking_uri, tracking_uri),
                mlflow.start_run(experiment_id=experiment_id),
            ):
                info = mlflow.sklearn.log_model(
                    model,
                    name="model",
                    input_example=example,
                    serialization_format="cloudpickle",
                    pip_requirements=["scikit-learn", "cloudpickle"],
                )
            uris.append(info.model_uri)
    return uris


def _error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _is_error_envelope(response: httpx.Response) -> bool:
    return bool(_error_of(response).get("code"))


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if "refused" in text.lower():
        return "connection refused"
    return text or type(exc).__name__
