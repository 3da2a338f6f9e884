"""The runs part of the Store contract: projects, runs, metrics, the artifact index, datasets.

Public methods validate; a backend implements the ``_do_*`` hooks, so every backend rejects bad
input identically.
"""

from __future__ import annotations

import abc
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict, cast

from mloop._lazy import LazyModule
from mloop.errors import InvalidInputError
from mloop.ids import now_ms
from mloop.store._common import (
    MAX_RESULTS_LIMIT,
    decode_page_token,
    encode_page_token,
    validate_max_results,
    validate_sha,
)
from mloop.store._downsample import downsample_minmax
from mloop.store._entities import (
    RUN_STATUSES,
    ArtifactEntry,
    DatasetVersion,
    MetricHistory,
    MetricSeries,
    Page,
    Project,
    Run,
    RunInput,
    RunStatus,
)
from mloop.store._filter import Comparison, OrderKey, parse_filter, parse_order_by
from mloop.store._validation import (
    storable_text,
    validate_artifact_path,
    validate_digest,
    validate_key,
    validate_name,
    validate_params,
    validate_run_id,
    validate_tags,
    validate_text,
)
from mloop.store._version_files import VersionFilesStore, check_version_files

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy", globals(), "np")


__all__ = ["NewRun", "RunFields", "RunStoreMixin"]


class RunFields(TypedDict):
    """A validated run's columns, as ``new_run`` builds them and ``_do_create_run`` takes them."""

    run_id: str
    name: str
    start_ms: int
    parent_run_id: str | None
    tags: dict[str, str]
    params: dict[str, str]
    user: str | None
    host: str | None
    git_commit: str | None
    git_dirty: bool | None
    context: dict[str, Any]


class NewRun:
    """A validated run to create (``Store.new_run``): its project and its create_run fields."""

    __slots__ = ("fields", "project_id")

    def __init__(self, project_id: str, fields: RunFields) -> None:
        self.project_id = project_id
        self.fields = fields

    @property
    def run_id(self) -> str:
        return str(self.fields["run_id"])


def check_history_args(key: str, max_points: int | None) -> None:
    """What every backend refuses in a metric-history request (beyond the run id)."""
    validate_key(key)
    if max_points is not None and (
        isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2
    ):
        raise InvalidInputError(f"`max_points` must be an int >= 2 or None; got {max_points!r}.")


_INT64 = (-(2**63), 2**63 - 1)


def check_step_range(min_step: int | None, max_step: int | None) -> None:
    """What every backend refuses in a metric-history step range."""
    for name, v in (("min_step", min_step), ("max_step", max_step)):
        if v is not None and (
            isinstance(v, bool) or not isinstance(v, int) or not _INT64[0] <= v <= _INT64[1]
        ):
            raise InvalidInputError(f"`{name}` must be an int64 or None; got {v!r}.")
    if min_step is not None and max_step is not None and min_step > max_step:
        raise InvalidInputError(
            f"`min_step` must be <= `max_step`; got min_step={min_step}, max_step={max_step}."
        )


# A run input's context ("training", "evaluation", ...): every backend keeps up to this many characters.
MAX_INPUT_CONTEXT = 100


def _artifact_size(entry: ArtifactEntry) -> int:
    size = entry.size
    try:
        if isinstance(size, bool):
            raise TypeError
        n = operator.index(size)  # ints and numpy integers; never a float silently truncated
    except TypeError:
        n = -1
    if n < 0:
        raise InvalidInputError(
            f"artifact {entry.path!r}: `size` must be an int >= 0 (bytes); got {size!r}."
        )
    return n


