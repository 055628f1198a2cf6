"""One exception tree for the whole project, each class with a stable machine-readable code.

::

    HokusaiError                         internal_error          500
    ├── ValidationError (ValueError)     validation_error        422
    │   ├── InvalidModelTypeError        invalid_model_type      422
    │   ├── InvalidContributorError      invalid_contributor     422
    │   ├── InvalidMetadataError         invalid_metadata        422
    │   ├── InvalidMetricsError          invalid_metrics         422
    │   ├── InvalidModelIdError          invalid_model_id        422
    │   ├── UnsupportedModelError        unsupported_model       422
    │   ├── SignatureMismatchError       signature_mismatch      422
    │   ├── ModelPredictionError         prediction_failed       422
    │   ├── BaselineNotFoundError        baseline_not_found      422
    │   ├── InvalidWebhookUrlError       invalid_webhook_url     422
    │   ├── InvalidApiKeyNameError       invalid_api_key_name    422
    │   ├── InvalidScopeError            invalid_scope           422
    │   ├── InvalidWebhookSecretError    invalid_webhook_secret  422
    │   ├── ApiKeyInQueryError           api_key_in_query        400
    │   ├── InvalidJsonError             invalid_json            400
    │   ├── InvalidRequestError          invalid_request         400
    │   ├── InvalidInputError            invalid_input           422
    │   ├── InvalidDatasetError          invalid_dataset         422
    │   ├── InvalidBenchmarkError        invalid_benchmark       422
    │   ├── MetricMismatchError          metric_mismatch         422
    │   └── NotAnImprovementError        not_an_improvement      422
    ├── NotFoundError (LookupError)      not_found               404
    │   ├── ModelNotFoundError (+ValueError)  model_not_found    404
    │   │   └── NotAHokusaiModelError    not_a_hokusai_model     404
    │   ├── EndpointNotFoundError        endpoint_not_found      404
    │   ├── EventNotFoundError           event_not_found         404
    │   ├── ApiKeyNotFoundError          api_key_not_found       404
    │   ├── BenchmarkNotFoundError       benchmark_not_found     404
    │   └── VerificationNotFoundError    verification_not_found  404
    ├── UnauthenticatedError             unauthenticated         401
    │   └── InvalidApiKeyError           invalid_api_key         401
    ├── ForbiddenError                   forbidden               403
    │   ├── AdminKeyRequiredError        admin_key_required      403
    │   └── CsrfFailedError              csrf_failed             403
    ├── ConflictError                    conflict                409
    │   └── BenchmarkConflictError       benchmark_conflict      409
    ├── PayloadTooLargeError             payload_too_large       413
    ├── UnsupportedMediaTypeError        unsupported_media_type  415
    ├── RateLimitedError                 rate_limited            429
    ├── RegistrationError                registration_failed     500
    │   └── RollbackIncompleteError      rollback_incomplete     500
    ├── VerificationError                verification_failed     500
    ├── ModelNotLoadedError              model_not_loaded        503
    └── BackendError                     backend_error           502
        ├── BackendUnavailableError      backend_unavailable     503
        │   └── RateLimiterUnavailableError  rate_limiter_unavailable  503
        └── DatabaseNotMigratedError     database_not_migrated   503

Each class carries its code and its HTTP status; a subclass inherits its family's status, so
adding an error is one class. Validation errors subclass :class:`ValueError` so callers written
against the pre-upgrade registry (which raised ``ValueError``) keep working. Lower-level
exceptions (MLflow, SQLAlchemy) are translated at the boundary with ``raise ... from exc``;
nothing foreign leaks out.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

__all__ = [
    "HTTP_STATUS",
    "AdminKeyRequiredError",
    "ApiKeyInQueryError",
    "ApiKeyNotFoundError",
    "BackendError",
    "BackendUnavailableError",
    "BaselineNotFoundError",
    "BenchmarkConflictError",
    "BenchmarkNotFoundError",
    "ConflictError",
    "CsrfFailedError",
    "DatabaseNotMigratedError",
    "EndpointNotFoundError",
    "EventNotFoundError",
    "ForbiddenError",
    "HokusaiError",
    "InvalidApiKeyError",
    "InvalidApiKeyNameError",
    "InvalidBenchmarkError",
    "InvalidContributorError",
    "InvalidDatasetError",
    "InvalidInputError",
    "InvalidJsonError",
    "InvalidMetadataError",
    "InvalidMetricsError",
    "InvalidModelIdError",
    "InvalidModelTypeError",
    "InvalidRequestError",
    "InvalidScopeError",
    "InvalidWebhookSecretError",
    "InvalidWebhookUrlError",
    "MetricMismatchError",
    "ModelNotFoundError",
    "ModelNotLoadedError",
    "ModelPredictionError",
    "NotAHokusaiModelError",
    "NotAnImprovementError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "RateLimiterUnavailableError",
    "RegistrationError",
    "RollbackIncompleteError",
    "SignatureMismatchError",
    "UnauthenticatedError",
    "UnsupportedMediaTypeError",
    "UnsupportedModelError",
    "ValidationError",
    "VerificationError",
    "VerificationNotFoundError",
    "http_status_for",
]


class HokusaiError(Exception):
    """Base of every error this project raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """The error as the API serialises it: ``{"code", "message"}``."""
        return {"code": self.code, "message": self.message}


