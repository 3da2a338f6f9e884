"""MLflow's REST dialect on the wire: request arguments, JSON answers and errors as the unmodified
``mlflow`` client sends and reads them.

- ``GET`` carries its arguments in the query string (a repeated field as a repeated key), every
  other method (``DELETE`` too) one JSON object in the body.
- int64 fields arrive as JSON numbers or as strings (protobuf's JSON mapping writes int64 as
  strings; MLflow's own client turns them back into numbers): both are accepted.
- Doubles may be ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, which is also how answers write them.
- Errors are ``{"error_code": ..., "message": ...}`` with MLflow's codes and HTTP statuses, which
  the client raises as ``MlflowException`` with that code.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mloop.errors import InvalidInputError, MloopError
from mloop.store import Store

__all__ = [
    "Args",
    "Context",
    "MlflowRoute",
    "error_response",
    "json_response",
    "mlflow_error",
    "refuse",
    "route",
    "wire_float",
]

_log = logging.getLogger("mloop.server.mlflow")
JSON = "application/json"
MAX_BODY_BYTES = 64 * 2**20

# mloop's error codes as MLflow names them, with the HTTP status MLflow's server answers them with
# (``mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS``): a duplicate is a 400 there, not a 409.
_CODES: dict[str, tuple[str, int]] = {
    "INVALID_PARAMETER_VALUE": ("INVALID_PARAMETER_VALUE", 400),
    "RESOURCE_DOES_NOT_EXIST": ("RESOURCE_DOES_NOT_EXIST", 404),
    "RESOURCE_ALREADY_EXISTS": ("RESOURCE_ALREADY_EXISTS", 400),
    # A write-once param logged again with another value, an alias moved under a guard: MLflow
    # reports both as invalid parameter values.
    "CONFLICT": ("INVALID_PARAMETER_VALUE", 400),
    "STORE_UNAVAILABLE": ("TEMPORARILY_UNAVAILABLE", 503),
    "UNAUTHENTICATED": ("UNAUTHENTICATED", 401),
    "PERMISSION_DENIED": ("PERMISSION_DENIED", 403),
    "REQUEST_LIMIT_EXCEEDED": ("REQUEST_LIMIT_EXCEEDED", 429),
    "PAYLOAD_TOO_LARGE": ("BAD_REQUEST", 413),
}


class MlflowApiError(MloopError):
    """An error with an MLflow error code of its own (``ENDPOINT_NOT_FOUND``, ``NOT_IMPLEMENTED``)."""

    error_code = "MLFLOW_API_ERROR"
    http_status = 400

    def __init__(self, message: str, *, code: str, status: int) -> None:
        super().__init__(message)
        self.mlflow_code = code
        self.status = status


def mlflow_error(message: str, code: str, status: int) -> MlflowApiError:
    return MlflowApiError(message, code=code, status=status)


def error_response(exc: BaseException) -> Response:
    """``{"error_code", "message"}`` with MLflow's code and status (500 for what is not ours)."""
    if isinstance(exc, MlflowApiError):
        code, status, message = exc.mlflow_code, exc.status, exc.message
    elif isinstance(exc, MloopError):
        code, status = _CODES.get(exc.error_code, ("INTERNAL_ERROR", exc.http_status))
        message = exc.message
    else:
        _log.exception("unexpected error in an MLflow API call")
        code, status = "INTERNAL_ERROR", 500
        message = f"the server failed: {type(exc).__name__} (see the server log)"
    body = json.dumps({"error_code": code, "message": message}, ensure_ascii=True)
    return Response(body, status_code=status, media_type=JSON)


def _plain(value: Any) -> Any:
    """JSON-ready: non-finite floats as MLflow writes them (``"NaN"``, ``"Infinity"``)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def wire_float(value: float) -> float | str:
    """A double as MLflow's JSON writes it: finite as a number, else ``"NaN"``/``"Infinity"``."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def json_response(doc: Mapping[str, Any], status: int = 200) -> Response:
    """``doc`` as JSON. Handlers write doubles with :func:`wire_float`; a non-finite float that
    reached here anyway is written the same way (never as the bare ``NaN`` JSON has not)."""
    try:
        text = json.dumps(doc, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    except ValueError:
        text = json.dumps(_plain(doc), ensure_ascii=True, separators=(",", ":"))
    return Response(text, status_code=status, media_type=JSON)


_NON_FINITE = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf, "inf": math.inf}


