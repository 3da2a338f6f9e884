"""What a step asks for (``@step(resources={"cpus": 2, "memory": "2GB", "gpus": 1})``).

The request is validated once, when the step is declared, and normalised: ``cpus`` and ``gpus`` as
numbers (fractions allowed, as Ray allows them), ``memory`` as bytes. Every executor records it on
the step run; Ray schedules each task with it; the process pool runs no more CPUs at once than it
has workers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from mloop.errors import InvalidInputError

__all__ = ["RESOURCE_KEYS", "parse_memory", "parse_resources"]

RESOURCE_KEYS = ("cpus", "memory", "gpus")

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_MEMORY = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*")


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_memory(value: object) -> int:
    """Bytes from an int or a string such as ``"2GB"``, ``"512 MiB"`` or ``"1.5GiB"``."""
    if isinstance(value, str):
        m = _MEMORY.fullmatch(value)
        unit = _UNITS.get(m.group(2).lower()) if m else None
        if m is None or unit is None:
            raise InvalidInputError(
                f"`resources['memory']` must be bytes (an int) or a size such as '2GB', '512MiB';"
                f" got {value!r} (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)."
            )
        size = int(float(m.group(1)) * unit)
    elif _number(value) and float(value).is_integer():  # type: ignore[arg-type]
        size = int(value)  # type: ignore[call-overload]
    else:
        raise InvalidInputError(
            f"`resources['memory']` must be bytes (an int) or a size such as '2GB'; got {value!r}."
        )
    if size < 1:
        raise InvalidInputError(f"`resources['memory']` must be at least 1 byte; got {value!r}.")
    return size


def parse_resources(resources: object) -> dict[str, Any]:
    """The normalised request: ``{"cpus": float|int, "memory": int, "gpus": float|int}``, only
    the keys given. Raises :class:`InvalidInputError` naming the bad key and value."""
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise InvalidInputError(
            f"`resources` must be a mapping such as {{'cpus': 2, 'memory': '2GB'}}; "
            f"got {type(resources).__name__}."
        )
    out: dict[str, Any] = {}
    for key, value in resources.items():
        if key not in RESOURCE_KEYS:
            raise InvalidInputError(
                f"`resources` keys must be among {', '.join(RESOURCE_KEYS)}; got {key!r}."
            )
        if key == "memory":
            out[key] = parse_memory(value)
            continue
        low_ok = key == "gpus"  # 0 GPUs is a valid request; 0 CPUs would run anywhere, unbounded
        if not _number(value) or value < 0 or (value == 0 and not low_ok):
            bound = ">= 0" if low_ok else "> 0"
            raise InvalidInputError(
                f"`resources[{key!r}]` must be a number {bound} (fractions allowed); got {value!r}."
            )
        out[key] = int(value) if float(value).is_integer() else float(value)
    return out
