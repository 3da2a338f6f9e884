"""Edge cases of the statistics: empty bins, tiny and empty samples, boundaries, defaults.

No statistic returns NaN for a well-formed input; each value is checked against SciPy or a formula
written out here, on seeded data, with explicit tolerances.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial import distance as spd

from mloop.errors import InvalidInputError
from mloop.monitoring import stats
from mloop.monitoring.stats._ecdf import SortedSample

SEEDS = [0, 1, 2, 3]
REL = 1e-9


def _pair(seed: int, n: int, m: int, shift: float) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=n), rng.normal(loc=shift, scale=1.3, size=m)


def _hand_bins(ref: np.ndarray, cur: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference lower-quantile edges, open-ended bins, written out independently."""
    r = np.sort(ref[np.isfinite(ref)])
    edges = np.unique(np.quantile(r, np.arange(1, bins) / bins, method="lower"))
    full = np.concatenate(([-np.inf], edges, [np.inf]))
    rc = np.array([np.sum((r >= a) & (r < b)) for a, b in itertools.pairwise(full)])
    c = cur[np.isfinite(cur)]
    cc = np.array([np.sum((c >= a) & (c < b)) for a, b in itertools.pairwise(full)])
    return rc, cc


# ---------------------------------------------------------------- binned distances


def _shares(counts: np.ndarray, a: float) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    return (c + a) / (c.sum() + a * c.size)


