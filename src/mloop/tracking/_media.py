"""Turning what a user logs as media into bytes and a small JSON meta, with no I/O.

- images: numpy arrays (HxW, HxWx1, HxWx3, HxWx4; uint8, or floats in [0, 1]), PIL images and
  PNG/JPEG files become PNG (JPEG files stay JPEG). PNG is written by Pillow when it is
  installed, else by :func:`encode_png` (zlib only);
- figures: a matplotlib figure is rendered to PNG; a plotly figure is kept as plotly's JSON,
  which the run page draws with plotly.js (interactive; no kaleido needed);
- tables: anything :func:`mloop.tables.read_table` accepts becomes Parquet;
- histograms: counts and edges computed here with numpy, so a 10M-value array costs a few
  hundred bytes.

The wrappers :class:`Image`, :class:`Histogram` and :class:`Table` let ``mloop.log({...})``
carry these next to scalars. numpy is needed for arrays and histograms; Pillow, matplotlib,
pandas and pyarrow load only for the values that need them.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Encoded",
    "Histogram",
    "Image",
    "MediaValue",
    "Table",
    "encode_figure",
    "encode_histogram",
    "encode_image",
    "encode_png",
    "encode_table",
    "is_media",
]

MAX_BINS = 512
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+alpha, RGB, RGBA)
_FIGURE_MODULES = ("matplotlib.", "plotly.")
_MAX_TABLE_COLUMNS_LISTED = 200


@dataclass(frozen=True)
class Encoded:
    """One media value ready to store: its ``kind``, bytes, file extension and meta."""

    kind: str
    data: bytes
    ext: str
    meta: dict[str, Any]


class MediaValue:
    """Base of the wrappers that ``mloop.log`` accepts beside numbers."""

    __slots__ = ()

    def encode(self) -> Encoded:
        raise NotImplementedError


class Image(MediaValue):
    """An image for ``mloop.log({"samples": mloop.Image(x)})``: a numpy array (HxW, HxWx3,
    HxWx4; uint8 or floats in [0, 1]), a PIL image or the path of a PNG/JPEG file."""

    __slots__ = ("image",)

    def __init__(self, image: Any) -> None:
        self.image = image

    def encode(self) -> Encoded:
        return encode_image(self.image)


class Histogram(MediaValue):
    """A histogram of ``values`` in ``bins`` equal bins (computed when logged, with numpy)."""

    __slots__ = ("bins", "values")

    def __init__(self, values: Any, *, bins: int = 64) -> None:
        self.values = values
        self.bins = bins

    def encode(self) -> Encoded:
        return encode_histogram(self.values, bins=self.bins)


class Table(MediaValue):
    """A table (pandas, polars, pyarrow...) stored as Parquet."""

    __slots__ = ("frame",)

    def __init__(self, frame: Any) -> None:
        self.frame = frame

    def encode(self) -> Encoded:
        return encode_table(self.frame)


def is_media(value: object) -> bool:
    """Whether ``mloop.log`` takes ``value`` as media: a wrapper, or a matplotlib/plotly figure."""
    if isinstance(value, MediaValue):
        return True
    return _is_figure(value)


def _is_figure(value: object) -> bool:
    cls = type(value)
    return cls.__module__.startswith(_FIGURE_MODULES) and cls.__name__ == "Figure"


def encode_media(value: Any) -> Encoded:
    """A wrapper or a figure given to ``mloop.log``, encoded."""
    if isinstance(value, MediaValue):
        return value.encode()
    return encode_figure(value)


# ------------------------------------------------------------------------------------------ PNG
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def encode_png(pixels: np.ndarray, *, level: int = 6) -> bytes:
    """PNG bytes of a uint8 array HxW (grey), HxWx2 (grey+alpha), HxWx3 (RGB) or HxWx4 (RGBA).

    Each row uses PNG's ``Up`` filter (the difference to the row above), which compresses
    smooth images far better than no filter and costs one vectorised subtraction.

    Examples
    --------
    >>> import numpy as np
    >>> encode_png(np.zeros((2, 3), dtype=np.uint8))[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    import numpy as np

    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise InvalidInputError(
            f"`pixels` must be a uint8 array HxW or HxWxC; got {pixels.dtype} with shape "
            f"{pixels.shape}."
        )
    h, w = pixels.shape[:2]
    c = 1 if pixels.ndim == 2 else pixels.shape[2]
    if c not in _PNG_COLOR or h < 1 or w < 1:
        raise InvalidInputError(
            f"`pixels` must have 1 to 4 channels and at least one pixel; got shape {pixels.shape}."
        )
    rows = np.ascontiguousarray(pixels).reshape(h, w * c)
    raw = np.empty((h, w * c + 1), dtype=np.uint8)
    raw[:, 0] = 2  # filter type Up
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])  # uint8 arithmetic wraps, as PNG wants
    header = struct.pack(">IIBBBBB", w, h, 8, _PNG_COLOR[c], 0, 0, 0)
    return (
        _PNG_SIG
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw.tobytes(), level))
        + _chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    if data[:8] != _PNG_SIG or data[12:16] != b"IHDR":
        raise InvalidInputError("the image is not a PNG (no PNG signature and header).")
    w, h = struct.unpack(">II", data[16:24])
    return int(w), int(h)


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's first start-of-frame marker."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(w), int(h)
        i += 2 + length
    raise InvalidInputError("the JPEG file has no readable frame header; is it complete?")


