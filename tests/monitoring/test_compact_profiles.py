"""Compact profiles: bounded size, exact while small, sketched beyond, error bounds and borderline
verdicts, and the accuracy study (compact-profile verdicts against the exact computation)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon
from typer.testing import CliRunner

from mloop import monitoring as mon
from mloop.cli import get_app
from mloop.monitoring._profile import CategoricalProfile, NumericProfile
from mloop.monitoring._profile_columns import sketch_nbytes
from mloop.monitoring.stats import kernels

DATA = Path(__file__).parent / "data"


def _table(n: int, seed: int) -> dict[str, np.ndarray]:
    """27 columns of varied shapes, as bench/drift.py builds them: 22 numeric, 5 categorical."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {
        "n00": rng.normal(0, 1, n),
        "n01": rng.normal(10, 3, n),
        "n02": rng.lognormal(0, 1, n),
        "n03": rng.standard_t(2, n),
        "n04": rng.pareto(1.5, n),
        "n05": rng.exponential(2, n),
        "n06": rng.uniform(0, 100, n),
        "n07": rng.poisson(3, n),
        "n08": rng.integers(0, 100, n),
        "n09": rng.binomial(20, 0.3, n),
        "n10": rng.normal(50, 10, n),
        "n11": rng.gamma(2, 2, n),
        "n12": rng.beta(2, 5, n),
        "n13": np.where(rng.random(n) < 0.3, rng.normal(-2, 0.5, n), rng.normal(2, 1, n)),
        "n14": rng.normal(0, 1, n),
        "n15": rng.lognormal(3, 0.5, n),
        "n16": rng.weibull(1.5, n),
        "n17": rng.geometric(0.2, n),
        "n18": np.round(rng.normal(100, 15, n), 2),
        "n19": rng.laplace(0, 1, n),
        "target": (rng.random(n) < 0.3).astype(np.int64),
        "proba": rng.beta(2, 4, n),
    }
    for name in ("n10", "n11", "n15"):
        cols[name][rng.random(n) < 0.05] = np.nan
    for k in (3, 10, 50, 200, 1000):
        p = 1.0 / np.arange(1, k + 1) ** 0.8
        labels = np.array([f"v{i}" for i in range(k)], dtype=object)
        cols[f"c{k}"] = labels[rng.choice(k, size=n, p=p / p.sum())]
    return cols


# ---------------------------------------------------------------- size


def test_profile_of_27_columns_stays_under_1_mb_and_does_not_grow(tmp_path: Path) -> None:
    sizes = {}
    for n in (100_000, 1_000_000):
        path = tmp_path / f"{n}.profile"
        profile = mon.Profile.from_data(_table(n, 1))
        profile.save(path)
        sizes[n] = path.stat().st_size
        kinds = {name: col.is_exact for name, col in profile.columns.items()}
        # integer columns with few distinct values and every categorical stay exact
        assert all(kinds[c] for c in ("n07", "n08", "n09", "n17", "target", "c1000"))
        assert not any(kinds[c] for c in ("n00", "n03", "n18", "proba"))
    assert sizes[1_000_000] <= 1_000_000
    # bounded: a KLL sketch grows only with log(rows) (+9% from 100k to 1M rows, +2% to 4M)
    assert sizes[1_000_000] <= 1.10 * sizes[100_000]
    exact = tmp_path / "exact.profile"
    mon.Profile.from_data(_table(100_000, 1), exact=True).save(exact)
    assert exact.stat().st_size > 10 * sizes[100_000]


