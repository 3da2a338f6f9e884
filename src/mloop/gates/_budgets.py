"""Budgets a candidate must fit: p95 single-row latency, package size on disk, peak memory at load.

Each budget that is set gives one :class:`~mloop.store.CheckResult` of kind ``"budget"`` whose
summary states the measured number, the budget and the verdict. Sizes are in MB of 2**20 bytes
(what ``du -m`` and ``ps`` report), latencies in milliseconds.
"""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mloop.errors import InvalidInputError
from mloop.store import CheckResult

if TYPE_CHECKING:
    from mloop.registry import PackagedModel

__all__ = ["budget_checks"]

MB = 2**20
_WARMUP = 5
_STDERR_TAIL = 2000
_CACHE_DIRS = frozenset({"__pycache__"})


def budget_checks(
    model: PackagedModel,
    *,
    rows: pa.Table,
    p95_latency_ms: float | None = None,
    package_size_mb: float | None = None,
    peak_memory_mb: float | None = None,
    requests: int = 200,
    seed: int = 0,
    uri: str | None = None,
    memory_timeout_s: float = 300.0,
) -> list[CheckResult]:
    """Check ``model`` against the budgets that are set (one result each, in this order).

    Parameters
    ----------
    model : PackagedModel
        The candidate, as :meth:`mloop.registry.Registry.load` returns it.
    rows : pyarrow.Table
        The holdout's feature columns; single-row requests are drawn from them (columns the
        model's signature does not name are dropped first, as a server would).
    p95_latency_ms : float, optional
        ``budget:p95_latency_ms``: the 95th percentile of ``requests`` single-row calls of
        ``model.predict`` (signature validation and the framework's predict: what a served
        request costs without the HTTP stack), each timed with ``time.perf_counter_ns`` after
        a few warm-up calls, on rows drawn with ``np.random.default_rng(seed)``.
    package_size_mb : float, optional
        ``budget:package_size_mb``: the bytes of every file under the package directory
        (``__pycache__`` folders, which loading may write, left out); ``details`` lists the
        largest files.
    peak_memory_mb : float, optional
        ``budget:peak_memory_mb``: the peak resident memory that loading the package adds (the
        framework's import and deserialisation, transient allocations included), measured in a
        fresh interpreter above its memory with mloop's loader imported; see Notes.
    requests : int, default 200
        Timed single-row calls.
    seed : int, default 0
        Seeds the choice of rows.
    uri : str, optional
        How the model is named in ``compared`` (e.g. ``models:/churn/7``).
    memory_timeout_s : float, default 300
        How long the fresh process may take to load the model before the check is an error.

    Returns
    -------
    list of CheckResult
        ``pass`` when the measurement is within its budget (equal counts as within), ``fail``
        over it, ``error`` when it could not be measured (the reason in ``summary``).

    Raises
    ------
    InvalidInputError
        A budget is not a positive number, ``requests`` is not a positive int, or ``rows`` is
        not a table while a latency budget is set.

    Notes
    -----
    Peak memory is measured in a subprocess because in-process numbers are polluted by what the
    caller has already imported and allocated. On Linux it is the child's own high-water mark
    (``VmHWM``, reset once the loader is imported); ``getrusage().ru_maxrss`` is avoided there
    because a child inherits its parent's high-water mark across fork/exec. Elsewhere the
    ``ru_maxrss`` difference is used. ``numbers["method"]`` says which; ``framework_import_mb``
    is the part the framework's import alone added.

    Examples
    --------
    >>> model = mloop.Registry().load("models:/churn/7")                          # doctest: +SKIP
    >>> [r.summary for r in budget_checks(model, rows=holdout, p95_latency_ms=20)]  # doctest: +SKIP
    ['p95 single-row latency 1.31 ms is within the 20 ms budget (p50 0.912 ms, 200 requests).']
    """
    budgets = {
        "p95_latency_ms": p95_latency_ms,
        "package_size_mb": package_size_mb,
        "peak_memory_mb": peak_memory_mb,
        "memory_timeout_s": memory_timeout_s,
    }
    for key, value in budgets.items():
        if value is not None and not _positive(value):
            raise InvalidInputError(f"`{key}` must be a positive number; got {value!r}.")
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise InvalidInputError(f"`requests` must be an int >= 1; got {requests!r}.")
    if p95_latency_ms is not None and not isinstance(rows, pa.Table):
        raise InvalidInputError(
            f"`rows` must be a pyarrow.Table of the holdout's features; got {type(rows).__name__}."
        )
    label = uri or f"the model package at {model.path}"
    results: list[CheckResult] = []
    if p95_latency_ms is not None:
        results.append(
            _timed(
                lambda: _latency(model, rows, float(p95_latency_ms), requests, seed, label),
            )
        )
    if package_size_mb is not None:
        results.append(
            _timed(lambda: _package_size(Path(model.path), float(package_size_mb), label))
        )
    if peak_memory_mb is not None:
        results.append(
            _timed(
                lambda: _peak_memory(
                    Path(model.path), model.flavor, float(peak_memory_mb), memory_timeout_s, label
                )
            )
        )
    return results


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _timed(measure: Callable[[], CheckResult]) -> CheckResult:
    start = time.perf_counter()
    result = measure()
    return replace(result, duration_ms=(time.perf_counter() - start) * 1000.0)