class Args:
    """The arguments of one call, typed as MLflow's protobuf messages declare them."""

    def __init__(self, source: Mapping[str, Any], *, multi: Mapping[str, list[str]] | None = None):
        self._source = source
        self._multi = multi or {}

    def __contains__(self, name: str) -> bool:
        return name in self._source and self._source[name] is not None

    def raw(self, name: str) -> Any:
        return self._source.get(name)

    def text(self, name: str, *, required: bool = False, default: str | None = None) -> Any:
        value = self._source.get(name)
        if value is None or value == "":
            if required:
                raise InvalidInputError(f"Missing value for required parameter '{name}'.")
            return default
        if not isinstance(value, str):
            raise InvalidInputError(
                f"Invalid value {value!r} for parameter '{name}' supplied: it must be a string."
            )
        return value

    def run_id(self) -> str:
        """``run_id``, or ``run_uuid`` as clients before MLflow 1.x spelled it."""
        value = self.text("run_id") or self.text("run_uuid")
        if not value:
            raise InvalidInputError("Missing value for required parameter 'run_id'.")
        return str(value)

    def int64(self, name: str, *, required: bool = False, default: int | None = None) -> Any:
        value = self._source.get(name)
        if value is None or value == "":
            if required:
                raise InvalidInputError(f"Missing value for required parameter '{name}'.")
            return default
        return to_int64(value, name)

    def double(self, name: str, *, required: bool = False) -> Any:
        value = self._source.get(name)
        if value is None or value == "":
            if required:
                raise InvalidInputError(f"Missing value for required parameter '{name}'.")
            return None
        return to_double(value, name)

    def boolean(self, name: str, *, default: bool = False) -> bool:
        value = self._source.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise InvalidInputError(
            f"Invalid value {value!r} for parameter '{name}' supplied: it must be true or false."
        )

    def strings(self, name: str) -> list[str]:
        if name in self._multi:
            return list(self._multi[name])
        value = self._source.get(name)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInputError(
                f"Invalid value {value!r:.100} for parameter '{name}': expected a list of strings."
            )
        return value

    def messages(self, name: str) -> list[Mapping[str, Any]]:
        value = self._source.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise InvalidInputError(
                f"Invalid value {value!r:.100} for parameter '{name}': expected a list of objects."
            )
        return value

    def message(self, name: str) -> Mapping[str, Any] | None:
        value = self._source.get(name)
        if value is not None and not isinstance(value, Mapping):
            raise InvalidInputError(
                f"Invalid value {value!r:.100} for parameter '{name}': expected an object."
            )
        return value

    def enum(self, name: str, choices: tuple[str, ...], *, default: str | None = None) -> Any:
        value = self._source.get(name)
        if value is None or value == "":
            return default
        if value not in choices:
            raise InvalidInputError(
                f"Invalid value {value!r} for parameter '{name}': expected one of {list(choices)}."
            )
        return value

    def max_results(self, name: str = "max_results", *, default: int, limit: int) -> int:
        value = self.int64(name, default=default)
        if value is None or value == 0:
            return default
        if not 1 <= value <= limit:
            raise InvalidInputError(
                f"Invalid value {value} for parameter '{name}' supplied: it must be at most "
                f"{limit} and at least 1."
            )
        return int(value)


