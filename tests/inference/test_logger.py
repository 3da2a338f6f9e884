"""InferenceLogger: what is logged is what is read back, sampling, overflow, write failures."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from mloop.artifacts import BlobStore
from mloop.errors import InvalidInputError, StoreUnavailableError
from mloop.inference import InferenceLogger, iter_inference_chunks, read_inference_log

T0 = 1_700_000_000_000


def _log_requests(
    logger: InferenceLogger,
    n: int,
    *,
    rows: int = 1,
    version: str = "churn/3",
    start: int = 0,
    t0: int = T0,
) -> None:
    for i in range(start, start + n):
        x = np.arange(rows, dtype=float) + i
        logger.log(
            request_ids=[f"r{i}"],
            ts_ms=t0 + i,
            model_version=version,
            features=pa.table({"x": x, "plan": ["basic"] * rows}),
            predictions=(x > 5).astype(np.int64),
        )


def test_log_is_complete_after_close(make_logger: Any, store: Any, blobs: BlobStore) -> None:
    logger = make_logger(flush_rows=100)
    _log_requests(logger, 250, rows=3)
    logger.close()
    assert logger.stats["rows_written"] == 750 and logger.stats["rows_buffered"] == 0
    assert logger.stats["rows_dropped"] == 0 and logger.stats["chunks_written"] >= 3

    table = read_inference_log("churn-api", store=store, blobstore=blobs, with_labels=False)
    assert table.num_rows == 750
    assert table.column_names == [
        "request_id",
        "row",
        "ts",
        "model_version",
        "x",
        "plan",
        "prediction",
        "shadow_version",
        "shadow_prediction",
    ]
    assert table.schema.field("ts").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("row").type == pa.int32()
    got = table.to_pydict()
    assert got["request_id"] == [f"r{i}" for i in range(250) for _ in range(3)]
    assert got["row"] == [0, 1, 2] * 250
    assert got["x"] == [float(i + r) for i in range(250) for r in range(3)]
    assert [t.timestamp() * 1000 for t in got["ts"]] == [
        T0 + i for i in range(250) for _ in range(3)
    ]
    assert got["prediction"] == [int(i + r > 5) for i in range(250) for r in range(3)]
    assert set(got["model_version"]) == {"churn/3"} and set(got["shadow_version"]) == {None}

    chunks = store.list_inference_chunks("churn-api")
    assert sum(c.n_rows for c in chunks) == 750
    assert all(c.model_versions == {"churn/3": c.n_rows} for c in chunks)
    assert chunks[0].first_ts_ms == T0 and max(c.last_ts_ms for c in chunks) == T0 + 249


class _Rows:
    """A row block: what a server's fast path hands the logger (2-D values, column names)."""

    def __init__(self, values: np.ndarray, columns: list[str]) -> None:
        self.values, self.columns = values, columns

    @property
    def num_rows(self) -> int:
        return int(self.values.shape[0])


def test_row_blocks_are_logged_like_tables(make_logger: Any, store: Any, blobs: BlobStore) -> None:
    logger = make_logger(flush_rows=64)
    rng = np.random.default_rng(4)
    sent = []
    for i in range(150):
        values = rng.normal(size=(1 + i % 3, 2))
        sent.append(values)
        if i == 70:  # a table between blocks, and a block with other columns
            logger.log(
                request_ids="t",
                ts_ms=T0,
                model_version="m/1",
                features=pa.table({"a": [1.0], "b": [2.0]}),
                predictions=[0],
            )
            logger.log(
                request_ids="o",
                ts_ms=T0,
                model_version="m/1",
                features=_Rows(np.ones((1, 1)), ["z"]),
                predictions=[0],
            )
        logger.log(
            request_ids=f"r{i}",
            ts_ms=T0 + i,
            model_version="m/1",
            features=_Rows(values, ["a", "b"]),
            predictions=np.zeros(len(values)),
        )
    logger.close()
    table = read_inference_log("churn-api", store=store, blobstore=blobs, with_labels=False)
    got = table.to_pandas()
    blocks = got[got.request_id.str.startswith("r")]
    expected = np.concatenate(sent)
    np.testing.assert_array_equal(blocks[["a", "b"]].to_numpy(), expected)
    assert blocks.groupby("request_id", sort=False).size().tolist() == [len(v) for v in sent]
    assert got[got.request_id == "o"]["z"].tolist() == [1.0]
    assert got[got.request_id == "t"][["a", "b"]].to_numpy().tolist() == [[1.0, 2.0]]


