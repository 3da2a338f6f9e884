"""Signature inference per input type, validation errors, safe casts, extra columns, JSON round trip."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from mloop.errors import InvalidInputError
from mloop.registry._signature import (
    ColSpec,
    ExtraColumnsWarning,
    ModelSignature,
    ParamSpec,
    Schema,
    TensorSpec,
    infer_schema,
    infer_signature,
    validate_input,
)


def _cols(schema: Schema) -> list[tuple[Any, ...]]:
    return [(c.name, c.dtype, c.nullable) for c in schema.specs if isinstance(c, ColSpec)]


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.array([31, 45, 27], dtype=np.int64),
            "income": [52_000.0, np.nan, 38_500.0],
            "plan": ["basic", None, "pro"],
            "region": pd.Categorical(["eu", "us", "eu"]),
            "signup": pd.to_datetime(["2024-01-02", "2024-03-04", "2024-05-06"]),
            "active": [True, False, True],
            "score32": np.array([0.1, 0.2, 0.3], dtype=np.float32),
        }
    )


EXPECTED = [
    ("age", "int64", False),
    ("income", "float64", True),
    ("plan", "string", True),
    ("region", "category", False),
    ("signup", "datetime", False),
    ("active", "bool", False),
    ("score32", "float32", False),
]


# --------------------------------------------------------------------------------------- inference


def test_infer_from_pandas(df: pd.DataFrame) -> None:
    assert _cols(infer_schema(df)) == EXPECTED


def test_infer_from_polars_and_arrow_match_pandas(df: pd.DataFrame) -> None:
    assert _cols(infer_schema(pl.from_pandas(df))) == EXPECTED
    assert _cols(infer_schema(pa.Table.from_pandas(df, preserve_index=False))) == EXPECTED


def test_infer_from_dict_of_arrays_and_records() -> None:
    schema = infer_schema({"x": np.array([1.0, np.nan]), "k": np.array([1, 2], dtype=np.int32)})
    assert _cols(schema) == [("x", "float64", True), ("k", "int32", False)]
    records = [{"a": 1, "b": "u"}, {"a": 2, "b": None}]
    assert _cols(infer_schema(records)) == [("a", "int64", False), ("b", "string", True)]


def test_infer_pandas_nullable_extension_and_object_columns() -> None:
    frame = pd.DataFrame(
        {
            "n": pd.array([1, None, 3], dtype="Int64"),
            "m": pd.array([1, 2, 3], dtype="Int32"),
            "o": pd.Series(["a", "b", "c"], dtype=object),
        }
    )
    assert _cols(infer_schema(frame)) == [
        ("n", "int64", True),
        ("m", "int32", False),
        ("o", "string", False),
    ]


def test_infer_tensors_from_numpy_lists_and_named_arrays() -> None:
    (spec,) = infer_schema(np.zeros((5, 3, 2), dtype=np.float32)).specs
    assert spec == TensorSpec("float32", (-1, 3, 2))
    (spec,) = infer_schema([[1, 2], [3, 4]]).specs
    assert spec == TensorSpec("int64", (-1, 2))
    schema = infer_schema({"img": np.zeros((2, 4, 4)), "meta": np.zeros((2, 3))})
    assert schema.is_tensor
    assert schema.specs == (
        TensorSpec("float64", (-1, 4, 4), "img"),
        TensorSpec("float64", (-1, 3), "meta"),
    )


def test_infer_signature_with_output(df: pd.DataFrame) -> None:
    sig = infer_signature(df, pd.Series([0, 1, 0]))
    assert sig.outputs is not None and sig.outputs.specs == (TensorSpec("int64", (-1,)),)
    sig = infer_signature(df, pd.DataFrame({"label": [0, 1, 0], "p": [0.1, 0.9, 0.2]}))
    assert sig.outputs is not None
    assert _cols(sig.outputs) == [("label", "int64", False), ("p", "float64", False)]
    assert infer_signature(df).outputs is None


def test_unsupported_inputs_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="Unsupported input type"):
        infer_schema("text")
    with pytest.raises(InvalidInputError, match="0-d"):
        infer_schema(np.array(1.0))


def test_json_round_trip(df: pd.DataFrame) -> None:
    sig = infer_signature(df, np.zeros((3, 2)), params={"threshold": 0.5, "top_k": 3})
    text = json.dumps(sig.to_dict())
    assert ModelSignature.from_dict(json.loads(text)) == sig
    tensor = infer_signature(np.zeros((2, 3), dtype=np.float32))
    assert ModelSignature.from_dict(json.loads(json.dumps(tensor.to_dict()))) == tensor


def test_schema_rejects_bad_specs() -> None:
    with pytest.raises(InvalidInputError, match="not a mix"):
        Schema([ColSpec("a", "int64"), TensorSpec("float64", (-1,))])
    with pytest.raises(InvalidInputError, match="repeated"):
        Schema([ColSpec("a", "int64"), ColSpec("a", "float64")])
    with pytest.raises(InvalidInputError, match="Unknown dtype 'int'"):
        ColSpec("a", "int")


# -------------------------------------------------------------------------------------- validation


@pytest.fixture
def sig(df: pd.DataFrame) -> ModelSignature:
    return infer_signature(df)


def test_valid_input_passes_through_unchanged(df: pd.DataFrame, sig: ModelSignature) -> None:
    out = validate_input(df, sig)
    assert out is df  # nothing to cast or reorder: no copy on the hot path


def test_missing_column_names_column_and_type(df: pd.DataFrame, sig: ModelSignature) -> None:
    with pytest.raises(InvalidInputError, match=r"column 'age' is missing \(expected int64\)") as e:
        validate_input(df.drop(columns=["age"]), sig)
    assert e.value.details["problems"][0]["column"] == "age"


def test_wrong_type_names_column_expected_and_received(
    df: pd.DataFrame, sig: ModelSignature
) -> None:
    bad = df.assign(income=["52k", "n/a", "38k"])
    with pytest.raises(InvalidInputError, match=r"column 'income' must be float64; got string"):
        validate_input(bad, sig)


def test_float_never_becomes_int(df: pd.DataFrame, sig: ModelSignature) -> None:
    with pytest.raises(InvalidInputError, match=r"'age' must be int64; got float64"):
        validate_input(df.assign(age=[31.0, 45.0, 27.0]), sig)


def test_null_in_non_nullable_column_names_column_and_count(
    df: pd.DataFrame, sig: ModelSignature
) -> None:
    bad = df.assign(score32=np.array([np.nan, 0.2, np.nan], dtype=np.float32))
    with pytest.raises(InvalidInputError, match=r"'score32' is not nullable but 2 of 3 rows"):
        validate_input(bad, sig)
    # nullable columns accept missing values
    validate_input(df.assign(income=np.nan, plan=None), sig)


def test_all_problems_reported_at_once(df: pd.DataFrame, sig: ModelSignature) -> None:
    bad = df.drop(columns=["signup"]).assign(active=[1.5, 2.5, 0.0])
    with pytest.raises(InvalidInputError) as e:
        validate_input(bad, sig)
    assert [p["column"] for p in e.value.details["problems"]] == ["signup", "active"]


def test_safe_casts_are_applied(df: pd.DataFrame, sig: ModelSignature) -> None:
    cast_in = df.assign(
        age=df["age"].astype(np.int32),
        income=pd.Series([52_000, 41_000, 38_500], dtype=np.int64),
        score32=df["score32"],
        region=df["region"].astype(str),
    )
    out = validate_input(cast_in, sig)
    assert out["age"].dtype == np.int64
    assert out["income"].dtype == np.float64
    assert isinstance(out["region"].dtype, pd.CategoricalDtype)
    wide = ModelSignature(Schema([ColSpec("x", "float64")]))
    out = validate_input(pd.DataFrame({"x": np.array([0.5, 1.5], dtype=np.float32)}), wide)
    assert out["x"].dtype == np.float64 and out["x"].tolist() == [0.5, 1.5]


def test_lossy_int_to_float_is_refused() -> None:
    sig = ModelSignature(Schema([ColSpec("x", "float64")]))
    validate_input(pd.DataFrame({"x": [2**53]}), sig)
    with pytest.raises(InvalidInputError, match="2\\*\\*53"):
        validate_input(pd.DataFrame({"x": [2**53 + 1]}), sig)
    narrow = ModelSignature(Schema([ColSpec("x", "int32")]))
    with pytest.raises(InvalidInputError, match="must be int32; got int64"):
        validate_input(pd.DataFrame({"x": [1]}), narrow)
    with pytest.raises(InvalidInputError, match="must be float32; got float64"):
        validate_input(
            pd.DataFrame({"x": [1.0]}), ModelSignature(Schema([ColSpec("x", "float32")]))
        )


def test_extra_columns_dropped_with_warning_and_reordered(
    df: pd.DataFrame, sig: ModelSignature
) -> None:
    shuffled = df.assign(debug_id=[1, 2, 3])[list(reversed([*df.columns, "debug_id"]))]
    with pytest.warns(ExtraColumnsWarning, match="debug_id"):
        out = validate_input(shuffled, sig)
    assert list(out.columns) == list(df.columns)
    pd.testing.assert_frame_equal(out, df)


def test_extra_columns_refused_in_strict_mode(df: pd.DataFrame, sig: ModelSignature) -> None:
    with pytest.raises(InvalidInputError, match=r"\['debug_id'\] are not in the signature"):
        validate_input(df.assign(debug_id=1), sig, strict=True)


def test_polars_arrow_and_dict_inputs(df: pd.DataFrame, sig: ModelSignature) -> None:
    out = validate_input(pl.from_pandas(df), sig)
    assert isinstance(out, pl.DataFrame) and out.columns == list(df.columns)
    out = validate_input(pa.Table.from_pandas(df, preserve_index=False), sig)
    assert isinstance(out, pa.Table)
    out = validate_input(pl.from_pandas(df), sig, to="pandas")
    assert isinstance(out, pd.DataFrame) and out["age"].tolist() == [31, 45, 27]
    small = ModelSignature(Schema([ColSpec("a", "float64"), ColSpec("b", "int64")]))
    out = validate_input({"b": np.array([1, 2], dtype=np.int8), "a": [1, 2]}, small)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["a", "b"]
    assert out.dtypes.tolist() == [np.float64, np.int64]
    out = validate_input([{"a": 1.0, "b": 2}], small, to="numpy")
    assert out.tolist() == [[1.0, 2.0]]
    with pytest.raises(InvalidInputError, match="'b' is not nullable but 1 of 2"):
        validate_input(pl.DataFrame({"a": [1.0, 2.0], "b": [1, None]}), small)
    with pytest.raises(InvalidInputError, match="'a' must be float64; got string"):
        validate_input(pl.DataFrame({"a": ["x"], "b": [1]}), small)


def test_tensor_checks() -> None:
    sig = ModelSignature(Schema([TensorSpec("float64", (-1, 3))]))
    out = validate_input(np.ones((4, 3), dtype=np.int32), sig)
    assert out.dtype == np.float64
    with pytest.raises(InvalidInputError, match=r"shape \(\*, 3\).*got \(4, 2\)"):
        validate_input(np.ones((4, 2)), sig)
    with pytest.raises(InvalidInputError, match=r"shape .*got \(3,\)"):
        validate_input(np.ones(3), sig)
    with pytest.raises(InvalidInputError, match="dtype float64; got string"):
        validate_input(np.array([["a", "b", "c"]]), sig)
    f32 = ModelSignature(Schema([TensorSpec("float32", (-1, 3))]))
    with pytest.raises(InvalidInputError, match="dtype float32; got float64"):
        validate_input(np.ones((1, 3)), f32)
    assert validate_input(pd.DataFrame(np.ones((2, 3))), sig).shape == (2, 3)
    named = ModelSignature(
        Schema([TensorSpec("float64", (-1, 2), "a"), TensorSpec("int64", (-1,), "b")])
    )
    out = validate_input({"a": np.zeros((5, 2)), "b": np.arange(5)}, named)
    assert set(out) == {"a", "b"}
    with pytest.raises(InvalidInputError, match=r"missing tensors \['b'\]"):
        validate_input({"a": np.zeros((5, 2))}, named)


def test_params_resolution() -> None:
    sig = ModelSignature(
        Schema([ColSpec("a", "float64")]),
        params=(ParamSpec("threshold", "float64", 0.5), ParamSpec("top_k", "int64", 3)),
    )
    assert sig.resolve_params(None) == {"threshold": 0.5, "top_k": 3}
    assert sig.resolve_params({"threshold": 1}) == {"threshold": 1, "top_k": 3}
    with pytest.raises(InvalidInputError, match="Unknown inference parameter 'k'"):
        sig.resolve_params({"k": 1})
    with pytest.raises(InvalidInputError, match="'top_k' must be int64; got str"):
        sig.resolve_params({"top_k": "3"})
    with pytest.raises(InvalidInputError, match="'top_k' must be int64; got bool"):
        sig.resolve_params({"top_k": True})


def test_docstring_examples_run() -> None:
    import doctest

    from mloop.registry import _signature

    result = doctest.testmod(_signature, raise_on_error=False)
    assert result.attempted >= 3 and result.failed == 0
