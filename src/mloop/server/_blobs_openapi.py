"""The OpenAPI operations of the artifact routes (:mod:`mloop.server._blobs`): streamed bodies and
answers, so written by hand here, beside the routes, once."""

from __future__ import annotations

from typing import Any

from mloop.server._openapi import error_responses

__all__ = ["blob_operation", "blob_status_code"]

_JSON = "application/json"
# A blob's digest ('blake3-' + 64 hex; 64 hex alone is a sha256, the name of blobs from mloop 0.1).
_SHA = {"type": "string", "pattern": "^(blake3-)?[0-9a-f]{64}$"}
_SIZE = {"type": "integer", "minimum": 0}
_BINARY = {"type": "string", "format": "binary"}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _bytes(media_type: str) -> dict[str, Any]:
    return {"required": True, "content": {media_type: {"schema": _BINARY}}}


def _file(media_type: str, *, head: bool) -> dict[str, Any]:
    """A content-addressed file: 200 whole, 206 one range, 304 unchanged; HEAD without bodies."""
    headers = {
        "ETag": {"schema": {"type": "string"}, "description": "The sha256, quoted."},
        "Content-Length": {"schema": {"type": "integer"}},
    }
    body = {} if head else {"content": {media_type: {"schema": _BINARY}}}
    return {
        "200": {"description": "The file (or its size, for HEAD).", "headers": headers, **body},
        "206": {"description": "The one range asked for (Range).", "headers": headers, **body},
        "304": {"description": "Not modified (If-None-Match named its ETag)."},
    }


_STORED = _object({"sha256": _SHA, "size": _SIZE})
_UPLOAD = _object(
    {
        "upload_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "offset": _SIZE,
        "size": _SIZE,
        "sha256": _SHA,
    }
)
_RANGE = {
    "name": "Range",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "One byte range, e.g. bytes=0-1023.",
}

# Route name -> its OpenAPI fields (responses include the error answers).
_OPERATIONS: dict[str, dict[str, Any]] = {
    "list_blobs": {
        "responses": {
            "200": {
                "description": "One JSON object {sha256, size, mtime} per line.",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            }
        }
    },
    "upload_blob_stream": {
        "requestBody": _bytes("application/octet-stream"),
        "responses": {"201": _json("Stored under its sha256.", _STORED)},
    },
    "missing_blobs": {
        "requestBody": {
            "required": True,
            "content": {
                _JSON: {
                    "schema": _object(
                        {"sha256": {"type": "array", "items": _SHA, "maxItems": 10_000}}
                    )
                }
            },
        },
        "responses": {
            "200": _json(
                "The digests not stored.", _object({"missing": {"type": "array", "items": _SHA}})
            )
        },
    },
    "upload_blob": {
        "requestBody": _bytes("application/octet-stream"),
        "responses": {"200": _json("Stored (or already stored).", _STORED)},
    },
    "download_blob": {
        "parameters": [_RANGE],
        "responses": {
            **_file("application/octet-stream", head=False),
            "307": {"description": "A presigned URL of the artifact store (Location)."},
        },
    },
    "blob_size": {"parameters": [_RANGE], "responses": _file("", head=True)},
    "blob_url": {
        "parameters": [
            {
                "name": "expires_s",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 604_800},
            }
        ],
        "responses": {
            "200": _json(
                "A URL that reads the blob.",
                _object(
                    {
                        "sha256": _SHA,
                        "size": _SIZE,
                        "url": {"type": "string"},
                        "presigned": {"type": "boolean"},
                        "expires_at_ms": {"type": ["integer", "null"]},
                    }
                ),
            )
        },
    },
    "delete_blob": {"responses": {"204": {"description": "Deleted."}}},
    "upload_dataset_file": {
        "requestBody": _bytes("application/vnd.apache.parquet"),
        "responses": {
            "200": _json(
                "Stored: the data hashes to the digest in the path.",
                _object({"sha256": _SHA, "num_rows": _SIZE}),
            )
        },
    },
    "download_dataset_file": {
        "parameters": [_RANGE],
        "responses": _file("application/vnd.apache.parquet", head=False),
    },
    "dataset_file_size": {"parameters": [_RANGE], "responses": _file("", head=True)},
    "create_upload": {
        "requestBody": {
            "required": True,
            "content": {_JSON: {"schema": _object({"sha256": _SHA, "size": _SIZE})}},
        },
        "responses": {
            "201": _json("An upload session, to PATCH from `offset` on.", _UPLOAD),
            "200": _json(
                "The blob is stored already: nothing to upload.",
                _object({"done": {"const": True}, "sha256": _SHA, "size": _SIZE}),
            ),
        },
    },
    "upload_status": {
        "responses": {
            "200": _json(
                "Where to resume: the bytes held.",
                _object({"offset": _SIZE, "size": _SIZE, "sha256": _SHA}),
            )
        }
    },
    "append_upload": {
        "parameters": [
            {
                "name": "Upload-Offset",
                "in": "header",
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
                "description": "The bytes the server holds already (upload_status).",
            }
        ],
        "requestBody": _bytes("application/octet-stream"),
        "responses": {
            "200": _json("The bytes now held.", _object({"offset": _SIZE, "size": _SIZE}))
        },
    },
    "complete_upload": {"responses": {"200": _json("Stored as a blob.", _STORED)}},
    "abandon_upload": {"responses": {"204": {"description": "Abandoned."}}},
}
_RANGED = {"download_blob", "blob_size", "download_dataset_file", "dataset_file_size"}


def blob_operation(name: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``openapi_extra`` of artifact route ``name`` (its path ``parameters`` first)."""
    op = _OPERATIONS[name]
    out: dict[str, Any] = {k: v for k, v in op.items() if k != "responses"}
    out["parameters"] = [*parameters, *op.get("parameters", ())]
    if not out["parameters"]:
        del out["parameters"]
    # An upload is streamed to the artifact store whatever its size: no 413.
    errors = error_responses(with_body=False, extra=(416,) if name in _RANGED else ())
    out["responses"] = {**errors, **op["responses"]}
    return out


def blob_status_code(name: str) -> int:
    """The status of artifact route ``name``'s usual success (the document's first answer)."""
    codes = [int(k) for k in _OPERATIONS[name]["responses"]]
    return 201 if 201 in codes else min(codes)