def test_small_columns_stay_exact_and_the_rule_follows_the_sketch_size() -> None:
    budget = sketch_nbytes(2048)
    assert 40_000 < budget < 60_000
    fits = budget // 8
    rng = np.random.default_rng(3)
    x = rng.normal(size=2 * fits)
    small = mon.Profile.from_data({"x": x[:fits]}).columns["x"]
    big = mon.Profile.from_data({"x": x[: fits + 1]}).columns["x"]
    assert isinstance(small, NumericProfile) and isinstance(big, NumericProfile)
    assert small.is_exact and small.nbytes <= budget
    assert not big.is_exact and big.values is None
    # few distinct floats stay exact (run-length encoded) at any row count
    rounded = np.round(rng.normal(size=200_000), 1)
    col = mon.Profile.from_data({"r": rounded}).columns["r"]
    assert isinstance(col, NumericProfile) and col.is_exact and col.weights is not None
    # merging exact halves stays exact while it fits, and becomes a sketch beyond
    a, b, c = (mon.Profile.from_data({"x": part}) for part in np.array_split(x[: fits + 3], 3))
    assert a.merge(b).columns["x"].is_exact  # type: ignore[union-attr]
    grown = a.merge(b).merge(c)
    assert not grown.columns["x"].is_exact  # type: ignore[union-attr]
    assert grown.columns["x"].n == fits + 3
    # the same values merged again are run-length encoded, and small enough to stay exact
    assert a.merge(a).merge(a).columns["x"].is_exact  # type: ignore[union-attr]


def test_profiles_written_by_format_1_still_load() -> None:
    old = mon.Profile.load(DATA / "profile-v1.npz")
    assert (old.n_rows, old.max_exact, old.sketch_k) == (3000, 1000, 64)
    x = old.columns["x"]
    assert isinstance(x, NumericProfile) and not x.is_exact and x.bin_error == 0.0
    c = old.columns["c"]
    assert isinstance(c, CategoricalProfile) and c.is_exact and c.categories == ["a", "b", "c"]
    rng = np.random.default_rng(0)
    cur = {
        "x": rng.normal(size=3000),
        "k": rng.integers(0, 5, 3000),
        "c": rng.choice(list("abc"), 3000),
    }
    report = mon.drift_report(old, cur)
    assert report.n_evaluated == 3 and not report.drifted


# ---------------------------------------------------------------- categorical sketch