def _fmt(x: float) -> str:
    """A number as a reviewer reads it: 1,234 / 20 / 56.7 / 3.14 / 0.0123."""
    if x >= 100 or (x >= 1 and float(x).is_integer()):
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _verdict(measured: float, budget: float) -> tuple[str, str]:
    if measured <= budget:
        return "pass", "is within"
    return "fail", "exceeds"


# ------------------------------------------------------------------------------------- latency


def _latency(
    model: PackagedModel, rows: pa.Table, budget: float, requests: int, seed: int, label: str
) -> CheckResult:
    name = "budget:p95_latency_ms"
    compared = f"p95 single-row latency of {label} against a {_fmt(budget)} ms budget"
    if rows.num_rows == 0:
        return _error(name, compared, "the holdout has no rows to time single-row requests on")
    table = _signature_columns(model, rows)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, rows.num_rows, size=_WARMUP + requests)
    singles = [table.slice(int(i), 1) for i in picks]  # built before the clock starts
    elapsed = np.empty(requests, dtype=np.int64)
    clock = time.perf_counter_ns
    try:
        for one in singles[:_WARMUP]:
            model.predict(one)
        gc.collect()  # a collection owed by loading should not land in the timed calls
        for k, one in enumerate(singles[_WARMUP:]):
            t0 = clock()
            model.predict(one)
            elapsed[k] = clock() - t0
    except Exception as exc:  # the user's model failing on a holdout row is the check's result
        return _error(
            name,
            compared,
            f"the model failed to predict a single holdout row ({type(exc).__name__}: {exc})",
        )
    ms = elapsed / 1e6
    p50, p95, p99 = (float(v) for v in np.percentile(ms, [50, 95, 99]))
    status, verb = _verdict(p95, budget)
    slowest = np.argsort(ms)[::-1][:5]
    return CheckResult(
        name=name,
        kind="budget",
        status=status,
        summary=(
            f"p95 single-row latency {_fmt(p95)} ms {verb} the {_fmt(budget)} ms budget "
            f"(p50 {_fmt(p50)} ms, {requests:,} requests)."
        ),
        compared=compared,
        numbers={
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
            "mean_ms": float(ms.mean()),
            "max_ms": float(ms.max()),
            "budget_ms": budget,
            "requests": requests,
            "warmup_requests": _WARMUP,
            "seed": seed,
        },
        details=tuple(
            {"request": int(k), "row": int(picks[_WARMUP + k]), "ms": float(ms[k])} for k in slowest
        ),
    )


def _signature_columns(model: PackagedModel, rows: pa.Table) -> pa.Table:
    """The columns a server would pass on: those the signature names (a tensor model gets all)."""
    signature = model.signature
    if signature is None or signature.inputs.is_tensor:
        return rows
    present = set(rows.column_names)
    wanted = [c for c in signature.inputs.names if c is not None and c in present]
    return rows.select(wanted) if wanted else rows  # none present: let validation say which


