"""The one exception tree of modelyard.

Every error carries a stable ``code`` (the same strings MLflow's REST API uses, so one
table maps codes to HTTP statuses for both our native API and the MLflow-compatible one)
and a message that names the field, the bad value and, where there is one, the fix.

Errors also subclass the builtin a caller would already catch (``ValueError``,
``KeyError``, ``PermissionError``), as scikit-learn's ``NotFittedError`` does.
"""

from __future__ import annotations


class ModelyardError(Exception):
    """Root of every error modelyard raises on purpose."""

    code: str = "INTERNAL_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message

    def to_dict(self) -> dict[str, str]:
        """The wire shape shared by the native and MLflow-compatible APIs."""
        body = {"error_code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class InvalidParameter(ModelyardError, ValueError):
    """A value given by the caller is malformed or out of range."""

    code = "INVALID_PARAMETER_VALUE"


class BadRequest(ModelyardError, ValueError):
    """A request that cannot be understood at all (malformed body, wrong shape)."""

    code = "BAD_REQUEST"


class PayloadTooLarge(BadRequest):
    """A request body over the server's limit; the message names the limit.

    The tracking API answers it as MLflow does (400 ``BAD_REQUEST``, a code the mlflow
    client knows); the inference server answers 413, as scoring clients expect.
    """


class InvalidFilter(InvalidParameter):
    """A search filter or order-by clause that does not parse; names token and position."""

    def __init__(self, message: str, *, token: str | None = None, position: int | None = None):
        super().__init__(message, field="filter")
        self.token = token
        self.position = position


class NotFound(ModelyardError, KeyError):
    """The named entity does not exist (or was permanently removed)."""

    code = "RESOURCE_DOES_NOT_EXIST"


class AlreadyExists(ModelyardError, ValueError):
    """Creating something whose unique name is taken."""

    code = "RESOURCE_ALREADY_EXISTS"


class Conflict(ModelyardError):
    """The request is valid but clashes with the current state (e.g. a finished run)."""

    code = "RESOURCE_CONFLICT"


class InvalidState(ModelyardError):
    """The entity is in a state that forbids the operation (e.g. logging to a deleted run)."""

    code = "INVALID_STATE"


class SchemaTooNew(InvalidState):
    """The metadata database was migrated past the revisions this code knows (a newer
    replica upgraded it): this process refuses to use it rather than downgrade or serve."""


class ConventionViolation(InvalidParameter):
    """A run or experiment breaks a team convention configured as ``refuse``."""


class Unauthenticated(ModelyardError, PermissionError):
    code = "UNAUTHENTICATED"


class PermissionDenied(ModelyardError, PermissionError):
    code = "PERMISSION_DENIED"


class IntegrityViolation(ModelyardError):
    """Stored bytes no longer match the digest recorded when they were frozen (a registered
    version's files replaced behind the registry's back). Never retried, never served."""

    code = "DATA_LOSS"


class RequestLimitExceeded(ModelyardError):
    """Too many requests of a kind (e.g. failed authentications) from one client or for one
    identity; ``retry_after_s`` is when to come back (the server's ``Retry-After``)."""

    code = "REQUEST_LIMIT_EXCEEDED"

    def __init__(
        self, message: str, *, retry_after_s: int | None = None, field: str | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.retry_after_s = retry_after_s


class NotImplementedFeature(ModelyardError, NotImplementedError):
    code = "NOT_IMPLEMENTED"


class StoreUnavailable(ModelyardError, ConnectionError):
    """A backend (database, object store, server) cannot be reached."""

    code = "TEMPORARILY_UNAVAILABLE"


class StoreBusy(StoreUnavailable):
    """Another connection holds the database's write lock and the caller asked not to wait
    (``store.engine.writes_do_not_wait``); nothing was written, so retrying is safe."""


class MissingExtra(ModelyardError, ImportError):
    """An optional backend is used without its extra installed; says what to install."""

    code = "NOT_IMPLEMENTED"

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'modelyard[{extra}]'"
        )
        self.package = package
        self.extra = extra


#: The one code → HTTP status table (MLflow's mapping, which its client relies on).
HTTP_STATUS_BY_CODE: dict[str, int] = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_STATE": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_CONFLICT": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "INTERNAL_ERROR": 500,
}

_CLASS_BY_CODE: dict[str, type[ModelyardError]] = {
    cls.code: cls
    for cls in (
        InvalidParameter,
        BadRequest,
        NotFound,
        AlreadyExists,
        Conflict,
        InvalidState,
        Unauthenticated,
        PermissionDenied,
        RequestLimitExceeded,
        NotImplementedFeature,
        StoreUnavailable,
        IntegrityViolation,
    )
}


def http_status_for(error: ModelyardError) -> int:
    return HTTP_STATUS_BY_CODE.get(error.code, 500)


def error_from_code(code: str, message: str) -> ModelyardError:
    """Rebuild the error a server answered with, so remote use raises what local use raises."""
    return _CLASS_BY_CODE.get(code, ModelyardError)(message)


class ConventionWarning(UserWarning):
    """A run or experiment breaks a team convention configured as ``warn``."""
