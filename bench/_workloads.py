"""The data and timing helpers the tracking and server benchmarks share, so both run the same
workloads: run parameters and metrics, a large artifact file, per-call timings."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def per_call(fn: Callable[[int], None], n: int) -> np.ndarray:
    """Seconds taken by each of ``n`` calls ``fn(i)``."""
    out = np.empty(n)
    pc = time.perf_counter
    for i in range(n):
        t0 = pc()
        fn(i)
        out[i] = pc() - t0
    return out


def runs_data(
    n_runs: int, *, n_params: int = 10, n_metrics: int = 5
) -> tuple[list[dict[str, str]], list[dict[str, float]]]:
    """Params (``p0`` is 'x' for ~75% of runs) and metrics (uniform) shared by both engines."""
    rng = np.random.default_rng(0)
    m = rng.random((n_runs, n_metrics))
    px = rng.random(n_runs) < 0.75
    params = [
        {"p0": "x" if px[i] else "y", **{f"p{j}": f"v{(i * j) % 13}" for j in range(1, n_params)}}
        for i in range(n_runs)
    ]
    metrics = [{f"m{j}": float(m[i, j]) for j in range(n_metrics)} for i in range(n_runs)]
    return params, metrics


def artifact_file(root: Path, mb: int, *, seed: int = 0) -> Path:
    """``root/file.bin``: ``mb`` MiB of random bytes from ``seed`` (a new seed, new content)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "file.bin"
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(rng.bytes(1 << 20))
    return path
