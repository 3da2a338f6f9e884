"""drift_report: each method's statistic, default threshold and verdict; the rules at their boundaries.

Every boundary is tested on both sides; every statistic against SciPy or a formula written out here.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
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
            "binary": (rng.random(n) < 0.3 + s / 4).astype(np.int64),
            "cat": rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.2, 0.1]),
        }

    return make(n_ref, 0.0), make(n_cur, shift)


def _counts(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.union1d(ref, cur)
    return (
        np.array([np.sum(ref == v) for v in labels]),
        np.array([np.sum(cur == v) for v in labels]),
    )


# ---------------------------------------------------------------- methods and thresholds

_TESTS = ("ks", "cramer_von_mises", "anderson", "chisquare", "z")
_DISTANCES = ("wasserstein", "energy", "jensenshannon", "psi", "kl", "hellinger", "tv")


def _bins20(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts on 20 reference lower-quantile bins with open end bins, written out here."""
    r = np.sort(ref[np.isfinite(ref)])
    edges = np.unique(np.quantile(r, np.arange(1, 20) / 20, method="lower"))
    full = np.concatenate(([-np.inf], edges, [np.inf]))

    def count(x: np.ndarray) -> np.ndarray:
        x = x[np.isfinite(x)]
        return np.array([np.sum((x >= a) & (x < b)) for a, b in itertools.pairwise(full)])

    return count(r), count(cur)


def _z_by_hand(r: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    n1, n2 = r.sum(), c.sum()
    pooled = (r[0] + c[0]) / (n1 + n2)
    z = (r[0] / n1 - c[0] / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return z, 2 * sps.norm.sf(abs(z))


def _from_counts(method: str, rc: np.ndarray, cc: np.ndarray) -> tuple[float, float | None]:
    """Each binned method by hand or by SciPy; distances smoothed as documented (PSI, KL: 0.5)."""
    if method == "chisquare":
        table = np.vstack((rc, cc))
        res = sps.chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False)
        return res.statistic, res.pvalue
    if method == "z":
        keep = (rc + cc) > 0
        return _z_by_hand(rc[keep], cc[keep])
    p0, q0 = rc / rc.sum(), cc / cc.sum()
    p, q = (rc + 0.5) / (rc.sum() + 0.5 * rc.size), (cc + 0.5) / (cc.sum() + 0.5 * cc.size)
    return {
        "jensenshannon": spd.jensenshannon(rc, cc),
        "psi": float(np.sum((q - p) * np.log(q / p))),
        "kl": sps.entropy(p, q),
        "hellinger": math.sqrt(np.sum((np.sqrt(p0) - np.sqrt(q0)) ** 2) / 2),
        "tv": 0.5 * float(np.abs(p0 - q0).sum()),
    }[method], None


def _expected(method: str, ref: np.ndarray, cur: np.ndarray) -> tuple[float, float | None]:
    if method == "ks":
        res = sps.ks_2samp(ref, cur)
        return res.statistic, res.pvalue
    if method == "wasserstein":
        return sps.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001), None
    if method == "energy":
        return sps.energy_distance(ref, cur), None
    if method == "cramer_von_mises":
        res = sps.cramervonmises_2samp(ref, cur)
        return res.statistic, res.pvalue
    if method == "anderson":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="p-value (capped|floored)")
            res = sps.anderson_ksamp([ref, cur], variant="midrank")
        return res.statistic, res.pvalue
    if ref.dtype.kind in "iu":  # a 0/1 column compared value by value
        return _from_counts(method, *_counts(ref, cur))
    return _from_counts(method, *_bins20(ref, cur))


def _column_for(method: str, seed: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if method == "z":
        return (rng.random(400) < 0.3).astype(np.int64), (rng.random(300) < 0.3 + shift / 6).astype(
            np.int64
        )
    return rng.normal(size=400), rng.normal(shift, size=300)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", _TESTS + _DISTANCES)
def test_each_method_default_threshold_statistic_and_status(method: str, seed: int) -> None:
    ref, cur = _column_for(method, seed, 0.2)
    col = mon.drift_report({"v": ref}, {"v": cur}, methods=method).columns["v"]
    is_test = method in _TESTS
    assert (col.method, col.threshold) == (method, 0.05 if is_test else 0.1)
    stat, p = _expected(method, ref, cur)
    assert col.statistic == pytest.approx(stat, rel=1e-9, abs=1e-12)
    if is_test:
        assert col.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)
        assert col.drifted == (p < 0.05)
    else:
        assert col.p_value is None
        assert col.drifted == (stat >= 0.1)
    assert col.status == ("drift" if col.drifted else "ok")
    # The same values: no drift; far apart: drift (whatever the seed).
    same = mon.drift_report({"v": ref}, {"v": ref.copy()}, methods=method).columns["v"]
    assert (same.status, same.drifted) == ("ok", False)
    far_ref, far_cur = _column_for(method, seed, 3.0)
    far = mon.drift_report({"v": far_ref}, {"v": far_cur}, methods=method).columns["v"]
    assert (far.status, far.drifted) == ("drift", True)