@pytest.mark.parametrize("seed", SEEDS)
def test_psi_without_smoothing_skips_bins_empty_on_both_sides(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Four values: the open first bin (below the lowest edge) is empty on both sides.
    ref = rng.integers(0, 4, 2000).astype(float)
    cur = rng.choice(4, size=1500, p=[0.1, 0.2, 0.3, 0.4]).astype(float)
    rc, cc = _hand_bins(ref, cur, 10)
    assert rc[0] == cc[0] == 0 and np.all(rc[1:] > 0) and np.all(cc[1:] > 0)
    p, q = rc[1:] / rc.sum(), cc[1:] / cc.sum()
    expected = sps.entropy(p, q) + sps.entropy(q, p)  # PSI = KL(p||q) + KL(q||p)
    assert stats.psi(ref, cur, smoothing=0) == pytest.approx(expected, rel=REL)
    counts = stats.psi([40, 0, 60, 10], [30, 0, 50, 20], kind="counts", smoothing=0)
    p, q = np.array([40, 60, 10]) / 110, np.array([30, 50, 20]) / 100
    assert counts == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=REL)
    assert stats.psi([3, 0, 1], [3, 0, 1], kind="counts", smoothing=0) == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_divergences_with_bins_empty_on_one_side(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.choice(["a", "b", "c"], size=900).astype(object)
    cur = rng.choice(["c", "d", "e"], size=700).astype(object)
    labels = ["a", "b", "c", "d", "e"]
    rc = np.array([np.sum(ref == k) for k in labels])
    cc = np.array([np.sum(cur == k) for k in labels])
    js = stats.jensen_shannon(ref, cur)
    assert math.isfinite(js) and js == pytest.approx(spd.jensenshannon(rc, cc), rel=REL)
    assert stats.jensen_shannon(ref, cur, base=2) == pytest.approx(
        spd.jensenshannon(rc, cc, base=2), rel=REL
    )
    p0, q0 = rc / rc.sum(), cc / cc.sum()
    assert stats.hellinger(ref, cur) == pytest.approx(
        math.sqrt(1 - np.sum(np.sqrt(p0 * q0))), rel=1e-9
    )
    assert stats.total_variation(ref, cur) == pytest.approx(0.5 * np.abs(p0 - q0).sum(), rel=REL)
    # Disjoint supports: the maxima of each distance.
    a, b = np.array([5, 3, 0, 0]), np.array([0, 0, 4, 1])
    assert stats.jensen_shannon(a, b, kind="counts") == pytest.approx(math.sqrt(math.log(2)))
    assert stats.jensen_shannon(a, b, kind="counts", base=2) == pytest.approx(1.0)
    assert stats.hellinger(a, b, kind="counts") == pytest.approx(1.0)
    assert stats.total_variation(a, b, kind="counts") == pytest.approx(1.0)
    assert stats.jensen_shannon(a, a, kind="counts") == 0.0


def test_kl_without_smoothing() -> None:
    # Bins empty in the reference add nothing, bins empty on both sides too; finite, as scipy.
    r, c = np.array([6, 0, 4, 0]), np.array([3, 2, 5, 0])
    expected = sps.entropy(r, c)
    assert math.isfinite(expected)
    assert stats.kl_divergence(r, c, kind="counts", smoothing=0) == pytest.approx(expected, rel=REL)
    assert stats.kl_divergence(c, r, kind="counts", smoothing=0) == math.inf


@pytest.mark.parametrize("base", [1, 1.0, 0.5, 0, -2, math.nan])
def test_log_base_must_exceed_one(base: float) -> None:
    for fn in (stats.jensen_shannon, stats.kl_divergence):
        with pytest.raises(InvalidInputError, match=r"`base` must be a float > 1"):
            fn([1, 2, 3], [1, 2, 2], kind="counts", base=base)


def test_log_base_just_above_one_and_e() -> None:
    r, c = np.array([1, 2, 3]), np.array([3, 2, 1])
    for fn in (stats.jensen_shannon, stats.kl_divergence):
        natural = fn(r, c, kind="counts")
        assert fn(r, c, kind="counts", base=math.e) == pytest.approx(natural, rel=1e-12)
    assert stats.kl_divergence(r, c, kind="counts", base=1.5) == pytest.approx(
        sps.entropy(_shares(r, 0.5), _shares(c, 0.5), base=1.5), rel=REL
    )


_BINNED = [
    stats.jensen_shannon,
    stats.psi,
    stats.kl_divergence,
    stats.hellinger,
    stats.total_variation,
]


@pytest.mark.parametrize("fn", _BINNED)
@pytest.mark.parametrize("smoothing", [0.0, 0.5, 1.0])
def test_binned_distances_refuse_an_empty_sample(fn, smoothing: float) -> None:  # type: ignore[no-untyped-def]
    # Smoothing would otherwise make "nothing" look like a uniform distribution (distance 0).
    for ref, cur, kw in [
        ([], [1.0, 2.0], {}),
        ([1.0, 2.0], [], {}),
        ([np.nan, np.nan], [1.0], {}),
        ([0, 0], [1, 2], {"kind": "counts"}),
        ([3, 1], [0, 0], {"kind": "counts"}),
        (np.array([None, None], dtype=object), ["a", "b"], {}),
    ]:
        with pytest.raises(InvalidInputError, match="no counted values"):
            fn(ref, cur, smoothing=smoothing, **kw)
    # One value on each side is a sample.
    assert fn([5.0], [5.0], smoothing=smoothing) == 0.0
    assert fn([1, 0], [1, 0], kind="counts", smoothing=smoothing) == 0.0


def test_count_vector_defaults_match_the_public_functions() -> None:
    """Drift reports call the ``*_from_counts`` functions with their defaults."""
    from mloop.monitoring.stats import _distances as d
    from mloop.monitoring.stats import _tests as t

    r, c = np.array([40, 0, 25, 10]), np.array([30, 5, 20, 0])
    p, q = _shares(r, 0.5), _shares(c, 0.5)
    assert d.psi_from_counts(r, c) == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=REL)
    assert d.kl_from_counts(r, c) == pytest.approx(sps.entropy(p, q), rel=REL)
    assert d.jensen_shannon_from_counts(r, c) == pytest.approx(spd.jensenshannon(r, c), rel=REL)
    p0, q0 = r / r.sum(), c / c.sum()
    hell = math.sqrt(np.sum((np.sqrt(p0) - np.sqrt(q0)) ** 2) / 2)
    assert d.hellinger_from_counts(r, c) == pytest.approx(hell, rel=REL)
    assert d.tv_from_counts(r, c) == pytest.approx(0.5 * np.abs(p0 - q0).sum(), rel=REL)
    two = (np.array([30, 70]), np.array([45, 55]))
    expected = sps.chi2_contingency(np.vstack(two), correction=False)
    assert t.chi_square_from_counts(*two) == pytest.approx(
        (expected.statistic, expected.pvalue), rel=REL
    )