def _long_tail(n: int, seed: int, mix: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = np.linspace(1.0, 2.0, 50)
    p = (1 - mix) * w / w.sum() + mix * w[::-1] / w.sum()
    head = rng.choice(50, n, p=p)
    tail = rng.integers(50, 200_000, n)
    return np.array([f"v{i}" for i in np.where(rng.random(n) < 0.9, head, tail)], dtype=object)


def test_categorical_sketch_beyond_the_cardinality_bound(tmp_path: Path) -> None:
    ref = _long_tail(100_000, 1)
    profile = mon.Profile.from_data({"c": ref})
    col = profile.columns["c"]
    assert isinstance(col, CategoricalProfile) and not col.is_exact
    labels, counts = np.unique(ref, return_counts=True)
    true = dict(zip(labels.tolist(), counts.tolist(), strict=True))
    # the documented guarantee: lower <= true <= lower + max_error, max_error <= epsilon * n
    eps = 3.5 / 2**12
    assert 0 < col.max_error <= eps * col.n
    for label, lower in zip(col.categories, col.counts.tolist(), strict=True):
        assert lower <= true[label] <= lower + col.max_error
    assert col.residual == col.n - int(col.counts.sum()) > 0
    path = tmp_path / "c.profile"
    profile.save(path)
    back = mon.Profile.load(path).columns["c"]
    assert isinstance(back, CategoricalProfile) and back.categories == col.categories
    assert np.array_equal(back.counts, col.counts) and back.max_error == col.max_error
    merged = profile.merge(profile).columns["c"]
    assert isinstance(merged, CategoricalProfile) and merged.n == 2 * col.n
    # exact while the labels fit; exact=True never sketches
    assert mon.Profile.from_data({"c": ref}, exact=True).columns["c"].is_exact  # type: ignore[union-attr]


def test_drift_on_a_sketched_categorical_carries_a_valid_bound() -> None:
    ref = _long_tail(100_000, 1)
    profile = mon.Profile.from_data({"c": ref})
    for mix in (0.0, 0.5, 1.0):
        cur = {"c": _long_tail(30_000, 2, mix)}
        for method in ("jensenshannon", "hellinger", "tv"):
            got = mon.drift_report(profile, cur, methods=method).columns["c"]
            exact = mon.drift_report({"c": ref}, cur, methods=method).columns["c"]
            assert got.error_bound is not None and got.error_bound > 0
            assert abs(got.statistic - exact.statistic) <= got.error_bound  # type: ignore[operator]
            if got.drifted != exact.drifted:
                assert got.borderline
        psi = mon.drift_report(profile, cur, methods="psi").columns["c"]
        assert psi.error_bound is None and psi.borderline
        assert "no error bound is known for psi" in psi.message
    hist = mon.drift_report(profile, {"c": _long_tail(30_000, 2)}).columns["c"].histogram
    assert hist is not None and hist.categories[-1] == "(other reference values)"


# ---------------------------------------------------------------- bounds


@pytest.mark.parametrize("method", sorted(kernels.BOUNDED_COUNT_METHODS))
def test_count_bound_covers_every_count_vector_in_the_intervals(method: str) -> None:
    rng = np.random.default_rng(5)
    fns = {
        "jensenshannon": kernels.jensen_shannon_from_counts,
        "hellinger": kernels.hellinger_from_counts,
        "tv": kernels.tv_from_counts,
        "psi": kernels.psi_from_counts,
        "kl": kernels.kl_from_counts,
    }
    for _ in range(30):
        ref = rng.integers(50, 500, 12).astype(np.float64)
        cur = rng.integers(0, 500, 12).astype(np.float64)
        slack = rng.integers(0, 40, 12).astype(np.float64)
        low, high = np.maximum(ref - slack, 0), ref + slack
        bound = kernels.count_statistic_bound(method, ref, low, high, cur)
        assert bound is not None and bound >= 0
        stat = fns[method](ref, cur)
        for _ in range(40):  # true counts anywhere in the intervals, with the same total
            true = rng.uniform(low, high)
            true *= ref.sum() / true.sum()
            if np.all((true >= low) & (true <= high)):
                assert abs(fns[method](true, cur) - stat) <= bound + 1e-12
    assert kernels.count_statistic_bound("chisquare", ref, low, high, cur) is None
    zero = kernels.count_statistic_bound(method, ref, ref, ref, cur)
    assert zero == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------- the accuracy study


def _agreement(cases: list[tuple[mon.ColumnDrift, mon.ColumnDrift, float]]) -> float:
    agree = 0
    for got, exact, reference in cases:
        assert got.error_bound is not None
        # the statistic is within its documented bound of the exact one (scipy's where it applies)
        assert abs(got.statistic - reference) <= got.error_bound + 1e-9, got.name  # type: ignore[operator]
        assert abs(got.statistic - exact.statistic) <= got.error_bound + 1e-9  # type: ignore[operator]
        if got.drifted == exact.drifted:
            agree += 1
        else:
            assert got.borderline, (got.name, got.statistic, exact.statistic, got.error_bound)
    return agree / len(cases)


def test_accuracy_study_compact_verdicts_match_the_exact_ones() -> None:
    n_ref, n_cur = 50_000, 10_000
    cases: list[tuple[mon.ColumnDrift, mon.ColumnDrift, float]] = []
    shapes = {
        "normal": lambda r, n, m, s: r.normal(m, s, n),
        "lognormal": lambda r, n, m, s: np.exp(r.normal(m * 0.5, 0.5 * s, n)),
        "bimodal": lambda r, n, m, s: np.where(
            r.random(n) < 0.3, r.normal(-2 + m, 0.5 * s, n), r.normal(2 + m, s, n)
        ),
    }
    scenarios = [(m, 1.0) for m in np.round(np.arange(0.0, 1.01, 0.1), 1)]
    scenarios += [(0.0, s) for s in (1.05, 1.1, 1.2, 1.3, 1.5, 2.0)]
    for seed in (11, 12):
        rng = np.random.default_rng(seed)
        ref = {name: f(rng, n_ref, 0.0, 1.0) for name, f in shapes.items()}
        profile = mon.Profile.from_data(ref)
        assert not any(c.is_exact for c in profile.columns.values())
        exact_profile = mon.Profile.from_data(ref, exact=True)  # drift identical to raw rows
        for shift, scale in scenarios:
            cur = {name: f(rng, n_cur, shift, scale) for name, f in shapes.items()}
            for method in ("wasserstein", "ks"):
                got = mon.drift_report(profile, cur, methods=method)
                exact = mon.drift_report(exact_profile, cur, methods=method)
                for name in shapes:
                    if method == "ks":
                        reference = sps.ks_2samp(ref[name], cur[name]).statistic
                    else:
                        reference = sps.wasserstein_distance(ref[name], cur[name]) / np.std(
                            ref[name]
                        )
                    cases.append((got.columns[name], exact.columns[name], float(reference)))
    # categorical shifts: bench-like cardinalities (exact counts) and reweighting in steps
    rng = np.random.default_rng(13)
    for k in (3, 10, 50, 200, 1000):
        p = 1.0 / np.arange(1, k + 1) ** 0.8
        p /= p.sum()
        labels = np.array([f"v{i}" for i in range(k)], dtype=object)
        ref = {"c": labels[rng.choice(k, n_ref, p=p)]}
        profile = mon.Profile.from_data(ref)
        for mix in np.arange(0.0, 1.01, 0.25):
            q = (1 - mix) * p + mix * p[::-1]
            cur = {"c": labels[rng.choice(k, n_cur, p=q)]}
            got = mon.drift_report(profile, cur).columns["c"]
            exact = mon.drift_report(ref, cur).columns["c"]
            assert got.method == "jensenshannon" and got.error_bound == 0.0
            hist = exact.histogram
            assert hist is not None
            reference = jensenshannon(hist.reference, hist.current)
            cases.append((got, exact, float(reference)))
    share = _agreement(cases)
    assert len(cases) >= 200 and share >= 0.99
    # the 0.1 sd shifts sit on the Wasserstein threshold: those verdicts are flagged, few others
    flagged = [got for got, _, _ in cases if got.borderline]
    assert 0 < len(flagged) <= 0.1 * len(cases)


# ---------------------------------------------------------------- what the user sees


def test_borderline_verdicts_in_json_html_and_the_cli(tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    ref = pd.DataFrame({"x": rng.normal(size=50_000)})
    cur = pd.DataFrame({"x": rng.normal(0.1, size=20_000)})  # normed Wasserstein near 0.1
    ref_path, cur_path = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    ref.to_parquet(ref_path)
    cur.to_parquet(cur_path)
    profile = mon.Profile.from_data(ref)
    report = mon.drift_report(profile, cur)
    col = report.columns["x"]
    assert col.method == "wasserstein" and col.borderline and 0 < col.error_bound < 0.05  # type: ignore[operator]
    data = json.loads(report.to_json())
    assert data["n_borderline"] == 1
    assert data["columns"]["x"]["borderline"] is True
    assert data["columns"]["x"]["error_bound"] == pytest.approx(col.error_bound)
    back = mon.DriftReport.from_dict(data)
    assert back.columns["x"].borderline and back.columns["x"].error_bound == col.error_bound
    html = report.to_html(tmp_path / "r.html").read_text()
    assert "borderline" in html and "sketched reference" in html
    exact_html = mon.drift_report(ref, cur).to_html(tmp_path / "e.html").read_text()
    assert "sketched reference" not in exact_html
    prof_path = tmp_path / "ref.profile"
    runner = CliRunner()
    made = runner.invoke(get_app(), ["profile", str(ref_path), "-o", str(prof_path)])
    assert made.exit_code == 0, made.output
    assert prof_path.stat().st_size < 100_000
    out = runner.invoke(get_app(), ["drift", str(prof_path), str(cur_path)], terminal_width=200)
    assert "(borderline)" in out.output and "1 borderline verdict" in out.output
    assert "±" in out.output
    as_json = runner.invoke(get_app(), ["drift", str(prof_path), str(cur_path), "--json"])
    assert json.loads(as_json.output)["columns"]["x"]["borderline"] is True


def test_monitor_history_stays_small_against_a_compact_reference() -> None:
    ref = _table(100_000, 1)
    sizes = {}
    for rows in (10_000, 50_000):
        monitor = mon.Monitor(ref, window_rows=rows)
        (result,) = monitor.update(_table(rows, 2))
        sizes[rows] = len(result.to_json())
        sketched = result.drift.columns["n00"]
        # the reference was profiled compactly: its continuous columns carry a sketch's bound
        assert sketched.error_bound is not None and sketched.error_bound > 0
    # a stored window holds per-column verdicts and binned counts, not rows or values
    assert sizes[50_000] <= 1.05 * sizes[10_000]
    assert sizes[50_000] < 100_000
