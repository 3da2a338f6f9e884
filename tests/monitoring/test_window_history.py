"""A monitor's stored window results stay small: their size depends on the reference, not on the
window's rows or on how many new labels it brings; the verdicts are still those of the exact
computation over every label; results stored before the histogram was bounded still read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from mloop import monitoring as mon
from mloop.codec import dumps
from mloop.monitoring import MonitorRecord, WindowResult

DATA = Path(__file__).parent / "data"
SHOWN = 20  # NEW_LABELS_SHOWN, the documented number of new labels a histogram lists
BUCKET = "(other new labels)"


def _reference(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.array([f"plan{i}" for i in range(12)], dtype=object)
    return {"x": rng.normal(size=n), "plan": labels[rng.integers(0, 12, n)]}


def _window(n: int, n_new: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` rows: half the reference's labels, half spread over ``n_new`` new labels (skewed)."""
    rng = np.random.default_rng(seed)
    known = np.array([f"plan{i}" for i in range(12)], dtype=object)[rng.integers(0, 12, n // 2)]
    new_labels = np.array([f"new{i:05d}" for i in range(n_new)], dtype=object)
    weights = 1.0 / np.arange(1, n_new + 1)
    new = new_labels[rng.choice(n_new, size=n - n // 2, p=weights / weights.sum())]
    # every new label occurs at least once, so the window brings exactly n_new of them
    new[:n_new] = new_labels
    return {"x": rng.normal(size=n), "plan": np.concatenate((known, new))}


def _stored(reference: dict[str, np.ndarray], window: dict[str, np.ndarray]) -> MonitorRecord:
    records: list[MonitorRecord] = []
    monitor = mon.Monitor(
        reference, window_rows=len(window["x"]), categorical=["plan"], persist=records.append
    )
    (result,) = monitor.update(window)
    assert len(records) == 1 and records[0].result == result.to_dict()
    return records[0]


def _nbytes(record: MonitorRecord) -> int:
    return len(dumps(record, what="MonitorRecord").encode())


def test_a_stored_window_does_not_grow_with_the_new_labels_it_brings() -> None:
    reference = _reference(20_000, 1)
    sizes = {}
    for n_new in (10, 10_000):
        record = _stored(reference, _window(40_000, n_new, 2))
        hist = record.result["drift"]["columns"]["plan"]["histogram"]
        assert len(hist["categories"]) <= 12 + SHOWN + 1
        sizes[n_new] = _nbytes(record)
    # 10 new labels are all listed; 10,000 list 20 and one bucket: a few labels' worth more
    assert sizes[10_000] <= sizes[10] + 1_000, sizes
    assert sizes[10_000] < 20_000, sizes


def test_the_bounded_histogram_keeps_the_most_frequent_new_labels_and_every_count() -> None:
    window = _window(40_000, 10_000, 3)
    report = mon.drift_report(_reference(20_000, 4), window, categorical=["plan"])
    col = report.columns["plan"]
    hist = col.histogram
    assert hist is not None and hist.categories is not None
    labels, counts = np.unique(window["plan"], return_counts=True)
    truth = dict(zip(labels.tolist(), counts.tolist(), strict=True))
    known = [f"plan{i}" for i in range(12)]
    new = {k: v for k, v in truth.items() if k not in known}
    top = sorted(new, key=lambda k: (-new[k], k))[:SHOWN]
    assert hist.categories == [*sorted(known), *sorted(top), BUCKET]
    shown = dict(zip(hist.categories, hist.current.tolist(), strict=True))
    assert all(shown[k] == truth[k] for k in [*known, *top])
    assert shown[BUCKET] == sum(v for k, v in new.items() if k not in top)
    assert hist.current.sum() == col.n_current == 40_000
    assert hist.reference[-SHOWN - 1 :].sum() == 0 and hist.reference.sum() == col.n_reference
    assert "10000 categories not in the reference" in col.message
    assert f"the other {10_000 - SHOWN} are counted together as '{BUCKET}'" in col.message


@pytest.mark.parametrize("method", ["jensenshannon", "chisquare", "psi"])
def test_verdicts_use_every_label_not_the_bounded_histogram(method: str) -> None:
    reference, window = _reference(5_000, 5), _window(4_000, 500, 6)
    report = mon.drift_report(reference, window, categorical=["plan"], methods=method)
    col = report.columns["plan"]
    labels = sorted(set(reference["plan"]) | set(window["plan"]))
    r = np.array([np.sum(reference["plan"] == k) for k in labels], dtype=np.float64)
    c = np.array([np.sum(window["plan"] == k) for k in labels], dtype=np.float64)
    if method == "jensenshannon":
        assert col.statistic == pytest.approx(jensenshannon(r / r.sum(), c / c.sum()), rel=1e-9)
    elif method == "chisquare":
        stat, p, _, _ = sps.chi2_contingency(np.vstack((r, c)), correction=False)
        assert col.statistic == pytest.approx(stat, rel=1e-9)
        assert col.p_value == pytest.approx(p, rel=1e-6, abs=1e-300)
    else:
        # PSI smooths empty cells by 0.5 (the reference lacks every new label)
        ps, qs = (r + 0.5) / (r + 0.5).sum(), (c + 0.5) / (c + 0.5).sum()
        psi = float(np.sum((qs - ps) * np.log(qs / ps)))
        assert col.statistic == pytest.approx(psi, rel=1e-9)
    assert col.drifted is True and col.error_bound == 0.0 and not col.borderline
    # the monitor's verdict is the report's: the window is compared from its rows
    record = _stored(reference, window)
    assert record.result["drift"]["columns"]["plan"]["statistic"] == pytest.approx(
        mon.drift_report(
            mon.Profile.from_data(reference, categorical=["plan"]), window, categorical=["plan"]
        )
        .columns["plan"]
        .statistic,
        rel=1e-12,
    )


def test_a_few_new_labels_are_all_listed_as_before() -> None:
    window = _window(1_000, SHOWN, 7)
    report = mon.drift_report(_reference(2_000, 8), window, categorical=["plan"])
    hist = report.columns["plan"].histogram
    assert hist is not None and hist.categories is not None
    assert BUCKET not in hist.categories and len(hist.categories) == 12 + SHOWN
    assert "counted together" not in report.columns["plan"].message


def test_window_results_stored_with_every_new_label_still_read() -> None:
    # Written by a monitor before histograms were bounded: 30 new labels, each listed.
    stored = json.loads((DATA / "window-result-uncapped.json").read_text())
    result = WindowResult.from_dict(stored)
    col = result.drift.columns["c"]
    assert col.histogram is not None and col.histogram.categories is not None
    assert len(col.histogram.categories) == 33 and BUCKET not in col.histogram.categories
    assert int(col.histogram.current.sum()) == col.n_current == 100
    assert (col.method, col.status) == ("jensenshannon", "drift")
    assert result.to_dict()["drift"]["columns"]["c"] == stored["drift"]["columns"]["c"]
