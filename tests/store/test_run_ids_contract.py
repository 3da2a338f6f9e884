"""Two cheap reads the web UI leans on, one contract on every backend: the ids a run filter
matches (without building the runs), and a metric's history over a step range (read as a range,
not as the whole history cut afterwards)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mloop.errors import InvalidInputError
from mloop.store import MetricSeries, Store


@pytest.fixture
def project(store: Store) -> Any:
    p = store.create_project("ids")
    for i in range(12):
        new = store.new_run(
            p.id,
            name=f"run-{i:02d}",
            start_ms=1_700_000_000_000 + i * 1000,
            params={"opt": ("adam", "sgd", "rms")[i % 3]},
            tags={"team": "a" if i < 4 else "b"},
        )
        store.log_batch(
            new.run_id,
            new_run=new,
            metrics={"acc": MetricSeries([0], [1], [i / 12])},
            status="finished" if i % 2 else "failed",
        )
    return p


def _names(store: Store, project_id: str, ids: list[str]) -> list[str]:
    return [store.get_run(i).name for i in ids]


def test_ids_are_those_the_search_finds_newest_first(store: Store, project: Any) -> None:
    for flt in ("", "params.opt = 'adam'", "metrics.acc >= 0.5 and tags.team = 'b'",
                "status = 'failed'", "run_name LIKE 'run-1%'", "params.opt = 'none'"):  # fmt: skip
        ids = store.search_run_ids(project.id, filter=flt)
        assert ids == [r.id for r in store.search_runs(project.id, filter=flt).items], flt
    assert _names(store, project.id, store.search_run_ids(project.id))[:3] == [
        "run-11",
        "run-10",
        "run-09",
    ]
    assert _names(
        store, project.id, store.search_run_ids(project.id, filter="params.opt = 'rms'")
    ) == [
        "run-11",
        "run-08",
        "run-05",
        "run-02",
    ]


def test_ids_respect_max_results_deleted_runs_and_projects(store: Store, project: Any) -> None:
    everything = store.search_run_ids(project.id)
    assert store.search_run_ids(project.id, max_results=5) == everything[:5]
    store.delete_run(everything[0])
    assert everything[0] not in store.search_run_ids(project.id)
    assert store.search_run_ids(project.id, include_deleted=True) == everything
    other = store.create_project("other")
    assert store.search_run_ids(other.id) == []
    assert store.search_run_ids([project.id, other.id]) == everything[1:]


def test_ids_refuse_bad_input_like_the_search(store: Store, project: Any) -> None:
    with pytest.raises(InvalidInputError, match="max_results"):
        store.search_run_ids(project.id, max_results=0)
    with pytest.raises(InvalidInputError, match="max_results"):
        store.search_run_ids(project.id, max_results=50_001)
    with pytest.raises(InvalidInputError, match="position"):
        store.search_run_ids(project.id, filter="params.opt = ")
    with pytest.raises(InvalidInputError):
        store.search_run_ids(project.id, filter="metrics.acc > 'high'")


@pytest.fixture
def run(store: Store) -> Any:
    p = store.create_project("zoom")
    return store.create_run(p.id, name="long")


def test_history_over_a_step_range(store: Store, run: Any) -> None:
    n = 50_000
    steps = np.arange(0, 2 * n, 2)  # even steps only
    values = np.sin(steps / 1000.0)
    store.log_batch(run.id, metrics={"m": MetricSeries(steps, steps + 7, values)})
    store.log_batch(run.id, metrics={"m": MetricSeries([5001], [1], [9.0])})  # a late, odd step
    h = store.get_metric_history(run.id, "m", min_step=5000, max_step=5010)
    assert h.step.tolist() == [5000, 5001, 5002, 5004, 5006, 5008, 5010]
    assert h.value[1] == 9.0 and h.value[0] == values[2500] and h.timestamp[0] == 5007
    assert h.total == 7 and not h.downsampled
    assert store.get_metric_history(run.id, "m", min_step=99_990).step.tolist() == [99_990, 99_992,
                                                                                     99_994, 99_996,
                                                                                     99_998]  # fmt: skip
    assert store.get_metric_history(run.id, "m", max_step=3).step.tolist() == [0, 2]
    assert len(store.get_metric_history(run.id, "m", min_step=10**9)) == 0
    assert len(store.get_metric_history(run.id, "m", min_step=7, max_step=7)) == 0
    wide = store.get_metric_history(run.id, "m", min_step=10_000, max_step=59_999, max_points=500)
    assert wide.downsampled and wide.total == 25_000 and len(wide) <= 500
    assert wide.step[0] >= 10_000 and wide.step[-1] <= 59_999
    assert len(store.get_metric_history(run.id, "nope", min_step=0, max_step=5)) == 0


def test_a_bad_step_range_is_refused(store: Store, run: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"`min_step` must be <= `max_step`"):
        store.get_metric_history(run.id, "m", min_step=10, max_step=3)
    with pytest.raises(InvalidInputError, match="`min_step` must be an int64"):
        store.get_metric_history(run.id, "m", min_step=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="`max_step` must be an int64"):
        store.get_metric_history(run.id, "m", max_step=2**63)


def test_a_sql_range_read_reads_only_the_chunks_it_needs(
    sql_store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zoom into 1% of a 1M-point metric unpacks a few percent of it, not all of it."""
    from mloop.store import create_store
    from mloop.store._sql import _metrics

    unpacked: list[int] = []
    real = _metrics.unpack_chunks

    def counting(rows: list[tuple[int, bytes]]) -> Any:
        unpacked.append(sum(n for n, _ in rows))
        return real(rows)

    store = create_store(sql_store_uri)
    try:
        r = store.create_run(store.create_project("big").id)
        n = 1_000_000
        values = np.random.default_rng(5).random(n)
        store.log_batch(r.id, metrics={"big": MetricSeries(np.arange(n), np.arange(n), values)})
        monkeypatch.setattr(_metrics, "unpack_chunks", counting)
        h = store.get_metric_history(r.id, "big", min_step=500_000, max_step=509_999)
        assert len(h) == 10_000 and np.array_equal(h.value, values[500_000:510_000])
        assert unpacked[-1] <= 0.03 * n, unpacked
        assert len(store.get_metric_history(r.id, "big")) == n and unpacked[-1] == n
    finally:
        store.close()
