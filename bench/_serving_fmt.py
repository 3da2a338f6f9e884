"""Formatting for ``bench/serving.py``'s tables."""

from __future__ import annotations

from typing import Any


def fmt_rps(m: dict[str, Any] | None) -> str:
    if m is None:
        return "-"
    err = f", {m['errors']} err" if m["errors"] else ""
    return f"{m['rps']:,.0f}/s (p99 {m['p99_ms']:,.0f} ms{err})"


def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    return a["rps"] / b["rps"] if a and b and b["rps"] else None


def goal_text(
    value: float | None, goal: float | None, *, at_least: bool = True, fmt: str = "{:g}x"
) -> str:
    if goal is None or value is None:
        return ""
    met = value >= goal if at_least else value <= goal
    return f"{'>=' if at_least else '<='} {fmt.format(goal)} " + ("(met)" if met else "(MISSED)")
