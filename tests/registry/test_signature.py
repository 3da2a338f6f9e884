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
    with pytest.raises(InvalidInputError, match=r"Unsupported input type int; expected a table"):
        infer_schema(42)
    # a str is a path, as for every API that takes a table: one that names no table file says so
    with pytest.raises(InvalidInputError, match=r"cannot read `data` 'text': expected a \.parquet"):
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


# ------------------------------------------------------------------------------ schema and specs


def test_a_schema_needs_at_least_one_spec() -> None:
    for empty in ([], (), iter([])):
        with pytest.raises(InvalidInputError) as e:
            Schema(empty)
        assert str(e.value) == "A schema needs at least one column or tensor; got none."


def test_a_schema_holds_specs_of_one_kind() -> None:
    with pytest.raises(InvalidInputError) as e:
        Schema([ColSpec("a", "int64"), TensorSpec("float64", (-1,))])
    assert str(e.value) == (
        "A schema holds either ColSpec or TensorSpec items, not a mix; "
        "got ['ColSpec', 'TensorSpec']."
    )
    with pytest.raises(InvalidInputError, match=r"not a mix; got \['str'\]\.$"):
        Schema(["a"])  # type: ignore[list-item]


def test_schema_names_are_unique() -> None:
    with pytest.raises(InvalidInputError) as e:
        Schema([ColSpec("a", "int64"), ColSpec("b", "int64"), ColSpec("a", "float64")])
    assert str(e.value) == "Schema names must be unique; repeated: ['a']."
    assert Schema([ColSpec("a", "int64"), ColSpec("A", "int64")]).names == ["a", "A"]


def test_several_tensors_are_each_named() -> None:
    unnamed = TensorSpec("float64", (-1,))
    for specs, names in (
        ([unnamed, unnamed], "[None, None]"),
        ([TensorSpec("int64", (-1,), "a"), unnamed], "['a', None]"),
    ):
        with pytest.raises(InvalidInputError) as e:
            Schema(specs)
        assert str(e.value) == (
            "A schema of several tensors names each one (the model takes a dict of arrays); "
            f"got names {names}."
        )
    assert Schema([unnamed]).names == [None]
    assert Schema([TensorSpec("int64", (-1,), "a")]).names == ["a"]


def test_unknown_dtypes_are_refused_naming_where() -> None:
    from mloop.registry._signature import DTYPES

    for make, dtype, where in (
        (lambda: ColSpec("a", "int"), "int", "column 'a'"),
        (lambda: TensorSpec("f8", (-1,)), "f8", "tensor"),
        (lambda: TensorSpec("f8", (-1,), "img"), "f8", "tensor 'img'"),
    ):
        with pytest.raises(InvalidInputError) as e:
            make()
        assert str(e.value) == f"Unknown dtype {dtype!r} for {where}; expected one of {DTYPES}."
    with pytest.raises(InvalidInputError) as e:
        ParamSpec("k", "int")
    assert str(e.value) == (
        "Unknown dtype 'int' for inference parameter 'k'; "
        "expected one of ['bool', 'int64', 'float64', 'string']."
    )


def test_columns_are_not_nullable_unless_said_so() -> None:
    assert ColSpec("a", "int64").nullable is False
    assert ColSpec("a", "int64").to_dict() == {"name": "a", "dtype": "int64", "nullable": False}
    read = Schema.from_dict({"columns": [{"name": "a", "dtype": "int64"}]})  # no "type": columns
    assert read.specs == (ColSpec("a", "int64", False),)
    read = Schema.from_dict(
        {"type": "columns", "columns": [{"name": "a", "dtype": "bool", "nullable": 1}]}
    )
    assert read.specs[0].nullable is True  # type: ignore[union-attr]


def test_tensor_shapes_become_plain_ints() -> None:
    spec = TensorSpec("float64", [np.int64(-1), 3.0])  # type: ignore[arg-type]
    assert spec.shape == (-1, 3) and all(type(d) is int for d in spec.shape)
    assert json.dumps(spec.to_dict()) == '{"name": null, "dtype": "float64", "shape": [-1, 3]}'
    read = Schema.from_dict({"type": "tensors", "tensors": [{"dtype": "int8", "shape": [-1]}]})
    assert read.specs == (TensorSpec("int8", (-1,), None),)
    named = Schema([TensorSpec("int8", (-1, 2), "img"), TensorSpec("bool", (-1,), "mask")])
    assert Schema.from_dict(json.loads(json.dumps(named.to_dict()))) == named