# ----------------------------------------------------------------------------------------- images
def _pillow_png(pixels: np.ndarray) -> bytes | None:
    """PNG by Pillow when it is installed (better compression), else None."""
    try:
        from PIL import Image as PILImage
    except ImportError:
        return None
    import io

    buf = io.BytesIO()
    img = pixels[:, :, 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
    PILImage.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _as_uint8(image: Any) -> np.ndarray:
    import numpy as np

    arr = np.asarray(image)
    shape_ok = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4))
    if not shape_ok or arr.size == 0:
        raise InvalidInputError(
            "`image` must be an array of shape HxW, HxWx1, HxWx3 or HxWx4 (channels last) with "
            f"at least one pixel; got shape {arr.shape}."
        )
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        lo, hi = (float(arr.min()), float(arr.max())) if finite.all() else (np.nan, np.nan)
        if not (lo >= 0.0 and hi <= 1.0):
            raise InvalidInputError(
                "`image` must hold floats in [0, 1] (or be uint8 in [0, 255]); got values in "
                f"[{lo:.4g}, {hi:.4g}]" + ("" if finite.all() else " with NaN or inf") + "."
            )
        return np.rint(arr * 255.0).astype(np.uint8)
    if arr.dtype.kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise InvalidInputError(
                f"`image` must hold integers in [0, 255] (or floats in [0, 1]); got {arr.dtype} "
                f"values in [{lo}, {hi}]."
            )
        return arr.astype(np.uint8)
    raise InvalidInputError(
        f"`image` must be a uint8, integer, bool or float array; got dtype {arr.dtype}."
    )


def _image_file(path: str | os.PathLike[str]) -> Encoded:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InvalidInputError(
            f"`image` must be a readable PNG or JPEG file; got {os.fspath(path)!r} ({exc.strerror})."
        ) from None
    if data[:8] == _PNG_SIG:
        w, h = png_size(data)
        return Encoded("image", data, "png", {"width": w, "height": h, "format": "png"})
    if data[:3] == b"\xff\xd8\xff":
        w, h = jpeg_size(data)
        return Encoded("image", data, "jpg", {"width": w, "height": h, "format": "jpeg"})
    raise InvalidInputError(
        f"`image` must be a PNG or JPEG file; got {os.fspath(path)!r}, which is neither "
        f"(starts with {data[:8]!r})."
    )