class ValidationError(HokusaiError, ValueError):
    """The caller's input is invalid; nothing was written."""

    code = "validation_error"
    status = 422


class InvalidModelTypeError(ValidationError):
    """``model_type`` is not a safe identifier (``[a-z][a-z0-9_]*``)."""

    code = "invalid_model_type"


class InvalidContributorError(ValidationError):
    """The contributor is not a valid (EIP-55 checksummed when mixed-case) Ethereum address."""

    code = "invalid_contributor"


class InvalidMetadataError(ValidationError):
    """Metadata is not a JSON-serialisable mapping with string keys."""

    code = "invalid_metadata"


class InvalidMetricsError(ValidationError):
    """Metrics or delta metrics are not a mapping of valid names to finite numbers."""

    code = "invalid_metrics"


class InvalidModelIdError(ValidationError):
    """A model id is not of the form ``"{model_name}/{version}"``."""

    code = "invalid_model_id"


class UnsupportedModelError(ValidationError):
    """The model object has no MLflow flavor this registry knows how to log."""

    code = "unsupported_model"


class SignatureMismatchError(ValidationError):
    """The input example does not satisfy the signature; ``column`` names the offender."""

    code = "signature_mismatch"

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class ModelPredictionError(ValidationError):
    """The model failed to predict on its own input example."""

    code = "prediction_failed"


class BaselineNotFoundError(ValidationError):
    """``baseline_id`` does not name an existing model version."""

    code = "baseline_not_found"


class InvalidWebhookUrlError(ValidationError):
    """A webhook URL is malformed or its destination not allowed (https to public hosts only,
    unless the settings allow http or private networks)."""

    code = "invalid_webhook_url"


class InvalidApiKeyNameError(ValidationError):
    """An API key name is not 1–64 characters of letters, digits, space, ``_``, ``.`` or ``-``."""

    code = "invalid_api_key_name"


class InvalidScopeError(ValidationError):
    """An API key scope is not one of ``read``, ``write`` or ``admin``."""

    code = "invalid_scope"


class InvalidWebhookSecretError(ValidationError):
    """A webhook secret cannot sign: a ``whsec_`` secret that is not base64 of 16+ bytes, or
    one that is empty or not encodable as UTF-8."""

    code = "invalid_webhook_secret"


class ApiKeyInQueryError(ValidationError):
    """An API key was sent in the query string, where it would be logged; use the header."""

    code = "api_key_in_query"
    status = 400


class InvalidJsonError(ValidationError):
    """The request body is not valid JSON."""

    code = "invalid_json"
    status = 400


class InvalidRequestError(ValidationError):
    """The request is not shaped as its protocol requires (a V2 inference request without
    ``inputs``, a tensor whose data does not fill its shape, a CSV body pandas cannot read)."""

    code = "invalid_request"
    status = 400


class InvalidInputError(ValidationError):
    """Prediction inputs do not fit the model's signature; ``column`` names the offender."""

    code = "invalid_input"

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class InvalidDatasetError(ValidationError):
    """A benchmark's data cannot be used or scored: the file is missing, unreadable or not
    CSV/Parquet, it has no rows, its target column is missing or has empty values, or targets
    and predictions differ in length or hold a missing (NaN) value. A gain measured on such
    rows would pay for nothing."""

    code = "invalid_dataset"


class InvalidBenchmarkError(ValidationError):
    """A benchmark's definition is invalid: its name, metric, direction or a guardrail."""

    code = "invalid_benchmark"


class MetricMismatchError(ValidationError):
    """The metric does not fit the task or the predictions: ROC AUC on a continuous target,
    accuracy on probabilities, RMSE on string labels, an unknown metric name."""

    code = "metric_mismatch"


class NotAnImprovementError(ValidationError):
    """Verification was asked of a version that is not an improved model (a baseline, or a
    model without a ``baseline_id``): there is nothing to compare it with."""

    code = "not_an_improvement"