# ---------------------------------------------------------------------------------------- size


def _package_size(root: Path, budget: float, label: str) -> CheckResult:
    name = "budget:package_size_mb"
    compared = f"size on disk of {label} against a {_fmt(budget)} MB budget"
    if not root.is_dir():
        return _error(name, compared, f"the model package directory {str(root)!r} does not exist")
    sizes: list[tuple[str, int]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _CACHE_DIRS)
        for file in filenames:
            path = Path(dirpath) / file
            sizes.append((path.relative_to(root).as_posix(), path.stat().st_size))
    total = sum(size for _, size in sizes)
    mb = total / MB
    status, verb = _verdict(mb, budget)
    largest = sorted(sizes, key=lambda item: (-item[1], item[0]))[:5]
    lead = (
        f"; the largest file is {largest[0][0]} ({_fmt(largest[0][1] / MB)} MB)" if largest else ""
    )
    return CheckResult(
        name=name,
        kind="budget",
        status=status,
        summary=(
            f"Model package size {_fmt(mb)} MB ({len(sizes):,} files) {verb} the "
            f"{_fmt(budget)} MB budget{lead}."
        ),
        compared=compared,
        numbers={"bytes": total, "size_mb": mb, "budget_mb": budget, "files": len(sizes)},
        details=tuple(
            {"file": rel, "bytes": size, "share": size / total if total else 0.0}
            for rel, size in largest
        ),
    )


# -------------------------------------------------------------------------------------- memory

# Runs in a fresh interpreter: args are one JSON object in argv[1]; the result is written as JSON
# to args["out"] (stdout is left to whatever the model's code prints).
_MEMORY_SCRIPT = r"""
import gc, json, sys, time
args = json.loads(sys.argv[1])
sys.path[:] = args["sys_path"]


def status():
    try:
        with open("/proc/self/status") as fh:
            text = fh.read()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out if len(out) == 2 else None


def ru_peak():
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


from mloop.registry import load_model_dir
from mloop.registry.flavors import get_flavor

gc.collect()
proc = status()
method = "ru_maxrss"
if proc is not None:
    method = "vmhwm"
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the high-water mark to the current RSS (Linux >= 4.0)
        method = "vmhwm_reset"
    except OSError:
        pass
    before = status()
    base_rss, base_peak = before["VmRSS"], before["VmHWM"]
else:
    base_rss = base_peak = ru_peak()
start = time.perf_counter()
framework_rss = None
try:
    get_flavor(args["flavor"]).import_framework()
    if proc is not None:
        framework_rss = status()["VmRSS"]
except (ImportError, ValueError):
    framework_rss = None  # missing or unknown: the load below says so in its own words
model = load_model_dir(args["path"])
seconds = time.perf_counter() - start
if proc is not None:
    after = status()
    rss, peak = after["VmRSS"], after["VmHWM"]
    if method == "vmhwm_reset" or peak > base_peak:
        peak_added = peak - base_rss  # the high-water mark was set while loading
    else:
        peak_added = rss - base_rss  # the start-up peak was higher: resident growth, a lower bound
    rss_added = rss - base_rss
else:
    peak = ru_peak()
    peak_added = rss_added = peak - base_peak
with open(args["out"], "w") as fh:
    json.dump(
        {
            "method": method,
            "baseline_bytes": base_rss,
            "peak_added_bytes": max(0, peak_added),
            "resident_added_bytes": max(0, rss_added),
            "framework_import_bytes": None if framework_rss is None else framework_rss - base_rss,
            "load_seconds": seconds,
        },
        fh,
    )
"""


