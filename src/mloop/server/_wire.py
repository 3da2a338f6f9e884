"""Requests into endpoint arguments and results into answers, with the one wire codec; errors as
``{error_code, message, details}`` with the status their class carries.

Reading a request is split in two: :func:`read_body` runs on the event loop (it only collects the
bytes, refusing a body over the limit before reading it whole) and :func:`decode_arguments` runs
in a worker thread with the handler, so parsing a large batch never stalls other requests.
"""

from __future__ import annotations

import logging
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response

from mloop.codec import dumps, from_wire, loads, to_wire
from mloop.errors import InvalidInputError, MloopError
from mloop.store import Endpoint

__all__ = [
    "MAX_BODY_BYTES",
    "PayloadTooLargeError",
    "decode_arguments",
    "error_response",
    "is_required",
    "read_body",
    "result_response",
    "wire_json",
]

_log = logging.getLogger("mloop.server")
JSON = "application/json"
MAX_BODY_BYTES = 64 * 2**20  # a request body past this is refused (413) before it is read whole
_INT64 = (-(2**63), 2**63 - 1)
_INT_TEXT = re.compile(r"-?[0-9]{1,19}")
_NUMBER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class PayloadTooLargeError(MloopError):
    """The request body is over the server's limit (nothing of it was used)."""

    error_code = "PAYLOAD_TOO_LARGE"
    http_status = 413


def _optional(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return type(None) in typing.get_args(tp)
    return tp is Any


def is_required(tp: Any) -> bool:
    """Whether a request must give an argument of type ``tp`` (optional ones default to None,
    booleans to false)."""
    return not _optional(tp) and tp is not bool


def _from_text(tp: Any, text: str, name: str) -> Any:
    """A path or query value as its declared scalar type (the spellings the OpenAPI document
    gives: JSON's number syntax, ``true``/``false``, non-finite floats as ``NaN``...)."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = inner[0] if len(inner) == 1 else str
        origin = typing.get_origin(tp)
    if origin is Literal:
        if text not in typing.get_args(tp):
            raise InvalidInputError(
                f"`{name}` must be one of {list(typing.get_args(tp))}; got {text!r}."
            )
        return text
    if tp is bool:
        if text.lower() in ("true", "1"):
            return True
        if text.lower() in ("false", "0"):
            return False
        raise InvalidInputError(f"`{name}` must be true or false; got {_short(text)}.")
    if tp is int:
        value = int(text) if _INT_TEXT.fullmatch(text) else None
        if value is None or not _INT64[0] <= value <= _INT64[1]:
            raise InvalidInputError(
                f"`{name}` must be an integer in [{_INT64[0]}, {_INT64[1]}]; got {_short(text)}."
            )
        return value
    if tp is float:
        special = _SPECIAL_FLOATS.get(text)
        if special is not None:
            return special
        if not _NUMBER_TEXT.fullmatch(text):
            raise InvalidInputError(
                f"`{name}` must be a number or one of 'NaN', 'Infinity', '-Infinity'; "
                f"got {_short(text)}."
            )
        return float(text)
    return text


def _short(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


async def read_body(request: Request, *, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request's body, refused with :class:`PayloadTooLargeError` once it is over ``limit``
    bytes: at once when ``Content-Length`` says so, else as soon as the stream passes it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidInputError(f"`Content-Length` must be a number; got {_short(declared)}.")
        if int(declared) > limit:
            raise PayloadTooLargeError(
                f"the request body is {int(declared):,} bytes; the limit is {limit:,}.",
                details={"limit": limit, "size": int(declared)},
            )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                f"the request body is over the {limit:,}-byte limit.", details={"limit": limit}
            )
        chunks.append(chunk)
    return b"".join(chunks)


def decode_arguments(
    endpoint: Endpoint,
    *,
    path: Mapping[str, str],
    query: list[tuple[str, str]],
    body: bytes,
    body_schemas: Mapping[str, Any] | None = None,
    components: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every argument of ``endpoint`` from the path, the query string or the JSON body.

    ``body_schemas`` (each body argument's JSON schema, with its ``components``) lets nested
    objects be checked for keys they do not declare: the codec ignores such keys when it reads
    stored data, but in a request a misspelt field must not be dropped silently.
    """
    args: dict[str, Any] = {}
    for name in endpoint.path_params:
        args[name] = _from_text(endpoint.args[name], path[name], name)
    source = _body_object(endpoint, body) if endpoint.has_body else _query_values(endpoint, query)
    unknown = set(source) - set(endpoint.args) - set(endpoint.path_params)
    if unknown:
        raise InvalidInputError(
            f"{endpoint.name} takes no argument(s) {sorted(unknown)}; it takes "
            f"{[a for a in endpoint.args if a not in endpoint.path_params]}.",
            details={"unknown": sorted(unknown)},
        )
    for name, tp in endpoint.args.items():
        if name in endpoint.path_params:
            continue
        if name not in source:
            if is_required(tp):
                raise InvalidInputError(
                    f"{endpoint.name} needs the argument `{name}`.", details={"missing": name}
                )
            args[name] = False if tp is bool else None
            continue
        value = source[name]
        if not endpoint.has_body:
            args[name] = _from_text(tp, value, name)
            continue
        args[name] = from_wire(tp, value, what=name)
        schema = (body_schemas or {}).get(name)
        if schema is not None and (isinstance(value, (dict, list)) or type(value) is int):
            _refuse_violation(schema, value, components or {}, name)
    return args


def _body_object(endpoint: Endpoint, body: bytes) -> Mapping[str, Any]:
    if not body.strip():
        return {}
    data = loads(body, what="the request body")
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"the body of {endpoint.name} must be a JSON object of its arguments; got a JSON "
            f"{_json_kind(data)}."
        )
    return data


