"""Every entity and report survives the wire: ``E.from_dict(loads(dumps(e.to_dict())))`` rebuilds
``e`` (hypothesis, one strategy per entity), and reports stored before the codec still read."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import _hypothesis_profile  # noqa: F401  (settings profile)
from _codec_caches import decoders_built_per_test  # noqa: F401  (autouse)
from mloop.codec import dumps, loads
from mloop.monitoring import (
    Alert,
    ColumnDrift,
    ColumnHistogram,
    DriftReport,
    MonitorRecord,
    PerformanceEstimate,
    PerformanceReport,
    QualityCheck,
    QualityReport,
)
from mloop.monitoring._window import WindowResult
from mloop.registry import (
    Lineage,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    VersionDiff,
    Webhook,
    WebhookDelivery,
)
from mloop.registry._manifest import ModelManifest
from mloop.registry._signature import DTYPES, ColSpec, ModelSignature, ParamSpec, Schema, TensorSpec
from mloop.store import (
    CHECK_KINDS,
    CHECK_STATUSES,
    EVENT_TYPES,
    REPORT_KINDS,
    ApiToken,
    ArtifactEntry,
    CheckReport,
    CheckResult,
    DatasetVersion,
    Deployment,
    DeploymentRevision,
    Event,
    EventCursor,
    InferenceChunk,
    InferenceLabel,
    MediaItem,
    MetricHistory,
    MetricSeries,
    MetricSummary,
    Page,
    Pipeline,
    PipelineRun,
    Project,
    Run,
    RunInput,
    ServingMinute,
    StepRun,
    TriggerFiring,
)
from mloop.store._monitor_base import MonitorAlert, MonitorResult

# ---------------------------------------------------------------- building blocks

# The special values are drawn often on purpose: they are what the codec is about.
floats = st.sampled_from([math.nan, math.inf, -math.inf, -0.0]) | st.floats()
finite = st.floats(allow_nan=False, allow_infinity=False)
opt_floats = st.none() | floats
text = st.text(max_size=12)
# Strings that look like the wire's non-finite spellings: str fields must keep them as strings.
tricky = text | st.sampled_from(["NaN", "Infinity", "-Infinity", "inf", "-inf", "1.5", ""])
name = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8)
ms = st.integers(min_value=0, max_value=2**53)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
str_map = st.dictionaries(tricky, tricky, max_size=4)
# What ``Any`` fields hold: JSON values (lists, not tuples; finite floats, since an Any field gets
# back exactly what JSON gave it, and a float's non-finite wire spelling is a string there).
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | tricky,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
json_map = st.dictionaries(text, json_value, max_size=4)


def arrays(dtype: Any, n: int | None = None) -> st.SearchStrategy[np.ndarray]:
    shape = st.integers(0, 8) if n is None else st.just(n)
    return hnp.arrays(dtype, shape)


# ---------------------------------------------------------------- store entities

projects = st.builds(
    Project,
    id=text,
    name=tricky,
    created_ms=ms,
    updated_ms=ms,
    lifecycle_stage=st.sampled_from(["active", "deleted"]),
    tags=str_map,
)
summaries = st.builds(
    MetricSummary,
    key=text,
    last=floats,
    step=int64,
    timestamp=ms,
    min=opt_floats,
    max=opt_floats,
    count=st.integers(0, 2**40),
)
run_inputs = st.builds(RunInput, dataset_sha256=text, name=tricky, context=tricky)
opt_text = st.none() | text
runs = st.builds(
    Run,
    id=text,
    project_id=text,
    name=tricky,
    status=st.sampled_from(["running", "finished", "failed", "killed"]),
    start_ms=ms,
    end_ms=st.none() | ms,
    heartbeat_ms=st.none() | ms,
    parent_run_id=opt_text,
    user=opt_text,
    host=opt_text,
    git_commit=opt_text,
    git_dirty=st.none() | st.booleans(),
    lifecycle_stage=st.sampled_from(["active", "deleted"]),
    params=str_map,
    tags=str_map,
    metrics=st.dictionaries(text, summaries, max_size=3),
    context=json_map,
    inputs=st.lists(run_inputs, max_size=2).map(tuple),
)
series = st.integers(0, 8).flatmap(
    lambda n: st.builds(
        MetricSeries, arrays(np.int64, n), arrays(np.int64, n), arrays(np.float64, n)
    )
)
histories = st.integers(0, 8).flatmap(
    lambda n: st.builds(
        MetricHistory,
        key=text,
        step=arrays(np.int64, n),
        timestamp=arrays(np.int64, n),
        value=arrays(np.float64, n),
        total=st.integers(0, 2**40),
        downsampled=st.booleans(),
    )
)
artifacts = st.builds(ArtifactEntry, path=text, size=st.integers(0, 2**62), sha256=text)
datasets = st.builds(
    DatasetVersion,
    sha256=text,
    name=tricky,
    schema=str_map,
    num_rows=st.integers(0, 2**62),
    source_uri=opt_text,
    storage_uri=text,
    created_ms=ms,
    profile=st.none() | json_map,
)

# ---------------------------------------------------------------- registry entities

models = st.builds(
    RegisteredModel,
    name=name,
    description=tricky,
    created_ms=ms,
    updated_ms=ms,
    created_by=opt_text,
    tags=str_map,
    aliases=st.dictionaries(name, st.integers(1, 2**31), max_size=3),
    latest_version=st.none() | st.integers(1, 2**31),
)
versions = st.builds(
    ModelVersion,
    name=name,
    version=st.integers(1, 2**31),
    artifact_uri=text,
    flavor=text,
    source_run_id=opt_text,
    created_ms=ms,
    updated_ms=ms,
    created_by=opt_text,
    description=tricky,
    signature=st.none() | json_map,
    manifest=json_map,
    metrics=st.dictionaries(text, floats, max_size=4),
    params=str_map,
    datasets=st.lists(json_map, max_size=2).map(tuple),
    git_commit=opt_text,
    tags=str_map,
    aliases=st.lists(name, max_size=3).map(tuple),
    deleted=st.booleans(),
)
aliases = st.builds(
    ModelAlias,
    name=name,
    alias=name,
    version=st.integers(1, 2**31),
    protected=st.booleans(),
    updated_ms=ms,
    updated_by=opt_text,
)
events = st.builds(
    RegistryEvent,
    id=st.integers(1, 2**62),
    ts_ms=ms,
    type=st.sampled_from(["alias_set", "version_registered", "tag_set"]),
    model=name,
    version=st.none() | st.integers(1, 2**31),
    alias=st.none() | name,
    actor=opt_text,
    before=json_value,
    after=json_value,
    reason=opt_text,
    report_id=opt_text,
)
webhooks = st.builds(
    Webhook,
    id=st.integers(1, 2**31),
    url=text,
    events=st.lists(text, max_size=3).map(tuple),
    model=st.none() | name,
    active=st.booleans(),
    created_ms=ms,
    cursor=st.integers(0, 2**62),
)
deliveries = st.builds(
    WebhookDelivery,
    id=st.integers(1, 2**31),
    webhook_id=st.integers(1, 2**31),
    event_id=st.integers(1, 2**31),
    attempt=st.integers(1, 10),
    ok=st.booleans(),
    status_code=st.none() | st.integers(100, 599),
    error=opt_text,
    ts_ms=ms,
    duration_ms=st.integers(0, 10**6),
)
lineages = st.builds(
    Lineage,
    model=name,
    version=st.integers(1, 100),
    artifact_uri=text,
    flavor=text,
    run=st.none() | json_map,
    datasets=st.lists(json_map, max_size=2).map(tuple),
    git=json_map,
    config=str_map,
    created_by=opt_text,
    created_ms=ms,
)
pair = st.tuples(st.none() | tricky, st.none() | tricky)
diffs = st.builds(
    VersionDiff,
    model=name,
    a=st.integers(1, 100),
    b=st.integers(1, 100),
    params=st.dictionaries(text, pair, max_size=3),
    metrics=st.dictionaries(text, st.tuples(opt_floats, opt_floats, opt_floats), max_size=3),
    datasets=st.dictionaries(text, pair, max_size=2),
    signature_equal=st.booleans(),
    signature=st.tuples(st.none() | json_map, st.none() | json_map),
    flavor=st.tuples(text, text),
    git_commit=st.tuples(opt_text, opt_text),
    params_all=st.dictionaries(text, pair, max_size=3),
)
param_specs = st.one_of(
    st.builds(ParamSpec, name=name, dtype=st.just("float64"), default=opt_floats),
    st.builds(ParamSpec, name=name, dtype=st.just("int64"), default=st.none() | int64),
    st.builds(ParamSpec, name=name, dtype=st.just("bool"), default=st.none() | st.booleans()),
    st.builds(ParamSpec, name=name, dtype=st.just("string"), default=st.none() | tricky),
)
dtype_names = st.sampled_from(DTYPES)
col_schemas = st.lists(
    st.builds(ColSpec, name=name, dtype=dtype_names, nullable=st.booleans()),
    min_size=1,
    max_size=4,
    unique_by=lambda c: c.name,
).map(Schema)
tensor_schemas = st.one_of(
    st.builds(
        TensorSpec, dtype=dtype_names, shape=st.lists(st.integers(-1, 64), max_size=3).map(tuple)
    ).map(lambda t: Schema([t])),
    st.lists(
        st.builds(TensorSpec, dtype=dtype_names, shape=st.just((-1, 3)), name=name),
        min_size=1,
        max_size=3,
        unique_by=lambda t: t.name,
    ).map(Schema),
)
signatures = st.builds(
    ModelSignature,
    inputs=col_schemas | tensor_schemas,
    outputs=st.none() | col_schemas | tensor_schemas,
    params=st.lists(param_specs, max_size=3, unique_by=lambda p: p.name).map(tuple),
)
manifests = st.builds(
    ModelManifest,
    flavor=name,
    framework=opt_text,
    framework_version=opt_text,
    python_version=text,
    mloop_version=text,
    files=str_map,
    created_ms=ms,
    flavor_options=json_map,
    signature=st.none() | signatures,
    input_example=st.none() | json_map,
    requirements=st.lists(text, max_size=3).map(tuple),
    trusted_only=st.booleans(),
    code_paths=st.lists(text, max_size=2).map(tuple),
    metadata=json_map,
)

# ---------------------------------------------------------------- monitoring reports

numeric_histograms = st.integers(1, 6).flatmap(
    lambda n: st.builds(
        ColumnHistogram,
        edges=hnp.arrays(np.float64, n + 1, elements=floats),
        categories=st.none(),
        reference=arrays(np.int64, n),
        current=arrays(np.int64, n),
        reference_missing=st.integers(0, 2**40),
        current_missing=st.integers(0, 2**40),
    )
)
categorical_histograms = st.integers(0, 5).flatmap(
    lambda n: st.builds(
        ColumnHistogram,
        edges=st.none(),
        categories=st.lists(tricky, min_size=n, max_size=n),
        reference=arrays(np.int64, n),
        current=arrays(np.int64, n),
        reference_missing=st.integers(0, 100),
        current_missing=st.integers(0, 100),
    )
)
column_drifts = st.builds(
    ColumnDrift,
    name=tricky,
    kind=st.sampled_from(["numeric", "categorical"]),
    method=text,
    statistic=opt_floats,
    p_value=opt_floats,
    threshold=finite,
    drifted=st.booleans(),
    n_reference=st.integers(0, 2**40),
    n_current=st.integers(0, 2**40),
    status=st.sampled_from(["ok", "drift", "insufficient_data", "missing_column", "error"]),
    message=tricky,
    histogram=st.none() | numeric_histograms | categorical_histograms,
)
drift_reports = st.builds(
    DriftReport,
    columns=st.dictionaries(tricky, column_drifts, max_size=3),
    drift_share=finite,
    n_reference_rows=st.integers(0, 2**40),
    n_current_rows=st.integers(0, 2**40),
    extra_columns=st.lists(tricky, max_size=2).map(tuple),
)
check_values = floats | st.none() | st.booleans() | st.integers() | st.lists(opt_floats, max_size=2)
quality_checks = st.one_of(
    st.builds(
        QualityCheck,
        column=st.none() | tricky,
        check=st.sampled_from(["missing_share", "out_of_range", "empty", "column_missing"]),
        verdict=st.sampled_from(["pass", "warn", "fail", "skip"]),
        value=check_values,
        reference_value=check_values,
        threshold=opt_floats,
        message=tricky,
    ),
    st.builds(
        QualityCheck,
        column=tricky,
        check=st.just("type"),
        verdict=st.sampled_from(["pass", "fail"]),
        value=tricky,  # type names: even "NaN" stays a string here
        reference_value=tricky,
    ),
)
column_summaries = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["numeric", "categorical", "empty"]),
        "type": tricky,
        "n": st.integers(0, 1000),
        "n_missing": st.integers(0, 1000),
        "missing_share": floats,
        "n_inf": st.integers(0, 10),
        "min": opt_floats,
        "max": opt_floats,
        "n_unique": st.integers(0, 10),
    }
)
quality_reports = st.builds(
    QualityReport,
    checks=st.lists(quality_checks, max_size=4),
    reference=st.dictionaries(tricky, column_summaries, max_size=2),
    current=st.dictionaries(tricky, column_summaries, max_size=2),
    n_reference=st.integers(0, 2**40),
    n_current=st.integers(0, 2**40),
)
metric_maps = st.dictionaries(text, opt_floats, max_size=4)
labels = st.lists(st.integers() | tricky | st.booleans(), max_size=3)
performance_reports = st.recursive(
    st.builds(
        PerformanceReport,
        task=st.sampled_from(["binary", "multiclass", "regression"]),
        n=st.integers(0, 2**40),
        n_dropped=st.integers(0, 2**40),
        metrics=metric_maps,
        reasons=str_map,
        labels=labels,
        pos_label=st.none() | st.integers() | tricky,
        confusion_matrix=st.none()
        | st.lists(st.lists(st.integers(0, 2**62), max_size=3), max_size=3),
        notes=st.lists(tricky, max_size=2),
    ),
    lambda inner: st.builds(
        PerformanceReport,
        task=st.just("binary"),
        n=st.integers(0, 100),
        n_dropped=st.integers(0, 100),
        metrics=metric_maps,
        segments=st.dictionaries(text, inner, max_size=2),
    ),
    max_leaves=3,
)
estimates = st.builds(
    PerformanceEstimate,
    task=st.sampled_from(["binary", "multiclass"]),
    n=st.integers(0, 2**40),
    metrics=metric_maps,
    reasons=str_map,
    labels=labels,
    expected_confusion_matrix=st.lists(st.lists(floats, max_size=3), max_size=3),
    calibrated=st.lists(st.booleans(), max_size=3),
    reference_metrics=metric_maps,
)
window_bounds = st.integers(0, 2**40) | text
alerts = st.builds(
    Alert,
    rule=tricky,
    name=tricky,
    severity=st.sampled_from(["info", "warning", "critical"]),
    monitor=text,
    window_index=st.integers(0, 2**31),
    window_start=window_bounds,
    window_end=window_bounds,
    metric=text,
    op=st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
    threshold=floats,
    value=floats,
    consecutive=st.integers(1, 100),
    message=tricky,
    created_ms=ms,
)
windows = st.builds(
    WindowResult,
    monitor=text,
    index=st.integers(0, 2**31),
    start=window_bounds,
    end=window_bounds,
    n_rows=st.integers(0, 2**40),
    drift=st.none() | drift_reports,
    quality=st.none() | quality_reports,
    performance=st.none() | performance_reports,
    estimated_performance=st.none() | estimates,
    alerts=st.lists(alerts, max_size=2),
    notes=st.lists(tricky, max_size=2),
)
records = st.builds(
    MonitorRecord,
    monitor=text,
    window_index=st.integers(0, 2**31),
    window_start=window_bounds,
    window_end=window_bounds,
    n_rows=st.integers(0, 2**40),
    result=json_map,
    alerts=st.lists(json_map, max_size=2),
)
monitor_results = st.builds(
    MonitorResult,
    id=st.integers(1, 2**62),
    monitor=text,
    window_index=st.integers(0, 2**31),
    window_start=window_bounds,
    window_end=window_bounds,
    n_rows=st.integers(0, 2**40),
    result=json_map,
    created_ms=ms,
)
monitor_alerts = st.builds(
    MonitorAlert,
    id=st.integers(1, 2**62),
    monitor=text,
    window_index=st.integers(0, 2**31),
    name=tricky,
    severity=text,
    message=tricky,
    created_ms=ms,
    payload=json_map,
)
log_events = st.builds(
    Event,
    id=st.integers(1, 2**62),
    ts_ms=ms,
    type=st.sampled_from(EVENT_TYPES),
    subject=text,
    actor=st.none() | text,
    payload=json_map,
)
cursors = st.builds(EventCursor, name=text, position=st.integers(0, 2**62), updated_ms=ms)
inference_chunks = st.builds(
    InferenceChunk,
    id=st.integers(1, 2**62),
    deployment=text,
    sha256=st.text("0123456789abcdef", min_size=64, max_size=64),
    size=st.integers(0, 2**62),
    n_rows=st.integers(0, 2**40),
    first_ts_ms=ms,
    last_ts_ms=ms,
    model_versions=st.dictionaries(tricky, st.integers(0, 2**40), max_size=3),
    created_ms=ms,
)
deployments = st.builds(
    Deployment,
    name=name,
    model=text,
    canary=st.none() | text,
    canary_percent=floats,
    shadow=st.none() | text,
    sticky_key=st.none() | text,
    config=json_map,
    revision=st.integers(1, 2**31 - 1),
    created_ms=ms,
    updated_ms=ms,
    created_by=st.none() | text,
    updated_by=st.none() | text,
)
deployment_revisions = st.builds(
    DeploymentRevision,
    name=name,
    revision=st.integers(1, 2**31 - 1),
    spec=json_map,
    actor=st.none() | text,
    reason=st.none() | tricky,
    created_ms=ms,
)
inference_labels = st.builds(
    InferenceLabel,
    id=st.integers(1, 2**62),
    deployment=text,
    request_id=name,
    label=st.booleans() | st.integers() | finite | tricky,
    ts_ms=ms,
)
check_results = st.builds(
    CheckResult,
    name=tricky,
    kind=st.sampled_from(CHECK_KINDS),
    status=st.sampled_from(CHECK_STATUSES),
    summary=tricky,
    compared=tricky,
    numbers=json_map,
    details=st.lists(json_map, max_size=2).map(tuple),
    duration_ms=floats,
)
check_reports = st.builds(
    CheckReport,
    id=text,
    model=name,
    version=st.integers(1, 2**31 - 1),
    kind=st.sampled_from(REPORT_KINDS),
    status=st.sampled_from(["pass", "fail"]),
    candidate_uri=tricky,
    baseline_uri=st.none() | text,
    baseline_version=st.none() | st.integers(1, 2**31 - 1),
    policy_hash=text,
    policy=json_map,
    data=json_map,
    checks=st.lists(check_results, max_size=3).map(tuple),
    created_ms=ms,
    duration_ms=floats,
    actor=st.none() | text,
    extra=json_map,
)
api_tokens = st.builds(
    ApiToken,
    id=text,
    name=name,
    role=st.sampled_from(["read", "write", "admin"]),
    project_id=st.none() | text,
    created_ms=ms,
    expires_ms=st.none() | ms,
    last_used_ms=st.none() | ms,
    revoked_ms=st.none() | ms,
    created_by=st.none() | text,
    rate_limit=st.none() | st.floats(0.001, 1e6),
)
pipelines = st.builds(Pipeline, name=name, code_ref=tricky, created_ms=ms, updated_ms=ms)
pipeline_runs = st.builds(
    PipelineRun,
    id=text,
    pipeline=name,
    status=st.sampled_from(["running", "finished", "failed"]),
    trigger=name,
    code_ref=tricky,
    params=json_map,
    start_ms=ms,
    end_ms=st.none() | ms,
    reason=st.none() | tricky,
    error=st.none() | tricky,
    resumed_from=st.none() | text,
    tracking_run_id=st.none() | text,
    actor=st.none() | text,
)
step_runs = st.builds(
    StepRun,
    run_id=text,
    name=name,
    step=tricky,
    status=st.sampled_from(["finished", "cached", "failed", "skipped"]),
    inputs=st.dictionaries(name, text, max_size=3),
    outputs=st.dictionaries(name, text, max_size=3),
    output_formats=st.dictionaries(name, text, max_size=3),
    code_hash=st.none() | text,
    cache_key=st.none() | text,
    cache_hit=st.booleans(),
    cache_note=st.none() | tricky,
    attempts=st.integers(0, 100),
    start_ms=ms,
    end_ms=ms,
    error=st.none() | tricky,
    tracking_run_id=st.none() | text,
)
trigger_firings = st.builds(
    TriggerFiring,
    key=name,
    trigger=name,
    pipeline=name,
    kind=st.sampled_from(["schedule", "alert", "data", "manual"]),
    status=st.sampled_from(["pending", "running", "finished", "failed"]),
    run_id=text,
    reason=tricky,
    details=json_map,
    created_ms=ms,
    updated_ms=ms,
    owner=st.none() | text,
    lease_until_ms=ms,
    resumed_from=st.none() | text,
    error=st.none() | tricky,
    actor=st.none() | text,
)
media_items = st.builds(
    MediaItem,
    key=name,
    step=st.integers(-(2**63), 2**63 - 1),
    kind=st.sampled_from(["image", "figure", "table", "histogram"]),
    path=text,
    meta=json_map,
    timestamp_ms=ms,
)
serving_minutes = st.builds(
    ServingMinute,
    deployment=name,
    replica=text,
    minute_ms=ms,
    requests=st.integers(0, 2**63 - 1),
    errors=st.integers(0, 2**63 - 1),
    latency_sum_ms=st.floats(allow_nan=False),
    latency_max_ms=st.floats(allow_nan=False),
    latency_counts=st.lists(st.integers(0, 2**63 - 1), max_size=20).map(tuple),
)

ENTITIES: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], Any]]] = {
    "Project": (projects, Project.from_dict),
    "MetricSummary": (summaries, MetricSummary.from_dict),
    "RunInput": (run_inputs, RunInput.from_dict),
    "Run": (runs, Run.from_dict),
    "MetricSeries": (series, MetricSeries.from_dict),
    "MetricHistory": (histories, MetricHistory.from_dict),
    "ArtifactEntry": (artifacts, ArtifactEntry.from_dict),
    "DatasetVersion": (datasets, DatasetVersion.from_dict),
    "Page[Run]": (
        st.builds(Page, st.lists(runs, max_size=2), st.none() | text),
        lambda d: Page.from_dict(d, item=Run.from_dict),
    ),
    "RegisteredModel": (models, RegisteredModel.from_dict),
    "ModelVersion": (versions, ModelVersion.from_dict),
    "ModelAlias": (aliases, ModelAlias.from_dict),
    "RegistryEvent": (events, RegistryEvent.from_dict),
    "Webhook": (webhooks, Webhook.from_dict),
    "WebhookDelivery": (deliveries, WebhookDelivery.from_dict),
    "Lineage": (lineages, Lineage.from_dict),
    "VersionDiff": (diffs, VersionDiff.from_dict),
    "ParamSpec": (param_specs, ParamSpec.from_dict),
    "Schema": (col_schemas | tensor_schemas, Schema.from_dict),
    "ModelSignature": (signatures, ModelSignature.from_dict),
    "ModelManifest": (manifests, ModelManifest.from_dict),
    "ColumnHistogram": (numeric_histograms | categorical_histograms, ColumnHistogram.from_dict),
    "ColumnDrift": (column_drifts, ColumnDrift.from_dict),
    "DriftReport": (drift_reports, DriftReport.from_dict),
    "QualityCheck": (quality_checks, QualityCheck.from_dict),
    "QualityReport": (quality_reports, QualityReport.from_dict),
    "PerformanceReport": (performance_reports, PerformanceReport.from_dict),
    "PerformanceEstimate": (estimates, PerformanceEstimate.from_dict),
    "WindowResult": (windows, WindowResult.from_dict),
    "MonitorRecord": (records, MonitorRecord.from_dict),
    "MonitorResult": (monitor_results, MonitorResult.from_dict),
    "MonitorAlert": (monitor_alerts, MonitorAlert.from_dict),
    "Event": (log_events, Event.from_dict),
    "EventCursor": (cursors, EventCursor.from_dict),
    "InferenceChunk": (inference_chunks, InferenceChunk.from_dict),
    "Deployment": (deployments, Deployment.from_dict),
    "DeploymentRevision": (deployment_revisions, DeploymentRevision.from_dict),
    "InferenceLabel": (inference_labels, InferenceLabel.from_dict),
    "CheckResult": (check_results, CheckResult.from_dict),
    "CheckReport": (check_reports, CheckReport.from_dict),
    "ApiToken": (api_tokens, ApiToken.from_dict),
    "Pipeline": (pipelines, Pipeline.from_dict),
    "PipelineRun": (pipeline_runs, PipelineRun.from_dict),
    "StepRun": (step_runs, StepRun.from_dict),
    "TriggerFiring": (trigger_firings, TriggerFiring.from_dict),
    "MediaItem": (media_items, MediaItem.from_dict),
    "ServingMinute": (serving_minutes, ServingMinute.from_dict),
}


def _equal(a: Any, b: Any, where: str = "e") -> None:
    """Deep equality that sees what ``==`` and the wire text cannot: NaN equals NaN, -0.0 is not
    0.0, a float is not the string "NaN", arrays keep dtype and bits, tuples stay tuples."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, float):
        assert (a != a and b != b) or (a == b and math.copysign(1, a) == math.copysign(1, b)), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        if a.dtype.kind == "f":
            nan = np.isnan(a)
            assert np.array_equal(nan, np.isnan(b)), where
            bits = np.dtype(f"u{a.dtype.itemsize}")
            assert np.array_equal(a[~nan].view(bits), b[~nan].view(bits)), where
        else:
            assert np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _equal(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _equal(x, y, f"{where}[{i}]")
    elif hasattr(a, "__dataclass_fields__") or hasattr(type(a), "__slots__"):
        for f in getattr(a, "__dataclass_fields__", None) or type(a).__slots__:
            _equal(getattr(a, f), getattr(b, f), f"{where}.{f}")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_every_entity_round_trips_through_the_wire(entity: str) -> None:
    strategy, from_dict = ENTITIES[entity]

    @given(strategy)
    def round_trip(e: Any) -> None:
        text = dumps(e.to_dict())
        back = from_dict(loads(text))
        _equal(e, back)
        assert dumps(back.to_dict()) == text  # the wire form is complete and canonical

    round_trip()


def test_entities_cover_every_serialising_class() -> None:
    """A new entity with to_dict must be added to ENTITIES (the HTTP store will rebuild it)."""
    import mloop.monitoring as mon
    import mloop.registry as reg
    import mloop.store as store

    public = {
        name
        for module in (store, reg, mon)
        for name in module.__all__
        if isinstance(getattr(module, name), type)
        and callable(getattr(getattr(module, name), "to_dict", None))
        and callable(getattr(getattr(module, name), "from_dict", None))
    }
    assert public <= {e.split("[")[0] for e in ENTITIES}, public - set(ENTITIES)


# ---------------------------------------------------------------- specific wire forms


def test_non_finite_values_have_the_codecs_spelling_in_reports() -> None:
    hist = ColumnHistogram(
        np.array([-np.inf, 0.0, np.inf]), None, np.array([1, 2]), np.array([3, 4]), 0, 0
    )
    col = ColumnDrift(
        "x", "numeric", "psi", math.inf, None, 0.1, True, 3, 7, "drift", histogram=hist
    )
    d = loads(DriftReport({"x": col}, 0.5, 3, 7).to_json())
    x = d["columns"]["x"]
    assert x["statistic"] == "Infinity" and x["p_value"] is None
    assert x["histogram"]["edges"] == ["-Infinity", 0.0, "Infinity"]
    q = QualityReport([QualityCheck("x", "out_of_range", "fail", math.nan, [-math.inf, 1.0])])
    check = loads(q.to_json())["checks"][0]
    assert (check["value"], check["reference_value"]) == ("NaN", ["-Infinity", 1.0])
    p = loads(PerformanceReport("regression", 3, 0, {"mape": math.inf}).to_json())
    assert p["metrics"] == {"mape": "Infinity"}


def test_string_fields_keep_strings_that_spell_non_finite_floats() -> None:
    run = Run.from_dict(
        loads(dumps(next(iter([_run(params={"lr": "NaN"}, tags={"t": "Infinity"})]))))
    )
    assert run.params == {"lr": "NaN"} and run.tags == {"t": "Infinity"}
    spec = ParamSpec.from_dict(loads(dumps(ParamSpec("mode", "string", "NaN"))))
    assert spec.default == "NaN"
    spec = ParamSpec.from_dict(loads(dumps(ParamSpec("cut", "float64", -math.inf))))
    assert spec.default == -math.inf
    check = QualityCheck.from_dict(loads(dumps(QualityCheck("c", "type", "pass", "NaN", "NaN"))))
    assert check.value == "NaN"  # a type name, not a float


def _run(**overrides: Any) -> Run:
    base: dict[str, Any] = dict(
        id="a" * 32,
        project_id="1",
        name="r",
        status="finished",
        start_ms=1,
        end_ms=2,
        heartbeat_ms=None,
        parent_run_id=None,
        user=None,
        host=None,
        git_commit=None,
        git_dirty=None,
    )
    return Run(**{**base, **overrides})


# ---------------------------------------------------------------- reports stored before the codec


def test_drift_results_stored_with_null_infinities_still_read() -> None:
    """Before the codec, drift wrote every non-finite float as null (the end edges included)."""
    old = {
        "drifted": True,
        "status": "drift",
        "drift_share": 0.5,
        "n_reference_rows": 3,
        "n_current_rows": 7,
        "extra_columns": [],
        "columns": {
            "x": {
                "name": "x",
                "kind": "numeric",
                "method": "psi",
                "statistic": None,
                "p_value": None,
                "threshold": 0.1,
                "drifted": False,
                "n_reference": 3,
                "n_current": 7,
                "status": "error",
                "message": "NaN statistic",
                "histogram": {
                    "edges": [None, 0.5, None],
                    "categories": None,
                    "reference": [1, 2],
                    "current": [3, 4],
                    "reference_missing": 0,
                    "current_missing": 1,
                },
            }
        },
    }
    report = DriftReport.from_dict(old)
    col = report.columns["x"]
    assert col.statistic is None and col.status == "error" and report.status == "insufficient_data"
    assert col.histogram is not None and col.histogram.edges is not None
    assert col.histogram.edges.tolist() == [-math.inf, 0.5, math.inf]
    assert col.histogram.reference.dtype == np.int64


def test_quality_results_stored_with_inf_strings_still_read() -> None:
    """Before the codec, quality wrote infinity as "inf"/"-inf" and NaN as null."""
    old = {
        "passed": False,
        "n_failed": 1,
        "n_warnings": 0,
        "n_reference": 3,
        "n_current": 3,
        "checks": [
            {
                "column": "x",
                "check": "out_of_range",
                "verdict": "fail",
                "value": 0.5,
                "reference_value": ["-inf", "inf"],
                "threshold": 0.05,
                "message": "",
            }
        ],
        "reference": {"x": {"kind": "numeric", "min": "-inf", "max": "inf", "missing_share": None}},
        "current": {},
    }
    report = QualityReport.from_dict(old)
    assert report.checks[0].reference_value == [-math.inf, math.inf]
    assert report.reference["x"]["min"] == -math.inf and report.reference["x"]["max"] == math.inf
    assert report.reference["x"]["missing_share"] is None and report.n_failed == 1


def test_window_results_read_back_from_a_store(tmp_path: Any) -> None:
    """A monitor's persisted window (SQL store) rebuilds the WindowResult, NaN/inf included."""
    from mloop.monitoring import Monitor
    from mloop.store import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        rng = np.random.default_rng(0)
        ref = {"x": rng.normal(size=500), "y": rng.normal(size=500)}
        cur = {"x": rng.normal(3, 1, size=500), "y": np.full(500, np.inf)}
        mon = Monitor(ref, window_rows=500, store=store, name="m", rules=["share_drifted >= 0"])
        (live,) = mon.update(cur)
        (stored,) = store.list_monitor_results("m")
        assert '"Infinity"' in dumps(stored.result)  # histogram end edges, an all-inf column
        back = WindowResult.from_dict(stored.result)
        assert dumps(back.to_dict()) == dumps(live.to_dict())
        assert back.drift is not None and back.drift.drifted == live.drift.drifted
        assert back.quality is not None and back.quality.n_failed == live.quality.n_failed
        (alert,) = back.alerts
        assert alert.rule == "share_drifted >= 0" and alert == live.alerts[0]
    finally:
        store.close()


def test_manifests_written_before_the_codec_still_read(tmp_path: Any) -> None:
    """Manifests were written by json.dumps with its default bare ``Infinity``/``NaN`` tokens."""
    import json

    from mloop.registry._manifest import MANIFEST_NAME, read_manifest

    sig = ModelSignature(
        Schema([ColSpec("x", "float64")]),
        params=(ParamSpec("cut", "float64", math.inf), ParamSpec("mode", "string", "NaN")),
    )
    old = {**ModelManifest("sklearn", None, None, "3.11", "0.1", {}, 1).to_dict()}
    old["signature"] = {
        **sig.to_dict(),
        "params": [
            {"name": "cut", "dtype": "float64", "default": math.inf},
            {"name": "mode", "dtype": "string", "default": "NaN"},
        ],
    }
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(old))  # bare Infinity, as before
    assert "Infinity" in (tmp_path / MANIFEST_NAME).read_text()
    manifest = read_manifest(tmp_path)
    assert manifest.signature == sig
    # Written again, it is strict JSON with the codec's spelling.
    text = dumps(manifest)
    json.loads(text, parse_constant=lambda t: pytest.fail(f"bare {t}"))
    assert '"default":"Infinity"' in text and '"default":"NaN"' in text
