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
from mloop.monitoring._profile_parallel import Executor, profile_partitions

# --- quality / performance / monitors (owned by the quality-and-performance engineer) ---------
# isort: split
from mloop.monitoring._alerts import (
    Alert,
    AlertRule,
    AlertSink,
    CallbackSink,
    LogSink,
    WebhookSink,
)
from mloop.monitoring._cbpe import CBPE, PerformanceEstimate, estimate_performance
from mloop.monitoring._html import render_report
from mloop.monitoring._inference import InferenceMonitor, monitor_inference_log
from mloop.monitoring._monitor import (
    Monitor,
    MonitorRecord,
    ResultSink,
    StoreResultSink,
    WindowResult,
)
from mloop.monitoring._performance import (
    PerformanceReport,
    expected_calibration_error,
    performance_report,
)
from mloop.monitoring._profile import load_if_profile
from mloop.monitoring._quality import QualityCheck, QualityReport, quality_report

# --- end of quality / performance / monitors -------------------------------------------------

__all__ = [
    "CBPE",
    "Alert",
    "AlertRule",
    "AlertSink",
    "CallbackSink",
    "ColumnDrift",
    "ColumnHistogram",
    "DriftMethod",
    "DriftReport",
    "Executor",
    "InferenceMonitor",
    "LogSink",
    "Monitor",
    "MonitorRecord",
    "PerformanceEstimate",
    "PerformanceReport",
    "Profile",
    "QualityCheck",
    "QualityReport",
    "ResultSink",
    "StoreResultSink",
    "WebhookSink",
    "WindowResult",
    "drift_report",
    "estimate_performance",
    "expected_calibration_error",
    "load_if_profile",
    "monitor_inference_log",
    "performance_report",
    "profile_partitions",
    "quality_report",
    "render_report",
    "stats",
]
