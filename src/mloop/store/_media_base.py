"""The media index: a run's images, figures, tables and histograms, by key and step.

The bytes of each item are an ordinary artifact of the run (a content-addressed blob listed in
its artifact index, so previews, downloads and garbage collection treat them like any file);
this index says which artifact holds which key at which step, of which kind, with a small JSON
``meta`` (an image's width and height, a table's rows and columns, a histogram's edges and
counts), so a run page lists a run's media in one query.

An item is keyed by (run, key, step): recording the same key and step again replaces it, which
is what makes a replayed spool record harmless. An item must point at an artifact the run has.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mloop.codec import WireEntity
from mloop.errors import InvalidInputError
from mloop.store._checks_base import _int, _one_of
from mloop.store._validation import validate_artifact_path, validate_key, validate_run_id

__all__ = [
    "MAX_MEDIA_META_BYTES",
    "MEDIA_KINDS",
    "MediaItem",
    "MediaStoreMixin",
    "validate_media_item",
]

MEDIA_KINDS: tuple[str, ...] = ("image", "figure", "table", "histogram")
# A histogram of 512 bins keeps its edges and counts in ``meta`` in well under this.
MAX_MEDIA_META_BYTES = 64 * 1024
_MAX_ITEMS = 10_000
_STEP_LIMIT = 1 << 63


@dataclass(frozen=True)
class MediaItem(WireEntity):
    """One logged image, figure, table or histogram of a run.

    Attributes
    ----------
    key : str
        What was logged (named like a metric, e.g. ``"val/samples"``).
    step : int
        The step it was logged at (tables: 0 unless given).
    kind : str
        One of :data:`MEDIA_KINDS`.
    path : str
        The run's artifact holding the bytes (PNG, Parquet, JSON).
    meta : mapping
        Small JSON facts: ``width``/``height`` (images, figures), ``rows``/``columns`` (tables),
        ``edges``/``counts`` (histograms).
    timestamp_ms : int
        When it was logged.
    """

    key: str
    step: int
    kind: str
    path: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    timestamp_ms: int = 0


def _meta(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidInputError(
            f"`meta` must be a mapping with str keys; got {type(value).__name__}."
        )
    try:
        text = json.dumps(dict(value), allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"`meta` must hold JSON values (finite numbers, str, lists, mappings); got {exc}."
        ) from None
    if len(text) > MAX_MEDIA_META_BYTES:
        raise InvalidInputError(
            f"`meta` must be at most {MAX_MEDIA_META_BYTES} bytes as JSON; got {len(text)}."
        )
    return value


def validate_media_item(item: object) -> MediaItem:
    """``item`` if it is a well-formed :class:`MediaItem`."""
    if not isinstance(item, MediaItem):
        raise InvalidInputError(f"`item` must be a MediaItem; got {type(item).__name__}.")
    validate_key(item.key, kind="media")
    step = item.step
    if (
        isinstance(step, bool)
        or not isinstance(step, int)
        or not -_STEP_LIMIT <= step < _STEP_LIMIT
    ):
        raise InvalidInputError(f"`step` must be a signed 64-bit int; got {step!r}.")
    _one_of(item.kind, MEDIA_KINDS, what="kind")
    validate_artifact_path(item.path, name="path")
    _meta(item.meta)
    _int(item.timestamp_ms, what="timestamp_ms", low=0)
    return item


class MediaStoreMixin(abc.ABC):
    """The media index of runs (the bytes are the runs' artifacts)."""

    def add_media(self, run_id: str, items: Iterable[MediaItem]) -> None:
        """Index ``items`` of run ``run_id``; an item at a (key, step) already indexed replaces it.

        Raises
        ------
        InvalidInputError
            A malformed item, two items at one (key, step), or more than 10000 items.
        NotFoundError
            No such run, or an item's ``path`` is not one of the run's artifacts.
        """
        rid = validate_run_id(run_id)
        if isinstance(items, (str, bytes, MediaItem)) or not isinstance(items, Iterable):
            raise InvalidInputError(
                f"`items` must be an iterable of MediaItem; got {type(items).__name__}."
            )
        clean = [validate_media_item(i) for i in items]
        if len(clean) > _MAX_ITEMS:
            raise InvalidInputError(
                f"`items` must hold at most {_MAX_ITEMS} items per call; got {len(clean)}."
            )
        seen = {(i.key, i.step) for i in clean}
        if len(seen) != len(clean):
            raise InvalidInputError("`items` must not hold two items at the same (key, step).")
        if clean:
            self._do_add_media(rid, clean)

    def list_media(
        self, run_id: str, *, key: str | None = None, kind: str | None = None
    ) -> list[MediaItem]:
        """Run ``run_id``'s media ordered by key then step, of one key or kind or all.

        Raises
        ------
        NotFoundError
            No such run.
        """
        rid = validate_run_id(run_id)
        if key is not None:
            validate_key(key, kind="media")
        if kind is not None:
            _one_of(kind, MEDIA_KINDS, what="kind")
        return self._do_list_media(rid, key, kind)

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _do_add_media(self, run_id: str, items: list[MediaItem]) -> None: ...
    @abc.abstractmethod
    def _do_list_media(self, run_id: str, key: str | None, kind: str | None) -> list[MediaItem]: ...
