"""Sorted samples and the merged empirical CDF that KS, Wasserstein and energy distance share.

A reference distribution is a :class:`SortedSample`: sorted values with optional integer weights. Raw
data has no weights; a run-length encoded exact profile has the multiplicity of each distinct value; a
KLL sketch has the weight of each retained item. All three give the same right-continuous CDF
``F(x) = sum(weights[values <= x]) / n`` and feed the same code, so a statistic computed from an exact
profile is bit-for-bit the statistic computed from the raw rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mloop.errors import InvalidInputError

__all__ = [
    "SortedSample",
    "as_float_array",
    "cdf_distances",
    "finite_sorted",
    "merged_cdfs",
    "wasserstein1",
]


def as_float_array(x: object, name: str) -> np.ndarray:
    """``x`` as a 1-D float64 array (a view when possible), or an :class:`InvalidInputError`."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"`{name}` must be a 1-D array of numbers; got values of type "
            f"{type(x).__name__} that cannot be read as float64 ({exc})."
        ) from exc
    if arr.ndim != 1:
        raise InvalidInputError(f"`{name}` must be 1-D; got an array of shape {arr.shape}.")
    return arr


def finite_sorted(x: object, name: str = "values") -> np.ndarray:
    """The finite values of ``x`` (NaN and +/-inf left out), sorted ascending."""
    arr = as_float_array(x, name)
    arr = np.sort(arr)
    # np.sort puts NaN last and +/-inf at the ends of the finite run: slice instead of masking.
    end = arr.size
    if end and np.isnan(arr[-1]):
        end -= int(np.count_nonzero(np.isnan(arr)))
    lo = int(np.searchsorted(arr[:end], -np.inf, side="right"))
    hi = int(np.searchsorted(arr[:end], np.inf, side="left"))
    return arr[lo:hi]


@dataclass(frozen=True)
class SortedSample:
    """Sorted ``values`` with optional positive integer ``weights`` (``None`` = one each).

    ``n`` is the total weight (the number of rows the sample stands for).
    """

    values: np.ndarray
    weights: np.ndarray | None = None

    @property
    def n(self) -> int:
        if self.weights is None:
            return int(self.values.size)
        return int(self.weights.sum())

    @classmethod
    def from_values(cls, values: object, *, presorted: bool = False) -> SortedSample:
        """A sample of the finite values of ``values``."""
        arr = as_float_array(values, "values")
        if presorted:
            return cls(arr)
        return cls(finite_sorted(arr))

    def expand(self) -> np.ndarray:
        """All values with their multiplicity (the raw sorted sample for an exact profile)."""
        if self.weights is None:
            return self.values
        return np.repeat(self.values, self.weights)

    def mean_std(self) -> tuple[float, float]:
        """Mean and population standard deviation (``ddof=0``, as ``np.std``)."""
        if self.weights is None:
            return float(np.mean(self.values)), float(np.std(self.values))
        w = self.weights.astype(np.float64)
        mean = float(np.dot(self.values, w) / w.sum())
        var = float(np.dot((self.values - mean) ** 2, w) / w.sum())
        return mean, float(np.sqrt(var))


