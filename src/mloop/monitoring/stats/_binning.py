"""Bins fixed from the reference, and the two count vectors every binned method compares.

Numeric values fall into bins whose inner edges are the reference's quantiles (the "lower" order
statistic at ``1/bins, 2/bins, ...``, deduplicated), with an open-ended first and last bin so current
values outside the reference range are counted, not dropped. Bin ``i`` holds ``edges[i-1] <= x <
edges[i]``. Missing values (NaN/None) can get an explicit bin of their own; infinities are left out.
Categorical values are counted per label over the union of both samples' labels.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from mloop.errors import InvalidInputError
from mloop.monitoring.stats._ecdf import SortedSample, as_float_array, finite_sorted

__all__ = [
    "Kind",
    "MissingPolicy",
    "bin_counts",
    "bin_counts_sample",
    "bin_counts_sorted",
    "distributions",
    "label_counts",
    "probabilities",
    "quantile_edges",
]

Kind = Literal["numeric", "categorical", "counts"]
MissingPolicy = Literal["drop", "bin"]


def quantile_edges(sample: SortedSample, bins: int) -> np.ndarray:
    """Inner bin edges: the sample's lower quantiles at ``k / bins``, ``k = 1 .. bins-1``, unique."""
    if bins < 1:
        raise InvalidInputError(f"`bins` must be an int >= 1; got {bins}.")
    n = sample.n
    if n == 0 or bins == 1:
        return np.empty(0, dtype=np.float64)
    ranks = np.floor(np.arange(1, bins) / bins * (n - 1)).astype(np.int64)
    if sample.weights is None:
        picked = sample.values[ranks]
    else:
        picked = sample.values[np.searchsorted(np.cumsum(sample.weights), ranks, side="right")]
    return np.unique(picked)


def bin_counts_sorted(sorted_finite: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin (``len(edges) + 1`` bins) of a sorted, finite sample."""
    below = np.searchsorted(sorted_finite, edges, side="left")
    return np.diff(np.concatenate(([0], below, [sorted_finite.size]))).astype(np.int64)


def bin_counts_sample(sample: SortedSample, edges: np.ndarray) -> np.ndarray:
    """Counts per bin of a (weighted) sorted sample."""
    if sample.weights is None:
        return bin_counts_sorted(sample.values, edges)
    below = np.searchsorted(sample.values, edges, side="left")
    cum = np.concatenate(([0], np.cumsum(sample.weights, dtype=np.int64)))
    return np.diff(cum[np.concatenate(([0], below, [sample.values.size]))]).astype(np.int64)


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin of an unsorted sample (non-finite values are left out)."""
    finite = values[np.isfinite(values)]
    return np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)


def _missing_mask(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    if arr.dtype.kind == "O":
        # None and float NaN are missing; ``x != x`` is True only for NaN.
        return np.fromiter((v is None or v != v for v in arr), dtype=bool, count=arr.size)
    return np.zeros(arr.size, dtype=bool)


def label_counts(
    reference: object, current: object, *, missing: MissingPolicy = "drop"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count labels of two samples over the union of their labels.

    Returns ``(labels, reference_counts, current_counts)``; with ``missing="bin"`` a last entry counts
    the missing values (its label is ``None``).
    """
    ref = np.asarray(reference).ravel()
    cur = np.asarray(current).ravel()
    ref_missing, cur_missing = _missing_mask(ref), _missing_mask(cur)
    both = np.concatenate((ref[~ref_missing], cur[~cur_missing]))
    try:
        labels, inverse = np.unique(both, return_inverse=True)
    except TypeError as exc:
        raise InvalidInputError(
            "labels must be of one comparable type (all strings or all numbers); got a mix "
            f"({exc}). Convert them to strings first."
        ) from exc
    n_ref = int(np.count_nonzero(~ref_missing))
    k = labels.size
    ref_counts = np.bincount(inverse[:n_ref], minlength=k)
    cur_counts = np.bincount(inverse[n_ref:], minlength=k)
    if missing == "bin":
        labels = np.concatenate((labels.astype(object), np.array([None], dtype=object)))
        ref_counts = np.append(ref_counts, np.count_nonzero(ref_missing))
        cur_counts = np.append(cur_counts, np.count_nonzero(cur_missing))
    return labels, ref_counts, cur_counts


def _infer_kind(reference: object, current: object) -> Kind:
    kinds = {np.asarray(x).dtype.kind for x in (reference, current)}
    return "numeric" if kinds <= {"i", "u", "f"} else "categorical"


def distributions(
    reference: object,
    current: object,
    *,
    kind: Kind | None = None,
    bins: int = 10,
    missing: MissingPolicy = "drop",
) -> tuple[np.ndarray, np.ndarray]:
    """The aligned ``(reference_counts, current_counts)`` a binned method compares.

    Parameters
    ----------
    reference, current : array-like
        Raw values (``kind="numeric"`` or ``"categorical"``) or aligned count vectors
        (``kind="counts"``).
    kind : {"numeric", "categorical", "counts"}, optional
        How to read the inputs; by default numeric when both have a numeric dtype, else categorical.
    bins : int, default 10
        Number of reference-quantile bins for numeric data.
    missing : {"drop", "bin"}, default "drop"
        Leave missing values out, or count them in an explicit extra bin.

    Returns
    -------
    tuple of numpy.ndarray
        Two count vectors of equal length.
    """
    if missing not in ("drop", "bin"):
        raise InvalidInputError(f"`missing` must be 'drop' or 'bin'; got {missing!r}.")
    if kind is None:
        kind = _infer_kind(reference, current)
    if kind == "counts":
        ref_c = as_float_array(reference, "reference")
        cur_c = as_float_array(current, "current")
        if ref_c.shape != cur_c.shape:
            raise InvalidInputError(
                f"count vectors must have the same length; got {ref_c.size} and {cur_c.size}."
            )
        for name, c in (("reference", ref_c), ("current", cur_c)):
            if not np.all(np.isfinite(c)) or np.any(c < 0):
                raise InvalidInputError(f"`{name}` counts must be finite and >= 0.")
        return ref_c, cur_c
    if kind == "categorical":
        _, ref_counts, cur_counts = label_counts(reference, current, missing=missing)
        return ref_counts, cur_counts
    if kind != "numeric":
        raise InvalidInputError(
            f"`kind` must be 'numeric', 'categorical' or 'counts'; got {kind!r}."
        )
    ref = as_float_array(reference, "reference")
    cur = as_float_array(current, "current")
    ref_sorted = finite_sorted(ref)
    edges = quantile_edges(SortedSample(ref_sorted), bins)
    ref_counts = bin_counts_sorted(ref_sorted, edges)
    cur_counts = bin_counts(cur, edges)
    if missing == "bin":
        ref_counts = np.append(ref_counts, np.count_nonzero(np.isnan(ref)))
        cur_counts = np.append(cur_counts, np.count_nonzero(np.isnan(cur)))
    return ref_counts, cur_counts


def probabilities(counts: np.ndarray, smoothing: float) -> np.ndarray:
    """Counts to probabilities with symmetric additive smoothing ``(c + a) / (sum + k a)``."""
    if smoothing < 0 or not np.isfinite(smoothing):
        raise InvalidInputError(f"`smoothing` must be a finite float >= 0; got {smoothing}.")
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum() + smoothing * c.size
    if total <= 0:
        raise InvalidInputError(
            "cannot compare empty distributions: a sample has no counted values "
            "(all missing, or empty) and `smoothing` is 0."
        )
    return (c + smoothing) / total