def test_batches_with_row_ids_shadow_and_2d_outputs(
    make_logger: Any, store: Any, blobs: Any
) -> None:
    logger = make_logger()
    # Three requests answered together: one id per row, the rows of a request numbered.
    logger.log(
        request_ids=["a", "b", "a", "c"],
        ts_ms=T0,
        model_version="churn/3",
        features=pa.table({"x": [1.0, 2.0, 3.0, 4.0]}),
        predictions=np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]),
        shadow_version="churn/4",
        shadow_predictions=[0, 1, 0, 1],
    )
    logger.log(
        request_ids="d",
        ts_ms=T0 + 1,
        model_version="churn/3",
        features={"x": [5.0]},  # any table the reader accepts
        predictions=np.array([[0.3, 0.7]]),
    )
    logger.flush()
    t = read_inference_log("churn-api", store=store, blobstore=blobs, with_labels=False).to_pydict()
    assert t["request_id"] == ["a", "b", "a", "c", "d"]
    assert t["row"] == [0, 0, 1, 0, 0]
    assert t["prediction_0"] == [0.9, 0.2, 0.6, 0.5, 0.3]
    assert t["prediction_1"] == [0.1, 0.8, 0.4, 0.5, 0.7]
    assert t["shadow_version"] == ["churn/4"] * 4 + [None]
    assert t["shadow_prediction"] == [0, 1, 0, 1, None]


def test_schemas_of_several_versions_are_unified(make_logger: Any, store: Any, blobs: Any) -> None:
    logger = make_logger()
    logger.log(
        request_ids=["r1"],
        ts_ms=T0,
        model_version="churn/3",
        features=pa.table({"x": [1], "plan": ["a"]}),
        predictions=[0],
    )
    logger.flush()
    # A new version: x became float, plan is gone, tenure is new, the prediction is text.
    logger.log(
        request_ids=["r2"],
        ts_ms=T0 + 1,
        model_version="churn/4",
        features=pa.table({"x": [2.5], "tenure": [7]}),
        predictions=["yes"],
    )
    logger.flush()
    assert len(store.list_inference_chunks("churn-api")) == 2
    t = read_inference_log("churn-api", store=store, blobstore=blobs, with_labels=False)
    assert t.schema.field("x").type == pa.float64()
    assert t.schema.field("prediction").type == pa.string()
    d = t.to_pydict()
    assert d["x"] == [1.0, 2.5] and d["plan"] == ["a", None] and d["tenure"] == [None, 7]
    assert d["prediction"] == ["0", "yes"] and d["model_version"] == ["churn/3", "churn/4"]


def test_a_feature_with_a_reserved_name_is_kept_under_a_prefix(make_logger, store, blobs) -> None:
    logger = make_logger()
    logger.log(
        request_ids=["r1"],
        ts_ms=T0,
        model_version="m/1",
        features=pa.table({"ts": [3.0], "label": ["x"], "prediction_1": [1]}),
        predictions=[1],
    )
    logger.flush()
    t = read_inference_log("churn-api", store=store, blobstore=blobs, with_labels=False)
    assert {"features.ts", "features.label", "features.prediction_1"} <= set(t.column_names)
    assert t.column("features.ts").to_pylist() == [3.0]


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_sampling_keeps_whole_requests_at_the_given_rate(make_logger, store, blobs, rate) -> None:
    n = 3000
    logger = make_logger(sample=rate, seed=int(rate * 1000), flush_rows=1000)
    _log_requests(logger, n, rows=2)
    logger.close()
    t = read_inference_log("churn-api", store=store, blobstore=blobs, with_labels=False)
    ids = t.column("request_id").to_pylist()
    kept = len(set(ids))
    lo, hi = stats.binom.ppf(1e-6, n, rate), stats.binom.ppf(1 - 1e-6, n, rate)
    assert lo <= kept <= hi
    assert len(ids) == 2 * kept  # a request is kept or skipped whole
    assert logger.stats["rows_sampled_out"] == 2 * (n - kept)


