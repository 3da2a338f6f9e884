"""What a post-deploy check reads from a server's ``GET /metrics``: the Prometheus text format
parsed into samples, counter deltas between two scrapes, and a histogram quantile computed as
Prometheus' ``histogram_quantile`` does.

Pure functions over text and numbers: no I/O, and no dependency on ``prometheus_client`` (the
``serve`` extra), so a CI job that only promotes can watch servers it does not run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "SCORING_ENDPOINTS",
    "Sample",
    "Scrape",
    "counter_delta",
    "histogram_quantile",
    "parse_metrics",
]

# The serving endpoints whose requests are scored by a model (``mloop_requests_total{endpoint}``).
SCORING_ENDPOINTS: tuple[str, ...] = ("invocations", "infer")

_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?[0-9]+)?\s*$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_ESCAPE = re.compile(r"\\(.)")
_UNESCAPED = {"n": "\n", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Sample:
    """One line of the exposition: ``name{labels} value``."""

    name: str
    labels: Mapping[str, str]
    value: float


def _labels(text: str, line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if m is None:
            raise ValueError(f"cannot read the labels of the metrics line {line!r}")
        out[m.group(1)] = _ESCAPE.sub(lambda e: _UNESCAPED.get(e.group(1), e.group(0)), m.group(2))
        pos = m.end()
    return out


def parse_metrics(text: str) -> Scrape:
    """The samples of a Prometheus text exposition (comments and blank lines skipped).

    Raises
    ------
    ValueError
        For a line that is not a sample, naming it.

    Examples
    --------
    >>> s = parse_metrics('# TYPE x counter\\nx_total{code="200",endpoint="infer"} 3.0\\n')
    >>> s.samples[0].labels["code"], s.samples[0].value
    ('200', 3.0)
    """
    samples = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            raise ValueError(f"not a Prometheus sample line: {raw!r}")
        try:
            value = float(m.group(3))
        except ValueError:
            raise ValueError(f"not a number in the metrics line {raw!r}") from None
        samples.append(Sample(m.group(1), _labels(m.group(2) or "", raw), value))
    return Scrape(tuple(samples))


@dataclass(frozen=True)
class Scrape:
    """One scrape of a server's metrics, and the few views a post-deploy check needs."""

    samples: tuple[Sample, ...]

    def select(self, name: str, **match: str | Iterable[str]) -> list[Sample]:
        """Samples named ``name`` whose labels match (a label given an iterable matches any)."""
        out = []
        for s in self.samples:
            if s.name != name:
                continue
            ok = True
            for key, want in match.items():
                got = s.labels.get(key)
                if (isinstance(want, str) and got != want) or (
                    not isinstance(want, str) and got not in set(want)
                ):
                    ok = False
            if ok:
                out.append(s)
        return out

    def requests_by_code(self, endpoints: Iterable[str] = SCORING_ENDPOINTS) -> dict[str, float]:
        """``mloop_requests_total`` summed over ``endpoints``, by status code."""
        out: dict[str, float] = {}
        for s in self.select("mloop_requests_total", endpoint=tuple(endpoints)):
            code = s.labels.get("code", "")
            out[code] = out.get(code, 0.0) + s.value
        return out

    def latency_buckets(self, endpoints: Iterable[str] = SCORING_ENDPOINTS) -> dict[float, float]:
        """The cumulative latency histogram (upper bound in seconds -> count) summed over
        ``endpoints``."""
        out: dict[float, float] = {}
        for s in self.select("mloop_request_duration_seconds_bucket", endpoint=tuple(endpoints)):
            le = float(s.labels["le"])
            out[le] = out.get(le, 0.0) + s.value
        return out

    def served_versions(self, model: str, slots: Iterable[str]) -> set[str]:
        """Versions of ``model`` that serve now in ``slots``, by the ``mloop_model_version`` gauge.

        With several workers each reports its own (a ``pid`` label), and a version swapped out
        stays at 0: only the series at 1 count.
        """
        return {
            s.labels.get("version", "")
            for s in self.select("mloop_model_version", model=model, slot=tuple(slots))
            if s.value == 1.0
        }


def counter_delta(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    """What the counters ``before`` grew by until ``after``.

    A counter that went down was reset (the server restarted): as Prometheus' ``increase`` does,
    its value after the reset is what it grew by.
    """
    out = {}
    for key, value in after.items():
        prev = before.get(key, 0.0)
        out[key] = value - prev if value >= prev else value
    return out


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float:
    """The ``q``-quantile of a cumulative histogram (upper bound -> count), as Prometheus'
    ``histogram_quantile`` computes it: linear interpolation within the bucket the rank falls in
    (from 0 for the first bucket); a rank in the ``+Inf`` bucket gives the largest finite bound.
    NaN for an empty histogram or one without a ``+Inf`` bucket.

    Examples
    --------
    >>> histogram_quantile(0.5, {0.1: 10.0, 0.2: 30.0, math.inf: 30.0})  # rank 15: 5 of 20 in (0.1, 0.2]
    0.125
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1]; got {q!r}")
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != math.inf:
        return math.nan
    counts = []
    running = 0.0
    for b in bounds:  # counts are cumulative; scrape jitter can break monotony: repair it
        running = max(running, float(buckets[b]))
        counts.append(running)
    total = counts[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    i = next(k for k, c in enumerate(counts) if c >= rank)
    if i == len(bounds) - 1:
        return bounds[-2] if len(bounds) > 1 else math.nan
    if i == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[i], counts[i]
    if i > 0:
        start = bounds[i - 1]
        count -= counts[i - 1]
        rank -= counts[i - 1]
    if count <= 0:
        return start
    return start + (end - start) * (rank / count)
