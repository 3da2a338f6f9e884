"""Log a scikit-learn estimator's params, fit time and validation scores in one call.

scikit-learn is imported when :func:`log_sklearn` runs, never at import time of mloop
(``pip install "mloop[sklearn]"``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

from mloop.errors import InvalidInputError

from ._optional import require

__all__ = ["MAX_PARAM_VALUE_LENGTH", "TRUNCATION_MARKER", "log_sklearn", "sklearn_params"]

#: MLflow's limit on a param value, enforced by every mloop store.
MAX_PARAM_VALUE_LENGTH = 6000
#: Appended to a param value cut to :data:`MAX_PARAM_VALUE_LENGTH` characters.
TRUNCATION_MARKER = "...[truncated]"

Scoring: TypeAlias = str | Sequence[str] | Mapping[str, str | Callable[..., Any]]


class _Run(Protocol):
    summary: Any

    def log(self, metrics: dict[str, float], step: int | None = None) -> Any: ...
    def log_params(self, params: dict[str, Any]) -> Any: ...
    def set_tags(self, tags: dict[str, Any]) -> Any: ...


def log_sklearn(
    run: _Run,
    estimator: Any,
    *,
    X_train: Any = None,
    y_train: Any = None,
    X_val: Any = None,
    y_val: Any = None,
    fit: bool = True,
    scoring: Scoring | None = None,
    prefix: str = "",
) -> tuple[Any, dict[str, float]]:
    """Log a scikit-learn estimator into ``run``: params, tags, fit time and validation scores.

    In order: params (see :func:`sklearn_params`) and the tags ``estimator_class`` (full import
    path), ``estimator_name`` and ``sklearn_version`` are logged first, so they are on the run even
    if fitting fails; then the estimator is fitted on ``X_train, y_train`` (when ``fit``) and
    ``fit_time_s`` is logged; then, when ``X_val`` and ``y_val`` are given, validation scores are
    computed and logged both as metrics and into ``run.summary``.

    Parameters
    ----------
    run : Run
        An active run (anything with ``log``, ``log_params``, ``set_tags`` and a dict-like
        ``summary``).
    estimator : estimator
        A scikit-learn estimator or pipeline (anything with ``get_params``).
    X_train, y_train : array-like, optional
        Training data; ``X_train`` is required when ``fit`` is true (``y_train`` may be None for
        unsupervised estimators).
    X_val, y_val : array-like, optional
        Validation data; give both to compute scores.
    fit : bool, default True
        Fit ``estimator`` (in place, as scikit-learn does) before scoring. With ``fit=False`` the
        estimator must already be fitted if scores are requested.
    scoring : str, sequence of str or mapping, optional
        What to compute on the validation data. Default, by estimator type: classifiers get
        ``accuracy``, ``f1`` (weighted) and, when ``predict_proba`` is available, ``roc_auc``
        (one-vs-rest, weighted, for more than two classes); regressors get ``r2``, ``mae`` and
        ``rmse``; other estimators with a ``score`` method get ``score``. Otherwise scikit-learn
        scorer names (``"balanced_accuracy"``, ``"neg_log_loss"``, ...) or a mapping of metric name
        to scorer name or scorer callable ``scorer(estimator, X, y) -> float``. Scorer values are
        logged as scikit-learn returns them (``neg_*`` scorers are negative).
    prefix : str, default ""
        Prepended to every param, tag, metric and summary key, to log several models into one run
        (e.g. ``prefix="rf/"``).

    Returns
    -------
    estimator : estimator
        The same object, fitted when ``fit`` is true.
    scores : dict of str to float
        The validation scores, keyed as logged: ``f"{prefix}val_{name}"``. Empty when no
        validation data was given.

    Raises
    ------
    InvalidInputError
        ``fit=True`` without ``X_train``; only one of ``X_val`` / ``y_val``; an unknown scorer
        name; scores requested from an estimator that is not fitted.
    MissingDependencyError
        scikit-learn is not installed.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> with mloop.start_run(project="iris") as run:  # doctest: +SKIP
    ...     model, scores = log_sklearn(
    ...         run, LogisticRegression(max_iter=500), X_train=X[::2], y_train=y[::2],
    ...         X_val=X[1::2], y_val=y[1::2])
    >>> sorted(scores)  # doctest: +SKIP
    ['val_accuracy', 'val_f1', 'val_roc_auc']
    """
    sklearn = require("sklearn", pip="scikit-learn", feature="log_sklearn")
    if not hasattr(estimator, "get_params"):
        raise InvalidInputError(
            "`estimator` must be a scikit-learn estimator (with `get_params`); "
            f"got {type(estimator).__name__}."
        )
    if fit and X_train is None:
        raise InvalidInputError(
            "`X_train` is required when `fit=True`; pass it, or `fit=False` for a fitted estimator."
        )
    if (X_val is None) != (y_val is None):
        raise InvalidInputError(
            f"`X_val` and `y_val` go together; got only `{'X_val' if y_val is None else 'y_val'}`."
        )
    scorers = _resolve_scoring(scoring) if scoring is not None else None

    cls = type(estimator)
    run.log_params({prefix + k: v for k, v in sklearn_params(estimator).items()})
    run.set_tags(
        {
            f"{prefix}estimator_class": f"{cls.__module__}.{cls.__qualname__}",
            f"{prefix}estimator_name": cls.__name__,
            f"{prefix}sklearn_version": sklearn.__version__,
        }
    )

    metrics: dict[str, float] = {}
    if fit:
        start = time.perf_counter()
        if y_train is None:
            estimator.fit(X_train)
        else:
            estimator.fit(X_train, y_train)
        metrics[f"{prefix}fit_time_s"] = time.perf_counter() - start

    scores: dict[str, float] = {}
    if X_val is not None:
        _check_fitted(estimator)
        raw = (
            _default_scores(estimator, X_val, y_val)
            if scorers is None
            else {name: scorer(estimator, X_val, y_val) for name, scorer in scorers.items()}
        )
        scores = {f"{prefix}val_{name}": float(value) for name, value in raw.items()}
        metrics.update(scores)

    if metrics:
        run.log(metrics)
        remember = getattr(run.summary, "remember", None)
        if (
            remember is not None
        ):  # mloop's Run: the values are already metric points, don't write twice
            remember(metrics)
        else:
            for key, value in metrics.items():
                run.summary[key] = value
    return estimator, scores


def sklearn_params(estimator: Any) -> dict[str, str]:
    """Flatten an estimator's params into ``{name: str}``, as :func:`log_sklearn` logs them.

    Nested estimators (pipeline steps, a meta-estimator's ``estimator``) contribute their own
    params under scikit-learn's ``step__param`` names (``get_params(deep=True)``); the estimator
    objects themselves are shown by class name. Callables are shown by import path (not by a
    ``repr`` with a memory address, which would differ at every run). Values longer than
    :data:`MAX_PARAM_VALUE_LENGTH` characters are cut and end with :data:`TRUNCATION_MARKER`.

    Parameters
    ----------
    estimator : estimator
        Anything with scikit-learn's ``get_params``.

    Returns
    -------
    dict of str to str
        Param name to value, sorted by name.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.linear_model import LogisticRegression
    >>> params = sklearn_params(make_pipeline(StandardScaler(), LogisticRegression(C=0.5)))
    >>> params["logisticregression__C"], params["logisticregression"]
    ('0.5', 'LogisticRegression')
    """
    try:
        params = estimator.get_params(deep=True)
    except TypeError:
        # A few third-party estimators implement get_params() without `deep`.
        params = estimator.get_params()
    return {
        str(k): _truncate(v if isinstance(v, str) else _render(v))
        for k, v in sorted(params.items())
    }


def _render(value: Any) -> str:
    if hasattr(value, "get_params") and not isinstance(value, type):
        return type(value).__name__
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_render(v) for v in value)
        if isinstance(value, tuple):
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        return f"[{inner}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        # Inside a container a string keeps its quotes, so ('a', 'b') reads like Python.
        return repr(value)
    if callable(value) and hasattr(value, "__qualname__"):
        module = getattr(value, "__module__", None)
        return f"{module}.{value.__qualname__}" if module else value.__qualname__
    return str(value)


def _truncate(text: str) -> str:
    if len(text) <= MAX_PARAM_VALUE_LENGTH:
        return text
    return text[: MAX_PARAM_VALUE_LENGTH - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER


def _resolve_scoring(scoring: Scoring) -> dict[str, Callable[..., Any]]:
    from sklearn.metrics import get_scorer

    if isinstance(scoring, str):
        items: list[tuple[str, Any]] = [(scoring, scoring)]
    elif isinstance(scoring, Mapping):
        items = list(scoring.items())
    elif isinstance(scoring, Sequence):
        items = [(s, s) for s in scoring]
    else:
        raise InvalidInputError(
            "`scoring` must be a scorer name, a list of names or a dict of name -> scorer; "
            f"got {type(scoring).__name__}."
        )
    if not items:
        raise InvalidInputError("`scoring` is empty; pass at least one scorer, or None.")
    resolved: dict[str, Callable[..., Any]] = {}
    for name, scorer in items:
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"`scoring` names must be non-empty strings; got {name!r}.")
        if isinstance(scorer, str):
            try:
                resolved[name] = get_scorer(scorer)
            except ValueError:
                raise InvalidInputError(
                    f"`scoring` has an unknown scikit-learn scorer {scorer!r}; see "
                    "sklearn.metrics.get_scorer_names() for the valid names."
                ) from None
        elif callable(scorer):
            resolved[name] = scorer
        else:
            raise InvalidInputError(
                f"`scoring[{name!r}]` must be a scorer name or a callable "
                f"scorer(estimator, X, y); got {type(scorer).__name__}."
            )
    return resolved


def _check_fitted(estimator: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise InvalidInputError(
            f"{type(estimator).__name__} is not fitted, so it cannot be scored; pass `fit=True` "
            "with `X_train`, or fit it first."
        ) from None


def _default_scores(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics as skm
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        pred = estimator.predict(X)
        scores = {
            "accuracy": skm.accuracy_score(y, pred),
            "f1": skm.f1_score(y, pred, average="weighted"),
        }
        if hasattr(estimator, "predict_proba"):
            proba = estimator.predict_proba(X)
            classes = estimator.classes_
            if len(classes) == 2:
                auc = skm.roc_auc_score(y, proba[:, 1]) if len(np.unique(y)) == 2 else math.nan
            else:
                try:
                    auc = skm.roc_auc_score(
                        y, proba, multi_class="ovr", average="weighted", labels=classes
                    )
                except ValueError:
                    # Validation labels missing a class: AUC is undefined, as for one class.
                    auc = math.nan
            if not math.isnan(auc):
                scores["roc_auc"] = auc
        return scores
    if is_regressor(estimator):
        pred = estimator.predict(X)
        return {
            "r2": skm.r2_score(y, pred),
            "mae": skm.mean_absolute_error(y, pred),
            "rmse": math.sqrt(skm.mean_squared_error(y, pred)),
        }
    if hasattr(estimator, "score"):
        return {"score": estimator.score(X, y)}
    return {}
