"""A project for the Media section's tests, logged through the real tracking API (over HTTP to a
running ``mloop server``: blobs uploaded, the index written by the HttpStore): a run with an
image key over five steps (each step one solid colour), a table, a histogram over six steps and,
when matplotlib is installed, a figure; and a run with no media."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import mloop
from mloop.config import Settings

IMAGE_STEPS = 5
HIST_STEPS = 6
HIST_BINS = 16
TABLE = {
    "id": [3, 1, 2, 5, 4],
    "score": [0.3, 0.9, 0.1, 0.5, 0.7],
    "label": ["cat", "dog", "cat", "bird", "dog"],
}


def colour(step: int) -> tuple[int, int, int]:
    return (step * 50, 255 - step * 50, 100)


def hist_values(step: int) -> np.ndarray:
    return np.random.default_rng(step).normal(loc=step * 0.5, size=2000)


def media_project(root: Path, server_url: str) -> dict[str, Any]:
    settings = Settings.from_env({"MLOOP_SERVER_URL": server_url}, home=root / "home")
    out: dict[str, Any] = {"figure": False}
    with mloop.start_run(
        project="media", name="with-media", settings=settings, system_metrics=False
    ) as run:
        for s in range(IMAGE_STEPS):
            pixels = np.zeros((16, 24, 3), np.uint8)
            pixels[:] = colour(s)
            run.log({"loss": 1.0 / (s + 1), "samples": mloop.Image(pixels)}, step=s)
        run.log_table(TABLE, "preds")
        for s in range(HIST_STEPS):
            run.log_histogram(hist_values(s), "weights", step=s * 10, bins=HIST_BINS)
        try:
            import matplotlib
        except ImportError:
            pass
        else:
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
            ax.plot([0, 1, 2, 3], [3, 1, 2, 0])
            run.log_figure(fig, "curve", step=2)
            plt.close(fig)
            out["figure"] = True
        import plotly.graph_objects as go  # the dev extra has plotly

        traces = [go.Scatter(x=[0, 1, 2], y=[2, 0, 1], name="a"), go.Bar(x=[0, 1, 2], y=[1, 2, 3])]
        run.log_figure(go.Figure(traces), "interactive", step=0)
        out["run"] = run.id
    with mloop.start_run(
        project="media", name="no-media", settings=settings, system_metrics=False
    ) as empty:
        empty.log({"loss": 0.5})
    out["empty"] = empty.id
    return out
