"""Decoding of scalars and numpy arrays whose type the reader knows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mloop._lazy import LazyModule
from mloop.codec._base import INFINITY, NAN, NEG_INFINITY, READ_SPECIAL, got, where_text
from mloop.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = LazyModule("numpy", globals(), "np")


def _float(value: Any, where: Any) -> float:
    t = type(value)
    if t is float:
        return value
    if t is int:
        try:
            return float(value)
        except OverflowError:
            raise InvalidInputError(
                f"`{where_text(where)}` must be a number in the float64 range; got {got(value)}."
            ) from None
    if t is str:
        f = READ_SPECIAL.get(value)
        if f is not None:
            return f
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    ):
        return float(value)
    return _not_a_float(value, where)


def _not_a_float(value: Any, where: Any) -> float:
    raise InvalidInputError(
        f"`{where_text(where)}` must be a number or one of {NAN!r}, {INFINITY!r}, "
        f"{NEG_INFINITY!r}; got {got(value)}."
    )


def float_from_wire(value: Any, *, what: str = "value") -> float:
    """A float from its wire form: a JSON number or ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

    Raises
    ------
    InvalidInputError
        For anything else (other strings, bools, None, containers).

    Examples
    --------
    >>> float_from_wire("Infinity"), float_from_wire(3)
    (inf, 3.0)
    """
    return _float(value, what)


def optional_float_from_wire(value: Any, *, what: str = "value") -> float | None:
    """``None`` stays ``None``; anything else is read by :func:`float_from_wire`."""
    return None if value is None else _float(value, what)


def _int(value: Any, where: Any) -> int:
    t = type(value)
    if t is int:
        return value
    if t is float and value.is_integer() and abs(value) <= 2**53:
        return int(value)  # some JSON writers (JavaScript) print every number as a float
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    raise InvalidInputError(f"`{where_text(where)}` must be an integer; got {got(value)}.")


def int_from_wire(value: Any, *, what: str = "value") -> int:
    """An int from its wire form (a JSON integer; an integral float up to 2**53 is accepted)."""
    return _int(value, what)


def _float_items(items: Any, where: Any) -> Any:
    kinds = set(map(type, items))
    if kinds <= {float, int}:
        return items
    out: list[Any] = []
    for i, x in enumerate(items):
        t = type(x)
        if t is float or t is int:
            out.append(x)
        elif t is list or t is tuple:
            out.append(_float_items(x, (where, i)))
        elif t is str:
            out.append(_float(x, (where, i)))
        else:
            out.append(_not_a_float(x, (where, i)))
    return out


def _array(value: Any, dtype: np.dtype[Any], where: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    kind = dtype.kind
    if not isinstance(value, (list, tuple)):  # a 0-d array
        if kind == "f":
            return np.array(_float(value, where), dtype=dtype)
        if kind in "iu":
            n = _int(value, where)
            return _int_array(n, np.array(n), dtype, where)
        if type(value) is not bool:
            raise InvalidInputError(f"`{where_text(where)}` must be a bool; got {got(value)}.")
        return np.array(value, dtype=dtype)
    try:
        if kind == "f":
            return np.array(_float_items(value, where), dtype=dtype)
        a = np.array(value)
    except ValueError as exc:  # ragged nesting
        raise InvalidInputError(
            f"`{where_text(where)}` must be a list (of lists) of one shape: {exc}"
        ) from None
    if kind in "iu":
        return _int_array(value, a, dtype, where)
    if a.size and a.dtype.kind != "b":
        raise InvalidInputError(
            f"`{where_text(where)}` must be a list of bools; got items of type {a.dtype}."
        )
    return a.astype(dtype)


def _int_array(value: Any, a: np.ndarray, dtype: np.dtype[Any], where: Any) -> np.ndarray:
    if a.size == 0:
        return a.astype(dtype)
    info = np.iinfo(dtype)
    if a.dtype.kind not in "iu":
        # numpy reads ints beyond int64 as float64 (or object) when they are mixed with negative
        # ones: look at the items themselves, never at that lossy array.
        items = np.array(value, dtype=object)
        if items.shape != a.shape or not all(type(x) is int for x in items.ravel()):
            raise InvalidInputError(
                f"`{where_text(where)}` must be a list of integers in [{info.min}, {info.max}] "
                f"({dtype}); got items of type {a.dtype}."
            )
        a = items
    lo, hi = a.min(), a.max()
    if lo < info.min or hi > info.max:
        raise InvalidInputError(
            f"`{where_text(where)}` must hold integers in [{info.min}, {info.max}] ({dtype}); "
            f"got {lo if lo < info.min else hi}."
        )
    return a.astype(dtype)


def array_from_wire(value: Any, dtype: npt.DTypeLike, *, what: str = "value") -> np.ndarray:
    """A numpy array of ``dtype`` from its wire form, exactly.

    Parameters
    ----------
    value : list (nested for n-d), or a scalar for a 0-d array
        What :func:`to_wire` wrote for the array.
    dtype : bool, integer or float dtype
        The dtype the field has. Integers must be integers in its range (never truncated floats);
        floats may be numbers or ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
    what : str, default "value"
        How errors name the value.

    Examples
    --------
    >>> import numpy as np
    >>> array_from_wire([2**62 + 1, -3], np.int64)
    array([4611686018427387905,                  -3])
    >>> array_from_wire(["-Infinity", 0.5, "NaN"], "float64")
    array([-inf,  0.5,  nan])
    """
    dt = np.dtype(dtype)
    if dt.kind not in "biuf":
        raise TypeError(f"array_from_wire() reads bool, int and float arrays; got dtype {dt}.")
    return _array(value, dt, what)
