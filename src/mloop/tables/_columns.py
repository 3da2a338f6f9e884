"""One message for "you named a column that is not there": the names, where, what there is instead.

Every column selection (the reader's ``columns=``, and monitoring's ``columns=``, ``categorical=``,
per-column methods, a Monitor's or CBPE's columns) reports a typo the same way, with the columns
that do exist and a close match when there is one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from mloop.errors import InvalidInputError

__all__ = ["check_columns", "unknown_columns_error"]

_SHOWN = 20  # column names listed in a message; wide tables are cut after this many


def _show(names: Sequence[str]) -> str:
    if len(names) <= _SHOWN:
        return repr(list(names))
    head = ", ".join(repr(n) for n in names[:_SHOWN])
    return f"[{head}, ... ({len(names) - _SHOWN} more)]"


def unknown_columns_error(
    unknown: Sequence[str],
    available: Sequence[str],
    *,
    what: str,
    where: str,
    listing: str | None = None,
) -> InvalidInputError:
    """The error for ``unknown`` names given in ``what`` that are not among ``available``.

    ``where`` completes "which is not ..." (``"in the reference data"``, ``"compared"``);
    ``listing`` introduces ``available`` (default "it has N columns"). ``details`` holds both
    lists.

    Examples
    --------
    >>> err = unknown_columns_error(["agee"], ["age", "plan"], what="`columns`",
    ...                             where="in the reference data")
    >>> print(err.message)  # doctest: +NORMALIZE_WHITESPACE
    `columns` names ['agee'], which is not in the reference data; it has 2 columns:
    ['age', 'plan']. Did you mean 'age' (for 'agee')? Pass names from that list.
    """
    available = [str(a) for a in available]
    verb = "is" if len(unknown) == 1 else "are"
    if not available:
        has = "there are none"
    else:
        count = f"{len(available)} column" + ("" if len(available) == 1 else "s")
        has = f"{listing or f'it has {count}'}: {_show(available)}"
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(str(name), available, n=1, cutoff=0.6)
        if close:
            hints.append(f"{close[0]!r} (for {name!r})")
    did_you_mean = f" Did you mean {', '.join(hints)}?" if hints else ""
    return InvalidInputError(
        f"{what} names {list(unknown)!r}, which {verb} not {where}; {has}.{did_you_mean} "
        "Pass names from that list.",
        details={"unknown": list(unknown), "available": available},
    )


def check_columns(
    names: Iterable[str],
    available: Sequence[str],
    *,
    what: str,
    where: str,
    listing: str | None = None,
) -> list[str]:
    """``names`` as a list; :class:`InvalidInputError` naming those not in ``available``.

    Examples
    --------
    >>> check_columns(["b"], ["a", "b"], what="`columns`", where="in the data")
    ['b']
    """
    names = list(names)
    present = set(available)
    unknown = [n for n in names if n not in present]
    if unknown:
        raise unknown_columns_error(unknown, available, what=what, where=where, listing=listing)
    return names
