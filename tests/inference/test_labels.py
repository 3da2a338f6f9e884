"""Delayed labels are joined to the logged predictions, through the SDK and the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

import mloop
from mloop.artifacts import BlobStore
from mloop.config import Settings
from mloop.inference import InferenceLogger, iter_inference_chunks, log_labels, read_inference_log
from mloop.store import open_store

T0 = 1_700_000_000_000


def _log(logger: InferenceLogger, ids: list[str]) -> None:
    for i, rid in enumerate(ids):
        logger.log(
            request_ids=[rid],
            ts_ms=T0 + i,
            model_version="churn/3",
            features=pa.table({"x": [float(i)]}),
            predictions=[i % 2],
        )


def test_labels_are_joined_on_request_id(make_logger: Any, store: Any, blobs: BlobStore) -> None:
    logger = make_logger()
    _log(logger, [f"r{i}" for i in range(6)])
    logger.flush()
    assert log_labels("churn-api", {"r0": 1, "r2": 0}, store=store) == 2
    assert log_labels("churn-api", [("r3", 1), ("r2", 1)], store=store) == 2  # r2 relabelled
    t = read_inference_log("churn-api", store=store, blobstore=blobs)
    assert t.column("request_id").to_pylist() == [f"r{i}" for i in range(6)]
    assert t.column("label").to_pylist() == [1, None, 1, 1, None, None]
    # Per chunk too, and only for the deployment the labels were logged for.
    ((_chunk, part),) = iter_inference_chunks(
        "churn-api", store=store, blobstore=blobs, with_labels=True, columns=["request_id"]
    )
    assert part.column_names == ["request_id", "label"]
    assert part.column("label").to_pylist() == [1, None, 1, 1, None, None]
    other = make_logger("other-api")
    _log(other, ["r0"])
    other.flush()
    assert read_inference_log("other-api", store=store, blobstore=blobs)["label"].to_pylist() == [
        None
    ]


def test_labels_of_several_types_read_as_text(make_logger, store, blobs) -> None:
    logger = make_logger()
    _log(logger, ["a", "b", "c"])
    logger.flush()
    log_labels("churn-api", {"a": 1, "b": "churned", "c": True}, store=store)
    labels = read_inference_log("churn-api", store=store, blobstore=blobs)["label"]
    assert labels.type == pa.string()
    assert labels.to_pylist() == ["1", "churned", "True"]


def test_mloop_log_labels_uses_the_environment(mloop_home: Path) -> None:
    settings = Settings.from_env()
    store = open_store(settings)
    blobs = BlobStore(settings.artifact_uri)
    with InferenceLogger("churn-api", store=store, blobstore=blobs) as logger:
        _log(logger, ["q1", "q2"])
    assert mloop.log_labels("churn-api", {"q2": 0}) == 1
    t = read_inference_log("churn-api")  # the store and artifact store of MLOOP_HOME
    assert t.column("label").to_pylist() == [None, 0]
    assert Path(settings.artifact_uri).is_relative_to(mloop_home.absolute())
