"""The gate policy (``mloop.yaml``): which checks a candidate must pass, validated with pydantic.

Every key has a default, so an empty file (or no file) is the default policy: non-regression
against the baseline on the model's primary metric, signature compatibility and data checks
against the training data. A mistake is reported with the key and the line it is on::

    mloop.yaml, line 7: `non_regression.level` must be a number in (0, 0.5); got 'often'.

Examples
--------
>>> policy = parse_policy('''
... primary_metric: roc_auc
... thresholds:
...   - accuracy >= 0.85
...   - log_loss: {threshold: 0.4, greater_is_better: false}
... non_regression: {margin: 0.005}
... ''')
>>> [t.metric for t in policy.thresholds], policy.non_regression.margin
(['accuracy', 'log_loss'], 0.005)
>>> len(policy_hash(policy))
64
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mloop._yamlfile import explain, load_with_lines, read_text
from mloop.errors import InvalidInputError

__all__ = [
    "DEFAULT_POLICY_FILE",
    "BehaviourPolicy",
    "BudgetPolicy",
    "DataPolicy",
    "NonRegressionPolicy",
    "Policy",
    "PolicyError",
    "PostDeployPolicy",
    "SignaturePolicy",
    "SlicePolicy",
    "ThresholdPolicy",
    "load_policy",
    "parse_policy",
    "policy_hash",
]

DEFAULT_POLICY_FILE = "mloop.yaml"

_THRESHOLD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*(\S+)\s*$")


class PolicyError(InvalidInputError):
    """The policy file is not valid; the message names each bad key and its line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ThresholdPolicy(_Section):
    """MLflow ``MetricThreshold`` semantics for one metric.

    ``threshold``: the candidate's value must be >= it (<= when ``greater_is_better`` is false).
    ``min_absolute_change``: the candidate must beat the baseline by at least this much.
    ``min_relative_change``: ... by at least this share of the baseline's value (a zero baseline:
    any strict improvement counts, since no relative change of zero is defined).
    """

    metric: str
    threshold: float | None = None
    min_absolute_change: float | None = Field(default=None, ge=0)
    min_relative_change: float | None = Field(default=None, ge=0)
    greater_is_better: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        return _one_threshold(value)

    @model_validator(mode="after")
    def _something_to_check(self) -> ThresholdPolicy:
        if (
            self.threshold is None
            and self.min_absolute_change is None
            and self.min_relative_change is None
        ):
            raise ValueError(
                "a threshold needs at least one of `threshold`, `min_absolute_change` or "
                "`min_relative_change`"
            )
        return self


class NonRegressionPolicy(_Section):
    """Paired comparison with the baseline on the same holdout.

    A metric is "worse" only when the candidate is behind by more than ``margin`` and the
    difference is significant at ``level`` (one-sided). With ``require_better`` (the default) the
    candidate must also be significantly ahead by more than ``margin`` ("better"): a candidate
    that is merely indistinguishable does not replace the champion, so noise does not churn it.
    Set ``require_better: false`` for pure non-regression (say, a retrain for a library upgrade).
    """

    enabled: bool = True
    metrics: list[str] | None = None  # None: the primary metric
    level: float = Field(default=0.05, gt=0, lt=0.5)
    margin: float = Field(default=0.0, ge=0)
    require_better: bool = True
    method: Literal["auto", "bootstrap"] = "auto"
    resamples: int = Field(default=1000, ge=100, le=100_000)
    seed: int = 0


class SlicePolicy(_Section):
    """A per-segment metric may trail the baseline's on the same segment by at most ``max_drop``."""

    column: str
    metric: str | None = None  # None: the primary metric
    max_drop: float = Field(default=0.02, ge=0)
    min_rows: int = Field(default=30, ge=1)
    values: list[Any] | None = None  # None: every value with at least ``min_rows`` rows
    bins: int = Field(default=4, ge=2, le=100)  # numeric columns: quantile bins


class DataPolicy(_Section):
    """The evaluation data against the training data's profile, through the monitoring engine.

    ``reference``: ``"training"`` (the candidate version's training dataset), a saved profile or
    table file, a ``datasets:/<sha256>`` URI, or ``"none"``.
    """

    enabled: bool = True
    reference: str = "training"
    schema_: bool = Field(default=True, alias="schema")
    missing: bool = True
    max_missing_increase: float = Field(default=0.05, ge=0, le=1)
    drift: bool = True
    max_drift_share: float = Field(default=0.5, gt=0, le=1)
    drift_warn_only: bool = False

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SignaturePolicy(_Section):
    enabled: bool = True
    allow_removed: bool = False