@pytest.mark.parametrize("fn", _BINNED)
def test_binned_defaults_bins_and_missing(fn) -> None:  # type: ignore[no-untyped-def]
    """Raw numbers: 10 reference-quantile bins, missing values dropped, by default."""
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(size=1000), rng.normal(0.3, size=800)
    ref[:30], cur[:200] = np.nan, np.nan
    default = fn(ref, cur)
    assert default == fn(ref, cur, bins=10, missing="drop", kind="numeric")
    assert default != pytest.approx(fn(ref, cur, bins=11))
    assert default != pytest.approx(fn(ref, cur, missing="bin"))


# ---------------------------------------------------------------- edge cases: tests


@pytest.mark.parametrize("seed", SEEDS)
def test_chi_square_leaves_out_categories_seen_in_neither_sample(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = rng.integers(1, 50, 6).astype(float)
    c = rng.integers(1, 50, 6).astype(float)
    r[[1, 4]] = c[[1, 4]] = 0  # categories of the profile that neither window holds
    stat, p = stats.chi_square(r, c, kind="counts")
    kept = np.vstack((r, c))[:, [0, 2, 3, 5]]
    expected = sps.chi2_contingency(kept, correction=False)
    assert (stat, p) == pytest.approx((expected.statistic, expected.pvalue), rel=REL)
    # Two categories left: Yates' correction applies to what remains (dof 1).
    r2, c2 = np.array([30.0, 0.0, 70.0]), np.array([45.0, 0.0, 55.0])
    expected = sps.chi2_contingency(np.vstack((r2, c2))[:, [0, 2]], correction=True)
    assert stats.chi_square(r2, c2, kind="counts", correction=True) == pytest.approx(
        (expected.statistic, expected.pvalue), rel=REL
    )


def test_chi_square_tiny_totals_and_empty_samples() -> None:
    # One value on each side, different categories: stat = N = 2 by hand, p from chi2(1).
    assert stats.chi_square([1, 0], [0, 1], kind="counts") == pytest.approx(
        (2.0, sps.chi2.sf(2.0, 1)), rel=REL
    )
    # Weighted counts summing to 1 (expected = row * column / total, total = 1).
    r, c = np.array([0.25, 0.25]), np.array([0.1, 0.4])
    expected = sps.chi2_contingency(np.vstack((r, c)), correction=False)
    assert stats.chi_square(r, c, kind="counts") == pytest.approx(
        (expected.statistic, expected.pvalue), rel=REL
    )
    for ref, cur, kw in [
        ([1, 0], [0, 0], {"kind": "counts"}),  # a total count of 1: one side is empty
        ([0, 0], [0, 0], {"kind": "counts"}),
        ([], [1.0, 2.0], {}),
        ([1.0, 2.0], [], {}),
        ([], ["a"], {"kind": "categorical"}),
        ([np.nan], [1.0], {}),
    ]:
        with pytest.raises(InvalidInputError, match="at least one counted value in each sample"):
            stats.chi_square(ref, cur, **kw)


def test_chi_square_yates_never_overshoots() -> None:
    # |observed - expected| < 0.5 everywhere: the corrected statistic is 0 (p = 1), as scipy's.
    r, c = np.array([10, 10]), np.array([10, 11])
    expected = sps.chi2_contingency(np.vstack((r, c)), correction=True)
    assert (expected.statistic, expected.pvalue) == pytest.approx((0.0, 1.0))
    assert stats.chi_square(r, c, kind="counts", correction=True) == pytest.approx((0.0, 1.0))
    # More than two categories: no correction (scipy applies it only for dof == 1).
    r3, c3 = np.array([30, 50, 20]), np.array([45, 35, 20])
    expected = sps.chi2_contingency(np.vstack((r3, c3)), correction=True)
    assert stats.chi_square(r3, c3, kind="counts", correction=True) == pytest.approx(
        (expected.statistic, expected.pvalue), rel=REL
    )
    assert stats.chi_square(r3, c3, kind="counts") == pytest.approx(
        (expected.statistic, expected.pvalue), rel=REL
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_chi_square_bins_raw_numbers_on_ten_reference_quantiles(seed: int) -> None:
    ref, cur = _pair(seed, 1200, 900, shift=0.2)
    ref[:20] = np.nan
    rc, cc = _hand_bins(ref, cur, 10)
    expected = sps.chi2_contingency(np.vstack((rc, cc)), correction=False)
    assert stats.chi_square(ref, cur) == pytest.approx(
        (expected.statistic, expected.pvalue), rel=REL
    )
    with_missing = np.vstack((np.append(rc, 20), np.append(cc, 0)))
    expected = sps.chi2_contingency(with_missing, correction=False)
    assert stats.chi_square(ref, cur, missing="bin") == pytest.approx(
        (expected.statistic, expected.pvalue), rel=REL
    )


def _z_by_hand(r: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    n1, n2 = r.sum(), c.sum()
    pooled = (r[0] + c[0]) / (n1 + n2)
    z = (r[0] / n1 - c[0] / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return z, 2 * sps.norm.sf(abs(z))


def test_z_test_edges() -> None:
    # A category observed in neither sample is left out; first category in sorted order compared.
    z, p = stats.z_proportions([30, 0, 10], [20, 0, 20], kind="counts")
    assert (z, p) == pytest.approx(_z_by_hand(np.array([30, 10]), np.array([20, 20])), rel=REL)
    assert z > 0
    # Two-sided: swapping the samples flips the sign of z, not the p-value.
    assert stats.z_proportions([20, 0, 20], [30, 0, 10], kind="counts") == pytest.approx(
        (-z, p), rel=REL
    )
    # Labels by default, also for numbers: 0 and 1 are two categories (not quantile bins).
    z, p = stats.z_proportions(np.zeros(50), np.r_[np.zeros(25), np.ones(25)])
    assert (z, p) == pytest.approx(_z_by_hand(np.array([50, 0]), np.array([25, 25])), rel=REL)
    # Missing values are dropped by default, or count as a category.
    ref = np.array(["a"] * 30 + ["b"] * 10 + [None] * 5, dtype=object)
    cur = np.array(["a"] * 20 + ["b"] * 20 + [None] * 40, dtype=object)
    assert stats.z_proportions(ref, cur) == pytest.approx(
        _z_by_hand(np.array([30, 10]), np.array([20, 20])), rel=REL
    )
    only_a = np.array(["a"] * 30 + [None] * 5, dtype=object)
    cur_a = np.array(["a"] * 20 + [None] * 40, dtype=object)
    assert stats.z_proportions(only_a, cur_a) == (0.0, 1.0)
    assert stats.z_proportions(only_a, cur_a, missing="bin") == pytest.approx(
        _z_by_hand(np.array([30, 5]), np.array([20, 40])), rel=REL
    )
    assert stats.z_proportions(["x"] * 4, ["x"] * 7) == (0.0, 1.0)
    assert stats.z_proportions([5, 0], [3, 0], kind="counts") == (0.0, 1.0)
    with pytest.raises(InvalidInputError, match="got 3"):
        stats.z_proportions([1, 2, 3], [1, 0, 0], kind="counts")
    for ref_, cur_, kw in [
        ([], [1, 2], {}),
        ([1, 0], [], {}),
        ([0, 0], [3, 4], {"kind": "counts"}),
        ([3, 4], [0, 0], {"kind": "counts"}),
        ([], [], {"kind": "counts"}),
    ]:
        with pytest.raises(InvalidInputError, match="at least one counted value in each sample"):
            stats.z_proportions(ref_, cur_, **kw)


def test_anderson_darling_small_and_constant_samples() -> None:
    # One value observed in both samples: no evidence of a difference, SciPy's p-value cap.
    assert stats.anderson_darling([2.0] * 5, [2.0] * 3) == (0.0, 0.25)
    assert stats.anderson_darling([2.0] * 3, [2.0]) == (0.0, 0.25)
    # Fewer than 4 values together: SciPy returns NaN (3) or fails (2); a clear error instead.
    for ref, cur in [([0.0], [1.0]), ([0.0, 1.0], [1.0]), ([0.0], [0.0, 2.0]), ([1.0], [1.0])]:
        with pytest.raises(InvalidInputError, match="at least 4 finite values"):
            stats.anderson_darling(ref, cur)
    with pytest.raises(InvalidInputError, match="no finite values"):
        stats.anderson_darling([np.nan], [1.0, 2.0, 3.0, 4.0])
    for ref, cur in [([0.0], [1.0, 2.0, 0.5]), ([0.0, 1.0], [1.0, 3.0]), ([0.0, 0.0], [1.0, 1.0])]:
        expected = sps.anderson_ksamp([np.array(ref), np.array(cur)], variant="midrank")
        assert math.isfinite(expected.statistic)
        assert stats.anderson_darling(ref, cur) == pytest.approx(
            (expected.statistic, expected.pvalue), rel=1e-12
        )


@pytest.mark.parametrize("seed", SEEDS)
def test_anderson_darling_identical_samples_hit_the_cap(seed: int) -> None:
    ref, _ = _pair(seed, 80, 1, 0.0)
    stat, p = stats.anderson_darling(ref, ref.copy())  # without SciPy's warning
    with pytest.warns(UserWarning, match="p-value capped"):
        expected = sps.anderson_ksamp([ref, ref], variant="midrank")
    assert stat == pytest.approx(expected.statistic, rel=1e-12)
    assert p == 0.25


def test_cramer_von_mises_needs_two_values_per_sample() -> None:
    for ref, cur in [([1.0], [1.0, 2.0]), ([1.0, 2.0], [3.0]), ([1.0, np.nan], [1.0, 2.0])]:
        with pytest.raises(InvalidInputError, match="at least 2 finite values"):
            stats.cramer_von_mises(ref, cur)
    expected = sps.cramervonmises_2samp([1.0, 2.0], [3.0, 4.0])
    assert stats.cramer_von_mises([1.0, 2.0], [3.0, 4.0]) == pytest.approx(
        (expected.statistic, expected.pvalue), rel=1e-12
    )
    with pytest.raises(InvalidInputError, match="no finite values"):
        stats.cramer_von_mises([1.0, 2.0], [np.nan])


def _ks_pair(seed: int, m: int, n: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Samples whose exact and asymptotic KS p-values differ clearly, and those p-values."""
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=m), rng.normal(0.1, size=n)
    exact = sps.ks_2samp(ref, cur, method="exact").pvalue
    asymp = sps.ks_2samp(ref, cur, method="asymp").pvalue
    assert exact != pytest.approx(asymp, rel=1e-7, abs=0)  # tests below match to 1e-9
    return ref, cur, exact, asymp


@pytest.mark.parametrize("seed", SEEDS)
def test_ks_exact_up_to_10000_values(seed: int) -> None:
    # At the boundary (the larger sample has exactly 10,000 values, either side): exact.
    for m, n in [(10_000, 10_000), (9_000, 10_000)]:
        ref, cur, exact, _ = _ks_pair(seed, m, n)
        assert stats.ks(ref, cur)[1] == pytest.approx(exact, rel=1e-9, abs=0)
        assert stats.ks(cur, ref)[1] == pytest.approx(
            sps.ks_2samp(cur, ref, method="exact").pvalue, rel=1e-9, abs=0
        )
    # One value more: Smirnov's asymptotic distribution.
    for m, n in [(10_001, 10_000), (9_000, 10_001)]:
        ref, cur, _, asymp = _ks_pair(seed, m, n)
        assert stats.ks(ref, cur)[1] == pytest.approx(asymp, rel=1e-9, abs=0)


@pytest.mark.parametrize("seed", SEEDS)
def test_ks_methods_forced(seed: int) -> None:
    ref, cur, exact, asymp = _ks_pair(seed, 10_001, 10_000)
    assert stats.ks(ref, cur, method="exact")[1] == pytest.approx(exact, rel=1e-9, abs=0)
    ref, cur, exact, asymp = _ks_pair(seed, 3000, 2000)
    assert stats.ks(ref, cur, method="asymp")[1] == pytest.approx(asymp, rel=1e-9, abs=0)
    assert stats.ks(ref, cur, method="auto")[1] == pytest.approx(exact, rel=1e-9, abs=0)
    # The sorted-sample form drift reports call is "auto" by default.
    d, p = stats_ks_sorted(ref, cur)
    assert (d, p) == pytest.approx(stats.ks(ref, cur), rel=1e-12)
    # Too large for the exact distribution: SciPy's asymptotic fallback, without its warning.
    rng = np.random.default_rng(seed)
    big, big_cur = rng.normal(size=200_000), rng.normal(0.01, size=199_999)
    assert stats.ks(big, big_cur, method="exact") == pytest.approx(
        tuple(sps.ks_2samp(big, big_cur, method="asymp"))[:2], rel=1e-9, abs=0
    )
    with pytest.raises(InvalidInputError, match="`method` must be"):
        stats.ks(ref, cur, method="approx")  # type: ignore[arg-type]


def stats_ks_sorted(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    from mloop.monitoring.stats._tests import ks_sorted

    return ks_sorted(SortedSample(np.sort(ref)), np.sort(cur))


# ---------------------------------------------------------------- messages


def _message(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError) as err:
        fn(*args, **kwargs)
    return str(err.value)


@pytest.mark.parametrize(
    "fn",
    [
        stats.wasserstein,
        stats.energy_distance,
        stats.ks,
        stats.cramer_von_mises,
        stats.anderson_darling,
    ],
)
def test_raw_sample_messages_name_the_sample(fn) -> None:  # type: ignore[no-untyped-def]
    what = (
        "a distance needs at least one"
        if fn in (stats.wasserstein, stats.energy_distance)
        else ("a two-sample test needs some")
    )
    good = [1.0, 2.0, 3.0, 4.0]
    assert _message(fn, [np.nan], good) == f"`reference` has no finite values; {what}."
    assert _message(fn, good, []) == f"`current` has no finite values; {what}."
    shape = "must be 1-D; got an array of shape (2, 2)."
    assert _message(fn, np.ones((2, 2)), good) == f"`reference` {shape}"
    assert _message(fn, good, np.ones((2, 2))) == f"`current` {shape}"


def test_statistics_messages() -> None:
    counts = {"kind": "counts"}
    assert _message(stats.jensen_shannon, [1, 2], [2, 1], base=1, **counts) == (
        "`base` must be a float > 1; got 1."
    )
    for fn in _BINNED:
        assert _message(fn, [], [1.0]) == (
            "`reference` has no counted values (empty, or all missing); a distance needs at least "
            "one on each side."
        )
        assert _message(fn, [1.0], [np.nan]) == (
            "`current` has no counted values (empty, or all missing); a distance needs at least "
            "one on each side."
        )
    assert _message(stats.psi, [1, 0], [0, 1], smoothing=0, **counts) == (
        "psi is infinite when a bin is empty on one side only; use `smoothing` > 0."
    )
    assert _message(stats.ks, [1.0], [2.0], method="approx") == (
        "`method` must be 'auto', 'exact' or 'asymp'; got 'approx'."
    )
    assert _message(stats.cramer_von_mises, [1.0], [1.0, 2.0]) == (
        "Cramér-von Mises needs at least 2 finite values in each sample."
    )
    assert _message(stats.anderson_darling, [0.0, 2.0], [1.0]) == (
        "Anderson-Darling needs at least 4 finite values in the two samples together; got 2 + 1."
    )
    assert _message(stats.chi_square, [0, 0], [1, 2], **counts) == (
        "chi-square needs at least one counted value in each sample."
    )
    assert _message(stats.z_proportions, [1, 2, 3], [1, 0, 0], **counts) == (
        "the z-test compares two categories; got 3. Use chi_square instead."
    )
    assert _message(stats.z_proportions, [1, 2], [0, 0], **counts) == (
        "the z-test needs at least one counted value in each sample."
    )
