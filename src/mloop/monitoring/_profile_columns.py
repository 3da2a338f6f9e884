"""Column profiles: what a profile keeps about one numeric or categorical column, how it is built
from the column's values, and how two of them merge (see :mod:`mloop.monitoring._profile`).

Which numeric columns stay exact: with ``max_exact=None`` (the default, "compact") a column keeps its
exact values while they take no more bytes than a KLL sketch of ``k`` would (:func:`sketch_nbytes`,
about 47 KB at ``k = 2048``: some 5,900 values, or 2,900 distinct values run-length encoded), so
small columns and columns with few distinct values stay exact at any row count; with an int
``max_exact``, columns of at most that many finite values stay exact (``exact=True`` is the same
with no limit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mloop.errors import InvalidInputError
from mloop.monitoring._data import Frame
from mloop.monitoring._profile_categorical import CategoricalProfile, profile_categorical
from mloop.monitoring.stats.kernels import (
    SortedSample,
    bin_counts_sample,
    quantile_edges,
)

if TYPE_CHECKING:
    from mloop.monitoring._profile import Profile

__all__ = [
    "DISCRETE_MAX",
    "CategoricalProfile",
    "ColumnProfile",
    "NumericProfile",
    "prepare_numeric",
    "profile_categorical",
    "profile_column",
    "profile_numeric",
    "sketch_nbytes",
    "summarize_numeric",
]

#: Numeric columns with at most this many distinct values keep exact value counts even when sketched.
DISCRETE_MAX = 20


def prepare_numeric(values: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Sort once; return ``(finite values sorted, n_missing, n_infinite)`` without extra copies."""
    s = np.sort(values)
    end = s.size
    n_missing = 0
    if end and np.isnan(s[-1]):
        n_missing = int(np.count_nonzero(np.isnan(s)))
        end -= n_missing
    lo = int(np.searchsorted(s[:end], -np.inf, side="right"))
    hi = int(np.searchsorted(s[:end], np.inf))  # the first +inf (side="left" is the default)
    return s[lo:hi], n_missing, lo + (end - hi)


