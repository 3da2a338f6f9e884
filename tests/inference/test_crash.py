"""A server killed with SIGKILL loses at most the rows its logger had not flushed yet."""

from __future__ import annotations

import mmap
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from mloop.artifacts import BlobStore
from mloop.inference import read_inference_log
from mloop.store import create_store

TESTS = Path(__file__).parents[1]  # the child registers the suite's backends from here

# The child logs 2-row requests r0, r1, ... as fast as it can (with short pauses), and after each
# log() publishes, through a shared file, how many requests it logged and how many rows its logger
# reports written (which the logger counts only after the chunk's index row is committed).
CHILD = textwrap.dedent(
    """
    import mmap, struct, sys, time
    import numpy as np, pyarrow as pa
    from mloop.artifacts import BlobStore
    from mloop.inference import InferenceLogger
    from mloop.store import create_store

    uri, artifacts, progress, tests = sys.argv[1:5]
    sys.path.insert(0, tests)
    import conftest  # registers the suite's own backends (asgi+ ...), as the session does
    f = open(progress, "r+b")
    shared = mmap.mmap(f.fileno(), 16)
    logger = InferenceLogger("crash-api", store=create_store(uri), blobstore=BlobStore(artifacts),
                             flush_interval_s=0.05)
    feats = pa.table({"x": [0.0, 1.0]})
    pred = np.array([0, 1])
    i = 0
    while True:
        logger.log(request_ids=[f"r{i}"], ts_ms=1_700_000_000_000 + i, model_version="m/1",
                   features=feats, predictions=pred)
        i += 1
        struct.pack_into("qq", shared, 0, i, logger.rows_written)
        if i % 20 == 0:
            time.sleep(0.002)
    """
)


@pytest.mark.no_mutation  # the logger runs in a child process, which never sees a mutant
def test_sigkill_loses_at_most_the_unflushed_buffer(store_uri: str, tmp_path: Path) -> None:
    progress = tmp_path / "progress"
    progress.write_bytes(b"\0" * 16)
    artifacts = tmp_path / "artifacts"
    store: Any = create_store(store_uri)  # creates the schema before the child starts
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, store_uri, str(artifacts), str(progress), str(TESTS)],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while len(store.list_inference_chunks("crash-api")) < 4:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the child wrote no 4 chunks within 120 s"
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
    with open(progress, "r+b") as f, mmap.mmap(f.fileno(), 16) as shared:
        logged, written = struct.unpack_from("qq", shared, 0)
    assert written > 0 and logged * 2 > written

    table = read_inference_log(
        "crash-api", store=store, blobstore=BlobStore(artifacts), with_labels=False
    )
    got = table.column("request_id").to_pylist()
    n = len(got) // 2
    # Whole chunks only, written in order: exactly requests r0 .. r(n-1), each with both rows.
    assert got == [f"r{i}" for i in range(n) for _ in range(2)]
    assert table.column("row").to_pylist() == [0, 1] * n
    # Nothing the logger had written is missing; what is missing was still in its buffer.
    assert len(got) >= written
    assert logged * 2 - len(got) <= logged * 2 - written
    store.close()