@pytest.mark.parametrize("method", _TESTS + _DISTANCES)
def test_threshold_boundary(method: str) -> None:
    """Tests drift when ``p < threshold``; distances when ``statistic >= threshold``."""
    ref, cur = _column_for(method, 4, 0.2)
    col = mon.drift_report({"v": ref}, {"v": cur}, methods=method).columns["v"]
    value = col.p_value if method in _TESTS else col.statistic
    assert value is not None and 0 < value < 1

    def drifted(threshold: float) -> bool:
        report = mon.drift_report({"v": ref}, {"v": cur}, methods=method, thresholds=threshold)
        return report.columns["v"].drifted

    above, below = math.nextafter(value, 2.0), math.nextafter(value, -1.0)
    if method in _TESTS:
        assert (drifted(below), drifted(value), drifted(above)) == (False, False, True)
    else:
        assert (drifted(below), drifted(value), drifted(above)) == (True, True, False)


@pytest.mark.parametrize(
    "method", ["chisquare", "z", "jensenshannon", "psi", "kl", "hellinger", "tv"]
)
def test_binned_methods_on_categorical_columns(method: str) -> None:
    rng = np.random.default_rng(18)
    labels = ["a", "b"] if method == "z" else ["a", "b", "c", "d"]
    ref = rng.choice(labels, size=900)
    cur = rng.choice(labels, size=700, p=None if method != "z" else [0.6, 0.4])
    col = mon.drift_report({"c": ref}, {"c": cur}, methods=method).columns["c"]
    stat, p = _from_counts(method, *_counts(ref, cur))
    assert (col.kind, col.statistic) == ("categorical", pytest.approx(stat, rel=1e-9))
    assert col.p_value == (None if p is None else pytest.approx(p, rel=1e-9))


@pytest.mark.parametrize(("n", "small"), [(999, True), (1000, True), (1001, False)])
def test_auto_method_at_the_reference_size_boundary(n: int, small: bool) -> None:
    rng = np.random.default_rng(n)

    def make(size: int) -> dict:
        return {
            "x": rng.normal(size=size),
            "few": np.tile(np.arange(4.0), size)[:size],
            "binary": np.tile([0, 1], size)[:size],
            "cat": rng.choice(["a", "b", "c"], size=size),
            "flag": np.tile(["y", "n"], size)[:size],
        }

    report = mon.drift_report(make(n), make(300))
    got = {name: c.method for name, c in report.columns.items()}
    if small:
        assert got == {
            "x": "ks",
            "few": "chisquare",
            "binary": "z",
            "cat": "chisquare",
            "flag": "z",
        }
        assert report.columns["x"].threshold == 0.05
    else:
        assert got == dict.fromkeys(got, "jensenshannon") | {"x": "wasserstein"}
        assert report.columns["x"].threshold == 0.1
    # Only non-missing, finite reference values count towards the size.
    padded = {"x": np.concatenate((rng.normal(size=n), [np.nan, np.inf]))}
    assert mon.drift_report(padded, {"x": rng.normal(size=300)}).columns["x"].method == (
        "ks" if small else "wasserstein"
    )
    labels = np.array([*rng.choice(["a", "b", "c"], size=n), None, None], dtype=object)
    assert mon.drift_report({"c": labels}, {"c": np.array(["a"] * 300)}).columns["c"].method == (
        "chisquare" if small else "jensenshannon"
    )


