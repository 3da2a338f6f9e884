"""Large Parquet inputs are consumed batch by batch: Monitor windows, and profiles in bounded memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from _arrow_peaks import profile_peaks, wide_table
from mloop.monitoring import Monitor, Profile, _monitor


def _rows(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    return pa.table(
        {
            "row": np.arange(n, dtype=np.float64),
            "x": rng.normal(size=n),
            "plan": rng.choice(["a", "b", "c"], n),
            "proba": p,
            "label": (rng.random(n) < p).astype(np.int64),
        }
    )


def _window_facts(results: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (
            r.index,
            r.start,
            r.end,
            r.n_rows,
            r.quality.current["row"]["min"],
            r.quality.current["row"]["max"],
            r.drift.share_drifted,
            r.performance.metrics["accuracy"],
        )
        for r in results
    ]


def test_monitor_consumes_a_parquet_file_piece_by_piece(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, stream = _rows(3000, 0), _rows(7000, 1)
    pq.write_table(stream, tmp_path / "stream.parquet", row_group_size=1000)
    pq.write_table(reference, tmp_path / "ref.parquet")
    kwargs: dict[str, Any] = {"window_rows": 2000, "y_true": "label", "y_score": "proba"}
    expected = Monitor(reference, **kwargs).update(stream)
    assert len(expected) == 3

    seen: list[int] = []
    real = _monitor.iter_batches

    def spy(*args: Any, **kw: Any) -> Any:
        for batch in real(*args, **kw):
            seen.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(_monitor, "iter_batches", spy)
    monkeypatch.setattr(_monitor, "UPDATE_ROWS", 900)
    mon = Monitor(tmp_path / "ref.parquet", **kwargs)
    got = mon.update(tmp_path / "stream.parquet")
    assert max(seen) == 900 and sum(seen) == 7000  # never more than 900 rows read at once
    assert _window_facts(got) == _window_facts(expected)
    (tail,) = mon.flush()
    assert (tail.start, tail.end, tail.n_rows) == (6000, 7000, 1000)
    seen.clear()
    assert _window_facts(Monitor(reference, **kwargs).update(ds.dataset(stream))) == (
        _window_facts(expected)
    )


def test_a_window_joins_batches_whose_columns_differ() -> None:
    mon = Monitor({"n": np.arange(100.0), "c": np.array(["a", "b"] * 50)}, window_rows=6)
    mon.update({"n": np.array([1, 2, 3]), "c": np.array(["a", "b", "a"])})  # ints, then floats
    (window,) = mon.update(pd.DataFrame({"n": [1.5, 2.5, 3.5]}))  # no "c" in this batch
    assert window.quality is not None and window.n_rows == 6
    assert window.quality.current["n"]["max"] == 3.5
    assert window.quality.current["c"]["n_missing"] == 3
    # a column whose values change type between batches is reported as mixed, not a crash
    mon.update({"n": np.arange(3.0), "c": np.array(["a", "b", "a"])})
    (mixed,) = mon.update({"n": np.arange(3.0), "c": np.array([1, 2, 3])})
    assert mixed.quality is not None
    check = mixed.quality.column("c")["type"]
    assert check.verdict == "fail" and "mixed" in check.value
    # a batch that mixes types within a column stays mixed when joined with a clean one
    mon.update({"n": np.arange(3.0), "c": np.array(["a", 7, "b"], dtype=object)})
    (again,) = mon.update({"n": np.arange(3.0), "c": np.array(["a", "b", "a"])})
    assert again.quality is not None and "mixed" in again.quality.column("c")["type"].value


@pytest.mark.no_mutation
def test_profiling_a_parquet_file_keeps_arrow_memory_near_one_batch(tmp_path: Path) -> None:
    n = 200_000
    table = wide_table(n, 6)
    path = tmp_path / "wide.parquet"
    pq.write_table(table, path, row_group_size=20_000)
    peaks = profile_peaks(path, n)
    # the whole table holds 6 string columns of 200k long labels; a batch holds a tenth of it
    assert peaks["streamed"] < peaks["whole"] / 3, peaks
    assert Profile.from_data(path).n_rows == n
