"""The one wire codec: how every entity and report of mloop is written as JSON and read back.

Everything that leaves a process as JSON goes through here: ``to_dict``/``to_json`` of entities and
reports, every ``--json`` of the CLI, the server's responses and the HTTP store's requests. The rules:

- Non-finite floats are the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (MLflow's
  convention, and protobuf's JSON mapping), so the text is strict JSON that any parser reads.
- Decoding is driven by the reader's schema, never by guessing: ``"NaN"`` becomes a float only
  where the field is a float (:func:`float_from_wire`, :func:`array_from_wire`, or a dataclass
  field annotated ``float``); a user's string param ``"NaN"`` stays a string.
- Integers are exact at any size (JSON numbers are decimal text; Python reads them back exactly),
  so int64 values above 2**53 survive. Floats are written with ``repr``, the shortest text that
  reads back to the same bits, so float64 values (``-0.0`` included) round-trip bit for bit.
- numpy arrays become (nested) lists; the reader restores the dtype it expects with
  :func:`array_from_wire`. Non-finite values of large float arrays are replaced in one vectorised
  pass, not element by element.
- numpy scalars become Python scalars, tuples become lists, ``Enum`` members their value,
  dataclasses their ``to_dict()`` (or their fields), ``Path`` its text and ``datetime``/``date``
  ISO-8601 text. What JSON cannot hold faithfully (bytes, sets, complex numbers, ``datetime64``)
  is refused with :class:`~mloop.errors.InvalidInputError`, naming where it was found.

This is a leaf module: it imports only the standard library, numpy and :mod:`mloop.errors`.

Examples
--------
>>> import numpy as np
>>> dumps({"loss": float("inf"), "acc": float("nan"), "step": 2**60})
'{"loss":"Infinity","acc":"NaN","step":1152921504606846976}'
>>> float_from_wire(loads('"-Infinity"'))
-inf
>>> array_from_wire(loads(dumps(np.array([1.5, np.nan]))), np.float64)
array([1.5, nan])
"""

from __future__ import annotations

from mloop.codec._base import INFINITY, NAN, NEG_INFINITY
from mloop.codec._decode import (
    array_from_wire,
    float_from_wire,
    int_from_wire,
    optional_float_from_wire,
)
from mloop.codec._encode import dumps, fields_to_wire, loads, to_wire
from mloop.codec._types import WireEntity, dataclass_from_wire, from_wire

__all__ = [
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
]
