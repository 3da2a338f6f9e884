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
from mloop.monitoring._profile import CategoricalProfile, NumericProfile

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
    with pytest.raises(InvalidInputError, match="which is not in the data"):
        mon.Profile.from_data({"x": [1.0]}, columns=["y"])


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