def to_int64(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise InvalidInputError(f"Invalid value {value!r} for parameter '{name}': not an integer.")
    if isinstance(value, int):
        out = value
    elif isinstance(value, float) and value.is_integer():
        out = int(value)
    elif isinstance(value, str):
        try:
            out = int(value.strip())
        except ValueError:
            raise InvalidInputError(
                f"Invalid value {value!r} for parameter '{name}' supplied: not an integer."
            ) from None
    else:
        raise InvalidInputError(
            f"Invalid value {value!r:.60} for parameter '{name}' supplied: not an integer."
        )
    if not -(2**63) <= out < 2**63:
        raise InvalidInputError(f"Invalid value {value!r} for parameter '{name}': out of int64.")
    return out


def to_double(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise InvalidInputError(f"Invalid value {value!r} for parameter '{name}': not a number.")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise InvalidInputError(
                f"Invalid value for parameter '{name}': {value:.3g} is too large for a double."
            ) from None
    if isinstance(value, str):
        special = _NON_FINITE.get(value.strip().lower())
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidInputError(
        f"Invalid value {value!r:.60} for parameter '{name}' supplied: not a number."
    )


@dataclass(frozen=True)
class Context:
    """What a handler works with: the metadata store, the artifact blobs, the calling user."""

    store: Store
    blobs: Any  # mloop.artifacts.BlobStore, or None when the server keeps no artifacts
    user: str | None = None


Handler = Callable[[Context, Args], Mapping[str, Any] | None]


@dataclass(frozen=True)
class MlflowRoute:
    """One MLflow operation: ``path`` is relative to ``/api/<version>/mlflow``.

    ``role`` is what a token needs under ``--auth``: ``read`` for ``GET`` and for the searches
    MLflow sends as ``POST``, ``write`` otherwise.
    """

    method: Literal["GET", "POST", "PATCH", "DELETE", "PUT"]
    path: str
    handler: Handler
    version: str = "2.0"
    reads: bool = False

    @property
    def role(self) -> Literal["read", "write"]:
        return "read" if self.method == "GET" or self.reads else "write"


def route(
    method: Any, path: str, *, version: str = "2.0", reads: bool = False
) -> Callable[[Handler], MlflowRoute]:
    def wrap(fn: Handler) -> MlflowRoute:
        return MlflowRoute(method, path, fn, version, reads)

    return wrap


def refuse(message: str) -> Handler:
    """A handler for an MLflow call mloop's model has no counterpart for: ``NOT_IMPLEMENTED``
    (501) with the reason and what to do instead, rather than an unknown endpoint."""

    def refused(ctx: Context, a: Args) -> Mapping[str, Any] | None:
        raise mlflow_error(message, "NOT_IMPLEMENTED", 501)

    return refused


async def read_args(request: Request) -> Args:
    """The call's arguments: the query string for GET, else the JSON body (MLflow's client sends
    DELETE with a body too; a query string is read under it); path parameters
    (``/logged-models/{model_id}``) over both."""
    path = dict(request.path_params)
    q = request.query_params
    multi = {k: q.getlist(k) for k in q if len(q.getlist(k)) > 1}
    query = {**dict(q), **path}
    if request.method == "GET":
        return Args(query, multi=multi)
    body = await read_body(request)
    if not body.strip():
        return Args(query, multi=multi)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"the request body is not JSON: {exc}.") from None
    if not isinstance(data, Mapping):
        raise InvalidInputError(
            f"the request body must be a JSON object; got {type(data).__name__}."
        )
    return Args({**query, **data, **path})


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise mlflow_error(
            f"the request body is {int(declared):,} bytes; the limit is {MAX_BODY_BYTES:,}.",
            "BAD_REQUEST",
            413,
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise mlflow_error(
                f"the request body is over the {MAX_BODY_BYTES:,}-byte limit.", "BAD_REQUEST", 413
            )
        chunks.append(chunk)
    return b"".join(chunks)


def endpoint(
    r: MlflowRoute, context: Callable[[Request], Context]
) -> Callable[[Request], Awaitable[Response]]:
    """The ASGI endpoint of ``r``: arguments in, the handler in a worker thread, JSON out."""

    async def call(request: Request) -> Response:
        try:
            args = await read_args(request)
            ctx = context(request)
            doc = await run_in_threadpool(r.handler, ctx, args)
            return json_response(doc or {})
        except Exception as exc:  # the boundary: every failure becomes MLflow's error JSON
            return error_response(exc)

    call.__name__ = f"mlflow_{r.handler.__name__}"
    return call
