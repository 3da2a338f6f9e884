"""Model signatures: what a model takes and returns, inferred from examples and enforced at predict.

A signature is either column-based (a table: named columns, each with a dtype and a nullability) or
tensor-based (arrays: a dtype and a shape, ``-1`` marking a variable dimension). It is inferred from
the input example and the model's output when a model is packaged, stored as JSON in the manifest,
and checked by :func:`validate_input` before every prediction, so a missing column, a wrong type or
an unexpected NaN fails loudly, naming the column, instead of producing a silently wrong answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from mloop.codec import float_from_wire, to_wire
from mloop.errors import InvalidInputError

from . import _frames

__all__ = [
    "DTYPES",
    "ColSpec",
    "ExtraColumnsWarning",
    "ModelSignature",
    "ParamSpec",
    "Schema",
    "TensorSpec",
    "infer_schema",
    "infer_signature",
    "validate_input",
]

#: Every dtype name a :class:`ColSpec` or :class:`TensorSpec` may carry.
DTYPES: tuple[str, ...] = _frames.DTYPES

FrameFormat = Literal[
    "pandas", "polars", "arrow", "numpy", "dict", "records"  # pragma: no mutate - only a type
]


class ExtraColumnsWarning(UserWarning):
    """Input columns that the signature does not name were dropped before predicting."""


@dataclass(frozen=True)
class ColSpec:
    """One column of a column-based schema.

    Parameters
    ----------
    name : str
        Column name.
    dtype : str
        One of :data:`DTYPES` (``"int64"``, ``"float64"``, ``"string"``, ``"category"``, ...).
    nullable : bool
        Whether missing values (``None``, ``NaN``, ``NaT``, ``pd.NA``) are allowed.
    """

    name: str
    dtype: str
    nullable: bool = False

    def __post_init__(self) -> None:
        _check_dtype(self.dtype, f"column {self.name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "nullable": self.nullable}


@dataclass(frozen=True)
class TensorSpec:
    """One array of a tensor-based schema.

    Parameters
    ----------
    dtype : str
        One of :data:`DTYPES`.
    shape : tuple of int
        Expected shape; ``-1`` marks a variable dimension (the batch dimension is always ``-1``).
    name : str, optional
        Name of the tensor when a model takes several (passed as a dict of arrays).
    """

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        _check_dtype(self.dtype, "tensor" if self.name is None else f"tensor {self.name!r}")
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Schema:
    """An ordered list of :class:`ColSpec` (a table) or of :class:`TensorSpec` (arrays).

    Parameters
    ----------
    specs : sequence of ColSpec, or sequence of TensorSpec
        Not mixed. Column names must be unique.
    """

    specs: tuple[ColSpec, ...] | tuple[TensorSpec, ...]

    def __init__(self, specs: Sequence[ColSpec] | Sequence[TensorSpec]) -> None:
        items: tuple[Any, ...] = tuple(specs)
        if not items:
            raise InvalidInputError("A schema needs at least one column or tensor; got none.")
        kinds = {type(s) for s in items}
        if kinds not in ({ColSpec}, {TensorSpec}):
            raise InvalidInputError(
                "A schema holds either ColSpec or TensorSpec items, not a mix; "
                f"got {sorted(k.__name__ for k in kinds)}."
            )
        names = [s.name for s in items]
        if len(items) > 1 and None in names:
            raise InvalidInputError(
                "A schema of several tensors names each one (the model takes a dict of arrays); "
                f"got names {names}."
            )
        dupes = sorted({str(n) for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInputError(f"Schema names must be unique; repeated: {dupes}.")
        object.__setattr__(self, "specs", items)

    @property
    def is_tensor(self) -> bool:
        """Whether this schema describes arrays rather than columns."""
        return isinstance(self.specs[0], TensorSpec)

    @property
    def names(self) -> list[str | None]:
        """Column (or tensor) names, in order."""
        return [s.name for s in self.specs]

    def to_dict(self) -> dict[str, Any]:
        key = "tensors" if self.is_tensor else "columns"
        return {"type": key, key: [s.to_dict() for s in self.specs]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        if data.get("type") == "tensors":
            return cls(
                [TensorSpec(t["dtype"], tuple(t["shape"]), t.get("name")) for t in data["tensors"]]
            )
        return cls(
            [
                ColSpec(c["name"], c["dtype"], bool(c.get("nullable", False)))
                for c in data["columns"]
            ]
        )

    def __repr__(self) -> str:
        return f"Schema({list(self.specs)!r})"


@dataclass(frozen=True)
class ParamSpec:
    """An inference-time parameter (e.g. ``threshold``) with its type and default.

    Parameters
    ----------
    name : str
        Parameter name, passed as ``predict(data, params={name: value})``.
    dtype : str
        ``"bool"``, ``"int64"``, ``"float64"`` or ``"string"``.
    default : Any
        Value used when the caller does not pass one.
    """

    name: str
    dtype: str
    default: Any = None

    def __post_init__(self) -> None:
        if self.dtype not in _PARAM_TYPES:
            raise InvalidInputError(
                f"Unknown dtype {self.dtype!r} for inference parameter {self.name!r}; "
                f"expected one of {list(_PARAM_TYPES)}."
            )

    def _wire_(self) -> dict[str, Any]:
        # Plain values (arrays, non-finite floats): the codec encodes them in one walk.
        return {"name": self.name, "dtype": self.dtype, "default": self.default}

    def to_dict(self) -> dict[str, Any]:
        """Wire form: a non-finite float default is ``"NaN"``/``"Infinity"`` (:mod:`mloop.codec`)."""
        return to_wire(self, what="ParamSpec")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParamSpec:
        """The inverse of :meth:`to_dict`: the default is read as its ``dtype`` says, so only a
        float64 parameter's ``"NaN"`` becomes a float (a string default stays a string)."""
        dtype, default = data["dtype"], data.get("default")
        if dtype == "float64" and default is not None:
            default = float_from_wire(default, what=f"default of parameter {data['name']!r}")
        return cls(data["name"], dtype, default)


