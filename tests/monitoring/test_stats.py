"""Every statistic against SciPy or a formula written out here, on seeded data, explicit tolerances."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial import distance as spd

from mloop.errors import InvalidInputError
from mloop.monitoring import stats
from mloop.monitoring.stats._binning import quantile_edges
from mloop.monitoring.stats._ecdf import SortedSample, cdf_distances

SEEDS = [0, 1, 2, 3]
REL = 1e-9


def _pair(seed: int, n: int = 500, m: int = 400, shift: float = 0.3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=n), rng.normal(loc=shift, scale=1.3, size=m)


def _discrete_pair(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 8, size=3000).astype(float), rng.integers(1, 9, size=2000).astype(float)


# ---------------------------------------------------------------- CDF statistics


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("sizes", [(300, 200), (800, 1000), (20_000, 15_000), (5, 12_000)])
def test_ks_matches_scipy_exact_and_asymptotic(seed: int, sizes: tuple[int, int]) -> None:
    ref, cur = _pair(seed, *sizes)
    d, p = stats.ks(ref, cur)
    expected = sps.ks_2samp(ref, cur)
    assert d == pytest.approx(expected.statistic, rel=1e-12, abs=1e-15)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("seed", SEEDS)
def test_ks_with_ties_and_nonfinite(seed: int) -> None:
    ref, cur = _discrete_pair(seed)
    ref = np.concatenate((np.tile(ref, 5), [np.nan, np.inf, -np.inf]))
    cur = np.concatenate((np.tile(cur, 6), [np.nan]))
    d, p = stats.ks(ref, cur)
    expected = sps.ks_2samp(ref[np.isfinite(ref)], cur[np.isfinite(cur)])
    assert d == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("seed", SEEDS)
def test_wasserstein_and_normed(seed: int) -> None:
    ref, cur = _pair(seed, 3000, 2500)
    assert stats.wasserstein(ref, cur) == pytest.approx(sps.wasserstein_distance(ref, cur), rel=REL)
    normed = sps.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
    assert stats.wasserstein(ref, cur, normed=True) == pytest.approx(normed, rel=REL)
    same_size = _pair(seed, 2000, 2000)
    assert stats.wasserstein(*same_size) == pytest.approx(
        sps.wasserstein_distance(*same_size), rel=REL
    )
    # Evidently's floor: a constant reference is divided by 0.001, not 0.
    const = np.full(100, 2.0)
    assert stats.wasserstein(const, const + 1, normed=True) == pytest.approx(1000.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_wasserstein_with_ties(seed: int) -> None:
    ref, cur = _discrete_pair(seed)
    assert stats.wasserstein(ref, cur) == pytest.approx(sps.wasserstein_distance(ref, cur), rel=REL)


@pytest.mark.parametrize("seed", SEEDS)
def test_weighted_sample_equals_expanded(seed: int) -> None:
    """A run-length encoded reference gives the same CDF statistics as its raw values."""
    from mloop.monitoring.stats._ecdf import cdf_distances

    ref, cur = _discrete_pair(seed)
    values, counts = np.unique(ref, return_counts=True)
    cur_sorted = np.sort(cur)
    raw = cdf_distances(SortedSample(np.sort(ref)), cur_sorted, which=("ks", "l1", "l2"))
    rle = cdf_distances(SortedSample(values, counts), cur_sorted, which=("ks", "l1", "l2"))
    assert raw == pytest.approx(rle, rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_energy_distance(seed: int) -> None:
    ref, cur = _pair(seed, 700, 900)
    assert stats.energy_distance(ref, cur) == pytest.approx(sps.energy_distance(ref, cur), rel=REL)


@pytest.mark.parametrize("seed", SEEDS)
def test_cramer_von_mises(seed: int) -> None:
    ref, cur = _pair(seed, 120, 90)
    expected = sps.cramervonmises_2samp(ref, cur)
    assert stats.cramer_von_mises(ref, cur) == pytest.approx(
        (expected.statistic, expected.pvalue), rel=1e-12
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_anderson_darling(seed: int) -> None:
    ref, cur = _pair(seed, 150, 130, shift=0.2)
    stat, p = stats.anderson_darling(ref, cur)
    expected = sps.anderson_ksamp([ref, cur], variant="midrank")
    assert stat == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-12)
    assert 0.001 <= p <= 0.25
    # far apart: the p-value is SciPy's floor, without the warning (warnings are errors here)
    assert stats.anderson_darling(ref, ref + 10)[1] == pytest.approx(0.001)


def test_cdf_stats_reject_empty_input() -> None:
    with pytest.raises(InvalidInputError, match="no finite values"):
        stats.ks([np.nan, np.inf], [1.0, 2.0])
    with pytest.raises(InvalidInputError, match="no finite values"):
        stats.wasserstein([1.0], [])
    with pytest.raises(InvalidInputError, match="1-D"):
        stats.ks(np.ones((3, 2)), [1.0])
    with pytest.raises(InvalidInputError, match="float64"):
        stats.energy_distance(["a", "b"], [1.0])


# ---------------------------------------------------------------- binned and categorical


def _hand_bins(ref: np.ndarray, cur: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference lower-quantile edges, open-ended bins, written out independently."""
    r = np.sort(ref[np.isfinite(ref)])
    q = np.arange(1, bins) / bins
    edges = np.unique(np.quantile(r, q, method="lower"))
    full = np.concatenate(([-np.inf], edges, [np.inf]))
    rc = np.array([np.sum((r >= a) & (r < b)) for a, b in itertools.pairwise(full)])
    c = cur[np.isfinite(cur)]
    cc = np.array([np.sum((c >= a) & (c < b)) for a, b in itertools.pairwise(full)])
    return rc, cc


