"""Encoding: any supported Python value to its wire form, and JSON text in and out."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import functools
import json
import math
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from mloop._lazy import LazyModule
from mloop.codec._base import INFINITY, NAN, NEG_INFINITY, Attr, got
from mloop.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy", globals(), "np")


_PLAIN = frozenset({str, int, bool, type(None)})
_NUMBERS = frozenset({float, int, bool})
_SCALARS = _PLAIN | {float}
_WHAT_CAN = (
    "str, int, float, bool, None, list, tuple, dict, numpy array or scalar, dataclass, Enum, "
    "Path or datetime"
)


class _Unencodable(Exception):
    """Raised inside the encoder; collects the path to the culprit while it unwinds."""

    def __init__(self, value: Any, reason: str) -> None:
        super().__init__(reason)
        self.value = value
        self.reason = reason
        self.path: list[Any] = []


def _special(x: float) -> str:
    return NAN if x != x else (INFINITY if x > 0 else NEG_INFINITY)


def _enc(obj: Any) -> Any:
    t = type(obj)
    if t in _PLAIN:
        return obj
    if t is float:
        return obj if math.isfinite(obj) else _special(obj)
    if t is dict:
        return _enc_dict(obj)
    if t is list or t is tuple:
        return _enc_list(obj)
    return _enc_other(obj)


def _enc_list(seq: Any) -> list[Any]:
    kinds = set(map(type, seq))
    if kinds <= _PLAIN:
        return list(seq)
    if kinds <= _NUMBERS:
        try:
            if all(map(math.isfinite, seq)):
                return list(seq)
        except OverflowError:  # an int too large for a float: the item-by-item path keeps it
            pass
    elif kinds <= _SCALARS and all(map(math.isfinite, [x for x in seq if type(x) is float])):
        return list(seq)  # e.g. a float array's wire form, "NaN" strings and all
    out = []
    for i, item in enumerate(seq):
        try:
            out.append(_enc(item))
        except _Unencodable as exc:
            exc.path.append(i)
            raise
    return out


def _enc_key(key: Any) -> str:
    if isinstance(key, enum.Enum):
        key = key.value
    if isinstance(key, str):
        return str(key)
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return str(int(key))
    raise _Unencodable(key, "dict keys must be str (or int, written as its decimal text)")


def _enc_dict(d: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    converted = False  # a key written as text may now equal another key
    for key, value in d.items():
        if type(key) is not str:
            key, converted = _enc_key(key), True
        if converted and key in out:
            raise _Unencodable(key, f"two keys are written as {key!r}")
        try:
            out[key] = _enc(value)
        except _Unencodable as exc:
            exc.path.append(key)
            raise
    return out


def _enc_array(a: np.ndarray) -> Any:
    kind = a.dtype.kind
    if kind in "biuU":
        return a.tolist()
    if kind == "f":
        if a.dtype.itemsize > 8:
            raise _Unencodable(a, "JSON numbers are float64; cast the array to float64 first")
        if np.isfinite(a).all():
            return a.tolist()
        out = a.astype(object)  # Python floats; the non-finite ones are replaced in three passes
        out[np.isnan(a)] = NAN
        out[np.isposinf(a)] = INFINITY
        out[np.isneginf(a)] = NEG_INFINITY
        return out.tolist()
    if kind == "O":
        return _enc(a.tolist())
    raise _Unencodable(a, f"numpy arrays of dtype {a.dtype} have no JSON form")


def _enc_scalar(x: np.generic) -> Any:
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        if x.dtype.itemsize > 8:
            raise _Unencodable(x, "JSON numbers are float64; cast to float first")
        f = float(x)
        return f if math.isfinite(f) else _special(f)
    if isinstance(x, np.str_):
        return str(x)
    raise _Unencodable(x, f"numpy {x.dtype} values have no JSON form")


def _enc_other(obj: Any) -> Any:
    cls = type(obj)
    if getattr(cls, "_wire_fields_", False):  # a WireEntity: its fields, walked once
        return _enc_fields(obj)
    if isinstance(obj, enum.Enum):
        return _enc(obj.value)
    if isinstance(obj, np.ndarray):
        return _enc_array(obj)
    if isinstance(obj, np.generic):
        return _enc_scalar(obj)
    # Subclasses of the plain types (IntEnum and np.float64 are handled above).
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return _enc(float(obj))
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, Mapping):
        return _enc_dict(obj)
    if isinstance(obj, (list, tuple)):
        return _enc_list(obj)
    hook = getattr(cls, "_wire_", None)
    if callable(hook):  # an entity's plain form (arrays, floats), encoded in this one walk
        return _enc(hook(obj))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        to_dict = getattr(obj, "to_dict", None)
        return _enc(to_dict()) if callable(to_dict) else _enc_fields(obj)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict) and not isinstance(obj, type):
        return _enc(to_dict())
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        raise _Unencodable(obj, "bytes have no JSON form; decode them to str (or base64) first")
    if isinstance(obj, (set, frozenset)):
        raise _Unencodable(obj, "a set has no order; pass a sorted list")
    raise _Unencodable(obj, f"it must be one of {_WHAT_CAN}")


@functools.cache
def _field_names(cls: Any) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _enc_fields(obj: Any) -> dict[str, Any]:
    return _fields_encoder(obj.__class__)(obj)


def _enc_field(value: Any, name: str) -> Any:
    try:
        return _enc(value)
    except _Unencodable as exc:
        exc.path.append(Attr(name))
        raise


@functools.cache
def _fields_encoder(cls: Any) -> Callable[[Any], dict[str, Any]]:
    """An encoder written for ``cls``'s fields: a str, int, bool or None is stored without a
    call (most fields of the entities), anything else goes through :func:`_enc`."""
    body = ["def encode(obj):", "    out = {}"]
    for name in _field_names(cls):  # identifiers: dataclass fields
        body.append(f"    v = obj.{name}")
        body.append(f"    out[{name!r}] = v if type(v) in _PLAIN else _enc_field(v, {name!r})")
    body.append("    return out")
    env: dict[str, Any] = {"_PLAIN": _PLAIN, "_enc_field": _enc_field}
    exec("\n".join(body), env)  # the code is built from field names only
    return env["encode"]


def _path_text(root: str, steps: list[Any]) -> str:
    out = root
    for step in reversed(steps):  # collected innermost first
        out += f".{step}" if isinstance(step, Attr) else f"[{step!r}]"
    return out


def _refuse(exc: _Unencodable, what: str) -> InvalidInputError:
    where = _path_text(what, exc.path)
    return InvalidInputError(
        f"`{where}` cannot be written as JSON: {exc.reason}; got {got(exc.value)}.",
        details={"path": where, "type": type(exc.value).__name__},
    )


def to_wire(obj: Any, *, what: str = "obj") -> Any:
    """The JSON-able form of ``obj`` (dicts, lists, str, int, float, bool, None), in wire form.

    Parameters
    ----------
    obj : Any
        Plain data, numpy arrays and scalars, dataclasses (through their ``to_dict()`` when they
        define one), ``Enum``, ``Path``, ``datetime``, and any nesting of those. An object whose
        class defines ``_wire_(self)`` is encoded as what that returns (plain Python: arrays and
        non-finite floats allowed), so nested entities are walked once, not once per level.
    what : str, default "obj"
        How errors name ``obj``.

    Returns
    -------
    Any
        Non-finite floats replaced by ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; idempotent:
        ``to_wire(to_wire(x)) == to_wire(x)``.

    Raises
    ------
    InvalidInputError
        For a value JSON cannot hold faithfully (bytes, a set, a complex number, ``datetime64``,
        a dict key that is not a str or int, an object that contains itself), with its path.

    Examples
    --------
    >>> import numpy as np
    >>> to_wire({"x": np.array([1.0, -np.inf]), "n": np.int64(3)})
    {'x': [1.0, '-Infinity'], 'n': 3}
    """
    return _encoded(_enc, obj, what)


def _encoded(encode: Callable[[Any], Any], obj: Any, what: str) -> Any:
    """``encode(obj)``, with what it cannot encode reported as an error naming ``what``."""
    try:
        return encode(obj)
    except _Unencodable as exc:
        raise _refuse(exc, what) from None
    except RecursionError:
        raise InvalidInputError(
            f"`{what}` cannot be written as JSON: it nests too deeply or contains itself."
        ) from None


def fields_to_wire(obj: Any, *, what: str | None = None) -> dict[str, Any]:
    """Every field of the dataclass instance ``obj``, in wire form (a default ``to_dict``)."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"fields_to_wire() needs a dataclass instance; got {type(obj).__name__}.")
    name = what or type(obj).__name__
    return _encoded(_enc_fields, obj, name)


