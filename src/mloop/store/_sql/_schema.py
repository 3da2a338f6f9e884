"""Tables (SQLAlchemy Core). The Alembic migrations in ``migrations/versions`` create exactly these;
``tests/store/test_migrations.py`` checks the two never drift apart."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(500), nullable=False, unique=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False, server_default="active"),
)

project_tags = sa.Table(
    "project_tags",
    metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("start_ms", sa.BigInteger, nullable=False),
    sa.Column("end_ms", sa.BigInteger, nullable=True),
    sa.Column("heartbeat_ms", sa.BigInteger, nullable=True),
    sa.Column("parent_run_id", sa.String(32), nullable=True),
    sa.Column("user", sa.String(255), nullable=True),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("git_commit", sa.String(64), nullable=True),
    sa.Column("git_dirty", sa.Boolean, nullable=True),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False, server_default="active"),
    sa.Column("context", sa.Text, nullable=True),
    sa.Index("ix_runs_project_start", "project_id", "start_ms"),
    sa.Index("ix_runs_parent", "parent_run_id"),
)

params = sa.Table(
    "params",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Per-(run, key) summary, maintained on every write: what search filters and orders on.
# NaN is stored as value NULL + is_nan true (SQLite cannot store NaN), identically on every backend.
metric_summary = sa.Table(
    "metric_summary",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("is_nan", sa.Boolean, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("min_value", sa.Double, nullable=True),
    sa.Column("max_value", sa.Double, nullable=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

# Metric history in chunks: one row holds many points of one (run, key) as packed little-endian
# int64 steps | int64 timestamps | float64 values. Row-per-point is what makes MLflow slow at scale.
metric_chunks = sa.Table(
    "metric_chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("step_min", sa.BigInteger, nullable=False),
    sa.Column("step_max", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Index("ix_metric_chunks_run_key", "run_id", "key", "id"),
)

# Applied batch ids, so replaying a spooled batch is idempotent.
batches = sa.Table(
    "batches",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("applied_ms", sa.BigInteger, nullable=False),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("path", sa.String(1000), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    # The blob's digest (mloop._digest): 'blake3-' + 64 hex, or 64 hex for a sha256 (mloop 0.1).
    sa.Column("sha256", sa.String(71), nullable=False),
    sa.Index("ix_artifacts_sha256", "sha256"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("schema", sa.Text, nullable=False),
    sa.Column("num_rows", sa.BigInteger, nullable=False),
    sa.Column("source_uri", sa.Text, nullable=True),
    sa.Column("storage_uri", sa.Text, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("profile", sa.Text, nullable=True),
)

run_inputs = sa.Table(
    "run_inputs",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("dataset_sha256", sa.String(64), sa.ForeignKey("datasets.sha256"), primary_key=True),
    sa.Column("name", sa.String(500), primary_key=True),
    sa.Column("context", sa.String(100), nullable=False),
)


# ------------------------------------------------------------------------------------------ registry
registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=True),
)

registered_model_tags = sa.Table(
    "registered_model_tags",
    metadata,
    sa.Column("name", sa.String(256), sa.ForeignKey("registered_models.name"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("name", sa.String(256), sa.ForeignKey("registered_models.name"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("artifact_uri", sa.Text, nullable=False),
    sa.Column("flavor", sa.String(50), nullable=False),
    sa.Column("source_run_id", sa.String(32), nullable=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("signature", sa.Text, nullable=True),
    sa.Column("manifest", sa.Text, nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("datasets", sa.Text, nullable=False),
    sa.Column("git_commit", sa.String(64), nullable=True),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_model_versions_run", "source_run_id"),
)

# Snapshot of the source run's metrics at registration, one row per key: searchable like run metrics.
model_version_metrics = sa.Table(
    "model_version_metrics",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Double, nullable=True),
    sa.ForeignKeyConstraint(["name", "version"], ["model_versions.name", "model_versions.version"]),
)

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.ForeignKeyConstraint(["name", "version"], ["model_versions.name", "model_versions.version"]),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("name", sa.String(256), sa.ForeignKey("registered_models.name"), primary_key=True),
    sa.Column("alias", sa.String(255), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_by", sa.String(255), nullable=True),
)

# The ordered event log: the audit trail, and the feed serving and CI follow from a cursor (id).
registry_events = sa.Table(
    "registry_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts_ms", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("alias", sa.String(255), nullable=True),
    sa.Column("actor", sa.String(255), nullable=True),
    sa.Column("before", sa.Text, nullable=True),
    sa.Column("after", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("report_id", sa.String(64), nullable=True),
    sa.Index("ix_registry_events_model_alias", "model", "alias", "id"),
)

# Check reports (CI gates): the whole report in the wire codec's JSON (``body``), with the columns
# lists filter on. ``event_id`` is the id of the ``report_attached`` event written with the report:
# the order of writing, which breaks ties between reports of the same millisecond.
check_reports = sa.Table(
    "check_reports",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("policy_hash", sa.String(64), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(255), nullable=True),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.ForeignKeyConstraint(
        ["model", "version"], ["model_versions.name", "model_versions.version"]
    ),
    sa.Index("ix_check_reports_model_version", "model", "version", "created_ms"),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("events", sa.Text, nullable=False),
    sa.Column("model", sa.String(256), nullable=True),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("webhook_id", sa.Integer, sa.ForeignKey("webhooks.id"), nullable=False),
    sa.Column("event_id", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("ts_ms", sa.BigInteger, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Index("ix_webhook_deliveries_hook", "webhook_id", "id"),
)


# ------------------------------------------------------------------------------------------ monitoring
monitor_results = sa.Table(
    "monitor_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("monitor", sa.String(500), nullable=False),
    sa.Column("window_index", sa.Integer, nullable=False),
    sa.Column("window_start", sa.String(64), nullable=True),
    sa.Column("window_end", sa.String(64), nullable=True),
    sa.Column("n_rows", sa.BigInteger, nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_monitor_results_monitor", "monitor", "id"),
)

monitor_alerts = sa.Table(
    "monitor_alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("result_id", sa.Integer, sa.ForeignKey("monitor_results.id"), nullable=False),
    sa.Column("monitor", sa.String(500), nullable=False),
    sa.Column("window_index", sa.Integer, nullable=False),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Index("ix_monitor_alerts_monitor", "monitor", "id"),
)


# ------------------------------------------------------------------------------------------ event log
# One ordered stream of everything that happens. ``id`` is assigned in commit order (writers take
# an advisory lock on PostgreSQL; SQLite has one writer), and AUTOINCREMENT keeps SQLite from
# reusing the id of a deleted newest row: a cursor is one integer.
events = sa.Table(
    "events",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("ts_ms", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(600), nullable=False),
    sa.Column("actor", sa.String(255), nullable=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Index("ix_events_type", "type", "id"),
    sa.Index("ix_events_subject", "subject", "id"),
    sqlite_autoincrement=True,
)

# Followers' durable positions: every event with ``id <= position`` has been handled.
event_cursors = sa.Table(
    "event_cursors",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)


# ------------------------------------------------------------------------------------------ serving
# A deployment's current spec; every change is also a row of ``deployment_revisions`` (its history,
# which a rollback restores from) and an event of the log.
deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("model", sa.String(600), nullable=False),
    sa.Column("canary", sa.String(600), nullable=True),
    sa.Column("canary_percent", sa.Double, nullable=False),
    sa.Column("shadow", sa.String(600), nullable=True),
    sa.Column("sticky_key", sa.String(255), nullable=True),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=True),
    sa.Column("updated_by", sa.String(255), nullable=True),
)

deployment_revisions = sa.Table(
    "deployment_revisions",
    metadata,
    sa.Column("name", sa.String(128), sa.ForeignKey("deployments.name"), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("actor", sa.String(255), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

# The inference log's index: one row per Parquet chunk in the artifact store. ``id`` is a reader's
# cursor (assigned in commit order per deployment; never reused, hence AUTOINCREMENT on SQLite).
inference_chunks = sa.Table(
    "inference_chunks",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("deployment", sa.String(500), nullable=False),
    sa.Column("sha256", sa.String(71), nullable=False),  # the blob's digest
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("n_rows", sa.BigInteger, nullable=False),
    sa.Column("first_ts_ms", sa.BigInteger, nullable=False),
    sa.Column("last_ts_ms", sa.BigInteger, nullable=False),
    sa.Column("model_versions", sa.Text, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("deployment", "sha256"),
    sa.Index("ix_inference_chunks_deployment", "deployment", "id"),
    sqlite_autoincrement=True,
)

# Delayed labels, one per (deployment, request id): a new label replaces the row (and its id).
inference_labels = sa.Table(
    "inference_labels",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("deployment", sa.String(500), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("ts_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("deployment", "request_id"),
    sa.Index("ix_inference_labels_deployment", "deployment", "id"),
    sqlite_autoincrement=True,
)


# ------------------------------------------------------------------------------------------ team server
# API tokens (``mloop token``): the SHA-256 of each secret, never the secret (see ``_tokens_base``).
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("role", sa.String(10), nullable=False),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=True),
    sa.Column("last_used_ms", sa.BigInteger, nullable=True),
    sa.Column("revoked_ms", sa.BigInteger, nullable=True),
    sa.Column("created_by", sa.String(255), nullable=True),
    sa.Column("rate_limit", sa.Double, nullable=True),
)


# ------------------------------------------------------------------------------------------ pipelines
# A pipeline (name, code ref) ─< pipeline run (trigger, status) ─< step run (written once, when done).
pipelines = sa.Table(
    "pipelines",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("code_ref", sa.String(1000), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("pipeline", sa.String(200), sa.ForeignKey("pipelines.name"), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("trigger", sa.String(20), nullable=False),
    sa.Column("code_ref", sa.String(1000), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("start_ms", sa.BigInteger, nullable=False),
    sa.Column("end_ms", sa.BigInteger, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("resumed_from", sa.String(32), nullable=True),
    sa.Column("tracking_run_id", sa.String(32), nullable=True),
    sa.Column("actor", sa.String(255), nullable=True),
    # The pipeline_run_started event's id: orders runs started in the same millisecond.
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Index("ix_pipeline_runs_pipeline_start", "pipeline", "start_ms"),
)

step_runs = sa.Table(
    "step_runs",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("pipeline_runs.id"), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("step", sa.String(1000), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("cache_key", sa.String(64), nullable=True),
    sa.Column("cache_hit", sa.Boolean, nullable=False),
    sa.Column("end_ms", sa.BigInteger, nullable=False),
    # The step_finished event's id: the order of writing.
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_step_runs_cache_key", "cache_key"),
)


# ------------------------------------------------------------------------------------ trigger firings
# One row per firing, unique by its idempotency key; held by one agent at a time through a lease.
trigger_firings = sa.Table(
    "trigger_firings",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("trigger", sa.String(200), nullable=False),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("lease_until_ms", sa.BigInteger, nullable=False),
    sa.Column("resumed_from", sa.String(32), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("actor", sa.String(255), nullable=True),
    # The trigger_fired event's id: the order of firing.
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Index("ix_trigger_firings_trigger", "trigger", "event_id"),
    sa.Index("ix_trigger_firings_status", "status"),
)


# ------------------------------------------------------------------------------------ media index
# A run's images, figures, tables and histograms: one row per (run, key, step), pointing at the
# run's artifact that holds the bytes; ``meta`` is small JSON (sizes, a histogram's counts).
media = sa.Table(
    "media",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("step", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("path", sa.String(1000), nullable=False),
    sa.Column("meta", sa.Text, nullable=False),
    sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
)


# -------------------------------------------------------------------------------- serving minutes
# Per deployment, serving replica and wall-clock minute: requests, error answers, latency sum, max
# and histogram (JSON counts over ``LATENCY_BOUNDS_MS``); a replica rewrites its minute's row.
serving_minutes = sa.Table(
    "serving_minutes",
    metadata,
    sa.Column("deployment", sa.String(128), primary_key=True),
    sa.Column("minute_ms", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("replica", sa.String(128), primary_key=True),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("errors", sa.BigInteger, nullable=False),
    sa.Column("latency_sum_ms", sa.Float, nullable=False),
    sa.Column("latency_max_ms", sa.Float, nullable=False),
    sa.Column("latency_counts", sa.Text, nullable=False),
)
