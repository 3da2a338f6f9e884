"""Data drift: each column of a current window against a reference (raw data or a Profile)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mloop.errors import InvalidInputError
from mloop.monitoring._columns import check_columns
from mloop.monitoring._data import CategoricalData, Frame, as_frame, number_labels
from mloop.monitoring._drift_methods import (
    _SPECS,
    AUTO_DISCRETE_MAX,
    DriftMethod,
    _Approx,
    _auto_method,
    _no_verdict,
    _normalize_method,
    _Result,
    _verdict,
)
from mloop.monitoring._drift_result import ColumnDrift, ColumnHistogram, DriftReport, shown_labels
from mloop.monitoring._profile import Profile, load_if_profile
from mloop.monitoring._profile_columns import (
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    _runs,
    profile_column,
    summarize_numeric,
)
from mloop.monitoring.stats import anderson_darling, cramer_von_mises, kernels

__all__ = ["DriftMethod", "drift_report"]

_COUNT_METHODS: dict[str, Callable[[np.ndarray, np.ndarray], _Result]] = {
    "chisquare": lambda r, c: kernels.chi_square_from_counts(r, c),
    "z": lambda r, c: kernels.z_from_counts(r, c),
    "jensenshannon": lambda r, c: (kernels.jensen_shannon_from_counts(r, c), None),
    "psi": lambda r, c: (kernels.psi_from_counts(r, c), None),
    "kl": lambda r, c: (kernels.kl_from_counts(r, c), None),
    "hellinger": lambda r, c: (kernels.hellinger_from_counts(r, c), None),
    "tv": lambda r, c: (kernels.tv_from_counts(r, c), None),
}


#: Count methods whose bound survives comparing the untracked labels as one "other" bin (see
#: mloop.monitoring.stats._bounds).
_LUMPABLE = frozenset({"jensenshannon", "hellinger", "tv"})
#: Label of the bin that holds the reference counts a frequent-items sketch did not attribute.
OTHER_LABEL = "(other reference values)"


@dataclass(frozen=True)
class _Options:
    methods: Mapping[str, str]
    thresholds: Mapping[str, float]
    categorical: frozenset[str]
    min_samples: int
    missing: Literal["drop", "bin"]
    bins: int


def _threshold(opts: _Options, name: str, method: str) -> float:
    return float(opts.thresholds.get(name, _SPECS[method].threshold))


def _numeric_column(
    name: str, ref: NumericProfile, values: np.ndarray, opts: _Options
) -> ColumnDrift:
    cur, cur_missing, _ = summarize_numeric(values)
    n_ref, n_cur = ref.n, cur.n
    requested = opts.methods.get(name, "auto")
    # Numeric columns with few distinct values are compared value by value (Evidently's rule).
    discrete: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    # Profiles keep exact value counts of columns with <= 20 distinct values (set together, or
    # neither); without them the column has more distinct values than the rule looks at.
    dv, dc = ref.discrete_values, ref.discrete_counts
    n_unique: int | None = None
    if dv is not None and dc is not None:
        cur_vals, cur_counts = (
            _runs(cur.values) if cur.weights is None else (cur.values, cur.weights)
        )
        union = np.union1d(dv, cur_vals)
        n_unique = int(union.size)
        if n_unique <= AUTO_DISCRETE_MAX:
            r = np.zeros(union.size, dtype=np.int64)
            c = np.zeros(union.size, dtype=np.int64)
            r[np.searchsorted(union, dv)] = dc
            c[np.searchsorted(union, cur_vals)] = cur_counts
            discrete = (union, r, c)
    if discrete is not None:
        hist = ColumnHistogram(
            None, number_labels(discrete[0]), discrete[1], discrete[2], ref.n_missing, cur_missing
        )
    else:
        edges = np.concatenate(([-np.inf], ref.edges, [np.inf]))
        hist = ColumnHistogram(
            edges, None, ref.bin_counts, kernels.bin_counts_sample(cur, ref.edges), ref.n_missing,
            cur_missing,
        )  # fmt: skip
    method = _auto_method("numeric", n_ref, n_unique) if requested == "auto" else requested
    threshold = _threshold(opts, name, method)
    if min(n_ref, n_cur) < opts.min_samples:
        return _no_verdict(
            name, "numeric", method, threshold, "insufficient_data",
            f"{n_ref} reference and {n_cur} current finite values; "
            f"at least min_samples={opts.min_samples} needed in each",
            n_ref, n_cur, hist,
        )  # fmt: skip
    notes: list[str] = []
    family = _SPECS[method].family
    if family == "counts":
        if discrete is not None:
            r_counts, c_counts = discrete[1], discrete[2]
        else:
            r_counts, c_counts = hist.reference, hist.current
        approx = None
        if discrete is None and ref.bin_error > 0:
            # every cumulative count is within bin_error * n: a bin's count within twice that
            slack = 2.0 * ref.bin_error * n_ref
            low, high = np.maximum(r_counts - slack, 0.0), np.minimum(r_counts + slack, n_ref)
            if opts.missing == "bin":
                low, high = np.append(low, ref.n_missing), np.append(high, ref.n_missing)
            notes.append("reference bins were merged through a sketch")
        if opts.missing == "bin":
            r_counts = np.append(r_counts, ref.n_missing)
            c_counts = np.append(c_counts, cur_missing)
        if discrete is None and ref.bin_error > 0:
            approx = _Approx(kernels.count_statistic_bound(method, r_counts, low, high, c_counts))
        return _verdict(
            name, "numeric", method, threshold, _COUNT_METHODS[method](r_counts, c_counts),
            n_ref, n_cur, hist, notes, approx,
        )  # fmt: skip
    if family == "raw":
        if not ref.is_exact:
            raise InvalidInputError(
                f"{method} needs the exact reference values; the profile of {name!r} holds a "
                "sketch (build it with a larger `max_exact`)"
            )
        fn = cramer_von_mises if method == "cramer_von_mises" else anderson_darling
        result: _Result = fn(ref.expanded(), cur.expand())
    else:
        sample = ref.sample()
        approx = None
        if not ref.is_exact:
            # sup|F_sketch - F| <= eps, and the two CDFs agree outside [min, max] of the reference
            eps, width = ref.rank_error(), (ref.max or 0.0) - (ref.min or 0.0)
            if method == "ks":
                bound = eps
            elif method == "wasserstein":
                bound = eps * width / max(ref.std, kernels.WASSERSTEIN_STD_FLOOR)
            else:  # energy = sqrt(2) * L2 distance of the CDFs
                bound = eps * float(np.sqrt(2.0 * width))
            notes.append(f"reference is a KLL sketch: statistic within ±{bound:.3g} of exact")
            approx = _Approx(bound, _ks_p_value(n_ref, n_cur) if method == "ks" else None)
        if method == "ks":
            result = kernels.ks_sorted(sample, cur.expand())
        elif method == "wasserstein":
            result = (
                kernels.wasserstein_sorted(sample, cur, normed=True, reference_std=ref.std),
                None,
            )
        else:
            l2 = kernels.cdf_distances(sample, cur.expand(), which=("l2",))["l2"]
            result = (float(np.sqrt(2.0) * l2), None)
        return _verdict(name, "numeric", method, threshold, result, n_ref, n_cur, hist, notes,
                        approx)  # fmt: skip
    return _verdict(name, "numeric", method, threshold, result, n_ref, n_cur, hist, notes)


def _ks_p_value(n_ref: int, n_cur: int) -> Callable[[float], float]:
    """The asymptotic KS p-value ``ks_sorted`` uses for samples of these sizes."""
    from scipy import stats as sps

    en = float(np.round(n_ref * n_cur / (n_ref + n_cur)))
    return lambda d: min(max(float(sps.kstwo.sf(min(d, 1.0), en)), 0.0), 1.0)


def _categorical_column(
    name: str, ref: CategoricalProfile, cur: CategoricalData, opts: _Options
) -> ColumnDrift:
    index = {c: i for i, c in enumerate(ref.categories)}
    new = sorted({c for c in cur.categories if c not in index})
    if ref.is_exact:
        for label in new:
            index[label] = len(index)
        labels = [*ref.categories, *new]
    else:  # labels the sketch does not track are compared together, as one "other" bin
        index.update(dict.fromkeys(new, len(index)))
        labels = [*ref.categories, OTHER_LABEL]
    ref_counts = np.zeros(len(labels), dtype=np.int64)
    ref_counts[: len(ref.categories)] = ref.counts
    if not ref.is_exact:
        ref_counts[-1] = ref.residual
    cur_counts = np.zeros(len(labels), dtype=np.int64)
    if cur.categories:
        np.add.at(cur_counts, [index[c] for c in cur.categories], cur.counts())
    n_ref, n_cur = ref.n, int(cur_counts.sum())
    # The statistics below use every label; the histogram (what a report stores) lists at most
    # NEW_LABELS_SHOWN new labels, so its size does not grow with the labels a window brings.
    known = len(ref.categories) if ref.is_exact else None
    h_labels, h_ref, h_cur, bucket_note = shown_labels(labels, ref_counts, cur_counts, known)
    hist = ColumnHistogram(None, h_labels, h_ref, h_cur, ref.n_missing, cur.n_missing)
    notes: list[str] = []
    if new:  # current categories are all present (CategoricalData holds no unused ones)
        shown = ", ".join(repr(c) for c in new[:5]) + (" ..." if len(new) > 5 else "")
        where = "reference" if ref.is_exact else "reference's frequent-items sketch"
        notes.append(f"{len(new)} categor{'y' if len(new) == 1 else 'ies'} not in the "
                     f"{where}: {shown}")  # fmt: skip
    notes.extend(bucket_note)
    numeric_sources = {"integer", "float", "boolean"}
    if (ref.source in numeric_sources) != (cur.source in numeric_sources):
        notes.append(f"reference holds {ref.source} values and current {cur.source} values; "
                     "compared as string labels")  # fmt: skip
    requested = opts.methods.get(name, "auto")
    n_unique = len(labels)  # each label is counted in the reference or the current data
    method = _auto_method("categorical", n_ref, n_unique) if requested == "auto" else requested
    threshold = _threshold(opts, name, method)
    if _SPECS[method].family != "counts":
        return _no_verdict(
            name, "categorical", method, threshold, "error",
            f"{method} needs a numeric column; {name!r} is categorical", n_ref, n_cur, hist,
        )  # fmt: skip
    if min(n_ref, n_cur) < opts.min_samples:
        return _no_verdict(
            name, "categorical", method, threshold, "insufficient_data",
            f"{n_ref} reference and {n_cur} current non-missing values; "
            f"at least min_samples={opts.min_samples} needed in each",
            n_ref, n_cur, hist,
        )  # fmt: skip
    r, c = ref_counts, cur_counts
    if opts.missing == "bin":
        r, c = np.append(r, ref.n_missing), np.append(c, cur.n_missing)
    result = _COUNT_METHODS[method](r, c)
    approx = None
    if not ref.is_exact:
        # A tracked label's true count is in [lower, lower + max_error]; all of them together
        # exceed the lower bounds by at most `residual`, which is what "other" holds at most.
        residual, other = ref.residual, len(ref.categories)
        low = r.astype(np.float64)
        high = low + min(ref.max_error, residual)
        low[other], high[other] = 0.0, float(residual)
        if opts.missing == "bin":
            high[-1] = low[-1]
        bound = None
        if method in _LUMPABLE:
            bound = kernels.count_statistic_bound(method, r, low, high, c, lumped=other)
        notes.append(f"reference is a frequent-items sketch (label counts within "
                     f"{ref.max_error:,} of exact)")  # fmt: skip
        approx = _Approx(bound)
    return _verdict(
        name, "categorical", method, threshold, result, n_ref, n_cur, hist, notes, approx
    )


def _column(
    name: str,
    ref: ColumnProfile | Callable[[], ColumnProfile],
    current: Frame,
    opts: _Options,
) -> ColumnDrift:
    # Before the method is known ("auto" and no verdict), the threshold is a placeholder of 0.
    method = opts.methods.get(name, "auto")
    thr = float(opts.thresholds.get(name, _SPECS[method].threshold if method != "auto" else 0.0))
    # Should profiling a raw reference column fail, the error is that of a numeric column of 0 values.
    kind: Literal["numeric", "categorical"] = "numeric"
    n_ref = 0
    try:
        profile = ref() if callable(ref) else ref
        kind, n_ref = profile.kind, profile.n
        if name not in current:
            return _no_verdict(
                name, kind, method, thr, "missing_column",
                f"column {name!r} is not in the current data", n_ref,
            )  # fmt: skip
        cur_kind = current.kind(name)
        if cur_kind == "unsupported":
            raise InvalidInputError(
                f"column {name!r} has unsupported type {current.source(name)} in the current data"
            )
        if isinstance(profile, CategoricalProfile):
            return _categorical_column(name, profile, current.categorical(name), opts)
        if name in opts.categorical:
            raise InvalidInputError(
                f"column {name!r} is numeric in the reference profile but listed as categorical; "
                "rebuild the profile with categorical=[...]"
            )
        if cur_kind != "numeric" and current.source(name) != "boolean":
            raise InvalidInputError(
                f"column {name!r} is numeric in the reference but holds {current.source(name)} "
                f"values in the current data; pass categorical=[{name!r}] to compare both as "
                "categories"
            )
        return _numeric_column(name, profile, current.numeric_raw(name), opts)
    except InvalidInputError as exc:
        return _no_verdict(name, kind, method, thr, "error", str(exc), n_ref)


def _per_column(value: Any, names: Sequence[str], what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        check_columns(value, names, what=f"`{what}`", where="compared", listing="compared columns")
        return dict(value)
    return dict.fromkeys(names, value)


def drift_report(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    methods: Mapping[str, str] | str | None = None,
    thresholds: Mapping[str, float] | float | None = None,
    drift_share: float = 0.5,
    min_samples: int = 30,
    bins: int = 20,
    missing: Literal["drop", "bin"] = "drop",
    n_jobs: int | None = None,
) -> DriftReport:
    """Compare every column of ``current`` with ``reference`` and decide whether the data drifted.

    Method choice (``method="auto"``, Evidently's ``DataDriftPreset`` rules, so results look
    familiar). With ``n_ref`` the number of non-missing, finite reference values of a column and
    ``n_unique`` the number of distinct values in reference and current together:

    ============================  ====================================  =====================
    reference size                column                                method, drift when
    ============================  ====================================  =====================
    ``n_ref <= 1000``             numeric, ``n_unique > 5``             KS, ``p < 0.05``
    ``n_ref <= 1000``             categorical or ``n_unique <= 5``      chi-square, ``p < 0.05``
                                                                        (z-test if
                                                                        ``n_unique <= 2``)
    ``n_ref > 1000``              numeric, ``n_unique > 5``             normed Wasserstein
                                                                        ``>= 0.1``
    ``n_ref > 1000``              categorical or ``n_unique <= 5``      Jensen-Shannon
                                                                        ``>= 0.1``
    ============================  ====================================  =====================

    The dataset drifts when at least ``drift_share`` (0.5) of the columns with a verdict drift.
    Chi-square is a two-sample contingency test (Evidently uses a goodness-of-fit test against the
    scaled reference counts, which overstates drift for large samples). Missing and infinite values
    are left out of the statistics (``missing="bin"`` counts missing values as their own bin for the
    binned methods). A column with fewer than ``min_samples`` values on either side gets status
    ``"insufficient_data"``, never a verdict. A column's ``status`` is ``"ok"`` or ``"drift"`` (a
    verdict), ``"insufficient_data"``, ``"missing_column"`` (not in ``current``) or ``"error"`` (the
    method does not apply, or the column cannot be read); its ``method`` is ``"auto"`` and its
    ``threshold`` 0 when the automatic choice was never made.

    Parameters
    ----------
    reference : Profile, or any table :func:`mloop.tables.read_table` accepts
        The reference data, or its :class:`Profile` (or the path of a saved one).
    current : any table :func:`mloop.tables.read_table` accepts
        The window to check. Columns not in the reference are listed in
        ``report.extra_columns`` and otherwise ignored.
    columns : sequence of str, optional
        Columns to compare; by default every reference column of a supported type.
    categorical : sequence of str, optional
        Numeric columns to compare as categories (labels ``1`` and ``"1"`` are equal).
    methods : str or mapping of column to str, optional
        Method for all columns or per column: ``"auto"``, ``"ks"``, ``"wasserstein"`` (normed),
        ``"energy"``, ``"cramer_von_mises"``, ``"anderson"``, ``"chisquare"``, ``"z"``,
        ``"jensenshannon"``, ``"psi"``, ``"kl"``, ``"hellinger"``, ``"tv"``.
    thresholds : float or mapping of column to float, optional
        Overrides the method's default threshold (0.05 for p-values, 0.1 for distances).
    drift_share : float, default 0.5
        Share of drifted columns at which the dataset drifts.
    min_samples : int, default 30
        Minimum non-missing values on each side for a verdict.
    bins : int, default 20
        Reference-quantile bins for numeric columns (when ``reference`` is raw data).
    missing : {"drop", "bin"}, default "drop"
        Leave missing values out, or count them as a bin in the binned methods.
    n_jobs : int, optional
        Columns processed in parallel threads; by default ``min(4, os.cpu_count())``. With 1 (or a
        single column) every column is processed in the calling thread.

    Returns
    -------
    DriftReport

    Raises
    ------
    InvalidInputError
        For unreadable inputs, unknown column or method names and invalid parameters. Problems
        confined to one column (a kind mismatch, too few values) become that column's status.

    Examples
    --------
    >>> import numpy as np
    >>> from mloop import monitoring as mon
    >>> rng = np.random.default_rng(0)
    >>> ref = {"x": rng.normal(size=5000), "c": rng.choice(["a", "b"], size=5000)}
    >>> cur = {"x": rng.normal(1.0, size=5000), "c": rng.choice(["a", "b"], size=5000)}
    >>> report = mon.drift_report(ref, cur)
    >>> report.columns["x"].method, report.columns["x"].drifted, report.share_drifted
    ('wasserstein', True, 0.5)
    """
    if not (isinstance(drift_share, (int, float)) and 0 < drift_share <= 1):
        raise InvalidInputError(f"`drift_share` must be a float in (0, 1]; got {drift_share!r}.")
    if not isinstance(min_samples, int) or min_samples < 1:
        raise InvalidInputError(f"`min_samples` must be an int >= 1; got {min_samples!r}.")
    if missing not in ("drop", "bin"):
        raise InvalidInputError(f"`missing` must be 'drop' or 'bin'; got {missing!r}.")
    if n_jobs is not None and (not isinstance(n_jobs, int) or n_jobs < 1):
        raise InvalidInputError(f"`n_jobs` must be an int >= 1; got {n_jobs!r}.")
    cat = frozenset(categorical or ())
    reference = load_if_profile(reference)
    cur_frame = as_frame(current, what="current")
    refs: dict[str, ColumnProfile | Callable[[], ColumnProfile]]
    if isinstance(reference, Profile):
        where, available = "in the reference profile", list(reference.columns)
        names = available if columns is None else list(columns)
        check_columns(names, available, what="`columns`", where=where)
        refs = {n: reference.columns[n] for n in names}
        ref_rows = reference.n_rows
    else:
        ref_frame = as_frame(reference, columns=columns, what="reference")
        where, available = "in the reference data", ref_frame.available
        if columns is None:
            names = [n for n in ref_frame.names if ref_frame.kind(n) != "unsupported"]
        else:
            names = check_columns(columns, available, what="`columns`", where=where)

        def lazy(name: str) -> Callable[[], ColumnProfile]:
            # Raw reference columns are profiled exactly, inside the worker, one at a time.
            return lambda: profile_column(
                ref_frame, name, categorical=name in cat, bins=bins, max_exact=2**62, k=8,
                max_categories=2**62,
            )  # fmt: skip

        refs = {n: lazy(n) for n in names}
        ref_rows = ref_frame.n_rows
    if not names:
        raise InvalidInputError("there are no columns to compare (none of a supported type).")
    check_columns(sorted(cat), available, what="`categorical`", where=where)
    check_columns(
        sorted(cat), names, what="`categorical`", where="compared", listing="compared columns"
    )
    method_map = {
        k: _normalize_method(str(v), k) for k, v in _per_column(methods, names, "methods").items()
    }
    threshold_map = _per_column(thresholds, names, "thresholds")
    for k, v in threshold_map.items():
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise InvalidInputError(f"threshold for {k!r} must be a finite float >= 0; got {v!r}.")
    opts = _Options(method_map, threshold_map, cat, min_samples, missing, bins)
    workers = n_jobs or min(4, os.cpu_count() or 1)
    if workers == 1 or len(names) == 1:
        results = [_column(n, refs[n], cur_frame, opts) for n in names]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda n: _column(n, refs[n], cur_frame, opts), names))
    # Columns the current data has but the reference lacks; with an explicit `columns=` selection the
    # user chose what to compare, so nothing else is "extra".
    extra = tuple(n for n in cur_frame.names if n not in refs) if columns is None else ()
    return DriftReport(
        {c.name: c for c in results}, float(drift_share), ref_rows, cur_frame.n_rows, extra
    )
