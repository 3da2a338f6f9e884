"""``Run.log_image`` / ``log_figure`` / ``log_table`` / ``log_histogram``: media as artifacts
plus an index entry, written together (or spooled together when the store is out of reach)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mloop._digest import short
from mloop.errors import InvalidInputError, MloopError
from mloop.ids import now_ms
from mloop.store import ArtifactEntry, MediaItem, validate_key
from mloop.tracking._media import (
    Encoded,
    encode_figure,
    encode_histogram,
    encode_image,
    encode_media,
    encode_table,
)

if TYPE_CHECKING:
    from mloop.artifacts import BlobStore
    from mloop.store import Store

__all__ = ["MediaLogging"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._/-]")
_MAX_STEP = 1 << 63


def _step(step: object) -> int:
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise InvalidInputError(f"`step` must be an int; got {type(step).__name__} {step!r}.")
    value = int(step)
    if not -_MAX_STEP <= value < _MAX_STEP:
        raise InvalidInputError(f"`step` must fit in a signed 64-bit int; got {value}.")
    return value


class MediaLogging:
    """Mixed into :class:`~mloop.tracking.Run`; relies on its blob store and ``_record``."""

    id: str
    _finished: bool
    _artifact_paths: set[str]
    _media_steps: dict[str, int]
    _media_lock: threading.Lock

    # Provided by Run.
    def _blobs(self) -> BlobStore:
        raise NotImplementedError

    def _record(self, op: str, fn: Any, record: Mapping[str, Any]) -> None:
        raise NotImplementedError

    @property
    def store(self) -> Store | None:
        raise NotImplementedError

    # ------------------------------------------------------------------ public
    def log_image(self, image: Any, key: str, step: int | None = None) -> MediaItem:
        """Store an image (PNG) under ``key`` at ``step``.

        Parameters
        ----------
        image : array, PIL image or path
            A numpy array HxW, HxWx1, HxWx3 or HxWx4 (uint8, or floats in [0, 1]), a PIL image,
            or the path of a PNG or JPEG file (stored as it is).
        key : str
            Named like a metric, e.g. ``"val/samples"``.
        step : int, optional
            Default: one more than this key's previous step in this run (0 the first time).

        Returns
        -------
        MediaItem
            The index entry (its ``path`` is the run's artifact with the bytes).

        Raises
        ------
        InvalidInputError
            ``image`` is not one of the above, has values out of range, or ``key`` is malformed.
        """
        return self._log_encoded(encode_image, image, key, step)

    def log_figure(self, fig: Any, key: str, step: int | None = None) -> MediaItem:
        """Store a matplotlib figure as a PNG, or a plotly figure as its JSON (the run page
        draws it with plotly.js).

        ``step`` defaults as in :meth:`log_image`. The figure is left open (close it with
        ``plt.close(fig)`` when done).
        """
        return self._log_encoded(encode_figure, fig, key, step)

    def log_table(self, frame: Any, key: str, step: int | None = None) -> MediaItem:
        """Store a table (pandas or polars DataFrame, pyarrow Table, dict of columns) as Parquet.

        ``step`` defaults as in :meth:`log_image`.
        """
        return self._log_encoded(encode_table, frame, key, step)

    def log_histogram(
        self, values: Any, key: str, step: int | None = None, *, bins: int = 64
    ) -> MediaItem:
        """Store the histogram of ``values`` (``bins`` equal bins between their min and max).

        The counts are computed here, with numpy: the stored item is a few hundred bytes however
        many values there are. NaN and infinities are counted apart. ``step`` defaults as in
        :meth:`log_image`.
        """
        return self._log_encoded(lambda v: encode_histogram(v, bins=bins), values, key, step)

    # ------------------------------------------------------------------ internals
    def _log_encoded(
        self, encode: Callable[[Any], Encoded], value: Any, key: str, step: int | None
    ) -> MediaItem:
        self._check_open()
        validate_key(key, kind="media")
        chosen = None if step is None else _step(step)
        encoded = encode(value)
        return self._store_media([(key, encoded)], chosen)[0]

    def _log_media_values(self, values: Mapping[str, Any], step: int) -> None:
        """The media among ``run.log``'s values, already separated from the numbers."""
        encoded = [(k, encode_media(v)) for k, v in values.items()]
        self._store_media(encoded, step)

    def _check_open(self) -> None:
        if self._finished:
            raise MloopError(f"run {self.id} is finished; start a new run to log more.")

    def _store_media(self, encoded: list[tuple[str, Encoded]], step: int | None) -> list[MediaItem]:
        blobs = self._blobs()
        entries: list[ArtifactEntry] = []
        items: list[MediaItem] = []
        ts = now_ms()
        for key, enc in encoded:
            with self._media_lock:
                at = self._media_steps.get(key, -1) + 1 if step is None else step
                self._media_steps[key] = max(at, self._media_steps.get(key, at))
            sha, size = blobs.put_bytes(enc.data)
            folder = _UNSAFE.sub("_", key)
            path = f"media/{folder}/{at}-{short(sha)}.{enc.ext}"
            entries.append(ArtifactEntry(path, size, sha))
            items.append(MediaItem(key, at, enc.kind, path, enc.meta, ts))

        def _write() -> None:
            store = self.store
            assert store is not None
            store.add_artifacts(self.id, entries)
            store.add_media(self.id, items)

        self._record(
            "add_media",
            _write,
            {
                "entries": [[e.path, e.size, e.sha256] for e in entries],
                "items": [i.to_dict() for i in items],
            },
        )
        self._artifact_paths.update(e.path for e in entries)
        return items
