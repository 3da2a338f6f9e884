"""DeLong's test against a published reference implementation: R's pROC.

Reference: Robin X, Turck N, Hainard A, et al. "pROC: an open-source package for R and S+ to
analyze and compare ROC curves". BMC Bioinformatics 2011;12:77. Version used: pROC 1.18.0 (Debian
package r-cran-proc) on R 4.2.2.

The numbers below are printed, with 15 significant digits (``sprintf("%.15g")``), by
``data/delong_reference.R`` from the data in ``data/delong_data.csv`` (written once by
``data/make_delong_data.py``). For each data set, with ``d`` its rows::

    roc_base <- roc(d$y, d$baseline, levels = c(0, 1), direction = "<", quiet = TRUE)
    roc_cand <- roc(d$y, d$candidate, levels = c(0, 1), direction = "<", quiet = TRUE)
    auc(roc_base); auc(roc_cand)
    var(roc_base, method = "delong"); var(roc_cand, method = "delong")
    cov(roc_base, roc_cand, method = "delong")
    test <- roc.test(roc_cand, roc_base, method = "delong", paired = TRUE,
                     alternative = "two.sided", conf.level = 0.95)
    test$statistic; test$p.value; test$conf.int    # candidate minus baseline
    ci.auc(roc_base, method = "delong", conf.level = 0.95)  # lower, (auc), upper
    ci.auc(roc_cand, method = "delong", conf.level = 0.95)

pROC 1.18.0's ``roc.test`` reports the interval of the difference itself (``conf.int``), so that
is what is compared. The suite does not need R: these hard-coded values are the reference.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mloop.gates import delong_test

DATA = Path(__file__).parent / "data" / "delong_data.csv"
TOL = 1e-6

# fmt: off
PROC = {
    # 14 rows, 7 of each class; ties within classes, across classes and between the models.
    # Both per-AUC intervals reach past 1 and are clipped by pROC.
    "hand_ties": {
        "auc_baseline": 0.76530612244898,
        "auc_candidate": 0.86734693877551,
        "var_baseline": 0.0175968346522282,
        "var_candidate": 0.00895460224906289,
        "cov": 0.00820838539497432,
        "z": 1.01360606759923,
        "p_value": 0.310770761263558,
        "diff_low": -0.0952708724509122,
        "diff_high": 0.299352505103973,
        "ci_baseline": (0.505310900009993, 1),
        "ci_candidate": (0.681877976963917, 1),
    },
    # 200 rows, two models sharing most of their noise
    "correlated_200": {
        "auc_baseline": 0.677609848863978,
        "auc_candidate": 0.769292363126814,
        "var_baseline": 0.0014164750641432,
        "var_candidate": 0.0010797271318073,
        "cov": 0.000828132240530153,
        "z": 3.1634645602814,
        "p_value": 0.00155903332096108,
        "diff_low": 0.034879467304961,
        "diff_high": 0.148485561220712,
        "ci_baseline": (0.603844473317952, 0.751375224410003),
        "ci_candidate": (0.704889511369893, 0.833695214883735),
    },
    # 200 rows, the candidate is the baseline plus a little jitter: p close to 1
    "nearly_identical": {
        "auc_baseline": 0.772377237723772,
        "auc_candidate": 0.772627262726273,
        "var_baseline": 0.00109642671927755,
        "var_candidate": 0.00109787171642579,
        "cov": 0.00109488934140918,
        "z": 0.117605083599967,
        "p_value": 0.906380576772989,
        "diff_low": -0.00391680167824021,
        "diff_high": 0.00441685168324074,
        "ci_baseline": (0.707478253971995, 0.83727622147555),
        "ci_candidate": (0.707685527385627, 0.837568998066918),
    },
    # 300 rows, a weak baseline and a strong candidate: a tiny p-value
    "strongly_different": {
        "auc_baseline": 0.57667902944725,
        "auc_candidate": 0.965346977076724,
        "var_baseline": 0.00109834143492399,
        "var_candidate": 7.23583583398268e-05,
        "cov": -2.36125691067938e-05,
        "z": 11.1370063340018,
        "p_value": 8.28578874161418e-29,
        "diff_low": 0.320267593310457,
        "diff_high": 0.457068301948492,
        "ci_baseline": (0.511723403106473, 0.641634655788026),
        "ci_candidate": (0.948674795039106, 0.982019159114342),
    },
}
# fmt: on

ROWS = {"hand_ties": 14, "correlated_200": 200, "nearly_identical": 200, "strongly_different": 300}


def _load() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rows: dict[str, list[tuple[int, float, float]]] = {}
    with DATA.open(newline="") as f:
        for r in csv.DictReader(f):
            rows.setdefault(r["set"], []).append(
                (int(r["y"]), float(r["baseline"]), float(r["candidate"]))
            )
    return {
        name: (
            np.array([y for y, _, _ in rs]),
            np.array([b for _, b, _ in rs]),
            np.array([c for _, _, c in rs]),
        )
        for name, rs in rows.items()
    }


SETS = _load()


def test_the_fixture_holds_the_data_pROC_saw() -> None:
    assert {name: len(y) for name, (y, _, _) in SETS.items()} == ROWS
    assert all(set(np.unique(y)) == {0, 1} for y, _, _ in SETS.values())


@pytest.mark.parametrize("name", sorted(PROC))
def test_delong_matches_pROC(name: str) -> None:
    ref = PROC[name]
    y, base, cand = SETS[name]
    r = delong_test(y, base, cand, confidence=0.95)
    cov = r.details["covariance"]
    ours = {
        "auc_baseline": r.baseline,
        "auc_candidate": r.candidate,
        "var_baseline": cov[0][0],
        "var_candidate": cov[1][1],
        "cov": cov[0][1],
        "z": r.details["z"],
        "p_value": r.p_value,
        "diff_low": r.low,
        "diff_high": r.high,
        "ci_baseline": r.details["baseline_interval"],
        "ci_candidate": r.details["candidate_interval"],
    }
    assert ours.keys() == ref.keys()
    for key, want in ref.items():
        assert ours[key] == pytest.approx(want, abs=TOL, rel=0), key
    # a tiny p-value passes any absolute tolerance: hold it to 1e-6 relative as well
    assert r.p_value == pytest.approx(ref["p_value"], rel=TOL, abs=0)
    assert r.difference == pytest.approx(ref["auc_candidate"] - ref["auc_baseline"], abs=TOL)
    assert cov[1][0] == cov[0][1]