def test_schema_kind_names_dict_form_and_repr() -> None:
    cols = Schema([ColSpec("a", "int64"), ColSpec("b", "string", True)])
    assert cols.is_tensor is False and cols.names == ["a", "b"]
    assert cols.to_dict() == {
        "type": "columns",
        "columns": [
            {"name": "a", "dtype": "int64", "nullable": False},
            {"name": "b", "dtype": "string", "nullable": True},
        ],
    }
    assert repr(cols) == (
        "Schema([ColSpec(name='a', dtype='int64', nullable=False), "
        "ColSpec(name='b', dtype='string', nullable=True)])"
    )
    arrays = Schema([TensorSpec("float32", (-1, 2), "x")])
    assert arrays.is_tensor is True
    assert arrays.to_dict() == {
        "type": "tensors",
        "tensors": [{"name": "x", "dtype": "float32", "shape": [-1, 2]}],
    }


def test_signature_dict_form_and_defaults() -> None:
    inputs = Schema([ColSpec("a", "float64")])
    sig = ModelSignature(inputs, params=[ParamSpec("t", "float64", 0.5)])  # type: ignore[arg-type]
    assert sig.params == (ParamSpec("t", "float64", 0.5),) and hash(sig) == hash(sig)
    assert sig.to_dict() == {
        "inputs": {
            "type": "columns",
            "columns": [{"name": "a", "dtype": "float64", "nullable": False}],
        },
        "outputs": None,
        "params": [{"name": "t", "dtype": "float64", "default": 0.5}],
    }
    bare = ModelSignature.from_dict({"inputs": inputs.to_dict()})
    assert bare == ModelSignature(inputs) and bare.outputs is None and bare.params == ()
    assert ModelSignature.from_dict({**sig.to_dict(), "outputs": None}) == sig


def test_specs_and_signatures_are_frozen() -> None:
    import dataclasses

    sig = ModelSignature(Schema([ColSpec("a", "int64")]))
    for obj, attr in (
        (ColSpec("a", "int64"), "nullable"),
        (TensorSpec("int64", (-1,)), "shape"),
        (sig.inputs, "specs"),
        (ParamSpec("k", "int64", 1), "default"),
        (sig, "outputs"),
    ):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, attr, None)


# ------------------------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    ("dtype", "accepted", "refused"),
    [
        ("float64", [1, 0.5, -2], [True, "1", [1.0]]),  # an int is a valid float; a bool is not
        ("int64", [3, -1], [3.0, True, "3"]),
        ("bool", [True, False], [1, 0, "true"]),
        ("string", ["x", ""], [1, b"x", True]),
    ],
)
def test_parameter_types(dtype: str, accepted: list[Any], refused: list[Any]) -> None:
    sig = ModelSignature(Schema([ColSpec("a", "float64")]), params=(ParamSpec("p", dtype, None),))
    for value in accepted:
        assert sig.resolve_params({"p": value}) == {"p": value}
    for value in refused:
        with pytest.raises(InvalidInputError) as e:
            sig.resolve_params({"p": value})
        assert str(e.value) == (
            f"Inference parameter 'p' must be {dtype}; got {type(value).__name__} {value!r}."
        )


def test_parameters_none_and_unknown_names() -> None:
    sig = ModelSignature(
        Schema([ColSpec("a", "float64")]),
        params=(ParamSpec("threshold", "float64", 0.5), ParamSpec("top_k", "int64", 3)),
    )
    assert sig.resolve_params({}) == {"threshold": 0.5, "top_k": 3}
    assert sig.resolve_params({"top_k": None}) == {"threshold": 0.5, "top_k": None}
    with pytest.raises(InvalidInputError) as e:
        sig.resolve_params({"threshold": 0.1, "k": 1})
    assert (
        str(e.value)
        == "Unknown inference parameter 'k'; the signature accepts ['threshold', 'top_k']."
    )
    assert ModelSignature(Schema([ColSpec("a", "int64")])).resolve_params(None) == {}