@pytest.mark.parametrize(
    ("n_values", "small_method", "large_method"),
    [
        (1, "z", "jensenshannon"),
        (2, "z", "jensenshannon"),
        (3, "chisquare", "jensenshannon"),
        (5, "chisquare", "jensenshannon"),
        (6, "ks", "wasserstein"),
    ],
)
def test_auto_method_at_the_distinct_value_boundaries(
    n_values: int, small_method: str, large_method: str
) -> None:
    for n_ref, expected in ((600, small_method), (2400, large_method)):
        values = np.tile(np.arange(n_values, dtype=float) * 1.5, n_ref)[:n_ref]
        col = mon.drift_report({"v": values}, {"v": values[::-1].copy()}).columns["v"]
        assert (col.method, col.status) == (expected, "ok"), n_ref
        assert col.histogram is not None
        # Compared value by value (a category per value) exactly when at most 5 values.
        assert (col.histogram.categories is not None) == (n_values <= 5)
        # Categorical columns: any number of categories is compared category by category.
        labels = np.array([f"v{i}" for i in range(n_values)])[(values / 1.5).astype(int)]
        cat = mon.drift_report({"c": labels}, {"c": labels}).columns["c"]
        if n_ref > 1000:
            assert cat.method == "jensenshannon"
        else:
            assert cat.method == ("z" if n_values <= 2 else "chisquare")


def test_distinct_values_are_counted_over_both_samples_for_small_references() -> None:
    two = np.tile([0.0, 1.0], 300)
    assert mon.drift_report({"v": two}, {"v": np.append(two, 2.0)}).columns["v"].method == (
        "chisquare"
    )
    five = np.tile(np.arange(5.0), 120)
    assert mon.drift_report({"v": five}, {"v": np.append(five, 9.0)}).columns["v"].method == "ks"
    ab = np.tile(["a", "b"], 300)
    assert mon.drift_report({"c": ab}, {"c": np.append(ab, "z")}).columns["c"].method == (
        "chisquare"
    )


def test_dataset_verdict_at_the_drift_share_boundary() -> None:
    rng = np.random.default_rng(19)
    ref = {name: rng.normal(size=600) for name in ("a", "b", "c")}
    cur = {"a": ref["a"] + 5.0, "b": ref["b"].copy(), "c": ref["c"].copy()}  # exactly 1 of 3
    at = mon.drift_report(ref, cur, drift_share=1 / 3)
    assert [c.status for c in at.columns.values()] == ["drift", "ok", "ok"]
    assert (at.share_drifted, at.drift_share, at.drifted, at.status) == (
        1 / 3,
        1 / 3,
        True,
        "drift",
    )
    above = mon.drift_report(ref, cur, drift_share=0.34)
    assert (above.drifted, above.status) == (False, "ok")
    assert mon.drift_report(ref, cur).drift_share == 0.5  # the default
    every = mon.drift_report(ref, {k: v + 5.0 for k, v in ref.items()}, drift_share=1)
    assert (every.share_drifted, every.drifted) == (1.0, True)


def test_n_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """``n_jobs=1`` runs in the calling thread; otherwise a pool of ``n_jobs`` threads."""
    from concurrent.futures import ThreadPoolExecutor

    from mloop.monitoring import _drift

    pools: list[int | None] = []

    class Recording(ThreadPoolExecutor):
        def __init__(self, max_workers: int | None = None) -> None:
            pools.append(max_workers)
            super().__init__(max_workers=max_workers)

    monkeypatch.setattr(_drift, "ThreadPoolExecutor", Recording)
    ref, cur = _frames(16, 600, 500, shift=0.3)
    serial = mon.drift_report(ref, cur, n_jobs=1)
    assert pools == []
    assert mon.drift_report(ref, cur, n_jobs=3).to_dict() == serial.to_dict()
    assert pools == [3]
    pools.clear()
    mon.drift_report(ref, cur, columns=["x"], n_jobs=4)  # one column: no pool
    assert pools == []
    # By default min(4, cpu count) threads; one CPU (or an unknown count): no pool.
    for cpus, expected in [(8, [4]), (2, [2]), (1, []), (None, [])]:
        pools.clear()
        monkeypatch.setattr(_drift.os, "cpu_count", lambda cpus=cpus: cpus)
        assert mon.drift_report(ref, cur).to_dict() == serial.to_dict()
        assert pools == expected, cpus


