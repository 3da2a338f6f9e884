"""Drift statistics as pure, vectorised functions of arrays (no I/O, no globals).

Two-sample tests return ``(statistic, p_value)``; distances return a float. Non-finite values are left
out; binned methods bin numeric values on reference quantiles with open-ended end bins.

Examples
--------
>>> from mloop.monitoring import stats
>>> stats.ks([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
(0.0, 1.0)
"""

from __future__ import annotations

from mloop.monitoring.stats._distances import (
    energy_distance,
    hellinger,
    jensen_shannon,
    kl_divergence,
    psi,
    total_variation,
    wasserstein,
)
from mloop.monitoring.stats._multivariate import domain_classifier_auc, mmd
from mloop.monitoring.stats._tests import (
    anderson_darling,
    chi_square,
    cramer_von_mises,
    ks,
    z_proportions,
)

__all__ = [
    "anderson_darling",
    "chi_square",
    "cramer_von_mises",
    "domain_classifier_auc",
    "energy_distance",
    "hellinger",
    "jensen_shannon",
    "kl_divergence",
    "ks",
    "mmd",
    "psi",
    "total_variation",
    "wasserstein",
    "z_proportions",
]
