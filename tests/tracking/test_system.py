from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from mloop.errors import InvalidInputError
from mloop.tracking import _system
from mloop.tracking._system import SystemMetricsSampler

BASE_KEYS = {
    "system/cpu_percent",
    "system/process_cpu_percent",
    "system/memory_percent",
    "system/memory_used_mb",
    "system/process_rss_mb",
    "system/disk_read_mb",
    "system/disk_write_mb",
    "system/net_sent_mb",
    "system/net_recv_mb",
    "system/disk_usage_percent",
}


class Recorder:
    """A thread-safe stand-in for ``run.log`` that records every call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, float]] = []
        self.threads: set[str] = set()
        self._cond = threading.Condition()

    def __call__(self, metrics: dict[str, float]) -> None:
        with self._cond:
            self.calls.append(metrics)
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.calls) >= n, timeout), (
                f"only {len(self.calls)} samples after {timeout}s"
            )


def _wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def no_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError


def test_samples_have_keys_and_sane_values(no_pynvml: None, tmp_path: Path) -> None:
    rec = Recorder()
    sampler = SystemMetricsSampler(rec, interval_s=0.05, disk_path=tmp_path)
    with sampler:
        # Generate some I/O so the cumulative counters have something to show.
        (tmp_path / "blob").write_bytes(os.urandom(1 << 20))
        rec.wait_for(3)
    assert not sampler.running
    assert rec.threads == {"mloop-system-metrics"}
    ncores = psutil.cpu_count() or 1
    rss_mb = psutil.Process().memory_info().rss / 2**20
    total_mb = psutil.virtual_memory().total / 2**20
    for metrics in rec.calls:
        available = {k for k in BASE_KEYS if k in metrics}
        # Disk/net I/O counters may be missing in a minimal container; the rest never is.
        assert available >= BASE_KEYS - {
            "system/disk_read_mb",
            "system/disk_write_mb",
            "system/net_sent_mb",
            "system/net_recv_mb",
        }
        assert set(metrics) == available, "unexpected keys (GPU keys without a GPU?)"
        assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
        assert 0.0 <= metrics["system/cpu_percent"] <= 100.0
        assert 0.0 <= metrics["system/process_cpu_percent"] <= 100.0 * ncores + 1.0
        assert 0.0 < metrics["system/memory_percent"] <= 100.0
        assert 0.0 < metrics["system/memory_used_mb"] <= total_mb
        assert 0.5 * rss_mb < metrics["system/process_rss_mb"] < 2.0 * rss_mb + 100
        assert 0.0 < metrics["system/disk_usage_percent"] <= 100.0
        for key in ("disk_read_mb", "disk_write_mb", "net_sent_mb", "net_recv_mb"):
            assert metrics.get(f"system/{key}", 0.0) >= 0.0
    assert sampler.samples_logged == len(rec.calls)


def test_io_is_cumulative_since_start(no_pynvml: None, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = [SimpleNamespace(read_bytes=100 * 2**20, write_bytes=50 * 2**20)]
    net = [SimpleNamespace(bytes_sent=10 * 2**20, bytes_recv=20 * 2**20)]
    monkeypatch.setattr(_system.psutil, "disk_io_counters", lambda: disk[-1])
    monkeypatch.setattr(_system.psutil, "net_io_counters", lambda: net[-1])
    sampler = SystemMetricsSampler(lambda m: None, interval_s=60)
    sampler._reset_baselines()  # what start() does
    disk.append(SimpleNamespace(read_bytes=103 * 2**20, write_bytes=51 * 2**20))
    net.append(SimpleNamespace(bytes_sent=12 * 2**20, bytes_recv=20.5 * 2**20))
    first = sampler.sample()
    disk.append(SimpleNamespace(read_bytes=110 * 2**20, write_bytes=51 * 2**20))
    second = sampler.sample()
    assert (first["system/disk_read_mb"], first["system/disk_write_mb"]) == (3.0, 1.0)
    assert (first["system/net_sent_mb"], first["system/net_recv_mb"]) == (2.0, 0.5)
    assert second["system/disk_read_mb"] == 10.0  # cumulative, not per interval
    disk.append(SimpleNamespace(read_bytes=0, write_bytes=0))  # counter reset
    assert sampler.sample()["system/disk_read_mb"] == 0.0


def test_missing_io_counters_drop_only_their_keys(
    no_pynvml: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_system.psutil, "disk_io_counters", lambda: None)
    monkeypatch.setattr(_system.psutil, "net_io_counters", lambda: None)
    metrics = SystemMetricsSampler(lambda m: None).sample()
    assert set(metrics) == BASE_KEYS - {
        "system/disk_read_mb",
        "system/disk_write_mb",
        "system/net_sent_mb",
        "system/net_recv_mb",
    }


def test_stop_is_prompt_and_idempotent(no_pynvml: None) -> None:
    rec = Recorder()
    sampler = SystemMetricsSampler(rec, interval_s=30.0).start()
    assert sampler.running
    assert sampler.start() is sampler  # already running: no second thread
    assert sum(t.name == "mloop-system-metrics" for t in threading.enumerate()) == 1
    start = time.perf_counter()
    sampler.stop()
    assert time.perf_counter() - start < 1.0
    assert not sampler.running
    assert rec.calls == []  # the first sample is due one interval after start
    sampler.stop()  # twice is fine
    SystemMetricsSampler(rec).stop()  # never started is fine


def test_restart_after_stop(no_pynvml: None) -> None:
    rec = Recorder()
    sampler = SystemMetricsSampler(rec, interval_s=0.05)
    sampler.start()
    rec.wait_for(1)
    sampler.stop()
    n = len(rec.calls)
    sampler.start()
    rec.wait_for(n + 1)  # sampling again after the restart
    sampler.stop()
    stopped_at = len(rec.calls)
    time.sleep(0.3)  # six intervals: a sampler still running would have logged by now
    assert len(rec.calls) == stopped_at  # nothing logged after stop
    assert sampler.samples_logged == stopped_at
    assert not sampler.running


def test_thread_is_daemon_and_stop_from_log_fn(no_pynvml: None) -> None:
    holder: dict[str, SystemMetricsSampler] = {}
    calls: list[dict[str, float]] = []

    def log_fn(metrics: dict[str, float]) -> None:
        calls.append(metrics)
        holder["s"].stop()  # stopping from the sampler thread must not deadlock

    holder["s"] = sampler = SystemMetricsSampler(log_fn, interval_s=0.05)
    sampler.start()
    assert sampler._thread is not None and sampler._thread.daemon
    _wait_until(lambda: not sampler.running)
    assert len(calls) == 1


def test_failing_log_fn_warns_once_and_continues(
    no_pynvml: None, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[int] = []

    def log_fn(metrics: dict[str, float]) -> None:
        attempts.append(1)
        raise RuntimeError("store closed")

    sampler = SystemMetricsSampler(log_fn, interval_s=0.02)
    with caplog.at_level(logging.WARNING, logger="mloop.tracking._system"), sampler:
        _wait_until(lambda: len(attempts) >= 4)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "logging system metrics failed" in warnings[0].getMessage()
    assert sampler.samples_logged == 0


def test_failing_sample_warns_once_and_continues(
    no_pynvml: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = {"n": 0}
    real = _system.psutil.virtual_memory

    def flaky() -> Any:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise RuntimeError("boom")
        return real()

    monkeypatch.setattr(_system.psutil, "virtual_memory", flaky)
    rec = Recorder()
    with (
        caplog.at_level(logging.WARNING, logger="mloop.tracking._system"),
        SystemMetricsSampler(rec, interval_s=0.02),
    ):
        rec.wait_for(1)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [w.getMessage() for w in warnings] == [
        "sampling system metrics failed; will keep trying"
    ]
    assert calls["n"] >= 4


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "10", True])
def test_invalid_interval(bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="interval_s"):
        SystemMetricsSampler(lambda m: None, interval_s=bad)


def test_log_fn_must_be_callable() -> None:
    with pytest.raises(InvalidInputError, match="log_fn"):
        SystemMetricsSampler("run.log")  # type: ignore[arg-type]


def test_no_pynvml_means_no_gpu_keys_and_one_debug_message(
    no_pynvml: None, caplog: pytest.LogCaptureFixture
) -> None:
    sampler = SystemMetricsSampler(lambda m: None, gpu=True)
    with caplog.at_level(logging.DEBUG, logger="mloop.tracking._system"):
        keys = set(sampler.sample()) | set(sampler.sample())
    assert not any("gpu" in k for k in keys)
    msgs = [r.getMessage() for r in caplog.records if "GPU" in r.getMessage()]
    assert len(msgs) == 1 and "nvidia-ml-py" in msgs[0]
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


class FakeNVMLError(Exception):
    pass


def _fake_pynvml(*, count: int, init_fails: bool = False) -> SimpleNamespace:
    state = {"init": 0, "shutdown": 0, "temperature_calls_0": 0, "temperature_calls_1": 0}

    def init() -> None:
        if init_fails:
            raise FakeNVMLError("Driver Not Loaded")
        state["init"] += 1

    def temperature(handle: int, sensor: int) -> int:
        state[f"temperature_calls_{handle}"] += 1
        if handle == 1:
            raise FakeNVMLError("Not Supported")
        return 60 + handle

    return SimpleNamespace(
        state=state,
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=init,
        nvmlShutdown=lambda: state.__setitem__("shutdown", state["shutdown"] + 1),
        nvmlDeviceGetCount=lambda: count,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=40 + h, memory=5),
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(
            total=16 * 2**30, used=4 * 2**30, free=12 * 2**30
        ),
        nvmlDeviceGetTemperature=temperature,
        nvmlDeviceGetPowerUsage=lambda h: 150_500,  # milliwatts
    )


def test_gpu_metrics_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_pynvml(count=2)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    rec = Recorder()
    with SystemMetricsSampler(rec, interval_s=0.02):
        rec.wait_for(2)
    metrics = rec.calls[-1]
    gpu = {k: v for k, v in metrics.items() if "gpu" in k}
    assert gpu == {
        "system/gpu_0_utilization_percent": 40.0,
        "system/gpu_0_memory_used_mb": 4096.0,
        "system/gpu_0_memory_percent": 25.0,
        "system/gpu_0_temperature_c": 60.0,
        "system/gpu_0_power_w": 150.5,
        # GPU 1 has no temperature sensor: that key alone is missing
        "system/gpu_1_utilization_percent": 41.0,
        "system/gpu_1_memory_used_mb": 4096.0,
        "system/gpu_1_memory_percent": 25.0,
        "system/gpu_1_power_w": 150.5,
    }
    assert {"system/cpu_percent", "system/memory_percent", "system/process_rss_mb"} <= set(metrics)
    # the unsupported sensor is asked once, not at every sample
    assert fake.state["temperature_calls_1"] == 1
    assert fake.state["temperature_calls_0"] >= len(rec.calls) >= 2
    assert (fake.state["init"], fake.state["shutdown"]) == (1, 1)


def test_gpu_false_never_imports_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_pynvml(count=1)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    metrics = SystemMetricsSampler(lambda m: None, gpu=False).sample()
    assert not any("gpu" in k for k in metrics)
    assert fake.state["init"] == 0


@pytest.mark.parametrize("count", [0, None])
def test_nvml_without_device_or_driver(monkeypatch: pytest.MonkeyPatch, count: int | None) -> None:
    fake = _fake_pynvml(count=count or 0, init_fails=count is None)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    rec = Recorder()
    with SystemMetricsSampler(rec, interval_s=0.02):
        rec.wait_for(2)
    assert not any("gpu" in k for m in rec.calls for k in m)
    if count == 0:
        assert (fake.state["init"], fake.state["shutdown"]) == (1, 1)


def test_docstring_examples(no_pynvml: None) -> None:
    import doctest

    result = doctest.testmod(_system)
    assert result.attempted > 0 and result.failed == 0
