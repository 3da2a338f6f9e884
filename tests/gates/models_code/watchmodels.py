"""Models for the post-deploy tests, shipped with the package through ``code_paths``."""

from __future__ import annotations

from typing import Any

import numpy as np


class Doubler:
    """Predicts ``2 a + shift``; raises on ``a == fail_on`` (a 500 on live traffic)."""

    def __init__(self, shift: float = 0.0, fail_on: float | None = None) -> None:
        self.shift = shift
        self.fail_on = fail_on

    def predict(self, X: Any) -> np.ndarray:
        a = np.asarray(X["a"], dtype=float)
        if self.fail_on is not None and (a == self.fail_on).any():
            raise ValueError(f"cannot score a={self.fail_on:g}")
        return a * 2 + self.shift
