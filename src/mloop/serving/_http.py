"""HTTP plumbing of the serving app: the hot path ahead of FastAPI, request ids, bodies read
with a size limit, answers sent as raw ASGI messages, and errors in MLflow's shape."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from mloop.errors import MloopError

from ._model import as_serving_error
from ._payload import ServingError, bad_request

__all__ = [
    "JSON",
    "Answer",
    "HotPath",
    "ServingApp",
    "as_failure",
    "error_answer",
    "error_response",
    "read_labels",
    "read_request_body",
    "receive_body",
    "request_id",
    "rid_of",
    "send_json",
]

log = logging.getLogger("mloop.serving")

JSON = "application/json"
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


Handler = Callable[[Any, Any, Any], Awaitable[Any]]


class ServingApp(FastAPI):
    """FastAPI, with ``POST /invocations`` answered ahead of its middleware stack.

    The scoring route is the hot path: its handler catches every error itself, so FastAPI's
    exception middlewares, router and dependency solving add nothing to it but time (about a third
    of a request's). It is still declared as a FastAPI route, for the OpenAPI document.
    """

    hot_routes: dict[tuple[str, str], Handler]

    def build_middleware_stack(self) -> Any:
        return HotPath(super().build_middleware_stack(), self.hot_routes)


class HotPath:
    def __init__(self, app: Any, routes: dict[tuple[str, str], Handler]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            handler = self.routes.get((scope["method"], scope["path"]))
            if handler is not None:
                await handler(scope, receive, send)
                return
        await self.app(scope, receive, send)


def request_id(given: str | None) -> str:
    if given and _REQUEST_ID.fullmatch(given):
        return given
    return os.urandom(16).hex()  # as random as uuid4, in a third of the time


def rid_of(request: Request) -> str:
    return request_id(request.headers.get("x-request-id"))


def too_large(limit: int, length: str | None = None) -> ServingError:
    what = f"The body is {length} bytes" if length else "The body is over the limit"
    return ServingError(413, "RESOURCE_LIMIT_EXCEEDED", f"{what}; the limit is {limit} bytes.")


async def receive_body(receive: Any, length: str | None, limit: int) -> bytes:
    """The request body from ASGI messages, refused (413) past ``limit`` bytes."""
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large(limit, length)
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ServingError(400, "BAD_REQUEST", "The client disconnected.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@dataclass
class Answer:
    """A response, sent as two raw ASGI messages on the hot path or as a Starlette Response."""

    status: int
    content: bytes
    media_type: str
    headers: dict[str, str]
    rid: str | None = None
    version: tuple[bytes, bytes] | None = None  # the X-Mloop-Model-Version header, encoded

    def all_headers(self) -> dict[str, str]:
        out = dict(self.headers)
        if self.rid is not None:
            out["x-request-id"] = self.rid
        if self.version is not None:
            out["x-mloop-model-version"] = self.version[1].decode("latin-1")
        return out

    def response(self) -> Response:
        return Response(
            self.content, self.status, media_type=self.media_type, headers=self.all_headers()
        )

    async def send(self, send: Any) -> None:
        if self.status == 200 and self.rid and self.version and not self.headers:
            await send_json(send, self.content, self.rid, self.version)
            return
        raw = [
            (b"content-type", self.media_type.encode()),
            (b"content-length", str(len(self.content)).encode()),
        ]
        raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.all_headers().items()]
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": self.content})


_JSON_TYPE = (b"content-type", b"application/json")


async def send_json(send: Any, content: bytes, rid: str, version: tuple[bytes, bytes]) -> None:
    """A 200 with a JSON body, its request id and the version that answered (the hot path)."""
    headers = [
        _JSON_TYPE,
        (b"content-length", b"%d" % len(content)),
        (b"x-request-id", rid.encode("latin-1")),
        version,
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": content})


async def read_request_body(request: Request, limit: int) -> bytes:
    return await receive_body(request.receive, request.headers.get("content-length"), limit)


def error_answer(err: ServingError, rid: str) -> Answer:
    headers = {"x-request-id": rid, **{k.lower(): v for k, v in err.headers.items()}}
    if err.plain:
        return Answer(err.status, err.message.encode(), "text/plain; charset=utf-8", headers)
    if err.details.pop("oip", False):
        body: dict[str, Any] = {"error": err.message}
    else:
        body = err.body(rid if err.status >= 500 else None)
    return Answer(err.status, orjson.dumps(body, default=str), JSON, headers)


def error_response(err: ServingError, rid: str) -> Response:
    return error_answer(err, rid).response()


def as_failure(exc: Exception, rid: str, timeout_s: float) -> ServingError:
    """The answer to a failed request: MLflow's codes for input errors, 504, or a logged 500."""
    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return ServingError(
            504, "DEADLINE_EXCEEDED", f"Request processing time exceeded {timeout_s:g} s."
        )
    if isinstance(exc, MloopError):
        return as_serving_error(exc)
    log.error("mloop serve: predict failed for request %s", rid, exc_info=exc)
    return ServingError(
        500, "INTERNAL_ERROR", f"The model failed on request {rid}: {type(exc).__name__}: {exc}"
    )


def read_labels(doc: Any) -> list[tuple[str, Any]]:
    items = doc.get("labels") if isinstance(doc, dict) and "labels" in doc else [doc]
    if isinstance(doc, list):
        items = doc
    if not isinstance(items, list) or not items:
        raise bad_request('Send {"request_id": ..., "label": ...} or {"labels": [...]}.')
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
            raise bad_request(f"labels[{i}] needs `request_id` and `label`.")
        out.append((str(item["request_id"]), item["label"]))
    return out
