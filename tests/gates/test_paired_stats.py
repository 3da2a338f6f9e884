"""Paired model comparisons against independent references: brute-force DeLong components,
scikit-learn's AUC, scipy's binomial test, hand-computed McNemar, and seeded simulations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm
from sklearn.metrics import accuracy_score, roc_auc_score

from mloop.errors import InvalidInputError
from mloop.gates import delong_test, mcnemar_test, paired_bootstrap
from mloop.gates._metrics import METRICS


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


def _bootstrap_data(n: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p0 = np.clip(0.5 * y + rng.normal(0.25, 0.3, n), 0.0, 1.0)  # 0 and 1 exercise the clipping
    p1 = np.clip(p0 + rng.normal(0.02, 0.1, n), 0.0, 1.0)
    v = rng.normal(3.0, 1.0, n)
    return {
        "accuracy": (y, (p0 > 0.5).astype(int), (p1 > 0.5).astype(int)),
        "log_loss": (y, p0, p1),
        "brier": (y, p0, p1),
        **{m: (v, v + rng.normal(0, 1, n), v + rng.normal(0.1, 0.9, n)) for m in _REGRESSION},
    }


_REGRESSION = ("mse", "rmse", "mae", "mape")
_SKLEARN = {
    "accuracy": lambda y, o: skm.accuracy_score(y, o),
    "log_loss": lambda y, p: skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]),
    "brier": lambda y, p: skm.brier_score_loss(y, p),
    "mse": lambda y, v: skm.mean_squared_error(y, v),
    "rmse": lambda y, v: skm.root_mean_squared_error(y, v),
    "mae": lambda y, v: skm.mean_absolute_error(y, v),
    "mape": lambda y, v: skm.mean_absolute_percentage_error(y, v),
}


@pytest.mark.parametrize("n", [257, 1000])  # an odd and an even number of rows
@pytest.mark.parametrize("name", list(_SKLEARN))
def test_mean_of_rows_metrics_resample_per_row_values_with_the_same_results(
    name: str, n: int
) -> None:
    """The gate's mean-of-rows metrics gather per-row differences instead of recomputing the
    metric: same resamples, so the same interval and p-value as scikit-learn's metric called on
    each resample (up to rounding), and as the general vectorised path."""
    y, a, b = _bootstrap_data(n, seed=n)[name]
    fn = METRICS[name].fn
    fast = paired_bootstrap(fn, y, a, b, n_resamples=200, seed=4)
    loop = paired_bootstrap(_SKLEARN[name], y, a, b, n_resamples=200, seed=4)
    plain = paired_bootstrap(lambda yt, o: fn(yt, o), y, a, b, n_resamples=200, seed=4)
    assert fast.details["path"] == "row-mean"
    assert loop.details["path"] == "loop" and plain.details["path"] == "vectorised"
    for other in (loop, plain):
        assert (fast.baseline, fast.candidate) == pytest.approx(
            (other.baseline, other.candidate), rel=1e-12, abs=1e-15
        )
        assert (fast.low, fast.high) == pytest.approx((other.low, other.high), rel=1e-9, abs=1e-12)
        assert fast.p_value == other.p_value


@pytest.mark.parametrize("n", [257, 1000])
def test_the_batch_size_changes_nothing_but_memory(n: int) -> None:
    """Results depend on the seed alone, whatever the batch: the batches cut one stream of row
    indices (odd row counts and odd batches included)."""
    y, a, b = _bootstrap_data(n, seed=1)["log_loss"]
    f1 = METRICS["f1"].fn
    ya, yb = (a > 0.5).astype(int), (b > 0.5).astype(int)
    for fn, o0, o1 in ((METRICS["log_loss"].fn, a, b), (f1, ya, yb)):
        runs = [
            paired_bootstrap(fn, y, o0, o1, n_resamples=101, seed=9, batch=k)
            for k in (None, 1, 3, 7, 200)
        ]
        assert {(r.low, r.high, r.p_value) for r in runs} == {
            (runs[0].low, runs[0].high, runs[0].p_value)
        }
    with pytest.raises(InvalidInputError, match="batch"):
        paired_bootstrap(f1, y, ya, yb, batch=0)
