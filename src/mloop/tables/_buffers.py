"""Bytes held by Python, handed to Arrow without tying Arrow's threads to the interpreter.

Wrapping a ``bytes`` object for Arrow (``pa.BufferReader(data)``, ``pa.py_buffer(data)``,
``io.BytesIO(data)``) makes a buffer that keeps a reference to the Python object, and dropping
that reference needs the GIL. ``pyarrow.parquet.read_table`` scans through the dataset API on
Arrow's CPU thread pool, and the tail of its async callback chain can release the scan (the
fragment, its ``BufferReader``, the Python-owned buffer) on a pool thread *after* ``read_table``
has returned. That thread then waits for the GIL; if the interpreter starts finalizing meanwhile
(the script ended), CPython ends the waiting thread with ``pthread_exit``, whose unwinding through
the buffer's ``noexcept`` destructor calls ``std::terminate``: "terminate called without an active
exception", exit code 134, at interpreter exit. A copy into memory that Arrow allocates and owns
has no Python object behind it, so whichever thread frees it needs no GIL.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

__all__ = ["arrow_buffer", "read_parquet_bytes"]


def arrow_buffer(data: bytes | bytearray | memoryview) -> pa.Buffer:
    """``data`` copied into a buffer that Arrow allocates and owns (no reference to ``data``).

    Use it instead of ``pa.py_buffer(data)`` / ``pa.BufferReader(data)`` / ``io.BytesIO(data)``
    whenever Arrow may read the bytes on its thread pools (Parquet, CSV, JSON readers).

    Examples
    --------
    >>> buf = arrow_buffer(b"abc")
    >>> buf.to_pybytes(), buf.size
    (b'abc', 3)
    """
    view = memoryview(data).cast("B")
    buf = pa.allocate_buffer(view.nbytes)
    memoryview(buf).cast("B")[:] = view
    return buf


def read_parquet_bytes(data: bytes | bytearray | memoryview, **options: Any) -> pa.Table:
    """The table in a Parquet file held in memory, read from an Arrow-owned copy of ``data``.

    ``options`` go to :func:`pyarrow.parquet.read_table`.
    """
    import pyarrow.parquet as pq  # on first read, not when mloop is imported

    return pq.read_table(pa.BufferReader(arrow_buffer(data)), **options)
