"""Per-column summaries (kind, counts, range, categories) that the quality checks compare.

A summary comes from data (any supported frame) or from a stored ``Profile``, so a monitor can check
quality against a profile without the reference rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mloop.monitoring._data import Frame, as_frame
from mloop.monitoring._profile import Profile, load_if_profile

__all__ = ["ColumnSummary", "DataSummary", "summarize"]

Kind = Literal["numeric", "categorical", "mixed", "empty", "unsupported"]


@dataclass
class ColumnSummary:
    """What the quality checks need to know about one column."""

    kind: Kind
    value_type: str
    n: int
    n_missing: int
    n_inf: int = 0
    min: float | None = None
    max: float | None = None
    n_unique: int = 0
    only_value: Any = None
    categories: dict[Any, int] | None = None
    values: np.ndarray | None = None  # finite-or-inf numeric values (data summaries only)

    @property
    def missing_share(self) -> float:
        return self.n_missing / self.n if self.n else 0.0

    @property
    def inf_share(self) -> float:
        return self.n_inf / self.n if self.n else 0.0

    @property
    def type_name(self) -> str:
        return f"{self.kind} ({self.value_type})" if self.value_type else self.kind

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary (no values)."""
        return {
            "kind": self.kind,
            "type": self.value_type,
            "n": self.n,
            "n_missing": self.n_missing,
            "missing_share": self.missing_share,
            "n_inf": self.n_inf,
            "min": self.min,
            "max": self.max,
            "n_unique": self.n_unique,
        }


@dataclass
class DataSummary:
    n_rows: int
    columns: dict[str, ColumnSummary]


def summarize(
    data: Any, *, categorical: set[str] | frozenset[str] = frozenset(), what: str = "data"
) -> DataSummary:
    """Summarise every column of ``data`` (or of a ``Profile``), read through ``as_frame``."""
    if isinstance(data, DataSummary):
        return data
    data = load_if_profile(data)
    if isinstance(data, Profile):
        return _from_profile(data)
    frame = as_frame(data, what=what)
    return DataSummary(
        frame.n_rows, {k: _summarize(frame, k, k in categorical) for k in frame.names}
    )


def _summarize(frame: Frame, name: str, force_categorical: bool) -> ColumnSummary:
    n = frame.n_rows
    kind, source = frame.kind(name), frame.source(name)
    if kind == "unsupported":
        return ColumnSummary("unsupported", source, n, 0)
    if source == "mixed":
        cd = frame.categorical(name)
        return ColumnSummary("mixed", "mixed", n, cd.n_missing, n_unique=len(cd.categories))
    if kind == "numeric" and not force_categorical:
        values = frame.numeric(name)
        present = values[~np.isnan(values)]
        if len(present) == 0:
            return ColumnSummary("empty", "", n, n)
        return _numeric(present, source, n, n - len(present))
    cd = frame.categorical(name)
    counts = cd.counts()
    cats = {c: int(k) for c, k in zip(cd.categories, counts, strict=True) if k > 0}
    if not cats:
        return ColumnSummary("empty", "", n, cd.n_missing)
    only = next(iter(cats)) if len(cats) == 1 else None
    return ColumnSummary(
        "categorical",
        source,
        n,
        cd.n_missing,
        n_unique=len(cats),
        only_value=only,
        categories=cats,
    )


def _numeric(values: np.ndarray, vtype: str, n: int, n_missing: int) -> ColumnSummary:
    finite = values[np.isfinite(values)]
    uniq = np.unique(values)
    return ColumnSummary(
        "numeric",
        vtype,
        n,
        n_missing,
        n_inf=int(len(values) - len(finite)),
        min=float(finite.min()) if len(finite) else None,
        max=float(finite.max()) if len(finite) else None,
        n_unique=len(uniq),
        only_value=uniq[0].item() if len(uniq) == 1 else None,
        values=values,
    )


def _from_profile(profile: Profile) -> DataSummary:
    """Summaries of a stored ``Profile`` (no rows needed: counts, range and categories suffice)."""
    cols: dict[str, ColumnSummary] = {}
    rows = int(profile.n_rows)
    for name, col in profile.columns.items():
        # a profile's ``n`` counts present (numeric: finite) values; every column spans n_rows
        present = rows - int(col.n_missing)
        if col.kind == "categorical":
            cats = {c: int(k) for c, k in zip(col.categories, col.counts, strict=True) if k > 0}
            cols[name] = ColumnSummary(
                "categorical" if cats else "empty",
                col.source if cats else "",
                rows,
                int(col.n_missing),
                n_unique=len(cats),
                only_value=next(iter(cats)) if len(cats) == 1 else None,
                categories=cats,
            )
        elif present == 0:
            cols[name] = ColumnSummary("empty", "", rows, int(col.n_missing))
        else:
            n_unique = col.n_unique
            cols[name] = ColumnSummary(
                "numeric",
                col.source,
                rows,
                int(col.n_missing),
                int(col.n_inf),
                min=col.min,
                max=col.max,
                # a sketched column has more than 20 distinct values; count it as "several"
                n_unique=int(n_unique) if n_unique is not None else 21,
            )
    return DataSummary(int(profile.n_rows), cols)
