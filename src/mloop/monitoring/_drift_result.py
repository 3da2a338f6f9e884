"""Result types of a drift check: :class:`ColumnHistogram`, :class:`ColumnDrift`, :class:`DriftReport`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mloop.codec import array_from_wire, dataclass_from_wire, dumps, to_wire

__all__ = ["ColumnDrift", "ColumnHistogram", "ColumnStatus", "DriftReport"]

ColumnStatus = Literal["ok", "drift", "insufficient_data", "missing_column", "error"]

#: A categorical histogram lists at most this many labels that are new in the current data (not
#: in an exact reference): the most frequent ones; the rest share one bucket.
NEW_LABELS_SHOWN = 20
#: Label of the bucket that holds the current counts of the new labels not shown one by one.
OTHER_NEW_LABEL = "(other new labels)"


def _edges_from_wire(value: Any, what: str) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, list) and value and (value[0] is None or value[-1] is None):
        # Written before the wire codec: the open end edges (-inf, +inf) were null.
        value = list(value)
        if value[0] is None:
            value[0] = "-Infinity"
        if value[-1] is None:
            value[-1] = "Infinity"
    return array_from_wire(value, np.float64, what=what)


@dataclass(frozen=True, eq=False)
class ColumnHistogram:
    """Reference and current counts on the reference's bins, drawn from the profile, never rows.

    Numeric columns have ``edges`` (``len(reference) + 1`` values; the first and last are -inf and
    +inf, as the end bins are open) and ``categories`` is None; categorical columns (and numeric
    columns compared value by value) have ``categories`` and ``edges`` is None.

    Its size depends on the reference only, never on the current data's rows or labels, so a
    monitor's stored history stays small: the numeric bins are the reference's; a categorical
    histogram lists the reference's labels, then at most ``NEW_LABELS_SHOWN`` (20) labels the
    current data brings that an exact reference lacks (its most frequent ones, in label order),
    then, when there are more, one ``"(other new labels)"`` bucket with the current count of all
    the others (a reference count of 0). Against a frequent-items sketch, new labels are already
    counted in its ``"(other reference values)"`` bin. The statistics are computed before this,
    from every label's count; the column's ``message`` says how many labels were new.
    """

    edges: np.ndarray | None
    categories: list[str] | None
    reference: np.ndarray
    current: np.ndarray
    reference_missing: int
    current_missing: int

    def _wire_(self) -> dict[str, Any]:
        # Plain values (arrays, non-finite floats): the codec encodes them in one walk.
        return {
            "edges": self.edges,
            "categories": self.categories,
            "reference": self.reference,
            "current": self.current,
            "reference_missing": self.reference_missing,
            "current_missing": self.current_missing,
        }

    def to_dict(self) -> dict[str, Any]:
        """Wire form (:mod:`mloop.codec`): the open end edges are ``"-Infinity"``/``"Infinity"``."""
        return to_wire(self, what="ColumnHistogram")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnHistogram:
        """The inverse of :meth:`to_dict`: float64 edges, int64 counts (old null end edges read
        as -inf/+inf)."""
        return dataclass_from_wire(
            cls,
            data,
            arrays={"reference": np.int64, "current": np.int64},
            decoders={"edges": _edges_from_wire},
        )


def shown_labels(
    labels: list[str], reference: np.ndarray, current: np.ndarray, n_known: int | None
) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """A categorical histogram's labels and counts, and a note when some labels share a bucket.

    The first ``n_known`` labels (the reference's) are kept, then the ``NEW_LABELS_SHOWN`` most
    frequent of the new ones after them (in their order; ties go to the earlier label) and one
    bucket for the rest. With at most that many new labels, or ``n_known=None`` (a sketched
    reference, whose "other" bin already holds them), the inputs come back unchanged.
    """
    n_new = 0 if n_known is None else len(labels) - n_known
    if n_known is None or n_new <= NEW_LABELS_SHOWN:
        return labels, reference, current, []
    new_counts = current[n_known:]
    # A stable sort on the negated counts keeps label order among equal counts.
    shown = np.sort(np.argsort(-new_counts, kind="stable")[:NEW_LABELS_SHOWN])
    rest = np.ones(n_new, dtype=bool)
    rest[shown] = False
    out_labels = [*labels[:n_known], *(labels[n_known + int(i)] for i in shown), OTHER_NEW_LABEL]
    out_ref = np.concatenate(
        (reference[:n_known], np.zeros(NEW_LABELS_SHOWN + 1, dtype=reference.dtype))
    )
    out_cur = np.concatenate(
        (current[:n_known], new_counts[shown], [new_counts[rest].sum(dtype=np.int64)])
    ).astype(current.dtype, copy=False)
    note = (
        f"the histogram shows the {NEW_LABELS_SHOWN} most frequent new categories; the other "
        f"{n_new - NEW_LABELS_SHOWN} are counted together as {OTHER_NEW_LABEL!r}"
    )
    return out_labels, out_ref, out_cur, [note]


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict for one column.

    Attributes
    ----------
    name : str
    kind : {"numeric", "categorical"}
    method : str
        The method used (``"ks"``, ``"wasserstein"``, ``"jensenshannon"``, ``"chisquare"``, ...).
    statistic : float or None
        The test statistic or distance; None when not computed.
    p_value : float or None
        The p-value of a test; None for distances.
    threshold : float
        Drift when ``p_value < threshold`` (tests) or ``statistic >= threshold`` (distances).
    drifted : bool
        Only ever True with status ``"drift"``.
    n_reference, n_current : int
        Values that entered the statistic (missing and infinite values excluded).
    status : {"ok", "drift", "insufficient_data", "missing_column", "error"}
    message : str
        Why there is no verdict, and notes (unseen categories, sketch error bound, ...).
    histogram : ColumnHistogram or None
    error_bound : float or None
        Bound on ``|statistic - exact statistic|``: 0 when the reference is exact (raw data or an
        exact profile), the documented bound of its sketch otherwise; None when there is no verdict
        or no bound is known for the method on a sketch.
    borderline : bool
        The exact verdict could be the other one: the statistic (or, for a test, the p-value range
        the bound allows) reaches the threshold, or no bound is known. Only with a verdict.
    """

    name: str
    kind: Literal["numeric", "categorical"]
    method: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    status: ColumnStatus
    message: str = ""
    histogram: ColumnHistogram | None = field(default=None, compare=False, repr=False)
    error_bound: float | None = None
    borderline: bool = False

    @property
    def has_verdict(self) -> bool:
        return self.status in ("ok", "drift")

    def _wire_(self) -> dict[str, Any]:
        # Plain values (arrays, non-finite floats): the codec encodes them in one walk.
        return {
            "name": self.name,
            "kind": self.kind,
            "method": self.method,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "drifted": bool(self.drifted),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "status": self.status,
            "message": self.message,
            "histogram": self.histogram,
            "error_bound": self.error_bound,
            "borderline": bool(self.borderline),
        }

    def to_dict(self) -> dict[str, Any]:
        """Wire form (:mod:`mloop.codec`: non-finite floats as ``"NaN"``/``"Infinity"``)."""
        return to_wire(self, what="ColumnDrift")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnDrift:
        """The inverse of :meth:`to_dict`."""
        return dataclass_from_wire(cls, data)


@dataclass(frozen=True)
class DriftReport:
    """Per-column drift verdicts and the dataset verdict.

    The dataset drifts when ``share_drifted >= drift_share``; the share is taken over the columns
    that have a verdict (status ``"ok"`` or ``"drift"``). Columns without a verdict (insufficient
    data, missing from the current data, errors) are listed with their reason and never count as
    "no drift" silently: ``status`` is ``"insufficient_data"`` when no column has a verdict.
    """

    columns: dict[str, ColumnDrift]
    drift_share: float
    n_reference_rows: int
    n_current_rows: int
    extra_columns: tuple[str, ...] = ()

    @property
    def n_drifted(self) -> int:
        return sum(c.drifted for c in self.columns.values())

    @property
    def n_borderline(self) -> int:
        """Columns whose verdict is within the sketch's error bound of its threshold."""
        return sum(c.borderline for c in self.columns.values())

    @property
    def n_evaluated(self) -> int:
        """Columns with a verdict."""
        return sum(c.has_verdict for c in self.columns.values())

    @property
    def share_drifted(self) -> float:
        n = self.n_evaluated
        return self.n_drifted / n if n else 0.0

    @property
    def drifted(self) -> bool:
        return self.n_evaluated > 0 and self.share_drifted >= self.drift_share

    @property
    def status(self) -> Literal["ok", "drift", "insufficient_data"]:
        if self.n_evaluated == 0:
            return "insufficient_data"
        return "drift" if self.drifted else "ok"

    def _wire_(self) -> dict[str, Any]:
        # Plain values (arrays, non-finite floats): the codec encodes them in one walk.
        return {
            "drifted": self.drifted,
            "status": self.status,
            "share_drifted": self.share_drifted,
            "n_drifted": self.n_drifted,
            "n_evaluated": self.n_evaluated,
            "n_borderline": self.n_borderline,
            "n_columns": len(self.columns),
            "drift_share": self.drift_share,
            "n_reference_rows": self.n_reference_rows,
            "n_current_rows": self.n_current_rows,
            "extra_columns": list(self.extra_columns),
            "columns": self.columns,
        }

    def to_dict(self) -> dict[str, Any]:
        """Wire form of the whole report (:mod:`mloop.codec`), with the derived verdicts."""
        return to_wire(self, what="DriftReport")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        """The inverse of :meth:`to_dict` (the derived verdicts are recomputed, not read)."""
        return dataclass_from_wire(cls, data)

    def to_json(self, *, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON text."""
        return dumps(self, indent=indent, what=type(self).__name__)

    def to_html(self, path: str | Path) -> Path:
        """Write a self-contained HTML report (charts drawn from the histograms) to ``path``."""
        from mloop.monitoring._html import render_drift_report

        out = Path(path)
        out.write_text(render_drift_report(self), encoding="utf-8")
        return out
