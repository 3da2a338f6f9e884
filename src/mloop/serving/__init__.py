"""Serving: registered models behind an HTTP endpoint (MLflow scoring protocol, Open Inference
Protocol v2), hot-swapped when their alias moves; deployments with canary and shadow; batch scoring."""

from __future__ import annotations

from mloop.serving._batch import BatchPredictionStats, predict_file

__all__: list[str] = ["BatchPredictionStats", "predict_file"]
