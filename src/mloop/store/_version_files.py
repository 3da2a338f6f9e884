"""A registered version's files never change: the rule every backend enforces on artifact writes.

A model version points at a folder of its source run (``runs:/<run_id>/<path>``) and records the hash
of the folder's manifest; loading refuses a package whose files were replaced or added to. So once a
version is registered, the Store refuses any artifact write under its folder, except re-writing a
file with exactly the content it already has (what a spool replayed twice does). Plain artifacts that
no version references may still be overwritten, as in MLflow.

The check runs in the backend-independent layer of :class:`~mloop.store.Store` (``add_artifacts``),
so every backend (SQLite, PostgreSQL, and the HTTP store to come) refuses identically. It finds the versions by their source run, which
is how the registry always records them (``artifact_uri`` and ``source_run_id`` name the same run).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from mloop.errors import ConflictError, InvalidInputError
from mloop.store._entities import ArtifactEntry
from mloop.store._validation import validate_artifact_path

if TYPE_CHECKING:
    from mloop.store._entities import Page
    from mloop.store._registry_entities import ModelVersion


class VersionFilesStore(Protocol):
    """What the check reads: the registry's versions and the artifact index (any whole Store)."""

    def search_model_versions(
        self,
        filter: str | None = ...,
        *,
        max_results: int = ...,
        page_token: str | None = ...,
        include_deleted: bool = ...,
    ) -> Page: ...

    def list_artifacts(self, run_id: str, *, prefix: str = ...) -> list[ArtifactEntry]: ...


__all__ = ["VersionFilesStore", "check_version_files", "version_artifact_path"]

_RUNS_URI = re.compile(r"^runs:/(?P<run_id>[0-9a-f]{32})(?:/(?P<path>.*))?$")


def version_artifact_path(artifact_uri: str, run_id: str) -> str | None:
    """The folder of run ``run_id`` that ``artifact_uri`` names (``runs:/<id>`` alone is ``model``)."""
    m = _RUNS_URI.match(artifact_uri)
    if m is None or m.group("run_id") != run_id:
        return None
    path = (m.group("path") or "").strip("/") or "model"
    try:
        return validate_artifact_path(path)
    except InvalidInputError:
        return None


def _versions_of_run(store: VersionFilesStore, run_id: str) -> list[tuple[str, ModelVersion]]:
    from mloop.store._common import MAX_RESULTS_LIMIT

    out: list[tuple[str, ModelVersion]] = []
    token: str | None = None
    while True:
        page = store.search_model_versions(
            f"run_id = '{run_id}'",
            max_results=MAX_RESULTS_LIMIT,
            page_token=token,
            include_deleted=True,  # a deleted version's row still points at its files
        )
        for mv in page.items:
            path = version_artifact_path(mv.artifact_uri, run_id)
            if path is not None:
                out.append((path, mv))
        token = page.next_page_token
        if token is None:
            return out


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + "/")


def check_version_files(
    store: VersionFilesStore, run_id: str, entries: Sequence[ArtifactEntry]
) -> None:
    """Raise :class:`ConflictError` if writing ``entries`` would change a registered version's files.

    Nothing is written by the caller when this raises, so a call is refused as a whole.
    """
    protected = _versions_of_run(store, run_id)
    if not protected:
        return
    stored: dict[str, dict[str, ArtifactEntry]] = {}
    for entry in entries:
        for folder, mv in protected:
            if not _under(entry.path, folder):
                continue
            if folder not in stored:
                stored[folder] = {e.path: e for e in store.list_artifacts(run_id, prefix=folder)}
            old = stored[folder].get(entry.path)
            if old is not None and (old.sha256, old.size) == (entry.sha256, entry.size):
                continue  # the same content again: nothing changes
            received = (
                f"new content (digest {entry.sha256}) for a file whose stored digest is {old.sha256}"
                if old is not None
                else f"a new file (digest {entry.sha256}) the package does not have"
            )
            raise ConflictError(
                f"cannot write artifact {entry.path!r} of run {run_id}: it is under {folder!r}, "
                f"the files of registered model version models:/{mv.name}/{mv.version}, which "
                f"cannot change after registration; got {received}. Write it under another "
                "artifact path (mloop.log_model picks a free one, e.g. 'model-2', by itself).",
                details={
                    "run_id": run_id,
                    "path": entry.path,
                    "name": mv.name,
                    "version": mv.version,
                    "artifact_uri": mv.artifact_uri,
                },
            )