def test_sampling_of_batches_keeps_whole_requests(make_logger, store, blobs) -> None:
    logger = make_logger(sample=0.5, seed=3)
    n_batches, per = 200, 10
    for b in range(n_batches):
        ids = [f"b{b}-{k // 2}" for k in range(per)]  # 5 requests of 2 rows per batch
        logger.log(
            request_ids=ids,
            ts_ms=T0 + b,
            model_version="m/1",
            features=pa.table({"x": np.arange(per, dtype=float)}),
            predictions=np.zeros(per),
        )
    logger.close()
    t = read_inference_log("churn-api", store=store, blobstore=blobs, with_labels=False)
    ids = t.column("request_id").to_pylist()
    kept = set(ids)
    total = n_batches * per // 2
    assert all(ids.count(r) == 2 for r in kept)
    assert stats.binom.ppf(1e-6, total, 0.5) <= len(kept) <= stats.binom.ppf(1 - 1e-6, total, 0.5)
    assert logger.stats["rows_sampled_out"] + logger.stats["rows_written"] == n_batches * per


def test_buffer_overflow_drops_and_counts_without_blocking(
    make_logger, store, blobs, caplog
) -> None:
    # Nothing flushes on its own (a long interval), so the buffer only fills.
    logger = make_logger(max_buffer_rows=100, flush_interval_s=3600, flush_rows=10**6)
    feats = pa.table({"x": [1.0, 2.0]})
    with caplog.at_level(logging.WARNING, logger="mloop.inference"):
        t = time.perf_counter()
        for i in range(80):
            logger.log(
                request_ids=[f"r{i}"],
                ts_ms=T0 + i,
                model_version="m/1",
                features=feats,
                predictions=[0, 1],
            )
        elapsed = time.perf_counter() - t
    s = logger.stats
    assert s["rows_logged"] == 100 and s["rows_dropped"] == 60 and s["rows_buffered"] == 100
    assert elapsed < 1.0  # it never waited for room
    assert sum("dropping rows" in r.message for r in caplog.records) == 1  # warned once, not 30x
    logger.close()
    t = read_inference_log("churn-api", store=store, blobstore=blobs, with_labels=False)
    assert t.column("request_id").to_pylist() == [f"r{i}" for i in range(50) for _ in range(2)]


def test_a_failed_write_keeps_the_rows_and_retries(store: Any, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "blobs").write_text("not a folder")  # the artifact store cannot be written
    blobs = BlobStore(root)
    logger = InferenceLogger("churn-api", store=store, blobstore=blobs, flush_interval_s=3600)
    _log_requests(logger, 10)
    with pytest.raises(StoreUnavailableError, match="10 rows could not be written"):
        logger.flush()
    assert logger.stats["write_errors"] == 1 and logger.stats["rows_buffered"] == 10
    _log_requests(logger, 5, start=10)  # logging goes on meanwhile
    (root / "blobs").unlink()  # the artifact store is back
    logger.flush()
    logger.close()
    assert logger.stats["rows_written"] == 15 and logger.stats["rows_dropped"] == 0
    t = read_inference_log("churn-api", store=store, blobstore=blobs, with_labels=False)
    assert t.column("request_id").to_pylist() == [f"r{i}" for i in range(15)]


def test_close_gives_up_after_its_timeout_and_counts_the_loss(store, tmp_path, caplog) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "blobs").write_text("not a folder")
    logger = InferenceLogger("churn-api", store=store, blobstore=BlobStore(root))
    _log_requests(logger, 7)
    with caplog.at_level(logging.WARNING, logger="mloop.inference"):
        logger.close(timeout_s=0.3)
    assert logger.stats["rows_dropped"] == 7 and logger.stats["rows_written"] == 0
    assert any("7 rows could not be written before close" in r.message for r in caplog.records)
    _log_requests(logger, 1)  # after close: dropped and counted, never an error
    assert logger.stats["rows_dropped"] == 8


