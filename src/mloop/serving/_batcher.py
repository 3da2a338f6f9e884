"""Micro-batching: concurrent requests predicted in one model call, counted in rows.

Requests queue as validated Arrow tables. The batcher takes the oldest request, then waits up to
``max_wait_ms`` for more of the same model (and the same inference parameters) until
``max_batch_size`` rows are gathered; it never merges past that size, and a request larger than it
is cut into pieces of at most that size, predicted in turn and joined back in order. The model call
runs in one worker thread, so the event loop goes on reading requests meanwhile. When more than
``max_queue_rows`` rows are waiting, a new request is refused at once (503 with ``Retry-After``)
rather than queued past its deadline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ._model import ServedModel
from ._payload import Block, ServingError

__all__ = ["Batcher", "join_outputs", "slice_output"]

log = logging.getLogger("mloop.serving")


@dataclass(eq=False)
class _Piece:
    model: ServedModel
    table: pa.Table | Block
    params_key: Any
    params: dict[str, Any] | None
    future: asyncio.Future[Any]
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = int(self.table.num_rows)


def slice_output(out: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of a model's output (array, frame, series, table or list)."""
    iloc = getattr(out, "iloc", None)
    if iloc is not None:
        return iloc[start:stop]
    if isinstance(out, pa.Table):
        return out.slice(start, stop - start)
    if isinstance(out, dict):
        return {k: slice_output(v, start, stop) for k, v in out.items()}
    return out[start:stop]


def join_outputs(parts: list[Any]) -> Any:
    """Outputs of consecutive pieces of one request, joined in order."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(parts)
    if isinstance(first, pa.Table):
        return pa.concat_tables(parts)
    if hasattr(first, "iloc"):
        import pandas as pd

        return pd.concat(parts)
    if isinstance(first, dict):
        return {k: join_outputs([p[k] for p in parts]) for k in first}
    out: list[Any] = []
    for p in parts:
        out.extend(p)
    return out


class Batcher:
    """Gathers pieces from the event loop and predicts them in batches in one worker thread."""

    def __init__(
        self,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue_rows: int | None = None,
        on_batch: Any = None,
        inline_below_s: float = 0.0,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self.max_batch_size = int(max_batch_size)
        self.max_wait_s = max(float(max_wait_ms), 0.0) / 1000.0
        self.max_queue_rows = int(max_queue_rows or 64 * self.max_batch_size)
        self._queue: deque[_Piece] = deque()
        self.queued_rows = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mloop-batch")
        self._on_batch = on_batch
        self.batches = 0
        self.arriving = 0  # requests started and not yet queued (see arrive/depart)
        self.inline_below_s = inline_below_s

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mloop-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for piece in self._queue:
            if not piece.future.done():
                piece.future.set_exception(
                    ServingError(503, "TEMPORARILY_UNAVAILABLE", "shutting down")
                )
        self._queue.clear()
        self._executor.shutdown(wait=True)

    async def predict(
        self,
        model: ServedModel,
        table: pa.Table | Block,
        params: dict[str, Any] | None,
        token: list[bool] | None = None,
    ) -> Any:
        """Queue one request's validated rows; its predictions, in order."""
        if token is not None:
            self.depart(token)
        n = int(table.num_rows)
        if self.queued_rows + n > self.max_queue_rows and self.queued_rows > 0:
            raise ServingError(
                503,
                "TEMPORARILY_UNAVAILABLE",
                f"The server is at capacity ({self.queued_rows} rows waiting); retry shortly.",
                headers={"Retry-After": "1"},
            )
        loop = asyncio.get_running_loop()
        key = None if not params else tuple(sorted((k, repr(v)) for k, v in params.items()))
        futures = []
        step = self.max_batch_size
        for start in range(0, max(n, 1), step):
            fut: asyncio.Future[Any] = loop.create_future()
            piece = _Piece(model, _slice_rows(table, start, step), key, params, fut)
            self._queue.append(piece)
            self.queued_rows += piece.rows
            futures.append(fut)
        assert self._wake is not None
        self._wake.set()
        parts = [await f for f in futures]
        return join_outputs(parts)

    def _take(self) -> list[_Piece]:
        """The oldest piece and the following ones of the same model and params, up to the size."""
        first = self._queue.popleft()
        batch, rows = [first], first.rows
        skipped: list[_Piece] = []
        while self._queue and rows < self.max_batch_size:
            nxt = self._queue[0]
            if nxt.model is not first.model or nxt.params_key != first.params_key:
                skipped.append(self._queue.popleft())
                continue
            if rows + nxt.rows > self.max_batch_size:
                break
            batch.append(self._queue.popleft())
            rows += nxt.rows
        self._queue.extendleft(reversed(skipped))
        for p in batch:
            self.queued_rows -= p.rows
        return batch

    # ------------------------------------------------------------------ arrivals
    def arrive(self) -> list[bool]:
        """A request has started (its body is being read and checked): a batch being gathered
        may wait for it. Returns its token for :meth:`predict` or :meth:`depart`."""
        self.arriving += 1
        return [True]

    def depart(self, token: list[bool]) -> None:
        """The request will not be queued (or just was): stop waiting for it."""
        if token and token[0]:
            token[0] = False
            self.arriving -= 1
            if self._wake is not None:
                self._wake.set()

    def _expire(self, flag: list[bool]) -> None:
        flag[0] = True
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            # Gather while requests that have already arrived are still being read, up to the
            # size and the wait: a lone request is not held back for traffic that may not come.
            if self.queued_rows < self.max_batch_size and self.arriving > 0 and self.max_wait_s:
                expired = [False]
                timer = loop.call_later(self.max_wait_s, self._expire, expired)
                while (
                    self.queued_rows < self.max_batch_size and self.arriving > 0 and not expired[0]
                ):
                    self._wake.clear()
                    await self._wake.wait()
                timer.cancel()
            batch = self._take()
            live = [p for p in batch if not p.future.done()]  # a timed-out request is skipped
            if not live:
                continue
            try:
                first = live[0]
                if isinstance(first.table, Block) and first.model.cost_s[0] < self.inline_below_s:
                    out = _predict_batch(live)  # cheaper than a hand-off to the thread
                    await asyncio.sleep(0)  # let arrived requests be read before the next batch
                else:
                    out = await loop.run_in_executor(self._executor, _predict_batch, live)
            except BaseException as exc:  # delivered to every request of the batch
                for p in live:
                    if not p.future.done():
                        p.future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            self.batches += 1
            if self._on_batch is not None:
                self._on_batch(sum(p.rows for p in live))
            offset = 0
            for p in live:
                if not p.future.done():
                    p.future.set_result(slice_output(out, offset, offset + p.rows))
                offset += p.rows


def _slice_rows(data: pa.Table | Block, start: int, n: int) -> pa.Table | Block:
    if isinstance(data, Block):
        return Block(data.values[start : start + n], data.columns, None)
    return data.slice(start, n)


def _predict_batch(pieces: list[_Piece]) -> Any:
    first = pieces[0]
    if len(pieces) == 1:
        data = first.table
    elif all(isinstance(p.table, Block) for p in pieces):
        data = Block.concat([p.table for p in pieces if isinstance(p.table, Block)])
    else:
        tables = [p.table if isinstance(p.table, pa.Table) else p.table.to_table() for p in pieces]
        data = pa.concat_tables(tables, promote_options="permissive")
    return first.model.predict(data, params=first.params)
