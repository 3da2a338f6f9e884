"""Distances between two distributions: CDF distances on raw values and binned divergences.

All functions are pure: arrays in, a float out. Non-finite values are left out of the CDF distances;
binned divergences bin numeric values on reference quantiles (see :mod:`._binning`). No function
returns NaN: a well-formed input gets its mathematical value (0, a finite number or ``inf``), an input
without one (an empty sample) an :class:`InvalidInputError`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr

from mloop.errors import InvalidInputError
from mloop.monitoring.stats._binning import Kind, MissingPolicy, distributions, probabilities
from mloop.monitoring.stats._ecdf import SortedSample, cdf_distances, finite_sorted, wasserstein1

__all__ = [
    "WASSERSTEIN_STD_FLOOR",
    "energy_distance",
    "hellinger",
    "hellinger_from_counts",
    "jensen_shannon",
    "jensen_shannon_from_counts",
    "kl_divergence",
    "kl_from_counts",
    "psi",
    "psi_from_counts",
    "total_variation",
    "tv_from_counts",
    "wasserstein",
    "wasserstein_sorted",
]

#: Normed Wasserstein divides by ``max(std(reference), WASSERSTEIN_STD_FLOOR)``, as Evidently does.
WASSERSTEIN_STD_FLOOR = 0.001


def _samples(reference: object, current: object) -> tuple[SortedSample, np.ndarray]:
    ref = finite_sorted(reference, "reference")
    cur = finite_sorted(current, "current")
    for name, arr in (("reference", ref), ("current", cur)):
        if arr.size == 0:
            raise InvalidInputError(
                f"`{name}` has no finite values; a distance needs at least one."
            )
    return SortedSample(ref), cur


def wasserstein_sorted(
    reference: SortedSample,
    current: SortedSample | np.ndarray,
    *,
    normed: bool,
    reference_std: float | None = None,
) -> float:
    """Wasserstein-1 between a reference sample and a sorted, finite current sample."""
    cur = current if isinstance(current, SortedSample) else SortedSample(current)
    dist = wasserstein1(reference, cur)
    if normed:
        std = reference.mean_std()[1] if reference_std is None else reference_std
        dist /= max(std, WASSERSTEIN_STD_FLOOR)
    return dist


def wasserstein(reference: object, current: object, *, normed: bool = False) -> float:
    """First Wasserstein (earth mover's) distance between two samples.

    Parameters
    ----------
    reference, current : array-like of float
        Samples; NaN and infinite values are left out.
    normed : bool, default False
        Divide by the reference's standard deviation (``ddof=0``), floored at 0.001, as Evidently's
        ``wasserstein`` drift method does; the result is then in reference standard deviations.

    Returns
    -------
    float
        ``scipy.stats.wasserstein_distance(reference, current)`` (divided by the std if ``normed``).

    Raises
    ------
    InvalidInputError
        When a sample has no finite value.

    Examples
    --------
    >>> wasserstein([0.0, 1.0, 2.0], [1.0, 2.0, 3.0])
    1.0
    """
    ref, cur = _samples(reference, current)
    return wasserstein_sorted(ref, cur, normed=normed)


def energy_distance(reference: object, current: object) -> float:
    """Energy distance between two samples, ``sqrt(2) * L2 distance of their CDFs``.

    Equals ``scipy.stats.energy_distance``; NaN and infinite values are left out. Raises
    :class:`InvalidInputError` when a sample has no finite value.

    Examples
    --------
    >>> round(energy_distance([0.0, 1.0], [0.0, 1.0]), 6)
    0.0
    """
    ref, cur = _samples(reference, current)
    return float(np.sqrt(2.0) * cdf_distances(ref, cur, which=("l2",))["l2"])


def _log_base(base: float | None) -> float:
    if base is None:
        return 1.0
    if not base > 1:
        raise InvalidInputError(f"`base` must be a float > 1; got {base}.")
    return float(np.log(base))


def jensen_shannon_from_counts(
    reference_counts: np.ndarray,
    current_counts: np.ndarray,
    *,
    base: float | None = None,
    smoothing: float = 0.0,
) -> float:
    """Jensen-Shannon distance between two aligned count vectors."""
    p, q = _shares(reference_counts, current_counts, smoothing)
    m = (p + q) / 2.0  # > 0 wherever p or q is: every term is finite
    js = float(np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))) / _log_base(base)
    return float(np.sqrt(max(js, 0.0) / 2.0))


def psi_from_counts(
    reference_counts: np.ndarray, current_counts: np.ndarray, *, smoothing: float = 0.5
) -> float:
    """Population stability index between two aligned count vectors."""
    p, q = _shares(reference_counts, current_counts, smoothing)
    _require_support(p, q, "psi")
    # A bin empty on both sides adds nothing (its term tends to 0); 0 * log(0 / 0) would be NaN.
    seen = p > 0
    p, q = p[seen], q[seen]
    return float(np.sum((q - p) * np.log(q / p)))


def kl_from_counts(
    reference_counts: np.ndarray,
    current_counts: np.ndarray,
    *,
    base: float | None = None,
    smoothing: float = 0.5,
) -> float:
    """``KL(reference || current)`` between two aligned count vectors."""
    p, q = _shares(reference_counts, current_counts, smoothing)
    # rel_entr is 0 where p is 0 and inf where only q is (so is the sum): never NaN
    return float(np.sum(rel_entr(p, q))) / _log_base(base)


def hellinger_from_counts(
    reference_counts: np.ndarray, current_counts: np.ndarray, *, smoothing: float = 0.0
) -> float:
    """Hellinger distance (in [0, 1]) between two aligned count vectors."""
    p, q = _shares(reference_counts, current_counts, smoothing)
    return float(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)) / np.sqrt(2.0))


def tv_from_counts(
    reference_counts: np.ndarray, current_counts: np.ndarray, *, smoothing: float = 0.0
) -> float:
    """Total variation distance (in [0, 1]) between two aligned count vectors."""
    p, q = _shares(reference_counts, current_counts, smoothing)
    return float(0.5 * np.sum(np.abs(p - q)))


def _shares(
    reference_counts: np.ndarray, current_counts: np.ndarray, smoothing: float
) -> tuple[np.ndarray, np.ndarray]:
    """Both count vectors as (smoothed) shares; a side with nothing counted is refused.

    Without this check, smoothing would turn an empty sample into a uniform distribution and a
    distance between "nothing" and anything would come out as a plausible number.
    """
    for name, counts in (("reference", reference_counts), ("current", current_counts)):
        if not np.sum(counts) > 0:
            raise InvalidInputError(
                f"`{name}` has no counted values (empty, or all missing); a distance needs at "
                "least one on each side."
            )
    return probabilities(reference_counts, smoothing), probabilities(current_counts, smoothing)


def _require_support(p: np.ndarray, q: np.ndarray, name: str) -> None:
    if np.any((p == 0) != (q == 0)):
        raise InvalidInputError(
            f"{name} is infinite when a bin is empty on one side only; use `smoothing` > 0."
        )


_DOC_INPUTS = """
    reference, current : array-like
        Raw numeric values, labels, or aligned count vectors (see ``kind``).
    kind : {"numeric", "categorical", "counts"}, optional
        Numeric values are binned on reference quantiles (``bins`` bins, open-ended first and last
        bins); labels are counted over the union of both samples' labels; counts are used as given.
        By default numeric when both inputs have a numeric dtype, else categorical.
    bins : int, default 10
        Number of reference-quantile bins for numeric input.
    missing : {"drop", "bin"}, default "drop"
        Leave missing values out, or give them an explicit bin."""

_DOC_RAISES = """
    Raises
    ------
    InvalidInputError
        When a sample has no counted values (empty, or all missing with ``missing="drop"``): there
        is no distribution to compare, whatever the ``smoothing``."""


def jensen_shannon(
    reference: object,
    current: object,
    *,
    kind: Kind | None = None,
    bins: int = 10,
    missing: MissingPolicy = "drop",
    base: float | None = None,
    smoothing: float = 0.0,
) -> float:
    """Jensen-Shannon distance (the square root of the divergence), natural log by default.

        Equals ``scipy.spatial.distance.jensenshannon(reference_counts, current_counts, base)``.

        Parameters
        ----------{inputs}
        base : float, optional
            Logarithm base; ``None`` is the natural log (range [0, sqrt(ln 2)]); 2 gives [0, 1].
        smoothing : float, default 0
            Pseudo-count added to every bin of both sides (symmetric additive smoothing).

        Returns
        -------
        float
            Finite for any two non-empty samples, also when bins are empty on one side (0 for equal
            distributions, ``sqrt(ln 2)`` for disjoint ones, 1 with ``base=2``).
    {raises}
            Also when ``base`` is not a float > 1.

        Examples
        --------
        >>> round(jensen_shannon(["a", "a", "b"], ["a", "b", "b"], base=2), 4)
        0.2858
    """
    r, c = distributions(reference, current, kind=kind, bins=bins, missing=missing)
    return jensen_shannon_from_counts(r, c, base=base, smoothing=smoothing)


def psi(
    reference: object,
    current: object,
    *,
    kind: Kind | None = None,
    bins: int = 10,
    missing: MissingPolicy = "drop",
    smoothing: float = 0.5,
) -> float:
    """Population stability index ``sum((q - p) * ln(q / p))``, ``p`` the reference shares.

        Parameters
        ----------{inputs}
        smoothing : float, default 0.5
            Pseudo-count added to every bin of both sides, so an empty bin gives a finite PSI without
            the per-side epsilon that inflates it.

        Returns
        -------
        float
            Bins empty on both sides add nothing, also with ``smoothing=0``.
    {raises}
            Also with ``smoothing=0`` and a bin empty on one side only, where PSI is infinite.
    """
    r, c = distributions(reference, current, kind=kind, bins=bins, missing=missing)
    return psi_from_counts(r, c, smoothing=smoothing)


def kl_divergence(
    reference: object,
    current: object,
    *,
    kind: Kind | None = None,
    bins: int = 10,
    missing: MissingPolicy = "drop",
    base: float | None = None,
    smoothing: float = 0.5,
) -> float:
    """Kullback-Leibler divergence ``KL(reference || current)`` (``scipy.stats.entropy(p, q)``).

        Parameters
        ----------{inputs}
        base : float, optional
            Logarithm base; natural log by default.
        smoothing : float, default 0.5
            Pseudo-count added to every bin of both sides.

        Returns
        -------
        float
            ``inf`` when a bin is empty in the current sample only and ``smoothing`` is 0; bins empty
            in the reference add nothing (``0 * log(0 / q) = 0``).
    {raises}
            Also when ``base`` is not a float > 1.
    """
    r, c = distributions(reference, current, kind=kind, bins=bins, missing=missing)
    return kl_from_counts(r, c, base=base, smoothing=smoothing)


def hellinger(
    reference: object,
    current: object,
    *,
    kind: Kind | None = None,
    bins: int = 10,
    missing: MissingPolicy = "drop",
    smoothing: float = 0.0,
) -> float:
    """Hellinger distance ``sqrt(sum((sqrt(p) - sqrt(q))**2) / 2)``, in [0, 1].

        Parameters
        ----------{inputs}
        smoothing : float, default 0
            Pseudo-count added to every bin of both sides.

        Returns
        -------
        float
            0 for equal distributions, 1 for disjoint ones.
    {raises}
    """
    r, c = distributions(reference, current, kind=kind, bins=bins, missing=missing)
    return hellinger_from_counts(r, c, smoothing=smoothing)


def total_variation(
    reference: object,
    current: object,
    *,
    kind: Kind | None = None,
    bins: int = 10,
    missing: MissingPolicy = "drop",
    smoothing: float = 0.0,
) -> float:
    """Total variation distance ``sum(|p - q|) / 2``, in [0, 1].

        Parameters
        ----------{inputs}
        smoothing : float, default 0
            Pseudo-count added to every bin of both sides.

        Returns
        -------
        float
            0 for equal distributions, 1 for disjoint ones.
    {raises}
    """
    r, c = distributions(reference, current, kind=kind, bins=bins, missing=missing)
    return tv_from_counts(r, c, smoothing=smoothing)


for _f in (jensen_shannon, psi, kl_divergence, hellinger, total_variation):
    _f.__doc__ = (
        (_f.__doc__ or "").replace("{inputs}", _DOC_INPUTS).replace("{raises}", _DOC_RAISES)
    )
