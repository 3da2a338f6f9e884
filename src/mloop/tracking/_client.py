"""``Client``: reads (and a few admin writes) over the same store resolution as runs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.store import (
    ArtifactEntry,
    DatasetVersion,
    MetricHistory,
    Page,
    Project,
    Run,
    Store,
    open_store,
)

if TYPE_CHECKING:
    import pandas as pd

    from mloop.artifacts import BlobStore

__all__ = ["Client"]


class Client:
    """Read runs, metrics, artifacts and datasets.

    Parameters
    ----------
    settings : Settings, optional
        Default: resolved from the environment (``MLOOP_HOME``, ``MLOOP_STORE_URI``, ...).
    store : Store, optional
        Use this store instead of opening the one the settings name.
    """

    def __init__(self, *, settings: Settings | None = None, store: Store | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self._store = store
        self._blobstore: BlobStore | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    @property
    def blobstore(self) -> BlobStore:
        if self._blobstore is None:
            from mloop.artifacts import BlobStore

            self._blobstore = BlobStore(self.settings.artifact_uri, token=self.settings.token)
        return self._blobstore

    # ------------------------------------------------------------------ projects
    def list_projects(self) -> list[Project]:
        return self.store.list_projects()

    def get_project(self, project: str) -> Project:
        """A project by name, or by id when no project has that name."""
        found = self.store.get_project_by_name(project)
        if found is not None:
            return found
        if project.isdigit():
            return self.store.get_project(project)
        raise NotFoundError(f"project {project!r} does not exist.")

    def _project_ids(self, projects: str | Sequence[str]) -> list[str]:
        names = [projects] if isinstance(projects, str) else list(projects)
        return [self.get_project(p).id for p in names]

    # ------------------------------------------------------------------ runs
    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def search_runs(
        self,
        projects: str | Sequence[str],
        filter: str | None = None,
        *,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page:
        """Runs of ``projects`` (names or ids) matching ``filter`` in MLflow's grammar.

        Examples
        --------
        ``client.search_runs("churn", "metrics.acc > 0.9 and params.max_depth = '8'",
        order_by=["metrics.acc DESC"], max_results=100)``
        """
        return self.store.search_runs(
            self._project_ids(projects),
            filter=filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            include_deleted=include_deleted,
        )

    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> MetricHistory:
        """numpy columns ``step``/``timestamp``/``value`` ordered by step; ``max_points`` downsamples,
        keeping each bucket's minimum and maximum so spikes stay visible."""
        return self.store.get_metric_history(run_id, key, max_points=max_points)

    def runs_frame(
        self,
        projects: str | Sequence[str],
        filter: str | None = None,
        *,
        order_by: Sequence[str] | None = None,
        max_results: int = 50_000,
    ) -> pd.DataFrame:
        """One row per run: id, name, status, times, ``params.*`` and ``metrics.*`` (last values)."""
        import pandas as pd

        rows: list[dict[str, Any]] = []
        page = self.search_runs(projects, filter, order_by=order_by, max_results=max_results)
        for r in page.items:
            row: dict[str, Any] = {
                "run_id": r.id,
                "name": r.name,
                "status": r.status,
                "start_time": pd.to_datetime(r.start_ms, unit="ms"),
                "duration_s": (r.end_ms - r.start_ms) / 1000 if r.end_ms else None,
            }
            row.update({f"params.{k}": v for k, v in r.params.items()})
            row.update({f"metrics.{k}": m.last for k, m in r.metrics.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def set_terminated(self, run_id: str, status: str = "finished") -> Run:
        return self.store.update_run(run_id, status=status)  # type: ignore[arg-type]

    def delete_run(self, run_id: str) -> None:
        self.store.delete_run(run_id)

    # ------------------------------------------------------------------ artifacts & datasets
    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactEntry]:
        return self.store.list_artifacts(run_id, prefix=path)

    def download_artifacts(
        self, run_id: str, path: str = "", *, dest: str | os.PathLike[str]
    ) -> Path:
        """Download one artifact file or folder of a run into ``dest``; hashes are verified.

        Returns the local path of the file, or of the folder holding the downloaded tree.
        """
        from mloop.artifacts import download_tree

        entries = self.store.list_artifacts(run_id, prefix=path)
        if not entries:
            raise NotFoundError(
                f"run {run_id} has no artifact {path!r}."
                if path
                else f"run {run_id} has no artifacts."
            )
        dest = Path(dest)
        download_tree(self.blobstore, entries, dest)
        return dest / path if path else dest

    def open_artifact(self, run_id: str, path: str) -> Any:
        """A streaming binary file object for one artifact file (hash not verified while streaming)."""
        entry = self.store.get_artifact(run_id, path)
        return self.blobstore.open(entry.sha256)

    def get_dataset(self, sha256: str) -> DatasetVersion:
        return self.store.get_dataset(sha256)

    def load_dataset(self, sha256: str) -> Any:
        """The dataset version as a pyarrow Table."""
        from mloop.artifacts import load_dataset

        return load_dataset(self.blobstore, self.store.get_dataset(sha256).sha256)

    def __repr__(self) -> str:
        return f"Client(store={self.store!r})"


def _check_projects(projects: Any) -> None:
    if not isinstance(projects, (str, list, tuple)):
        raise InvalidInputError(
            f"`projects` must be a name or a list of names; got {type(projects).__name__}."
        )