def test_a_chunk_the_store_refuses_is_dropped_not_retried(make_logger, store, blobs) -> None:
    logger = make_logger(flush_interval_s=3600)
    _log_requests(logger, 3, version="v" * 400)  # longer than a model version key may be
    logger.flush()
    _log_requests(logger, 2, start=3)
    logger.flush()
    s = logger.stats
    assert s["rows_dropped"] == 3 and s["rows_written"] == 2 and s["write_errors"] == 1
    assert "model_versions" in s["last_error"]


def test_a_request_that_cannot_be_stored_is_skipped_alone(make_logger, store, blobs) -> None:
    logger = make_logger(flush_interval_s=3600)
    _log_requests(logger, 2)
    logger.log(
        request_ids=["not valid!"],
        ts_ms=T0,
        model_version="m/1",
        features=pa.table({"x": [1.0]}),
        predictions=[1],
    )
    _log_requests(logger, 2, start=2)
    logger.flush()
    assert logger.stats["rows_invalid"] == 1 and logger.stats["rows_written"] == 4
    t = read_inference_log("churn-api", store=store, blobstore=blobs, with_labels=False)
    assert t.column("request_id").to_pylist() == ["r0", "r1", "r2", "r3"]


def test_log_checks_its_arguments(make_logger: Any) -> None:
    logger = make_logger()
    feats = pa.table({"x": [1.0, 2.0]})
    ok = {
        "request_ids": ["r"],
        "ts_ms": T0,
        "model_version": "m/1",
        "features": feats,
        "predictions": [0, 1],
    }
    with pytest.raises(InvalidInputError, match="one id, or one per row"):
        logger.log(**{**ok, "request_ids": ["a", "b", "c"]})
    with pytest.raises(InvalidInputError, match="one output per row"):
        logger.log(**{**ok, "predictions": [0]})
    with pytest.raises(InvalidInputError, match="ts_ms"):
        logger.log(**{**ok, "ts_ms": 1.5})
    with pytest.raises(InvalidInputError, match="model_version"):
        logger.log(**{**ok, "model_version": 3})
    with pytest.raises(InvalidInputError, match="sample"):
        InferenceLogger("d", store=logger.store, blobstore=logger.blobstore, sample=1.5)
    with pytest.raises(InvalidInputError, match="flush_rows"):
        InferenceLogger("d", store=logger.store, blobstore=logger.blobstore, flush_rows=0)


def test_iter_chunks_from_a_cursor_and_time_ranges(make_logger, store, blobs) -> None:
    logger = make_logger(flush_interval_s=3600)
    for part in range(3):
        _log_requests(logger, 10, start=10 * part)
        logger.flush()
    chunks = list(iter_inference_chunks("churn-api", store=store, blobstore=blobs))
    assert [t.num_rows for _, t in chunks] == [10, 10, 10]
    first_id = chunks[0][0].id
    rest = list(
        iter_inference_chunks("churn-api", store=store, blobstore=blobs, after_chunk_id=first_id)
    )
    assert [c.id for c, _ in rest] == [c.id for c, _ in chunks[1:]]
    # since/until cut rows exactly, and read only the chunks that overlap.
    t = read_inference_log(
        "churn-api",
        store=store,
        blobstore=blobs,
        since=T0 + 5,
        until=T0 + 12,
        columns=["request_id", "x"],
        with_labels=False,
    )
    assert t.column_names == ["request_id", "x"]
    assert t.column("request_id").to_pylist() == [f"r{i}" for i in range(5, 12)]
    iso = read_inference_log(
        "churn-api",
        store=store,
        blobstore=blobs,
        with_labels=False,
        since="2023-11-14T22:13:20.025Z",
    )
    assert iso.num_rows == 5
    with pytest.raises(InvalidInputError, match="nope"):
        read_inference_log("churn-api", store=store, blobstore=blobs, columns=["nope"])


def test_an_empty_log_reads_as_an_empty_table(store, blobs) -> None:
    t = read_inference_log("nothing-yet", store=store, blobstore=blobs)
    assert t.num_rows == 0
    assert {"request_id", "ts", "prediction", "label"} <= set(t.column_names)
