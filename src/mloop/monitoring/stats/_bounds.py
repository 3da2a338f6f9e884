"""Error bounds of count-based drift statistics when the reference counts are known only to lie in
intervals (bins counted through a quantile sketch, labels counted by a frequent-items sketch).

Jensen-Shannon, Hellinger, total variation, PSI and KL are sums over bins of a term ``f(p_i, q_i)``
(then a monotone outer function: ``sqrt(s / 2)``, ``s / 2``, ...). Each term is convex in the
reference share ``p`` with its minimum at a known point (``p = q``; ``p = q / e`` for KL), so over
an interval of ``p`` its largest deviation from the value at the estimate is reached at an end of
the interval or at that minimum. Summing the per-bin deviations (each share varied on its own, which
only widens the range) bounds the sum, and the outer function maps that range to the statistic's.
Two-sample tests (chi-square, z) are not sums of such terms: they get no bound (``None``).

A ``lumped`` bin stands for many labels compared as one (the labels a frequent-items sketch does not
track). For Jensen-Shannon, Hellinger and TV each term is an f-divergence term, ``p * g(q / p)``,
sublinear in ``(p, q)``: the lumped term is at most the sum of the terms it replaces, and each term
is at most ``c * (p + q)`` (``c = ln 2``, 1, 1), so the true sum over those labels lies between the
lumped term's minimum over its interval and ``c * (high + q)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import rel_entr

__all__ = ["BOUNDED_COUNT_METHODS", "count_statistic_bound"]

_Term = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _js(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    m = (p + q) / 2.0
    return np.asarray(rel_entr(p, m) + rel_entr(q, m))


def _psi(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (q - p) * np.log(q / p)
    return np.where((p == 0) & (q == 0), 0.0, out)


# method -> (term, outer, smoothing of the kernel, point where the term is smallest)
_METHODS: dict[
    str, tuple[_Term, Callable[[float], float], float, Callable[[np.ndarray], np.ndarray]]
]
#: Per-term cap ``term(p, q) <= c * (p + q)`` of the methods that allow a lumped bin.
_CAPS = {"jensenshannon": float(np.log(2.0)), "hellinger": 1.0, "tv": 1.0}
_METHODS = {
    "jensenshannon": (_js, lambda s: float(np.sqrt(max(s, 0.0) / 2.0)), 0.0, lambda q: q),
    "hellinger": (
        lambda p, q: (np.sqrt(p) - np.sqrt(q)) ** 2,
        lambda s: float(np.sqrt(max(s, 0.0)) / np.sqrt(2.0)),
        0.0,
        lambda q: q,
    ),
    "tv": (lambda p, q: np.abs(p - q), lambda s: 0.5 * max(s, 0.0), 0.0, lambda q: q),
    "psi": (_psi, lambda s: max(s, 0.0), 0.5, lambda q: q),
    "kl": (
        lambda p, q: np.asarray(rel_entr(p, q)),
        lambda s: s,
        0.5,
        lambda q: q / np.e,
    ),
}
#: Count methods whose statistic gets a bound from reference count intervals.
BOUNDED_COUNT_METHODS = frozenset(_METHODS)


def count_statistic_bound(
    method: str,
    reference: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    current: np.ndarray,
    *,
    lumped: int | None = None,
) -> float | None:
    """Bound on ``|stat(reference, current) - stat(true, current)|`` for any true reference counts
    with ``low <= true <= high`` bin by bin and the same total as ``reference``.

    ``method`` is one of :data:`BOUNDED_COUNT_METHODS` (else ``None``); the statistic is the one
    of ``mloop.monitoring.stats.kernels`` with its default smoothing. ``lumped`` is the index of
    a bin that stands for many labels (see the module docstring; only for the methods of
    ``_CAPS``, else ``None``).
    """
    if method not in _METHODS or (lumped is not None and method not in _CAPS):
        return None
    term, outer, smoothing, lowest = _METHODS[method]
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    total = ref.sum() + smoothing * ref.size
    q = (cur + smoothing) / (cur.sum() + smoothing * cur.size)

    def share(x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) + smoothing) / total

    p, lo, hi = share(ref), share(np.minimum(low, ref)), share(np.maximum(high, ref))
    at = term(p, q)
    candidates = [lo, hi, np.clip(lowest(q), lo, hi)]
    values = [term(c, q) for c in candidates]
    up = np.max([v - at for v in values], axis=0).clip(min=0.0)
    down = np.max([at - v for v in values], axis=0).clip(min=0.0)
    if lumped is not None:
        up[lumped] = max(_CAPS[method] * (hi[lumped] + q[lumped]) - at[lumped], 0.0)
    s = float(at.sum())
    stat = outer(s)
    return max(outer(s + float(up.sum())) - stat, stat - outer(max(s - float(down.sum()), 0.0)))