def _query_values(endpoint: Endpoint, query: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in query:
        if key in values:
            raise InvalidInputError(
                f"`{key}` is given more than once in the query string of {endpoint.name}; "
                "give it once."
            )
        values[key] = value
    return values


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _refuse_violation(schema: Any, value: Any, components: Mapping[str, Any], name: str) -> None:
    from mloop.server._schema import violation

    problem = violation(schema, value, components, name)
    if problem is not None:
        raise InvalidInputError(problem)


def result_response(endpoint: Endpoint, result: Any) -> Response:
    if endpoint.result is None:
        return Response(status_code=204)
    body = endpoint.encode(result) if endpoint.encode is not None else to_wire(result)
    text, exact = wire_json(body)
    return Response(text, media_type=JSON, headers=None if exact else {CODEC_JSON_HEADER: "codec"})


# Set on an answer written by the codec's writer: the client (HttpTransport) then reads it with
# the codec's reader too, since orjson reads an int past 64 bits as a float.
CODEC_JSON_HEADER = "x-mloop-json"


def wire_json(body: Any) -> tuple[bytes, bool]:
    """JSON bytes of ``body``, which is already in wire form (plain str/int/finite float/bool/
    None, lists, str-keyed dicts), and whether orjson wrote them.

    orjson writes a 100k-point history or a page of 1,000 runs ~10x faster than ``json``, without
    walking the value a second time. What orjson would write its own way (a dataclass, a
    datetime: not wire form) or cannot (an int outside [-2**63, 2**64)) goes through the
    codec's writer instead (False)."""
    try:
        return orjson.dumps(
            body, option=orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
        ), True
    except (orjson.JSONEncodeError, TypeError):
        return dumps(body).encode(), False


def error_response(exc: BaseException, *, request_id: str) -> Response:
    """``{error_code, message, details}`` with the error's status (500 for what is not ours,
    logged with the request id that the answer names)."""
    if isinstance(exc, MloopError):
        doc, status = exc.to_dict(), exc.http_status
    else:
        _log.error("unexpected error (request %s)", request_id, exc_info=exc)
        doc = {
            "error_code": "INTERNAL_ERROR",
            "message": f"the server failed: {type(exc).__name__} (request {request_id}; "
            "see the server log)",
            "details": {"request_id": request_id},
        }
        status = 500
    try:
        text = dumps(doc)
    except InvalidInputError:
        text = dumps(
            {"error_code": str(doc["error_code"]), "message": str(doc["message"]), "details": {}}
        )
    return Response(text, status_code=status, media_type=JSON, headers={"x-request-id": request_id})
