"""Module-level API: ``start_run``, ``init`` / ``log`` / ``finish`` (W&B style), the active run, exit."""

from __future__ import annotations

import atexit
import contextlib
import getpass
import logging
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

from mloop.config import Settings
from mloop.errors import MloopError, NotFoundError, StoreUnavailableError
from mloop.ids import new_id, now_ms
from mloop.store import (
    MediaItem,
    Store,
    open_store,
    validate_name,
    validate_params,
    validate_run_id,
    validate_tags,
)
from mloop.tracking._run import Run, flatten_config, warn

__all__ = ["active_run", "attached_run", "finish", "init", "log", "start_run"]

_log = logging.getLogger("mloop.tracking")
_lock = threading.Lock()
_active: list[Run] = []
_atexit_installed = False
_uncaught: list[BaseException] = []


def _excepthook(exc_type: Any, exc: Any, tb: Any) -> None:
    _uncaught.append(exc)
    _prev_excepthook(exc_type, exc, tb)


_prev_excepthook = sys.excepthook


def _at_exit() -> None:
    status = "failed" if _uncaught else "finished"
    for run in list(reversed(_active)):
        try:
            run.finish(status)
        except Exception as exc:
            warn(f"mloop: could not finish run {run.id} at exit: {exc}")


def _install_exit_hooks() -> None:
    global _atexit_installed, _prev_excepthook
    if _atexit_installed:
        return
    _atexit_installed = True
    atexit.register(_at_exit)
    _prev_excepthook = sys.excepthook
    sys.excepthook = _excepthook


def _forget(run: Run) -> None:
    with _lock:
        if run in _active:
            _active.remove(run)


def active_run() -> Run | None:
    """The innermost run started in this process and not finished yet."""
    with _lock:
        return _active[-1] if _active else None


def start_run(
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    system_metrics: bool | float = True,
    settings: Settings | None = None,
    store: Store | None = None,
) -> Run:
    """Start (or, with ``run_id``, resume) a run and make it the active run.

    Parameters
    ----------
    project : str, optional
        Project name (created if absent); default ``"default"``.
    name : str, optional
        Run name; default the first 8 characters of the run id.
    config : mapping, optional
        Hyper-parameters; nested mappings are flattened with dots and recorded as params.
    run_id : str, optional
        Resume this run: its status goes back to ``running`` and steps continue after its last one.
    tags : mapping, optional
    nested : bool
        Make the currently active run this run's parent (sweeps, cross-validation folds).
    parent_run_id : str, optional
        An explicit parent run.
    system_metrics : bool or float
        Sample CPU, memory, disk, network (and GPU through NVML) every 10 s (or every ``float``
        seconds) into ``system/*`` keys, on steps of their own (0, 1, 2... per sample).
    settings, store : optional
        Override the resolved settings or the store (tests, embedding).

    Returns
    -------
    Run
        Usable as a context manager: leaving the block finishes the run; an exception marks it
        ``failed`` and re-raises.

    Notes
    -----
    ``start_run`` does not wait for the store: the run's row is written with its first batch (a
    run that finishes quickly costs one transaction in all), at the latest one flush interval
    (``MLOOP_FLUSH_INTERVAL_S``, 1 s) after the start. In this process the run is visible at once:
    reading it, searching its project or logging artifacts through the same store writes it first.

    Examples
    --------
    >>> import mloop
    >>> with mloop.start_run(project="doc", config={"lr": 0.1}, system_metrics=False) as run:
    ...     run.log({"loss": 0.5})
    """
    settings = settings or Settings.from_env()
    project = project or "default"
    validate_name(project, what="project name")
    if name is not None:
        validate_name(name, what="run name")
    params = validate_params(flatten_config(config or {}))
    clean_tags = validate_tags(tags or {})
    if nested and parent_run_id is None:
        parent = active_run()
        if parent is None:
            raise MloopError("`nested=True` needs an active run to nest under; start one first.")
        parent_run_id = parent.id
    if parent_run_id is not None:
        validate_run_id(parent_run_id)
    _install_exit_hooks()

    if run_id is not None:
        run = _resume(run_id, settings=settings, store=store, system_metrics=system_metrics)
        if params:
            run.log_params(params)
        if clean_tags:
            run.set_tags(clean_tags)
    else:
        run = _create(
            project,
            name,
            params,
            clean_tags,
            parent_run_id,
            settings=settings,
            store=store,
            system_metrics=system_metrics,
        )
    run._on_finish.append(_forget)
    run._start_background()
    with _lock:
        _active.append(run)
    return run


@contextlib.contextmanager
def attached_run(
    run_id: str, *, settings: Settings | None = None, store: Store | None = None
) -> Iterator[Run]:
    """Log into a run that another process started, as the active run, for the block.

    What a pipeline step on a worker process (or a Ray node) runs in: ``mloop.log`` and
    ``mloop.log_model`` there go to the pipeline's run, as they do for a step in the calling
    process. The run's status is not touched — whoever started it finishes it; leaving the block
    flushes what was logged here (steps continue after the run's last stored step).

    Raises
    ------
    NotFoundError
        The run does not exist (yet) in the store.
    """
    settings = settings or Settings.from_env()
    validate_run_id(run_id)
    st = store or open_store(settings)
    run = _continued(st, st.get_run(run_id), settings=settings, system_metrics=False)
    run._owns_status = False
    run._on_finish.append(_forget)
    run._start_background()
    with _lock:
        _active.append(run)
    try:
        yield run
    finally:
        run.finish()


_project_ids: weakref.WeakKeyDictionary[Store, dict[str, str]] = weakref.WeakKeyDictionary()


