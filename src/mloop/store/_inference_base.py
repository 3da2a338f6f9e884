"""The inference log's index and delayed labels: the serving layer's persistence seam.

Served requests are written as Parquet chunks to the artifact store (by ``mloop.inference``); the
store keeps one index row per chunk (:class:`InferenceChunk`), whose monotonic ``id`` is a reader's
cursor, and the labels that arrive later for individual requests (:class:`InferenceLabel`).

Ids are assigned in commit order per deployment (PostgreSQL writers hold a per-deployment
advisory lock until they commit; SQLite has one writer), so a reader that has seen id ``n`` never
later finds a smaller id committed behind it.
"""

from __future__ import annotations

import abc
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mloop.codec import WireEntity
from mloop.errors import InvalidInputError
from mloop.store._common import validate_max_results
from mloop.store._validation import validate_digest, validate_name, validate_text

__all__ = [
    "InferenceChunk",
    "InferenceLabel",
    "InferenceStoreMixin",
    "validate_request_id",
]

MAX_LABEL_TEXT = 10_000
MAX_VERSION_KEY = 300
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class InferenceChunk(WireEntity):
    """One Parquet chunk of a deployment's inference log, as indexed in the store.

    ``model_versions`` counts the rows each model version served in the chunk
    (``{"churn/3": 980, "churn/4": 20}``); ``first_ts_ms``/``last_ts_ms`` bound its request times.
    """

    id: int
    deployment: str
    sha256: str
    size: int
    n_rows: int
    first_ts_ms: int
    last_ts_ms: int
    model_versions: Mapping[str, int]
    created_ms: int


@dataclass(frozen=True)
class InferenceLabel(WireEntity):
    """The label of one served request. ``id`` is a cursor; a new label for the same request
    replaces the old one and takes a new id (it moves to the end of the list)."""

    id: int
    deployment: str
    request_id: str
    label: Any
    ts_ms: int


def validate_request_id(request_id: object) -> str:
    """A request id: 1 to 64 characters of letters, digits, ``_`` and ``-``."""
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        shown = request_id if isinstance(request_id, str) else type(request_id).__name__
        raise InvalidInputError(
            "a request id must be 1 to 64 characters of letters, digits, '_' and '-'; "
            f"got {shown!r}."
        )
    return request_id


def _deployment(deployment: object) -> str:
    return validate_name(deployment, what="deployment name")


def _int(value: object, *, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"`{name}` must be an int >= {minimum}; got {value!r}.")
    if value >= 2**63:
        raise InvalidInputError(f"`{name}` must be below 2**63; got {value!r}.")
    return value


def _model_versions(value: object) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            "`model_versions` must be a mapping of model version (e.g. 'churn/3') to the number "
            f"of rows it served; got {type(value).__name__}."
        )
    out: dict[str, int] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k or len(k) > MAX_VERSION_KEY:
            raise InvalidInputError(
                f"`model_versions` keys must be non-empty strings of at most {MAX_VERSION_KEY} "
                f"characters; got {k!r}."
            )
        out[validate_text(k, what="model version")] = _int(v, name=f"model_versions[{k!r}]")
    return out


def _label_json(request_id: str, label: object) -> str:
    """A label as JSON text: numbers (finite), strings and booleans; numpy scalars too."""
    item = getattr(label, "item", None)
    if item is not None and type(label).__module__ == "numpy":
        label = item()
    if isinstance(label, float) and not math.isfinite(label):
        raise InvalidInputError(
            f"the label of request {request_id!r} must be a finite number; got {label!r}."
        )
    if isinstance(label, str):
        if len(label) > MAX_LABEL_TEXT:
            raise InvalidInputError(
                f"the label of request {request_id!r} must have at most {MAX_LABEL_TEXT} "
                f"characters; got {len(label)}."
            )
        validate_text(label, what=f"the label of request {request_id!r}")
    elif not isinstance(label, (bool, int, float)):
        raise InvalidInputError(
            f"the label of request {request_id!r} must be a number, a string or a boolean; "
            f"got {type(label).__name__} {label!r:.80}."
        )
    return json.dumps(label)


def _label_items(labels: object) -> Iterable[tuple[object, object]]:
    if isinstance(labels, Mapping):
        return labels.items()
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        raise InvalidInputError(
            "`labels` must be a mapping {request_id: label} or a sequence of (request_id, label) "
            f"pairs; got {type(labels).__name__}."
        )
    return (_pair(x) for x in labels)


def _pair(item: object) -> tuple[object, object]:
    if isinstance(item, Mapping):
        if "request_id" not in item or "label" not in item:
            raise InvalidInputError(
                f"a label given as a mapping needs the keys 'request_id' and 'label'; got "
                f"{sorted(map(str, item))}."
            )
        return item["request_id"], item["label"]
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0], item[1]
    raise InvalidInputError(
        f"each label must be a (request_id, label) pair; got {type(item).__name__} {item!r:.80}."
    )


