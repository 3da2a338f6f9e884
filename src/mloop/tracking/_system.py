"""Background sampling of system metrics (CPU, memory, disk, network, GPU) into ``system/*`` keys.

A run starts one :class:`SystemMetricsSampler` and hands it a ``log_fn`` (normally ``run.log``). The
sampler thread wakes every ``interval_s`` seconds, reads psutil (and NVML when a GPU is present) and
calls ``log_fn`` with one flat dict of floats. It waits on an :class:`threading.Event`, so
:meth:`SystemMetricsSampler.stop` returns within milliseconds rather than up to one interval.

Nothing here may hurt training: a sample or a ``log_fn`` call that fails is logged once as a warning
and the thread carries on; GPU support is optional (``pip install "mloop[gpu]"``) and its absence is
logged once at debug level.

Units: percentages are 0-100 (``system/process_cpu_percent`` is 0-100 per core, so up to
100 x cores, as ``top`` shows it); sizes are mebibytes (2**20 bytes), suffixed ``_mb``; disk and
network I/O are cumulative since :meth:`SystemMetricsSampler.start`, as MLflow reports them.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import Any

import psutil

from mloop.errors import InvalidInputError

__all__ = ["SystemMetricsSampler"]

_log = logging.getLogger(__name__)
_MB = float(2**20)

LogFn = Callable[[dict[str, float]], Any]


class SystemMetricsSampler:
    """Sample system metrics on a daemon thread and pass them to ``log_fn``.

    Parameters
    ----------
    log_fn : callable
        Called from the sampler thread as ``log_fn(metrics)`` with a ``dict[str, float]``; it must be
        thread-safe and should not block (``Run.log`` qualifies).
    interval_s : float, default 10.0
        Seconds between samples; the first sample is taken one interval after :meth:`start`.
    gpu : bool, default True
        Also sample NVIDIA GPUs through NVML (package ``nvidia-ml-py``) when it is installed and a
        GPU is present; otherwise no GPU keys are logged.
    disk_path : str or path-like, optional
        A path on the file system whose usage is reported as ``system/disk_usage_percent``;
        defaults to the working directory at construction.

    Notes
    -----
    Keys logged at every sample (those psutil cannot read on a platform are left out):

    ``system/cpu_percent``, ``system/process_cpu_percent``, ``system/memory_percent``,
    ``system/memory_used_mb``, ``system/process_rss_mb``, ``system/disk_read_mb``,
    ``system/disk_write_mb``, ``system/net_sent_mb``, ``system/net_recv_mb``,
    ``system/disk_usage_percent``; and for each GPU ``i``: ``system/gpu_{i}_utilization_percent``,
    ``system/gpu_{i}_memory_percent``, ``system/gpu_{i}_memory_used_mb``,
    ``system/gpu_{i}_temperature_c``, ``system/gpu_{i}_power_w``.

    Examples
    --------
    >>> samples = []
    >>> sampler = SystemMetricsSampler(samples.append, interval_s=0.05, gpu=False).start()
    >>> import time; time.sleep(0.2)
    >>> sampler.stop()
    >>> samples[0]["system/memory_percent"] > 0
    True
    """

    def __init__(
        self,
        log_fn: LogFn,
        *,
        interval_s: float = 10.0,
        gpu: bool = True,
        disk_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if not callable(log_fn):
            raise InvalidInputError(f"`log_fn` must be callable; got {type(log_fn).__name__}.")
        if (
            isinstance(interval_s, bool)
            or not isinstance(interval_s, (int, float))
            or not math.isfinite(interval_s)
            or interval_s <= 0
        ):
            raise InvalidInputError(
                f"`interval_s` must be a positive, finite number of seconds; got {interval_s!r}."
            )
        self.log_fn = log_fn
        self.interval_s = float(interval_s)
        self.gpu = gpu
        self.disk_path = os.fspath(disk_path) if disk_path is not None else os.getcwd()
        self.samples_logged = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()
        self._disk0: Any = None
        self._net0: Any = None
        self._nvml: _Nvml | None = None
        self._warned: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the sampler thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> SystemMetricsSampler:
        """Start the sampler thread (a no-op when it already runs) and return ``self``."""
        if self.running:
            return self
        self._stop.clear()
        self._reset_baselines()
        self._thread = threading.Thread(target=self._run, name="mloop-system-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for it (at most ``timeout`` seconds); safe to call twice."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                _log.warning(
                    "system metrics thread did not stop within %.1f s (a log call is slow); "
                    "it is a daemon thread and will not keep the process alive",
                    timeout,
                )
        self._thread = None

    def __enter__(self) -> SystemMetricsSampler:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- sampling --------------------------------------------------------------------------------

    def sample(self) -> dict[str, float]:
        """Take one sample now and return it (without calling ``log_fn``).

        CPU percentages cover the time since the previous sample taken on the same thread (since
        :meth:`start` for the first one); I/O counters are cumulative since :meth:`start` (or since
        the first sample when the sampler was never started).

        Returns
        -------
        dict of str to float
            The metrics listed in the class notes.
        """
        if self._disk0 is None and self._net0 is None:
            self._reset_baselines()
        metrics: dict[str, float] = {
            "system/cpu_percent": float(psutil.cpu_percent(interval=None)),
        }
        metrics.update(self._guarded("process", self._process_metrics))
        vm = psutil.virtual_memory()
        metrics["system/memory_percent"] = float(vm.percent)
        metrics["system/memory_used_mb"] = vm.used / _MB
        metrics.update(self._guarded("disk", self._disk_metrics))
        metrics.update(self._guarded("net", self._net_metrics))
        if self.gpu:
            if self._nvml is None:
                self._nvml = _Nvml.open()
            metrics.update(self._nvml.sample())
        return metrics

    def _run(self) -> None:
        # Prime the per-thread CPU counters so the first sample covers one interval, not zero time.
        try:
            psutil.cpu_percent(interval=None)
            self._process.cpu_percent(interval=None)
        except (psutil.Error, OSError) as exc:
            _log.debug("could not prime CPU counters: %s", exc)
        try:
            while not self._stop.wait(self.interval_s):
                self._tick()
        finally:
            if self._nvml is not None:
                self._nvml.close()
                self._nvml = None

    def _tick(self) -> None:
        # The thread boundary: nothing may escape into the user's process, so failures are broad,
        # logged once per kind with a traceback, and sampling continues.
        try:
            metrics = self.sample()
        except Exception:
            self._warn_once("sample", "sampling system metrics failed; will keep trying")
            return
        if not metrics or self._stop.is_set():
            return
        try:
            self.log_fn(metrics)
        except Exception:
            self._warn_once("log", "logging system metrics failed; will keep trying")
            return
        self.samples_logged += 1

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            _log.warning(message, exc_info=True)
        else:
            _log.debug(message, exc_info=True)

    def _guarded(self, kind: str, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
        # One failing source (e.g. /proc/diskstats unreadable in a container) drops only its keys.
        try:
            return fn()
        except (psutil.Error, OSError, AttributeError, ValueError) as exc:
            if kind not in self._warned:
                self._warned.add(kind)
                _log.warning("cannot read %s metrics (%s); leaving them out", kind, exc)
            return {}

    def _reset_baselines(self) -> None:
        self._disk0 = _read_or_none(psutil.disk_io_counters)
        self._net0 = _read_or_none(psutil.net_io_counters)

    def _process_metrics(self) -> dict[str, float]:
        with self._process.oneshot():
            return {
                "system/process_cpu_percent": float(self._process.cpu_percent(interval=None)),
                "system/process_rss_mb": self._process.memory_info().rss / _MB,
            }

    def _disk_metrics(self) -> dict[str, float]:
        metrics = {"system/disk_usage_percent": float(psutil.disk_usage(self.disk_path).percent)}
        now = psutil.disk_io_counters()
        if now is not None and self._disk0 is not None:
            # Counters can wrap or reset (a disk removed); never report negative I/O.
            metrics["system/disk_read_mb"] = max(0, now.read_bytes - self._disk0.read_bytes) / _MB
            metrics["system/disk_write_mb"] = (
                max(0, now.write_bytes - self._disk0.write_bytes) / _MB
            )
        return metrics

    def _net_metrics(self) -> dict[str, float]:
        now = psutil.net_io_counters()
        if now is None or self._net0 is None:
            return {}
        return {
            "system/net_sent_mb": max(0, now.bytes_sent - self._net0.bytes_sent) / _MB,
            "system/net_recv_mb": max(0, now.bytes_recv - self._net0.bytes_recv) / _MB,
        }


def _read_or_none(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (psutil.Error, OSError, RuntimeError) as exc:
        _log.debug("%s unavailable: %s", getattr(fn, "__name__", fn), exc)
        return None


class _Nvml:
    """NVML handles for every GPU, or nothing when NVML or a GPU is missing."""

    def __init__(self, module: ModuleType | None, handles: list[Any]) -> None:
        self._nvml = module
        self._handles = handles
        self._unsupported: set[tuple[int, str]] = set()

    @classmethod
    def open(cls) -> _Nvml:
        try:
            import pynvml
        except ImportError:
            _log.debug("no GPU metrics: nvidia-ml-py is not installed (pip install 'mloop[gpu]')")
            return cls(None, [])
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # pynvml.NVMLError and driver-specific OSErrors
            _log.debug("no GPU metrics: NVML could not start (%s)", exc)
            return cls(None, [])
        try:
            handles = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
        except Exception as exc:
            _log.debug("no GPU metrics: NVML could not list devices (%s)", exc)
            _shutdown(pynvml)
            return cls(None, [])
        if not handles:
            _log.debug("no GPU metrics: NVML found no device")
            _shutdown(pynvml)
            return cls(None, [])
        return cls(pynvml, handles)

    def sample(self) -> dict[str, float]:
        nvml = self._nvml
        if nvml is None:
            return {}
        metrics: dict[str, float] = {}
        for i, handle in enumerate(self._handles):
            for reading in _GPU_READINGS:
                if (i, reading) in self._unsupported:
                    continue
                try:
                    values = _read_gpu(nvml, handle, reading)
                except Exception as exc:  # pynvml.NVMLError_NotSupported and friends
                    # Consumer GPUs lack some sensors; ask once, not every interval.
                    self._unsupported.add((i, reading))
                    _log.debug("GPU %d: %s not available (%s)", i, reading, exc)
                    continue
                metrics.update({f"system/gpu_{i}_{key}": value for key, value in values.items()})
        return metrics

    def close(self) -> None:
        if self._nvml is not None:
            _shutdown(self._nvml)
            self._nvml = None


_GPU_READINGS = ("utilization", "memory", "temperature", "power")


def _read_gpu(nvml: Any, handle: Any, reading: str) -> dict[str, float]:
    if reading == "utilization":
        return {"utilization_percent": float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)}
    if reading == "memory":
        info = nvml.nvmlDeviceGetMemoryInfo(handle)
        total = float(info.total)
        return {
            "memory_used_mb": info.used / _MB,
            "memory_percent": 100.0 * info.used / total if total > 0 else 0.0,
        }
    if reading == "temperature":
        temp = nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
        return {"temperature_c": float(temp)}
    # NVML reports milliwatts.
    return {"power_w": nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0}


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception as exc:
        _log.debug("nvmlShutdown failed: %s", exc)
