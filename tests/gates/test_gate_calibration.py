"""The issue's goals, through the gate's own decision (``non_regression_check``), on seeded
simulations: no true difference -> "worse" in 2-9% of 200 trials on a 5,000-row holdout at level
0.05; a candidate truly 2 accuracy points worse -> "worse" in >= 90% of them. Once with McNemar
(the default for accuracy) and once with the paired bootstrap."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mloop.gates._compare import non_regression_check
from mloop.gates._evaluate import Holdout, Scored
from mloop.gates._policy import NonRegressionPolicy

N, TRIALS = 5000, 200


class _Raw:
    raw = None


def _trial(
    rng: np.random.Generator, p_lose: float, p_gain: float
) -> tuple[Holdout, Scored, Scored]:
    """Balanced labels; a champion right on 85% of rows; a candidate that agrees with it except
    where it loses a right answer (``p_lose``) or gains one (``p_gain``): correlated errors, as
    two models of one family make."""
    y = rng.integers(0, 2, N)
    right = rng.random(N) < 0.85
    base = np.where(right, y, 1 - y)
    flip = np.where(right, rng.random(N) < p_lose, rng.random(N) < p_gain)
    cand = np.where(flip, 1 - base, base)
    t = pa.table({"x": np.zeros(N)})
    h = Holdout(t, t, "label", y, "classification", classes=np.array([0, 1]), y=y)
    mk = lambda out, uri: Scored(uri, None, _Raw(), predictions=out, out=out)  # type: ignore[arg-type]  # noqa: E731
    return h, mk(cand, "models:/m/2"), mk(base, "models:/m/1")


def _worse_rate(rule: NonRegressionPolicy, p_lose: float, p_gain: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    worse = 0
    for _ in range(TRIALS):
        h, cand, base = _trial(rng, p_lose, p_gain)
        r = non_regression_check("accuracy", rule, h, cand, base)
        worse += r.numbers["verdict"] == "worse"
        assert (r.status == "fail") == (r.numbers["verdict"] == "worse")
    return worse / TRIALS


# same accuracy: 0.85 * p_lose == 0.15 * p_gain; 2 points worse: 0.85 * p_lose - 0.15 * p_gain = 0.02
SAME = (0.05, 0.85 * 0.05 / 0.15)
WORSE = ((0.02 + 0.15 * 0.2) / 0.85, 0.2)


@pytest.mark.parametrize(
    "rule",
    [
        NonRegressionPolicy(require_better=False),
        NonRegressionPolicy(require_better=False, method="bootstrap", resamples=500),
    ],
    ids=["mcnemar", "bootstrap"],
)
def test_calibration_and_power(rule: NonRegressionPolicy) -> None:
    assert 0.02 <= _worse_rate(rule, *SAME, seed=1) <= 0.09
    assert _worse_rate(rule, *WORSE, seed=2) >= 0.90


def test_a_margin_forgives_a_small_loss() -> None:
    """2 points worse, with a practical margin of 5 points: never "worse"."""
    rule = NonRegressionPolicy(require_better=False, margin=0.05)
    assert _worse_rate(rule, *WORSE, seed=3) == 0.0
