"""``mloop loop replay``: drive the whole loop through its real parts from files.

A replay trains v1 with the standard retraining pipeline, registers and promotes it, serves
``models:/<model>@champion`` on a loopback port (the real serving app, over HTTP), sends each
window's rows as prediction requests, posts the labels of window ``w`` to ``/feedback`` after
window ``w + K`` (the label delay), and lets the agent act after each window: its monitors read
the inference log, its triggers run the retraining pipeline, whose candidate is checked against
the champion and promoted when the policy passes; serving follows the alias and hot-swaps.

Time is virtual: window ``w`` spans ``[start + w * width, start + (w + 1) * width)`` on the
serving app's clock, so the monitors cut the log into the replay's windows without waiting.

Two monitors watch the log:

- ``<deployment>-drift`` (lateness: 1 s): drift of every feature against the training data, and
  data quality. It judges window ``w`` right after it ends: a drift or quality alert is raised
  within the window that shows it.
- ``<deployment>-performance`` (lateness: ``K`` windows): realized accuracy, once the window's
  labels have arrived; an alert when it falls more than ``accuracy_drop`` below v1's holdout
  accuracy.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from mloop.errors import InvalidInputError
from mloop.loop._replay_data import LOOP_POLICY, WINDOW_MS, ReplayResult, load_replay_dir
from mloop.loop._replay_run import run_replay

__all__ = ["replay"]


def replay(
    folder: str | Path,
    *,
    label_delay: int = 1,
    policy: str | None = None,
    model: str | None = None,
    window_ms: int = WINDOW_MS,
    accuracy_drop: float = 0.1,
    drift_threshold: float = 0.3,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> ReplayResult:
    """Replay the traffic of ``folder`` through the loop; see the module docstring.

    Parameters
    ----------
    folder : path
        The replay layout (see :func:`mloop.loop.generate_scenario`).
    label_delay : int
        K: the labels of window ``w`` arrive after window ``w + K``.
    policy : str, optional
        The gate policy file. Default: the loop's policy (``templates/loop-policy.yaml``: the
        default policy without the drift check of the holdout, which the monitors do).
    model : str, optional
        The registered model (and deployment) name; default a fresh ``replay-<id>``.
    accuracy_drop : float
        The performance alert: realized accuracy below v1's holdout accuracy minus this.
    drift_threshold : float
        A feature drifts when its drift statistic reaches this (normed Wasserstein for numeric
        features against more than 1,000 training rows).
    progress : callable, optional
        ``progress(stage, done, total)`` as the replay moves on.

    Returns
    -------
    ReplayResult
    """
    if isinstance(label_delay, bool) or not isinstance(label_delay, int) or label_delay < 0:
        raise InvalidInputError(f"`label_delay` must be an int >= 0; got {label_delay!r}.")
    data = load_replay_dir(folder)
    name = model or f"replay-{uuid.uuid4().hex[:8]}"
    if policy is None:
        policy = str(LOOP_POLICY)
    return run_replay(
        data,
        name=name,
        label_delay=label_delay,
        policy=policy,
        window_ms=window_ms,
        accuracy_drop=accuracy_drop,
        drift_threshold=drift_threshold,
        seed=seed,
        progress=progress or (lambda stage, done, total: None),
    )