@pytest.mark.parametrize(("n", "has_verdict"), [(29, False), (30, True)])
def test_min_samples_boundary(n: int, has_verdict: bool) -> None:
    rng = np.random.default_rng(20)
    big = {"x": rng.normal(size=500), "c": rng.choice(["a", "b", "c"], size=500)}
    small = {"x": rng.normal(size=n), "c": rng.choice(["a", "b", "c"], size=n)}
    for ref, cur in ((big, small), (small, big)):  # too few on either side
        report = mon.drift_report(ref, cur)
        for col in report.columns.values():
            assert col.has_verdict == has_verdict, col
            if not has_verdict:
                assert col.status == "insufficient_data" and "min_samples=30" in col.message
    one = mon.drift_report({"x": [1.0, 2.0]}, {"x": [1.5]}, min_samples=1).columns["x"]
    assert one.status == "ok"


def test_numeric_column_compared_value_by_value_bins_missing_values() -> None:
    rng = np.random.default_rng(21)
    ref = rng.integers(0, 4, 3000).astype(float)
    cur = rng.integers(0, 4, 2000).astype(float)
    ref[:100], cur[:600] = np.nan, np.nan
    r, c = _counts(ref[100:], cur[600:])
    dropped = mon.drift_report({"v": ref}, {"v": cur}).columns["v"]
    binned = mon.drift_report({"v": ref}, {"v": cur}, missing="bin").columns["v"]
    assert dropped.method == binned.method == "jensenshannon"
    assert dropped.statistic == pytest.approx(spd.jensenshannon(r, c), rel=1e-9)
    assert binned.statistic == pytest.approx(
        spd.jensenshannon(np.append(r, 100), np.append(c, 600)), rel=1e-9
    )


def test_categorical_column_bins_missing_values() -> None:
    rng = np.random.default_rng(22)
    ref = rng.choice(["a", "b", "c"], size=2000).astype(object)
    cur = rng.choice(["a", "b", "c"], size=1500).astype(object)
    ref[:20], cur[:300] = None, None
    r, c = _counts(ref[20:].astype(str), cur[300:].astype(str))
    dropped = mon.drift_report({"c": ref}, {"c": cur}).columns["c"]
    binned = mon.drift_report({"c": ref}, {"c": cur}, missing="bin").columns["c"]
    assert dropped.statistic == pytest.approx(spd.jensenshannon(r, c), rel=1e-9)
    assert binned.statistic == pytest.approx(
        spd.jensenshannon(np.append(r, 20), np.append(c, 300)), rel=1e-9
    )
    assert (dropped.n_reference, dropped.n_current) == (1980, 1200)


def test_boolean_current_data_is_compared_with_a_numeric_reference() -> None:
    rng = np.random.default_rng(23)
    ref = (rng.random(600) < 0.3).astype(np.int64)
    cur = rng.random(500) < 0.5
    col = mon.drift_report({"b": ref}, {"b": cur}).columns["b"]
    assert (col.kind, col.method, col.status) == ("numeric", "z", "drift")
    assert (col.statistic, col.p_value) == pytest.approx(
        _z_by_hand(*_counts(ref, cur.astype(np.int64))), rel=1e-9
    )


# ---------------------------------------------------------------- per-column errors


def test_unsupported_current_column_is_an_error_of_that_column() -> None:
    rng = np.random.default_rng(24)
    ref = {"x": rng.normal(size=200), "c": rng.choice(["a", "b"], size=200)}
    dates = np.array(["2024-01-01"] * 150, dtype="datetime64[D]")
    for reference in (ref, mon.Profile.from_data(ref)):
        report = mon.drift_report(reference, {"x": dates, "c": dates})
        for name, kind in (("x", "numeric"), ("c", "categorical")):
            col = report.columns[name]
            assert (col.status, col.drifted, col.kind, col.method) == ("error", False, kind, "auto")
            assert (col.threshold, col.n_reference, col.statistic) == (0.0, 200, None)
            assert col.message == (
                f"column {name!r} has unsupported type date32[day] in the current data"
            )
    forced = mon.drift_report(ref, {"x": dates, "c": dates}, methods="psi").columns["x"]
    assert (forced.method, forced.threshold) == ("psi", 0.1)
    with pytest.raises(InvalidInputError) as err:
        mon.drift_report({"d": dates}, {"d": dates})
    assert str(err.value) == "there are no columns to compare (none of a supported type)."


