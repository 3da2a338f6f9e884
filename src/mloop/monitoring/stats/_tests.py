"""Two-sample hypothesis tests: ``(statistic, p_value)`` for numeric and categorical samples.

No test returns NaN: an input the test cannot be computed on (an empty sample, too few values) is an
:class:`InvalidInputError`.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Literal

import numpy as np
from scipy import stats as sps

from mloop.errors import InvalidInputError
from mloop.monitoring.stats._binning import Kind, MissingPolicy, distributions
from mloop.monitoring.stats._ecdf import SortedSample, cdf_distances, finite_sorted

__all__ = [
    "AD_MIN_TOTAL",
    "KS_EXACT_MAX_N",
    "anderson_darling",
    "chi_square",
    "chi_square_from_counts",
    "cramer_von_mises",
    "ks",
    "ks_sorted",
    "z_from_counts",
    "z_proportions",
]

#: ``method="auto"`` uses the exact KS distribution up to this sample size, as SciPy does.
KS_EXACT_MAX_N = 10_000
#: Anderson-Darling's variance formula divides by ``(N - 1)(N - 2)(N - 3)``, N both sizes summed.
AD_MIN_TOTAL = 4


def _nonempty(ref: np.ndarray, cur: np.ndarray) -> None:
    for name, arr in (("reference", ref), ("current", cur)):
        if arr.size == 0:
            raise InvalidInputError(f"`{name}` has no finite values; a two-sample test needs some.")


def ks_sorted(
    reference: SortedSample,
    current: np.ndarray,
    *,
    method: Literal["auto", "exact", "asymp"] = "auto",
) -> tuple[float, float]:
    """Two-sided KS test of a reference sample against a sorted, finite current sample."""
    m, n = reference.n, current.size
    if method not in ("auto", "exact", "asymp"):
        raise InvalidInputError(f"`method` must be 'auto', 'exact' or 'asymp'; got {method!r}.")
    if method == "exact" or (method == "auto" and max(m, n) <= KS_EXACT_MAX_N):
        # Small samples: SciPy's exact distribution (cheap at this size) on the same values. The
        # size rule is ours (KS_EXACT_MAX_N), so SciPy is asked for "exact", never "auto".
        with warnings.catch_warnings():
            # SciPy falls back to the asymptotic p-value (with a warning) when exact is infeasible.
            # That RuntimeWarning is the only one it raises here, so ignoring every category is an
            # equivalent mutant.
            warnings.simplefilter("ignore", RuntimeWarning)  # pragma: no mutate
            res = sps.ks_2samp(reference.expand(), current, method="exact")
        return float(res.statistic), float(res.pvalue)
    d = cdf_distances(reference, current, which=("ks",))["ks"]
    big, small = max(m, n), min(m, n)
    en = big * small / (big + small)
    p = float(sps.kstwo.sf(d, np.round(en)))
    return d, min(max(p, 0.0), 1.0)  # clipped as SciPy's ks_2samp does


def ks(
    reference: object,
    current: object,
    *,
    method: Literal["auto", "exact", "asymp"] = "auto",
) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test (two-sided).

    Parameters
    ----------
    reference, current : array-like of float
        Samples; NaN and infinite values are left out.
    method : {"auto", "exact", "asymp"}, default "auto"
        As ``scipy.stats.ks_2samp``: "auto" is exact when both samples have at most 10,000 values,
        else Smirnov's asymptotic distribution. Where the exact p-value cannot be computed (very
        large samples), "exact" falls back to the asymptotic one, as SciPy does, without its warning.

    Returns
    -------
    tuple of float
        ``(statistic, p_value)``, equal to ``scipy.stats.ks_2samp``'s.

    Raises
    ------
    InvalidInputError
        When a sample has no finite value, or ``method`` is unknown.

    Examples
    --------
    >>> ks([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    (0.0, 1.0)
    """
    ref = finite_sorted(reference, "reference")
    cur = finite_sorted(current, "current")
    _nonempty(ref, cur)
    return ks_sorted(SortedSample(ref), cur, method=method)


def cramer_von_mises(reference: object, current: object) -> tuple[float, float]:
    """Two-sample Cramér-von Mises test (``scipy.stats.cramervonmises_2samp``, method "auto").

    NaN and infinite values are left out.

    Returns
    -------
    tuple of float
        ``(statistic, p_value)``.

    Raises
    ------
    InvalidInputError
        When a sample has fewer than 2 finite values.
    """
    ref = finite_sorted(reference, "reference")
    cur = finite_sorted(current, "current")
    _nonempty(ref, cur)
    if ref.size < 2 or cur.size < 2:
        raise InvalidInputError("Cramér-von Mises needs at least 2 finite values in each sample.")
    res = sps.cramervonmises_2samp(ref, cur)
    return float(res.statistic), float(res.pvalue)


_AD_HAS_VARIANT = "variant" in inspect.signature(sps.anderson_ksamp).parameters


