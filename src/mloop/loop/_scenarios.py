"""Simulated production traffic for ``mloop loop replay``: seeded scenarios of what goes wrong.

A scenario is a folder in the replay layout::

    train.parquet           the training history: features x0..x3 and ``label``
    windows/w000.parquet    production traffic, in order: the features and ``request_id``
    labels/w000.parquet     the true outcome of each request: ``request_id``, ``label``
    scenario.json           what was generated (kind, parameters, where the change starts)

The features are independent standard normals; the label is ``1[g(x) + noise > 0]`` with
``g(x) = x1 + 2 sin(2 x0) + 0.5 x2`` (``x3`` carries no signal). From ``change_window`` on:

==================  ==========================================================================
``no_change``       nothing changes
``covariate_shift`` ``x0`` moves by ``shift_sd`` standard deviations into a region the training
                    data barely covers and where ``g`` turns: the model's accuracy drops
``irrelevant_shift`` ``x3`` (which the label ignores) moves by ``shift_sd``: drift, no harm
``concept_drift``   same inputs, new label function: ``g(x) = x1 - 2 sin(2 x0) + 0.5 x2``
``broken_feature``  ``x2`` is missing (``broken="missing"``) or stuck at 0 (``"constant"``) in a
                    ``broken_share`` of the requests
``gradual_drift``   ``x0`` moves linearly from 0 to ``shift_sd`` over ``ramp_windows`` windows
==================  ==========================================================================
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mloop.errors import InvalidInputError

__all__ = ["SCENARIO_KINDS", "ScenarioSpec", "generate_scenario"]

ScenarioKind = Literal[
    "no_change",
    "covariate_shift",
    "irrelevant_shift",
    "concept_drift",
    "broken_feature",
    "gradual_drift",
]
SCENARIO_KINDS: tuple[str, ...] = ScenarioKind.__args__  # type: ignore[attr-defined]
FEATURES: tuple[str, ...] = ("x0", "x1", "x2", "x3")
_NOISE_SD = 0.35


@dataclass(frozen=True)
class ScenarioSpec:
    """What :func:`generate_scenario` wrote (also saved as ``scenario.json``)."""

    kind: str
    n_windows: int
    rows_per_window: int
    change_window: int
    shift_sd: float
    seed: int
    train_rows: int
    broken: str
    broken_share: float
    ramp_windows: int
    features: tuple[str, ...] = FEATURES

    @property
    def changed_feature(self) -> str | None:
        """The column whose distribution changes (None for no change and concept drift)."""
        return {
            "covariate_shift": "x0",
            "gradual_drift": "x0",
            "irrelevant_shift": "x3",
            "broken_feature": "x2",
        }.get(self.kind)


def _g(x: np.ndarray, *, concept: bool) -> np.ndarray:
    sign = -1.0 if concept else 1.0
    return x[:, 1] + sign * 2.0 * np.sin(2.0 * x[:, 0]) + 0.5 * x[:, 2]


def _labels(x: np.ndarray, rng: np.random.Generator, *, concept: bool) -> np.ndarray:
    return (_g(x, concept=concept) + rng.normal(0, _NOISE_SD, len(x)) > 0).astype(np.int64)


def _check(name: str, value: Any, low: float, *, integer: bool = True) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(float(value)) or value < low:
        kind = "an int" if integer else "a number"
        raise InvalidInputError(f"`{name}` must be {kind} >= {low:g}; got {value!r}.")


def generate_scenario(
    kind: str,
    out_dir: str | Path,
    *,
    n_windows: int = 20,
    rows_per_window: int = 200,
    change_window: int = 10,
    shift_sd: float = 2.0,
    seed: int = 0,
    train_rows: int = 2000,
    broken: Literal["missing", "constant"] = "missing",
    broken_share: float = 0.5,
    ramp_windows: int = 5,
) -> ScenarioSpec:
    """Write one seeded scenario in the replay layout under ``out_dir``.

    Parameters
    ----------
    kind : str
        One of :data:`SCENARIO_KINDS` (see the module docstring).
    out_dir : path
        Created if absent; files of an earlier scenario there are overwritten.
    n_windows, rows_per_window :
        Production windows and the requests in each.
    change_window : int
        The first window that changes (``n_windows`` or more: nothing changes).
    shift_sd : float
        The size of a shift, in standard deviations of the feature.
    seed : int
        The same seed writes the same files.
    train_rows : int
        Rows of the training history (drawn before any change).
    broken, broken_share :
        How ``x2`` breaks in ``broken_feature``, and in which share of the requests.
    ramp_windows : int
        ``gradual_drift``: windows from no shift to the full ``shift_sd``.

    Returns
    -------
    ScenarioSpec

    Examples
    --------
    >>> import tempfile
    >>> spec = generate_scenario("covariate_shift", tempfile.mkdtemp(), n_windows=4,
    ...                          rows_per_window=50, change_window=2)
    >>> spec.changed_feature, spec.change_window
    ('x0', 2)
    """
    if kind not in SCENARIO_KINDS:
        raise InvalidInputError(f"`kind` must be one of {list(SCENARIO_KINDS)}; got {kind!r}.")
    _check("n_windows", n_windows, 1)
    _check("rows_per_window", rows_per_window, 1)
    _check("change_window", change_window, 0)
    _check("train_rows", train_rows, 10)
    _check("ramp_windows", ramp_windows, 1)
    _check("shift_sd", shift_sd, 0, integer=False)
    if broken not in ("missing", "constant"):
        raise InvalidInputError(f"`broken` must be 'missing' or 'constant'; got {broken!r}.")
    if not isinstance(broken_share, (int, float)) or not 0 < broken_share <= 1:
        raise InvalidInputError(f"`broken_share` must be in (0, 1]; got {broken_share!r}.")
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = ScenarioSpec(
        kind=kind, n_windows=n_windows, rows_per_window=rows_per_window,
        change_window=change_window, shift_sd=float(shift_sd), seed=seed, train_rows=train_rows,
        broken=broken, broken_share=float(broken_share), ramp_windows=ramp_windows,
    )  # fmt: skip
    root = Path(out_dir)
    (root / "windows").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(train_rows, len(FEATURES)))
    train = {f: x[:, i] for i, f in enumerate(FEATURES)}
    train["label"] = _labels(x, rng, concept=False)
    pq.write_table(pa.table(train), root / "train.parquet")
    width = len(str(max(n_windows - 1, 0)))
    for w in range(n_windows):
        x = rng.normal(size=(rows_per_window, len(FEATURES)))
        after = w >= change_window
        if after and kind in ("covariate_shift", "irrelevant_shift"):
            x[:, 0 if kind == "covariate_shift" else 3] += shift_sd
        elif after and kind == "gradual_drift":
            x[:, 0] += shift_sd * min(1.0, (w - change_window + 1) / ramp_windows)
        y = _labels(x, rng, concept=after and kind == "concept_drift")
        if after and kind == "broken_feature":
            hit = rng.random(rows_per_window) < broken_share
            x[hit, 2] = np.nan if broken == "missing" else 0.0  # the label saw the true value
        ids = [f"w{w:0{width}d}-{i:05d}" for i in range(rows_per_window)]
        window: dict[str, Any] = {f: x[:, i] for i, f in enumerate(FEATURES)}
        window["request_id"] = ids
        pq.write_table(pa.table(window), root / "windows" / f"w{w:03d}.parquet")
        pq.write_table(
            pa.table({"request_id": ids, "label": y}), root / "labels" / f"w{w:03d}.parquet"
        )
    (root / "scenario.json").write_text(json.dumps(asdict(spec), indent=2) + "\n")
    return spec
