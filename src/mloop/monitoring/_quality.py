"""Data quality: schema and type mismatches, missing values, out-of-range values, unseen categories,
constant and empty columns — each a check with a threshold and a verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mloop.codec import WireEntity, dataclass_from_wire, dumps, from_wire, to_wire
from mloop.errors import InvalidInputError
from mloop.monitoring._columns import check_columns
from mloop.monitoring._summary import ColumnSummary, summarize

__all__ = ["DEFAULT_THRESHOLDS", "QualityCheck", "QualityReport", "quality_report"]

Verdict = Literal["pass", "warn", "fail", "skip"]

DEFAULT_THRESHOLDS: dict[str, float] = {
    # absolute increase of the share of missing values (current minus reference)
    "missing_share": 0.05,
    # share of current (finite) values outside the reference's [min, max]
    "out_of_range": 0.05,
    # share of current values that are categories the reference never saw
    "unseen_categories": 0.01,
    # increase of the share of ±inf values
    "non_finite": 0.0,
}


@dataclass(frozen=True)
class QualityCheck(WireEntity):
    """One check of one column (``column`` is ``None`` for dataset-level checks); ``to_dict()`` is
    its wire form (:mod:`mloop.codec`).

    ``verdict`` is "fail" when ``value`` exceeds ``threshold`` (or the check's condition holds),
    "warn" for notable but harmless findings (an extra column), "skip" when the check does not apply
    (explained in ``message``), else "pass".
    """

    column: str | None
    check: str
    verdict: Verdict
    value: Any
    reference_value: Any = None
    threshold: float | None = None
    message: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityCheck:
        """The inverse of :meth:`to_dict`. Values are numbers, bools, ``[min, max]`` ranges or,
        for the ``type`` check, type names; a numeric check's non-finite values read as floats."""
        numeric = not isinstance(data, Mapping) or data.get("check") != "type"
        decode = _numeric_value if numeric else _raw_value
        return dataclass_from_wire(cls, data, decoders={"value": decode, "reference_value": decode})


def _raw_value(value: Any, what: str) -> Any:
    return value


def _numeric_value(value: Any, what: str) -> Any:
    if isinstance(value, str):
        return from_wire(float, value, what=what)
    if isinstance(value, list):
        return [_numeric_value(v, f"{what}[{i}]") for i, v in enumerate(value)]
    return value


# Per-column summaries (ColumnSummary.describe()): which of their entries are floats.
_SUMMARY_FLOATS = frozenset({"missing_share", "min", "max"})


def _summaries(value: Any, what: str) -> dict[str, dict[str, Any]]:
    table = from_wire(dict[str, dict[str, Any]], value, what=what)
    return {
        column: {
            k: from_wire(float | None, v, what=f"{what}[{column!r}][{k!r}]")
            if k in _SUMMARY_FLOATS
            else v
            for k, v in summary.items()
        }
        for column, summary in table.items()
    }


@dataclass(frozen=True)
class QualityReport:
    """Every check of a quality comparison, plus per-column summaries of both sides.

    Attributes
    ----------
    checks : list of QualityCheck
    reference : dict of str to dict
        Per-column summary of the reference (kind, dtype, n, n_missing, min, max, n_unique).
    current : dict of str to dict
        The same for the current data.
    n_reference, n_current : int
        Row counts.
    """

    checks: list[QualityCheck]
    reference: dict[str, dict[str, Any]] = field(default_factory=dict)
    current: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_reference: int = 0
    n_current: int = 0

    @property
    def passed(self) -> bool:
        """No check failed."""
        return self.n_failed == 0

    @property
    def n_failed(self) -> int:
        return sum(c.verdict == "fail" for c in self.checks)

    @property
    def n_warnings(self) -> int:
        return sum(c.verdict == "warn" for c in self.checks)

    @property
    def failed(self) -> list[QualityCheck]:
        """The failed checks."""
        return [c for c in self.checks if c.verdict == "fail"]

    def column(self, name: str) -> dict[str, QualityCheck]:
        """The checks of one column, by check name."""
        return {c.check: c for c in self.checks if c.column == name}

    def _wire_(self) -> dict[str, Any]:
        # Plain values (arrays, non-finite floats): the codec encodes them in one walk.
        return {
            "passed": self.passed,
            "n_failed": self.n_failed,
            "n_warnings": self.n_warnings,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "checks": self.checks,
            "reference": self.reference,
            "current": self.current,
        }

    def to_dict(self) -> dict[str, Any]:
        """Wire form of the report (:mod:`mloop.codec`), with the derived counts."""
        return to_wire(self, what="QualityReport")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityReport:
        """The inverse of :meth:`to_dict`; also reads reports stored before the wire codec
        (infinity spelled ``"inf"``/``"-inf"``, NaN as ``null``)."""
        return dataclass_from_wire(
            cls, data, decoders={"reference": _summaries, "current": _summaries}
        )

    def to_json(self, *, indent: int | None = None) -> str:
        """The report as a JSON string."""
        return dumps(self, indent=indent, what=type(self).__name__)

    def to_html(self, path: str | Path | None = None) -> str:
        """Render the report as a self-contained HTML page; write it to ``path`` when given."""
        from mloop.monitoring._html import render_quality_report

        page = render_quality_report(self)
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page


def quality_report(
    reference: Any,
    current: Any,
    *,
    columns: Iterable[str] | None = None,
    categorical: Iterable[str] | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> QualityReport:
    """Compare the quality of ``current`` data against a reference.

    Checks, per reference column (thresholds in ``DEFAULT_THRESHOLDS``, overridable):

    - ``column_missing``: the column is absent from the current data (fail);
      ``extra_column``: a current column the reference does not have (warn).
    - ``type``: the kinds differ (numeric vs categorical, ints vs strings, mixed types) (fail).
    - ``empty``: no non-missing current value (fail); ``constant``: a single distinct current value
      where the reference had several (fail).
    - ``missing_share``: current minus reference share of missing values > threshold (fail).
    - ``non_finite``: increase of the share of ±inf values > threshold (numeric; fail).
    - ``out_of_range``: share of finite current values outside the reference's [min, max] >
      threshold (numeric; fail).
    - ``unseen_categories``: share of current values the reference never saw > threshold
      (categorical; fail).

    Parameters
    ----------
    reference : Profile, or any table :func:`mloop.tables.read_table` accepts
    current : any table :func:`mloop.tables.read_table` accepts
    columns : iterable of str, optional
        Restrict the checks to these reference columns.
    categorical : iterable of str, optional
        Columns to treat as categorical even when numeric (e.g. integer codes).
    thresholds : mapping of str to float, optional
        Overrides of ``DEFAULT_THRESHOLDS`` by check name.

    Returns
    -------
    QualityReport

    Raises
    ------
    InvalidInputError
        Unknown threshold names or columns, or data that cannot be read.

    Examples
    --------
    >>> r = quality_report({"age": [20, 30, 40]}, {"age": [25, 35, 90]})
    >>> r.column("age")["out_of_range"].verdict
    'fail'
    """
    limits = dict(DEFAULT_THRESHOLDS)
    for key, val in (thresholds or {}).items():
        if key not in DEFAULT_THRESHOLDS:
            raise InvalidInputError(
                f"Unknown quality threshold {key!r}; expected one of {sorted(DEFAULT_THRESHOLDS)}."
            )
        limits[key] = float(val)
    cat = set(categorical or ())
    ref = summarize(reference, categorical=cat, what="reference")
    cur = summarize(current, categorical=cat, what="current")
    names = list(ref.columns) if columns is None else list(columns)
    check_columns(names, list(ref.columns), what="`columns`", where="in the reference")
    checks: list[QualityCheck] = []
    if cur.n_rows == 0:
        checks.append(
            QualityCheck(None, "empty", "fail", 0, ref.n_rows, None, "the current data has no rows")
        )
    for name in names:
        r = ref.columns[name]
        if name not in cur.columns:
            checks.append(
                QualityCheck(
                    name,
                    "column_missing",
                    "fail",
                    False,
                    True,
                    None,
                    "column missing from the current data",
                )
            )
            continue
        checks.extend(_column_checks(name, r, cur.columns[name], limits))
    for name in cur.columns:
        if name not in ref.columns and (columns is None):
            checks.append(
                QualityCheck(
                    name,
                    "extra_column",
                    "warn",
                    True,
                    False,
                    None,
                    "column not in the reference; it is not monitored",
                )
            )
    return QualityReport(
        checks=checks,
        reference={k: ref.columns[k].describe() for k in names},
        current={k: v.describe() for k, v in cur.columns.items()},
        n_reference=ref.n_rows,
        n_current=cur.n_rows,
    )


def _column_checks(
    name: str, r: ColumnSummary, c: ColumnSummary, limits: dict[str, float]
) -> list[QualityCheck]:
    out: list[QualityCheck] = []
    type_ok = r.kind == c.kind or "empty" in (r.kind, c.kind)
    if r.kind == "categorical" and c.kind == "categorical" and r.value_type != c.value_type:
        type_ok = not (r.value_type and c.value_type)
    if type_ok:
        out.append(QualityCheck(name, "type", "pass", c.type_name, r.type_name))
    else:
        out.append(
            QualityCheck(
                name,
                "type",
                "fail",
                c.type_name,
                r.type_name,
                None,
                f"reference is {r.type_name}, current is {c.type_name}",
            )
        )
    present = c.n - c.n_missing
    if c.n == 0 or present == 0:
        why = "no rows" if c.n == 0 else "every value is missing"
        out.append(QualityCheck(name, "empty", "fail", present, r.n - r.n_missing, None, why))
    else:
        out.append(QualityCheck(name, "empty", "pass", present, r.n - r.n_missing))
    if c.n_unique == 1 and r.n_unique > 1:
        out.append(
            QualityCheck(
                name,
                "constant",
                "fail",
                1,
                r.n_unique,
                None,
                f"a single distinct value ({_short(c.only_value)}); the reference had {r.n_unique}",
            )
        )
    elif present:
        out.append(QualityCheck(name, "constant", "pass", c.n_unique, r.n_unique))
    out.append(_increase(name, "missing_share", r.missing_share, c.missing_share, limits))
    if r.kind == "numeric" and c.kind == "numeric":
        out.append(_increase(name, "non_finite", r.inf_share, c.inf_share, limits))
        out.append(_out_of_range(name, r, c, limits["out_of_range"]))
    elif r.kind == "categorical" and c.kind == "categorical":
        out.append(_unseen(name, r, c, limits["unseen_categories"], type_ok))
    return out


def _increase(
    name: str, check: str, ref: float, cur: float, limits: dict[str, float]
) -> QualityCheck:
    thr = limits[check]
    what = "missing" if check == "missing_share" else "infinite"
    if cur - ref > thr:
        msg = f"{cur:.1%} {what} (reference {ref:.1%}); allowed increase {thr:.1%}"
        return QualityCheck(name, check, "fail", cur, ref, thr, msg)
    return QualityCheck(name, check, "pass", cur, ref, thr)


def _out_of_range(name: str, r: ColumnSummary, c: ColumnSummary, thr: float) -> QualityCheck:
    if r.min is None or r.max is None or c.values is None:
        return QualityCheck(
            name, "out_of_range", "skip", None, None, thr, "no finite values to compare"
        )
    v = c.values
    finite = v[np.isfinite(v)]
    if len(finite) == 0:
        return QualityCheck(name, "out_of_range", "skip", None, None, thr, "no finite values")
    outside = int(np.count_nonzero((finite < r.min) | (finite > r.max)))
    share = outside / len(finite)
    ref_range = [r.min, r.max]
    if share > thr:
        msg = (
            f"{outside:,} values ({share:.1%}) outside the reference range "
            f"[{_short(r.min)}, {_short(r.max)}]"
        )
        return QualityCheck(name, "out_of_range", "fail", share, ref_range, thr, msg)
    return QualityCheck(name, "out_of_range", "pass", share, ref_range, thr)


def _unseen(
    name: str, r: ColumnSummary, c: ColumnSummary, thr: float, type_ok: bool
) -> QualityCheck:
    if not type_ok or r.categories is None or c.categories is None:
        why = "category types differ" if not type_ok else "reference categories unknown"
        return QualityCheck(name, "unseen_categories", "skip", None, None, thr, why)
    new = {k: n for k, n in c.categories.items() if k not in r.categories}
    present = sum(c.categories.values())
    share = sum(new.values()) / present if present else 0.0
    if share > thr:
        top = sorted(new, key=lambda k: -new[k])[:5]
        more = f" and {len(new) - 5} more" if len(new) > 5 else ""
        msg = (
            f"{len(new)} unseen categories ({share:.1%} of values): "
            f"{', '.join(_short(t) for t in top)}{more}"
        )
        return QualityCheck(name, "unseen_categories", "fail", share, 0.0, thr, msg)
    return QualityCheck(name, "unseen_categories", "pass", share, 0.0, thr)


def _short(value: Any, limit: int = 40) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
