"""Runs this process started whose row is not written yet (it is written with their first batch).

``start_run`` does not write the run: its row goes to the store with the first batch, so a short
run costs one commit, not two. Until then the run exists only here. Every mloop API that reads or
changes a run by id (the tracking client, a run's artifacts and inputs, registering a model from
it, lineage) calls :func:`ensure_written` first, so this process always sees its own runs; other
processes see them within a flush interval. Code that reads the store object directly, under
mloop's APIs, sees a pending run after the writer's next tick.

This is SDK state, so it lives here and not in the store: the store only stores.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from mloop.store import Store

__all__ = ["defer", "ensure_written", "pending_runs", "written"]

_lock = threading.Lock()
# store object -> {run_id: the writer's callable that writes the run now}
_pending: weakref.WeakKeyDictionary[Store, dict[str, Callable[[], None]]] = (
    weakref.WeakKeyDictionary()
)


def defer(store: Store, run_id: str, write: Callable[[], None]) -> None:
    """Register ``write`` as the way to write run ``run_id`` before it is read or changed."""
    with _lock:
        _pending.setdefault(store, {})[run_id] = write


def written(store: Store, run_id: str) -> None:
    """``run_id`` is written (or spooled): no longer pending."""
    with _lock:
        runs = _pending.get(store)
        if runs is not None:
            runs.pop(run_id, None)
            if not runs:
                del _pending[store]


def pending_runs(store: Store) -> list[str]:
    """The ids of the runs pending on ``store``, oldest first."""
    with _lock:
        return list(_pending.get(store, {}))


def ensure_written(store: Store, run_id: str | None = None) -> None:
    """Write the pending run ``run_id`` (every pending run of ``store`` when None) now.

    A no-op for a run that is not pending. The writes happen outside the lock: a writer that is
    writing the run already holds its own lock, and ``written`` is called when it is done.
    """
    with _lock:
        runs = _pending.get(store)
        if not runs:
            return
        writes = list(runs.values()) if run_id is None else [runs[run_id]] if run_id in runs else []
    for write in writes:
        write()
