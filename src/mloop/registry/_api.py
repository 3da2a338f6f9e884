"""Top-level helpers: ``mloop.log_model``, ``mloop.register_model``, ``mloop.load_model``."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInputError
from mloop.registry._registry import MANIFEST_FILE, Registry
from mloop.store._registry_entities import ModelVersion
from mloop.store._validation import validate_artifact_path

if TYPE_CHECKING:
    from mloop.registry._package import PackagedModel
    from mloop.tracking import Run

__all__ = ["load_model", "log_model", "register_model"]


def log_model(
    model: Any,
    name: str,
    *,
    run: Run | None = None,
    artifact_path: str = "model",
    input_example: Any = None,
    signature: Any = None,
    flavor: str | None = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    requirements: Sequence[str] | None = None,
    description: str = "",
    tags: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
) -> ModelVersion:
    """Package ``model`` (flavor detected), log it as an artifact of ``run`` and register a version.

    Parameters
    ----------
    model : object
        A scikit-learn estimator or Pipeline, an XGBoost/LightGBM model, a PyTorch module, or any
        object with ``predict``.
    name : str
        Registered model name (created on first use).
    run : Run, optional
        Default: the active run; without one, a run named ``log_model-<name>`` is started and
        finished in project ``models``.
    input_example : data, optional
        A few rows; the signature (columns, dtypes, nullability) is inferred from it and the model's
        output, and ``predict`` validates inputs against it.

    Returns
    -------
    ModelVersion
        With a snapshot of the run's metrics and params, its datasets and git commit.
    """
    from mloop.registry._package import save_model
    from mloop.tracking import active_run, start_run

    path = validate_artifact_path(artifact_path)
    reg = registry or Registry(settings=run.settings if run is not None else None)
    own_run = None
    if run is None:
        run = active_run()
    if run is None:
        own_run = run = start_run(
            project="models", name=f"log_model-{name}", settings=reg.settings, system_metrics=False
        )
    try:
        with tempfile.TemporaryDirectory(prefix="mloop-model-") as tmp:
            pkg = Path(tmp) / "model"
            save_model(
                model,
                pkg,
                flavor=flavor,
                input_example=input_example,
                signature=signature,
                code_paths=code_paths,
                requirements=requirements,
            )
            manifest = json.loads((pkg / MANIFEST_FILE).read_text())
            run.log_artifact(pkg, artifact_path=path)
        run.flush()
        return reg._create_version(
            name,
            artifact_uri=f"runs:/{run.id}/{path}",
            run_id=run.id,
            manifest=manifest,
            description=description,
            tags=tags,
        )
    finally:
        if own_run is not None:
            own_run.finish()


def register_model(
    source: str, name: str, *, description: str = "", tags: Mapping[str, Any] | None = None
) -> ModelVersion:
    """Register a model package already logged in a run: ``register_model("runs:/<id>/model", "churn")``."""
    if not isinstance(source, str):
        raise InvalidInputError(
            f"`source` must be a runs:/ URI string; got {type(source).__name__}."
        )
    return Registry().register(source, name, description=description, tags=tags)


def load_model(uri: str, *, strict: bool = False) -> PackagedModel:
    """Load ``models:/churn@champion``, ``models:/churn/3``, ``models:/churn/latest`` or ``runs:/<id>/model``."""
    return Registry().load(uri, strict=strict)
