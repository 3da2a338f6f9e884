"""Seeded serving traffic for the agent tests: windows of logged requests an agent's monitors read."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from mloop.inference import InferenceLogger

MINUTE = 60_000
T0 = 28_333_333 * MINUTE  # a window boundary
N = 300


def serve(store: Any, blobs: Any, windows: list[tuple[float, bool]]) -> None:
    """One window of N rows per entry: x1 shifted by ``shift``; ``broken``: x2 all missing."""
    rng = np.random.default_rng(3)
    logger = InferenceLogger("churn-api", store=store, blobstore=blobs, flush_interval_s=0.05)
    for w, (shift, broken) in enumerate(windows):
        x1 = rng.normal(size=N) + shift
        x2 = np.full(N, np.nan) if broken else rng.normal(size=N)
        for b in range(10):  # 10 requests of 30 rows, spread over the window
            rows = slice(b * 30, (b + 1) * 30)
            logger.log(
                request_ids=[f"w{w}-{i}" for i in range(b * 30, (b + 1) * 30)],
                ts_ms=T0 + w * MINUTE + b * (MINUTE // 10),
                model_version="churn/1",
                features=pa.table({"x1": x1[rows], "x2": x2[rows]}),
                predictions=np.zeros(30),
            )
    logger.close()
