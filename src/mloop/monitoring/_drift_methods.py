"""Drift methods and verdicts: each method's kind and default threshold, the automatic choice
(Evidently's rules), and the verdict of a statistic, marked borderline when a sketched reference's
error bound reaches the threshold."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from mloop.errors import InvalidInputError
from mloop.monitoring._drift_result import ColumnDrift, ColumnHistogram

__all__ = ["AUTO_DISCRETE_MAX", "AUTO_SMALL_REFERENCE", "DriftMethod"]

DriftMethod = Literal[
    "auto",
    "ks",
    "wasserstein",
    "energy",
    "cramer_von_mises",
    "anderson",
    "chisquare",
    "z",
    "jensenshannon",
    "psi",
    "kl",
    "hellinger",
    "tv",
]

_ALIASES = {
    "kl_div": "kl",
    "kl_divergence": "kl",
    "TVD": "tv",
    "total_variation": "tv",
    "energy_dist": "energy",
    "energy_distance": "energy",
    "chi_square": "chisquare",
    "z_proportions": "z",
    "js": "jensenshannon",
    "jensen_shannon": "jensenshannon",
    "cvm": "cramer_von_mises",
    "anderson_darling": "anderson",
}

#: Numeric columns with at most this many distinct values (reference ∪ current) are compared value
#: by value, as categorical columns are (Evidently's rule).
AUTO_DISCRETE_MAX = 5
#: At most this many reference values: p-value tests; above: distances (Evidently's rule).
AUTO_SMALL_REFERENCE = 1000


@dataclass(frozen=True)
class _Spec:
    test: bool  # threshold applies to the p-value (drift if p < t), else to the statistic (>= t)
    threshold: float
    family: Literal["cdf", "raw", "counts"]


_SPECS: dict[str, _Spec] = {
    "ks": _Spec(True, 0.05, "cdf"),
    "wasserstein": _Spec(False, 0.1, "cdf"),
    "energy": _Spec(False, 0.1, "cdf"),
    "cramer_von_mises": _Spec(True, 0.05, "raw"),
    "anderson": _Spec(True, 0.05, "raw"),
    "chisquare": _Spec(True, 0.05, "counts"),
    "z": _Spec(True, 0.05, "counts"),
    "jensenshannon": _Spec(False, 0.1, "counts"),
    "psi": _Spec(False, 0.1, "counts"),
    "kl": _Spec(False, 0.1, "counts"),
    "hellinger": _Spec(False, 0.1, "counts"),
    "tv": _Spec(False, 0.1, "counts"),
}

_Result = tuple[float, float | None]


@dataclass(frozen=True)
class _Approx:
    """How far a statistic computed from a sketched reference may be from the exact one.

    ``bound`` bounds ``|statistic - exact|`` (None: no bound is known for this method); ``p_of``
    maps a statistic to its p-value, for tests, so the bound carries over to the p-value.
    """

    bound: float | None
    p_of: Callable[[float], float] | None = None


def _normalize_method(name: str, column: str | None = None) -> str:
    m = _ALIASES.get(name, name)
    if m not in _SPECS and m != "auto":
        where = f" for column {column!r}" if column else ""
        raise InvalidInputError(
            f"unknown drift method {name!r}{where}; expected one of {list(get_args(DriftMethod))}."
        )
    return m


def _auto_method(kind: str, n_ref: int, n_unique: int | None) -> str:
    # n_unique is None only for numeric columns with more than 20 distinct reference values.
    discrete = kind == "categorical" or (n_unique is not None and n_unique <= AUTO_DISCRETE_MAX)
    if n_ref > AUTO_SMALL_REFERENCE:
        return "jensenshannon" if discrete else "wasserstein"
    if not discrete:
        return "ks"
    return "z" if n_unique is not None and n_unique <= 2 else "chisquare"


def _verdict(
    name: str,
    kind: Literal["numeric", "categorical"],
    method: str,
    threshold: float,
    result: _Result,
    n_ref: int,
    n_cur: int,
    histogram: ColumnHistogram | None,
    notes: list[str],
    approx: _Approx | None = None,
) -> ColumnDrift:
    stat, p = result
    spec = _SPECS[method]
    value = p if spec.test else stat
    # +inf is a valid (maximal) distance; NaN, or a non-finite p-value, is never "no drift".
    if value is None or math.isnan(value) or (spec.test and not math.isfinite(value)):
        return ColumnDrift(
            name, kind, method, None, None, threshold, False, n_ref, n_cur, "error",
            "; ".join([f"{method} is undefined for these samples (got {value})", *notes]),
            histogram,
        )  # fmt: skip
    drifted = bool(value < threshold) if spec.test else bool(value >= threshold)
    status: Literal["ok", "drift"] = "drift" if drifted else "ok"
    bound, borderline = _borderline(approx, float(stat), spec.test, threshold)
    if approx is not None and bound is None:
        notes.append(
            f"no error bound is known for {method} on a sketched reference: the verdict may "
            "differ from the exact one (jensenshannon, hellinger and tv have bounds)"
        )
    elif borderline:
        notes.append(f"borderline: within the sketch's error bound (±{bound:.3g}) of the threshold")
    return ColumnDrift(
        name, kind, method, float(stat), None if p is None else float(p), threshold, drifted,
        n_ref, n_cur, status, "; ".join(notes), histogram, error_bound=bound,
        borderline=borderline,
    )  # fmt: skip


def _borderline(
    approx: _Approx | None, stat: float, test: bool, threshold: float
) -> tuple[float | None, bool]:
    """(bound on the statistic, whether the exact verdict could be the other one)."""
    if approx is None:
        return 0.0, False
    b = approx.bound
    if b is None or not math.isfinite(stat):
        return b, True
    if test:
        if approx.p_of is None:
            return b, True
        lo, hi = approx.p_of(stat + b), approx.p_of(max(stat - b, 0.0))
    else:
        lo, hi = stat - b, stat + b
    return b, bool(lo <= threshold <= hi)


def _no_verdict(
    name: str,
    kind: Literal["numeric", "categorical"],
    method: str,
    threshold: float,
    status: Literal["insufficient_data", "missing_column", "error"],
    message: str,
    n_ref: int = 0,
    n_cur: int = 0,
    histogram: ColumnHistogram | None = None,
) -> ColumnDrift:
    return ColumnDrift(
        name, kind, method, None, None, threshold, False, n_ref, n_cur, status, message, histogram
    )  # fmt: skip
