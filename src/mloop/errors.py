"""The mloop error tree.

Every error carries an ``error_code`` (stable string, also used by the REST API) and the HTTP status a
server maps it to, so a client can re-raise the same class from ``{error_code, message, details}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExistsError",
    "ConflictError",
    "InvalidInputError",
    "MloopError",
    "NotFoundError",
    "PermissionDeniedError",
    "StoreUnavailableError",
    "error_from_code",
]


_BY_CODE: dict[str, type[MloopError]] = {}


class MloopError(Exception):
    """Root of every error mloop raises on purpose."""

    error_code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every error class with its own code can be rebuilt from a server's response, wherever it is
        # defined (artifacts, registry...); the first class to claim a code keeps it.
        super().__init_subclass__(**kwargs)
        _BY_CODE.setdefault(cls.error_code, cls)

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message, "details": self.details}


class InvalidInputError(MloopError, ValueError):
    """The caller passed something malformed; nothing was changed."""

    error_code = "INVALID_PARAMETER_VALUE"
    http_status = 400


class NotFoundError(MloopError, LookupError):
    """The named thing (run, project, artifact, model...) does not exist."""

    error_code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class AlreadyExistsError(MloopError):
    """A thing with this unique name or id already exists."""

    error_code = "RESOURCE_ALREADY_EXISTS"
    http_status = 409


class ConflictError(MloopError):
    """A concurrent change won, or the request contradicts stored state (e.g. a param re-logged)."""

    error_code = "CONFLICT"
    http_status = 409


class StoreUnavailableError(MloopError):
    """The metadata or artifact store cannot be reached, is locked, or is not a valid store."""

    error_code = "STORE_UNAVAILABLE"
    http_status = 503


class UnauthenticatedError(MloopError):
    """The server needs a valid bearer token: none was sent, or it is unknown, expired or revoked."""

    error_code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDeniedError(MloopError):
    """The token is valid but may not do this: its role is too low, or its project is another."""

    error_code = "PERMISSION_DENIED"
    http_status = 403


class RateLimitedError(StoreUnavailableError):
    """Too many requests with this token; ``details["retry_after_s"]`` says when to try again.

    A :class:`StoreUnavailableError`: nothing was applied, so the tracking writer spools the batch
    and replays it later, as it does through an outage.
    """

    error_code = "REQUEST_LIMIT_EXCEEDED"
    http_status = 429


_BY_CODE.setdefault(MloopError.error_code, MloopError)


def error_from_code(
    error_code: str, message: str, details: dict[str, Any] | None = None
) -> MloopError:
    """Rebuild the error class a server serialised (unknown codes become :class:`MloopError`)."""
    return _BY_CODE.get(error_code, MloopError)(message, details=details)
