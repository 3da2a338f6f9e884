"""drift_report: Evidently's automatic rules, overrides, input types and bad input."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats as sps
from scipy.spatial import distance as spd

from mloop import monitoring as mon
from mloop.errors import InvalidInputError

SEEDS = [0, 1, 2]


def _frames(seed: int, n_ref: int, n_cur: int, shift: float = 0.0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)

    def make(n: int, s: float) -> dict:
        return {
            "x": rng.normal(s, 1.0, n),
            "few": rng.integers(0, 3, n).astype(float) + (s > 0),
            "binary": (rng.random(n) < 0.3 + s / 4).astype(np.int64),
            "cat": rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.2, 0.1]),
            "flag": rng.choice(["yes", "no"], size=n),
        }

    return make(n_ref, 0.0), make(n_cur, shift)


def _counts(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.union1d(ref, cur)
    return (
        np.array([np.sum(ref == v) for v in labels]),
        np.array([np.sum(cur == v) for v in labels]),
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_small_reference_uses_tests(seed: int) -> None:
    ref, cur = _frames(seed, 800, 600, shift=0.3)
    report = mon.drift_report(ref, cur)
    x = report.columns["x"]
    assert (x.kind, x.method, x.threshold) == ("numeric", "ks", 0.05)
    expected = sps.ks_2samp(ref["x"], cur["x"])
    assert x.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert x.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert x.drifted == (expected.pvalue < 0.05)
    # numeric with <= 5 distinct values (reference and current together): chi-square on values
    few = report.columns["few"]
    assert (few.kind, few.method) == ("numeric", "chisquare")
    table = np.vstack(_counts(ref["few"], cur["few"]))
    assert few.p_value == pytest.approx(sps.chi2_contingency(table, correction=False).pvalue)
    assert few.histogram is not None and few.histogram.categories == ["0", "1", "2", "3"]
    assert report.columns["binary"].method == "z"
    cat = report.columns["cat"]
    assert (cat.kind, cat.method) == ("categorical", "chisquare")
    table = np.vstack(_counts(ref["cat"], cur["cat"]))
    expected_chi = sps.chi2_contingency(table, correction=False)
    assert (cat.statistic, cat.p_value) == pytest.approx(
        (expected_chi.statistic, expected_chi.pvalue), rel=1e-9
    )
    flag = report.columns["flag"]
    assert flag.method == "z"
    r, c = _counts(ref["flag"], cur["flag"])
    assert flag.statistic**2 == pytest.approx(
        sps.chi2_contingency(np.vstack((r, c)), correction=False).statistic, rel=1e-9
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_large_reference_uses_distances(seed: int) -> None:
    ref, cur = _frames(seed, 5000, 4000, shift=0.3)
    report = mon.drift_report(ref, cur)
    x = report.columns["x"]
    assert (x.method, x.threshold, x.p_value) == ("wasserstein", 0.1, None)
    normed = sps.wasserstein_distance(ref["x"], cur["x"]) / max(np.std(ref["x"]), 0.001)
    assert x.statistic == pytest.approx(normed, rel=1e-9)
    assert x.drifted == (normed >= 0.1)
    for name in ("few", "binary", "cat", "flag"):
        col = report.columns[name]
        assert (col.method, col.p_value) == ("jensenshannon", None), name
        assert col.statistic == pytest.approx(
            spd.jensenshannon(*_counts(ref[name], cur[name])), rel=1e-9
        )


def test_unique_values_are_counted_over_both_samples() -> None:
    rng = np.random.default_rng(0)
    ref = {"v": rng.integers(0, 5, 3000).astype(float)}
    same = mon.drift_report(ref, {"v": rng.integers(0, 5, 3000).astype(float)})
    assert same.columns["v"].method == "jensenshannon"
    more = mon.drift_report(ref, {"v": rng.integers(0, 6, 3000).astype(float)})
    assert more.columns["v"].method == "wasserstein"


def test_dataset_verdict_uses_share_of_columns_with_a_verdict() -> None:
    rng = np.random.default_rng(1)
    ref = {f"c{i}": rng.normal(size=2000) for i in range(4)}
    cur = {f"c{i}": rng.normal(size=2000) + (1.0 if i < 2 else 0.0) for i in range(4)}
    report = mon.drift_report(ref, cur)
    assert (report.n_drifted, report.share_drifted, report.drifted) == (2, 0.5, True)
    assert not mon.drift_report(ref, cur, drift_share=0.75).drifted
    cur["c3"] = np.full(2000, np.nan)  # no verdict for c3: share is 2 of 3
    report = mon.drift_report(ref, cur, drift_share=0.6)
    assert report.columns["c3"].status == "insufficient_data"
    assert report.n_evaluated == 3
    assert report.share_drifted == pytest.approx(2 / 3)
    assert report.drifted


def test_overrides_and_aliases() -> None:
    ref, cur = _frames(3, 5000, 5000, shift=0.2)
    report = mon.drift_report(
        ref,
        cur,
        methods={"x": "psi", "cat": "chisquare", "few": "TVD"},
        thresholds={"x": 0.5, "cat": 0.01},
    )
    x = report.columns["x"]
    assert (x.method, x.threshold) == ("psi", 0.5)
    assert x.statistic == pytest.approx(mon.stats.psi(ref["x"], cur["x"], bins=20), rel=1e-9)
    assert report.columns["cat"].threshold == 0.01
    assert report.columns["few"].method == "tv"
    everywhere = mon.drift_report(ref, cur, columns=["x"], methods="energy")
    assert everywhere.columns["x"].statistic == pytest.approx(
        sps.energy_distance(ref["x"], cur["x"]), rel=1e-9
    )
    ad = mon.drift_report(ref, cur, columns=["x"], methods="anderson").columns["x"]
    assert ad.p_value == pytest.approx(mon.stats.anderson_darling(ref["x"], cur["x"])[1])
    with pytest.raises(InvalidInputError, match="unknown drift method 'nope'"):
        mon.drift_report(ref, cur, methods={"x": "nope"})
    with pytest.raises(InvalidInputError, match="not compared"):
        mon.drift_report(ref, cur, columns=["x"], thresholds={"cat": 0.1})
    bad = mon.drift_report(ref, cur, methods={"cat": "ks"}).columns["cat"]
    assert (bad.status, bad.drifted) == ("error", False)
    assert "needs a numeric column" in bad.message


# ---------------------------------------------------------------- input types


def _as_pandas(d: dict) -> pd.DataFrame:
    return pd.DataFrame(d)


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(_as_pandas, id="pandas"),
        pytest.param(lambda d: pd.DataFrame(d).astype({"cat": "category"}), id="pandas-cat"),
        pytest.param(lambda d: pa.table(d), id="arrow"),
        pytest.param(lambda d: __import__("polars").DataFrame(d), id="polars"),
    ],
)
def test_input_types_give_the_same_report(convert) -> None:  # type: ignore[no-untyped-def]
    ref, cur = _frames(4, 3000, 2000, shift=0.2)
    expected = mon.drift_report(ref, cur).to_dict()
    assert mon.drift_report(convert(ref), convert(cur)).to_dict() == expected


def test_parquet_and_csv_paths(tmp_path: Path) -> None:
    ref, cur = _frames(5, 3000, 2000, shift=0.2)
    pq.write_table(pa.table(ref), tmp_path / "ref.parquet")
    pd.DataFrame(cur).to_csv(tmp_path / "cur.csv", index=False)
    expected = mon.drift_report(ref, cur).to_dict()
    got = mon.drift_report(tmp_path / "ref.parquet", str(tmp_path / "cur.csv")).to_dict()
    assert got == expected
    with pytest.raises(InvalidInputError, match="does not exist"):
        mon.drift_report(tmp_path / "nope.parquet", cur)
    with pytest.raises(InvalidInputError, match=r"expected a \.parquet"):
        mon.drift_report(tmp_path / "ref.xlsx", cur)
    with pytest.raises(InvalidInputError, match="must be a pandas"):
        mon.drift_report(42, cur)


# ---------------------------------------------------------------- bad input


def test_empty_window_gives_no_verdict() -> None:
    ref, _ = _frames(6, 2000, 10)
    empty = {k: v[:0] for k, v in ref.items()}
    report = mon.drift_report(ref, empty)
    assert {c.status for c in report.columns.values()} == {"insufficient_data"}
    assert (report.drifted, report.status, report.n_evaluated) == (False, "insufficient_data", 0)
    assert mon.drift_report(ref, pd.DataFrame()).columns["x"].status == "missing_column"


def test_min_samples_guard() -> None:
    ref, cur = _frames(7, 2000, 40, shift=3.0)
    assert mon.drift_report(ref, cur).columns["x"].drifted
    guarded = mon.drift_report(ref, cur, min_samples=50).columns["x"]
    assert (guarded.status, guarded.drifted, guarded.statistic) == (
        "insufficient_data",
        False,
        None,
    )
    assert "min_samples=50" in guarded.message
    assert guarded.histogram is not None and guarded.histogram.current.sum() == 40


def test_all_nan_missing_and_extra_columns() -> None:
    ref, cur = _frames(8, 2000, 2000)
    cur["x"] = np.full(2000, np.nan)
    del cur["cat"]
    cur["new"] = np.ones(2000)
    report = mon.drift_report(ref, cur)
    assert report.columns["x"].status == "insufficient_data"
    assert report.columns["x"].histogram.current_missing == 2000  # type: ignore[union-attr]
    assert report.columns["cat"].status == "missing_column"
    assert "not in the current data" in report.columns["cat"].message
    assert report.extra_columns == ("new",)
    assert "new" not in report.columns
    with pytest.raises(InvalidInputError, match="which is not in the reference"):
        mon.drift_report(ref, cur, columns=["new"])


def test_infinities_and_missing_are_left_out() -> None:
    ref, cur = _frames(9, 3000, 3000, shift=0.1)
    clean = mon.drift_report(ref, cur).columns["x"]
    ref["x"] = np.concatenate((ref["x"], [np.inf, -np.inf, np.nan]))
    cur["x"] = np.concatenate((cur["x"], [np.inf, np.nan, np.nan]))
    other = {k: np.concatenate((v, v[:3])) for k, v in ref.items() if k != "x"}
    other_cur = {k: np.concatenate((v, v[:3])) for k, v in cur.items() if k != "x"}
    dirty = mon.drift_report({**other, "x": ref["x"]}, {**other_cur, "x": cur["x"]}).columns["x"]
    assert dirty.statistic == pytest.approx(clean.statistic, rel=1e-12)
    assert (dirty.n_reference, dirty.n_current) == (3000, 3000)
    assert dirty.histogram is not None and dirty.histogram.current_missing == 2


def test_int_and_string_categories() -> None:
    rng = np.random.default_rng(10)
    codes = rng.integers(0, 4, 3000)
    ref = {"plan": codes}
    cur = {"plan": np.array([str(c) for c in rng.integers(0, 4, 3000)], dtype=object)}
    report = mon.drift_report(ref, cur, categorical=["plan"])
    col = report.columns["plan"]
    assert (col.kind, col.status, col.method) == ("categorical", "ok", "jensenshannon")
    assert col.histogram is not None and col.histogram.categories == ["0", "1", "2", "3"]
    assert "compared as string labels" in col.message
    # floats that hold integers label the same way: 1.0 == 1 == "1"
    as_float = mon.drift_report({"plan": codes.astype(float)}, cur, categorical=["plan"])
    assert as_float.columns["plan"].statistic == pytest.approx(col.statistic)
    # undeclared: numeric reference, string current -> a clear per-column error, not a crash
    undeclared = mon.drift_report(ref, cur).columns["plan"]
    assert (undeclared.status, undeclared.drifted) == ("error", False)
    assert "categorical=['plan']" in undeclared.message


def test_mixed_types_and_unseen_categories() -> None:
    rng = np.random.default_rng(11)
    values = rng.choice(["a", "b"], size=3000).astype(object)
    values[::10] = 7  # ints among strings
    cur = rng.choice(["a", "b", "z"], size=3000).astype(object)
    report = mon.drift_report({"m": values}, {"m": cur})
    col = report.columns["m"]
    assert col.kind == "categorical" and col.status in ("ok", "drift")
    assert col.histogram is not None and set(col.histogram.categories or []) == {"7", "a", "b", "z"}
    assert "1 category not in the reference: 'z'" in col.message


def test_nan_statistic_is_never_no_drift() -> None:
    from mloop.monitoring._drift import _verdict

    col = _verdict("x", "numeric", "ks", 0.05, (math.nan, math.nan), 10, 10, None, [])
    assert (col.status, col.drifted, col.statistic) == ("error", False, None)
    col = _verdict("x", "numeric", "kl", 0.1, (math.inf, None), 10, 10, None, [])
    assert (col.status, col.drifted) == ("drift", True)


def test_parameter_validation() -> None:
    ref, cur = _frames(12, 100, 100)
    for kwargs, match in [
        ({"drift_share": 0}, "drift_share"),
        ({"min_samples": 0}, "min_samples"),
        ({"missing": "keep"}, "missing"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"thresholds": -1.0}, "threshold"),
        ({"categorical": ["nope"]}, "which is not in the reference"),
    ]:
        with pytest.raises(InvalidInputError, match=match):
            mon.drift_report(ref, cur, **kwargs)
    with pytest.raises(InvalidInputError, match="same length"):
        mon.drift_report({"a": [1, 2], "b": [1]}, cur)


def test_missing_bin() -> None:
    ref, cur = _frames(13, 4000, 4000)
    cur["x"][:1000] = np.nan
    dropped = mon.drift_report(ref, cur, columns=["x"], methods="jensenshannon").columns["x"]
    binned = mon.drift_report(
        ref, cur, columns=["x"], methods="jensenshannon", missing="bin"
    ).columns["x"]
    assert not dropped.drifted
    assert binned.drifted and binned.statistic > dropped.statistic  # type: ignore[operator]


# ---------------------------------------------------------------- results


def test_report_serialization_is_json_safe_and_complete(tmp_path: Path) -> None:
    ref, cur = _frames(14, 3000, 3000, shift=0.5)
    cur["x"][:5] = np.inf
    report = mon.drift_report(ref, cur)
    data = json.loads(report.to_json())
    assert data == report.to_dict()
    assert set(data) >= {"drifted", "share_drifted", "n_drifted", "columns", "drift_share"}
    x = data["columns"]["x"]
    assert set(x) == {
        "name",
        "kind",
        "method",
        "statistic",
        "p_value",
        "threshold",
        "drifted",
        "n_reference",
        "n_current",
        "status",
        "message",
        "histogram",
        "error_bound",
        "borderline",
    }
    hist = x["histogram"]
    assert (hist["edges"][0], hist["edges"][-1]) == ("-Infinity", "Infinity")  # the codec's form
    assert all(isinstance(e, float) for e in hist["edges"][1:-1])
    assert sum(hist["reference"]) == x["n_reference"] and sum(hist["current"]) == x["n_current"]
    assert len(hist["edges"]) == len(hist["reference"]) + 1
    col = report.columns["x"]
    assert col.histogram is not None and np.isneginf(col.histogram.edges[0])  # type: ignore[index]
    cat = report.columns["cat"].histogram
    assert cat is not None and cat.edges is None and cat.categories == ["a", "b", "c", "d"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        col.drifted = False  # type: ignore[misc]


def test_to_html(tmp_path: Path) -> None:
    pytest.importorskip("mloop.monitoring._html")
    ref, cur = _frames(15, 3000, 3000, shift=0.5)
    out = mon.drift_report(ref, cur).to_html(tmp_path / "drift.html")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") or text.lower().startswith("<!doctype html>")
    assert "cat" in text and "wasserstein" in text


def test_public_api() -> None:
    drift_names = [
        "ColumnDrift",
        "ColumnHistogram",
        "DriftMethod",
        "DriftReport",
        "Profile",
        "drift_report",
        "stats",
    ]
    assert set(drift_names) <= set(mon.__all__)
    for name in mon.__all__:
        assert hasattr(mon, name), name


def test_explicit_column_selection_reports_no_extra_columns() -> None:
    rng = np.random.default_rng(3)
    ref = {"a": rng.normal(size=500), "b": rng.normal(size=500)}
    cur = {"a": rng.normal(size=500), "b": rng.normal(size=500), "new": rng.normal(size=500)}
    assert mon.drift_report(ref, cur).extra_columns == ("new",)
    assert mon.drift_report(ref, cur, columns=["a"]).extra_columns == ()
