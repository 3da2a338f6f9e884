"""Hypothesis settings for the suite: modest example counts, no deadline (a loaded CI machine is
slow, not wrong), no example database in the checkout, and derandomized under ``CI=true`` so a CI
run is reproducible. Import this module from a test module that uses hypothesis.

``HYPOTHESIS_PROFILE=thorough`` runs many more examples (locally, when changing the codec).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("dev", max_examples=60, **_COMMON)
settings.register_profile("ci", max_examples=60, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev")
)
