"""What the codec's parts share: the spellings of non-finite floats and how errors name a place."""

from __future__ import annotations

import math
from typing import Any

NAN = "NaN"
INFINITY = "Infinity"
NEG_INFINITY = "-Infinity"

SPECIAL: dict[str, float] = {NAN: math.nan, INFINITY: math.inf, NEG_INFINITY: -math.inf}
# Read, never written: quality reports spelled infinity "inf"/"-inf" before this codec existed, and
# such reports are stored (monitor results), so float fields still accept those two spellings.
READ_SPECIAL: dict[str, float] = {**SPECIAL, "inf": math.inf, "-inf": -math.inf}


class Attr(str):
    """A path step that is an attribute (``.name``), not a key (``['name']``)."""


def got(value: Any) -> str:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:59] + "…"
    return f"{shown} ({type(value).__name__})"


def where_text(where: Any) -> str:
    steps: list[str] = []
    while isinstance(where, tuple):
        parent, step = where
        steps.append(f".{step}" if isinstance(step, Attr) else f"[{step!r}]")
        where = parent
    return str(where) + "".join(reversed(steps))
