"""The public API is what each package's ``__all__`` lists (httpx's test_exported_members)."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "mloop": {
        "AlreadyExistsError",
        "Client",
        "ConflictError",
        "InvalidInputError",
        "MloopError",
        "NotFoundError",
        "Registry",
        "Run",
        "StoreUnavailableError",
        "__version__",
        "active_run",
        "finish",
        "init",
        "load_model",
        "log",
        "log_labels",
        "log_model",
        "register_model",
        "start_run",
    },
    "mloop.inference": {
        "InferenceLogger",
        "iter_inference_chunks",
        "log_labels",
        "read_inference_chunk",
        "read_inference_log",
    },
    "mloop.serving": {
        "BatchPredictionStats",
        "DeploymentStatus",
        "Deployments",
        "ResolvedModel",
        "ServeOptions",
        "ServeSpec",
        "Traffic",
        "create_app",
        "parse_canary",
        "predict_file",
        "resolve_target",
        "serve",
    },
    "mloop.registry": {
        "MANIFEST_FILE",
        "Lineage",
        "ModelAlias",
        "ModelRef",
        "ModelSignature",
        "ModelVersion",
        "PendingModelVersion",
        "RegisteredModel",
        "Registry",
        "RegistryEvent",
        "RunArtifactRef",
        "VersionDiff",
        "Webhook",
        "WebhookDelivery",
        "WebhookDispatcher",
        "load_model",
        "log_model",
        "parse_model_uri",
        "register_model",
        "validate_input",
        "verify_signature",
    },
    "mloop.tracking": {
        "Client",
        "ReplayResult",
        "Run",
        "active_run",
        "count_quarantined",
        "finish",
        "init",
        "log",
        "quarantine_dir",
        "replay_spool",
        "retry_quarantined",
        "start_run",
        "REGISTRATION_TAG",
        "create_version_from_run",
    },
    "mloop.tables": {
        "ACCEPTED",
        "BATCH_ROWS",
        "Mixed",
        "TableInput",
        "TableKind",
        "arrow_buffer",
        "check_columns",
        "column_names",
        "is_mixed",
        "is_table",
        "iter_batches",
        "read_parquet_bytes",
        "read_table",
        "reads_in_batches",
        "table_kind",
        "unknown_columns_error",
        "value_label",
    },
    "mloop.store": {
        "EVENT_TYPES",
        "MAX_RESULTS_LIMIT",
        "RUN_STATUSES",
        "ArtifactEntry",
        "BackendFactory",
        "Comparison",
        "Event",
        "EventCursor",
        "EventListener",
        "Follower",
        "InferenceChunk",
        "InferenceLabel",
        "PollingListener",
        "create_store",
        "register_backend",
        "registered_schemes",
        "DatasetVersion",
        "Deployment",
        "DeploymentRevision",
        "MetricHistory",
        "MetricSeries",
        "MetricSummary",
        "OrderKey",
        "Page",
        "Project",
        "Run",
        "RunInput",
        "SqlStore",
        "Store",
        "downsample_minmax",
        "open_store",
        "store_exists",
        "parse_filter",
        "parse_order_by",
        "ModelAlias",
        "ModelVersion",
        "NewRun",
        "RegisteredModel",
        "RegistryEvent",
        "RunFields",
        "UNSET",
        "Webhook",
        "WebhookDelivery",
        "describe_uri",
        "is_sha256",
        "storable_text",
        "upgrade_store",
        "validate_alias",
        "validate_artifact_path",
        "validate_deployment_name",
        "validate_key",
        "validate_metric_value",
        "validate_model_name",
        "validate_model_uri",
        "validate_name",
        "validate_params",
        "validate_request_id",
        "validate_run_id",
        "validate_sha256",
        "validate_tags",
        "validate_text",
    },
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_exported_members(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == EXPECTED[module]
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is listed in __all__ but missing"


def test_import_has_no_side_effects(tmp_path, monkeypatch) -> None:
    """Importing mloop connects to nothing, creates no files and starts no thread."""
    import subprocess
    import sys

    code = "import threading, mloop, mloop.cli; assert threading.active_count() == 1, threading.enumerate()"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []
