"""mloop's entities in MLflow's JSON shapes (``mlflow/protos/service.proto``, ``model_registry.proto``).

mloop's data model is a superset of MLflow's: a project is an experiment (string id, unique name),
run ids, millisecond timestamps and MLflow's key limits are the same. What differs is spelled out
here once: statuses in capitals, ``run_uuid`` beside ``run_id``, tags and params as ``{key, value}``
lists, versions as strings, and artifact locations as ``mlflow-artifacts:`` URIs this server serves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from mloop.errors import InvalidInputError
from mloop.server._mlflow._wire import wire_float
from mloop.store import DatasetVersion, ModelVersion, Project, RegisteredModel, Run

__all__ = [
    "HIDDEN_TAG_PREFIX",
    "LOGGED_MODEL_TAG",
    "MODEL_OUTPUTS_TAG",
    "dataset_from_mlflow",
    "dataset_input",
    "experiment",
    "key_values",
    "model_version",
    "pairs_from",
    "registered_model",
    "run",
    "run_artifact_uri",
    "run_info",
    "run_status",
]

# Tags this dialect keeps on mloop runs for what MLflow has and mloop's run has not; never shown to
# an MLflow client as tags.
HIDDEN_TAG_PREFIX = "mloop.mlflow."
LOGGED_MODEL_TAG = "mloop.mlflow.logged_model"  # the run is an MLflow 3 logged model
MODEL_OUTPUTS_TAG = "mloop.mlflow.model_outputs"  # JSON [{model_id, step}] of LogOutputs

_STATUS_OUT = {"running": "RUNNING", "finished": "FINISHED", "failed": "FAILED", "killed": "KILLED"}
_MloopStatus = Literal["running", "finished", "failed", "killed"]
_STATUS_IN: dict[str, _MloopStatus] = {
    "RUNNING": "running",
    "SCHEDULED": "running",
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "killed",
}


def run_status(mlflow_status: str) -> _MloopStatus:
    """An MLflow ``RunStatus`` name as mloop's status (``SCHEDULED`` is not started: running)."""
    try:
        return _STATUS_IN[mlflow_status]
    except KeyError:
        raise InvalidInputError(
            f"Invalid value {mlflow_status!r} for parameter 'status': expected one of "
            f"{sorted(_STATUS_IN)}."
        ) from None


def key_values(pairs: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in pairs.items()]


def pairs_from(items: Iterable[Mapping[str, Any]], what: str) -> dict[str, str]:
    """``[{key, value}]`` as a dict (the last of a repeated key wins, as MLflow's stores do).

    Keys under :data:`HIDDEN_TAG_PREFIX` are this dialect's own bookkeeping: refused.
    """
    out: dict[str, str] = {}
    for item in items:
        key, value = item.get("key"), item.get("value", "")
        if not isinstance(key, str) or not key:
            raise InvalidInputError(
                f"every {what} needs a non-empty string 'key'; got {item!r:.80}."
            )
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InvalidInputError(f"{what} {key!r} needs a string 'value'; got {value!r:.80}.")
        if key.startswith(HIDDEN_TAG_PREFIX):
            raise InvalidInputError(
                f"{what} keys starting with {HIDDEN_TAG_PREFIX!r} are reserved; got {key!r}."
            )
        out[key] = value
    return out


def experiment(p: Project) -> dict[str, Any]:
    return {
        "experiment_id": p.id,
        "name": p.name,
        "artifact_location": f"mlflow-artifacts:/{p.id}",
        "lifecycle_stage": p.lifecycle_stage,
        "last_update_time": p.updated_ms,
        "creation_time": p.created_ms,
        "tags": key_values(p.tags),
    }


def run_artifact_uri(project_id: str, run_id: str) -> str:
    return f"mlflow-artifacts:/{project_id}/{run_id}/artifacts"


def run_info(r: Run) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": r.id,
        "run_uuid": r.id,
        "run_name": r.name,
        "experiment_id": r.project_id,
        "user_id": r.user or "",
        "status": _STATUS_OUT[r.status],
        "start_time": r.start_ms,
        "artifact_uri": run_artifact_uri(r.project_id, r.id),
        "lifecycle_stage": r.lifecycle_stage,
    }
    if r.end_ms is not None:
        info["end_time"] = r.end_ms
    return info


def _visible_tags(r: Run) -> dict[str, str]:
    """The run's tags with the system tags MLflow's server keeps for what mloop has as columns."""
    tags = {k: v for k, v in r.tags.items() if not k.startswith(HIDDEN_TAG_PREFIX)}
    tags.setdefault("mlflow.runName", r.name)
    if r.user:
        tags.setdefault("mlflow.user", r.user)
    if r.git_commit:
        tags.setdefault("mlflow.source.git.commit", r.git_commit)
    if r.parent_run_id:
        tags.setdefault("mlflow.parentRunId", r.parent_run_id)
    return tags