class InferenceStoreMixin(abc.ABC):
    """The inference log's chunk index and the labels joined to it later."""

    # ------------------------------------------------------------------ chunks
    def add_inference_chunk(
        self,
        deployment: str,
        *,
        sha256: str,
        size: int,
        n_rows: int,
        first_ts_ms: int,
        last_ts_ms: int,
        model_versions: Mapping[str, int],
    ) -> InferenceChunk:
        """Index one chunk written to the artifact store.

        Idempotent: the same ``(deployment, sha256)`` again (a retried flush) returns the row
        already stored, with its original id.
        """
        first = _int(first_ts_ms, name="first_ts_ms")
        last = _int(last_ts_ms, name="last_ts_ms")
        if last < first:
            raise InvalidInputError(f"`last_ts_ms` must be >= `first_ts_ms`; got {last} < {first}.")
        return self._do_add_inference_chunk(
            _deployment(deployment),
            validate_digest(sha256),
            _int(size, name="size"),
            _int(n_rows, name="n_rows"),
            first,
            last,
            _model_versions(model_versions),
        )

    def list_inference_chunks(
        self,
        deployment: str,
        *,
        after_id: int = 0,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 1000,
    ) -> list[InferenceChunk]:
        """Chunks with ``id > after_id`` in id order, at most ``limit``.

        ``since_ms``/``until_ms`` keep the chunks whose request times overlap
        ``[since_ms, until_ms)``: ``last_ts_ms >= since_ms`` and ``first_ts_ms < until_ms``.
        """
        validate_max_results(limit, name="limit")
        since = None if since_ms is None else _int(since_ms, name="since_ms")
        until = None if until_ms is None else _int(until_ms, name="until_ms")
        return self._do_list_inference_chunks(
            _deployment(deployment), _int(after_id, name="after_id"), since, until, limit
        )

    def delete_inference_chunks(self, deployment: str, ids: Sequence[int]) -> int:
        """Remove index rows (retention); returns how many existed. The blobs are the caller's."""
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise InvalidInputError(f"`ids` must be a sequence of ints; got {type(ids).__name__}.")
        checked = sorted({_int(i, name="chunk id", minimum=1) for i in ids})
        if not checked:
            return 0
        return self._do_delete_inference_chunks(_deployment(deployment), checked)

    # ------------------------------------------------------------------ labels
    def log_labels(
        self,
        deployment: str,
        labels: Sequence[tuple[str, Any]] | Mapping[str, Any],
        *,
        ts_ms: int | None = None,
    ) -> int:
        """Store the labels of served requests, in one transaction; returns how many were stored.

        ``labels`` maps request ids to labels (a number, a string or a boolean), as a mapping or
        as ``(request_id, label)`` pairs (or ``{"request_id", "label"}`` mappings). A request
        labelled again keeps its last label; within one call, the last pair for a request wins.
        """
        name = _deployment(deployment)
        ts = None if ts_ms is None else _int(ts_ms, name="ts_ms")
        rows: dict[str, str] = {}
        for rid, label in _label_items(labels):
            rid = validate_request_id(rid)
            rows.pop(rid, None)  # keep the order of the last occurrence
            rows[rid] = _label_json(rid, label)
        if not rows:
            return 0
        return self._do_log_labels(name, rows, ts)

    def get_labels(self, deployment: str, request_ids: Sequence[str]) -> dict[str, Any]:
        """The labels of those of ``request_ids`` that have one."""
        if isinstance(request_ids, (str, bytes)) or not isinstance(request_ids, Iterable):
            raise InvalidInputError(
                f"`request_ids` must be a sequence of request ids; got {type(request_ids).__name__}."
            )
        ids = list(dict.fromkeys(validate_request_id(r) for r in request_ids))
        if not ids:
            return {}
        return self._do_get_labels(_deployment(deployment), ids)

    def list_labels(
        self, deployment: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[InferenceLabel]:
        """Labels with ``id > after_id`` in id order (a re-labelled request appears once, last)."""
        validate_max_results(limit, name="limit")
        return self._do_list_labels(_deployment(deployment), _int(after_id, name="after_id"), limit)

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _do_add_inference_chunk(
        self,
        deployment: str,
        sha256: str,
        size: int,
        n_rows: int,
        first_ts_ms: int,
        last_ts_ms: int,
        model_versions: dict[str, int],
    ) -> InferenceChunk: ...
    @abc.abstractmethod
    def _do_list_inference_chunks(
        self,
        deployment: str,
        after_id: int,
        since_ms: int | None,
        until_ms: int | None,
        limit: int,
    ) -> list[InferenceChunk]: ...
    @abc.abstractmethod
    def _do_delete_inference_chunks(self, deployment: str, ids: list[int]) -> int: ...
    @abc.abstractmethod
    def _do_log_labels(self, deployment: str, labels: dict[str, str], ts_ms: int | None) -> int:
        """Upsert ``labels`` (request id -> label as JSON text)."""

    @abc.abstractmethod
    def _do_get_labels(self, deployment: str, request_ids: list[str]) -> dict[str, Any]: ...
    @abc.abstractmethod
    def _do_list_labels(
        self, deployment: str, after_id: int, limit: int
    ) -> list[InferenceLabel]: ...