def test_missing_column_threshold_and_counts() -> None:
    rng = np.random.default_rng(25)
    ref = {"x": rng.normal(size=200), "y": rng.normal(size=200)}
    cur = {"y": rng.normal(size=200)}
    auto = mon.drift_report(ref, cur).columns["x"]
    assert (auto.status, auto.method, auto.threshold, auto.n_reference) == (
        "missing_column",
        "auto",
        0.0,
        200,
    )
    chosen = mon.drift_report(ref, cur, methods={"x": "kl"}).columns["x"]
    assert (chosen.method, chosen.threshold) == ("kl", 0.1)
    chosen = mon.drift_report(ref, cur, methods={"x": "anderson"}).columns["x"]
    assert (chosen.method, chosen.threshold) == ("anderson", 0.05)
    given = mon.drift_report(ref, cur, thresholds={"x": 0.3, "y": 0.2}).columns["x"]
    assert given.threshold == 0.3


def test_profile_numeric_column_listed_as_categorical_is_an_error() -> None:
    rng = np.random.default_rng(26)
    data = {"x": rng.integers(0, 3, 300), "y": rng.normal(size=300)}
    profile = mon.Profile.from_data(data)
    report = mon.drift_report(profile, data, categorical=["x"])
    col = report.columns["x"]
    assert (col.status, col.kind) == ("error", "numeric")
    assert col.message == (
        "column 'x' is numeric in the reference profile but listed as categorical; "
        "rebuild the profile with categorical=[...]"
    )
    assert report.columns["y"].status == "ok"
    as_cat = mon.drift_report(data, data, categorical=["x"]).columns["x"]
    assert (as_cat.kind, as_cat.status) == ("categorical", "ok")


def test_sketched_reference_bounds_and_raw_methods() -> None:
    rng = np.random.default_rng(27)
    ref, cur = rng.normal(size=5000), rng.normal(0.2, size=3000)
    profile = mon.Profile.from_data({"x": ref}, max_exact=1000, sketch_k=200)
    sketch = profile.columns["x"]
    eps = sketch.rank_error()  # type: ignore[union-attr]
    assert 0 < eps < 0.05
    width, std = float(ref.max() - ref.min()), float(np.std(ref))
    exact = {
        "ks": (sps.ks_2samp(ref, cur).statistic, eps),
        "wasserstein": (sps.wasserstein_distance(ref, cur) / std, eps * width / std),
        "energy": (sps.energy_distance(ref, cur), eps * math.sqrt(2 * width)),
    }
    for method, (statistic, bound) in exact.items():
        col = mon.drift_report(profile, {"x": cur}, methods=method).columns["x"]
        assert col.message.startswith(
            f"reference is a KLL sketch: statistic within ±{bound:.3g} of exact"
        )
        assert col.error_bound == pytest.approx(bound, rel=1e-12), method
        assert abs(col.statistic - statistic) <= bound, method  # type: ignore[operator]
    exact_profile = mon.drift_report(mon.Profile.from_data({"x": ref}), {"x": cur}, methods="ks")
    assert exact_profile.columns["x"].message == ""
    for method in ("cramer_von_mises", "anderson"):
        col = mon.drift_report(profile, {"x": cur}, methods=method).columns["x"]
        assert (col.status, col.method, col.threshold) == ("error", method, 0.05)
        assert "needs the exact reference values" in col.message


def test_unseen_category_notes() -> None:
    ref = {"c": np.tile(["a", "b"], 100)}

    def message(n_new: int) -> str:
        cur = np.concatenate((np.tile(["a", "b"], 100), [f"n{i}" for i in range(n_new)]))
        return mon.drift_report(ref, {"c": cur}).columns["c"].message

    assert message(0) == ""
    assert message(1) == "1 category not in the reference: 'n0'"
    assert message(5) == "5 categories not in the reference: 'n0', 'n1', 'n2', 'n3', 'n4'"
    assert message(6) == "6 categories not in the reference: 'n0', 'n1', 'n2', 'n3', 'n4' ..."
    # A category the current data declares but never holds is not "seen".
    cur = pd.DataFrame({"c": pd.Categorical(np.tile(["a", "b"], 100), categories=["a", "b", "z"])})
    assert mon.drift_report(ref, cur).columns["c"].message == ""


# ---------------------------------------------------------------- parameters