def test_parameter_dtypes_inferred_from_defaults() -> None:
    sig = infer_signature(np.zeros((2, 1)), params={"flag": True, "k": 3, "t": 0.5, "s": "x"})
    assert sig.params == (
        ParamSpec("flag", "bool", True),
        ParamSpec("k", "int64", 3),
        ParamSpec("t", "float64", 0.5),
        ParamSpec("s", "string", "x"),
    )
    for bad, type_name in ((None, "NoneType"), ([1], "list"), (np.float64(1), None)):
        if type_name is None:  # numpy floats are floats
            assert infer_signature(np.zeros((2, 1)), params={"x": bad}).params[0].dtype == "float64"
            continue
        with pytest.raises(InvalidInputError) as e:
            infer_signature(np.zeros((2, 1)), params={"x": bad})
        assert str(e.value) == (
            f"Inference parameter 'x' must default to a bool, int, float or str; got {type_name}."
        )


def test_inferred_tensor_shapes_and_output() -> None:
    assert infer_schema(np.arange(4)).specs == (TensorSpec("int64", (-1,)),)
    assert infer_schema({1: np.zeros((2, 2)), 2: np.zeros((2, 3))}).names == ["1", "2"]
    with pytest.raises(InvalidInputError) as e:
        infer_schema(np.array(1.0))
    assert str(e.value) == "A tensor example needs a batch dimension; got a 0-d array."
    sig = infer_signature({"a": [1.0, 2.0]}, [0, 1])
    assert sig.outputs is not None and sig.outputs.specs == (TensorSpec("int64", (-1,)),)


# ------------------------------------------------------------------------ casts, both directions

_REFUSED = None


@pytest.mark.parametrize(
    ("received", "expected", "result"),
    [
        ("int8", "int16", "int16"),  # wider ints of the same signedness
        ("int16", "int8", _REFUSED),
        ("int32", "int64", "int64"),
        ("int64", "int32", _REFUSED),
        ("uint8", "int16", "int16"),  # unsigned into a wider signed int
        ("uint8", "uint16", "uint16"),
        ("int8", "uint16", _REFUSED),  # signed never becomes unsigned
        ("uint32", "int32", _REFUSED),  # same width: the top half does not fit
        ("uint32", "int64", "int64"),
        ("uint64", "int64", _REFUSED),
        ("int64", "uint64", _REFUSED),
        ("int16", "float32", "float32"),  # int -> float while the float's mantissa holds it
        ("int32", "float32", _REFUSED),
        ("int32", "float64", "float64"),
        ("int64", "float64", "float64"),  # values checked against 2**53, below
        ("uint64", "float64", "float64"),
        ("int64", "float32", _REFUSED),
        ("int8", "float16", _REFUSED),
        ("float16", "float32", "float32"),  # wider floats
        ("float32", "float64", "float64"),
        ("float64", "float32", _REFUSED),
        ("float32", "float16", _REFUSED),
        ("float64", "int64", _REFUSED),  # float never becomes int
        ("float32", "int32", _REFUSED),
        ("float32", "float32", "float32"),
        ("bool", "int64", _REFUSED),
        ("int64", "bool", _REFUSED),
        ("int64", "string", _REFUSED),
        ("int64", "object", "int64"),  # object takes anything as it is
    ],
)
def test_numeric_cast_rules(received: str, expected: str, result: str | None) -> None:
    values = np.array([1, 0, 1], dtype=received)
    sig = Schema([ColSpec("x", expected)])
    if result is _REFUSED:
        with pytest.raises(InvalidInputError) as e:
            validate_input(pd.DataFrame({"x": values}), sig)
        assert str(e.value) == (
            f"Input does not match the model signature: column 'x' must be {expected}; "
            f"got {received}."
        )
        assert e.value.details["problems"] == [
            {
                "column": "x",
                "problem": "dtype",
                "expected": expected,
                "received": received,
                "message": f"column 'x' must be {expected}; got {received}",
            }
        ]
    else:
        out = validate_input(pd.DataFrame({"x": values}), sig)
        assert out["x"].dtype == np.dtype(result) and out["x"].tolist() == [1, 0, 1]