def _runs(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted array and their multiplicities."""
    if sorted_values.size == 0:
        return sorted_values, np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], sorted_values[1:] != sorted_values[:-1])))
    counts = np.diff(np.append(starts, sorted_values.size)).astype(np.int64)
    return sorted_values[starts], counts


@dataclass(eq=False)
class NumericProfile:
    """Profile of one numeric column (see the module docstring)."""

    source: str
    n: int
    n_missing: int
    n_inf: int
    min: float | None
    max: float | None
    mean: float
    m2: float
    edges: np.ndarray
    bin_counts: np.ndarray
    values: np.ndarray | None = None
    weights: np.ndarray | None = None
    sketch: Any = None
    discrete_values: np.ndarray | None = None
    discrete_counts: np.ndarray | None = None
    bin_error: float = 0.0
    kind: Literal["numeric"] = field(default="numeric", init=False)

    @property
    def is_exact(self) -> bool:
        return self.sketch is None

    @property
    def std(self) -> float:
        """Population standard deviation (``ddof=0``)."""
        return math.sqrt(self.m2 / self.n) if self.n else float("nan")

    @property
    def n_unique(self) -> int | None:
        """Number of distinct finite values; ``None`` when sketched with > 20 distinct values."""
        if self.discrete_values is not None:
            return int(self.discrete_values.size)
        if self.values is None:
            return None
        return int(self.values.size) if self.weights is not None else _runs(self.values)[0].size

    def sample(self) -> SortedSample:
        """The reference distribution: exact values, or the sketch's weighted items."""
        if self.values is not None:
            return SortedSample(self.values, self.weights)
        if self.sketch is None:
            return SortedSample(np.empty(0))
        items = np.array(list(self.sketch), dtype=np.float64).reshape(self.sketch.num_retained, 2)
        # any kind: only items of equal value may change places (the same weighted sample)
        order = np.argsort(items[:, 0], kind="stable")  # pragma: no mutate - equal values swap
        return SortedSample(items[order, 0], items[order, 1].astype(np.int64))

    def expanded(self) -> np.ndarray:
        """All exact finite values, sorted (only for exact profiles)."""
        if self.values is None:
            raise InvalidInputError("this column profile is sketched; it holds no exact values.")
        return SortedSample(self.values, self.weights).expand()

    def rank_error(self) -> float:
        """Bound on ``sup |F_sketch - F|`` (0 for exact profiles)."""
        if self.sketch is None:
            return 0.0
        return float(self.sketch.normalized_rank_error(True))

    @property
    def nbytes(self) -> int:
        """Bytes of the exact values (and multiplicities) kept; 0 when sketched."""
        if self.values is None:
            return 0
        return int(self.values.nbytes + (0 if self.weights is None else self.weights.nbytes))


@lru_cache(maxsize=16)
def sketch_nbytes(k: int) -> int:
    """Serialized size of a KLL sketch of accuracy ``k`` that has compacted many values.

    The size grows only with the log of the row count beyond this, by a few hundred bytes.
    """
    sketch = _new_sketch(k)
    sketch.update(np.linspace(0.0, 1.0, 64 * k))
    return len(sketch.serialize())


def _keep_exact(n: int, n_distinct: int | None, max_exact: int | None, k: int) -> bool:
    """Whether a column of ``n`` finite values (``n_distinct`` distinct, if known) stays exact."""
    if max_exact is not None:
        return n <= max_exact
    budget = sketch_nbytes(k)
    if 8 * n <= budget:
        return True
    return n_distinct is not None and 16 * n_distinct <= budget


ColumnProfile = NumericProfile | CategoricalProfile


def summarize_numeric(values: np.ndarray) -> tuple[SortedSample, int, int]:
    """Finite values as a sorted sample, plus the missing and infinite counts.

    Complete integer columns with a modest range are counted with ``np.bincount`` (one linear pass,
    giving distinct values and multiplicities); everything else is sorted once.
    """
    if values.dtype.kind in ("i", "u") and values.size:
        lo, hi = int(values.min()), int(values.max())
        if hi - lo <= 4 * values.size + 1024:
            offsets = values - lo
            # copy=False only spares a copy when the offsets are already intp
            counts = np.bincount(offsets.astype(np.intp, copy=False))  # pragma: no mutate - memory
            present = np.flatnonzero(counts)
            sample = SortedSample(
                np.asarray(present + lo, dtype=np.float64), counts[present].astype(np.int64)
            )
            return sample, 0, 0
    floats = values.astype(np.float64, copy=False)  # pragma: no mutate - copy= saves memory only
    s, n_missing, n_inf = prepare_numeric(floats)
    return SortedSample(s), n_missing, n_inf


def _exact_numeric(
    sample: SortedSample, *, source: str, n_missing: int, n_inf: int, bins: int
) -> NumericProfile:
    # One canonical form (distinct values + multiplicities) for every route to an exact profile,
    # so a profile from raw rows, from integers counted directly or from a merge is identical.
    uniq, counts = (
        _runs(sample.values) if sample.weights is None else (sample.values, sample.weights)
    )
    canonical = SortedSample(uniq, counts)
    n = int(counts.sum())
    mean = float(np.dot(uniq, counts) / n) if n else 0.0
    m2 = float(np.dot((uniq - mean) ** 2, counts)) if n else 0.0
    edges = quantile_edges(canonical, bins)
    rle = 2 * uniq.size <= n  # at most half as many distinct values as values
    small = uniq.size <= DISCRETE_MAX
    values = uniq if rle else (sample.values if sample.weights is None else canonical.expand())
    return NumericProfile(
        source=source,
        n=n,
        n_missing=n_missing,
        n_inf=n_inf,
        min=float(uniq[0]) if n else None,
        max=float(uniq[-1]) if n else None,
        mean=mean,
        m2=m2,
        edges=edges,
        bin_counts=bin_counts_sample(canonical, edges),
        values=values,
        weights=counts if rle else None,
        discrete_values=uniq if small else None,
        discrete_counts=counts if small else None,
    )


def _new_sketch(k: int) -> Any:
    try:
        from datasketches import kll_doubles_sketch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "profiles of columns with more than `max_exact` values need the datasketches "
            "package: pip install 'mloop[sketches]'"
        ) from exc
    return kll_doubles_sketch(k)