def test_parameter_boundaries() -> None:
    ref, cur = _frames(28, 100, 100)
    assert mon.drift_report(ref, cur, drift_share=1).drift_share == 1.0
    assert mon.drift_report(ref, cur, min_samples=1).columns["x"].has_verdict
    assert mon.drift_report(ref, cur, n_jobs=1).columns["x"].has_verdict
    zero = mon.drift_report(ref, cur, thresholds=0, methods="tv")
    assert all(c.drifted for c in zero.columns.values())  # a distance >= 0 always
    for kwargs, match in [
        ({"drift_share": 1.01}, "drift_share"),
        ({"drift_share": -0.5}, "drift_share"),
        ({"drift_share": "0.5"}, "drift_share"),
        ({"min_samples": 1.5}, "min_samples"),
        ({"n_jobs": 1.0}, "n_jobs"),
        ({"thresholds": math.nan}, "threshold"),
        ({"thresholds": math.inf}, "threshold"),
        ({"thresholds": "0.1"}, "threshold"),
        ({"methods": {"x": "ks", "nope": "ks"}}, "nope"),
    ]:
        with pytest.raises(InvalidInputError, match=match):
            mon.drift_report(ref, cur, **kwargs)


def test_bins_and_row_counts() -> None:
    rng = np.random.default_rng(29)
    ref = {"x": np.concatenate((rng.normal(size=1500), [np.nan] * 5))}
    cur = {"x": rng.normal(size=700)}
    default = mon.drift_report(ref, cur)
    assert len(default.columns["x"].histogram.edges) == 21  # type: ignore[union-attr,arg-type]
    seven = mon.drift_report(ref, cur, bins=7)
    assert len(seven.columns["x"].histogram.edges) == 8  # type: ignore[union-attr,arg-type]
    assert (default.n_reference_rows, default.n_current_rows) == (1505, 700)
    from_profile = mon.drift_report(mon.Profile.from_data(ref), cur)
    assert (from_profile.n_reference_rows, from_profile.n_current_rows) == (1505, 700)


@pytest.mark.parametrize(
    ("alias", "method"),
    [
        ("kl_div", "kl"),
        ("kl_divergence", "kl"),
        ("TVD", "tv"),
        ("total_variation", "tv"),
        ("energy_dist", "energy"),
        ("energy_distance", "energy"),
        ("chi_square", "chisquare"),
        ("z_proportions", "z"),
        ("js", "jensenshannon"),
        ("jensen_shannon", "jensenshannon"),
        ("cvm", "cramer_von_mises"),
        ("anderson_darling", "anderson"),
    ],
)
def test_method_aliases(alias: str, method: str) -> None:
    rng = np.random.default_rng(30)
    data = {"b": (rng.random(300) < 0.4).astype(np.int64)}
    cur = {"b": (rng.random(300) < 0.4).astype(np.int64)}
    col = mon.drift_report(data, cur, methods={"b": alias}).columns["b"]
    expected = mon.drift_report(data, cur, methods={"b": method}).columns["b"]
    assert (col.method, col.status) == (method, expected.status)
    assert col.statistic == expected.statistic


def test_infinite_p_value_is_an_error() -> None:
    from mloop.monitoring._drift import _verdict

    col = _verdict("x", "numeric", "ks", 0.05, (0.5, math.inf), 10, 10, None, ["note"])
    assert (col.status, col.drifted, col.p_value) == ("error", False, None)
    assert col.message == "ks is undefined for these samples (got inf); note"
    col = _verdict("x", "numeric", "psi", 0.1, (math.nan, None), 10, 10, None, [])
    assert (col.status, col.drifted) == ("error", False)