def test_string_category_datetime_cast_rules() -> None:
    strings = pd.DataFrame({"x": ["a", "b"]})
    out = validate_input(strings, Schema([ColSpec("x", "category")]))
    assert isinstance(out["x"].dtype, pd.CategoricalDtype) and out["x"].tolist() == ["a", "b"]
    out = validate_input(strings.astype("category"), Schema([ColSpec("x", "string")]))
    assert not isinstance(out["x"].dtype, pd.CategoricalDtype) and out["x"].tolist() == ["a", "b"]
    for frame, expected, got in (
        (strings, "float64", "string"),
        (pd.DataFrame({"x": pd.to_datetime(["2024-01-01"])}), "string", "datetime"),
        (pd.DataFrame({"x": [1.5]}), "datetime", "float64"),
        (pd.DataFrame({"x": [b"a"]}), "string", "binary"),
    ):
        with pytest.raises(
            InvalidInputError,
            match=rf"^Input does not match the model signature: column 'x' must be {expected}; got {got}\.$",
        ):
            validate_input(frame, Schema([ColSpec("x", expected)]))


# ----------------------------------------------------------------- 64-bit ints into float64: 2**53

_BEYOND = "values beyond 2**53 that float64 cannot hold exactly"
_INT64_EDGES = [
    ([2**53], True),
    ([-(2**53)], True),
    ([-(2**53), 0, 2**53], True),
    ([2**53 + 1], False),
    ([-(2**53) - 1], False),
    ([0, 2**54], False),  # float64 holds 2**54, but the rule is the range, not the value
    ([-(2**63)], False),  # abs() wraps here: it must still be refused
    ([2**63 - 1], False),
    ([-(2**53) - 1, 0], False),  # each bound is checked, whatever the other values
    ([-(2**53), 2**53 + 1], False),
    ([5, -(2**63)], False),
]


def _frames_of(values: list[int], dtype: str = "int64") -> list[Any]:
    arrow_type = pa.int64() if dtype == "int64" else pa.uint64()
    return [
        pd.DataFrame({"x": np.array(values, dtype=dtype)}),
        pa.table({"x": pa.array(values, arrow_type)}),
        pl.DataFrame({"x": pl.Series(values, dtype=pl.Int64 if dtype == "int64" else pl.UInt64)}),
    ]


@pytest.mark.parametrize(("values", "fits"), _INT64_EDGES)
def test_int64_columns_become_float64_only_within_2_53(values: list[int], fits: bool) -> None:
    sig = Schema([ColSpec("x", "float64")])
    for frame in _frames_of(values):
        if fits:
            out = validate_input(frame, sig, to="dict")
            assert out["x"].dtype == np.float64
            assert [int(v) for v in out["x"]] == values  # exact
        else:
            with pytest.raises(InvalidInputError) as e:
                validate_input(frame, sig)
            assert str(e.value) == (
                f"Input does not match the model signature: column 'x' must be float64; got "
                f"int64 {_BEYOND}."
            )


@pytest.mark.parametrize(("values", "fits"), _INT64_EDGES)
def test_int64_tensors_become_float64_only_within_2_53(values: list[int], fits: bool) -> None:
    arr = np.array(values, dtype=np.int64)
    single = Schema([TensorSpec("float64", (-1,))])
    named = Schema([TensorSpec("float64", (-1,), "b")])
    if fits:
        out = validate_input(arr, single)
        assert out.dtype == np.float64 and [int(v) for v in out] == values
        assert validate_input({"b": arr}, named)["b"].dtype == np.float64
    else:
        with pytest.raises(InvalidInputError) as e:
            validate_input(arr, single)
        assert str(e.value) == f"input tensor must have dtype float64; got int64 {_BEYOND}."
        with pytest.raises(InvalidInputError) as e:
            validate_input({"b": arr}, named)
        assert str(e.value) == f"input tensor 'b' must have dtype float64; got int64 {_BEYOND}."