def encode_image(image: Any) -> Encoded:
    """An image as PNG (or its JPEG file as it is), with width, height and channels."""
    if isinstance(image, (str, os.PathLike)):
        return _image_file(image)
    cls = type(image)
    if cls.__module__.startswith("PIL.") and hasattr(image, "mode"):
        if image.mode not in ("L", "LA", "RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.mode or image.mode == "P" else "RGB")
        import numpy as np

        pixels = np.asarray(image)
    elif hasattr(image, "__array__") or isinstance(image, (list, tuple)):
        pixels = _as_uint8(image)
    else:
        raise InvalidInputError(
            "`image` must be a numpy array (HxW, HxWx3, HxWx4), a PIL image or the path of a "
            f"PNG/JPEG file; got {cls.__name__}."
        )
    data = _pillow_png(pixels)
    if data is None:
        data = encode_png(pixels)
    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else int(pixels.shape[2])
    return Encoded(
        "image", data, "png", {"width": w, "height": h, "channels": channels, "format": "png"}
    )


# ---------------------------------------------------------------------------------------- figures
def encode_figure(fig: Any) -> Encoded:
    """A matplotlib figure as PNG (with its width and height in pixels), or a plotly figure as
    its JSON (with its number of traces)."""
    module = type(fig).__module__
    if module.startswith("matplotlib.") and hasattr(fig, "savefig"):
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        data = buf.getvalue()
        source = "matplotlib"
    elif module.startswith("plotly.") and hasattr(fig, "to_json"):
        # plotly's own JSON (data + layout): the run page draws it with plotly.js, interactive,
        # and nothing has to render it here (a PNG would need kaleido and a browser).
        data = fig.to_json().encode("utf-8")
        traces = len(getattr(fig, "data", None) or ())
        return Encoded("figure", data, "plotly.json", {"source": "plotly", "traces": traces})
    else:
        raise InvalidInputError(
            "`fig` must be a matplotlib Figure or a plotly Figure; got "
            f"{type(fig).__module__}.{type(fig).__name__}."
        )
    w, h = png_size(data)
    return Encoded("figure", data, "png", {"width": w, "height": h, "source": source})


# ----------------------------------------------------------------------------------------- tables
def encode_table(frame: Any) -> Encoded:
    """A table as Parquet, with its row count and column names."""
    import io

    import pyarrow.parquet as pq

    from mloop import tables

    if not tables.is_table(frame):
        raise InvalidInputError(
            "`frame` must be a table (a pandas or polars DataFrame, a pyarrow Table, a dict of "
            f"columns...); got {type(frame).__name__}."
        )
    table = tables.read_table(frame, what="frame")
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    names = [str(n) for n in table.column_names]
    meta = {
        "rows": int(table.num_rows),
        "n_columns": len(names),
        "columns": names[:_MAX_TABLE_COLUMNS_LISTED],
    }
    return Encoded("table", buf.getvalue(), "parquet", meta)


# ------------------------------------------------------------------------------------- histograms
def encode_histogram(values: Any, *, bins: int = 64) -> Encoded:
    """Counts of the finite ``values`` in ``bins`` equal bins between their min and max.

    The bytes (JSON) and the meta hold the same edges and counts; NaN and infinities are
    counted apart (``nonfinite``).
    """
    import json

    import numpy as np

    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= MAX_BINS:
        raise InvalidInputError(f"`bins` must be an int in [1, {MAX_BINS}]; got {bins!r}.")
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"`values` must be numbers (an array, a list...); got {type(values).__name__}."
        ) from None
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        raise InvalidInputError(
            f"`values` must hold at least one finite number; got {arr.size} values, none finite."
        )
    counts, edges = np.histogram(finite, bins=bins)
    meta = {
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
        "total": int(finite.size),
        "nonfinite": int(arr.size - finite.size),
    }
    data = json.dumps(meta, separators=(",", ":")).encode()
    return Encoded("histogram", data, "json", meta)