def _measure_load_memory(path: Path, flavor: str, timeout_s: float) -> dict[str, Any]:
    """The peak resident memory that loading the package at ``path`` adds, in a fresh interpreter.

    Measured in a subprocess (``sys.executable``, the parent's ``sys.path``) because in-process
    numbers are polluted by what the caller has already imported and allocated. The child first
    imports mloop's package loader (the baseline every served model pays), then imports the
    model's framework and loads the package with hash verification, as a server does.

    On Linux the number is the process's own high-water mark, ``VmHWM`` in ``/proc/self/status``:
    it is reset to the current RSS after the baseline (``/proc/self/clear_refs``), so
    ``VmHWM - baseline RSS`` after loading is exactly the peak the load added, transient
    allocations included. ``getrusage(RUSAGE_SELF).ru_maxrss`` is *not* used there: the kernel
    carries the parent's high-water mark across fork/exec into it, so a child of a 300 MB pytest
    process reports 300 MB before it has done anything. Elsewhere (macOS), the ``ru_maxrss``
    difference is reported, a lower bound when the interpreter's start-up peak was higher.

    Returns the child's JSON: ``method``, ``baseline_bytes``, ``peak_added_bytes``,
    ``resident_added_bytes``, ``framework_import_bytes`` (None when not measurable),
    ``load_seconds``. Raises :class:`_MeasureError` with the stderr tail when the child fails.
    """
    with tempfile.TemporaryDirectory(prefix="mloop-memory-") as tmp:
        out = Path(tmp) / "result.json"
        args = {
            "path": str(path.resolve()),
            "flavor": flavor,
            # the parent's import path, made absolute ("" is the parent's working directory)
            "sys_path": [os.path.abspath(p) for p in sys.path],
            "out": str(out),
        }
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # leave the package dir as it is
        try:
            done = subprocess.run(
                [sys.executable, "-c", _MEMORY_SCRIPT, json.dumps(args)],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout_s,
                env=env,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr or ""
            if isinstance(stderr, bytes):  # what was read before the timeout, not yet decoded
                stderr = stderr.decode(errors="replace")
            raise _MeasureError(
                f"loading the model in a fresh process did not finish within {_fmt(timeout_s)} s",
                stderr[-_STDERR_TAIL:],
            ) from None
        if done.returncode != 0 or not out.is_file():
            tail = done.stderr[-_STDERR_TAIL:]
            last = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "no output")
            raise _MeasureError(
                f"loading the model in a fresh process failed (exit {done.returncode}): {last}",
                tail,
            )
        result: dict[str, Any] = json.loads(out.read_text())
        return result


class _MeasureError(Exception):
    def __init__(self, message: str, stderr: str) -> None:
        super().__init__(message)
        self.stderr = stderr


def _peak_memory(
    root: Path, flavor: str, budget: float, timeout_s: float, label: str
) -> CheckResult:
    name = "budget:peak_memory_mb"
    compared = f"peak memory added by loading {label} against a {_fmt(budget)} MB budget"
    try:
        m = _measure_load_memory(root, flavor, timeout_s)
    except _MeasureError as exc:
        return _error(name, compared, str(exc), stderr_tail=exc.stderr)
    peak = m["peak_added_bytes"] / MB
    status, verb = _verdict(peak, budget)
    framework = m["framework_import_bytes"]
    share = f", {_fmt(framework / MB)} MB of it the framework's import" if framework else ""
    return CheckResult(
        name=name,
        kind="budget",
        status=status,
        summary=(
            f"Peak memory added by loading the model {_fmt(peak)} MB {verb} the {_fmt(budget)} MB "
            f"budget (a fresh process, above its {_fmt(m['baseline_bytes'] / MB)} MB with mloop's "
            f"loader imported{share})."
        ),
        compared=compared,
        numbers={
            "peak_mb": peak,
            "budget_mb": budget,
            "resident_mb": m["resident_added_bytes"] / MB,
            "baseline_mb": m["baseline_bytes"] / MB,
            "framework_import_mb": None if framework is None else framework / MB,
            "load_seconds": m["load_seconds"],
            "method": m["method"],
        },
    )


def _error(name: str, compared: str, reason: str, *, stderr_tail: str | None = None) -> CheckResult:
    return CheckResult(
        name=name,
        kind="budget",
        status="error",
        summary=f"Could not measure {name.split(':', 1)[1]}: {reason}.",
        compared=compared,
        details=({"stderr_tail": stderr_tail},) if stderr_tail else (),
    )