def merged_cdfs(
    reference: SortedSample, current: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge a reference sample with a sorted current sample.

    Returns ``(values, f_ref, f_cur)``: the merged sorted values and, at each merged position ``i``,
    the cumulative share of each sample at or before ``i``. At the last position of every run of tied
    values this is the right-continuous empirical CDF, which is all the CDF distances need (between
    two tied positions the gap ``values[i+1] - values[i]`` is zero).
    """
    r = reference.values
    m, n = r.size, current.size
    # Each current value goes after the reference values equal to it; the positions are increasing,
    # so one vectorised searchsorted (on sorted keys) replaces a full sort of the concatenation. The
    # smaller sample is searched into the larger one (a sketch's items into a window).
    values = np.empty(m + n, dtype=np.float64)
    if m < n:
        pos_ref = np.searchsorted(current, r, side="left")
        pos_ref += np.arange(m, dtype=pos_ref.dtype)
        is_cur = np.ones(m + n, dtype=bool)
        is_cur[pos_ref] = False
        values[pos_ref] = r
        values[is_cur] = current
        is_ref = ~is_cur
    else:
        pos_cur = np.searchsorted(r, current, side="right")
        pos_cur += np.arange(n, dtype=pos_cur.dtype)
        is_cur = np.zeros(m + n, dtype=bool)
        is_cur[pos_cur] = True
        values[pos_cur] = current
        is_ref = ~is_cur
        values[is_ref] = r
    cum_cur = np.cumsum(is_cur, dtype=np.int64)
    if reference.weights is None:
        cum_ref = np.arange(1, m + n + 1, dtype=np.int64)
        cum_ref -= cum_cur
        f_ref = cum_ref / m
    else:
        w = np.zeros(m + n, dtype=np.int64)
        w[is_ref] = reference.weights
        f_ref = np.cumsum(w) / reference.n
    f_cur = cum_cur / n
    return values, f_ref, f_cur


def cdf_distances(
    reference: SortedSample, current: np.ndarray, *, which: tuple[str, ...]
) -> dict[str, float]:
    """KS statistic (``"ks"``), L1 (``"l1"`` = Wasserstein-1) and L2 (``"l2"``) CDF distances.

    ``current`` must be sorted and finite. One merge serves every requested distance.
    """
    values, f_ref, f_cur = merged_cdfs(reference, current)
    diff = np.subtract(f_ref, f_cur, out=f_ref)
    del f_cur
    np.abs(diff, out=diff)
    deltas = np.diff(values)
    del values
    out: dict[str, float] = {}
    gaps = diff[:-1]
    if "ks" in which:
        # Only the last position of a run of ties is a CDF value; those are where the gap is > 0.
        out["ks"] = float(gaps[deltas > 0].max(initial=0.0))
    if "l1" in which:
        out["l1"] = float(np.dot(gaps, deltas))
    if "l2" in which:
        out["l2"] = float(np.sqrt(np.dot(gaps * gaps, deltas)))
    return out


def _cum(sample: SortedSample) -> np.ndarray | None:
    return None if sample.weights is None else np.cumsum(sample.weights, dtype=np.int64)


def wasserstein1(reference: SortedSample, current: SortedSample) -> float:
    """Wasserstein-1 between two (weighted) sorted samples, in quantile space.

    ``W1 = integral over u in (0, 1] of |Q_ref(u) - Q_cur(u)|``, which equals SciPy's CDF form. The
    quantile functions step at ``W_i / M`` (reference) and ``V_j / N`` (current); for every step we
    know, by integer arithmetic alone, which steps of the other sample precede it, so no merge of
    the two samples is built: a few vectorised passes over each sample, and exact integer interval
    lengths (numerators over ``M * N``).
    """
    r, c = reference.values, current.values
    m, n = r.size, c.size
    big_m, big_n = reference.n, current.n
    if big_m * big_n >= 2**62:  # integer numerators would overflow: use the CDF form
        return cdf_distances(reference, c if current.weights is None else current.expand(),
                             which=("l1",))["l1"]  # fmt: skip
    if reference.weights is None and current.weights is None and m == n:
        # equal sizes: the quantile steps coincide, W1 = mean |r_(i) - c_(i)|
        diff = r - c
        np.abs(diff, out=diff)
        return float(np.sum(diff) / n)
    w, v = _cum(reference), _cum(current)
    w_n = (np.arange(1, m + 1, dtype=np.int64) if w is None else w) * big_n
    # current steps j = 1..n at V_j / N, as numerators V_j * M over M * N; b_i = current steps
    # strictly before reference step i. The smaller sample is searched into the larger one (a
    # sketch's few thousand items into a window of a million values), never the other way round.
    v_m = None if v is None else v * big_m
    b = (w_n - 1) // big_m if v_m is None else np.searchsorted(v_m, w_n, side="left")
    # On current step j the reference quantile is r[a_j], a_j = reference steps at or before it
    # (ties: reference first) = #{i: b_i <= j}, so a_j = k for j in [b_(k-1), b_k).
    runs = np.diff(b, prepend=0, append=n)
    diff = np.repeat(np.append(r, r[-1]), runs)  # a_j = m only on the last step, where du = 0
    diff -= c
    np.abs(diff, out=diff)
    # Step j's interval starts at the later of its own previous step and the last reference step
    # before it; that is a reference step only at j = b_i (the last i of each run of equal b_i).
    at_step = np.ones(m, dtype=bool)
    at_step[:-1] = b[1:] != b[:-1]
    at, start = b[at_step], w_n[at_step]
    if v_m is None:
        # every step spans M (numerator), less where a reference step cuts it: sum(diff) * M,
        # corrected at those few steps (no array of a million equal spans)
        end = (at + 1) * big_m
        cut = np.maximum(end - big_m, start) - (end - big_m)
        total = float(diff.sum()) * big_m - float((diff[at] * cut).sum())
    else:
        own_prev = np.concatenate(([0], v_m[:-1]))  # the previous current step
        own_prev[at] = np.maximum(own_prev[at], start)
        du = (v_m - own_prev).astype(np.float64)
        # multiply and sum (pairwise) rather than np.dot: BLAS starts its threads for a vector of
        # a million values, and they spin on, taking the cores from the other columns' workers
        np.multiply(diff, du, out=diff)
        total = float(diff.sum())
        del du
    del diff
    # reference steps: current steps strictly before each of them (no np.dot: see above)
    prev = b * big_m if v_m is None else np.concatenate(([0], v_m))[b]
    own_prev = w_n - (big_n if reference.weights is None else reference.weights * big_n)
    spans = w_n - np.maximum(prev, own_prev, out=prev)
    gaps = c[b]
    gaps -= r
    np.abs(gaps, out=gaps)
    np.multiply(gaps, spans, out=gaps)
    total += float(gaps.sum())
    return total / (float(big_m) * float(big_n))
