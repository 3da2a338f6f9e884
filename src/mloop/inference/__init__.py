"""The inference log: predictions recorded off the request path as Parquet chunks in the artifact
store, indexed in the metadata store, joined with labels that arrive later.

:class:`InferenceLogger` buffers what a server predicted and writes it from a background thread,
in chunks of about ``flush_rows`` rows, at least every ``flush_interval_s``. **A crash loses at
most the last unflushed batch**: the rows logged since the last successful flush, normally at most
``flush_interval_s`` of traffic or ``flush_rows`` rows (more only while the store or artifact
store is failing, up to ``max_buffer_rows``). Everything flushed before is in the log, whole. :func:`read_inference_log` reads a
deployment's log back as one table with its labels (:func:`log_labels`) joined;
:func:`iter_inference_chunks` reads it chunk by chunk from a cursor.

Examples
--------
>>> import tempfile, pyarrow as pa
>>> from mloop.artifacts import BlobStore
>>> from mloop.store import create_store
>>> from mloop.inference import InferenceLogger, read_inference_log, log_labels
>>> tmp = tempfile.mkdtemp()
>>> store, blobs = create_store(f"sqlite:///{tmp}/m.db"), BlobStore(f"{tmp}/artifacts")
>>> with InferenceLogger("churn-api", store=store, blobstore=blobs) as logger:
...     logger.log(request_ids=["r1"], ts_ms=1_700_000_000_000, model_version="churn/3",
...                features=pa.table({"tenure": [12.0]}), predictions=[1])
>>> log_labels("churn-api", {"r1": 0}, store=store)
1
>>> read_inference_log("churn-api", store=store, blobstore=blobs,
...                    columns=["request_id", "tenure", "prediction"]).to_pylist()
[{'request_id': 'r1', 'tenure': 12.0, 'prediction': 1, 'label': 0}]
"""

from __future__ import annotations

from mloop.inference._logger import InferenceLogger
from mloop.inference._reader import (
    iter_inference_chunks,
    log_labels,
    read_inference_chunk,
    read_inference_log,
    to_ms,
)

__all__ = [
    "InferenceLogger",
    "iter_inference_chunks",
    "log_labels",
    "read_inference_chunk",
    "read_inference_log",
    "to_ms",
]
