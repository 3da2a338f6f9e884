"""Profiling a partitioned table in parallel: one profile per Parquet file, merged.

One function, :func:`profile_partition`, does the work for one file; it runs in this process
(``executor="local"``), in a pool of processes (``"process"``) or as a Ray task (``"ray"``), and
returns the profile's bytes (a KLL sketch does not pickle; :meth:`Profile.to_bytes` is the
profile's own compact form). The results are merged in file order, so a run gives the same
profile whichever executor ran it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal

from mloop.errors import InvalidInputError
from mloop.monitoring._columns import check_columns
from mloop.monitoring._data import refuse_profile
from mloop.monitoring._profile import (
    MAX_CATEGORIES,
    STREAM_ROWS,
    UNLIMITED,
    Profile,
    _check_params,
    _Policy,
    merge_all,
    profile_batches,
)
from mloop.tables import Partition, column_names, count_rows, partition_batches, partitions

__all__ = ["Executor", "choose_executor", "profile_partition", "profile_partitions"]

Executor = Literal["local", "process", "ray", "auto"]
_EXECUTORS = ("local", "process", "ray", "auto")
#: ``"auto"`` uses processes from this many values (rows x columns) on. Each worker is a fresh
#: Python (about 2 s to start with mloop's imports, and ~150 MB) holding one batch; on 2 CPUs
#: (bench/profiles_scale.py, 8 files of 27 columns) a pool lost below this (3M rows: 2.7 s
#: against 1.5 s in one process) and won a little above it (10M rows: 5.7 s against 6.1 s).
AUTO_MIN_VALUES = 250_000_000


@dataclass(frozen=True)
class PartitionSpec:
    """What every partition is profiled with (picklable: sent to each worker)."""

    names: list[str] | None
    available: list[str]
    categorical: frozenset[str]
    policy: _Policy
    max_categories: int


def profile_partition(part: Partition, spec: PartitionSpec) -> tuple[int, bytes]:
    """Profile one Parquet file in batches: its rows and the bytes of its :class:`Profile`."""
    batches = partition_batches(part, columns=spec.names, batch_rows=STREAM_ROWS)
    profile = profile_batches(
        Profile,
        batches,
        spec.available,
        spec.names,
        set(spec.categorical),
        spec.policy,
        spec.max_categories,
    )
    return profile.n_rows, profile.to_bytes()


def cpu_count() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def choose_executor(
    n_partitions: int, n_values: int | None, cpus: int
) -> Literal["local", "process"]:
    """What ``executor="auto"`` runs: processes when there are several files, several CPUs and
    enough values (rows x columns) to pay for starting them (``AUTO_MIN_VALUES``), else here."""
    many = n_partitions > 1 and cpus > 1
    return "process" if many and (n_values or 0) >= AUTO_MIN_VALUES else "local"


def profile_partitions(
    data: Any,
    *,
    executor: Executor = "process",
    workers: int | None = None,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    bins: int = 20,
    exact: bool = False,
    max_exact: int | None = None,
    sketch_k: int = 2048,
    max_categories: int = MAX_CATEGORIES,
    progress: Callable[[int], object] | None = None,
) -> Profile:
    """Profile a folder or prefix of Parquet files (local or an fsspec URL such as ``s3://``)
    one file at a time, in parallel, and merge the profiles.

    Each file is read in batches (memory per worker stays near one batch). The merged profile
    has the exact values, counts and categories of :meth:`Profile.from_data` on the whole
    folder; a sketched column's quantiles are within the KLL rank error of it.

    Parameters
    ----------
    data : str or path-like
        A folder or prefix of Parquet files, or one Parquet file (one partition).
    executor : {"process", "ray", "local", "auto"}, default "process"
        ``"process"``: a pool of ``workers`` processes (started fresh, not forked: the parent's
        Arrow threads do not survive a fork). ``"ray"``: one Ray task per file, on the cluster
        ``ray.init`` finds (a local one is started, and stopped afterwards, when none is
        running; ``pip install 'mloop[ray]'``). ``"local"``: one file after another here.
        ``"auto"``: processes when there are several files, several CPUs and at least
        ``AUTO_MIN_VALUES`` values (rows from the footers x columns), else local. As with any
        pool of fresh processes, a script that calls this must guard its entry point with
        ``if __name__ == "__main__":``.
    workers : int, optional
        Processes of the pool (default: the CPUs, at most one per file). Not for Ray, which
        schedules its tasks on the cluster's CPUs.
    columns, categorical, bins, exact, max_exact, sketch_k, max_categories
        As for :meth:`Profile.from_data`.
    progress : callable, optional
        Called with the number of rows of each file once it is profiled.

    Returns
    -------
    Profile

    Raises
    ------
    InvalidInputError
        For input that is not Parquet files, an unknown ``executor``, bad ``workers``, a missing
        Ray, and the errors of :meth:`Profile.from_data`.

    Examples
    --------
    >>> import tempfile, numpy as np, pyarrow as pa, pyarrow.parquet as pq
    >>> folder = tempfile.mkdtemp()
    >>> for i in range(3):
    ...     pq.write_table(pa.table({"x": np.arange(100.0) + i}), f"{folder}/part-{i}.parquet")
    >>> profile_partitions(folder, executor="local").n_rows
    300
    """
    if executor not in _EXECUTORS:
        raise InvalidInputError(f"`executor` must be one of {list(_EXECUTORS)}; got {executor!r}.")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise InvalidInputError(f"`workers` must be an int >= 1 or None; got {workers!r}.")
    _check_params(bins, max_exact, sketch_k, max_categories)
    if not isinstance(exact, bool):
        raise InvalidInputError(f"`exact` must be True or False; got {exact!r}.")
    if exact and max_exact is not None:
        raise InvalidInputError(
            f"`exact=True` keeps every value; leave `max_exact` unset (got {max_exact!r})."
        )
    refuse_profile(data)
    parts = partitions(data)
    if not parts:
        raise InvalidInputError(
            "`data` must be a Parquet file or a folder or prefix of Parquet files to profile in "
            f"partitions; got {data!r}. Profile other tables with Profile.from_data."
        )
    available = column_names(data)
    if columns is not None:
        check_columns(columns, available, what="`columns`", where="in the data")
    cat = sorted(set(categorical or ()))
    check_columns(cat, available, what="`categorical`", where="in the data")
    spec = PartitionSpec(
        None if columns is None else list(columns),
        available,
        frozenset(cat),
        _Policy(bins, UNLIMITED if exact else max_exact, sketch_k),
        UNLIMITED if exact else max_categories,
    )
    if executor == "auto":
        rows = count_rows(data)
        n_values = None if rows is None else rows * len(spec.names or available)
        executor = choose_executor(len(parts), n_values, cpu_count())
    if executor == "ray":
        results = _on_ray(parts, spec, progress)
    elif executor == "process" and len(parts) > 1:
        results = _on_processes(parts, spec, workers or cpu_count(), progress)
    else:
        results = [_report(profile_partition(p, spec), progress) for p in parts]
    return merge_all([Profile.from_bytes(r) for r in results])


def _report(result: tuple[int, bytes], progress: Callable[[int], object] | None) -> bytes:
    if progress is not None:
        progress(result[0])
    return result[1]


def _on_processes(
    parts: list[Partition],
    spec: PartitionSpec,
    workers: int,
    progress: Callable[[int], object] | None,
) -> list[bytes]:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    results: dict[int, bytes] = {}
    with ProcessPoolExecutor(max_workers=min(workers, len(parts)), mp_context=context) as pool:
        pending = {pool.submit(profile_partition, p, spec): i for i, p in enumerate(parts)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                results[pending.pop(future)] = _report(future.result(), progress)
    return [results[i] for i in range(len(parts))]


def _on_ray(
    parts: list[Partition], spec: PartitionSpec, progress: Callable[[int], object] | None
) -> list[bytes]:
    try:
        import ray
    except ImportError as exc:
        raise InvalidInputError(
            f"`executor='ray'` needs Ray, which is not installed ({exc}); install it with "
            "pip install 'mloop[ray]'."
        ) from exc
    started = not ray.is_initialized()
    if started:
        ray.init(include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(profile_partition)
        refs = [task.remote(p, spec) for p in parts]
        index = {ref: i for i, ref in enumerate(refs)}
        results: dict[int, bytes] = {}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                results[index[ref]] = _report(ray.get(ref), progress)
        return [results[i] for i in range(len(parts))]
    finally:
        if started:
            ray.shutdown()