@pytest.mark.parametrize("seed", SEEDS)
def test_quantile_edges_are_numpy_lower_quantiles(seed: int) -> None:
    ref, _ = _pair(seed, 1001)
    expected = np.unique(np.quantile(ref, np.arange(1, 10) / 10, method="lower"))
    np.testing.assert_array_equal(quantile_edges(SortedSample(np.sort(ref)), 10), expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_binned_distances_match_hand_formulas(seed: int) -> None:
    ref, cur = _pair(seed, 2000, 1500, shift=0.5)
    cur[:40] = 50.0  # beyond the reference range: lands in the open last bin
    rc, cc = _hand_bins(ref, cur, 10)
    assert rc.sum() == ref.size and cc.sum() == cur.size
    a = 0.5
    p, q = (rc + a) / (rc.sum() + a * rc.size), (cc + a) / (cc.sum() + a * cc.size)
    assert stats.psi(ref, cur) == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=REL)
    assert stats.kl_divergence(ref, cur) == pytest.approx(np.sum(p * np.log(p / q)), rel=REL)
    assert stats.kl_divergence(ref, cur, base=2) == pytest.approx(
        sps.entropy(p, q, base=2), rel=REL
    )
    p0, q0 = rc / rc.sum(), cc / cc.sum()
    assert stats.jensen_shannon(ref, cur) == pytest.approx(spd.jensenshannon(rc, cc), rel=REL)
    assert stats.jensen_shannon(ref, cur, base=2) == pytest.approx(
        spd.jensenshannon(rc, cc, base=2), rel=REL
    )
    hell = math.sqrt(1 - np.sum(np.sqrt(p0 * q0)))
    assert stats.hellinger(ref, cur) == pytest.approx(hell, rel=1e-7)
    assert stats.total_variation(ref, cur) == pytest.approx(0.5 * np.abs(p0 - q0).sum(), rel=REL)


@pytest.mark.parametrize("seed", SEEDS)
def test_missing_bin(seed: int) -> None:
    ref, cur = _pair(seed, 1000, 1000)
    ref[:50] = np.nan
    cur[:300] = np.nan
    rc, cc = _hand_bins(ref, cur, 10)
    with_missing = spd.jensenshannon(np.append(rc, 50), np.append(cc, 300))
    assert stats.jensen_shannon(ref, cur, missing="bin") == pytest.approx(with_missing, rel=REL)
    assert stats.jensen_shannon(ref, cur) == pytest.approx(spd.jensenshannon(rc, cc), rel=REL)


def test_smoothing_is_symmetric_and_finite() -> None:
    r = np.array([100, 0, 50])
    c = np.array([0, 100, 50])
    assert math.isfinite(stats.psi(r, c, kind="counts"))
    assert stats.psi(r, c, kind="counts") == pytest.approx(stats.psi(c, r, kind="counts"))
    with pytest.raises(InvalidInputError, match="smoothing"):
        stats.psi(r, c, kind="counts", smoothing=0)
    assert stats.kl_divergence(r, c, kind="counts", smoothing=0) == math.inf


@pytest.mark.parametrize("seed", SEEDS)
def test_categorical_js_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.choice(["a", "b", "c", "d"], p=[0.4, 0.3, 0.2, 0.1], size=5000).astype(object)
    cur = rng.choice(["a", "b", "c", "e"], p=[0.3, 0.3, 0.3, 0.1], size=4000).astype(object)
    ref[:10] = None
    labels = ["a", "b", "c", "d", "e"]
    rc = np.array([np.sum(ref == k) for k in labels])
    cc = np.array([np.sum(cur == k) for k in labels])
    assert stats.jensen_shannon(ref, cur) == pytest.approx(spd.jensenshannon(rc, cc), rel=REL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [3, 12, 1000])
def test_chi_square_is_a_contingency_test(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, k, size=50_000)
    cur = rng.integers(0, k, size=40_000)
    stat, p = stats.chi_square(ref, cur, kind="categorical")
    table = np.vstack((np.bincount(ref, minlength=k), np.bincount(cur, minlength=k)))
    table = table[:, table.sum(axis=0) > 0]
    expected = sps.chi2_contingency(table, correction=False)
    assert stat == pytest.approx(expected.statistic, rel=REL)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_chi_square_yates_and_single_category() -> None:
    r, c = np.array([30, 70]), np.array([45, 55])
    stat, p = stats.chi_square(r, c, kind="counts", correction=True)
    expected = sps.chi2_contingency(np.vstack((r, c)), correction=True)
    assert (stat, p) == pytest.approx((expected.statistic, expected.pvalue), rel=REL)
    assert stats.chi_square(["x"] * 5, ["x"] * 9) == (0.0, 1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_z_proportions_hand_formula_and_chi2_identity(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.random(3000) < 0.3
    cur = rng.random(2000) < 0.35
    z, p = stats.z_proportions(ref, cur)
    n1, n2 = ref.size, cur.size
    p1, p2 = np.mean(~ref), np.mean(~cur)  # first category in sorted order is False
    pooled = (np.sum(~ref) + np.sum(~cur)) / (n1 + n2)
    z_hand = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert z == pytest.approx(z_hand, rel=REL)
    assert p == pytest.approx(2 * sps.norm.sf(abs(z_hand)), rel=REL)
    chi2, p_chi = stats.chi_square(ref, cur, kind="categorical")
    assert z * z == pytest.approx(chi2, rel=1e-9)
    assert p == pytest.approx(p_chi, rel=1e-9)
    with pytest.raises(InvalidInputError, match="two categories"):
        stats.z_proportions([1, 2, 3], [1, 2])


def test_mixed_label_types_are_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="one comparable type"):
        stats.jensen_shannon(np.array([1, "a"], dtype=object), np.array(["a"], dtype=object))


# ---------------------------------------------------------------- multivariate


def _mmd_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    z = np.vstack((x, y))
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    h = np.median(d[np.triu_indices(len(z), 1)])
    k = np.exp(-(d**2) / (2 * h * h))
    m, n = len(x), len(y)
    kxx, kyy, kxy = k[:m, :m], k[m:, m:], k[:m, m:]
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_mmd_statistic_and_permutation_p_value(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 3))
    y = rng.normal(size=(50, 3))
    stat, p = stats.mmd(x, y, n_permutations=99, seed=seed)
    assert stat == pytest.approx(_mmd_by_hand(x, y), rel=1e-9, abs=1e-12)
    assert 0.01 <= p <= 1.0  # (1 + count) / (1 + 99): never 0
    assert p * 100 == pytest.approx(round(p * 100))
    assert stats.mmd(x, y, n_permutations=99, seed=seed) == (stat, p)  # seeded
    _, p_shift = stats.mmd(x, y + 1.0, n_permutations=99, seed=seed)
    assert p_shift == pytest.approx(0.01)