def _project_id(store: Store, name: str) -> str:
    """Project ids never change, so each process asks the store once per project name."""
    known = _project_ids.setdefault(store, {})
    pid = known.get(name)
    if pid is None:
        pid = known[name] = store.get_or_create_project(name).id
    return pid


def _open(settings: Settings, store: Store | None) -> Store | None:
    if store is not None:
        return store
    if settings.mode == "offline":
        _check_spool_dir(settings, "offline mode logs to the spool")
        return None
    try:
        return open_store(settings)
    except StoreUnavailableError as exc:
        _check_spool_dir(settings, exc.message)
        warn(
            f"mloop: {exc.message}; logging to the spool under {settings.spool_dir} (`mloop sync` replays it)."
        )
        return None


def _check_spool_dir(settings: Settings, why: str) -> None:
    """The spool is where a run goes when the store is out of reach: it must be usable, or the
    run could not keep anything it is given. Say so now, not at the first write."""
    try:
        settings.spool_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailableError(
            f"cannot log a run: the spool folder {str(settings.spool_dir)!r} cannot be created "
            f"({exc.strerror or exc}), and the store is out of reach too ({why.split('. ')[0]}). "
            "Point MLOOP_HOME at a writable folder.",
            details={"spool_dir": str(settings.spool_dir)},
        ) from None


def _create(
    project: str,
    name: str | None,
    params: dict[str, str],
    tags: dict[str, str],
    parent_run_id: str | None,
    *,
    settings: Settings,
    store: Store | None,
    system_metrics: bool | float,
) -> Run:
    from mloop.tracking._context import capture_context

    ctx = capture_context()
    rid = new_id()
    run_name = name or rid[:8]
    fields: dict[str, Any] = {
        "name": run_name,
        "run_id": rid,
        "start_ms": now_ms(),
        "parent_run_id": parent_run_id,
        "tags": tags,
        "params": params,
        "user": ctx.get("user") or _user(),
        "host": ctx.get("host"),
        "git_commit": ctx.get("git_commit"),
        "git_dirty": ctx.get("git_dirty"),
        "context": {
            k: v for k, v in ctx.items() if k not in ("user", "host", "git_commit", "git_dirty")
        },
    }
    st = _open(settings, store)
    project_id = None
    new_run = None
    if st is not None:
        try:
            project_id = _project_id(st, project)
            new_run = st.new_run(project_id, **fields)  # validated now, written with a batch
        except StoreUnavailableError as exc:
            warn(
                f"mloop: {exc.message}; logging run {rid} to the spool under {settings.spool_dir}."
            )
            st_for_run: Store | None = st
            run = Run(
                settings=settings,
                store=st_for_run,
                run_id=rid,
                project=project,
                project_id=None,
                name=run_name,
                params=params,
                system_metrics=system_metrics,
            )
            run._writer.spool_op({"op": "create_run", "project": project, "run": fields})
            return run
    run = Run(
        settings=settings,
        store=st,
        run_id=rid,
        project=project,
        project_id=project_id,
        name=run_name,
        params=params,
        system_metrics=system_metrics,
    )
    record = {"op": "create_run", "project": project, "run": fields}
    if new_run is None:
        run._writer.spool_op(record)
    else:
        run._writer.defer_creation(new_run, record)
    return run


def _resume(
    run_id: str, *, settings: Settings, store: Store | None, system_metrics: bool | float
) -> Run:
    validate_run_id(run_id)
    st = store or open_store(settings)
    stored = st.get_run(run_id)  # NotFoundError names the id
    st.update_run(run_id, status="running")
    return _continued(st, stored, settings=settings, system_metrics=system_metrics)


def _continued(st: Store, stored: Any, *, settings: Settings, system_metrics: bool | float) -> Run:
    """A ``Run`` that goes on logging into the stored run: steps after its last stored one."""
    project = st.get_project(stored.project_id)
    return Run(
        settings=settings,
        store=st,
        run_id=stored.id,
        project=project.name,
        project_id=project.id,
        name=stored.name,
        params=stored.params,
        start_step=max((m.step for m in stored.metrics.values()), default=-1) + 1,
        system_metrics=system_metrics,
    )


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def init(
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Run:
    """W&B-style: start a run and make it the target of :func:`log` and :func:`finish`."""
    return start_run(project, name, config, **kwargs)


def _require_active() -> Run:
    run = active_run()
    if run is None:
        raise NotFoundError(
            "no active run: call mloop.init(project=...) or mloop.start_run() first."
        )
    return run


def log(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Log metrics to the active run (see :meth:`Run.log`)."""
    _require_active().log(metrics, step=step)


def finish(status: str = "finished") -> None:
    """Finish the active run (flush, stop background threads, record the status)."""
    _require_active().finish(status)


def log_image(image: Any, key: str, step: int | None = None) -> MediaItem:
    """Store an image in the active run (see :meth:`Run.log_image`)."""
    return _require_active().log_image(image, key, step)


def log_figure(fig: Any, key: str, step: int | None = None) -> MediaItem:
    """Store a matplotlib (or plotly) figure in the active run (see :meth:`Run.log_figure`)."""
    return _require_active().log_figure(fig, key, step)


def log_table(frame: Any, key: str, step: int | None = None) -> MediaItem:
    """Store a table in the active run as Parquet (see :meth:`Run.log_table`)."""
    return _require_active().log_table(frame, key, step)


def log_histogram(values: Any, key: str, step: int | None = None, *, bins: int = 64) -> MediaItem:
    """Store a histogram of ``values`` in the active run (see :meth:`Run.log_histogram`)."""
    return _require_active().log_histogram(values, key, step, bins=bins)
