"""quality_report: each check against hand-computed shares, on every supported input type."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mloop.errors import InvalidInputError
from mloop.monitoring import quality_report


def _frames(seed: int = 0, n: int = 5000) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    ref = {
        "age": rng.normal(40, 10, n),
        "plan": rng.choice(["basic", "pro", "team"], n),
        "visits": rng.integers(0, 20, n),
    }
    cur = {
        "age": rng.normal(40, 10, n),
        "plan": rng.choice(["basic", "pro", "team"], n),
        "visits": rng.integers(0, 20, n),
    }
    return ref, cur


@pytest.mark.parametrize("kind", ["dict", "pandas", "polars", "arrow", "parquet"])
def test_clean_data_passes_on_every_input_type(kind: str, tmp_path) -> None:
    ref, cur = _frames()
    cur["age"] = np.clip(cur["age"], ref["age"].min(), ref["age"].max())
    if kind == "pandas":
        ref, cur = pd.DataFrame(ref), pd.DataFrame(cur)
    elif kind == "polars":
        ref, cur = pl.DataFrame(ref), pl.DataFrame(cur)
    elif kind == "arrow":
        ref, cur = pa.table(ref), pa.table(cur)
    elif kind == "parquet":
        pq.write_table(pa.table(ref), tmp_path / "r.parquet")
        pq.write_table(pa.table(cur), tmp_path / "c.parquet")
        ref, cur = tmp_path / "r.parquet", tmp_path / "c.parquet"
    r = quality_report(ref, cur)
    assert r.passed, [c for c in r.checks if c.verdict != "pass"]
    assert {c.check for c in r.checks if c.column == "age"} == {
        "type",
        "empty",
        "constant",
        "missing_share",
        "non_finite",
        "out_of_range",
    }
    assert "unseen_categories" in r.column("plan")
    json.loads(r.to_json())


def test_missing_share_increase_threshold() -> None:
    ref, cur = _frames(1)
    ref["age"][:100] = np.nan  # 2% in the reference
    cur["age"][:400] = np.nan  # 8% now: +6% > 5%
    r = quality_report(ref, cur)
    c = r.column("age")["missing_share"]
    assert c.verdict == "fail"
    assert c.value == pytest.approx(0.08) and c.reference_value == pytest.approx(0.02)
    assert (
        quality_report(ref, cur, thresholds={"missing_share": 0.07})
        .column("age")["missing_share"]
        .verdict
        == "pass"
    )


def test_out_of_range_share_by_hand() -> None:
    ref = {"x": np.arange(100.0)}  # range [0, 99]
    cur = {"x": np.r_[np.arange(90.0), [-1, 100, 150, 1e9, -5, 200, 99, 0, 50, 120]]}
    r = quality_report(ref, cur)
    c = r.column("x")["out_of_range"]
    # outside: -1, 100, 150, 1e9, -5, 200, 120 -> 7 of 100
    assert c.value == pytest.approx(0.07) and c.verdict == "fail"
    assert c.reference_value == [0.0, 99.0]
    assert "7 values" in c.message


def test_unseen_categories() -> None:
    ref = {"plan": np.array(["a", "b", "c"] * 100)}
    cur = {"plan": np.array(["a"] * 90 + ["new"] * 8 + ["other"] * 2)}
    c = quality_report(ref, cur).column("plan")["unseen_categories"]
    assert c.value == pytest.approx(0.10) and c.verdict == "fail"
    assert "'new'" in c.message and "2 unseen" in c.message
    ok = quality_report(ref, cur, thresholds={"unseen_categories": 0.2})
    assert ok.column("plan")["unseen_categories"].verdict == "pass"


def test_schema_and_type_mismatches() -> None:
    ref = {"a": np.arange(10), "b": np.arange(10.0), "code": np.arange(10)}
    cur = {"a": np.arange(10), "code": np.array([str(i) for i in range(10)]), "extra": np.ones(10)}
    r = quality_report(ref, cur)
    assert r.column("b")["column_missing"].verdict == "fail"
    assert r.column("extra")["extra_column"].verdict == "warn"
    t = r.column("code")["type"]
    assert t.verdict == "fail" and "numeric" in t.message and "categorical (string)" in t.message
    # ints in one frame, strings in the other, both declared categorical
    r = quality_report({"c": [1, 2, 3]}, {"c": ["1", "2", "3"]}, categorical=["c"])
    assert r.column("c")["type"].verdict == "fail"
    assert r.column("c")["unseen_categories"].verdict == "skip"
    # a column that mixes types
    r = quality_report({"m": ["a", "b"]}, {"m": np.array(["a", 1], dtype=object)})
    assert r.column("m")["type"].verdict == "fail" and "mixed" in r.column("m")["type"].value


def test_constant_and_empty_columns() -> None:
    ref = {"x": np.arange(10.0), "y": np.arange(10.0), "s": list("abcdefghij")}
    cur = {"x": np.full(10, 3.0), "y": np.full(10, np.nan), "s": [None] * 10}
    r = quality_report(ref, cur)
    assert r.column("x")["constant"].verdict == "fail"
    assert "(3)" in r.column("x")["constant"].message
    assert r.column("y")["empty"].verdict == "fail"
    assert r.column("s")["empty"].verdict == "fail"
    assert r.column("s")["type"].verdict == "pass"  # an all-missing column has no type to disagree
    empty = quality_report(ref, {"x": np.array([]), "y": np.array([]), "s": np.array([])})
    assert any(
        c.column is None and c.check == "empty" and c.verdict == "fail" for c in empty.checks
    )
    assert not empty.passed


def test_infinite_values() -> None:
    ref = {"x": np.arange(100.0)}
    cur = {"x": np.r_[np.arange(98.0), np.inf, -np.inf]}
    r = quality_report(ref, cur)
    c = r.column("x")["non_finite"]
    assert c.verdict == "fail" and c.value == pytest.approx(0.02)
    assert r.column("x")["out_of_range"].value == 0.0  # inf is reported by non_finite only


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInputError, match="Unknown quality threshold"):
        quality_report({"a": [1]}, {"a": [1]}, thresholds={"nope": 1})
    with pytest.raises(InvalidInputError, match="not in the reference"):
        quality_report({"a": [1]}, {"a": [1]}, columns=["b"])
    with pytest.raises(InvalidInputError, match="same length"):
        quality_report({"a": [1, 2], "b": [1]}, {"a": [1]})
    with pytest.raises(InvalidInputError, match="DataFrame"):
        quality_report(42, {"a": [1]})


def test_html_escapes_and_renders(tmp_path) -> None:
    name = "<script>alert(1)</script>"
    r = quality_report({name: ["a", "b"]}, {name: ["<img src=x>", "b"]})
    page = r.to_html(tmp_path / "q.html")
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x>" not in page
    assert (tmp_path / "q.html").read_text(encoding="utf-8") == page


def test_profile_reference_gives_the_same_checks_as_data() -> None:
    from mloop.monitoring._profile import Profile

    rng = np.random.default_rng(0)
    ref = {
        "x": np.r_[rng.normal(size=1000), [np.nan] * 10, [np.inf] * 2],
        "c": np.array(["a", "b", "c", "d"] * 253),
        "k": np.r_[np.ones(1000), np.zeros(12)],
    }
    cur = {
        "x": np.r_[rng.normal(size=1000) + 3, [np.nan] * 100],
        "c": np.array(["a", "z"] * 550),
        "k": np.ones(1100),
    }
    from_data = quality_report(ref, cur)
    from_profile = quality_report(Profile.from_data(ref), cur)
    assert len(from_data.checks) == len(from_profile.checks)
    for a, b in zip(from_data.checks, from_profile.checks, strict=True):
        assert (a.column, a.check, a.verdict) == (b.column, b.check, b.verdict)
        if isinstance(a.value, float):
            assert a.value == pytest.approx(b.value, abs=1e-12)
        if isinstance(a.reference_value, float):
            assert a.reference_value == pytest.approx(b.reference_value, abs=1e-12)
    assert not from_profile.passed
