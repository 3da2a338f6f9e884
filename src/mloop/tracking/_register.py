"""Registering a model version from its run's current state: done now, or replayed from the spool.

``mloop.log_model`` registers through :func:`create_version_from_run`. When the store is out of reach
(``MLOOP_MODE=offline``, an outage) it spools a ``register_version`` record instead, in order after
the run's creation, metrics and artifacts; :func:`replay_registration` applies it at ``mloop sync``.
The record carries a registration id that becomes the version's tag :data:`REGISTRATION_TAG`, so a
spool replayed twice registers one version, not two.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from typing import Any

from mloop.errors import NotFoundError
from mloop.store import ModelVersion, Store

__all__ = [
    "REGISTRATION_TAG",
    "create_version_from_run",
    "registration_context",
    "registration_tags",
    "replay_registration",
]

REGISTRATION_TAG = "mloop.registration_id"

# Tags every version registered in this context carries, and where their URIs are reported.
_context: contextvars.ContextVar[tuple[dict[str, str], list[str]] | None] = contextvars.ContextVar(
    "registration_context", default=None
)


@contextlib.contextmanager
def registration_context(tags: Mapping[str, str]) -> Iterator[list[str]]:
    """Inside the block, each version registered here carries ``tags`` (a caller's own tags win)
    and its ``models:/<name>/<version>`` URI is appended to the list the block receives.

    A pipeline step runs inside one, so the version it registers names its pipeline run and step,
    and the step run lists the versions it registered.
    """
    outer = _context.get()
    merged = {**(outer[0] if outer else {}), **{str(k): str(v) for k, v in tags.items()}}
    sink: list[str] = []
    token = _context.set((merged, sink))
    try:
        yield sink
    finally:
        _context.reset(token)
        if outer is not None:
            outer[1].extend(sink)


def registration_tags(tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """``tags`` under the tags of the enclosing :func:`registration_context` (empty outside)."""
    ctx = _context.get()
    return {**(ctx[0] if ctx else {}), **(tags or {})}


def create_version_from_run(
    store: Store,
    name: str,
    *,
    run_id: str,
    artifact_path: str,
    manifest_file: str,
    manifest: Mapping[str, Any],
    description: str = "",
    tags: Mapping[str, Any] | None = None,
    actor: str | None = None,
) -> ModelVersion:
    """Register ``runs:/<run_id>/<artifact_path>`` with a snapshot of the run (metrics, params,
    datasets, git commit) and the hash of the package's manifest file ``manifest_file``."""
    run = store.get_run(run_id)
    datasets = []
    for i in run.inputs:
        try:
            ds = store.get_dataset(i.dataset_sha256)
            datasets.append(
                {
                    "sha256": ds.sha256,
                    "name": i.name,
                    "context": i.context,
                    "num_rows": ds.num_rows,
                    "schema": dict(ds.schema),
                }
            )
        except NotFoundError:
            datasets.append({"sha256": i.dataset_sha256, "name": i.name, "context": i.context})
    metrics = {k: m.last for k, m in run.metrics.items() if not k.startswith("system/")}
    # The manifest is not in its own hash list: record its hash here, so an edited manifest is refused.
    entry = store.get_artifact(run_id, manifest_file)
    manifest = {**manifest, "manifest_sha256": entry.sha256}
    ctx = _context.get()
    mv = store.create_model_version(
        name,
        artifact_uri=f"runs:/{run_id}/{artifact_path}",
        flavor=str(manifest.get("flavor") or "unknown"),
        source_run_id=run_id,
        signature=manifest.get("signature"),
        manifest=manifest,
        metrics=metrics,
        params=run.params,
        datasets=datasets,
        git_commit=run.git_commit,
        description=description,
        tags=registration_tags(tags),
        actor=actor,
    )
    if ctx is not None:
        ctx[1].append(mv.uri)
    return mv


def _registered(store: Store, run_id: str, registration_id: str) -> ModelVersion | None:
    token: str | None = None
    while True:
        page = store.search_model_versions(
            f"run_id = '{run_id}'", page_token=token, include_deleted=True
        )
        for mv in page.items:
            if mv.tags.get(REGISTRATION_TAG) == registration_id:
                return mv
        token = page.next_page_token
        if token is None:
            return None


def replay_registration(store: Store, rec: Mapping[str, Any]) -> bool:
    """Apply a spooled ``register_version`` record; False if that registration is already there."""
    run_id = rec["run_id"]
    key = rec["registration_id"]
    if _registered(store, run_id, key) is not None:
        return False
    create_version_from_run(
        store,
        rec["name"],
        run_id=run_id,
        artifact_path=rec["artifact_path"],
        manifest_file=rec["manifest_file"],
        manifest=rec["manifest"],
        description=rec.get("description") or "",
        tags={**(rec.get("tags") or {}), REGISTRATION_TAG: key},
        actor=rec.get("actor"),
    )
    return True
