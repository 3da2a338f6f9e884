"""The saved form of a :class:`~mloop.monitoring.Profile`: numpy arrays + one JSON metadata entry.

Written with ``np.savez`` and read with ``allow_pickle=False``: nothing in a profile file can execute
code on load. KLL sketches are stored in their own compact binary serialization.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mloop.errors import InvalidInputError

if TYPE_CHECKING:
    from mloop.monitoring._profile import Profile

__all__ = ["dump", "is_profile_file", "load"]

_NUMERIC_ARRAYS = ("edges", "bin_counts", "values", "weights", "discrete_values", "discrete_counts")


def _num(x: float | None) -> float | None:
    return None if x is None else float(x)


def dump(profile: Profile, fmt: str, version: int) -> dict[str, np.ndarray]:
    """Arrays to ``np.savez``; entry ``meta`` holds the JSON metadata as bytes."""
    from mloop.monitoring._profile import NumericProfile

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
        if isinstance(col, NumericProfile):
            meta.update(n_inf=col.n_inf, min=_num(col.min), max=_num(col.max))
            meta.update(mean=col.mean, m2=col.m2)
            for key in _NUMERIC_ARRAYS:
                value = getattr(col, key)
                if value is not None:
                    arrays[f"c{i}.{key}"] = value
            if col.sketch is not None:
                arrays[f"c{i}.sketch"] = np.frombuffer(col.sketch.serialize(), dtype=np.uint8)
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
        "columns": cols,
    }
    arrays["meta"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    return arrays


def is_profile_file(path: Path) -> bool:
    """Whether ``path`` is a saved profile (a zip with a ``meta.npy`` entry), without loading it."""
    try:
        with zipfile.ZipFile(path) as zf:
            return "meta.npy" in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def load(path: Path, fmt: str, version: int) -> Profile:
    """Read a profile file; :class:`InvalidInputError` if it is not one."""
    from mloop.monitoring._profile import CategoricalProfile, ColumnProfile, NumericProfile, Profile

    if not path.exists():
        raise InvalidInputError(f"profile file {str(path)!r} does not exist.")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InvalidInputError(f"{str(path)!r} is not an mloop profile file ({exc}).") from exc
    with npz:
        if "meta" not in npz.files:
            raise InvalidInputError(f"{str(path)!r} is not an mloop profile file (no metadata).")
        header = json.loads(npz["meta"].tobytes().decode())
        if header.get("format") != fmt:
            raise InvalidInputError(f"{str(path)!r} is not an mloop profile file.")
        if int(header.get("version", 0)) > version:
            raise InvalidInputError(
                f"{str(path)!r} was written by a newer mloop (profile format "
                f"{header['version']}; this version reads up to {version}). Upgrade mloop."
            )
        columns: dict[str, ColumnProfile] = {}
        for i, meta in enumerate(header["columns"]):
            if meta["kind"] == "categorical":
                columns[meta["name"]] = CategoricalProfile(
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
            columns[meta["name"]] = NumericProfile(
                source=meta["source"],
                n=int(meta["n"]),
                n_missing=int(meta["n_missing"]),
                n_inf=int(meta["n_inf"]),
                min=meta["min"],
                max=meta["max"],
                mean=float(meta["mean"]),
                m2=float(meta["m2"]),
                edges=arrays["edges"] if arrays["edges"] is not None else np.empty(0),
                bin_counts=arrays["bin_counts"]
                if arrays["bin_counts"] is not None
                else np.zeros(1, dtype=np.int64),
                values=arrays["values"],
                weights=arrays["weights"],
                sketch=sketch,
                discrete_values=arrays["discrete_values"],
                discrete_counts=arrays["discrete_counts"],
            )
    return Profile(
        columns,
        int(header["n_rows"]),
        int(header["bins"]),
        int(header["max_exact"]),
        int(header["sketch_k"]),
    )