def run(r: Run, inputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An MLflow ``Run``: info, data (latest metrics, params, tags), inputs and outputs."""
    outputs: list[Any] = []
    raw = r.tags.get(MODEL_OUTPUTS_TAG)
    if raw:
        try:
            outputs = [o for o in json.loads(raw) if isinstance(o, dict)]
        except ValueError:
            outputs = []
    return {
        "info": run_info(r),
        "data": {
            "metrics": [
                {"key": k, "value": wire_float(m.last), "timestamp": m.timestamp, "step": m.step}
                for k, m in r.metrics.items()
            ],
            "params": key_values(r.params),
            "tags": key_values(_visible_tags(r)),
        },
        "inputs": {"dataset_inputs": inputs or [], "model_inputs": []},
        "outputs": {"model_outputs": outputs},
    }


# ---------------------------------------------------------------------------------- datasets
_COLSPEC_TYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "string",
    "binary": "binary",
    "datetime": "datetime64[ns]",
}
_COLSPEC_BACK = {v: k for k, v in _COLSPEC_TYPES.items()}


def dataset_from_mlflow(ds: Mapping[str, Any], *, now_ms: int) -> DatasetVersion:
    """An MLflow ``Dataset`` declaration as a dataset version.

    The MLflow client sends a dataset's metadata (name, digest, source, schema, profile), never its
    rows, so the version is keyed by the sha256 of that declaration; the declaration itself is kept
    under ``profile["mlflow"]`` so it is answered back exactly as it was logged.
    """
    fields = {}
    for name in ("name", "digest", "source_type", "source", "schema", "profile"):
        value = ds.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InvalidInputError(f"dataset '{name}' must be a string; got {value!r:.80}.")
        fields[name] = value
    for required in ("name", "digest", "source_type", "source"):
        if not fields[required]:
            raise InvalidInputError(f"Missing value for required parameter 'dataset.{required}'.")
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    sha = hashlib.sha256(b"mlflow-dataset\0" + canonical.encode()).hexdigest()
    schema: dict[str, str] = {}
    try:
        spec = json.loads(fields["schema"]) if fields["schema"] else {}
        for col in spec.get("mlflow_colspec") or []:
            if isinstance(col, dict) and isinstance(col.get("name"), str):
                schema[col["name"]] = _COLSPEC_TYPES.get(str(col.get("type")), str(col.get("type")))
    except (ValueError, AttributeError):
        schema = {}
    num_rows = 0
    try:
        profile = json.loads(fields["profile"]) if fields["profile"] else {}
        if isinstance(profile, dict) and isinstance(profile.get("num_rows"), int):
            num_rows = int(profile["num_rows"])
    except ValueError:
        pass
    source_uri = None
    try:
        src = json.loads(fields["source"])
        if isinstance(src, dict) and isinstance(src.get("uri"), str):
            source_uri = src["uri"]
    except ValueError:
        pass
    return DatasetVersion(
        sha256=sha,
        name=fields["name"],
        schema=schema,
        num_rows=num_rows,
        source_uri=source_uri,
        storage_uri="",  # the rows stay where the client has them
        created_ms=now_ms,
        profile={"mlflow": fields},
    )


def dataset_input(ds: DatasetVersion, context: str) -> dict[str, Any]:
    """A run input as MLflow's ``DatasetInput`` (mloop's own datasets described in its terms)."""
    declared = (ds.profile or {}).get("mlflow")
    if isinstance(declared, Mapping):
        dataset = {k: str(declared.get(k, "")) for k in ("name", "digest", "source_type", "source")}
        for k in ("schema", "profile"):
            if declared.get(k):
                dataset[k] = str(declared[k])
    else:
        dataset = {
            "name": ds.name,
            "digest": ds.sha256[:8],
            "source_type": "mloop",
            "source": json.dumps({"uri": ds.source_uri or ds.storage_uri}),
            "schema": json.dumps(
                {
                    "mlflow_colspec": [
                        {"type": _COLSPEC_BACK.get(t, "string"), "name": c}
                        for c, t in ds.schema.items()
                    ]
                }
            ),
            "profile": json.dumps({"num_rows": ds.num_rows}),
        }
    return {"tags": [{"key": "mlflow.data.context", "value": context}], "dataset": dataset}


# ---------------------------------------------------------------------------------- registry
def registered_model(m: RegisteredModel, latest: dict[str, Any] | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": m.name,
        "creation_timestamp": m.created_ms,
        "last_updated_timestamp": m.updated_ms,
        "description": m.description,
        "tags": key_values(m.tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(m.aliases.items())],
    }
    if m.created_by:
        doc["user_id"] = m.created_by
    if latest is not None:
        doc["latest_versions"] = [latest]
    return doc


def model_version(v: ModelVersion) -> dict[str, Any]:
    """A version as MLflow's ``ModelVersion``; ``source`` is what the MLflow client registered
    (kept in the version's manifest), else the version's own ``runs:/`` URI."""
    declared = v.manifest.get("mlflow") if isinstance(v.manifest, Mapping) else None
    declared = declared if isinstance(declared, Mapping) else {}
    doc: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": v.created_ms,
        "last_updated_timestamp": v.updated_ms,
        "current_stage": "None",
        "description": v.description,
        "source": str(declared.get("source") or v.artifact_uri),
        "status": "READY",
        "tags": key_values(v.tags),
        "aliases": list(v.aliases),
    }
    if v.created_by:
        doc["user_id"] = v.created_by
    run_id = declared.get("run_id") or v.source_run_id
    if run_id:
        doc["run_id"] = str(run_id)
    if declared.get("model_id"):
        doc["model_id"] = str(declared["model_id"])
    return doc