def test_mmd_null_p_values_are_roughly_uniform() -> None:
    rng = np.random.default_rng(7)
    ps = [
        stats.mmd(rng.normal(size=(40, 2)), rng.normal(size=(40, 2)), n_permutations=49, seed=s)[1]
        for s in range(40)
    ]
    assert 0.3 < float(np.mean(ps)) < 0.7
    assert np.mean(np.array(ps) < 0.05) < 0.2


def test_domain_classifier_auc() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    seed = 3
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 2))
    y = rng.normal(size=(250, 2))
    auc = stats.domain_classifier_auc(x, y, seed=seed, max_iter=20)
    manual = cross_val_score(
        HistGradientBoostingClassifier(max_iter=20, random_state=seed),
        np.vstack((x, y)),
        np.r_[np.zeros(300), np.ones(250)],
        cv=StratifiedKFold(5, shuffle=True, random_state=seed),
        scoring="roc_auc",
    ).mean()
    assert auc == pytest.approx(manual, rel=1e-12)
    assert abs(auc - 0.5) < 0.12
    y[:, 0] += 1.5
    assert stats.domain_classifier_auc(x, y, seed=seed, max_iter=20) > 0.8


def test_public_names() -> None:
    assert sorted(stats.__all__) == [
        "anderson_darling",
        "chi_square",
        "cramer_von_mises",
        "domain_classifier_auc",
        "energy_distance",
        "hellinger",
        "jensen_shannon",
        "kl_divergence",
        "ks",
        "mmd",
        "psi",
        "total_variation",
        "wasserstein",
        "z_proportions",
    ]


@pytest.mark.parametrize("seed", SEEDS)
def test_quantile_form_wasserstein_on_weighted_samples(seed: int) -> None:
    """The merge-free W1 used by drift reports, on raw and run-length encoded samples alike."""
    from mloop.monitoring.stats._ecdf import wasserstein1

    rng = np.random.default_rng(seed)
    for trial in range(60):
        m, n = rng.integers(1, 400, size=2)
        ref = rng.integers(0, 12, m).astype(float) if trial % 2 else rng.normal(size=m)
        cur = rng.integers(0, 9, n).astype(float) if trial % 3 else rng.normal(0.4, size=n)
        expected = sps.wasserstein_distance(ref, cur)
        for r in (SortedSample(np.sort(ref)), SortedSample(*np.unique(ref, return_counts=True))):
            for c in (
                SortedSample(np.sort(cur)),
                SortedSample(*np.unique(cur, return_counts=True)),
            ):
                assert wasserstein1(r, c) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("seed", SEEDS)
def test_merged_cdf_distances_whichever_sample_is_smaller(seed: int) -> None:
    """KS, W1 and energy from one merge, with ties across samples, a weighted reference and either
    sample the smaller one (the smaller is searched into the larger)."""
    rng = np.random.default_rng(seed)
    for trial in range(60):
        m, n = rng.integers(1, 400, size=2)
        if trial % 2:
            m, n = min(m, n), max(m, n) + 1
        ref = rng.integers(0, 12, m).astype(float) if trial % 3 else rng.normal(size=m)
        cur = rng.integers(0, 9, n).astype(float) if trial % 4 else rng.normal(0.4, size=n)
        for r in (SortedSample(np.sort(ref)), SortedSample(*np.unique(ref, return_counts=True))):
            got = cdf_distances(r, np.sort(cur), which=("ks", "l1", "l2"))
            assert got["ks"] == pytest.approx(sps.ks_2samp(ref, cur).statistic, rel=1e-12)
            assert got["l1"] == pytest.approx(
                sps.wasserstein_distance(ref, cur), rel=1e-12, abs=1e-15
            )
            assert np.sqrt(2.0) * got["l2"] == pytest.approx(
                sps.energy_distance(ref, cur), rel=1e-9, abs=1e-12
            )
