"""The statistics on prepared inputs: counts on shared bins, sorted samples, quantile edges.

The functions of :mod:`mloop.monitoring.stats` take raw samples. Reports profile a reference once
and then compare each window against it, so they call these building blocks on what the profile
holds (bin counts, a sorted sample or a sketch's quantiles) instead of the raw values.
"""

from __future__ import annotations

from mloop.monitoring.stats._binning import bin_counts, bin_counts_sample, quantile_edges
from mloop.monitoring.stats._bounds import BOUNDED_COUNT_METHODS, count_statistic_bound
from mloop.monitoring.stats._distances import (
    WASSERSTEIN_STD_FLOOR,
    hellinger_from_counts,
    jensen_shannon_from_counts,
    kl_from_counts,
    psi_from_counts,
    tv_from_counts,
    wasserstein_sorted,
)
from mloop.monitoring.stats._ecdf import SortedSample, cdf_distances
from mloop.monitoring.stats._tests import chi_square_from_counts, ks_sorted, z_from_counts

__all__ = [
    "BOUNDED_COUNT_METHODS",
    "WASSERSTEIN_STD_FLOOR",
    "SortedSample",
    "bin_counts",
    "bin_counts_sample",
    "cdf_distances",
    "chi_square_from_counts",
    "count_statistic_bound",
    "hellinger_from_counts",
    "jensen_shannon_from_counts",
    "kl_from_counts",
    "ks_sorted",
    "psi_from_counts",
    "quantile_edges",
    "tv_from_counts",
    "wasserstein_sorted",
    "z_from_counts",
]
