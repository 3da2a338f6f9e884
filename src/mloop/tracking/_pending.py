"""Runs this process started whose row is not written yet (it is written with their first batch).

``start_run`` does not write the run: its row goes to the store with the first batch, so a short
run costs one commit, not two. Until then the run exists only here. The first time a store gets a
pending run, this module registers a barrier on it (``Store.add_run_barrier``): any read or change
of a pending run through that store writes the run first, so this process always sees its own runs;
other processes see them within a flush interval.

This is SDK state, so it lives here and not in the store: the store keeps only the barrier.
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
_barred: weakref.WeakSet[Store] = weakref.WeakSet()  # stores that have this module's barrier


def defer(store: Store, run_id: str, write: Callable[[], None]) -> None:
    """Register ``write`` as the way to write run ``run_id`` before it is read or changed."""
    with _lock:
        runs = _pending.get(store)
        if runs is None:
            runs = _pending[store] = {}
            new_store = store not in _barred
            _barred.add(store)
        else:
            new_store = False
        runs[run_id] = write
    if new_store:
        store.add_run_barrier(_barrier_for(store))


def _barrier_for(store: Store) -> Callable[[str | None], None]:
    ref = weakref.ref(store)  # the barrier must not keep its store alive

    def barrier(run_id: str | None) -> None:
        target = ref()
        if target is not None:
            ensure_written(target, run_id)

    return barrier


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
