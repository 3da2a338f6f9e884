"""Requests into endpoint arguments and results into answers, with the one wire codec; errors as
``{error_code, message, details}`` with the status their class carries."""

from __future__ import annotations

import logging
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from mloop.codec import dumps, from_wire, loads, to_wire
from mloop.errors import InvalidInputError, MloopError
from mloop.store import Endpoint

__all__ = ["MAX_BODY_BYTES", "error_response", "read_arguments", "result_response"]

_log = logging.getLogger("mloop.server")
JSON = "application/json"
MAX_BODY_BYTES = 64 * 2**20  # a request body past this is refused (413) before it is read whole


class PayloadTooLargeError(MloopError):
    error_code = "PAYLOAD_TOO_LARGE"
    http_status = 413


def _optional(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return type(None) in typing.get_args(tp)
    return tp is Any


def _from_text(tp: Any, text: str, name: str) -> Any:
    """A path or query value as its declared scalar type."""
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
        raise InvalidInputError(f"`{name}` must be true or false; got {text!r}.")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise InvalidInputError(f"`{name}` must be an integer; got {text!r}.") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise InvalidInputError(f"`{name}` must be a number; got {text!r}.") from None
    return text


async def read_arguments(endpoint: Endpoint, request: Request) -> dict[str, Any]:
    """Every argument of ``endpoint`` from the path, the query string or the JSON body."""
    args: dict[str, Any] = {}
    for name in endpoint.path_params:
        args[name] = _from_text(endpoint.args[name], str(request.path_params[name]), name)
    if endpoint.has_body:
        body = await _body(request)
        if body:
            data = loads(body, what="the request body")
            if not isinstance(data, Mapping):
                raise InvalidInputError(
                    f"the body of {endpoint.name} must be a JSON object; got {type(data).__name__}."
                )
        else:
            data = {}
        source: Mapping[str, Any] = data
    else:
        source = request.query_params
    unknown = set(source) - set(endpoint.args) - set(endpoint.path_params)
    if unknown:
        raise InvalidInputError(
            f"{endpoint.name} takes no argument(s) {sorted(unknown)}; it takes "
            f"{[a for a in endpoint.args if a not in endpoint.path_params]}."
        )
    for name, tp in endpoint.args.items():
        if name in endpoint.path_params:
            continue
        if name not in source:
            if not _optional(tp) and tp is not bool:
                raise InvalidInputError(f"{endpoint.name} needs the argument `{name}`.")
            args[name] = False if tp is bool else None
            continue
        value = source[name]
        if endpoint.has_body:
            args[name] = from_wire(tp, value, what=name)
        else:
            args[name] = _from_text(tp, str(value), name)
    return args


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(
            f"the request body is {int(declared):,} bytes; the limit is {MAX_BODY_BYTES:,}."
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLargeError(
                f"the request body is over the {MAX_BODY_BYTES:,}-byte limit."
            )
        chunks.append(chunk)
    return b"".join(chunks)


def result_response(endpoint: Endpoint, result: Any) -> Response:
    if endpoint.result is None:
        return Response(status_code=204)
    body = endpoint.encode(result) if endpoint.encode is not None else to_wire(result)
    return Response(dumps(body), media_type=JSON)


def error_response(exc: BaseException, *, request_id: str | None = None) -> Response:
    """``{error_code, message, details}`` with the error's status (500 for what is not ours)."""
    if isinstance(exc, MloopError):
        doc, status = exc.to_dict(), exc.http_status
    else:
        _log.exception("unexpected error%s", f" (request {request_id})" if request_id else "")
        doc = {
            "error_code": "INTERNAL_ERROR",
            "message": f"the server failed: {type(exc).__name__}"
            + (f" (request {request_id}; see the server log)" if request_id else ""),
            "details": {},
        }
        status = 500
    try:
        text = dumps(doc)
    except InvalidInputError:
        text = dumps(
            {"error_code": doc["error_code"], "message": str(doc["message"]), "details": {}}
        )
    return Response(text, status_code=status, media_type=JSON)
