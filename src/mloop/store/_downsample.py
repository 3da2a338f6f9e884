"""Min/max downsampling of metric histories: a chart of a million points in a few kilobytes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mloop._lazy import LazyModule

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy", globals(), "np")


__all__ = ["downsample_minmax"]


def downsample_minmax(
    step: np.ndarray, ts: np.ndarray, value: np.ndarray, max_points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep each bucket's min and max point (in step order), so spikes survive downsampling.

    ``max_points // 2`` equal-count buckets; within each, the indices of the minimum and maximum
    values (NaN-aware: a bucket of NaNs keeps its first point) are kept, in their original order.
    """
    n = len(value)
    if n <= max_points:
        return step, ts, value
    n_buckets = max(1, max_points // 2)
    bounds = np.linspace(0, n, n_buckets + 1).astype(np.int64)
    starts = bounds[:-1]
    finite = np.where(np.isnan(value), np.inf, value)
    idx_min = _reduce_arg(finite, starts, np.minimum)
    finite = np.where(np.isnan(value), -np.inf, value)
    idx_max = _reduce_arg(finite, starts, np.maximum)
    keep = np.unique(np.concatenate([idx_min, idx_max]))
    return step[keep], ts[keep], value[keep]


def _reduce_arg(arr: np.ndarray, starts: np.ndarray, op: Any) -> np.ndarray:
    """Index of op-extreme in each segment [starts[i], starts[i+1]) (first occurrence)."""
    ext = op.reduceat(arr, starts)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(arr))))
    hit = arr == ext[seg]
    # first hit per segment
    hit_idx = np.flatnonzero(hit)
    seg_of_hit = seg[hit_idx]
    first = np.unique(seg_of_hit, return_index=True)[1]
    out = starts.copy()
    out[seg_of_hit[first]] = hit_idx[first]
    return out
