"""Monitoring: data drift, data quality and model performance, from raw data or mergeable profiles.

Examples
--------
>>> import numpy as np
>>> from mloop import monitoring as mon
>>> rng = np.random.default_rng(0)
>>> report = mon.drift_report({"x": rng.normal(size=2000)}, {"x": rng.normal(size=2000)})
>>> report.drifted
False
"""

from __future__ import annotations

from mloop.monitoring import stats
from mloop.monitoring._drift import DriftMethod, drift_report
from mloop.monitoring._drift_result import ColumnDrift, ColumnHistogram, DriftReport
from mloop.monitoring._profile import Profile

# --- quality / performance / monitors (owned by the quality-and-performance engineer) ---------
# Add imports of quality_report, performance_report, estimate_performance, Monitor, ... here,
# and their names to the second part of ``__all__`` below.
# --- end of quality / performance / monitors -------------------------------------------------

__all__ = [
    # drift, profiles, statistics
    "ColumnDrift",
    "ColumnHistogram",
    "DriftMethod",
    "DriftReport",
    "Profile",
    "drift_report",
    "stats",
    # quality / performance / monitors: add names here
]