def test_uint64_into_float64_follows_the_same_rule() -> None:
    sig = Schema([ColSpec("x", "float64")])
    for frame in _frames_of([0, 2**53], "uint64"):
        assert validate_input(frame, sig, to="dict")["x"].tolist() == [0.0, 2.0**53]
    for frame in _frames_of([2**53 + 1], "uint64"):
        with pytest.raises(InvalidInputError, match=r"got uint64 values beyond 2\*\*53"):
            validate_input(frame, sig)
    tensor = Schema([TensorSpec("float64", (-1,))])
    assert validate_input(np.array([2**53], dtype=np.uint64), tensor).tolist() == [2.0**53]
    with pytest.raises(InvalidInputError, match=r"got uint64 values beyond 2\*\*53"):
        validate_input(np.array([2**64 - 1], dtype=np.uint64), tensor)


def test_empty_and_missing_ints_into_float64() -> None:
    nullable = Schema([ColSpec("x", "float64", nullable=True)])
    out = validate_input(pd.DataFrame({"x": pd.array([None, None], dtype="Int64")}), nullable)
    assert out["x"].dtype == np.float64 and out["x"].isna().tolist() == [True, True]
    out = validate_input(pd.DataFrame({"x": pd.array([2**53, None], dtype="Int64")}), nullable)
    assert out["x"].tolist()[0] == 2.0**53
    out = validate_input(pa.table({"x": pa.array([None, 5], pa.int64())}), nullable, to="dict")
    assert out["x"][1] == 5.0
    empty = validate_input(pd.DataFrame({"x": np.array([], dtype=np.int64)}), nullable)
    assert empty["x"].dtype == np.float64 and len(empty) == 0
    empty = validate_input(pa.table({"x": pa.array([], pa.int64())}), nullable, to="dict")
    assert empty["x"].dtype == np.float64 and len(empty["x"]) == 0
    tensor = validate_input(
        np.zeros((0, 2), dtype=np.int64), Schema([TensorSpec("float64", (-1, 2))])
    )
    assert tensor.dtype == np.float64 and tensor.shape == (0, 2)
    # beyond 2**53 and missing values too: one problem for the column, the type
    with pytest.raises(InvalidInputError) as e:
        validate_input(
            pd.DataFrame({"x": pd.array([2**53 + 1, None], dtype="Int64")}),
            Schema([ColSpec("x", "float64")]),
        )
    assert [p["problem"] for p in e.value.details["problems"]] == ["dtype"]


# ------------------------------------------------------------------- nulls, missing, extra columns


@pytest.mark.parametrize(
    ("column", "dtype"),
    [
        ([1.0, np.nan, 2.0], "float64"),
        (["a", None, "b"], "string"),
        (pd.to_datetime(["2024-01-01", None, "2024-01-02"]), "datetime"),
        (pd.array([1, None, 2], dtype="Int64"), "int64"),
        (pd.array([True, None, False], dtype="boolean"), "bool"),
    ],
)
def test_missing_values_need_a_nullable_column(column: Any, dtype: str) -> None:
    frame = pd.DataFrame({"x": column})
    assert validate_input(frame, Schema([ColSpec("x", dtype, True)]))["x"].isna().sum() == 1
    with pytest.raises(InvalidInputError) as e:
        validate_input(frame, Schema([ColSpec("x", dtype)]))
    message = "column 'x' is not nullable but 1 of 3 rows are missing (None/NaN)"
    assert str(e.value) == f"Input does not match the model signature: {message}."
    assert e.value.details["problems"] == [
        {"column": "x", "problem": "nulls", "expected": dtype, "count": 1, "message": message}
    ]
    # without a missing value the same column passes as not nullable
    validate_input(frame.dropna(), Schema([ColSpec("x", dtype)]))


