"""Paired model comparisons against independent references: brute-force DeLong components,
scikit-learn's AUC, scipy's binomial test, hand-computed McNemar, and seeded simulations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, roc_auc_score

from mloop.errors import InvalidInputError
from mloop.gates import delong_test, mcnemar_test, paired_bootstrap


def _psi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """DeLong (1988): 1 when the positive outranks the negative, 1/2 for a tie, else 0."""
    return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])


def _brute_force_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """The definition, O(m n): AUCs and the variance of their difference."""
    pos = y == 1
    comps = []
    for s in (a, b):
        psi = _psi(s[pos], s[~pos])
        comps.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    m, n = pos.sum(), (~pos).sum()
    s10 = np.cov(np.vstack([comps[0][1], comps[1][1]]))
    s01 = np.cov(np.vstack([comps[0][2], comps[1][2]]))
    cov = s10 / m + s01 / n
    return comps[0][0], comps[1][0], cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]


def test_delong_matches_the_definition_and_sklearn_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    a = np.round(y * 0.8 + rng.normal(size=400), 1)  # rounded: many ties
    b = np.round(y * 1.1 + rng.normal(size=400), 1)
    r = delong_test(y, a, b)
    auc_a, auc_b, var = _brute_force_delong(y, a, b)
    assert r.baseline == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert r.candidate == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    assert (r.baseline, r.candidate) == pytest.approx((auc_a, auc_b), abs=1e-12)
    assert r.details["se"] == pytest.approx(var**0.5, rel=1e-9)
    z = (auc_b - auc_a) / var**0.5
    assert r.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    half = stats.norm.ppf(0.975) * var**0.5
    assert (r.low, r.high) == pytest.approx((auc_b - auc_a - half, auc_b - auc_a + half), rel=1e-9)


def test_delong_identical_scores_and_bad_input() -> None:
    y = np.array([0, 1, 0, 1, 1])
    s = np.array([0.1, 0.9, 0.3, 0.6, 0.4])
    r = delong_test(y, s, s)
    assert r.difference == 0.0 and r.p_value == 1.0 and r.low == r.high == 0.0
    assert r.details["z"] == 0.0
    # all-tied scores against a perfect ranking: no variance, a certain difference (as in pROC)
    flat = delong_test(y, np.full(5, 0.5), s)
    assert flat.difference == 0.5 and flat.p_value == 0.0 and flat.details["z"] == np.inf
    with pytest.raises(InvalidInputError, match="both classes"):
        delong_test(np.ones(5), s, s)
    with pytest.raises(InvalidInputError, match="at least 2 positive and 2 negative rows; got 1"):
        delong_test(np.array([0, 1, 0, 0]), s[:4], s[:4])  # one sample variance would be 0/0
    with pytest.raises(InvalidInputError, match="one length"):
        delong_test(y, s, s[:4])
    with pytest.raises(InvalidInputError, match="finite"):
        delong_test(y, s, np.array([0.1, np.nan, 0.3, 0.6, 0.4]))


def test_mcnemar_against_scipy_and_hand_computed_values() -> None:
    # 10 rows only the baseline gets right, 25 only the candidate, 65 both
    y = np.ones(100, dtype=int)
    base = np.ones(100, dtype=int)
    cand = np.ones(100, dtype=int)
    base[:25] = 0  # candidate right, baseline wrong
    cand[25:35] = 0  # baseline right, candidate wrong
    r = mcnemar_test(y, base, cand, exact=False)
    assert r.details == {"only_baseline_right": 10, "only_candidate_right": 25}
    assert r.p_value == pytest.approx(stats.chi2.sf((15 - 1) ** 2 / 35, 1), rel=1e-12)
    assert r.difference == pytest.approx(0.15) and r.baseline == 0.75 and r.candidate == 0.90
    exact = mcnemar_test(y, base, cand, exact=True)
    assert exact.p_value == pytest.approx(stats.binomtest(10, 35, 0.5).pvalue, rel=1e-12)
    assert mcnemar_test(y, base, cand).method == "mcnemar-chi2"  # 35 discordant pairs
    assert mcnemar_test(y, base, base).p_value == 1.0


def _simulate(n: int, p_lose: float, p_gain: float, rng: np.random.Generator) -> tuple:
    """A champion right on 85% of rows; a candidate that agrees with it except where it loses a
    right answer (``p_lose``) or gains one (``p_gain``): correlated errors, as two models of one
    family have."""
    y = np.ones(n, dtype=int)
    base = (rng.random(n) < 0.85).astype(int)
    flip = np.where(base == 1, rng.random(n) < p_lose, rng.random(n) < p_gain)
    return y, base, np.where(flip, 1 - base, base)


def test_mcnemar_calibration_and_power_on_seeded_simulations() -> None:
    """The gate's goals: no true difference -> "worse" (one-sided, level 0.05) in 2-9% of 200
    trials on 5,000 rows; a candidate 2 points worse -> "worse" in >= 90% of them."""
    rng = np.random.default_rng(20261130)

    def worse_rate(p_lose: float, p_gain: float) -> float:
        worse = 0
        for _ in range(200):
            r = mcnemar_test(*_simulate(5000, p_lose, p_gain, rng))
            worse += r.difference < 0 and r.p_value / 2 < 0.05
        return worse / 200

    # same accuracy: 0.85 * p_lose == 0.15 * p_gain
    assert 0.02 <= worse_rate(0.05, 0.85 * 0.05 / 0.15) <= 0.09
    # 2 points worse: 0.85 * (1 - p_lose) + 0.15 * p_gain == 0.83
    assert worse_rate(1 - (0.83 - 0.15 * 0.2) / 0.85, 0.2) >= 0.90


def test_paired_bootstrap_vectorised_equals_the_loop_and_is_seeded() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 300)
    a = np.where(rng.random(300) < 0.8, y, 1 - y)
    b = np.where(rng.random(300) < 0.9, y, 1 - y)

    def acc(yt: np.ndarray, yp: np.ndarray) -> np.ndarray:
        return (yt == yp).mean(axis=-1)

    fast = paired_bootstrap(acc, y, a, b, n_resamples=500, seed=11)
    slow = paired_bootstrap(
        lambda yt, yp: accuracy_score(yt, yp), y, a, b, n_resamples=500, seed=11
    )
    assert fast.details["vectorised"] and not slow.details["vectorised"]
    assert (fast.low, fast.high, fast.p_value) == pytest.approx((slow.low, slow.high, slow.p_value))
    assert fast.difference == pytest.approx(accuracy_score(y, b) - accuracy_score(y, a))
    assert fast.low < fast.difference < fast.high
    again = paired_bootstrap(acc, y, a, b, n_resamples=500, seed=11)
    assert (again.low, again.high) == (fast.low, fast.high)
    with pytest.raises(InvalidInputError, match="n_resamples"):
        paired_bootstrap(acc, y, a, b, n_resamples=5)