def _n_distinct(sorted_values: np.ndarray) -> int:
    """Number of distinct values of a sorted array (one comparison of neighbours)."""
    if sorted_values.size == 0:
        return 0
    return 1 + int(np.count_nonzero(sorted_values[1:] != sorted_values[:-1]))


def profile_numeric(
    values: np.ndarray, *, source: str, bins: int, max_exact: int | None, sketch_k: int
) -> NumericProfile:
    """Profile one numeric column (float64, NaN = missing); see the module docstring for which
    columns stay exact.

    The column is sorted once (integers of a modest range are counted instead); the distinct-value
    count, the quantile edges, the bin counts and the sketch all come from that sorted array.
    """
    if values.dtype.kind in ("i", "u"):
        sample, n_missing, n_inf = summarize_numeric(values)
    else:
        floats = values.astype(np.float64, copy=False)  # pragma: no mutate - copy= saves memory
        s, n_missing, n_inf = prepare_numeric(floats)
        sample = SortedSample(s)
    n = sample.n
    n_distinct = sample.values.size if sample.weights is not None else _n_distinct(sample.values)
    if _keep_exact(n, n_distinct, max_exact, sketch_k):
        return _exact_numeric(sample, source=source, n_missing=n_missing, n_inf=n_inf, bins=bins)
    finite = sample.expand()
    sketch = _new_sketch(sketch_k)
    # Sorted input: KLL's rank-error guarantee holds for every order of the stream that does not
    # depend on the sketch's coin flips (a sort is such an order), and datasketches compacts a
    # sorted stream several times faster than a shuffled one.
    sketch.update(finite)
    ranks = np.floor(np.arange(1, bins) / bins * (n - 1)).astype(np.int64)
    edges = np.unique(finite[ranks])  # the lower order statistics; bins == 1: no ranks, no edges
    small = None
    if n_distinct <= DISCRETE_MAX:
        small = (sample.values, sample.weights) if sample.weights is not None else _runs(finite)
    mean = float(np.mean(finite))
    return NumericProfile(
        source=source,
        n=n,
        n_missing=n_missing,
        n_inf=n_inf,
        min=float(finite[0]),
        max=float(finite[-1]),
        mean=mean,
        m2=float(np.var(finite)) * n,
        edges=edges,
        bin_counts=bin_counts_sample(SortedSample(finite), edges),
        sketch=sketch,
        discrete_values=None if small is None else small[0],
        discrete_counts=None if small is None else small[1],
    )


