"""Helpers that behavioural tests call: invariance, directional expectations, minimum functionality
(Ribeiro et al. 2020, "Beyond Accuracy: Behavioral Testing of NLP Models with CheckList"), and
:func:`skip`.

Each helper predicts, counts the rows that break the expectation and raises
:class:`ExpectationFailed` (an ``AssertionError``) when more break it than allowed; the message says
how many, out of how many, and shows up to five example rows. Passing or not, it returns (or
carries) an :class:`ExpectationResult` with the numbers, and the test runner records every one it
sees in the check's details.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mloop.errors import InvalidInputError

__all__ = [
    "ExpectationFailed",
    "ExpectationResult",
    "Skip",
    "expect_direction",
    "expect_invariance",
    "expect_min_functionality",
    "skip",
]

_EXAMPLES = 5
_EPS = 1e-9  # shares times row counts are compared with this slack (0.1 * 30 is 3.0000000000000004)


class Skip(Exception):
    """Raised by :func:`skip`: the test does not apply to this model (the check reports ``skip``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def skip(reason: str) -> None:
    """Stop the current behavioural test and report it as skipped, with ``reason``.

    Examples
    --------
    >>> def test_probabilities_sum_to_one(model, data):                          # doctest: +SKIP
    ...     if not model.has_predict_proba:
    ...         skip("the model gives no probabilities")
    """
    raise Skip(str(reason))


@dataclass(frozen=True)
class ExpectationResult:
    """What one expectation found.

    Attributes
    ----------
    expectation : str
        ``"invariance"``, ``"direction"`` or ``"min_functionality"``.
    rows : int
        Rows (or cases) checked.
    violations : int
        Rows that broke the expectation.
    allowed : int
        The most violations that still pass.
    message : str
        The sentence a reviewer reads (the assertion message when it failed).
    examples : tuple of mappings
        Up to five violating rows: ``index`` and ``before``/``after`` (``expected``/``predicted``
        for minimum functionality).
    """

    expectation: str
    rows: int
    violations: int
    allowed: int
    message: str
    examples: tuple[Mapping[str, Any], ...] = ()

    @property
    def passed(self) -> bool:
        return self.violations <= self.allowed

    @property
    def share(self) -> float:
        """Violations as a share of the rows checked."""
        return self.violations / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: what the check report stores."""
        return {
            "expectation": self.expectation,
            "rows": self.rows,
            "violations": self.violations,
            "allowed": self.allowed,
            "passed": self.passed,
            "message": self.message,
            "examples": [dict(e) for e in self.examples],
        }


class ExpectationFailed(AssertionError):
    """An expectation broken on more rows than allowed; ``result`` holds the numbers."""

    def __init__(self, result: ExpectationResult) -> None:
        super().__init__(result.message)
        self.result = result


_RECORDED: ContextVar[list[ExpectationResult] | None] = ContextVar(
    "mloop_gates_expectations", default=None
)


@contextlib.contextmanager
def recording() -> Iterator[list[ExpectationResult]]:
    """Collect every :class:`ExpectationResult` the helpers produce inside the block."""
    results: list[ExpectationResult] = []
    token = _RECORDED.set(results)
    try:
        yield results
    finally:
        _RECORDED.reset(token)


def _conclude(result: ExpectationResult) -> ExpectationResult:
    recorded = _RECORDED.get()
    if recorded is not None:
        recorded.append(result)
    if not result.passed:
        raise ExpectationFailed(result)
    return result


# ----------------------------------------------------------------------------------- helpers


def expect_invariance(
    model: Any,
    data: Any,
    perturb: Callable[[Any], Any],
    *,
    max_changed_share: float = 0.0,
    method: str = "predict",
    tolerance: float = 0.0,
) -> ExpectationResult:
    """Predictions must not change when ``perturb`` is applied to the rows.

    Parameters
    ----------
    model : ModelUnderTest
        Or any object with the ``method``.
    data : DataFrame
        The rows; ``perturb`` receives a copy, so it may change it in place (and return it).
    perturb : callable
        ``perturb(frame) -> frame`` with the same rows, e.g. a customer's name replaced.
    max_changed_share : float, default 0.0
        The share of rows whose prediction may change (0: none may).
    method : str, default "predict"
        The model method whose output must not change (e.g. ``"predict_proba"``).
    tolerance : float, default 0.0
        Numeric outputs differing by at most this much count as unchanged.

    Returns
    -------
    ExpectationResult

    Raises
    ------
    ExpectationFailed
        More rows changed than ``max_changed_share`` allows (an ``AssertionError``).
    InvalidInputError
        ``perturb`` did not return the same number of rows, or an option is out of range.

    Examples
    --------
    >>> def test_name_does_not_matter(model, data):                              # doctest: +SKIP
    ...     expect_invariance(model, data, lambda df: df.assign(name="Alex"))
    """
    _share_arg("max_changed_share", max_changed_share)
    tol = _tolerance_arg(tolerance, allow_negative=False)
    rows = _row_count(data)
    before = _outputs(model, data, method)
    after = _outputs(model, _perturbed(data, perturb, rows), method)
    changed = ~_same(before, after, tol)
    allowed = math.floor(max_changed_share * rows + _EPS)
    n = int(changed.sum())
    examples = _examples(data, changed, before, after, ("before", "after"))
    limit = "none may" if allowed == 0 else f"at most {allowed:,} ({_pct(max_changed_share)}) may"
    message = (
        f"Invariance {'held' if n <= allowed else 'violated'}: {method} changed on {n:,} of "
        f"{rows:,} rows ({_pct(n / rows)}) when the perturbation was applied; {limit} change."
        + _listing(examples, ("before", "after"))
    )
    return _conclude(ExpectationResult("invariance", rows, n, allowed, message, examples))


def expect_direction(
    model: Any,
    data: Any,
    perturb: Callable[[Any], Any],
    *,
    direction: Literal["increase", "decrease"] = "increase",
    output: int | Literal["predict"] = "predict",
    min_share: float = 1.0,
    tolerance: float = 0.0,
) -> ExpectationResult:
    """The output must not move against ``direction`` when ``perturb`` is applied.

    ``direction="increase"`` means the output may rise or stay, but must not fall by more than
    ``tolerance`` (e.g. raising income must not lower the approval probability); ``"decrease"``
    the reverse. A negative ``tolerance`` demands a move of at least ``-tolerance`` in
    ``direction``. A row whose output is NaN before or after counts as a violation.

    Parameters
    ----------
    model : ModelUnderTest
    data : DataFrame
    perturb : callable
        ``perturb(frame) -> frame`` with the same rows (it receives a copy).
    direction : {"increase", "decrease"}, default "increase"
    output : int or "predict", default "predict"
        ``"predict"``: the prediction itself (a regressor's value); an int: that column of
        ``predict_proba`` (``1`` for the positive class of a binary classifier).
    min_share : float, default 1.0
        The share of rows that must comply.
    tolerance : float, default 0.0

    Returns
    -------
    ExpectationResult

    Raises
    ------
    ExpectationFailed
        Fewer than ``min_share`` of the rows complied.
    InvalidInputError
        A bad option, an output that is not numeric, or ``perturb`` changed the row count.

    Examples
    --------
    >>> def test_income_helps(model, data):                                      # doctest: +SKIP
    ...     expect_direction(model, data, lambda df: df.assign(income=df.income * 1.2),
    ...                      direction="increase", output=1)
    """
    if direction not in ("increase", "decrease"):
        raise InvalidInputError(f"`direction` must be 'increase' or 'decrease'; got {direction!r}.")
    _share_arg("min_share", min_share)
    tol = _tolerance_arg(tolerance, allow_negative=True)
    rows = _row_count(data)
    before = _numeric_output(model, data, output)
    after = _numeric_output(model, _perturbed(data, perturb, rows), output)
    with np.errstate(invalid="ignore"):
        ok = after >= before - tol if direction == "increase" else after <= before + tol
    wrong = ~ok
    allowed = rows - math.ceil(min_share * rows - _EPS)
    n = int(wrong.sum())
    what = "the prediction" if output == "predict" else f"predict_proba column {output}"
    against = "fell" if direction == "increase" else "rose"
    examples = _examples(data, wrong, before, after, ("before", "after"))
    tol_text = f", tolerance {tolerance:g}" if tolerance else ""
    message = (
        f"Directional expectation ({what} should {direction}) "
        f"{'held' if n <= allowed else 'violated'}: it {against} on {n:,} of {rows:,} rows "
        f"({_pct(n / rows)}) when the perturbation was applied; at least {_pct(min_share)} of "
        f"rows must comply{tol_text}, so at most {allowed:,} may not."
        + _listing(examples, ("before", "after"))
    )
    return _conclude(ExpectationResult("direction", rows, n, allowed, message, examples))


def expect_min_functionality(
    model: Any,
    cases: Any,
    expected: Sequence[Any] | np.ndarray,
    *,
    min_accuracy: float = 1.0,
    method: str = "predict",
    tolerance: float = 0.0,
) -> ExpectationResult:
    """A small set of cases with known answers must be answered correctly.

    Parameters
    ----------
    model : ModelUnderTest
    cases : DataFrame
        The inputs, one row per case.
    expected : sequence
        The right answer for each case, in order.
    min_accuracy : float, default 1.0
        The share of cases that must be answered correctly.
    method : str, default "predict"
    tolerance : float, default 0.0
        For numeric answers: a prediction within this distance of the expected value is correct.

    Returns
    -------
    ExpectationResult

    Raises
    ------
    ExpectationFailed
        Fewer than ``min_accuracy`` of the cases were answered correctly.
    InvalidInputError
        ``expected`` does not hold one answer per case, or an option is out of range.

    Examples
    --------
    >>> def test_obvious_cases(model):                                           # doctest: +SKIP
    ...     cases = pd.DataFrame({"income": [1e6, 0.0], "debt": [0.0, 1e6]})
    ...     expect_min_functionality(model, cases, ["approve", "decline"])
    """
    _share_arg("min_accuracy", min_accuracy)
    tol = _tolerance_arg(tolerance, allow_negative=False)
    rows = _row_count(cases, what="cases")
    want = np.asarray(expected)
    got = _outputs(model, cases, method)
    if got.ndim == 2 and got.shape[1] == 1:
        got = got[:, 0]
    if want.shape != got.shape:
        raise InvalidInputError(
            f"`expected` must hold one answer per case ({rows:,}, shaped like the predictions "
            f"{got.shape}); got shape {want.shape}."
        )
    wrong = ~_same(want, got, tol)
    allowed = rows - math.ceil(min_accuracy * rows - _EPS)
    n = int(wrong.sum())
    examples = _examples(cases, wrong, want, got, ("expected", "predicted"))
    message = (
        f"Minimum functionality {'met' if n <= allowed else 'not met'}: {n:,} of {rows:,} cases "
        f"answered wrongly (accuracy {_pct((rows - n) / rows)}, at least {_pct(min_accuracy)} "
        "required)." + _listing(examples, ("expected", "predicted"))
    )
    return _conclude(ExpectationResult("min_functionality", rows, n, allowed, message, examples))


# ---------------------------------------------------------------------------------- internals


def _share_arg(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0.0 <= float(value) <= 1.0
    ):
        raise InvalidInputError(f"`{name}` must be a number in [0, 1]; got {value!r}.")


def _tolerance_arg(value: Any, *, allow_negative: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (not allow_negative and value < 0):
        bound = "a finite number" if allow_negative else "a finite number >= 0"
        raise InvalidInputError(f"`tolerance` must be {bound}; got {value!r}.")
    return float(value)


def _row_count(data: Any, *, what: str = "data") -> int:
    try:
        rows = len(data)
    except TypeError:
        raise InvalidInputError(
            f"`{what}` must be rows (a DataFrame or array); got {type(data).__name__}."
        ) from None
    if rows == 0:
        raise InvalidInputError(f"`{what}` has no rows; an expectation on no rows proves nothing.")
    return rows


def _perturbed(data: Any, perturb: Callable[[Any], Any], rows: int) -> Any:
    if not callable(perturb):
        raise InvalidInputError(
            f"`perturb` must be a function frame -> frame; got {type(perturb).__name__}."
        )
    copy = data.copy() if hasattr(data, "copy") else data
    out = perturb(copy)
    if out is None:
        raise InvalidInputError(
            "`perturb` returned None; it must return the perturbed frame (return it after "
            "changing it in place)."
        )
    if _safe_len(out) != rows:
        raise InvalidInputError(
            f"`perturb` must return the same {rows:,} rows it was given; got {_safe_len(out)}."
        )
    return out


def _safe_len(value: Any) -> int | None:
    try:
        return len(value)
    except TypeError:
        return None


def _outputs(model: Any, data: Any, method: str) -> np.ndarray:
    fn = getattr(model, method, None)
    if not callable(fn):
        raise InvalidInputError(
            f"The model ({type(model).__name__}) has no method {method!r}; try 'predict' or "
            "'predict_proba'."
        )
    return np.asarray(fn(data))


def _numeric_output(model: Any, data: Any, output: Any) -> np.ndarray:
    if output == "predict" and isinstance(output, str):
        values = _outputs(model, data, "predict")
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            raise InvalidInputError(
                f"predict returns {values.shape[1:]} values per row; pass output=<column index> "
                "to compare one predict_proba column."
            )
    elif isinstance(output, int) and not isinstance(output, bool):
        proba = _outputs(model, data, "predict_proba")
        if proba.ndim != 2 or not -proba.shape[1] <= output < proba.shape[1]:
            raise InvalidInputError(
                f"`output` {output} is not a column of predict_proba's output (shape "
                f"{proba.shape})."
            )
        values = proba[:, output]
    else:
        raise InvalidInputError(
            f"`output` must be 'predict' or a predict_proba column index; got {output!r}."
        )
    if values.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"A directional expectation needs numeric outputs; got {values.dtype} values."
        )
    return values.astype(np.float64)


def _same(a: np.ndarray, b: np.ndarray, tol: float) -> np.ndarray:
    """Per row: whether ``a`` and ``b`` agree (numbers within ``tol``, NaN equal to NaN)."""
    if a.shape != b.shape:
        raise InvalidInputError(
            f"The outputs before and after have different shapes: {a.shape} and {b.shape}."
        )
    if a.dtype.kind in "biuf" and b.dtype.kind in "biuf":
        x, y = a.astype(np.float64), b.astype(np.float64)
        with np.errstate(invalid="ignore"):
            same = (x == y) | (np.abs(x - y) <= tol) | (np.isnan(x) & np.isnan(y))
    else:
        same = np.asarray(a.astype(object) == b.astype(object), dtype=bool)
    if same.ndim > 1:
        same = same.reshape(len(same), -1).all(axis=1)
    return np.asarray(same, dtype=bool)


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars and arrays become Python numbers and lists."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _examples(
    data: Any, mask: np.ndarray, first: np.ndarray, second: np.ndarray, keys: tuple[str, str]
) -> tuple[Mapping[str, Any], ...]:
    where = np.flatnonzero(mask)[:_EXAMPLES]
    index = getattr(data, "index", None)
    out = []
    for i in where:
        label = _plain(index[i]) if index is not None else int(i)
        out.append({"index": label, keys[0]: _plain(first[i]), keys[1]: _plain(second[i])})
    return tuple(out)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def _listing(examples: tuple[Mapping[str, Any], ...], keys: tuple[str, str]) -> str:
    if not examples:
        return ""
    rows = "; ".join(
        f"{e['index']}: {_short(e[keys[0]])} -> {_short(e[keys[1]])}" for e in examples
    )
    return f" Examples (index: {keys[0]} -> {keys[1]}): {rows}."


def _pct(share: float) -> str:
    pct = 100.0 * share
    if pct in (0.0, 100.0) or pct >= 10:
        return f"{pct:.0f}%" if float(round(pct, 1)).is_integer() else f"{pct:.1f}%"
    return f"{pct:.2g}%"
