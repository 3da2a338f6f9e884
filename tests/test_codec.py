"""The wire codec: exact wire forms, refused types, decoding by type, and round trips (hypothesis)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import struct
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import _hypothesis_profile  # noqa: F401  (settings profile)
from _codec_caches import decoders_built_per_test  # noqa: F401  (autouse)
from mloop import codec
from mloop.codec import (
    array_from_wire,
    dataclass_from_wire,
    dumps,
    float_from_wire,
    from_wire,
    int_from_wire,
    loads,
    optional_float_from_wire,
    to_wire,
)
from mloop.errors import InvalidInputError


def test_exported_members() -> None:
    assert set(codec.__all__) == {
        "INFINITY",
        "NAN",
        "NEG_INFINITY",
        "WireEntity",
        "array_from_wire",
        "dataclass_from_wire",
        "dumps",
        "fields_to_wire",
        "float_from_wire",
        "from_wire",
        "int_from_wire",
        "loads",
        "optional_float_from_wire",
        "to_wire",
    }


def test_codec_is_a_leaf_module() -> None:
    """The codec imports the standard library, numpy, mloop.errors and mloop._lazy only (it sits
    below store)."""
    import ast

    root = Path(codec.__file__).parent
    for file in root.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if name.startswith("mloop"):
                    assert name in {"mloop.errors", "mloop._lazy"} or name.startswith(
                        "mloop.codec"
                    ), (
                        file,
                        name,
                    )
                else:
                    assert name.split(".")[0] in {"numpy", "__future__"} or _stdlib(name), name


def _stdlib(name: str) -> bool:
    import sys

    return name.split(".")[0] in sys.stdlib_module_names


# ---------------------------------------------------------------- the exact wire form


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (float("inf"), '"Infinity"'),
        (float("-inf"), '"-Infinity"'),
        (float("nan"), '"NaN"'),
        (-0.0, "-0.0"),
        (0.1, "0.1"),
        (2**53 + 1, "9007199254740993"),
        (np.int64(2**63 - 1), "9223372036854775807"),
        (np.uint64(2**64 - 1), "18446744073709551615"),
        (np.float32(np.inf), '"Infinity"'),
        (np.float64("nan"), '"NaN"'),
        (np.bool_(True), "true"),
        (np.str_("a"), '"a"'),
        ({"b": 1, "a": [1, 2.5]}, '{"b":1,"a":[1,2.5]}'),
        ((1, "x", None), '[1,"x",null]'),
        (np.array([[1, 2], [3, 4]]), "[[1,2],[3,4]]"),
        (np.array([1.0, np.nan, np.inf, -np.inf, -0.0]), '[1.0,"NaN","Infinity","-Infinity",-0.0]'),
        (np.array([True, False]), "[true,false]"),
        (np.array(["a", "b"]), '["a","b"]'),
        (np.array(2.5), "2.5"),
        (np.array(np.nan), '"NaN"'),
        (np.array([1, None, np.float64(np.inf)], dtype=object), '[1,null,"Infinity"]'),
        ("é", '"\\u00e9"'),
    ],
)
def test_exact_wire_form(value: Any, text: str) -> None:
    assert dumps(value) == text
    assert json.loads(text) == json.loads(dumps(value))  # strict JSON any parser reads


def test_indent_and_sort_keys() -> None:
    assert dumps({"b": 1, "a": float("inf")}, indent=2, sort_keys=True) == (
        '{\n  "a": "Infinity",\n  "b": 1\n}'
    )


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Plain:
    x: float
    tags: tuple[str, ...] = ()


@dataclasses.dataclass
class Custom:
    x: float

    def to_dict(self) -> dict[str, Any]:
        return {"custom": self.x}


def test_handled_types() -> None:
    assert to_wire(Color.RED) == "red" and to_wire(Level.HIGH) == 3
    assert to_wire({Color.RED: 1, 7: 2, np.int64(8): 3}) == {"red": 1, "7": 2, "8": 3}
    assert to_wire(Plain(float("nan"), ("a",))) == {"x": "NaN", "tags": ["a"]}
    assert to_wire(Custom(-math.inf)) == {"custom": "-Infinity"}  # its own to_dict, then encoded
    assert to_wire(PurePosixPath("a/b.txt")) == "a/b.txt"
    assert to_wire(dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)) == (
        "2024-05-01T12:30:00+00:00"
    )
    assert to_wire(dt.date(2024, 5, 1)) == "2024-05-01"
    from types import MappingProxyType

    assert to_wire(MappingProxyType({"a": np.float32(1.5)})) == {"a": 1.5}
    assert to_wire([[np.nan], (np.inf,)]) == [["NaN"], ["Infinity"]]


class Hooked:
    """A class that gives its plain form through ``_wire_``."""

    def __init__(self, values: np.ndarray, child: Any = None) -> None:
        self.values, self.child = values, child

    def _wire_(self) -> dict[str, Any]:
        return {"values": self.values, "child": self.child}


def test_wire_hook_gives_the_plain_form_encoded_once() -> None:
    obj = Hooked(np.array([np.nan, 1.0]), Hooked(np.array([-np.inf]), Plain(np.inf)))
    assert to_wire({"h": obj}) == {
        "h": {
            "values": ["NaN", 1.0],
            "child": {"values": ["-Infinity"], "child": {"x": "Infinity", "tags": []}},
        }
    }
    with pytest.raises(InvalidInputError, match=r"`obj\['h'\]\['child'\]` cannot be written"):
        to_wire({"h": Hooked(np.zeros(1), {1, 2})})


def test_lists_mixing_strings_and_floats() -> None:
    assert to_wire(["NaN", 1.5, None, "x", 2]) == ["NaN", 1.5, None, "x", 2]
    assert to_wire(["x", math.nan, -math.inf]) == ["x", "NaN", "-Infinity"]


def test_wire_form_is_idempotent_and_never_guesses_on_strings() -> None:
    once = to_wire({"p": "NaN", "x": float("nan")})
    assert once == {"p": "NaN", "x": "NaN"}
    assert to_wire(once) == once
    # Decoding follows the schema: the same "NaN" is a float in a float field only.
    assert from_wire(dict[str, str], once) == {"p": "NaN", "x": "NaN"}
    assert math.isnan(from_wire(dict[str, float], once)["x"])


@pytest.mark.parametrize(
    ("value", "path", "fragment"),
    [
        ({"a": [1, {"b": b"x"}]}, "obj['a'][1]['b']", "bytes have no JSON form"),
        ({"s": {1, 2}}, "obj['s']", "a set has no order"),
        ([1 + 2j], "obj[0]", "must be one of"),
        (np.array([1 + 2j]), "obj", "dtype complex128"),
        (np.array(["2024-01-01"], dtype="datetime64[D]"), "obj", "datetime64"),
        ({(1, 2): "tuple key"}, "obj", "dict keys must be str"),
        ({True: 1}, "obj", "dict keys must be str"),
        ({1: "a", "1": "b"}, "obj", "two keys are written as '1'"),
        (Plain(x=object()), "obj.x", "must be one of"),  # type: ignore[arg-type]
        (np.float64(1).astype(np.longdouble), "obj", "float64")
        if np.dtype(np.longdouble).itemsize > 8
        else (bytearray(b"x"), "obj", "bytes"),
    ],
)
def test_refused_values_name_their_place(value: Any, path: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match="cannot be written as JSON") as info:
        dumps(value)
    assert f"`{path}`" in str(info.value) and fragment in str(info.value)
    assert info.value.details["path"] == path


def test_a_value_that_contains_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(InvalidInputError, match="nests too deeply or contains itself"):
        dumps(loop)


def test_loads_errors_and_legacy_bare_tokens() -> None:
    with pytest.raises(InvalidInputError, match=r"`body` is not valid JSON: .* line 1 column 7"):
        loads('{"a": }', what="body")
    with pytest.raises(InvalidInputError, match="must be JSON text"):
        loads(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        loads(b"\xff\xfe\xfa")
    # Python's json writes bare NaN/Infinity by default; such files (old manifests) still load.
    data = loads('{"a": NaN, "b": -Infinity}')
    assert math.isnan(data["a"]) and float_from_wire(data["b"]) == -math.inf


# ---------------------------------------------------------------- decoding scalars and arrays


def test_float_from_wire() -> None:
    assert float_from_wire("Infinity") == math.inf and float_from_wire("-Infinity") == -math.inf
    assert math.isnan(float_from_wire("NaN"))
    assert float_from_wire(3) == 3.0 and type(float_from_wire(3)) is float
    assert float_from_wire("inf") == math.inf and float_from_wire("-inf") == -math.inf  # legacy
    assert optional_float_from_wire(None) is None
    for bad in ("nan", "1.5", "", True, None, [1.0], {"a": 1}):
        with pytest.raises(InvalidInputError, match=r"`x` must be a number or one of 'NaN'"):
            float_from_wire(bad, what="x")
    with pytest.raises(InvalidInputError, match="float64 range"):
        float_from_wire(10**400)


def test_int_from_wire() -> None:
    assert int_from_wire(2**70) == 2**70 and int_from_wire(3.0) == 3
    for bad in (1.5, 2.0**60, True, "3", None):
        with pytest.raises(InvalidInputError, match="`n` must be an integer"):
            int_from_wire(bad, what="n")


def test_array_from_wire_refuses_what_does_not_fit() -> None:
    with pytest.raises(
        InvalidInputError, match=r"`c` must be a list of integers .* got items of type float64"
    ):
        array_from_wire([1, 2.5], np.int64, what="c")
    with pytest.raises(InvalidInputError, match=r"must hold integers in \[-128, 127\].*got 300"):
        array_from_wire([1, 300], np.int8)
    with pytest.raises(InvalidInputError, match=r"int64.*got 9223372036854775808"):
        array_from_wire([2**63], np.int64)
    with pytest.raises(InvalidInputError, match=r"uint64.*got 18446744073709551616"):
        array_from_wire([2**64], np.uint64)
    with pytest.raises(InvalidInputError, match=r"uint64.*got -1"):
        array_from_wire([-1, 2**63], np.uint64)  # numpy alone would read these as float64
    assert array_from_wire([0, 2**63 + 1], np.uint64)[1] == 2**63 + 1
    with pytest.raises(InvalidInputError, match=r"`value\[1\]` must be a number"):
        array_from_wire([1.0, "one"], np.float64)
    with pytest.raises(InvalidInputError, match=r"`value\[0\]\[1\]` must be a number"):
        array_from_wire([[1.0, True]], np.float64)
    with pytest.raises(InvalidInputError, match="of one shape"):
        array_from_wire([[1.0, 2.0], [3.0]], np.float64)
    with pytest.raises(InvalidInputError, match="list of bools"):
        array_from_wire([1, 0], bool)
    with pytest.raises(TypeError, match="bool, int and float"):
        array_from_wire(["a"], str)


def test_array_from_wire_shapes_and_scalars() -> None:
    assert array_from_wire([], np.int64).dtype == np.int64
    assert array_from_wire([[], []], np.float64).shape == (2, 0)
    zero_d = array_from_wire("-Infinity", np.float32)
    assert zero_d.shape == () and zero_d.dtype == np.float32 and zero_d == -np.inf
    assert array_from_wire(7, np.uint8).dtype == np.uint8
    assert array_from_wire(True, bool).item() is True
    got = array_from_wire([[1.0, "NaN"], ["Infinity", 2]], np.float64)
    assert got.shape == (2, 2) and np.isnan(got[0, 1]) and got[1, 0] == np.inf


# ---------------------------------------------------------------- decoding by type


@dataclasses.dataclass(frozen=True)
class Inner:
    score: float | None
    kind: Literal["a", "b"] = "a"


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str
    values: dict[str, float]
    pairs: tuple[tuple[str, int], ...]
    inner: list[Inner]
    counts: dict[int, int]
    extra: Any = None
    data: np.ndarray | None = None


def test_dataclass_from_wire_by_field_types() -> None:
    obj = Outer(
        "NaN",
        {"x": math.inf},
        (("a", 1),),
        [Inner(None, "b"), Inner(-math.inf)],
        {3: 4},
        {"raw": "Infinity"},
        np.array([1, 2**62], dtype=np.int64),
    )
    wire = loads(dumps(obj))
    assert wire["counts"] == {"3": 4} and wire["extra"] == {"raw": "Infinity"}
    back = dataclass_from_wire(Outer, wire, arrays={"data": np.int64})
    assert back.name == "NaN" and back.values == {"x": math.inf} and back.pairs == (("a", 1),)
    assert back.inner == [Inner(None, "b"), Inner(-math.inf)] and back.counts == {3: 4}
    assert back.extra == {"raw": "Infinity"}  # Any: as parsed, never guessed
    assert back.data is not None and back.data.dtype == np.int64 and back.data[1] == 2**62


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": 3}, r"`Outer.name` must be a string; got 3 \(int\)"),
        ({"values": {"x": "1.5"}}, r"`Outer.values\['x'\]` must be a number"),
        ({"pairs": [["a"]]}, r"`Outer.pairs\[0\]` must be a JSON array of 2 items"),
        (
            {"inner": [{"score": 1, "kind": "c"}]},
            r"`Outer.inner\[0\].kind` must be one of \['a', 'b'\]",
        ),
        ({"inner": [{}]}, r"`Outer.inner\[0\]` lacks the field\(s\) \['score'\]"),
        ({"counts": {"x": 1}}, r"keys must be integers"),
        ({"inner": "no"}, r"`Outer.inner` must be a JSON array"),
        ({"values": []}, r"`Outer.values` must be a JSON object"),
    ],
)
def test_dataclass_from_wire_errors_name_the_field(change: dict[str, Any], message: str) -> None:
    good = {"name": "n", "values": {}, "pairs": [], "inner": [], "counts": {}}
    with pytest.raises(InvalidInputError, match=message):
        dataclass_from_wire(Outer, {**good, **change})


def test_dataclass_from_wire_needs_a_mapping_and_a_dtype_for_arrays() -> None:
    with pytest.raises(InvalidInputError, match=r"`Outer` must be a JSON object of Outer's fields"):
        dataclass_from_wire(Outer, [1])
    good = {"name": "n", "values": {}, "pairs": [], "inner": [], "counts": {}, "data": [1]}
    with pytest.raises(TypeError, match="numpy array fields need their dtype"):
        dataclass_from_wire(Outer, good)
    with pytest.raises(TypeError, match="cannot tell the members"):
        from_wire(int | str, 1)


@dataclasses.dataclass(frozen=True)
class _Plain:
    a: int
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    note: str | None = None


@dataclasses.dataclass(frozen=True)
class _Box:
    items: list[_Plain]


@dataclasses.dataclass(frozen=True)
class _Checked:
    a: int

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("a must be >= 0")


@dataclasses.dataclass(frozen=True)
class _Derived:
    a: int
    doubled: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "doubled", 2 * self.a)


def test_dataclasses_built_without_init_equal_those_built_with_it() -> None:
    # A plain frozen dataclass is filled in directly (fast); it must be the same object.
    got = dataclass_from_wire(_Plain, {"a": 1})
    assert got == _Plain(1) and got.tags == {} and got.note is None
    other = dataclass_from_wire(_Plain, {"a": 2})
    assert other.tags is not got.tags  # a fresh default per instance, as __init__ makes
    assert dataclass_from_wire(_Plain, {"a": 1, "tags": {"k": "v"}, "note": "n"}) == _Plain(
        1, {"k": "v"}, "n"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.a = 3  # type: ignore[misc]
    # __post_init__ is honoured: its checks run and what it derives is set.
    with pytest.raises(InvalidInputError, match="a must be >= 0"):
        dataclass_from_wire(_Checked, {"a": -1})
    assert dataclass_from_wire(_Derived, {"a": 4}).doubled == 8
    with pytest.raises(InvalidInputError, match=r"`_Plain.tags\['k'\]` must be a string"):
        dataclass_from_wire(_Plain, {"a": 1, "tags": {"k": 1}})
    # the decoder written per class gives the field-by-field decoder's errors and conversions
    with pytest.raises(InvalidInputError, match=r"`_Plain.a` must be an integer; got 'x'"):
        dataclass_from_wire(_Plain, {"a": "x"})
    with pytest.raises(InvalidInputError, match=r"`_Plain` lacks the field\(s\) \['a'\]"):
        dataclass_from_wire(_Plain, {"note": "n"})
    assert dataclass_from_wire(_Plain, {"a": 2.0}).a == 2 and type(got.a) is int
    with pytest.raises(InvalidInputError, match=r"`_Box.items\[1\].note` must be a string"):
        dataclass_from_wire(_Box, {"items": [{"a": 1}, {"a": 2, "note": 3}]})
    box = dataclass_from_wire(_Box, {"items": [{"a": 1}, {"a": 2, "note": None}]})
    assert box == _Box([_Plain(1), _Plain(2)])
    with pytest.raises(InvalidInputError, match=r"`out.tags\['k'\]`"):
        to_wire(_Plain(1, {"k": object()}), what="out")  # type: ignore[dict-item]
    assert to_wire(_Plain(1, {"k": "v"})) == {"a": 1, "tags": {"k": "v"}, "note": None}


# ---------------------------------------------------------------- round trips (hypothesis)


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


any_float = st.floats(allow_nan=True, allow_infinity=True)


@given(any_float)
def test_floats_round_trip_bit_for_bit(x: float) -> None:
    back = float_from_wire(loads(dumps(x)))
    if math.isnan(x):
        assert math.isnan(back)  # JSON has one NaN: payload and sign bits are not kept
    else:
        assert _bits(back) == _bits(x)  # -0.0 included


@given(st.integers(min_value=-(2**200), max_value=2**200))
def test_ints_of_any_size_round_trip_exactly(n: int) -> None:
    back = loads(dumps(n))
    assert back == n and type(back) is int
    assert int_from_wire(back) == n


@given(hnp.arrays(np.int64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=6)))
def test_int64_arrays_round_trip_exactly(a: np.ndarray) -> None:
    back = array_from_wire(loads(dumps(a)), np.int64)
    assert back.dtype == np.int64 and back.shape == a.shape and np.array_equal(back, a)


@given(
    st.sampled_from([np.float64, np.float32, np.float16]).flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, max_side=6))
    )
)
def test_float_arrays_round_trip_bit_for_bit(a: np.ndarray) -> None:
    back = array_from_wire(loads(dumps(a)), a.dtype)
    assert back.dtype == a.dtype and back.shape == a.shape
    nan = np.isnan(a)
    assert np.array_equal(np.isnan(back), nan)
    bits = np.dtype(f"u{a.dtype.itemsize}")
    assert np.array_equal(back[~nan].view(bits), a[~nan].view(bits))  # -0.0 and inf included


@given(
    st.sampled_from([np.uint8, np.int16, np.uint32, np.uint64, np.bool_]).flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(max_dims=2, max_side=6))
    )
)
def test_other_int_and_bool_arrays_round_trip(a: np.ndarray) -> None:
    back = array_from_wire(loads(dumps(a)), a.dtype)
    assert back.dtype == a.dtype and np.array_equal(back, a)


json_leaves = st.none() | st.booleans() | st.integers() | any_float | st.text(max_size=8)
nested = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(nested)
def test_nested_values_reach_a_fixed_point(value: Any) -> None:
    text = dumps(value)
    json.loads(text)  # strict JSON (no bare NaN)
    assert "NaN" not in text.replace('"NaN"', "")
    assert dumps(loads(text)) == text
    assert loads(text) == to_wire(value)


@given(st.dictionaries(st.text(max_size=6), st.lists(any_float, max_size=5), max_size=4))
def test_typed_nested_floats_round_trip(value: dict[str, list[float]]) -> None:
    back = from_wire(dict[str, list[float]], loads(dumps(value)))
    assert back.keys() == value.keys()
    for k, xs in value.items():
        assert [x if x == x else "nan" for x in back[k]] == [x if x == x else "nan" for x in xs]


@given(
    st.dictionaries(
        st.text(max_size=10),
        st.text(max_size=10) | st.sampled_from(["NaN", "Infinity", "-Infinity", "inf"]),
    )
)
def test_strings_stay_strings(params: dict[str, str]) -> None:
    assert from_wire(dict[str, str], loads(dumps(params))) == params