def anderson_darling(reference: object, current: object) -> tuple[float, float]:
    """Anderson-Darling k-sample test for two samples (``scipy.stats.anderson_ksamp``, midrank).

    NaN and infinite values are left out. As in SciPy, the p-value is clipped to [0.001, 0.25]
    (SciPy's interpolation table); SciPy's warning about the clipping is not raised.

    Returns
    -------
    tuple of float
        ``(statistic, p_value)``; ``(0.0, 0.25)`` when both samples hold one and the same value
        (SciPy refuses that input; there is no evidence of a difference).

    Raises
    ------
    InvalidInputError
        When a sample has no finite value, or both hold fewer than 4 finite values together (the
        statistic's variance is undefined there; SciPy returns NaN or fails).
    """
    ref = finite_sorted(reference, "reference")
    cur = finite_sorted(current, "current")
    _nonempty(ref, cur)
    if ref.size + cur.size < AD_MIN_TOTAL:
        raise InvalidInputError(
            f"Anderson-Darling needs at least {AD_MIN_TOTAL} finite values in the two samples "
            f"together; got {ref.size} + {cur.size}."
        )
    if np.unique(np.concatenate((ref, cur))).size < 2:
        return 0.0, 0.25  # one observed value: SciPy refuses; there is no evidence of a difference
    with warnings.catch_warnings():
        # Warning filters match messages case-insensitively, and SciPy raises no other UserWarning
        # here: the case and argument mutants of these two lines are equivalent.
        capped = "p-value (capped|floored)"  # pragma: no mutate
        warnings.filterwarnings("ignore", message=capped, category=UserWarning)  # pragma: no mutate
        if _AD_HAS_VARIANT:
            res = sps.anderson_ksamp([ref, cur], variant="midrank")
        else:  # pragma: no cover - SciPy < 1.17
            res = sps.anderson_ksamp([ref, cur], midrank=True)
    return float(res.statistic), float(res.pvalue)


def chi_square_from_counts(
    reference_counts: np.ndarray, current_counts: np.ndarray, *, correction: bool = False
) -> tuple[float, float]:
    """Chi-square test of homogeneity on the 2 x k table of two aligned count vectors."""
    table = np.vstack((reference_counts, current_counts)).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if np.any(rows == 0):
        raise InvalidInputError("chi-square needs at least one counted value in each sample.")
    # SciPy refuses a column of zeros (a zero expected frequency); it has been dropped above, and a
    # single category left (0 degrees of freedom) gives SciPy's (0.0, 1.0). Yates' correction
    # applies at 1 degree of freedom, i.e. two categories.
    res = sps.chi2_contingency(table, correction=correction)
    return float(res.statistic), float(res.pvalue)


def chi_square(
    reference: object,
    current: object,
    *,
    kind: Kind | None = None,
    bins: int = 10,
    missing: MissingPolicy = "drop",
    correction: bool = False,
) -> tuple[float, float]:
    """Two-sample chi-square test of homogeneity (a 2 x k contingency table).

    Unlike a goodness-of-fit test against scaled reference counts, this accounts for the sampling
    noise of both samples, so large undrifted samples with many categories do not look drifted.

    Parameters
    ----------
    reference, current : array-like
        Labels, numeric values (binned on reference quantiles) or aligned counts (see ``kind``).
    kind : {"numeric", "categorical", "counts"}, optional
        How to read the inputs; by default numeric for numeric dtypes, else categorical.
    bins : int, default 10
        Number of reference-quantile bins for numeric input.
    missing : {"drop", "bin"}, default "drop"
        Leave missing values out, or count them as a category of their own.
    correction : bool, default False
        Apply Yates' correction when there are exactly two categories.

    Returns
    -------
    tuple of float
        ``(statistic, p_value)``, as ``scipy.stats.chi2_contingency`` on the table with the
        all-zero columns removed (a category seen in neither sample is not a degree of freedom);
        ``(0.0, 1.0)`` when only one category is observed.

    Raises
    ------
    InvalidInputError
        When a sample has no counted values (empty, or all missing with ``missing="drop"``).

    Examples
    --------
    >>> chi_square(["a", "b"] * 50, ["a", "b"] * 50)
    (0.0, 1.0)
    """
    r, c = distributions(reference, current, kind=kind, bins=bins, missing=missing)
    return chi_square_from_counts(r, c, correction=correction)


def z_from_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Pooled two-proportion z-test on two aligned count vectors of (at most) two categories."""
    r = np.asarray(reference_counts, dtype=np.float64)
    c = np.asarray(current_counts, dtype=np.float64)
    keep = (r + c) > 0
    r, c = r[keep], c[keep]
    if r.size > 2:
        raise InvalidInputError(
            f"the z-test compares two categories; got {r.size}. Use chi_square instead."
        )
    n1, n2 = r.sum(), c.sum()
    if n1 == 0 or n2 == 0:
        raise InvalidInputError("the z-test needs at least one counted value in each sample.")
    if r.size < 2:
        return 0.0, 1.0
    p1, p2 = r[0] / n1, c[0] / n2
    pooled = (r[0] + c[0]) / (n1 + n2)
    z = float((p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)))
    return z, float(2 * sps.norm.sf(abs(z)))


def z_proportions(
    reference: object,
    current: object,
    *,
    kind: Kind | None = None,
    missing: MissingPolicy = "drop",
) -> tuple[float, float]:
    """Two-proportion z-test (pooled variance, two-sided) for a variable with two categories.

    The proportion compared is that of the first category (in sorted order).

    Parameters
    ----------
    reference, current : array-like
        Labels or aligned counts of length 2 (``kind="counts"``).
    kind : {"categorical", "counts"}, optional
        How to read the inputs.
    missing : {"drop", "bin"}, default "drop"
        Leave missing values out, or count them (then only one other category may be present).

    Returns
    -------
    tuple of float
        ``(z, p_value)``; ``(0.0, 1.0)`` when only one category is observed.

    Raises
    ------
    InvalidInputError
        When a sample has no counted values, or more than two categories are observed.

    Examples
    --------
    >>> z_proportions([0, 1, 1, 1], [0, 1, 1, 1])
    (0.0, 1.0)
    """
    if kind is None:
        kind = "categorical"
    r, c = distributions(reference, current, kind=kind, missing=missing)
    return z_from_counts(r, c)