def test_every_kind_of_problem_is_reported_once_per_column_in_signature_order() -> None:
    sig = Schema(
        [
            ColSpec("gone", "int64"),
            ColSpec("typed", "int64"),
            ColSpec("holes", "float64"),
            ColSpec("big", "float64"),
            ColSpec("ok", "int64"),
            ColSpec("late", "string"),  # after each kind of problem, the next column is checked
        ]
    )
    frame = pd.DataFrame(
        {
            "extra2": [0, 0],
            "typed": [np.nan, 1.5],  # wrong type and a missing value: reported as the type only
            "big": [2**53 + 1, 0],
            "holes": [np.nan, 1.0],
            "ok": [1, 2],
            "extra1": [0, 0],
        }
    )
    with pytest.raises(InvalidInputError) as e:
        validate_input(frame, sig, strict=True)
    messages = [
        "column 'gone' is missing (expected int64)",
        "column 'typed' must be int64; got float64",
        "column 'holes' is not nullable but 1 of 2 rows are missing (None/NaN)",
        f"column 'big' must be float64; got int64 {_BEYOND}",
        "column 'late' is missing (expected string)",
        "columns ['extra2', 'extra1'] are not in the signature (strict mode)",
    ]
    assert str(e.value) == "Input does not match the model signature: " + "; ".join(messages) + "."
    assert e.value.details["problems"] == [
        {"column": "gone", "problem": "missing", "expected": "int64", "message": messages[0]},
        {"column": "typed", "problem": "dtype", "expected": "int64", "received": "float64", "message": messages[1]},
        {"column": "holes", "problem": "nulls", "expected": "float64", "count": 1, "message": messages[2]},
        {"column": "big", "problem": "dtype", "expected": "float64", "received": "int64", "message": messages[3]},
        {"column": "late", "problem": "missing", "expected": "string", "message": messages[4]},
        {"column": "extra2", "problem": "extra", "columns": ["extra2", "extra1"], "message": messages[5]},
    ]  # fmt: skip


def test_extra_columns_are_dropped_with_a_warning_and_strict_needs_extras_to_fail() -> None:
    import warnings

    sig = Schema([ColSpec("a", "int64")])
    frame = pd.DataFrame({"z": [1], "a": [1], "y": [2]})
    with pytest.warns(ExtraColumnsWarning) as record:
        out = validate_input(frame, sig)
    assert list(out.columns) == ["a"]
    (w,) = record
    assert str(w.message) == "Dropped columns ['z', 'y'] that are not in the model signature."
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(validate_input(frame[["a"]], sig, strict=True).columns) == ["a"]
        assert list(validate_input(frame[["a"]], sig).columns) == ["a"]


@pytest.mark.no_mutation  # inspects the caller's frame, which mutmut's trampolines change
def test_the_extra_columns_warning_points_at_the_callers_line() -> None:
    sig = Schema([ColSpec("a", "int64")])
    with pytest.warns(ExtraColumnsWarning) as record:
        validate_input(pd.DataFrame({"a": [1], "b": [2]}), sig)
    assert [w.filename for w in record] == [__file__]  # stacklevel=2


def test_validate_takes_a_bare_schema_and_refuses_non_tables() -> None:
    sig = Schema([ColSpec("x", "float64")])
    assert validate_input({"x": [1, 2]}, sig, to="numpy").tolist() == [[1.0], [2.0]]
    with pytest.raises(InvalidInputError) as e:
        validate_input(np.zeros((2, 2)), sig)
    assert str(e.value) == (
        "The model takes a table with columns ['x']; got numpy.ndarray of shape (2, 2). "
        "Pass a DataFrame, a pyarrow Table or a dict of column arrays."
    )
    with pytest.raises(InvalidInputError) as e:
        validate_input({"x": np.zeros((2, 2))}, sig)
    assert (
        str(e.value)
        == "A dict of columns needs 1-D values of one length; got lengths/shapes {'x': (2, 2)}."
    )


# ------------------------------------------------------------------------------------- tensors


