"""Models for the serving tests, shipped with the package through ``code_paths``."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


class Sentinel:
    """Doubles column ``a``; raises on a = 13, stalls for 3 s on a = -1."""

    def predict(self, X: Any) -> np.ndarray:
        a = np.asarray(X["a"], dtype=float)
        if (a == 13).any():
            raise ValueError("unlucky thirteen")
        if (a == -1).any():
            time.sleep(3.0)
        return a * 2
