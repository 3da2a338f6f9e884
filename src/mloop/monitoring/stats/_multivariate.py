"""Multivariate drift: kernel MMD with a permutation test, and a domain classifier's ROC AUC."""

from __future__ import annotations

import numpy as np

from mloop.errors import InvalidInputError

__all__ = ["domain_classifier_auc", "mmd"]


def _as_2d(x: object, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"`{name}` must be a numeric 2-D array ({exc}).") from exc
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InvalidInputError(f"`{name}` must be 1-D or 2-D; got shape {arr.shape}.")
    return arr


def _pair(reference: object, current: object) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_2d(reference, "reference"), _as_2d(current, "current")
    if x.shape[1] != y.shape[1]:
        raise InvalidInputError(
            f"`reference` and `current` must have the same number of columns; "
            f"got {x.shape[1]} and {y.shape[1]}."
        )
    return x, y


def _subsample(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    if x.shape[0] <= k:
        return x
    return x[np.sort(rng.choice(x.shape[0], size=k, replace=False))]


def mmd(
    reference: object,
    current: object,
    *,
    n_permutations: int = 200,
    bandwidth: float | None = None,
    max_samples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Maximum mean discrepancy with an RBF kernel and a permutation p-value.

    The statistic is the unbiased estimate of MMD² with kernel ``exp(-|x - y|² / (2 h²))``; ``h`` is
    the median pairwise Euclidean distance of the pooled sample (the median heuristic) unless given.
    The p-value counts the observed split among the permutations,
    ``(1 + #{permuted statistic >= observed}) / (1 + n_permutations)``, so it is never 0.

    Parameters
    ----------
    reference, current : array-like, shape (n_samples, n_features) or (n_samples,)
        Rows with a non-finite value are left out.
    n_permutations : int, default 200
        Number of random relabellings of the pooled sample.
    bandwidth : float, optional
        Kernel bandwidth ``h``; the median heuristic by default.
    max_samples : int, default 1000
        Each sample is randomly subsampled (without replacement) to at most this many rows; the
        kernel matrix is ``(2 * max_samples)²``.
    seed : int, default 0
        Seed of ``np.random.default_rng`` for subsampling and permutations.

    Returns
    -------
    tuple of float
        ``(mmd2, p_value)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> stat, p = mmd(rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 1.0)
    >>> p < 0.05
    True
    """
    if n_permutations < 1:
        raise InvalidInputError(f"`n_permutations` must be an int >= 1; got {n_permutations}.")
    x, y = _pair(reference, current)
    x = x[np.all(np.isfinite(x), axis=1)]
    y = y[np.all(np.isfinite(y), axis=1)]
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise InvalidInputError("MMD needs at least 2 finite rows in each sample.")
    rng = np.random.default_rng(seed)
    x, y = _subsample(x, max_samples, rng), _subsample(y, max_samples, rng)
    m, n = x.shape[0], y.shape[0]
    z = np.vstack((x, y))
    sq_norms = np.einsum("ij,ij->i", z, z)
    d2 = sq_norms[:, None] + sq_norms[None, :] - 2.0 * (z @ z.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    if bandwidth is None:
        h = float(np.median(np.sqrt(d2[np.triu_indices(m + n, k=1)])))
        h = h if h > 0 else 1.0
    elif not bandwidth > 0:
        raise InvalidInputError(f"`bandwidth` must be a float > 0; got {bandwidth}.")
    else:
        h = float(bandwidth)
    kernel = np.exp(-d2 / (2.0 * h * h))
    del d2
    labels = np.empty((m + n, n_permutations + 1))
    labels[:, 0] = np.arange(m + n) < m
    for j in range(1, n_permutations + 1):
        labels[:, j] = rng.permutation(m + n) < m
    k_labels = kernel @ labels
    a_k_a = np.einsum("ij,ij->j", labels, k_labels)
    row_sums = kernel.sum(axis=1)
    a_k_1 = labels.T @ row_sums
    total = row_sums.sum()
    b_k_b = total - 2.0 * a_k_1 + a_k_a
    a_k_b = a_k_1 - a_k_a
    # The kernel diagonal is exp(0) = 1: subtracting m (n) leaves the sums over i != j.
    stats = (a_k_a - m) / (m * (m - 1)) + (b_k_b - n) / (n * (n - 1)) - 2.0 * a_k_b / (m * n)
    observed = float(stats[0])
    p_value = (1 + int(np.count_nonzero(stats[1:] >= observed))) / (1 + n_permutations)
    return observed, float(p_value)


def domain_classifier_auc(
    reference: object,
    current: object,
    *,
    cv: int = 5,
    max_samples: int = 50_000,
    max_iter: int = 100,
    seed: int = 0,
) -> float:
    """Cross-validated ROC AUC of a classifier trained to tell current rows from reference rows.

    0.5 means the samples are indistinguishable; values near 1 mean strong multivariate drift. The
    classifier is scikit-learn's ``HistGradientBoostingClassifier`` (missing values are handled
    natively, infinities are treated as missing), scored with stratified, shuffled ``cv``-fold
    cross-validation.

    Parameters
    ----------
    reference, current : array-like, shape (n_samples, n_features) or (n_samples,)
        Numeric features.
    cv : int, default 5
        Number of folds.
    max_samples : int, default 50000
        Each sample is randomly subsampled to at most this many rows.
    max_iter : int, default 100
        Boosting iterations of the classifier.
    seed : int, default 0
        Seed for subsampling, fold assignment and the classifier.

    Returns
    -------
    float
        Mean ROC AUC over the folds.

    Raises
    ------
    ImportError
        When scikit-learn is not installed (``pip install 'mloop[sklearn]'``).
    """
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import StratifiedKFold, cross_val_score
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "domain_classifier_auc needs scikit-learn: pip install 'mloop[sklearn]'"
        ) from exc
    x, y = _pair(reference, current)
    if cv < 2:
        raise InvalidInputError(f"`cv` must be an int >= 2; got {cv}.")
    if min(x.shape[0], y.shape[0]) < cv:
        raise InvalidInputError(f"each sample needs at least `cv` = {cv} rows.")
    rng = np.random.default_rng(seed)
    x, y = _subsample(x, max_samples, rng), _subsample(y, max_samples, rng)
    features = np.vstack((x, y))
    features[~np.isfinite(features)] = np.nan
    target = np.r_[np.zeros(x.shape[0]), np.ones(y.shape[0])]
    model = HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed)
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    scores = cross_val_score(model, features, target, cv=folds, scoring="roc_auc")
    return float(np.mean(scores))