class NotFoundError(HokusaiError, LookupError):
    """The requested object does not exist."""

    code = "not_found"
    status = 404


class ModelNotFoundError(NotFoundError, ValueError):
    """The requested model or version does not exist (a ``ValueError`` for old callers)."""

    code = "model_not_found"


class NotAHokusaiModelError(ModelNotFoundError):
    """The model exists in MLflow but Hokusai did not register it (another team's model, or one
    registered with plain MLflow): Hokusai's aliases, lineage and events do not apply to it."""

    code = "not_a_hokusai_model"


class EndpointNotFoundError(NotFoundError):
    """No webhook endpoint has that id (or URL)."""

    code = "endpoint_not_found"


class EventNotFoundError(NotFoundError):
    """No webhook event has that id."""

    code = "event_not_found"


class ApiKeyNotFoundError(NotFoundError):
    """No API key has that id."""

    code = "api_key_not_found"


class BenchmarkNotFoundError(NotFoundError):
    """No benchmark has that name."""

    code = "benchmark_not_found"


class VerificationNotFoundError(NotFoundError):
    """No verification with that id."""

    code = "verification_not_found"


class UnauthenticatedError(HokusaiError):
    """The request carries no credentials where they are required."""

    code = "unauthenticated"
    status = 401


class InvalidApiKeyError(UnauthenticatedError):
    """The presented API key is malformed, unknown or revoked (the API does not say which)."""

    code = "invalid_api_key"


class ForbiddenError(HokusaiError):
    """The API key is valid but its scope does not allow the operation."""

    code = "forbidden"
    status = 403


class AdminKeyRequiredError(ForbiddenError):
    """An admin-only route with no active admin key to allow it: it stays closed until one is
    created (``hokusai keys create --scope admin``)."""

    code = "admin_key_required"


class CsrfFailedError(ForbiddenError):
    """Console only: a form sent without this session's CSRF token, or from another site."""

    code = "csrf_failed"


class ConflictError(HokusaiError):
    """The request conflicts with the current state (for example a duplicate)."""

    code = "conflict"
    status = 409


class BenchmarkConflictError(ConflictError):
    """A benchmark of that name exists with other content or another definition; a benchmark
    never changes once added, so different data needs a new name."""

    code = "benchmark_conflict"


class PayloadTooLargeError(HokusaiError):
    """The request body is larger than ``HOKUSAI_API_MAX_BODY_BYTES``."""

    code = "payload_too_large"
    status = 413


class UnsupportedMediaTypeError(HokusaiError):
    """The body's content type is not one the route reads."""

    code = "unsupported_media_type"
    status = 415


class RateLimitedError(HokusaiError):
    """The API key made too many requests; ``retry_after`` says how many seconds to wait."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RegistrationError(HokusaiError):
    """Registration failed part-way; whatever it had created was rolled back."""

    code = "registration_failed"


class RollbackIncompleteError(RegistrationError):
    """Registration failed and its rollback left something behind; the message names it."""

    code = "rollback_incomplete"


class VerificationError(HokusaiError):
    """A verification could not complete for a reason that is not the caller's input (the
    evaluation run could not be recorded, a model could not be loaded from the store)."""

    code = "verification_failed"
    status = 500


class ModelNotLoadedError(HokusaiError):
    """The prediction server has no model loaded yet (or none could be loaded)."""

    code = "model_not_loaded"
    status = 503


class BackendError(HokusaiError):
    """MLflow or the project database answered with an error."""

    code = "backend_error"
    status = 502


class BackendUnavailableError(BackendError):
    """MLflow or the project database could not be reached."""

    code = "backend_unavailable"
    status = 503


class DatabaseNotMigratedError(BackendError):
    """The project database's schema is behind and this process may not migrate it
    (``HOKUSAI_DATABASE_AUTO_MIGRATE`` is off): run ``hokusai db upgrade``."""

    code = "database_not_migrated"
    status = 503


class RateLimiterUnavailableError(BackendUnavailableError):
    """The shared rate limiter (Redis) cannot be reached and the API is set to refuse requests
    rather than limit each replica on its own (``HOKUSAI_RATE_LIMIT_REDIS_DOWN=refuse``)."""

    code = "rate_limiter_unavailable"


def _family(cls: type[HokusaiError]) -> list[type[HokusaiError]]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _family(sub))]


HTTP_STATUS: Mapping[str, int] = MappingProxyType({c.code: c.status for c in _family(HokusaiError)})
"""Every error code with its HTTP status, derived from the classes (documentation and tests)."""


def http_status_for(error: HokusaiError) -> int:
    """HTTP status for an error: its class's ``status`` (a subclass inherits its family's)."""
    return error.status
