"""Reading the inference log never aborts the process at interpreter exit.

``pq.read_table`` scans through Arrow's dataset API on its CPU thread pool, and the tail of the
scan's callback chain may drop the scan's input on a pool thread after ``read_table`` returned.
When that input wrapped a Python ``bytes`` object, the pool thread had to take the GIL to release
it; if the script ended meanwhile, CPython ended the waiting thread with ``pthread_exit`` inside a
``noexcept`` destructor: "terminate called without an active exception", exit code 134. The
reader now hands Arrow an Arrow-owned copy (``mloop.tables.read_parquet_bytes``).

The race needs the main thread to keep the GIL from the moment the read returns until
``Py_FinalizeEx`` starts (so the pool thread is still waiting then), and a finalization long
enough for the waiter's 5 ms GIL timeout to expire inside it. Importing PyTorch (skops' trusted
types walk scikit-learn, which imports it) happened to supply both; here a big heap makes the
finalizing garbage collection long, and a few ms of C work holding the GIL follow the read. Before
the fix about half of these children aborted; the chance that all of them pass is below 1e-3.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mloop.artifacts import BlobStore
from mloop.config import Settings
from mloop.inference import InferenceLogger, read_inference_log
from mloop.store import open_store

CHILD = textwrap.dedent(
    """
    import sys, time
    from mloop.inference import read_inference_log

    sys.setswitchinterval(0.02)  # a thread waiting for the GIL asks for it after 20 ms
    heap = [[i] for i in range(1_000_000)]  # finalization's full collection then takes ~0.1 s
    t = time.perf_counter()
    sum(range(100_000))  # C code: holds the GIL and never checks for a drop request
    n = max(1, int(100_000 * 0.017 / (time.perf_counter() - t)))
    table = read_inference_log("exit-api", with_labels=False)
    sum(range(n))  # ~17 ms: Py_FinalizeEx starts before a waiting pool thread asks for the GIL
    """
)
RUNS = 16


@pytest.mark.slow
@pytest.mark.no_mutation  # the reader runs in child processes, which never see a mutant
def test_reading_the_log_never_aborts_at_exit(mloop_home: Path) -> None:
    settings = Settings.from_env()
    store = open_store(settings)
    logger = InferenceLogger("exit-api", store=store, blobstore=BlobStore(settings.artifact_uri))
    for i in range(3):
        logger.log(
            request_ids=[f"r{i}"],
            ts_ms=1_700_000_000_000 + i,
            model_version="m/1",
            features=pa.table({"x": [0.5, 1.5]}),
            predictions=np.array([0, 1]),
        )
    logger.close(timeout_s=10)
    assert read_inference_log("exit-api", with_labels=False).num_rows == 6

    failures = []
    for _ in range(RUNS):
        proc = subprocess.run(
            [sys.executable, "-c", CHILD],
            capture_output=True,
            timeout=120,
            env=os.environ.copy(),
        )
        if proc.returncode != 0:
            failures.append((proc.returncode, proc.stderr.decode(errors="replace")[-500:]))
    assert not failures, f"{len(failures)} of {RUNS} children failed: {failures}"