def _merge_numeric(a: NumericProfile, b: NumericProfile, p: Profile) -> NumericProfile:
    n = a.n + b.n
    source = a.source if a.source == b.source else "float"
    n_missing, n_inf = a.n_missing + b.n_missing, a.n_inf + b.n_inf
    if n == 0 or (a.is_exact and b.is_exact and p.max_exact is not None and n <= p.max_exact):
        # "stable" (timsort) merges the two sorted runs in linear time; every kind gives the same
        # sorted values (only the order of -0.0 and 0.0 could differ)
        parts = np.concatenate((a.expanded(), b.expanded()))
        s = np.sort(parts, kind="stable")  # pragma: no mutate - same values, any sort kind
        return _exact_numeric(
            SortedSample(s), source=source, n_missing=n_missing, n_inf=n_inf, bins=p.bins
        )
    if a.is_exact and b.is_exact and p.max_exact is None:
        # Compact rule: merge the distinct values and their multiplicities; keep the result exact
        # while it is no larger than a sketch.
        merged = _merge_exact(a, b, source=source, n_missing=n_missing, n_inf=n_inf, bins=p.bins)
        if merged.nbytes <= sketch_nbytes(p.sketch_k):
            return merged
    sketch = _new_sketch(p.sketch_k)
    for part in (a, b):
        if part.sketch is not None:
            sketch.merge(part.sketch)
        elif part.n:
            sketch.update(part.expanded())
    # n >= 1 from here on
    delta = b.mean - a.mean
    mean = (a.mean * a.n + b.mean * b.n) / n
    m2 = a.m2 + b.m2 + delta * delta * a.n * b.n / n
    if a.edges.shape == b.edges.shape and np.array_equal(a.edges, b.edges):
        edges, counts = a.edges, a.bin_counts + b.bin_counts
        # each cumulative count is off by at most bin_error * rows of its part
        bin_error = (a.bin_error * a.n + b.bin_error * b.n) / n
    else:  # different bins: re-derive them from the merged sketch (counts within eps * n)
        qs = np.arange(1, p.bins) / p.bins
        edges = np.unique(np.asarray(sketch.get_quantiles(qs), dtype=np.float64))
        # rank of the values below each edge (bin i holds edges[i-1] <= x < edges[i])
        below = sketch.get_cdf(  # pragma: no mutate - without False: the default, also exclusive
            edges.tolist(), False
        )
        cdf = np.asarray(below, dtype=np.float64)
        counts = np.diff(np.round(np.concatenate(([0.0], cdf)) * n)).astype(np.int64)
        # the sketch's rank error, plus half a count of rounding
        bin_error = float(sketch.normalized_rank_error(True)) + 0.5 / n
    dv, dc = None, None
    if a.discrete_values is not None and b.discrete_values is not None:
        dv = np.union1d(a.discrete_values, b.discrete_values)
        if dv.size <= DISCRETE_MAX:
            dc = np.zeros(dv.size, dtype=np.int64)
            for vals, cnts in (
                (a.discrete_values, a.discrete_counts),
                (b.discrete_values, b.discrete_counts),
            ):
                if cnts is not None:
                    dc[np.searchsorted(dv, vals)] += cnts
        else:
            dv = None
    mins = [x for x in (a.min, b.min) if x is not None]
    maxs = [x for x in (a.max, b.max) if x is not None]
    return NumericProfile(
        source=source,
        n=n,
        n_missing=n_missing,
        n_inf=n_inf,
        min=min(mins),  # n >= 1: at least one side has values
        max=max(maxs),
        mean=mean,
        m2=m2,
        edges=edges,
        bin_counts=counts,
        sketch=sketch,
        discrete_values=dv,
        discrete_counts=dc,
        bin_error=bin_error,
    )


def _merge_exact(
    a: NumericProfile, b: NumericProfile, *, source: str, n_missing: int, n_inf: int, bins: int
) -> NumericProfile:
    parts = [a.sample(), b.sample()]
    values = np.concatenate([s.values for s in parts])
    weights = np.concatenate(
        [np.ones(s.values.size, np.int64) if s.weights is None else s.weights for s in parts]
    )
    uniq, inverse = np.unique(values, return_inverse=True)
    counts = np.bincount(inverse, weights=weights, minlength=uniq.size).astype(np.int64)
    return _exact_numeric(
        SortedSample(uniq, counts), source=source, n_missing=n_missing, n_inf=n_inf, bins=bins
    )


def profile_column(
    frame: Frame,
    name: str,
    *,
    categorical: bool,
    bins: int,
    max_exact: int | None,
    k: int,
    max_categories: int,
) -> ColumnProfile:
    """Profile column ``name`` of ``frame`` as categorical or by its own kind."""
    kind = frame.kind(name)
    if kind == "unsupported":
        raise InvalidInputError(
            f"column {name!r} has unsupported type {frame.source(name)}; leave it out."
        )
    if categorical or kind == "categorical":
        return profile_categorical(frame, name, max_categories=max_categories)
    return profile_numeric(
        frame.numeric_raw(name),
        source=frame.source(name),
        bins=bins,
        max_exact=max_exact,
        sketch_k=k,
    )
