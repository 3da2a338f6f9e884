"""Lineage (version -> run -> datasets -> code) and side-by-side diffs of two versions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mloop.codec import WireEntity
from mloop.errors import NotFoundError
from mloop.store import ModelVersion, Run, Store

__all__ = ["Lineage", "VersionDiff", "build_lineage", "diff_versions"]


@dataclass(frozen=True)
class Lineage(WireEntity):
    """Where a version came from. ``run`` is None when the source run was deleted or never existed.
    ``pipeline`` names the pipeline run and step that registered the version (``{"pipeline",
    "run_id", "step"}``), None when it was registered outside a pipeline.

    ``to_dict()``/``from_dict()`` go through :mod:`mloop.codec`."""

    model: str
    version: int
    artifact_uri: str
    flavor: str
    run: Mapping[str, Any] | None
    datasets: tuple[Mapping[str, Any], ...]
    git: Mapping[str, Any]
    config: Mapping[str, str]
    created_by: str | None
    created_ms: int
    pipeline: Mapping[str, str] | None = None


#: Version tags a pipeline step's registration carries (see ``mloop.pipelines``).
PIPELINE_TAGS = {"pipeline": "mloop.pipeline", "run_id": "mloop.pipeline_run",
                 "step": "mloop.pipeline_step"}  # fmt: skip


def build_lineage(store: Store, mv: ModelVersion) -> Lineage:
    run_info: dict[str, Any] | None = None
    git: dict[str, Any] = {"commit": mv.git_commit}
    if mv.source_run_id is not None:
        try:
            run: Run = store.get_run(mv.source_run_id)
            project = store.get_project(run.project_id)
            run_info = {
                "run_id": run.id,
                "name": run.name,
                "project": project.name,
                "status": run.status,
                "start_ms": run.start_ms,
                "user": run.user,
                "host": run.host,
            }
            git = {
                "commit": run.git_commit,
                "dirty": run.git_dirty,
                "branch": run.context.get("git_branch"),
                "remote": run.context.get("git_remote_url"),
            }
        except NotFoundError:
            run_info = None
    return Lineage(
        model=mv.name,
        version=mv.version,
        artifact_uri=mv.artifact_uri,
        flavor=mv.flavor,
        run=run_info,
        datasets=tuple(mv.datasets),
        git=git,
        config=dict(mv.params),
        created_by=mv.created_by,
        created_ms=mv.created_ms,
        pipeline=(
            {k: mv.tags[tag] for k, tag in PIPELINE_TAGS.items() if tag in mv.tags}
            if PIPELINE_TAGS["run_id"] in mv.tags
            else None
        ),
    )


@dataclass(frozen=True)
class VersionDiff(WireEntity):
    """Two versions side by side. Each mapping holds ``key -> (a, b)`` for keys that differ (or all,
    in ``*_all``); metrics add the delta ``b - a``. ``to_dict()`` writes pairs as two-item lists;
    ``from_dict()`` reads them back as tuples."""

    model: str
    a: int
    b: int
    params: Mapping[str, tuple[str | None, str | None]]
    metrics: Mapping[str, tuple[float | None, float | None, float | None]]
    datasets: Mapping[str, tuple[str | None, str | None]]
    signature_equal: bool
    signature: tuple[Any, Any]
    flavor: tuple[str, str]
    git_commit: tuple[str | None, str | None]
    params_all: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not (self.params or self.metrics or self.datasets) and self.signature_equal


def _num(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def diff_versions(a: ModelVersion, b: ModelVersion) -> VersionDiff:
    params_all = {k: (a.params.get(k), b.params.get(k)) for k in sorted({*a.params, *b.params})}
    metrics: dict[str, tuple[float | None, float | None, float | None]] = {}
    for k in sorted({*a.metrics, *b.metrics}):
        va, vb = _num(a.metrics.get(k)), _num(b.metrics.get(k))
        if va != vb:
            metrics[k] = (va, vb, None if va is None or vb is None else vb - va)
    da = {str(d.get("name")): str(d.get("sha256")) for d in a.datasets}
    db = {str(d.get("name")): str(d.get("sha256")) for d in b.datasets}
    datasets = {k: (da.get(k), db.get(k)) for k in sorted({*da, *db}) if da.get(k) != db.get(k)}
    return VersionDiff(
        model=a.name,
        a=a.version,
        b=b.version,
        params={k: v for k, v in params_all.items() if v[0] != v[1]},
        metrics=metrics,
        datasets=datasets,
        signature_equal=(a.signature or None) == (b.signature or None),
        signature=(a.signature, b.signature),
        flavor=(a.flavor, b.flavor),
        git_commit=(a.git_commit, b.git_commit),
        params_all=params_all,
    )
