"""Profiles: exact equals raw, sketched within the documented bound, merge, save/load."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from datasketches import kll_doubles_sketch
from scipy import stats as sps

from mloop import monitoring as mon
from mloop.errors import InvalidInputError
from mloop.monitoring._profile import CategoricalProfile, NumericProfile, prepare_numeric

SEEDS = [0, 1, 2]


def _data(seed: int, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    heavy = rng.standard_t(2, n) + shift
    heavy[rng.random(n) < 0.05] = np.nan
    return {
        "normal": rng.normal(shift, 1.0, n),
        "heavy": heavy,
        "ints": rng.poisson(3 + shift, n).astype(float),
        "few": rng.integers(0, 4, n).astype(float),
        "cat": rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2]),
    }


def _num(p: mon.Profile, name: str) -> NumericProfile:
    col = p.columns[name]
    assert isinstance(col, NumericProfile)
    return col


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", ["auto", "ks", "energy", "psi", "hellinger", "cramer_von_mises"])
def test_exact_profile_gives_the_same_drift_as_raw_data(seed: int, method: str) -> None:
    ref, cur = _data(seed, 3000), _data(seed + 10, 2000, shift=0.2)
    methods = None if method == "auto" else {c: method for c in ("normal", "heavy", "ints")}
    raw = mon.drift_report(ref, cur, methods=methods)
    profile = mon.Profile.from_data(ref)
    assert all(_num(profile, c).is_exact for c in ("normal", "heavy", "ints"))
    assert mon.drift_report(profile, cur, methods=methods).to_dict() == raw.to_dict()


def test_profile_contents() -> None:
    ref = _data(3, 5000)
    p = mon.Profile.from_data(ref, bins=10)
    heavy = _num(p, "heavy")
    finite = ref["heavy"][np.isfinite(ref["heavy"])]
    assert (heavy.n, heavy.n_missing, heavy.n_inf) == (finite.size, 5000 - finite.size, 0)
    assert (heavy.min, heavy.max) == (finite.min(), finite.max())
    assert heavy.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert heavy.std == pytest.approx(finite.std(), rel=1e-12)
    assert heavy.bin_counts.sum() == heavy.n and heavy.bin_counts.size == heavy.edges.size + 1
    np.testing.assert_array_equal(heavy.expanded(), np.sort(finite))
    ints = _num(p, "ints")  # few distinct values: run-length encoded, still exact
    assert ints.weights is not None and ints.values is not None
    assert ints.values.size == np.unique(ref["ints"]).size
    np.testing.assert_array_equal(ints.expanded(), np.sort(ref["ints"]))
    cat = p.columns["cat"]
    assert isinstance(cat, CategoricalProfile)
    assert cat.categories == ["a", "b", "c"]
    assert cat.counts.tolist() == [int(np.sum(ref["cat"] == k)) for k in "abc"]


@pytest.mark.parametrize("seed", SEEDS)
def test_sketched_profile_is_within_the_documented_bound(seed: int) -> None:
    ref, cur = _data(seed, 60_000), _data(seed + 20, 20_000, shift=0.05)
    sketched = mon.Profile.from_data(ref, max_exact=1000, sketch_k=256)
    col = _num(sketched, "normal")
    assert not col.is_exact and col.values is None
    eps = kll_doubles_sketch.get_normalized_rank_error(256, True)
    assert col.rank_error() == pytest.approx(eps)
    for name in ("normal", "heavy"):
        approx = mon.drift_report(sketched, cur, columns=[name], methods="ks").columns[name]
        exact = sps.ks_2samp(*(d[name][np.isfinite(d[name])] for d in (ref, cur)))
        assert abs(approx.statistic - exact.statistic) <= eps  # type: ignore[operator]
        assert "KLL sketch" in approx.message
        w = mon.drift_report(sketched, cur, columns=[name]).columns[name]
        r = ref[name][np.isfinite(ref[name])]
        c = cur[name][np.isfinite(cur[name])]
        exact_w = sps.wasserstein_distance(r, c) / np.std(r)
        bound = eps * (r.max() - r.min()) / np.std(r)
        assert w.method == "wasserstein"
        assert abs(w.statistic - exact_w) <= bound  # type: ignore[operator]
    e = mon.drift_report(sketched, cur, columns=["normal"], methods="energy").columns["normal"]
    r, c = ref["normal"], cur["normal"]
    bound = eps * np.sqrt(2 * (r.max() - r.min()))
    assert abs(e.statistic - sps.energy_distance(r, c)) <= bound  # type: ignore[operator]
    # few distinct values: exact counts survive sketching, so JS is exact
    few = mon.drift_report(sketched, cur, columns=["few"]).columns["few"]
    exact_few = mon.drift_report(ref, cur, columns=["few"]).columns["few"]
    assert few.method == "jensenshannon" and few.statistic == exact_few.statistic


def _split(d: dict[str, np.ndarray], k: int) -> tuple[dict, dict]:
    return {c: v[:k] for c, v in d.items()}, {c: v[k:] for c, v in d.items()}


def _assert_same_numeric(a: NumericProfile, b: NumericProfile) -> None:
    assert (a.n, a.n_missing, a.n_inf, a.min, a.max) == (b.n, b.n_missing, b.n_inf, b.min, b.max)
    np.testing.assert_array_equal(a.edges, b.edges)
    np.testing.assert_array_equal(a.bin_counts, b.bin_counts)
    assert a.mean == pytest.approx(b.mean, rel=1e-12, abs=1e-12)
    assert a.std == pytest.approx(b.std, rel=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_merge_of_exact_profiles_equals_profile_of_union(seed: int) -> None:
    data = _data(seed, 4000)
    a, b = _split(data, 1500)
    merged = mon.Profile.from_data(a).merge(mon.Profile.from_data(b))
    whole = mon.Profile.from_data(data)
    assert merged.n_rows == whole.n_rows == 4000
    for name in ("normal", "heavy", "ints", "few"):
        _assert_same_numeric(_num(merged, name), _num(whole, name))
        np.testing.assert_array_equal(_num(merged, name).expanded(), _num(whole, name).expanded())
    mc, wc = merged.columns["cat"], whole.columns["cat"]
    assert isinstance(mc, CategoricalProfile) and isinstance(wc, CategoricalProfile)
    assert (mc.categories, mc.counts.tolist(), mc.n) == (wc.categories, wc.counts.tolist(), wc.n)
    cur = _data(seed + 5, 2000, shift=0.3)
    assert mon.drift_report(merged, cur).to_dict() == mon.drift_report(whole, cur).to_dict()


@pytest.mark.parametrize("seed", SEEDS)
def test_merge_of_sketched_profiles_keeps_counts_and_guarantee(seed: int) -> None:
    data = _data(seed, 40_000)
    parts = [{c: v[i::4] for c, v in data.items()} for i in range(4)]
    profiles = [mon.Profile.from_data(p, max_exact=1000, sketch_k=256) for p in parts]
    merged = profiles[0]
    for p in profiles[1:]:
        merged = merged.merge(p)
    whole = mon.Profile.from_data(data, max_exact=1000, sketch_k=256)
    for name in ("normal", "heavy"):
        m, w = _num(merged, name), _num(whole, name)
        assert (m.n, m.n_missing, m.min, m.max) == (w.n, w.n_missing, w.min, w.max)
        assert m.mean == pytest.approx(w.mean, rel=1e-9, abs=1e-12)
        assert m.std == pytest.approx(w.std, rel=1e-9)
        assert m.sketch.n == w.n
        assert m.bin_counts.sum() == w.n
        # the merged sketch still tracks the true CDF within its rank error
        r = np.sort(data[name][np.isfinite(data[name])])
        qs = np.linspace(0.01, 0.99, 25)
        points = np.quantile(r, qs)
        est = np.asarray(m.sketch.get_cdf(points.tolist()))[:-1]
        true = np.searchsorted(r, points, side="right") / r.size
        assert np.max(np.abs(est - true)) <= m.rank_error()
    # ints / few keep exact value counts through merges when there are <= 20 distinct values
    few_m, few_w = _num(merged, "few"), _num(whole, "few")
    np.testing.assert_array_equal(few_m.discrete_values, few_w.discrete_values)
    np.testing.assert_array_equal(few_m.discrete_counts, few_w.discrete_counts)


def test_merge_exact_beyond_max_exact_becomes_a_sketch() -> None:
    data = _data(4, 3000)
    a, b = _split(data, 1500)
    pa_, pb = (mon.Profile.from_data(x, max_exact=2000) for x in (a, b))
    merged = pa_.merge(pb)
    assert not _num(merged, "normal").is_exact
    assert _num(merged, "normal").n == 3000


def test_merge_rejects_incompatible_profiles() -> None:
    a = mon.Profile.from_data({"x": np.arange(10.0)})
    with pytest.raises(InvalidInputError, match="different columns"):
        a.merge(mon.Profile.from_data({"y": np.arange(10.0)}))
    with pytest.raises(InvalidInputError, match="numeric in one profile and categorical"):
        a.merge(mon.Profile.from_data({"x": np.array(["a"] * 10)}))
    with pytest.raises(InvalidInputError, match="different bin counts"):
        a.merge(mon.Profile.from_data({"x": np.arange(10.0)}, bins=5))


@pytest.mark.parametrize("max_exact", [1_000_000, 1000])
def test_save_and_load_round_trip(tmp_path: Path, max_exact: int) -> None:
    ref, cur = _data(5, 20_000), _data(6, 5000, shift=0.2)
    p = mon.Profile.from_data(ref, max_exact=max_exact)
    path = tmp_path / "ref.profile"
    p.save(path)
    assert path.exists() and not (tmp_path / "ref.profile.npz").exists()
    loaded = mon.Profile.load(path)
    assert loaded.summary() == p.summary()
    assert mon.drift_report(loaded, cur).to_dict() == mon.drift_report(p, cur).to_dict()
    assert path.read_bytes() == p.to_bytes()
    with zipfile.ZipFile(path) as zf:  # plain arrays, nothing pickled
        assert all(n.endswith(".npy") for n in zf.namelist())
    if max_exact == 1000:
        # sketched: no rows at all, a few tens of kB for 20,000 rows x 5 columns
        assert path.stat().st_size < 150_000


def test_profile_never_stores_categorical_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    secret = np.array([f"user-{i}" for i in rng.integers(0, 3, 1000)])
    p = mon.Profile.from_data({"who": secret})
    p.save(tmp_path / "p.profile")
    with np.load(tmp_path / "p.profile") as npz:
        assert sum(npz[k].size for k in npz.files if k != "meta") == 3


def test_load_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.profile"
    bad.write_text("not a profile")
    with pytest.raises(InvalidInputError, match="not an mloop profile"):
        mon.Profile.load(bad)
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(InvalidInputError, match="not an mloop profile"):
        mon.Profile.load(tmp_path / "other.npz")
    with pytest.raises(InvalidInputError, match="does not exist"):
        mon.Profile.load(tmp_path / "missing.profile")


def test_profile_as_reference_respects_column_kinds() -> None:
    ref = {"code": np.arange(2000) % 7, "x": np.linspace(0, 1, 2000)}
    cur = {"code": np.array([str(v) for v in np.arange(2000) % 7], dtype=object), "x": ref["x"]}
    p = mon.Profile.from_data(ref, categorical=["code"])
    report = mon.drift_report(p, cur)
    assert report.columns["code"].kind == "categorical"
    assert report.columns["code"].statistic == pytest.approx(0.0, abs=1e-12)
    numeric_profile = mon.Profile.from_data(ref)
    col = mon.drift_report(numeric_profile, cur, categorical=["code"]).columns["code"]
    assert col.status == "error" and "rebuild the profile" in col.message
    with pytest.raises(InvalidInputError, match="not in the reference profile"):
        mon.drift_report(p, cur, columns=["zzz"])


def test_from_data_validation() -> None:
    with pytest.raises(InvalidInputError, match="bins"):
        mon.Profile.from_data({"x": [1.0]}, bins=0)
    with pytest.raises(InvalidInputError, match="sketch_k"):
        mon.Profile.from_data({"x": [1.0]}, sketch_k=2)
    with pytest.raises(
        InvalidInputError, match=r"`columns` names \['y'\], which is not in the data"
    ):
        mon.Profile.from_data({"x": [1.0]}, columns=["y"])
    # only the profiled columns are read: another column's shape does not matter
    ragged = {"x": np.arange(3.0), "y": np.arange(2.0)}
    assert list(mon.Profile.from_data(ragged, columns=["x"]).columns) == ["x"]
    with pytest.raises(InvalidInputError, match="same length"):
        mon.Profile.from_data(ragged)


def test_integer_columns_counted_directly_match_floats() -> None:
    rng = np.random.default_rng(9)
    ints = {"k": rng.poisson(4, 5000), "u": rng.integers(-50, 10_000, 5000)}
    floats = {k: v.astype(float) for k, v in ints.items()}
    cur = {k: v + 1 for k, v in ints.items()}
    assert mon.drift_report(ints, cur).to_dict() == mon.drift_report(floats, cur).to_dict()
    for name in ints:
        a, b = _num(mon.Profile.from_data(ints), name), _num(mon.Profile.from_data(floats), name)
        np.testing.assert_array_equal(a.expanded(), b.expanded())
        assert (a.mean, a.m2, a.edges.tolist()) == (b.mean, b.m2, b.edges.tolist())


# ------------------------------------------------------------------------ exact values, every branch


def test_prepare_numeric_splits_missing_and_infinite() -> None:
    values = np.array([np.nan, 1.0, -np.inf, 3.0, np.inf, np.inf, np.nan, 2.0, -np.inf])
    finite, n_missing, n_inf = prepare_numeric(values)
    assert finite.tolist() == [1.0, 2.0, 3.0] and (n_missing, n_inf) == (2, 4)
    finite, n_missing, n_inf = prepare_numeric(np.array([2.0, -np.inf, 1.0]))
    assert finite.tolist() == [1.0, 2.0] and (n_missing, n_inf) == (0, 1)
    finite, n_missing, n_inf = prepare_numeric(np.array([np.inf, 5.0, np.inf]))
    assert finite.tolist() == [5.0] and (n_missing, n_inf) == (0, 2)
    for nothing in (np.empty(0), np.array([np.nan, np.nan])):
        finite, n_missing, n_inf = prepare_numeric(nothing)
        assert finite.size == 0 and (n_missing, n_inf) == (nothing.size, 0)


@pytest.mark.parametrize("max_exact", [1_000_000, 0])
def test_a_column_without_finite_values(max_exact: int) -> None:
    p = mon.Profile.from_data(
        {"x": np.array([np.nan, np.inf, np.nan]), "y": np.ones(3)}, max_exact=max_exact
    )
    col = _num(p, "x")
    assert (col.n, col.n_missing, col.n_inf, col.min, col.max) == (0, 2, 1, None, None)
    assert (col.mean, col.m2) == (0.0, 0.0) and np.isnan(col.std)
    assert col.is_exact and col.rank_error() == 0.0 and col.n_unique == 0
    assert col.edges.size == 0 and col.bin_counts.tolist() == [0]
    assert col.expanded().size == 0 and col.sample().n == 0
    assert col.weights is not None and col.weights.dtype == np.int64
    one = _num(mon.Profile.from_data({"x": np.array([np.nan, 2.5])}), "x")
    assert (one.n, one.min, one.max, one.mean, one.m2, one.n_unique) == (1, 2.5, 2.5, 2.5, 0.0, 1)
    assert one.expanded().tolist() == [2.5] and one.bin_counts.tolist() == [0, 1]
    assert p.summary()["columns"]["x"] == {
        "kind": "numeric",
        "n": 0,
        "n_missing": 2,
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "exact": True,
    }


def test_summary_is_exact() -> None:
    data = {
        "x": np.array([1.0, 2.0, np.nan, 4.0, 8.0]),
        "c": np.array(["b", None, "a", "b", None], dtype=object),
    }
    p = mon.Profile.from_data(data)
    finite = np.array([1.0, 2.0, 4.0, 8.0])
    assert p.summary() == {
        "n_rows": 5,
        "columns": {
            "x": {
                "kind": "numeric",
                "n": 4,
                "n_missing": 1,
                "min": 1.0,
                "max": 8.0,
                "mean": 3.75,
                "std": pytest.approx(float(np.std(finite)), rel=1e-15),
                "exact": True,
            },
            "c": {"kind": "categorical", "n": 3, "n_missing": 2, "n_categories": 2, "exact": True},
        },
    }
    sketched = mon.Profile.from_data({"x": data["x"]}, max_exact=3).summary()["columns"]["x"]
    assert sketched["exact"] is False and sketched["n"] == 4


def test_run_length_encoding_boundary() -> None:
    # run-length encoded exactly when there are at most half as many distinct values as values
    half = _num(mon.Profile.from_data({"x": np.repeat([1.0, 2.0, 3.0], [3, 2, 1])}), "x")
    assert half.values is not None and half.weights is not None
    assert (half.values.tolist(), half.weights.tolist()) == ([1.0, 2.0, 3.0], [3, 2, 1])
    more = _num(mon.Profile.from_data({"x": np.array([3.0, 1.0, 2.0, 4.0, 1.0])}), "x")
    assert more.weights is None and more.values is not None
    assert more.values.tolist() == [1.0, 1.0, 2.0, 3.0, 4.0]
    odd = _num(mon.Profile.from_data({"x": np.array([1.0, 1.0, 2.0, 2.0, 3.0])}), "x")
    assert odd.weights is None  # 3 distinct of 5 values: not at most half
    # integers counted directly, many distinct: the values are expanded back
    rng = np.random.default_rng(0)
    ints = np.concatenate((np.arange(30), rng.integers(0, 30, 10)))
    col = _num(mon.Profile.from_data({"k": rng.permutation(ints)}), "k")
    assert col.source == "integer" and col.weights is None and col.values is not None
    np.testing.assert_array_equal(col.values, np.sort(ints).astype(float))
    assert col.n_unique == 30 and col.discrete_values is None
    rle = _num(mon.Profile.from_data({"k": np.repeat(np.arange(-3, 27), 2)}), "k")
    assert rle.weights is not None and rle.n_unique == 30 and rle.discrete_values is None


@pytest.mark.parametrize("max_exact", [1_000_000, 50])
def test_exact_value_counts_up_to_twenty_distinct_values(max_exact: int) -> None:
    rng = np.random.default_rng(1)
    for distinct in (20, 21):
        x = rng.permutation(np.repeat(np.arange(distinct) * 0.5, 3))
        col = _num(mon.Profile.from_data({"x": x}, max_exact=max_exact), "x")
        assert col.is_exact == (max_exact > x.size)
        if distinct == 20:
            assert col.discrete_values is not None and col.discrete_counts is not None
            assert col.discrete_values.tolist() == (np.arange(20) * 0.5).tolist()
            assert col.discrete_counts.tolist() == [3] * 20 and col.n_unique == 20
            assert col.discrete_counts.dtype == np.int64
        else:
            assert col.discrete_values is None and col.discrete_counts is None
            assert col.n_unique == (21 if col.is_exact else None)


def test_sketched_value_counts_see_values_beyond_the_first_rows() -> None:
    x = np.concatenate((np.full(10_000, 5.0), [7.0, 3.0, 7.0]))
    col = _num(mon.Profile.from_data({"x": x}, max_exact=100), "x")
    assert not col.is_exact
    assert col.discrete_values is not None and col.discrete_counts is not None
    assert col.discrete_values.tolist() == [3.0, 5.0, 7.0]
    assert col.discrete_counts.tolist() == [1, 10_000, 2] and col.n_unique == 3
    many = np.concatenate((np.zeros(10_000), np.arange(1.0, 22.0)))
    assert _num(mon.Profile.from_data({"x": many}, max_exact=100), "x").n_unique is None


@pytest.mark.parametrize("bins", [1, 2, 7, 20])
@pytest.mark.parametrize("seed", SEEDS)
def test_sketched_bins_are_the_exact_quantile_bins(seed: int, bins: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=1501)
    x[rng.random(x.size) < 0.1] = np.nan
    x[:3] = [np.inf, -np.inf, np.inf]
    finite = np.sort(x[np.isfinite(x)])
    n = finite.size
    exact = _num(mon.Profile.from_data({"x": x}, bins=bins), "x")
    sketched = _num(mon.Profile.from_data({"x": x}, bins=bins, max_exact=n - 1), "x")
    at_limit = _num(mon.Profile.from_data({"x": x}, bins=bins, max_exact=n), "x")
    assert exact.is_exact and at_limit.is_exact and not sketched.is_exact
    # the lower order statistic at k / bins, computed here by hand
    ranks = [int(np.floor(k / bins * (n - 1))) for k in range(1, bins)]
    expected_edges = np.unique(finite[ranks])
    expected_counts = [
        int(np.sum((finite >= lo) & (finite < hi)))
        for lo, hi in zip(
            np.concatenate(([-np.inf], expected_edges)),
            np.concatenate((expected_edges, [np.inf])),
            strict=True,
        )
    ]
    for col in (exact, sketched):
        np.testing.assert_array_equal(col.edges, expected_edges)
        assert col.bin_counts.tolist() == expected_counts
        assert (col.n, col.n_missing, col.n_inf) == (n, int(np.isnan(x).sum()), 3)
        assert (col.min, col.max) == (finite[0], finite[-1])
        assert col.mean == pytest.approx(np.mean(finite), rel=1e-12, abs=1e-15)
        assert col.std == pytest.approx(np.std(finite), rel=1e-12)
    assert sketched.sketch.k == 2048 and sketched.sketch.n == n
    assert sketched.values is None and sketched.weights is None
    assert sketched.rank_error() == kll_doubles_sketch.get_normalized_rank_error(2048, True)
    with pytest.raises(InvalidInputError, match="sketched"):
        sketched.expanded()
    sample = sketched.sample()  # n < k: the sketch still holds every value
    np.testing.assert_array_equal(sample.values, finite)
    assert sample.weights is not None and sample.weights.tolist() == [1] * n


def test_sketch_sample_is_the_sorted_weighted_items() -> None:
    x = np.random.default_rng(4).normal(size=5000)
    col = _num(mon.Profile.from_data({"x": x}, max_exact=10, sketch_k=64), "x")
    items = sorted(col.sketch)
    sample = col.sample()
    assert sample.weights is not None and sample.weights.dtype == np.int64
    np.testing.assert_array_equal(sample.values, [v for v, _ in items])
    np.testing.assert_array_equal(sample.weights, [w for _, w in items])
    assert sample.weights.sum() == 5000 and len(items) < 5000


def test_integer_columns_beyond_max_exact_are_sketched() -> None:
    k = np.arange(100) % 7
    col = _num(mon.Profile.from_data({"k": k}, max_exact=99), "k")
    assert not col.is_exact and col.n == 100 and col.sketch.n == 100
    assert _num(mon.Profile.from_data({"k": k}, max_exact=100), "k").is_exact


def test_integer_counting_is_used_only_for_a_modest_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # np.bincount allocates one slot per integer in [min, max]: only when that is at most
    # 4 slots per value plus 1024, so a column like [0, 10**12] never allocates terabytes
    sizes: list[int] = []
    real = np.bincount

    def spy(x: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        out = real(x, *args, **kwargs)  # type: ignore[arg-type]
        sizes.append(out.size)
        return out

    monkeypatch.setattr(np, "bincount", spy)
    for top in (4 * 10 + 1024, 4 * 10 + 1025):
        sizes.clear()
        k = np.array([0] * 9 + [top])
        col = _num(mon.Profile.from_data({"k": k}), "k")
        assert col.weights is not None and col.weights.tolist() == [9, 1]
        assert col.values is not None and col.values.tolist() == [0.0, float(top)]
        assert sizes == ([top + 1] if top == 1064 else [])
    for kind, max_exact in ((np.uint16, 10), (np.int32, 1_000_000)):  # max_exact = size: exact
        sizes.clear()
        k = np.array([0] * 9 + [1064], dtype=kind)
        col = _num(mon.Profile.from_data({"k": k}, max_exact=max_exact), "k")
        assert col.is_exact and col.weights is not None and col.weights.tolist() == [9, 1]
        assert sizes == [1065]
    sizes.clear()
    big = _num(mon.Profile.from_data({"k": np.array([-(10**12), 10**12, 10**12])}), "k")
    assert big.min == -1e12 and big.max == 1e12 and sizes == []
    shifted = _num(mon.Profile.from_data({"k": np.array([1000, -5, -5, 7, -5, 1000])}), "k")
    assert shifted.values is not None and shifted.values.tolist() == [-5.0, 7.0, 1000.0]
    assert shifted.weights is not None and shifted.weights.tolist() == [3, 1, 2]
    assert shifted.values.dtype == np.float64 and shifted.weights.dtype == np.int64
    assert (shifted.n_missing, shifted.n_inf, shifted.min) == (0, 0, -5.0)


# ------------------------------------------------------------------------------------ merge, exactly


def _true_counts(values: np.ndarray, edges: np.ndarray) -> list[int]:
    """Bin i holds edges[i-1] <= x < edges[i], counted by comparison."""
    lows = np.concatenate(([-np.inf], edges))
    highs = np.concatenate((edges, [np.inf]))
    return [int(np.sum((values >= lo) & (values < hi))) for lo, hi in zip(lows, highs, strict=True)]


def test_merge_of_a_profile_with_itself_doubles_the_counts() -> None:
    x = np.random.default_rng(2).integers(0, 6, 500).astype(float)
    x[:7] = np.nan
    x[7:9] = np.inf
    p = mon.Profile.from_data({"x": x}, max_exact=100, bins=4)
    col = _num(p, "x")
    twice = _num(p.merge(p), "x")
    assert not twice.is_exact and twice.sketch.n == 2 * col.n
    np.testing.assert_array_equal(twice.edges, col.edges)
    assert twice.bin_counts.tolist() == (2 * col.bin_counts).tolist()
    assert (twice.n, twice.n_missing, twice.n_inf) == (2 * col.n, 14, 4)
    assert (twice.min, twice.max, twice.source) == (col.min, col.max, "float")
    assert twice.mean == pytest.approx(col.mean, rel=1e-15)
    assert twice.std == pytest.approx(col.std, rel=1e-12)
    assert twice.discrete_values is not None and twice.discrete_counts is not None
    np.testing.assert_array_equal(twice.discrete_values, np.arange(6.0))
    assert twice.discrete_counts.tolist() == (2 * np.asarray(col.discrete_counts)).tolist()


@pytest.mark.parametrize("seed", SEEDS)
def test_merge_with_different_bins_rederives_them_from_the_merged_sketch(seed: int) -> None:
    # small parts, k = 2048: the sketches hold every value, so the merged quantiles and counts
    # are exact and can be compared with numpy's inverted-CDF quantiles and counted bins
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, 300).astype(float)
    b = rng.integers(3, 12, 200).astype(float)
    pa_ = mon.Profile.from_data({"x": a}, max_exact=10, bins=5)
    pb = mon.Profile.from_data({"x": b}, max_exact=10, bins=5)
    assert not np.array_equal(_num(pa_, "x").edges, _num(pb, "x").edges)
    both = np.concatenate((a, b))
    for merged in (_num(pa_.merge(pb), "x"), _num(pb.merge(pa_), "x")):
        expected = np.unique(np.quantile(both, np.arange(1, 5) / 5, method="inverted_cdf"))
        np.testing.assert_array_equal(merged.edges, expected)
        assert merged.bin_counts.tolist() == _true_counts(both, merged.edges)
        assert merged.bin_counts.dtype == np.int64
        assert merged.n == 500 and merged.sketch.n == 500
        assert (merged.min, merged.max) == (both.min(), both.max())
        assert merged.mean == pytest.approx(both.mean(), rel=1e-12)
        assert merged.std == pytest.approx(both.std(), rel=1e-12)
        assert merged.discrete_values is not None and merged.discrete_counts is not None
        values, counts = np.unique(both, return_counts=True)
        np.testing.assert_array_equal(merged.discrete_values, values)
        assert merged.discrete_counts.tolist() == counts.tolist()


def test_merge_of_an_exact_and_a_sketched_profile() -> None:
    rng = np.random.default_rng(5)
    small, big = rng.normal(size=40), rng.normal(2.0, 3.0, size=400)
    small[0] = np.nan
    exact = mon.Profile.from_data({"x": small}, max_exact=100)
    sketched = mon.Profile.from_data({"x": big}, max_exact=100)
    both = np.concatenate((small[1:], big))
    for merged in (exact.merge(sketched), sketched.merge(exact)):
        col = _num(merged, "x")
        assert not col.is_exact and col.sketch.n == 439 and col.n == 439
        assert col.bin_counts.sum() == 439 and col.n_missing == 1
        assert (col.min, col.max) == (both.min(), both.max())
        assert col.mean == pytest.approx(both.mean(), rel=1e-12)
        assert col.std == pytest.approx(both.std(), rel=1e-12)
        np.testing.assert_array_equal(col.sample().values, np.sort(both))  # n < k: all kept
        assert col.discrete_values is None and col.n_unique is None
        assert merged.n_rows == 440


def test_merge_with_an_empty_column_keeps_the_other_side() -> None:
    empty = mon.Profile.from_data({"x": np.full(5, np.nan)}, max_exact=10)
    full = mon.Profile.from_data({"x": np.arange(20.0)}, max_exact=10)
    for merged in (empty.merge(full), full.merge(empty)):
        col = _num(merged, "x")
        assert (col.n, col.n_missing, col.min, col.max) == (20, 5, 0.0, 19.0)
        assert col.mean == pytest.approx(9.5) and col.sketch.n == 20
        assert col.std == pytest.approx(np.std(np.arange(20.0)), rel=1e-12)
    both_empty = _num(empty.merge(empty), "x")
    assert both_empty.is_exact and (both_empty.n, both_empty.n_missing) == (0, 10)
    assert (both_empty.min, both_empty.max, both_empty.mean) == (None, None, 0.0)
    # a profile built by hand with a negative max_exact: two empty columns still merge exactly
    odd = mon.Profile(empty.columns, 5, max_exact=-1)
    assert _num(odd.merge(odd), "x").is_exact and _num(odd.merge(odd), "x").n == 0
    # one value, sketched (max_exact=0), with an empty side: one value, sketched
    one = mon.Profile.from_data({"x": np.array([np.nan, 4.0])}, max_exact=0)
    nothing = mon.Profile.from_data({"x": np.array([np.nan])}, max_exact=0)
    for merged in (one.merge(nothing), nothing.merge(one)):
        col = _num(merged, "x")
        assert not col.is_exact and (col.n, col.n_missing, col.mean, col.m2) == (1, 2, 4.0, 0.0)
        assert col.sample().values.tolist() == [4.0]


def test_merge_stays_exact_up_to_max_exact() -> None:
    a, b = {"x": np.arange(6.0)}, {"x": np.arange(6.0, 10.0)}
    at = mon.Profile.from_data(a, max_exact=10).merge(mon.Profile.from_data(b, max_exact=10))
    assert _num(at, "x").is_exact and _num(at, "x").expanded().tolist() == list(range(10))
    over = mon.Profile.from_data(a, max_exact=9).merge(mon.Profile.from_data(b, max_exact=9))
    assert not _num(over, "x").is_exact and _num(over, "x").sketch.n == 10


def test_merge_keeps_value_counts_up_to_twenty_distinct_values() -> None:
    def sketched(values: np.ndarray) -> mon.Profile:
        return mon.Profile.from_data({"x": np.repeat(values, 3)}, max_exact=5)

    low, high = sketched(np.arange(10.0)), sketched(np.arange(10.0, 20.0))
    col = _num(low.merge(high), "x")
    assert col.discrete_values is not None and col.discrete_counts is not None
    assert col.discrete_values.tolist() == list(range(20)) and col.n_unique == 20
    assert col.discrete_counts.tolist() == [3] * 20 and col.discrete_counts.dtype == np.int64
    over = _num(low.merge(sketched(np.arange(10.0, 21.0))), "x")
    assert over.discrete_values is None and over.discrete_counts is None
    many = sketched(np.arange(100.0, 130.0))  # more than 20 distinct: no value counts
    assert _num(many, "x").discrete_values is None
    for merged in (low.merge(many), many.merge(low)):
        assert _num(merged, "x").discrete_values is None
        assert _num(merged, "x").discrete_counts is None


def test_merge_sources() -> None:
    ints = mon.Profile.from_data({"x": np.arange(5), "c": np.array(list("abcab"))})
    floats = mon.Profile.from_data({"x": np.arange(5.0), "c": np.array([True, False] * 2 + [True])})
    assert (_num(ints, "x").source, _num(floats, "x").source) == ("integer", "float")
    merged = ints.merge(floats)
    assert _num(merged, "x").source == "float"
    assert _num(ints.merge(ints), "x").source == "integer"
    cat = merged.columns["c"]
    assert isinstance(cat, CategoricalProfile) and cat.source == "mixed"
    assert cat.categories == ["False", "True", "a", "b", "c"]
    assert cat.counts.tolist() == [2, 3, 2, 2, 1]
    same = ints.merge(ints).columns["c"]
    assert isinstance(same, CategoricalProfile) and same.source == "string"


def test_categorical_profile_sorts_labels_and_counts_missing() -> None:
    c = np.array(["c", "a", None, "b", "c", None, "c"], dtype=object)
    p = mon.Profile.from_data({"c": c})
    col = p.columns["c"]
    assert isinstance(col, CategoricalProfile)
    assert (col.categories, col.counts.tolist()) == (["a", "b", "c"], [1, 1, 3])
    assert (col.n, col.n_missing) == (5, 2)
    merged = p.merge(mon.Profile.from_data({"c": np.array(["d", None], dtype=object)}))
    mc = merged.columns["c"]
    assert isinstance(mc, CategoricalProfile)
    assert (mc.categories, mc.counts.tolist()) == (["a", "b", "c", "d"], [1, 1, 3, 1])
    assert mc.counts.dtype == np.int64
    assert (mc.n, mc.n_missing, merged.n_rows) == (6, 3, 9)
    none = {"c": np.array([None, None], dtype=object)}
    nothing = mon.Profile.from_data(none, categorical=["c"]).columns["c"]
    assert isinstance(nothing, CategoricalProfile)
    assert (nothing.categories, nothing.counts.tolist(), nothing.n_missing) == ([], [], 2)


def test_merge_refuses_what_is_not_a_profile_and_mixed_kinds_either_way() -> None:
    num = mon.Profile.from_data({"x": np.arange(10.0)})
    cat = mon.Profile.from_data({"x": np.array(["a"] * 10)})
    with pytest.raises(InvalidInputError, match="can only merge a Profile; got dict"):
        num.merge({"x": np.arange(3.0)})  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="'x' is categorical in one profile and numeric"):
        cat.merge(num)


# ------------------------------------------------------------------------------------- parameters


def test_defaults_and_stored_parameters() -> None:
    x = {"x": np.random.default_rng(0).normal(size=100)}
    p = mon.Profile.from_data(x)
    assert (p.bins, p.max_exact, p.sketch_k, p.max_categories) == (20, None, 2048, 4096)
    assert _num(p, "x").bin_counts.size == 20
    bare = mon.Profile({}, 0)
    assert (bare.bins, bare.max_exact, bare.sketch_k, bare.max_categories) == (20, None, 2048, 4096)
    q = mon.Profile.from_data(x, bins=3, max_exact=50, sketch_k=16)
    assert (q.bins, q.max_exact, q.sketch_k, q.n_rows) == (3, 50, 16, 100)
    assert _num(q, "x").sketch.k == 16 and _num(q, "x").bin_counts.size == 3
    merged = q.merge(q)
    assert (merged.bins, merged.max_exact, merged.sketch_k) == (3, 50, 16)
    assert _num(merged, "x").sketch.k == 16


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"bins": 0}, "bins"),
        ({"bins": 2.0}, "bins"),
        ({"max_exact": -1}, "max_exact"),
        ({"max_exact": 1.5}, "max_exact"),
        ({"sketch_k": 7}, "sketch_k"),
        ({"sketch_k": 65536}, "sketch_k"),
        ({"sketch_k": 64.0}, "sketch_k"),
        ({"max_categories": 0}, "max_categories"),
    ],
)
def test_parameters_out_of_range_are_refused(kwargs: dict, name: str) -> None:
    with pytest.raises(InvalidInputError, match=f"`{name}` must be an int"):
        mon.Profile.from_data({"x": np.arange(10.0)}, **kwargs)


def test_exact_flag_is_validated() -> None:
    with pytest.raises(InvalidInputError, match="`exact` must be True or False; got 1"):
        mon.Profile.from_data({"x": np.arange(10.0)}, exact=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="leave `max_exact` unset"):
        mon.Profile.from_data({"x": np.arange(10.0)}, exact=True, max_exact=10)


def test_parameters_at_their_limits_are_accepted() -> None:
    x = {"x": np.arange(30.0)}
    assert _num(mon.Profile.from_data(x, bins=1), "x").bin_counts.tolist() == [30]
    assert not _num(mon.Profile.from_data(x, max_exact=0), "x").is_exact
    assert _num(mon.Profile.from_data(x, max_exact=0, sketch_k=8), "x").sketch.k == 8
    assert _num(mon.Profile.from_data(x, max_exact=0, sketch_k=65535), "x").sketch.k == 65535


def test_column_selection_and_categorical_names() -> None:
    data = {
        "x": np.arange(4.0),
        "when": np.array(["2020-01-01"] * 4, dtype="datetime64[D]"),
        "code": np.arange(4) % 2,
    }
    assert list(mon.Profile.from_data(data).columns) == ["x", "code"]  # unsupported: left out
    # the Arrow type's name, whatever the input kind (numpy datetime64[D] is Arrow's date32)
    with pytest.raises(InvalidInputError, match=r"'when' has unsupported type date32\[day\]"):
        mon.Profile.from_data(data, columns=["when"])
    p = mon.Profile.from_data(data, columns=["code"], categorical=["code"])
    assert list(p.columns) == ["code"] and p.columns["code"].kind == "categorical"
    with pytest.raises(
        InvalidInputError, match=r"`categorical` names \['zz'\], which is not in the data"
    ):
        mon.Profile.from_data(data, categorical=["zz"])
    with pytest.raises(
        InvalidInputError,
        match=r"`categorical` names \['x'\], which is not profiled; profiled columns",
    ) as info:
        mon.Profile.from_data(data, columns=["code"], categorical=["x"])
    assert info.value.details == {"unknown": ["x"], "available": ["code"]}


def test_sketched_column_is_sorted_once_and_its_value_counts_come_from_that_sort(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # one sort of the column serves the distinct-value count, the value counts, the edges and the
    # sketch: no np.unique (a sort of its own) over the column, no second sort
    sorts: list[int] = []
    uniques: list[int] = []
    real, real_sort = np.unique, np.sort

    def spy(x: np.ndarray, *args: object, **kwargs: object) -> object:
        uniques.append(int(np.asarray(x).size))
        return real(x, *args, **kwargs)  # type: ignore[call-overload]

    def sort_spy(x: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        sorts.append(int(np.asarray(x).size))
        return real_sort(x, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(np, "unique", spy)
    monkeypatch.setattr(np, "sort", sort_spy)
    rng = np.random.default_rng(6)
    cases = [
        (rng.integers(0, 5, 30_000).astype(float), 5),
        (np.full(30_000, 2.5), 1),
        (np.concatenate((np.full(10_000, 1.0), np.full(5, 9.0))), 2),
        (np.concatenate((np.full(10_000, 1.0), np.full(5, -9.0))), 2),
        (np.arange(30_000.0), None),
        # the first rows hold 19 distinct values, the rest one more: 20, still counted
        (
            np.concatenate((np.arange(10_000) % 19, np.full(5, 19))).astype(float),
            20,
        ),
        (
            np.concatenate((np.arange(10_000) % 20, np.full(5, 20))).astype(float),
            None,
        ),
    ]
    for x, distinct in cases:
        sorts.clear()
        uniques.clear()
        col = _num(mon.Profile.from_data({"x": x}, max_exact=100, bins=4), "x")
        assert not col.is_exact
        assert sorts == [x.size]
        assert max(uniques, default=0) <= 3  # only the 3 inner edges
        assert col.n_unique == distinct
        if distinct is not None:
            values, counts = real(x, return_counts=True)
            np.testing.assert_array_equal(col.discrete_values, values)
            np.testing.assert_array_equal(col.discrete_counts, counts)
            assert col.discrete_counts is not None and col.discrete_counts.dtype == np.int64


def _assert_same_profile(a: mon.Profile, b: mon.Profile) -> None:
    assert (a.n_rows, a.bins, a.max_exact, a.sketch_k) == (
        b.n_rows,
        b.bins,
        b.max_exact,
        b.sketch_k,
    )
    assert list(a.columns) == list(b.columns)
    for name, x in a.columns.items():
        y = b.columns[name]
        assert type(x) is type(y), name
        for key, value in vars(x).items():
            other = vars(y)[key]
            if isinstance(value, np.ndarray):
                assert other is not None and value.dtype == other.dtype, (name, key)
                np.testing.assert_array_equal(value, other, err_msg=f"{name}.{key}")
            else:
                assert value == other, (name, key, value, other)


def test_a_parquet_file_is_profiled_batch_by_batch_with_the_one_shot_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mloop.monitoring import _profile

    data = _data(4, 5000)
    data["int"] = np.random.default_rng(4).integers(-50, 50, 5000)
    table = pa.table(data)
    pq.write_table(table, tmp_path / "ref.parquet", row_group_size=1000)
    (tmp_path / "parts").mkdir()
    for i in range(3):
        pq.write_table(table.slice(i * 2000, 2000), tmp_path / "parts" / f"p{i}.parquet")
    sizes: list[int] = []
    real = _profile.iter_batches

    def spy(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        for batch in real(*args, **kwargs):  # type: ignore[arg-type]
            sizes.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(_profile, "iter_batches", spy)
    monkeypatch.setattr(_profile, "STREAM_ROWS", 700)
    whole = mon.Profile.from_data(table, categorical=["few"])
    streamed = mon.Profile.from_data(tmp_path / "ref.parquet", categorical=["few"])
    assert len(sizes) == 8 and max(sizes) == 700 and sum(sizes) == 5000  # never the whole file
    _assert_same_profile(streamed, whole)
    sizes.clear()
    folder = mon.Profile.from_data(str(tmp_path / "parts"), categorical=["few"])
    assert len(sizes) > 1 and sum(sizes) == 5000
    _assert_same_profile(folder, whole)
    picked = mon.Profile.from_data(tmp_path / "ref.parquet", columns=["cat", "int"])
    _assert_same_profile(picked, mon.Profile.from_data(table, columns=["cat", "int"]))
    # beyond max_exact the merged sketch replaces the exact values, as a merge of parts does
    sketched = mon.Profile.from_data(tmp_path / "ref.parquet", max_exact=1000, sketch_k=256)
    col = _num(sketched, "normal")
    assert not col.is_exact and col.n == 5000 and col.sketch.n == 5000
    assert (col.min, col.max) == (data["normal"].min(), data["normal"].max())
    with pytest.raises(InvalidInputError, match=r"`columns` names \['nope'\], which is not in"):
        mon.Profile.from_data(tmp_path / "ref.parquet", columns=["nope"])
    with pytest.raises(InvalidInputError, match=r"`categorical` names \['nope'\], which is not"):
        mon.Profile.from_data(tmp_path / "ref.parquet", categorical=["nope"])
    pq.write_table(table.slice(0, 0), tmp_path / "empty.parquet")
    empty = mon.Profile.from_data(tmp_path / "empty.parquet")
    _assert_same_profile(empty, mon.Profile.from_data(table.slice(0, 0)))
