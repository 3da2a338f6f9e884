"""Deliver on one background thread behind a bounded queue, so no caller sleeps between retries."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

import httpx

from mloop.delivery._model import DeliveryRequest, DeliveryResult, RetryPolicy, _positive, _safe_url
from mloop.delivery._send import deliver
from mloop.errors import InvalidInputError

__all__ = ["BackgroundDeliverer"]

log = logging.getLogger("mloop.delivery")


class _Generation:
    """One worker thread's life: closing it stops that thread even if a new one starts."""

    def __init__(self) -> None:
        self.stopping = False
        self.cancel = threading.Event()


_LIVE: weakref.WeakSet[BackgroundDeliverer] = weakref.WeakSet()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


def _flush_at_exit() -> None:
    for deliverer in list(_LIVE):
        deliverer.close(timeout=deliverer.exit_timeout_s)


class BackgroundDeliverer:
    """Deliver requests on one background thread, in order, without blocking the submitter.

    Parameters
    ----------
    policy : RetryPolicy, optional
    client : httpx.Client, optional
        Shared by every delivery; by default the worker owns one.
    maxsize : int, default 1000
        Requests waiting at most; beyond it a request is dropped (logged, counted in
        :attr:`dropped`, its future resolved as not delivered) rather than blocking the caller.
    on_result : callable, optional
        Called on the worker thread with ``(request, result)`` after each request.
    exit_timeout_s : float, default 5.0
        How long interpreter exit waits for queued requests.
    name : str, default "mloop-delivery"
        The worker thread's name.
    """

    def __init__(
        self,
        *,
        policy: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        maxsize: int = 1000,
        on_result: Callable[[DeliveryRequest, DeliveryResult], None] | None = None,
        exit_timeout_s: float = 5.0,
        name: str = "mloop-delivery",
    ) -> None:
        if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 1:
            raise InvalidInputError(f"`maxsize` must be an int >= 1; got {maxsize!r}.")
        _positive("exit_timeout_s", exit_timeout_s, allow_zero=True)
        if on_result is not None and not callable(on_result):
            raise InvalidInputError(f"`on_result` must be callable; got {on_result!r}.")
        self.policy = RetryPolicy() if policy is None else policy
        self.maxsize = maxsize
        self.exit_timeout_s = float(exit_timeout_s)
        self.name = name
        self._client = client
        self._on_result = on_result
        self._init_state()

    def _init_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._items: deque[tuple[DeliveryRequest, Future[DeliveryResult]]] = deque()
        self._unfinished = 0
        self._dropped = 0
        self._thread: threading.Thread | None = None
        self._generation = _Generation()
        self._pid = os.getpid()

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def pending(self) -> int:
        """Requests queued or being delivered."""
        return self._unfinished

    @property
    def dropped(self) -> int:
        """Requests refused because the queue was full."""
        return self._dropped

    def submit(self, request: DeliveryRequest) -> Future[DeliveryResult]:
        """Queue ``request`` and return at once; the future resolves to its :class:`DeliveryResult`."""
        if not isinstance(request, DeliveryRequest):
            raise InvalidInputError(
                f"`request` must be a DeliveryRequest; got {type(request).__name__}."
            )
        if self._pid != os.getpid():  # a forked child: the parent delivers what it had queued
            self._init_state()
        future: Future[DeliveryResult] = Future()
        with self._cond:
            full = len(self._items) >= self.maxsize
            if not full:
                self._items.append((request, future))
                self._unfinished += 1
                self._start_locked()
                self._cond.notify_all()
            else:
                self._dropped += 1
        if full:
            log.warning(
                "delivery queue full (%d waiting): dropped %s to %s",
                self.maxsize,
                request.label or "a request",
                _safe_url(request.url),
            )
            future.set_result(
                DeliveryResult(
                    request.url, False, None, 0, 0.0, f"dropped: the queue is full ({self.maxsize})"
                )
            )
        return future

    def _start_locked(self) -> None:
        global _exit_hook_registered
        if self._thread is not None and self._thread.is_alive() and not self._generation.stopping:
            return
        self._generation = _Generation()
        self._thread = threading.Thread(
            target=self._work, args=(self._generation,), name=self.name, daemon=True
        )
        self._thread.start()
        _LIVE.add(self)
        with _exit_hook_lock:
            if not _exit_hook_registered:
                atexit.register(_flush_at_exit)
                _exit_hook_registered = True

    def _work(self, generation: _Generation) -> None:
        http = self._client or httpx.Client(timeout=self.policy.timeout_s)
        try:
            while True:
                with self._cond:
                    while not self._items and not generation.stopping:
                        self._cond.wait()
                    if generation.stopping:
                        return
                    request, future = self._items.popleft()
                try:
                    result = deliver(
                        request, policy=self.policy, client=http, cancel=generation.cancel
                    )
                except Exception as exc:  # a boundary: the worker must outlive any one request
                    log.exception("delivery to %s failed unexpectedly", _safe_url(request.url))
                    result = DeliveryResult(
                        request.url, False, None, 0, 0.0, f"{type(exc).__name__}: {exc}"
                    )
                self._finish(request, future, result)
        finally:
            if self._client is None:
                http.close()

    def _finish(
        self, request: DeliveryRequest, future: Future[DeliveryResult], result: DeliveryResult
    ) -> None:
        if not result.ok:
            log.warning(
                "could not deliver %s to %s after %d attempt(s) in %.1fs: %s",
                request.label or "a request",
                _safe_url(request.url),
                result.attempts,
                result.elapsed_s,
                result.error,
            )
        try:
            if self._on_result is not None:
                self._on_result(request, result)
        except Exception:  # a boundary: a failing callback must not stop deliveries
            log.exception("delivery on_result callback failed")
        finally:
            future.set_result(result)
            with self._cond:
                self._unfinished -= 1
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued request is delivered or given up; ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._unfinished == 0, timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush for at most ``timeout`` seconds, then stop the worker.

        Requests still queued after the timeout are resolved as not delivered, and a wait between
        retries is cut short. Returns whether everything was delivered (or given up) in time. A
        later :meth:`submit` starts a new worker.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        done = self.flush(timeout)
        with self._cond:
            generation, thread = self._generation, self._thread
            generation.stopping = True
            if not done:
                generation.cancel.set()
            abandoned = list(self._items)
            self._items.clear()
            self._unfinished -= len(abandoned)
            self._cond.notify_all()
        for request, future in abandoned:
            future.set_result(
                DeliveryResult(request.url, False, None, 0, 0.0, "not delivered: closed first")
            )
        if abandoned:
            log.warning("delivery closed with %d request(s) not sent", len(abandoned))
        if thread is not None and thread is not threading.current_thread():
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        _LIVE.discard(self)
        return done and not abandoned

    def __enter__(self) -> BackgroundDeliverer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"BackgroundDeliverer(pending={self.pending}, dropped={self.dropped}, "
            f"running={self.running})"
        )