def test_a_bare_array_is_refused_by_a_named_tensor_signature() -> None:
    named = Schema([TensorSpec("float64", (-1, 2), "a"), TensorSpec("int64", (-1,), "b")])
    with pytest.raises(InvalidInputError) as e:
        validate_input(np.zeros((5, 2)), named)
    assert str(e.value) == (
        "The model takes named tensors ['a', 'b'] as a dict of arrays; "
        "got numpy.ndarray of shape (5, 2)."
    )
    one = Schema([TensorSpec("float64", (-1,), "a")])  # one tensor, but named: still a dict
    with pytest.raises(InvalidInputError, match=r"^The model takes named tensors \['a'\]"):
        validate_input(np.zeros(3), one)
    out = validate_input({"a": [1, 2]}, one)
    assert list(out) == ["a"] and out["a"].dtype == np.float64 and out["a"].tolist() == [1.0, 2.0]
    with pytest.raises(InvalidInputError) as e:
        validate_input({"b": np.zeros(1)}, named)
    assert str(e.value) == "Input is missing tensors ['a']; the model takes all of them."
    out = validate_input({"b": np.arange(2, dtype=np.int32), "a": np.ones((2, 2)), "c": 0}, named)
    assert list(out) == ["a", "b"] and out["b"].dtype == np.int64  # others are left out


def test_a_single_tensor_takes_an_array_a_list_or_a_frame() -> None:
    sig = Schema([TensorSpec("float64", (-1, 3))])
    arr = np.ones((2, 3))
    assert validate_input(arr, sig) is arr  # same dtype: no copy
    assert validate_input([[1, 2, 3]], sig).tolist() == [[1.0, 2.0, 3.0]]
    assert validate_input(pl.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]}), sig).tolist() == [
        [1.0, 2.0, 3.0]
    ]
    with pytest.raises(InvalidInputError) as e:
        validate_input({"a": np.ones((2, 3))}, sig)
    assert str(e.value) == "The model takes one array of shape (*, 3); got dict."


@pytest.mark.parametrize(
    ("shape", "given", "shown"),
    [
        ((-1, 3), (4, 2), "(*, 3)"),
        ((-1, 3), (3,), "(*, 3)"),
        ((-1,), (3, 1), "(*,)"),
        ((2, -1), (3, 5), "(2, *)"),
        ((-1, 2, 2), (1, 2, 3), "(*, 2, 2)"),
        ((), (3,), "()"),
    ],
)
def test_tensor_shape_errors(shape: tuple[int, ...], given: tuple[int, ...], shown: str) -> None:
    with pytest.raises(InvalidInputError) as e:
        validate_input(np.zeros(given), Schema([TensorSpec("float64", shape)]))
    assert str(e.value) == f"input tensor must have shape {shown} (* = any); got {given}."


def test_tensor_shapes_accepted() -> None:
    assert validate_input(np.zeros((2, 7)), Schema([TensorSpec("float64", (2, -1))])).shape == (
        2,
        7,
    )
    assert validate_input(
        np.zeros((9, 2, 2)), Schema([TensorSpec("float64", (-1, 2, 2))])
    ).shape == (9, 2, 2)
    assert validate_input(np.zeros(()), Schema([TensorSpec("float64", ())])).shape == ()


@pytest.mark.parametrize(
    ("received", "expected", "ok"),
    [
        ("int32", "float64", True),
        ("float32", "float64", True),
        ("int8", "int64", True),
        ("float64", "float32", False),
        ("float64", "int64", False),
        ("int64", "int32", False),
        ("bool", "int64", False),
    ],
)
def test_tensor_dtype_rules(received: str, expected: str, ok: bool) -> None:
    arr = np.ones((2,), dtype=received)
    sig = Schema([TensorSpec(expected, (-1,), "t")])
    if ok:
        assert validate_input({"t": arr}, sig)["t"].dtype == np.dtype(expected)
    else:
        with pytest.raises(InvalidInputError) as e:
            validate_input({"t": arr}, sig)
        assert str(e.value) == f"input tensor 't' must have dtype {expected}; got {received}."


def test_module_exports_exist() -> None:
    from mloop.registry import _signature

    assert sorted(_signature.__all__) == sorted(
        ["DTYPES", "ColSpec", "ExtraColumnsWarning", "ModelSignature", "ParamSpec", "Schema",
         "TensorSpec", "infer_schema", "infer_signature", "validate_input"]
    )  # fmt: skip
    assert all(hasattr(_signature, name) for name in _signature.__all__)
