"""Top-level helpers: ``mloop.log_model``, ``mloop.register_model``, ``mloop.load_model``."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.codec import loads
from mloop.errors import ConflictError, InvalidInputError
from mloop.registry._pending import PendingModelVersion
from mloop.registry._registry import MANIFEST_FILE, Registry
from mloop.store import ModelVersion, validate_artifact_path, validate_model_name, validate_tags

if TYPE_CHECKING:
    from mloop.registry._package import PackagedModel
    from mloop.tracking import Run

__all__ = ["load_model", "log_model", "register_model"]

_DEFAULT_PATH = "model"


def log_model(
    model: Any,
    name: str,
    *,
    run: Run | None = None,
    artifact_path: str | None = None,
    input_example: Any = None,
    signature: Any = None,
    flavor: str | None = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    requirements: Sequence[str] | None = None,
    description: str = "",
    tags: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
) -> ModelVersion | PendingModelVersion:
    """Package ``model`` (flavor detected), log it as an artifact of ``run`` and register a version.

    Every call writes a package of its own, and a registered version's files never change: the store
    refuses any later write under its folder (:class:`~mloop.errors.ConflictError`).

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
    artifact_path : str, optional
        The run's folder for the package. By default ``model``; when the run already has files
        there (an earlier ``log_model`` call, say, to checkpoint the same model), the first free one
        of ``model-2``, ``model-3``, ... A path given explicitly must be free.
    input_example : data, optional
        A few rows; the signature (columns, dtypes, nullability) is inferred from it and the model's
        output, and ``predict`` validates inputs against it.

    Returns
    -------
    ModelVersion or PendingModelVersion
        A :class:`~mloop.registry.ModelVersion`, with a snapshot of the run's metrics and params, its
        datasets and git commit. When the store is out of reach (``MLOOP_MODE=offline``, an outage),
        the package and the registration are spooled with the run's other writes and a
        :class:`~mloop.registry.PendingModelVersion` (``.pending`` is True) says so; ``mloop sync``
        registers the version, once however often the spool is replayed.

    Raises
    ------
    ConflictError
        ``artifact_path`` was given and the run already has files there.

    Examples
    --------
    >>> with mloop.start_run(project="iris") as run:                            # doctest: +SKIP
    ...     for depth in (1, 3):  # two versions: runs:/<id>/model and runs:/<id>/model-2
    ...         mv = mloop.log_model(Tree(max_depth=depth).fit(X, y), "iris", run=run)
    """
    from mloop.registry._package import save_model
    from mloop.tracking import active_run, start_run

    requested = validate_artifact_path(artifact_path) if artifact_path is not None else None
    validate_model_name(name)
    clean_tags = _validate_version_tags(tags)
    own_run = None
    if run is None:
        run = active_run()
    # The run's settings (a pipeline step's run on a worker, say) before the environment's.
    reg = registry or Registry(settings=run.settings if run is not None else None)
    if run is None:
        own_run = run = start_run(
            project="models", name=f"log_model-{name}", settings=reg.settings, system_metrics=False
        )
    try:
        path = _package_path(run, requested)
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
            manifest = loads((pkg / MANIFEST_FILE).read_text(), what=MANIFEST_FILE)
            run.log_artifact(pkg, artifact_path=path)
        run.flush()
        return _register(reg, run, name, path, manifest, description=description, tags=clean_tags)
    finally:
        if own_run is not None:
            own_run.finish()


def _package_path(run: Run, requested: str | None) -> str:
    """``requested`` if the run has no files there, else ConflictError; by default the first free
    one of ``model``, ``model-2``, ``model-3``..."""
    if requested is not None:
        if run._has_artifacts_under(requested):
            raise ConflictError(
                f"`artifact_path` {requested!r} of run {run.id} already holds files; a model "
                "package needs a folder of its own (its files are hash-checked as a whole). Pass "
                "another artifact_path, or none to get a free one ('model', 'model-2', ...).",
                details={"run_id": run.id, "artifact_path": requested},
            )
        return requested
    path, n = _DEFAULT_PATH, 1
    while run._has_artifacts_under(path):
        n += 1
        path = f"{_DEFAULT_PATH}-{n}"
    return path


def _register(
    reg: Registry,
    run: Run,
    name: str,
    path: str,
    manifest: Mapping[str, Any],
    *,
    description: str,
    tags: dict[str, str],
) -> ModelVersion | PendingModelVersion:
    """Register now, or, when the run's writes are going to the spool, spool the registration."""
    from mloop.tracking import registration_tags

    # A spooled registration keeps the tags of its context (a pipeline step's run and step).
    tags = registration_tags(tags)
    artifact_uri = f"runs:/{run.id}/{path}"
    registered: list[ModelVersion] = []
    registration_id = uuid.uuid4().hex
    run._record(
        "register_version",
        lambda: registered.append(
            reg._create_version(
                name,
                artifact_uri=artifact_uri,
                run_id=run.id,
                manifest=manifest,
                description=description,
                tags=tags,
            )
        ),
        {
            "name": name,
            "artifact_path": path,
            "manifest_file": f"{path}/{MANIFEST_FILE}",
            "manifest": dict(manifest),
            "description": description,
            "tags": tags,
            "actor": reg.actor,
            "registration_id": registration_id,
        },
    )
    if registered:
        return registered[0]
    run.pending_packages[path] = name
    return PendingModelVersion(
        name=name,
        artifact_uri=artifact_uri,
        flavor=str(manifest.get("flavor") or "unknown"),
        source_run_id=run.id,
        registration_id=registration_id,
        description=description,
        tags=tags,
        manifest=dict(manifest),
    )


def _validate_version_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    from mloop.tracking import REGISTRATION_TAG

    clean = validate_tags(tags or {})
    if REGISTRATION_TAG in clean:
        raise InvalidInputError(
            f"tag {REGISTRATION_TAG!r} is set by mloop on versions registered from the spool; "
            f"got tags={{{REGISTRATION_TAG!r}: ...}}. Use another tag key."
        )
    return clean


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