class RunStoreMixin(abc.ABC):
    """Projects, runs, metrics, the artifact index and datasets."""

    # ------------------------------------------------------------------ projects
    def create_project(self, name: str, *, tags: Mapping[str, Any] | None = None) -> Project:
        return self._do_create_project(
            validate_name(name, what="project name"), validate_tags(tags or {})
        )

    def get_project(self, project_id: str) -> Project:
        return self._do_get_project(str(project_id))

    def get_project_by_name(self, name: str) -> Project | None:
        return self._do_get_project_by_name(validate_name(name, what="project name"))

    def get_or_create_project(self, name: str) -> Project:
        """The project named ``name``, created if absent (safe under concurrent creators)."""
        validate_name(name, what="project name")
        found = self._do_get_project_by_name(name)
        if found is not None:
            return found
        return self._do_get_or_create_project(name)

    def list_projects(self, *, include_deleted: bool = False) -> list[Project]:
        return self._do_list_projects(include_deleted)

    def delete_project(self, project_id: str) -> None:
        self._do_set_project_lifecycle(str(project_id), "deleted")

    def restore_project(self, project_id: str) -> None:
        self._do_set_project_lifecycle(str(project_id), "active")

    def set_project_tags(self, project_id: str, tags: Mapping[str, Any]) -> None:
        """Set tags of a project, overwriting those with the same keys (MLflow's experiment tags)."""
        clean = validate_tags(tags)
        if clean:
            self._do_set_project_tags(str(project_id), clean)

    def delete_project_tag(self, project_id: str, key: str) -> None:
        """Remove one tag of a project; :class:`~mloop.errors.NotFoundError` if it has none."""
        self._do_delete_project_tag(str(project_id), validate_key(key, kind="tag"))

    def rename_project(self, project_id: str, name: str) -> Project:
        """Give a project a new name (unique: :class:`~mloop.errors.AlreadyExistsError`)."""
        return self._do_rename_project(str(project_id), validate_name(name, what="project name"))

    # ------------------------------------------------------------------ runs
    def new_run(
        self,
        project_id: str,
        *,
        name: str | None = None,
        run_id: str | None = None,
        start_ms: int | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        user: str | None = None,
        host: str | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> NewRun:
        """Validate a run to create, without writing it (see :meth:`create_run`, ``log_batch``)."""
        from mloop.ids import new_id

        rid = validate_run_id(run_id) if run_id is not None else new_id()
        if parent_run_id is not None:
            validate_run_id(parent_run_id)
        if name is not None:
            validate_name(name, what="run name")
        return NewRun(
            str(project_id),
            {
                "run_id": rid,
                "name": name or rid[:8],
                "start_ms": int(start_ms if start_ms is not None else now_ms()),
                "parent_run_id": parent_run_id,
                "tags": validate_tags(tags or {}),
                "params": validate_params(params or {}),
                # Captured, not typed by the user: made storable rather than refused.
                "user": None if user is None else storable_text(user),
                "host": None if host is None else storable_text(host),
                "git_commit": None if git_commit is None else storable_text(git_commit),
                "git_dirty": git_dirty,
                "context": dict(context or {}),
            },
        )

    def create_run(self, project_id: str, **fields: Any) -> Run:
        """Create a run now (keyword arguments as :meth:`new_run`)."""
        new = self.new_run(project_id, **fields)
        return self._do_create_run(new.project_id, new.fields)

    # Layers above may keep runs that exist only in their process so far (the SDK writes a run
    # with its first batch: one commit for a short run). They register a barrier here, and every
    # method that reads or changes a run calls it first, so this process always sees its own runs.
    # The store keeps only the callables; which runs are pending is the registering layer's state.
    def add_run_barrier(self, barrier: Callable[[str | None], None]) -> None:
        """Call ``barrier(run_id)`` before any read or change of run ``run_id`` through this store
        (``barrier(None)`` before a search across runs)."""
        barriers: list[Callable[[str | None], None]] = self.__dict__.setdefault("_barriers", [])
        if barrier not in barriers:
            barriers.append(barrier)

    def remove_run_barrier(self, barrier: Callable[[str | None], None]) -> None:
        barriers = self.__dict__.get("_barriers", [])
        if barrier in barriers:
            barriers.remove(barrier)

    def before_run_access(self, run_id: str | None) -> None:
        """Run the barriers for ``run_id`` (None: every run); a no-op when none is registered."""
        for barrier in self.__dict__.get("_barriers", ()):
            barrier(run_id)

    def get_run(self, run_id: str) -> Run:
        self.before_run_access(run_id)
        return self._do_get_run(validate_run_id(run_id))

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_ms: int | None = None,
        name: str | None = None,
    ) -> Run:
        validate_run_id(run_id)
        if status is not None and status not in RUN_STATUSES:
            raise InvalidInputError(
                f"`status` must be one of {list(RUN_STATUSES)}; got {status!r}."
            )
        if name is not None:
            validate_name(name, what="run name")
        self.before_run_access(run_id)
        self._do_update_run(run_id, status=status, end_ms=end_ms, name=name)
        return self._do_get_run(run_id)

    def set_run_status(self, run_id: str, status: RunStatus, *, end_ms: int | None = None) -> None:
        """Record a run's status (and end time) without reading the run back: the hot path of finish."""
        validate_run_id(run_id)
        if status not in RUN_STATUSES:
            raise InvalidInputError(
                f"`status` must be one of {list(RUN_STATUSES)}; got {status!r}."
            )
        self.before_run_access(run_id)
        self._do_update_run(run_id, status=status, end_ms=end_ms, name=None)

    def heartbeat(self, run_id: str, *, ts_ms: int | None = None) -> None:
        self.before_run_access(run_id)
        self._do_heartbeat(validate_run_id(run_id), int(ts_ms if ts_ms is not None else now_ms()))

    def delete_run(self, run_id: str) -> None:
        self.before_run_access(run_id)
        self._do_set_run_lifecycle(validate_run_id(run_id), "deleted")

    def restore_run(self, run_id: str) -> None:
        self.before_run_access(run_id)
        self._do_set_run_lifecycle(validate_run_id(run_id), "active")

    def delete_run_tag(self, run_id: str, key: str) -> None:
        """Remove one tag of a run; :class:`~mloop.errors.NotFoundError` if it has none."""
        validate_run_id(run_id)
        key = validate_key(key, kind="tag")
        self.before_run_access(run_id)
        self._do_delete_run_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Mapping[str, MetricSeries] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        batch_id: str | None = None,
        status: RunStatus | None = None,
        end_ms: int | None = None,
        new_run: NewRun | None = None,
    ) -> bool:
        """Write metrics, params and tags in one transaction.

        Params are write-once: re-logging the same value is accepted, another value raises
        :class:`~mloop.errors.ConflictError` and nothing of the batch is written. With ``batch_id``
        the write is idempotent: a batch already applied is skipped and ``False`` is returned.
        ``status`` (with ``end_ms``) also records the run's final status in the same transaction:
        a finishing run's last batch and its status cost one commit, not two. ``new_run`` (from
        :meth:`new_run`, for this ``run_id``) creates the run in the same transaction: a short run
        costs one commit in all.
        """
        validate_run_id(run_id)
        if new_run is not None and new_run.run_id != run_id:
            raise InvalidInputError(
                f"`new_run` is run {new_run.run_id}, not the batch's run {run_id}."
            )
        if status is not None and status not in RUN_STATUSES:
            raise InvalidInputError(
                f"`status` must be one of {list(RUN_STATUSES)}; got {status!r}."
            )
        ms = {}
        for key, series in (metrics or {}).items():
            validate_key(key, kind="metric")
            if not isinstance(series, MetricSeries):
                raise InvalidInputError(
                    f"metrics[{key!r}] must be a MetricSeries; got {type(series).__name__}."
                )
            if len(series):
                ms[key] = series
        p = validate_params(params or {})
        t = validate_tags(tags or {})
        if new_run is None:
            self.before_run_access(run_id)
        if new_run is None and not (ms or p or t):
            if status is not None:
                self._do_update_run(run_id, status=status, end_ms=end_ms, name=None)
            return True
        return self._do_log_batch(
            run_id,
            metrics=ms,
            params=p,
            tags=t,
            batch_id=batch_id,
            status=status,
            end_ms=end_ms,
            new_run=new_run,
        )

    def log_metric(
        self, run_id: str, key: str, value: float, *, step: int = 0, timestamp: int | None = None
    ) -> None:
        """Convenience single-point write (prefer the SDK's buffered ``run.log``)."""
        from mloop.store._validation import validate_metric_value

        v = validate_metric_value(key, value)
        ts = now_ms() if timestamp is None else int(timestamp)
        self.log_batch(run_id, metrics={key: MetricSeries([int(step)], [ts], [v])})

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        *,
        max_points: int | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> MetricHistory:
        """The history ordered by (step, timestamp), or downsampled to about ``max_points``.

        ``min_step`` / ``max_step`` (inclusive) keep only the points in that step range, read as
        such from the store (a zoom into 1% of a long metric reads about 1% of it); ``total`` is
        then the number of points in the range.
        """
        validate_run_id(run_id)
        self.before_run_access(run_id)
        check_history_args(key, max_points)
        check_step_range(min_step, max_step)
        step, ts, value = self._do_get_metric_history(run_id, key, min_step, max_step)
        total = len(value)
        if max_points is not None and total > max_points:
            step, ts, value = downsample_minmax(step, ts, value, max_points)
            return MetricHistory(key, step, ts, value, total=total, downsampled=True)
        return MetricHistory(key, step, ts, value, total=total)

    def search_runs(
        self,
        project_ids: Sequence[str] | str,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page:
        """Runs of the given projects matching ``filter`` (MLflow's grammar), ordered, paginated."""
        ids = [project_ids] if isinstance(project_ids, str) else [str(p) for p in project_ids]
        validate_max_results(max_results)
        offset = decode_page_token(page_token)
        ast = parse_filter(filter or "")
        order = parse_order_by(order_by or [])
        self.before_run_access(None)
        runs, more = self._do_search_runs(
            ids,
            ast=ast,
            order=order,
            limit=max_results,
            offset=offset,
            include_deleted=include_deleted,
        )
        token = encode_page_token(offset + len(runs)) if more else None
        return Page(runs, token)

    def search_run_ids(
        self,
        project_ids: Sequence[str] | str,
        *,
        filter: str | None = None,
        max_results: int = MAX_RESULTS_LIMIT,
        include_deleted: bool = False,
    ) -> list[str]:
        """The ids of the runs ``filter`` matches, newest first (``search_runs``'s default order),
        at most ``max_results``: what a filter selects, without building the runs."""
        ids = [project_ids] if isinstance(project_ids, str) else [str(p) for p in project_ids]
        validate_max_results(max_results)
        ast = parse_filter(filter or "")
        self.before_run_access(None)
        return self._do_search_run_ids(
            ids, ast=ast, limit=max_results, include_deleted=include_deleted
        )

    def iter_runs(self, project_ids: Sequence[str] | str, **kwargs: Any) -> Iterator[Run]:
        """Every matching run, following page tokens."""
        token = None
        while True:
            page = self.search_runs(project_ids, page_token=token, **kwargs)
            yield from page.items
            token = page.next_page_token
            if token is None:
                return

    # ------------------------------------------------------------------ artifacts index
    def add_artifacts(self, run_id: str, entries: Iterable[ArtifactEntry]) -> None:
        clean = []
        for e in entries:
            clean.append(
                ArtifactEntry(
                    validate_artifact_path(e.path), _artifact_size(e), validate_digest(e.sha256)
                )
            )
        if clean:
            validate_run_id(run_id)
            self.before_run_access(run_id)
            # A registered version's files never change, on every backend (see _version_files).
            # It reads the registry part too: the runs part only ever lives composed in a Store.
            check_version_files(cast(VersionFilesStore, self), run_id, clean)
            self._do_add_artifacts(run_id, clean)

    def list_artifacts(self, run_id: str, *, prefix: str = "") -> list[ArtifactEntry]:
        """The run's index under ``prefix`` (a folder or a path's start; '' for everything)."""
        if not isinstance(prefix, str):
            raise InvalidInputError(f"`prefix` must be a str; got {type(prefix).__name__}.")
        # A prefix obeys the rules of a path ('..', NUL and backslashes are refused), except
        # that a leading or trailing '/' is allowed and means the same.
        clean = prefix.strip("/")
        if clean:
            clean = validate_artifact_path(clean, name="prefix")
        self.before_run_access(run_id)
        return self._do_list_artifacts(validate_run_id(run_id), clean)

    def get_artifact(self, run_id: str, path: str) -> ArtifactEntry:
        self.before_run_access(run_id)
        return self._do_get_artifact(validate_run_id(run_id), validate_artifact_path(path))

    def referenced_blobs(self) -> set[str]:
        """Every blob sha256 any run's artifact index or dataset points at (for garbage collection)."""
        return self._do_referenced_blobs()

    # ------------------------------------------------------------------ datasets
    def put_dataset(self, dataset: DatasetVersion) -> DatasetVersion:
        """Record a dataset version; the same content hash recorded twice is one version."""
        validate_sha(dataset.sha256)
        validate_name(dataset.name, what="dataset name")
        for what, text in (
            ("source_uri", dataset.source_uri),
            ("storage_uri", dataset.storage_uri),
        ):
            if text is not None:
                validate_text(text, what=f"dataset {what}")
        return self._do_put_dataset(dataset)

    def get_dataset(self, sha256: str) -> DatasetVersion:
        return self._do_get_dataset(validate_sha(sha256))

    def log_input(self, run_id: str, run_input: RunInput) -> None:
        validate_sha(run_input.dataset_sha256)
        validate_name(run_input.name, what="input name")
        context = run_input.context
        if not isinstance(context, str) or not context or len(context) > MAX_INPUT_CONTEXT:
            raise InvalidInputError(
                f"an input's `context` must be a non-empty string of at most "
                f"{MAX_INPUT_CONTEXT} characters (e.g. 'training'); got {context!r:.80}."
            )
        validate_text(context, what="an input's `context`")
        self.before_run_access(run_id)
        self._do_log_input(validate_run_id(run_id), run_input)

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def _do_create_project(self, name: str, tags: dict[str, str]) -> Project: ...
    @abc.abstractmethod
    def _do_get_project(self, project_id: str) -> Project: ...
    @abc.abstractmethod
    def _do_get_project_by_name(self, name: str) -> Project | None: ...
    @abc.abstractmethod
    def _do_get_or_create_project(self, name: str) -> Project: ...
    @abc.abstractmethod
    def _do_list_projects(self, include_deleted: bool) -> list[Project]: ...
    @abc.abstractmethod
    def _do_set_project_lifecycle(self, project_id: str, stage: str) -> None: ...
    @abc.abstractmethod
    def _do_set_project_tags(self, project_id: str, tags: dict[str, str]) -> None: ...
    @abc.abstractmethod
    def _do_delete_project_tag(self, project_id: str, key: str) -> None: ...
    @abc.abstractmethod
    def _do_rename_project(self, project_id: str, name: str) -> Project: ...
    @abc.abstractmethod
    def _do_create_run(self, project_id: str, fields: RunFields) -> Run: ...
    @abc.abstractmethod
    def _do_get_run(self, run_id: str) -> Run: ...
    @abc.abstractmethod
    def _do_update_run(
        self, run_id: str, *, status: str | None, end_ms: int | None, name: str | None
    ) -> None: ...
    @abc.abstractmethod
    def _do_heartbeat(self, run_id: str, ts_ms: int) -> None: ...
    @abc.abstractmethod
    def _do_set_run_lifecycle(self, run_id: str, stage: str) -> None: ...
    @abc.abstractmethod
    def _do_delete_run_tag(self, run_id: str, key: str) -> None: ...
    @abc.abstractmethod
    def _do_log_batch(
        self,
        run_id: str,
        *,
        metrics: Mapping[str, MetricSeries],
        params: Mapping[str, str],
        tags: Mapping[str, str],
        batch_id: str | None,
        status: str | None = None,
        end_ms: int | None = None,
        new_run: NewRun | None = None,
    ) -> bool: ...
    @abc.abstractmethod
    def _do_get_metric_history(
        self, run_id: str, key: str, min_step: int | None, max_step: int | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    @abc.abstractmethod
    def _do_search_run_ids(
        self, project_ids: list[str], *, ast: list[Comparison], limit: int, include_deleted: bool
    ) -> list[str]: ...
    @abc.abstractmethod
    def _do_search_runs(
        self,
        project_ids: list[str],
        *,
        ast: list[Comparison],
        order: list[OrderKey],
        limit: int,
        offset: int,
        include_deleted: bool,
    ) -> tuple[list[Run], bool]: ...
    @abc.abstractmethod
    def _do_add_artifacts(self, run_id: str, entries: list[ArtifactEntry]) -> None: ...
    @abc.abstractmethod
    def _do_list_artifacts(self, run_id: str, prefix: str) -> list[ArtifactEntry]: ...
    @abc.abstractmethod
    def _do_get_artifact(self, run_id: str, path: str) -> ArtifactEntry: ...
    @abc.abstractmethod
    def _do_referenced_blobs(self) -> set[str]: ...
    @abc.abstractmethod
    def _do_put_dataset(self, dataset: DatasetVersion) -> DatasetVersion: ...
    @abc.abstractmethod
    def _do_get_dataset(self, sha256: str) -> DatasetVersion: ...
    @abc.abstractmethod
    def _do_log_input(self, run_id: str, run_input: RunInput) -> None: ...