def dumps(
    obj: Any, *, indent: int | None = None, sort_keys: bool = False, what: str = "obj"
) -> str:
    """``obj`` as strict JSON text (see :func:`to_wire`).

    Compact (no spaces) unless ``indent`` is given; keys keep their order (entities and reports
    build their dicts in a fixed order) unless ``sort_keys``. Non-ASCII characters are escaped,
    so the text is ASCII.

    Examples
    --------
    >>> dumps([1.0, float("nan"), -0.0])
    '[1.0,"NaN",-0.0]'
    """
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(
        to_wire(obj, what=what),
        allow_nan=False,
        indent=indent,
        sort_keys=sort_keys,
        separators=separators,
    )


def loads(text: str | bytes | bytearray, *, what: str = "text") -> Any:
    """Parse JSON text; strings stay strings (decode floats with the ``*_from_wire`` helpers).

    The bare ``NaN``/``Infinity`` tokens that Python's ``json`` module writes by default are read
    as floats, so files written before this codec (model manifests, profile headers) still load.

    Raises
    ------
    InvalidInputError
        The text is not JSON (with the line and column), or not str/bytes.
    """
    if not isinstance(text, (str, bytes, bytearray)):
        raise InvalidInputError(f"`{what}` must be JSON text (str or bytes); got {got(text)}.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"`{what}` is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"`{what}` is not valid JSON: {exc}.") from None
    except ValueError as exc:  # an integer of more digits than Python converts (sys.int_info)
        raise InvalidInputError(f"`{what}` cannot be read: {exc}.") from None
    except RecursionError:
        raise InvalidInputError(f"`{what}` is not valid JSON: it nests too deeply.") from None
