"""Writes delong_data.csv, the fixed data on which delong_reference.R computes pROC's numbers.

Run once; the CSV (not this script) is the fixture: numpy does not promise the same random
stream across versions, so the test reads the written values instead of regenerating them.
Scores are rounded to 4 decimals so R and Python parse exactly the same doubles (and so the
generated sets have ties too).

    python tests/gates/data/make_delong_data.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("delong_data.csv")


def _hand_made() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # ties within each class, across classes, and between the two models
    y = np.array([0, 1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1])
    base = np.array([0.1, 0.2, 0.2, 0.4, 0.4, 0.6, 0.5, 0.7, 0.7, 0.9, 0.7, 0.2, 0.4, 0.5])
    cand = np.array([0.1, 0.3, 0.3, 0.3, 0.5, 0.8, 0.6, 0.8, 0.3, 0.9, 0.9, 0.1, 0.5, 0.5])
    return y, base, cand


def _correlated(seed: int = 20240612, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # two models sharing most of their noise (one family, retrained), the candidate a bit sharper
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    shared = rng.normal(size=n)
    base = 0.9 * y + shared + 0.6 * rng.normal(size=n)
    cand = 1.2 * y + shared + 0.6 * rng.normal(size=n)
    return y, base, cand


def _nearly_identical(seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # the candidate is the baseline plus a little jitter: the AUCs differ in the 3rd decimal
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    base = y + rng.normal(size=n)
    cand = base + 0.05 * rng.normal(size=n)
    return y, base, cand


def _strongly_different(seed: int = 7, n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    base = 0.3 * y + rng.normal(size=n)
    cand = 2.5 * y + rng.normal(size=n)
    return y, base, cand


# the seed of the nearly identical set was picked (by trying 0, 1, 2, ...) as the first whose
# DeLong p-value exceeds 0.9, so the set exercises p close to 1
NEARLY_IDENTICAL_SEED = 2


def main() -> None:
    sets = {
        "hand_ties": _hand_made(),
        "correlated_200": _correlated(),
        "nearly_identical": _nearly_identical(NEARLY_IDENTICAL_SEED),
        "strongly_different": _strongly_different(),
    }
    with OUT.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["set", "y", "baseline", "candidate"])
        for name, (y, base, cand) in sets.items():
            for yi, bi, ci in zip(y, np.round(base, 4), np.round(cand, 4), strict=True):
                w.writerow([name, int(yi), f"{bi:.4f}", f"{ci:.4f}"])


if __name__ == "__main__":
    main()
