"""A small inline SVG renderer: reference-vs-current bar charts drawn from histograms, not rows.

Charts are computation (scales, bar geometry), so they are drawn here rather than in a template. Every
string that reaches the markup goes through :func:`esc` and numbers are formatted here, so the finished
SVG is :class:`~markupsafe.Markup` the templates insert as is. The charts need no script and no
external resource (inline SVG in HTML needs no namespace URL), so a report renders offline and in
any mail client.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from markupsafe import Markup, escape

__all__ = ["bar_chart", "esc", "fmt", "fmt_count", "histogram_chart"]

REF_COLOR = "#9aa5b8"
CUR_COLOR = "#2f6fde"
MAX_CATEGORIES = 30


def esc(value: Any) -> Markup:
    """HTML-escape any value for text content or a quoted attribute."""
    return escape(str(value))


def fmt(value: Any, *, digits: int = 4) -> str:
    """A compact human-readable number (``—`` for ``None``/NaN)."""
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v, digits=digits) for v in value) + "]"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e15 and isinstance(value, (int, np.integer)):
        return f"{int(x):,}"
    if abs(x) >= 1e6 or abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def fmt_count(n: Any) -> str:
    """An integer with thousands separators."""
    return "—" if n is None else f"{int(n):,}"


def _shares(counts: np.ndarray, missing: int) -> tuple[np.ndarray, float, int]:
    total = int(counts.sum()) + int(missing)
    if total == 0:
        return np.zeros(len(counts)), 0.0, 0
    return counts / total, missing / total, total


def histogram_chart(hist: Any, *, width: int = 360, height: int = 120) -> Markup:
    """Reference-vs-current bars of a ``ColumnHistogram`` (numeric edges or categories)."""
    ref = np.asarray(hist.reference, dtype=np.float64).reshape(-1)
    cur = np.asarray(hist.current, dtype=np.float64).reshape(-1)
    ref_miss = int(getattr(hist, "reference_missing", 0) or 0)
    cur_miss = int(getattr(hist, "current_missing", 0) or 0)
    edges = getattr(hist, "edges", None)
    categories = getattr(hist, "categories", None)
    if categories is not None:
        labels = [str(c) for c in categories]
        if len(labels) < len(ref):  # an "other" bucket beyond the named categories
            labels += ["(other)"] * (len(ref) - len(labels))
        labels, ref, cur = _top_categories(labels, ref, cur)
        tips = labels
        axis = labels if len(labels) <= 12 else []
        edge_labels: tuple[str, str] | None = None
    else:
        e = np.asarray(edges, dtype=np.float64) if edges is not None else np.arange(len(ref) + 1.0)
        tips = [_bin_label(e[i], e[i + 1], i == len(ref) - 1) for i in range(len(ref))]
        axis = []
        finite = e[np.isfinite(e)]
        edge_labels = (fmt(finite[0], digits=3), fmt(finite[-1], digits=3)) if len(finite) else None
    rs, r_na, r_total = _shares(ref, ref_miss)
    cs, c_na, c_total = _shares(cur, cur_miss)
    rc, cc = ref.astype(np.int64).tolist(), cur.astype(np.int64).tolist()
    if ref_miss or cur_miss:
        tips = [*tips, "missing"]
        axis = [*axis, "NA"] if axis else axis
        rs, cs = np.append(rs, r_na), np.append(cs, c_na)
        rc, cc = [*rc, ref_miss], [*cc, cur_miss]
    return bar_chart(
        tips,
        rs,
        cs,
        ref_counts=rc,
        cur_counts=cc,
        axis_labels=axis,
        edge_labels=edge_labels,
        missing_last=bool(ref_miss or cur_miss),
        width=width,
        height=height,
        empty=r_total == 0 and c_total == 0,
    )


def _top_categories(
    labels: list[str], ref: np.ndarray, cur: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    if len(labels) <= MAX_CATEGORIES:
        return labels, ref, cur
    r_share = ref / max(ref.sum(), 1.0)
    c_share = cur / max(cur.sum(), 1.0)
    order = np.argsort(-np.maximum(r_share, c_share), kind="stable")
    top, rest = order[: MAX_CATEGORIES - 1], order[MAX_CATEGORIES - 1 :]
    out = [labels[i] for i in top] + [f"{len(rest)} more"]
    return out, np.append(ref[top], ref[rest].sum()), np.append(cur[top], cur[rest].sum())


def _bin_label(lo: float, hi: float, last: bool) -> str:
    if math.isinf(lo) and lo < 0:
        return f"< {fmt(hi)}"
    if math.isinf(hi) and hi > 0:
        return f"≥ {fmt(lo)}"
    return f"[{fmt(lo)}, {fmt(hi)}{']' if last else ')'}"


def bar_chart(
    labels: list[str],
    ref: np.ndarray,
    cur: np.ndarray,
    *,
    ref_counts: list[int],
    cur_counts: list[int],
    axis_labels: list[str],
    edge_labels: tuple[str, str] | None,
    missing_last: bool,
    width: int,
    height: int,
    empty: bool = False,
) -> Markup:
    """Grouped bars (reference grey, current blue) of shares, one hover tooltip per group.

    The result is markup built only from :func:`esc`-escaped labels and formatted numbers.
    """
    pad_l, pad_r, pad_t = 34, 6, 8
    pad_b = 34 if axis_labels else 18
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    n = len(labels)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'role="img">'
    ]
    if n == 0 or empty:
        parts.append(
            f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" class="ax" '
            'text-anchor="middle">no data</text></svg>'
        )
        return Markup("".join(parts))
    top = float(max(ref.max(initial=0.0), cur.max(initial=0.0))) or 1.0
    top = _nice_ceiling(top)
    base = pad_t + ph
    parts.append(
        f'<line x1="{pad_l}" y1="{base}" x2="{pad_l + pw}" y2="{base}" class="axis"/>'
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l + pw}" y2="{pad_t}" class="grid"/>'
        f'<text x="{pad_l - 4}" y="{pad_t + 4}" class="ax" text-anchor="end">{_pct(top)}</text>'
        f'<text x="{pad_l - 4}" y="{base}" class="ax" text-anchor="end">0</text>'
    )
    gap = 6 if missing_last and n > 1 else 0
    gw = (pw - gap) / n
    bw = max(gw * 0.4, 0.8)
    for i in range(n):
        x = pad_l + i * gw + (gap if missing_last and i == n - 1 else 0)
        rh, ch = ph * ref[i] / top, ph * cur[i] / top
        tip = (
            f"{labels[i]}\nreference {_pct(ref[i])} ({ref_counts[i]:,})\n"
            f"current {_pct(cur[i])} ({cur_counts[i]:,})"
        )
        parts.append(
            f'<g class="bin"><title>{esc(tip)}</title>'
            f'<rect class="hit" x="{x:.1f}" y="{pad_t}" width="{gw:.1f}" height="{ph}"/>'
            f'<rect class="ref" x="{x + gw * 0.1:.1f}" y="{base - rh:.1f}" '
            f'width="{bw:.1f}" height="{rh:.1f}"/>'
            f'<rect class="cur" x="{x + gw * 0.1 + bw:.1f}" y="{base - ch:.1f}" '
            f'width="{bw:.1f}" height="{ch:.1f}"/></g>'
        )
        if axis_labels:
            text = axis_labels[i] if len(axis_labels[i]) <= 10 else axis_labels[i][:9] + "…"
            cx = x + gw / 2
            parts.append(
                f'<text class="ax" x="{cx:.1f}" y="{base + 10}" text-anchor="end" '
                f'transform="rotate(-35 {cx:.1f} {base + 10})">{esc(text)}</text>'
            )
    if edge_labels and not axis_labels:
        lo, hi = edge_labels
        right = pad_l + ((n - 1) * gw - 3 if missing_last else pw)
        parts.append(
            f'<text class="ax" x="{pad_l}" y="{base + 12}">{esc(lo)}</text>'
            f'<text class="ax" x="{right:.1f}" y="{base + 12}" text-anchor="end">{esc(hi)}</text>'
        )
        if missing_last:
            parts.append(
                f'<text class="ax" x="{pad_l + (n - 1) * gw + gap + gw / 2:.1f}" y="{base + 12}" '
                'text-anchor="middle">NA</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice_ceiling(x: float) -> float:
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1.0):
        if x <= step:
            return step
    return x


def _pct(x: float) -> str:
    x = float(x) * 100
    return f"{x:.0f}%" if x >= 10 or x == 0 else f"{x:.1f}%"
