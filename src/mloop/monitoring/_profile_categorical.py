"""Categorical column profiles: exact label counts up to a cardinality bound, then a frequent-items
sketch (``datasketches.frequent_strings_sketch``, Misra-Gries with a shared offset).

A sketched column keeps, for each label the sketch tracks, the lower bound of its count: the true
count lies in ``[lower, lower + max_error]``, and a label the sketch does not track occurred at most
``max_error`` times. ``max_error`` is the sketch's offset, documented to be at most
``epsilon * n`` with ``epsilon = 3.5 / 2**FREQUENT_LG_MAP`` (0.085%). The counts not attributed to
a tracked label, ``residual = n - sum(lower)``, are what a drift check compares as "other reference
values" (see :mod:`mloop.monitoring._drift`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from mloop.monitoring._data import Frame

__all__ = [
    "FREQUENT_LG_MAP",
    "MAX_CATEGORIES",
    "CategoricalProfile",
    "categorical_from_counts",
    "frequent_epsilon",
    "from_sketch",
    "merge_categorical",
    "profile_categorical",
    "sketch_from_bytes",
]

#: Categorical columns with more distinct labels than this keep a frequent-items sketch.
MAX_CATEGORIES = 4096
#: log2 of the frequent-items sketch's map size (it tracks up to 3/4 of 4096 labels).
FREQUENT_LG_MAP = 12


def _sketch_module() -> Any:
    try:
        import datasketches
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "profiles of categorical columns with more than `max_categories` labels need the "
            "datasketches package: pip install 'mloop[sketches]'"
        ) from exc
    return datasketches


def frequent_epsilon() -> float:
    """The documented bound on ``max_error / n`` of a frequent-items sketch of this module."""
    return float(_sketch_module().frequent_strings_sketch.get_epsilon_for_lg_size(FREQUENT_LG_MAP))


def sketch_from_bytes(data: bytes) -> Any:
    """A frequent-items sketch from its serialized form."""
    return _sketch_module().frequent_strings_sketch.deserialize(data)


@dataclass(eq=False)
class CategoricalProfile:
    """Profile of one categorical column: sorted labels and their counts.

    Exact (``sketch is None``): every label and its count. Sketched: the labels the sketch tracks
    with the lower bounds of their counts (see the module docstring).
    """

    source: str
    n: int
    n_missing: int
    categories: list[str]
    counts: np.ndarray
    sketch: Any = None
    kind: Literal["categorical"] = field(default="categorical", init=False)

    @property
    def is_exact(self) -> bool:
        return self.sketch is None

    @property
    def max_error(self) -> int:
        """Bound on ``true count - counts[i]`` of a tracked label, and on the count of an untracked
        one (0 when exact)."""
        if self.sketch is None:
            return 0
        mod = _sketch_module()
        items = self.sketch.get_frequent_items(mod.frequent_items_error_type.NO_FALSE_NEGATIVES, 0)
        return max((int(ub) - int(lb) for _, _, lb, ub in items), default=0)

    @property
    def residual(self) -> int:
        """Counts not attributed to a listed label (0 when exact)."""
        return int(self.n - int(self.counts.sum())) if self.sketch is not None else 0


def from_sketch(sketch: Any, *, source: str, n: int, n_missing: int) -> CategoricalProfile:
    """The profile of a column summarized by a frequent-items sketch."""
    mod = _sketch_module()
    items = sketch.get_frequent_items(mod.frequent_items_error_type.NO_FALSE_NEGATIVES, 0)
    kept = sorted((str(label), int(lb)) for label, _, lb, _ in items if int(lb) > 0)
    return CategoricalProfile(
        source=source,
        n=n,
        n_missing=n_missing,
        categories=[label for label, _ in kept],
        counts=np.array([c for _, c in kept], dtype=np.int64),
        sketch=sketch,
    )


def _new_sketch(parts: list[tuple[list[str], np.ndarray] | Any]) -> Any:
    sketch = _sketch_module().frequent_strings_sketch(FREQUENT_LG_MAP)
    for part in parts:
        if isinstance(part, tuple):
            for label, count in zip(part[0], part[1].tolist(), strict=True):
                sketch.update(label, int(count))
        else:
            sketch.merge(part)
    return sketch


def categorical_from_counts(
    categories: list[str],
    counts: np.ndarray,
    *,
    source: str,
    n_missing: int,
    max_categories: int,
) -> CategoricalProfile:
    """An exact profile of these (sorted) labels and counts, or a sketch beyond ``max_categories``."""
    n = int(counts.sum())
    if len(categories) <= max_categories:
        return CategoricalProfile(source, n, n_missing, categories, counts)
    return from_sketch(_new_sketch([(categories, counts)]), source=source, n=n, n_missing=n_missing)


def profile_categorical(frame: Frame, name: str, *, max_categories: int) -> CategoricalProfile:
    """Profile one categorical column of ``frame``."""
    data = frame.categorical(name)
    counts = data.counts()
    order = sorted(range(len(data.categories)), key=data.categories.__getitem__)
    return categorical_from_counts(
        [data.categories[i] for i in order],
        counts[order] if order else counts,
        source=data.source,
        n_missing=data.n_missing,
        max_categories=max_categories,
    )


def merge_categorical(
    a: CategoricalProfile, b: CategoricalProfile, *, max_categories: int
) -> CategoricalProfile:
    """The profile of both parts' rows (exact while both are and the labels fit the bound)."""
    source = a.source if a.source == b.source else "mixed"
    n_missing = a.n_missing + b.n_missing
    if a.is_exact and b.is_exact:
        cats = sorted(set(a.categories) | set(b.categories))
        index = {c: i for i, c in enumerate(cats)}
        counts = np.zeros(len(cats), dtype=np.int64)
        for part in (a, b):
            counts[[index[c] for c in part.categories]] += part.counts
        return categorical_from_counts(
            cats, counts, source=source, n_missing=n_missing, max_categories=max_categories
        )
    parts = [p.sketch if p.sketch is not None else (p.categories, p.counts) for p in (a, b)]
    return from_sketch(_new_sketch(parts), source=source, n=a.n + b.n, n_missing=n_missing)