_METHODS = (
    "['auto', 'ks', 'wasserstein', 'energy', 'cramer_von_mises', 'anderson', 'chisquare', 'z', "
    "'jensenshannon', 'psi', 'kl', 'hellinger', 'tv']"
)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drift_share": 1.01}, "`drift_share` must be a float in (0, 1]; got 1.01."),
        ({"min_samples": 1.5}, "`min_samples` must be an int >= 1; got 1.5."),
        ({"missing": "keep"}, "`missing` must be 'drop' or 'bin'; got 'keep'."),
        ({"n_jobs": 1.0}, "`n_jobs` must be an int >= 1; got 1.0."),
        ({"thresholds": math.nan}, "threshold for 'x' must be a finite float >= 0; got nan."),
        ({"thresholds": {"c": "0.1"}}, "threshold for 'c' must be a finite float >= 0; got '0.1'."),
        (
            {"methods": {"x": "nope"}},
            f"unknown drift method 'nope' for column 'x'; expected one of {_METHODS}.",
        ),
        (
            {"methods": {"x": "ks", "nope": "ks"}},
            "`methods` names ['nope'], which is not compared; compared columns: ['x', 'c']. "
            "Pass names from that list.",
        ),
        (
            {"thresholds": {"nope": 0.1}},
            "`thresholds` names ['nope'], which is not compared; compared columns: ['x', 'c']. "
            "Pass names from that list.",
        ),
        (
            {"columns": ["x"], "categorical": ["c"]},
            "`categorical` names ['c'], which is not compared; compared columns: ['x']. "
            "Pass names from that list.",
        ),
        (
            {"columns": ["nope"]},
            "`columns` names ['nope'], which is not in the reference data; it has 2 columns: "
            "['x', 'c']. Pass names from that list.",
        ),
    ],
)
def test_error_messages(kwargs: dict, message: str) -> None:
    rng = np.random.default_rng(31)
    data = {"x": rng.normal(size=100), "c": rng.choice(["a", "b"], size=100)}
    with pytest.raises(InvalidInputError) as err:
        mon.drift_report(data, data, **kwargs)
    assert str(err.value) == message
    if "columns" not in kwargs:  # the same check against a profile names the profile
        with pytest.raises(InvalidInputError) as err:
            mon.drift_report(mon.Profile.from_data(data), data, **kwargs)
        assert str(err.value) == message
    with pytest.raises(InvalidInputError) as err:
        mon.drift_report(mon.Profile.from_data(data), data, columns=["nope"])
    assert str(err.value) == (
        "`columns` names ['nope'], which is not in the reference profile; it has 2 columns: "
        "['x', 'c']. Pass names from that list."
    )


def test_column_messages() -> None:
    rng = np.random.default_rng(32)
    ref = {"x": rng.normal(size=200), "c": rng.choice(["a", "b"], size=200)}
    few = {"x": rng.normal(size=10), "c": rng.choice(["a", "b"], size=10)}
    report = mon.drift_report(ref, few)
    assert report.columns["x"].message == (
        "200 reference and 10 current finite values; at least min_samples=30 needed in each"
    )
    assert report.columns["c"].message == (
        "200 reference and 10 current non-missing values; at least min_samples=30 needed in each"
    )
    wrong = mon.drift_report(ref, ref, methods={"c": "wasserstein"}).columns["c"]
    assert (wrong.status, wrong.message) == (
        "error",
        "wasserstein needs a numeric column; 'c' is categorical",
    )
    mismatch = mon.drift_report(ref, {"x": ref["c"], "c": ref["c"]}).columns["x"]
    assert mismatch.message == (
        "column 'x' is numeric in the reference but holds string values in the current data; "
        "pass categorical=['x'] to compare both as categories"
    )
    gone = mon.drift_report(ref, {"c": ref["c"]}).columns["x"]
    assert gone.message == "column 'x' is not in the current data"
    profile = mon.Profile.from_data({"x": np.arange(3000.0)}, max_exact=100)
    raw = mon.drift_report(profile, {"x": np.arange(50.0)}, methods="cvm").columns["x"]
    assert raw.message == (
        "cramer_von_mises needs the exact reference values; the profile of 'x' holds a sketch "
        "(build it with a larger `max_exact`)"
    )


@pytest.mark.parametrize(
    ("ref_values", "source", "labels", "other_numbers"),
    [
        (np.tile([1, 2], 100), "integer", ["1", "2"], np.tile([1.0, 2.0], 100)),
        (np.tile([1.0, 2.0], 100), "float", ["1", "2"], np.tile([1, 2], 100)),
        (np.tile([True, False], 100), "boolean", ["True", "False"], None),
    ],
)
def test_notes_on_labels_of_another_type(
    ref_values: np.ndarray, source: str, labels: list[str], other_numbers: np.ndarray | None
) -> None:
    strings = np.array(labels * 100 + ["new"], dtype=object)
    col = mon.drift_report({"v": ref_values}, {"v": strings}, categorical=["v"]).columns["v"]
    assert col.message == (
        f"1 category not in the reference: 'new'; reference holds {source} values and current "
        "string values; compared as string labels"
    )
    same_kind = mon.drift_report({"v": ref_values}, {"v": ref_values}, categorical=["v"])
    assert same_kind.columns["v"].message == ""
    if other_numbers is not None:  # integers and floats are both numbers: no note
        numbers = mon.drift_report({"v": ref_values}, {"v": other_numbers}, categorical=["v"])
        assert numbers.columns["v"].message == ""
