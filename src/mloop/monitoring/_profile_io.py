"""The saved form of a :class:`~mloop.monitoring.Profile`: numpy arrays + one JSON metadata entry.

Written with ``np.savez`` and read with ``allow_pickle=False``: nothing in a profile file can execute
code on load. KLL and frequent-items sketches are stored in their own compact binary serializations.

Versions: 1 (exact categorical counts only; ``max_exact`` always an int) is still read; 2 adds
``max_exact: null`` (the compact rule), ``max_categories``, a numeric column's ``bin_error`` and
categorical frequent-items sketches (entry ``c<i>.fi``).
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from mloop.codec import dumps, float_from_wire
from mloop.errors import InvalidInputError
from mloop.monitoring._profile_categorical import sketch_from_bytes

if TYPE_CHECKING:
    from mloop.monitoring._profile import Profile
    from mloop.monitoring._profile_columns import CategoricalProfile, ColumnProfile, NumericProfile


class ProfileClasses(NamedTuple):
    """The classes a loaded profile is built from (given by ``Profile.load``, which owns them)."""

    profile: type[Profile]
    numeric: type[NumericProfile]
    categorical: type[CategoricalProfile]
    sketched_categorical: Callable[..., CategoricalProfile]


__all__ = [
    "FORMAT",
    "VERSION",
    "ProfileClasses",
    "dump",
    "load",
    "looks_like_profile",
    "not_a_table",
]

#: The ``format`` and newest ``version`` a profile file's header carries.
FORMAT = "mloop-profile"
VERSION = 2
#: ``max_categories`` of a profile written before categorical sketches existed (no limit).
_V1_MAX_CATEGORIES = 2**62
_NUMERIC_ARRAYS = ("edges", "bin_counts", "values", "weights", "discrete_values", "discrete_counts")
#: Suffixes a saved profile goes by (``mloop profile -o ref.profile``; ``np.savez`` habit ``.npz``).
PROFILE_SUFFIXES = (".profile", ".npz")
# A saved profile is a zip archive: local file header, or the end record of an empty archive.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# What goes wrong reading a damaged archive: zip structure, zlib, npy headers, missing entries,
# metadata that is not the JSON we wrote, a KLL sketch whose bytes were cut.
_DAMAGE = (
    zipfile.BadZipFile,
    zlib.error,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    UnicodeDecodeError,
)


def _num(x: float | None) -> float | None:
    return None if x is None else float(x)


def dump(profile: Profile, fmt: str, version: int) -> dict[str, np.ndarray]:
    """Arrays to ``np.savez``; entry ``meta`` holds the JSON metadata as bytes."""
    arrays: dict[str, np.ndarray] = {}
    cols: list[dict[str, Any]] = []
    for i, (name, col) in enumerate(profile.columns.items()):
        meta: dict[str, Any] = {
            "name": name,
            "kind": col.kind,
            "source": col.source,
            "n": col.n,
            "n_missing": col.n_missing,
        }
        if col.kind == "numeric":
            meta.update(n_inf=col.n_inf, min=_num(col.min), max=_num(col.max))
            meta.update(mean=col.mean, m2=col.m2, bin_error=col.bin_error)
            for key in _NUMERIC_ARRAYS:
                value = getattr(col, key)
                if value is not None:
                    arrays[f"c{i}.{key}"] = value
            if col.sketch is not None:
                arrays[f"c{i}.sketch"] = np.frombuffer(col.sketch.serialize(), dtype=np.uint8)
        elif col.sketch is not None:  # the labels and counts are read back from the sketch
            arrays[f"c{i}.fi"] = np.frombuffer(col.sketch.serialize(), dtype=np.uint8)
        else:
            meta["categories"] = col.categories
            arrays[f"c{i}.counts"] = col.counts
        cols.append(meta)
    header = {
        "format": fmt,
        "version": version,
        "n_rows": profile.n_rows,
        "bins": profile.bins,
        "max_exact": profile.max_exact,
        "sketch_k": profile.sketch_k,
        "max_categories": profile.max_categories,
        "columns": cols,
    }
    arrays["meta"] = np.frombuffer(dumps(header).encode(), dtype=np.uint8)
    return arrays


def looks_like_profile(path: Path) -> bool:
    """Whether ``path`` claims to be a saved profile, by its suffix or its first bytes.

    True for damaged profiles too (a truncated archive keeps its first bytes), so callers can say
    "the profile is corrupt" instead of "unsupported file type".
    """
    if path.suffix.lower() in PROFILE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in _ZIP_MAGIC
    except OSError:
        return False


def _fields(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


# Reads every entry of a profile file and builds nothing: enough to tell intact from damaged.
_CHECK_ONLY = ProfileClasses(_fields, _fields, _fields, _fields)  # type: ignore[arg-type]


def not_a_table(path: Path) -> InvalidInputError:
    """The error for a saved profile given where rows are needed (after checking it is intact)."""
    load(path, FORMAT, VERSION, _CHECK_ONLY)  # a damaged profile is reported as such
    return InvalidInputError(
        f"{str(path)!r} is a saved mloop profile, not a table of rows; only a reference can be a "
        "profile (`mloop drift REFERENCE`, drift_report, quality_report, Monitor). Pass a "
        ".parquet, .csv, .feather or .arrow file here."
    )


def _corrupt(path: Path, detail: str) -> InvalidInputError:
    detail = detail.rstrip(".")
    return InvalidInputError(
        f"profile file {str(path)!r} is corrupt or truncated ({detail}). Re-create it from the "
        f"reference data: `mloop profile DATA -o {path}` (or `Profile.from_data(data).save(path)`)."
    )


def load(path: Path, fmt: str, version: int, classes: ProfileClasses) -> Profile:
    """Read a profile file; :class:`InvalidInputError` if it is not one or it is damaged."""
    if not path.exists():
        raise InvalidInputError(f"profile file {str(path)!r} does not exist.")
    if path.is_dir():
        raise InvalidInputError(f"profile file {str(path)!r} is a directory; expected a file.")
    size = path.stat().st_size
    if size == 0:
        raise _corrupt(path, "the file is empty: 0 bytes")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not any(magic.startswith(head) for magic in _ZIP_MAGIC):  # a cut archive keeps its head
        raise InvalidInputError(
            f"{str(path)!r} is not an mloop profile file: a saved profile is a zip archive "
            f"(written by `mloop profile` or `Profile.save`); this file starts with {head!r}."
        )
    # np.load(path) leaks its file handle when the archive is damaged; own the handle instead.
    with open(path, "rb") as fh:
        try:
            npz = np.load(fh, allow_pickle=False)
        except _DAMAGE as exc:
            raise _corrupt(path, f"{size:,} bytes; {exc}") from exc
        if not isinstance(npz, np.lib.npyio.NpzFile):  # a lone .npy array under a profile's name
            raise _corrupt(path, "it holds a single array, not a profile archive")
        with npz:
            if "meta" not in npz.files:
                if any(name.startswith("c0.") for name in npz.files):
                    raise _corrupt(path, "its metadata entry is missing")
                raise InvalidInputError(
                    f"{str(path)!r} is not an mloop profile file (a zip archive without profile "
                    f"metadata; it holds {sorted(npz.files)[:5]})."
                )
            try:
                return _read(npz, path, fmt, version, classes)
            except InvalidInputError:
                raise
            except _DAMAGE as exc:
                detail = f"missing entry {exc}" if isinstance(exc, KeyError) else str(exc)
                raise _corrupt(path, f"{size:,} bytes; {detail}") from exc


def _meta_float(meta: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    # Headers are written by the wire codec ("NaN", "Infinity"); older ones hold bare NaN tokens,
    # which json.loads reads as floats. A value that is neither means a damaged file.
    value = meta[key]
    if optional and value is None:
        return None
    try:
        return float_from_wire(value, what=key)
    except InvalidInputError as exc:
        raise ValueError(exc.message) from None


def _read(npz: Any, path: Path, fmt: str, version: int, classes: ProfileClasses) -> Profile:
    # Plain json.loads: a damaged header is a ValueError that load() reports as a corrupt profile.
    header = json.loads(npz["meta"].tobytes().decode())
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise InvalidInputError(f"{str(path)!r} is not an mloop profile file.")
    if int(header.get("version", 0)) > version:
        raise InvalidInputError(
            f"{str(path)!r} was written by a newer mloop (profile format "
            f"{header['version']}; this version reads up to {version}). Upgrade mloop."
        )
    columns: dict[str, ColumnProfile] = {}
    for i, meta in enumerate(header["columns"]):
        if meta["kind"] == "categorical" and f"c{i}.fi" in npz.files:
            columns[meta["name"]] = classes.sketched_categorical(
                sketch_from_bytes(npz[f"c{i}.fi"].tobytes()),
                source=meta["source"],
                n=int(meta["n"]),
                n_missing=int(meta["n_missing"]),
            )
            continue
        if meta["kind"] == "categorical":
            columns[meta["name"]] = classes.categorical(
                source=meta["source"],
                n=int(meta["n"]),
                n_missing=int(meta["n_missing"]),
                categories=[str(c) for c in meta["categories"]],
                counts=npz[f"c{i}.counts"],
            )
            continue
        arrays = {
            key: npz[f"c{i}.{key}"] if f"c{i}.{key}" in npz.files else None
            for key in _NUMERIC_ARRAYS
        }
        sketch = None
        if f"c{i}.sketch" in npz.files:
            from datasketches import kll_doubles_sketch

            sketch = kll_doubles_sketch.deserialize(npz[f"c{i}.sketch"].tobytes())
        columns[meta["name"]] = classes.numeric(
            source=meta["source"],
            n=int(meta["n"]),
            n_missing=int(meta["n_missing"]),
            n_inf=int(meta["n_inf"]),
            min=_meta_float(meta, "min", optional=True),
            max=_meta_float(meta, "max", optional=True),
            mean=_meta_float(meta, "mean"),
            m2=_meta_float(meta, "m2"),
            edges=arrays["edges"] if arrays["edges"] is not None else np.empty(0),
            bin_counts=arrays["bin_counts"]
            if arrays["bin_counts"] is not None
            else np.zeros(1, dtype=np.int64),
            values=arrays["values"],
            weights=arrays["weights"],
            sketch=sketch,
            discrete_values=arrays["discrete_values"],
            discrete_counts=arrays["discrete_counts"],
            bin_error=_meta_float(meta, "bin_error") if "bin_error" in meta else 0.0,
        )
    max_exact = header["max_exact"]
    return classes.profile(
        columns,
        int(header["n_rows"]),
        int(header["bins"]),
        None if max_exact is None else int(max_exact),
        int(header["sketch_k"]),
        int(header.get("max_categories", _V1_MAX_CATEGORIES)),
    )
