"""The OpenAPI document of the REST API v1, generated from the endpoint table.

Each :class:`~mloop.store.Endpoint` gives its operation: path and query parameters with their
types, the JSON body (an object of the other arguments), the 200 answer's schema (204 when it has
none) and the error answers ``{error_code, message, details}`` with their statuses. A new endpoint
gets its schemas for free; a type with no schema fails when the app is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mloop.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    MloopError,
    NotFoundError,
    StoreUnavailableError,
)
from mloop.server._schema import Schema, SchemaBuilder
from mloop.server._wire import JSON, PayloadTooLargeError, is_required
from mloop.store import Endpoint

__all__ = ["ERROR_SCHEMA", "OperationSchemas", "error_responses", "operation_schemas"]

ERROR_SCHEMA: Schema = {
    "type": "object",
    "description": "Every error answer: a stable code (the client raises the same exception "
    "class from it), a message saying what, where, what was received and what to do, and "
    "details.",
    "properties": {
        "error_code": {"type": "string"},
        "message": {"type": "string"},
        "details": {"type": "object"},
    },
    "required": ["error_code", "message", "details"],
    "additionalProperties": False,
}

# The error answers: status -> (what it means, the error codes answering it).
_ERRORS: dict[int, tuple[str, str]] = {
    400: (
        "Bad input: the body is not JSON or not an object, an argument is missing, unknown, of "
        "the wrong type or out of range; nothing was changed.",
        InvalidInputError.error_code,
    ),
    404: ("The named resource does not exist.", NotFoundError.error_code),
    409: (
        "It already exists, or the request contradicts stored state (a concurrent change won).",
        f"{AlreadyExistsError.error_code}, {ConflictError.error_code}",
    ),
    413: ("The request body is over the server's limit.", PayloadTooLargeError.error_code),
    416: ("The Range asks for bytes the file does not have.", "RANGE_NOT_SATISFIABLE"),
    500: ("The server failed (see its log for the request id).", MloopError.error_code),
    503: ("The store cannot be reached or is locked.", StoreUnavailableError.error_code),
}


def error_responses(*, with_body: bool, extra: tuple[int, ...] = ()) -> dict[str, Any]:
    """The error answers of an operation: those of every operation (413 with a limited body),
    plus ``extra`` statuses (e.g. 416 for ranged downloads)."""
    statuses = [400, 404, 409, *([413] if with_body else []), 500, 503, *extra]
    out: dict[str, Any] = {}
    for status in sorted(set(statuses)):
        text, codes = _ERRORS[status]
        out[str(status)] = {
            "description": f"{text} (`error_code`: {codes})",
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return out


@dataclass(frozen=True)
class OperationSchemas:
    """What the app needs of one endpoint's schemas: the OpenAPI operation fields, and the body's
    schema per argument (the server refuses keys they do not declare)."""

    openapi: dict[str, Any]
    body: Mapping[str, Schema]


def _summary_tag(endpoint: Endpoint) -> str:
    return endpoint.path.strip("/").split("/")[0] or "api"


def operation_schemas(endpoint: Endpoint, builder: SchemaBuilder) -> OperationSchemas:
    """The OpenAPI fields of ``endpoint``'s operation (for ``openapi_extra``)."""
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": builder.of(endpoint.args[name]),
        }
        for name in endpoint.path_params
    ]
    rest = {k: tp for k, tp in endpoint.args.items() if k not in endpoint.path_params}
    body: dict[str, Schema] = {}
    operation: dict[str, Any] = {"tags": [_summary_tag(endpoint)]}
    if endpoint.has_body:
        body = {k: builder.of(tp) for k, tp in rest.items()}
        required = [k for k, tp in rest.items() if is_required(tp)]
        operation["requestBody"] = {
            "required": bool(required),
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "properties": body,
                        "required": required,
                        "additionalProperties": False,
                    }
                }
            },
        }
    else:
        parameters += [
            {
                "name": name,
                "in": "query",
                "required": is_required(tp),
                "schema": builder.of(_unwrap_optional(tp)),
            }
            for name, tp in rest.items()
        ]
    if parameters:
        operation["parameters"] = parameters
    responses = error_responses(with_body=endpoint.has_body)
    if endpoint.result is None:
        responses["204"] = {"description": "Done; no content."}
    else:
        responses["200"] = {
            "description": "The result.",
            "content": {JSON: {"schema": builder.of(endpoint.result)}},
        }
    operation["responses"] = responses
    return OperationSchemas(operation, body)


def _unwrap_optional(tp: Any) -> Any:
    """A query parameter is absent, never null: ``int | None`` in the query is an integer."""
    import types
    import typing

    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) == 1:
            return inner[0]
    return tp
