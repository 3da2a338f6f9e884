"""CI/CD gates for models: paired, significance-aware comparisons of a candidate with the champion
on the same holdout (the statistics that checks and promotion are built on)."""

from __future__ import annotations

from mloop.gates._signature import SignatureProblem, signature_problems
from mloop.gates._stats import PairedComparison, delong_test, mcnemar_test, paired_bootstrap

__all__ = [
    "PairedComparison",
    "SignatureProblem",
    "delong_test",
    "mcnemar_test",
    "paired_bootstrap",
    "signature_problems",
]