# What a caller may pass for each parameter dtype (an int is a valid float64; a bool is only a bool).
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int64": (int,),
    "float64": (int, float),
    "string": (str,),
}


@dataclass(frozen=True)
class ModelSignature:
    """What a model takes (``inputs``), returns (``outputs``) and which inference ``params`` it accepts.

    Examples
    --------
    >>> import numpy as np
    >>> sig = ModelSignature(Schema([ColSpec("age", "int64"), ColSpec("income", "float64", True)]))
    >>> ModelSignature.from_dict(sig.to_dict()) == sig
    True
    """

    inputs: Schema
    outputs: Schema | None = None
    params: tuple[ParamSpec, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; :meth:`from_dict` reads it back."""
        return {
            "inputs": self.inputs.to_dict(),
            "outputs": None if self.outputs is None else self.outputs.to_dict(),
            "params": [p.to_dict() for p in self.params],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSignature:
        """Rebuild a signature written by :meth:`to_dict`."""
        outputs = data.get("outputs")
        return cls(
            Schema.from_dict(data["inputs"]),
            None if outputs is None else Schema.from_dict(outputs),
            tuple(ParamSpec.from_dict(p) for p in data.get("params", [])),
        )

    def resolve_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with ``params``; unknown names or wrong types raise InvalidInputError.

        ``None`` is accepted for any parameter and replaces its default.
        """
        known = {p.name: p for p in self.params}
        out = {p.name: p.default for p in self.params}
        for key, value in (params or {}).items():
            spec = known.get(key)
            if spec is None:
                raise InvalidInputError(
                    f"Unknown inference parameter {key!r}; the signature accepts {sorted(known)}."
                )
            bad_bool = isinstance(value, bool) and spec.dtype != "bool"
            if value is not None and (bad_bool or not isinstance(value, _PARAM_TYPES[spec.dtype])):
                raise InvalidInputError(
                    f"Inference parameter {key!r} must be {spec.dtype}; "
                    f"got {type(value).__name__} {value!r}."
                )
            out[key] = value
        return out


def _check_dtype(dtype: str, where: str) -> None:
    if dtype not in DTYPES:
        raise InvalidInputError(f"Unknown dtype {dtype!r} for {where}; expected one of {DTYPES}.")


# --------------------------------------------------------------------------------------- inference


def infer_schema(data: Any) -> Schema:
    """Infer a :class:`Schema` from a frame, a dict of arrays, an array or a list.

    Parameters
    ----------
    data : pandas.DataFrame, polars.DataFrame, pyarrow.Table, dict, numpy.ndarray, list
        Tables (and dicts of equal-length 1-D arrays, and lists of dicts) give a column-based
        schema: a column is nullable when the example holds a missing value in it. Arrays and
        lists give a tensor-based schema whose first dimension is variable (``-1``).

    Returns
    -------
    Schema

    Raises
    ------
    InvalidInputError
        For an unsupported type or an empty example.
    """
    kind, value = _frames.classify(data)
    if kind == "tensor":
        return Schema([TensorSpec(_frames.numpy_dtype_name(value.dtype), _batch_shape(value))])
    if kind == "tensors":
        return Schema(
            [
                TensorSpec(_frames.numpy_dtype_name(arr.dtype), _batch_shape(arr), str(name))
                for name, arr in value.items()
            ]
        )
    frame = _frames.as_frame(value)
    return Schema(
        [
            ColSpec(name, frame.dtype_name(name), frame.null_count(name) > 0)
            for name in frame.columns
        ]
    )


def _batch_shape(arr: np.ndarray) -> tuple[int, ...]:
    if arr.ndim == 0:
        raise InvalidInputError("A tensor example needs a batch dimension; got a 0-d array.")
    return (-1, *arr.shape[1:])


def infer_signature(
    input_example: Any,
    output: Any = None,
    *,
    params: Mapping[str, Any] | None = None,
) -> ModelSignature:
    """Infer a :class:`ModelSignature` from an input example and, optionally, the model's output.

    Parameters
    ----------
    input_example : frame, dict, array or list
        A few representative rows. See :func:`infer_schema` for the supported types.
    output : frame, Series, array or list, optional
        The model's prediction on ``input_example``.
    params : mapping, optional
        Inference parameters with their defaults, e.g. ``{"threshold": 0.5}``.

    Returns
    -------
    ModelSignature

    Examples
    --------
    >>> import numpy as np
    >>> sig = infer_signature({"x": np.array([1.0, np.nan]), "k": np.array([1, 2])})
    >>> [(c.name, c.dtype, c.nullable) for c in sig.inputs.specs]
    [('x', 'float64', True), ('k', 'int64', False)]
    """
    outputs = None if output is None else infer_schema(_frames.output_as_data(output))
    param_specs = tuple(ParamSpec(k, _param_dtype(k, v), v) for k, v in (params or {}).items())
    return ModelSignature(infer_schema(input_example), outputs, param_specs)


def _param_dtype(name: str, value: Any) -> str:
    for dtype, types in (("bool", (bool,)), ("int64", (int,)), ("float64", (float,))):
        if isinstance(value, types):
            return dtype
    if isinstance(value, str):
        return "string"
    raise InvalidInputError(
        f"Inference parameter {name!r} must default to a bool, int, float or str; "
        f"got {type(value).__name__}."
    )


# -------------------------------------------------------------------------------------- validation


def validate_input(
    data: Any,
    signature: ModelSignature | Schema,
    *,
    strict: bool = False,
    to: FrameFormat | None = None,
) -> Any:
    """Check ``data`` against a signature and return what to feed the model.

    Columns are matched by name and re-ordered to the signature's order; safe, lossless casts are
    applied (int -> float, int32 -> int64, float32 -> float64, string -> category); unsafe ones
    (float -> int, string -> float, int64 -> int32, float64 -> float32) are refused. A 64-bit
    integer becomes float64 only when every value lies in [-2**53, 2**53], where float64 holds
    each integer exactly; beyond it the input is refused, even for the few larger values float64
    could hold. Every problem found is reported in one error.

    Parameters
    ----------
    data : frame, dict, array or list
        The request. Column-based signatures accept pandas, polars, pyarrow tables, dicts of
        arrays and lists of row dicts; tensor-based ones accept arrays, lists, dicts of arrays
        (named tensors) and, for a single 2-D tensor, frames.
    signature : ModelSignature or Schema
        The model's signature (its ``inputs`` are used).
    strict : bool, default False
        Raise instead of warning when ``data`` holds columns the signature does not name.
    to : {"pandas", "polars", "arrow", "numpy", "dict", "records"}, optional
        Container to return for column-based input: ``dict`` is a dict of numpy arrays,
        ``records`` a list of row dicts (default: the caller's, and pandas for dicts and lists
        when pandas is installed, else a pyarrow table).

    Returns
    -------
    frame or numpy.ndarray or dict of numpy.ndarray

    Raises
    ------
    InvalidInputError
        A column is missing, has a type that cannot be cast safely, holds missing values while not
        nullable, or (strict) is not in the signature; a tensor has the wrong dtype or shape.

    Warns
    -----
    ExtraColumnsWarning
        Columns not in the signature were dropped (non-strict mode).

    Examples
    --------
    >>> import numpy as np
    >>> sig = ModelSignature(Schema([ColSpec("a", "float64"), ColSpec("b", "int64")]))
    >>> out = validate_input({"b": np.array([1, 2], dtype="int32"), "a": np.array([1, 2])}, sig,
    ...                      to="numpy")
    >>> out.dtype.name, out.shape
    ('float64', (2, 2))
    """
    schema = signature.inputs if isinstance(signature, ModelSignature) else signature
    if schema.is_tensor:
        return _validate_tensors(data, schema)
    kind, value = _frames.classify(data, prefer_columns=True)
    if kind != "frame":
        raise InvalidInputError(
            "The model takes a table with columns "
            f"{[s.name for s in schema.specs]}; got {_frames.describe(data)}. "
            "Pass a DataFrame, a pyarrow Table or a dict of column arrays."
        )
    frame = _frames.as_frame(value)
    problems: list[dict[str, Any]] = []
    present = set(frame.columns)
    for spec in schema.specs:
        assert isinstance(spec, ColSpec)
        if spec.name not in present:
            problems.append(
                {
                    "column": spec.name,
                    "problem": "missing",
                    "expected": spec.dtype,
                    "message": f"column {spec.name!r} is missing (expected {spec.dtype})",
                }
            )
            continue
        received = frame.dtype_name(spec.name)
        cast = _frames.cast_rule(received, spec.dtype)
        if cast is None:
            problems.append(
                {
                    "column": spec.name,
                    "problem": "dtype",
                    "expected": spec.dtype,
                    "received": received,
                    "message": f"column {spec.name!r} must be {spec.dtype}; got {received}",
                }
            )
            continue
        if cast == "range" and not frame.fits_float64(spec.name):
            problems.append(
                {
                    "column": spec.name,
                    "problem": "dtype",
                    "expected": spec.dtype,
                    "received": received,
                    "message": (
                        f"column {spec.name!r} must be {spec.dtype}; got {received} values beyond "
                        "2**53 that float64 cannot hold exactly"
                    ),
                }
            )
            continue
        if not spec.nullable:
            missing = frame.null_count(spec.name)
            if missing:
                problems.append(
                    {
                        "column": spec.name,
                        "problem": "nulls",
                        "expected": spec.dtype,
                        "count": missing,
                        "message": (
                            f"column {spec.name!r} is not nullable but {missing} of "
                            f"{frame.num_rows} rows are missing (None/NaN)"
                        ),
                    }
                )
                continue
        if cast == "cast" or cast == "range":
            frame.cast(spec.name, spec.dtype)
    wanted = [str(s.name) for s in schema.specs]
    extra = [c for c in frame.columns if c not in set(wanted)]
    if extra and strict:
        problems.append(
            {
                "column": extra[0],
                "problem": "extra",
                "columns": extra,
                "message": f"columns {extra} are not in the signature (strict mode)",
            }
        )
    if problems:
        message = "Input does not match the model signature: " + "; ".join(
            p["message"] for p in problems
        )
        raise InvalidInputError(message + ".", details={"problems": problems})
    if extra:
        warnings.warn(
            f"Dropped columns {extra} that are not in the model signature.",
            ExtraColumnsWarning,
            stacklevel=2,  # pragma: no mutate - the caller's line, tested outside mutation runs
        )
    return frame.select(wanted, to=to)


def _validate_tensors(data: Any, schema: Schema) -> Any:
    specs = [s for s in schema.specs if isinstance(s, TensorSpec)]
    if len(specs) == 1 and specs[0].name is None:
        kind, value = _frames.classify(data)
        if kind == "frame":
            value = _frames.as_frame(value).to_numpy()
        elif kind != "tensor":
            raise InvalidInputError(
                f"The model takes one array of shape {_fmt_shape(specs[0].shape)}; "
                f"got {_frames.describe(data)}."
            )
        return _check_tensor(value, specs[0])
    if not isinstance(data, Mapping):
        raise InvalidInputError(
            f"The model takes named tensors {[s.name for s in specs]} as a dict of arrays; "
            f"got {_frames.describe(data)}."
        )
    missing = [s.name for s in specs if s.name not in data]
    if missing:
        raise InvalidInputError(f"Input is missing tensors {missing}; the model takes all of them.")
    return {s.name: _check_tensor(np.asarray(data[s.name]), s) for s in specs}


def _fmt_shape(shape: Sequence[int]) -> str:
    return (
        "("
        + ", ".join("*" if d == -1 else str(d) for d in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def _check_tensor(arr: np.ndarray, spec: TensorSpec) -> np.ndarray:
    where = "input tensor" if spec.name is None else f"input tensor {spec.name!r}"
    if arr.ndim != len(spec.shape) or any(
        want not in (-1, arr.shape[i]) for i, want in enumerate(spec.shape)
    ):
        raise InvalidInputError(
            f"{where} must have shape {_fmt_shape(spec.shape)} (* = any); got {arr.shape}."
        )
    received = _frames.numpy_dtype_name(arr.dtype)
    rule = _frames.cast_rule(received, spec.dtype)
    if rule is None:
        raise InvalidInputError(f"{where} must have dtype {spec.dtype}; got {received}.")
    if rule == "range" and arr.size and not _frames.in_exact_range(arr.min(), arr.max()):
        raise InvalidInputError(
            f"{where} must have dtype {spec.dtype}; got {received} values beyond 2**53 that "
            "float64 cannot hold exactly."
        )
    if rule != "same":
        arr = arr.astype(spec.dtype)
    return arr