class BudgetPolicy(_Section):
    p95_latency_ms: float | None = Field(default=None, gt=0)
    package_size_mb: float | None = Field(default=None, gt=0)
    peak_memory_mb: float | None = Field(default=None, gt=0)
    requests: int = Field(default=200, ge=20, le=100_000)


class BehaviourPolicy(_Section):
    paths: list[str] = Field(default_factory=list)


class PostDeployPolicy(_Section):
    """Watch live traffic after a promotion; roll back when it fails."""

    enabled: bool = True
    endpoints: list[str] = Field(default_factory=list)
    deployments: list[str] | None = None
    window_s: float = Field(default=60.0, gt=0)
    min_requests: int = Field(default=50, ge=1)
    swap_timeout_s: float = Field(default=60.0, gt=0)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_p95_latency_ms: float | None = Field(default=None, gt=0)
    prediction_drift: bool = True
    rollback: bool = True


class Policy(_Section):
    """A whole gate policy; see the module docstring."""

    version: Literal[1] = 1
    target: str = "label"
    primary_metric: str | None = None  # None: roc_auc (binary, with scores), accuracy, or rmse
    thresholds: list[ThresholdPolicy] = Field(default_factory=list)
    non_regression: NonRegressionPolicy = Field(default_factory=NonRegressionPolicy)
    slices: list[SlicePolicy] = Field(default_factory=list)
    data: DataPolicy = Field(default_factory=DataPolicy)
    signature: SignaturePolicy = Field(default_factory=SignaturePolicy)
    budgets: BudgetPolicy = Field(default_factory=BudgetPolicy)
    behaviour: BehaviourPolicy = Field(default_factory=BehaviourPolicy)
    post_deploy: PostDeployPolicy | None = None

    @field_validator("thresholds", mode="before")
    @classmethod
    def _threshold_forms(cls, value: Any) -> Any:
        """Accept ``accuracy >= 0.85`` strings and ``{metric: {...}}`` / ``{metric: number}``."""
        if isinstance(value, dict):
            return [{k: v} for k, v in value.items()]
        return value


def _one_threshold(item: Any) -> Any:
    if isinstance(item, str):
        m = _THRESHOLD.match(item)
        if m is None:
            raise ValueError(f"a threshold reads `metric >= number` (or <=); got {item!r}")
        metric, op, number = m.groups()
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"{number!r} in {item!r} is not a number") from None
        return {"metric": metric, "threshold": value, "greater_is_better": op.startswith(">")}
    if isinstance(item, dict) and len(item) == 1 and "metric" not in item:
        ((metric, spec),) = item.items()
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            return {"metric": metric, "threshold": spec}
        if isinstance(spec, dict):
            return {"metric": metric, **spec}
    return item


def policy_hash(policy: Policy) -> str:
    """sha256 of the policy with every default filled in, as canonical JSON.

    Two files that say the same thing (key order, comments, shorthand forms) hash the same.
    """
    body = json.dumps(policy.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


# --------------------------------------------------------------------------------- loading


def parse_policy(text: str, *, source: str = DEFAULT_POLICY_FILE) -> Policy:
    """Validate the YAML ``text`` of a policy; :class:`PolicyError` names each bad key and line."""
    loaded = load_with_lines(text, source=source, error=PolicyError)
    if loaded is None:
        return Policy()
    data, lines, first = loaded
    if not isinstance(data, dict):
        raise PolicyError(
            f"{source}, line {first}: a policy is a mapping of sections "
            f"(thresholds, non_regression, ...); got a {type(data).__name__}."
        )
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(explain(exc, lines, source, Policy)) from None


def load_policy(path: str | os.PathLike[str] | None = None) -> tuple[Policy, str | None]:
    """The policy in ``path``; with None, ``./mloop.yaml`` when it exists, else the default.

    Returns the policy and the file it came from (None for the default policy).
    """
    if path is None:
        candidate = Path(DEFAULT_POLICY_FILE)
        if not candidate.is_file():
            return Policy(), None
        path = candidate
    text = read_text(path, what="policy file", error=PolicyError)
    return parse_policy(text, source=str(path)), str(path)
