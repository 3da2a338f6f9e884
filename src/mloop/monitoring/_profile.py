"""Profiles: what a drift check needs to know about a reference, without keeping its rows.

Profiles are compact by default: their size is bounded whatever the row count (about 47 KB per
sketched numeric column at ``sketch_k=2048``; 1M rows x 27 columns save to under 1 MB).

Per numeric column a profile keeps counts (finite, missing, infinite), min/max, mean and the sum of
squared deviations (for the standard deviation, merged exactly with Chan's formula), bins on the
reference quantiles with their counts, and either

- the exact sorted values (run-length encoded when that is smaller) while they take no more bytes
  than a sketch would (by default), while the column has at most ``max_exact`` finite values (an
  int ``max_exact``), or always (``exact=True``): drift computed from such a profile is identical to
  drift computed from the raw rows; or
- a KLL quantile sketch (``datasketches``) beyond that, whose CDF is within the sketch's normalized
  rank error ``eps`` of the true CDF (with 99% confidence), so from a sketched profile
  ``|KS - KS_exact| <= eps`` and ``|W1 - W1_exact| <= eps * (max - min)`` of the reference
  (``eps = kll_doubles_sketch.get_normalized_rank_error(sketch_k, True)``, 0.18% at ``k = 2048``).
  Columns with at most 20 distinct values also keep their exact value counts. Bin counts are exact
  unless two profiles with different bins were merged (then within ``bin_error * n`` cumulatively).

Per categorical column it keeps the category labels (sorted) and their counts, up to
``max_categories`` labels; beyond that a frequent-items sketch (see
:mod:`mloop.monitoring._profile_categorical`). Drift computed from a sketch carries the sketch's
error bound (:class:`~mloop.monitoring.ColumnDrift` ``error_bound`` and ``borderline``).

Profiles merge (``profile(A).merge(profile(B))`` has the counts, bins and exact values of
``profile(A ∪ B)``; merged sketches keep the KLL guarantee), and save to one compact ``.npz`` file
(arrays plus JSON metadata, no pickles).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from mloop.codec import to_wire
from mloop.errors import InvalidInputError
from mloop.monitoring._columns import check_columns
from mloop.monitoring._data import Frame, as_frame, refuse_profile
from mloop.monitoring._profile_categorical import MAX_CATEGORIES, from_sketch, merge_categorical
from mloop.monitoring._profile_columns import (
    DISCRETE_MAX,
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    _merge_numeric,
    prepare_numeric,
    profile_categorical,
    profile_column,
    profile_numeric,
    summarize_numeric,
)
from mloop.monitoring._profile_io import (
    FORMAT,
    VERSION,
    ProfileClasses,
    dump,
    load,
    looks_like_profile,
)
from mloop.tables import TypesChangedError, column_names, iter_batches, reads_in_batches

__all__ = [
    "DISCRETE_MAX",
    "MAX_CATEGORIES",
    "STREAM_ROWS",
    "CategoricalProfile",
    "NumericProfile",
    "Profile",
    "load_if_profile",
    "merge_all",
    "prepare_numeric",
    "profile_batches",
    "profile_categorical",
    "profile_numeric",
    "summarize_numeric",
]

_savez: Any = np.savez  # its stubs type **kwds as the allow_pickle flag
#: Rows per batch when a Parquet file, folder or Dataset is profiled piece by piece.
STREAM_ROWS = 1 << 18
#: ``max_exact`` / ``max_categories`` of an exact profile (no limit).
UNLIMITED = 2**62


@dataclass(eq=False)
class Profile:
    """A mergeable, serializable summary of a reference table (see the module docstring).

    Build one with :meth:`from_data`; pass it to :func:`mloop.monitoring.drift_report` as the
    reference.

    Examples
    --------
    >>> import numpy as np
    >>> from mloop import monitoring as mon
    >>> p = mon.Profile.from_data({"x": np.arange(10.0), "c": np.array(list("aabbbccccc"))})
    >>> p.columns["c"].categories, p.n_rows
    (['a', 'b', 'c'], 10)
    """

    columns: dict[str, ColumnProfile]
    n_rows: int
    bins: int = 20
    max_exact: int | None = None
    sketch_k: int = 2048
    max_categories: int = MAX_CATEGORIES

    @classmethod
    def from_data(
        cls,
        data: Any,
        *,
        columns: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        bins: int = 20,
        exact: bool = False,
        max_exact: int | None = None,
        sketch_k: int = 2048,
        max_categories: int = MAX_CATEGORIES,
        progress: Callable[[int], object] | None = None,
    ) -> Profile:
        """Profile a table.

        Parquet files, folders of Parquet files, CSV/TSV files and pyarrow Datasets are read in
        batches of ``STREAM_ROWS`` rows, each profiled and merged, so memory stays near one batch
        (plus the exact values kept; a CSV column that turns to text after its first block is
        read whole instead). To profile the files of a folder in parallel (processes or Ray),
        see :func:`profile_partitions`. While a column stays exact the result is identical to profiling the
        whole table at once; beyond that, the merged sketch keeps the KLL guarantee and the bin
        counts are within the sketch's rank error (see the module docstring).

        Parameters
        ----------
        data : any table :func:`mloop.tables.read_table` accepts
            The reference data (DataFrame, Arrow, numpy, dict, rows, or a path or URL).
        columns : sequence of str, optional
            Columns to profile; by default every column of a supported type.
        categorical : sequence of str, optional
            Columns to treat as categorical even if numeric.
        bins : int, default 20
            Number of reference-quantile bins kept per numeric column.
        exact : bool, default False
            Keep every value and every label count (drift identical to raw data; the profile
            grows with the rows). For small data and tests.
        max_exact : int, optional
            Numeric columns with at most this many finite values keep their exact values; larger
            ones keep a KLL sketch. By default a column stays exact while its exact values take
            no more bytes than the sketch would.
        sketch_k : int, default 2048
            KLL accuracy parameter (rank error about 1.7 / k; about 47 KB per sketch).
        max_categories : int, default 4096
            Categorical columns with more labels keep a frequent-items sketch.
        progress : callable, optional
            Called with the number of rows of each batch once it is profiled (for a progress
            bar; an input read whole is one batch).

        Returns
        -------
        Profile

        Raises
        ------
        InvalidInputError
            For unreadable data, unknown column names or invalid parameters.
        """
        _check_params(bins, max_exact, sketch_k, max_categories)
        if not isinstance(exact, bool):
            raise InvalidInputError(f"`exact` must be True or False; got {exact!r}.")
        if exact and max_exact is not None:
            raise InvalidInputError(
                f"`exact=True` keeps every value; leave `max_exact` unset (got {max_exact!r})."
            )
        if progress is not None and not callable(progress):
            raise InvalidInputError(f"`progress` must be a callable or None; got {progress!r}.")
        policy = _Policy(bins, UNLIMITED if exact else max_exact, sketch_k)
        policy_cat = UNLIMITED if exact else max_categories
        cat = set(categorical or ())
        if reads_in_batches(data, stream_csv=True):
            try:
                return _from_batches(cls, data, columns, cat, policy, policy_cat, progress)
            except TypesChangedError:
                pass  # a CSV column turned to text after its first block: read it whole
        frame = as_frame(data, columns=columns)
        profile = cls._from_frame(frame, columns, cat, policy, policy_cat)
        if progress is not None:
            progress(profile.n_rows)
        return profile

    @classmethod
    def _from_frame(
        cls,
        frame: Frame,
        columns: Sequence[str] | None,
        cat: set[str],
        policy: _Policy,
        max_categories: int,
    ) -> Profile:
        bins, max_exact, sketch_k = policy
        names = _select_columns(frame, columns)
        check_columns(sorted(cat), frame.available, what="`categorical`", where="in the data")
        check_columns(
            sorted(cat), names, what="`categorical`", where="profiled", listing="profiled columns"
        )
        profiles: dict[str, ColumnProfile] = {}
        for name in names:
            profiles[name] = profile_column(
                frame, name, categorical=name in cat, bins=bins, max_exact=max_exact, k=sketch_k,
                max_categories=max_categories,
            )  # fmt: skip
        return cls(profiles, frame.n_rows, bins, max_exact, sketch_k, max_categories)

    def merge(self, other: Profile) -> Profile:
        """Combine with the profile of other rows of the same table (a new profile is returned)."""
        if not isinstance(other, Profile):
            raise InvalidInputError(f"can only merge a Profile; got {type(other).__name__}.")
        if set(self.columns) != set(other.columns):
            diff = sorted(set(self.columns) ^ set(other.columns))
            raise InvalidInputError(f"profiles have different columns; not in both: {diff}.")
        if self.bins != other.bins:
            raise InvalidInputError(
                f"profiles use different bin counts ({self.bins} and {other.bins})."
            )
        merged: dict[str, ColumnProfile] = {}
        for name, a in self.columns.items():
            b = other.columns[name]
            if isinstance(a, NumericProfile) and isinstance(b, NumericProfile):
                merged[name] = _merge_numeric(a, b, self)
            elif isinstance(a, CategoricalProfile) and isinstance(b, CategoricalProfile):
                merged[name] = merge_categorical(a, b, max_categories=self.max_categories)
            else:
                raise InvalidInputError(
                    f"column {name!r} is {a.kind} in one profile and {b.kind} in the other."
                )
        return replace(self, columns=merged, n_rows=self.n_rows + other.n_rows)

    def save(self, path: str | Path) -> None:
        """Write the profile to ``path`` (an ``.npz`` archive: arrays + JSON metadata)."""
        arrays = dump(self, FORMAT, VERSION)
        with open(path, "wb") as fh:
            _savez(fh, **arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        """Read a profile from the bytes :meth:`to_bytes` returned."""
        if not isinstance(data, bytes):
            raise InvalidInputError(f"`data` must be bytes; got {type(data).__name__}.")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "profile.npz"
            path.write_bytes(data)
            return cls.load(path)

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        """Read a profile written by :meth:`save`."""
        return load(
            Path(path),
            FORMAT,
            VERSION,
            ProfileClasses(cls, NumericProfile, CategoricalProfile, from_sketch),
        )

    def to_bytes(self) -> bytes:
        """The saved form as bytes (for an artifact store)."""
        buf = io.BytesIO()
        _savez(buf, **dump(self, FORMAT, VERSION))
        return buf.getvalue()

    def summary(self) -> dict[str, Any]:
        """Overview in wire form (:mod:`mloop.codec`): per column kind, counts and (for numeric)
        min/max/mean/std."""
        out: dict[str, Any] = {"n_rows": self.n_rows, "columns": {}}
        for name, col in self.columns.items():
            row: dict[str, Any] = {"kind": col.kind, "n": col.n, "n_missing": col.n_missing}
            if isinstance(col, NumericProfile):
                row.update(min=col.min, max=col.max, mean=col.mean if col.n else None)
                row.update(std=col.std if col.n else None, exact=col.is_exact)
            else:
                row.update(n_categories=len(col.categories), exact=col.is_exact)
            out["columns"][name] = row
        return to_wire(out, what="Profile.summary()")


class _Policy(NamedTuple):
    bins: int
    max_exact: int | None
    sketch_k: int


def _check_params(bins: int, max_exact: int | None, sketch_k: int, max_categories: int) -> None:
    if not isinstance(bins, int) or bins < 1:
        raise InvalidInputError(f"`bins` must be an int >= 1; got {bins!r}.")
    if max_exact is not None and (not isinstance(max_exact, int) or max_exact < 0):
        raise InvalidInputError(f"`max_exact` must be an int >= 0 or None; got {max_exact!r}.")
    if not isinstance(max_categories, int) or max_categories < 1:
        raise InvalidInputError(f"`max_categories` must be an int >= 1; got {max_categories!r}.")
    if not isinstance(sketch_k, int) or not 8 <= sketch_k <= 65535:
        raise InvalidInputError(f"`sketch_k` must be an int in [8, 65535]; got {sketch_k!r}.")


def _select_columns(frame: Frame, columns: Sequence[str] | None) -> list[str]:
    if columns is None:
        return [n for n in frame.names if frame.kind(n) != "unsupported"]
    return check_columns(columns, frame.available, what="`columns`", where="in the data")


def _from_batches(
    cls: type[Profile],
    data: Any,
    columns: Sequence[str] | None,
    cat: set[str],
    policy: _Policy,
    max_categories: int,
    progress: Callable[[int], object] | None,
) -> Profile:
    refuse_profile(data)
    available = column_names(data)
    if columns is not None:
        check_columns(columns, available, what="`columns`", where="in the data")
    check_columns(sorted(cat), available, what="`categorical`", where="in the data")
    names = None if columns is None else list(columns)
    batches = iter_batches(data, columns=names, batch_rows=STREAM_ROWS, stream_csv=True)
    return profile_batches(cls, batches, available, names, cat, policy, max_categories, progress)


def profile_batches(
    cls: type[Profile],
    batches: Iterable[pa.RecordBatch],
    available: list[str],
    names: list[str] | None,
    cat: set[str],
    policy: _Policy,
    max_categories: int,
    progress: Callable[[int], object] | None = None,
) -> Profile:
    """Profile batch by batch and merge, pairwise like a binary counter (O(n log b) merging)."""
    levels: list[tuple[int, Profile]] = []
    for batch in batches:
        frame = Frame(pa.Table.from_batches([batch]), available)
        if names is None:  # every batch has the file's schema: the first decides the kinds
            names = _select_columns(frame, None)
        part = cls._from_frame(frame, names, cat, policy, max_categories)
        if progress is not None:
            progress(batch.num_rows)
        levels.append((0, part))
        while len(levels) > 1 and levels[-2][0] == levels[-1][0]:
            level, right = levels.pop()
            levels.append((level + 1, levels.pop()[1].merge(right)))
    return merge_all([p for _, p in levels])  # batches yields at least one batch


def merge_all(profiles: Sequence[Profile]) -> Profile:
    """The profiles merged in order, the last ones first (as :func:`profile_batches` does)."""
    merged = profiles[-1]
    for part in reversed(profiles[:-1]):
        merged = part.merge(merged)
    return merged


def load_if_profile(data: Any) -> Any:
    """``data`` itself, or the :class:`Profile` it names when it is the path of a saved profile.

    Raises :class:`InvalidInputError` (naming the file and how to re-create it) for a damaged one.
    """
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if path.is_file() and looks_like_profile(path):
            return Profile.load(path)
    return data
