"""Serving: registered models behind an HTTP endpoint (MLflow scoring protocol, Open Inference
Protocol v2), hot-swapped when their alias moves; deployments with canary and shadow; batch scoring."""

from __future__ import annotations

__all__: list[str] = []
