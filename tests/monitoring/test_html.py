"""HTML reports: self-contained, escaped, small; rendered and used in a real headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _chromium import chromium
from mloop.monitoring._drift import drift_report
from mloop.monitoring._html import render_drift_report, render_report
from mloop.monitoring._performance import performance_report
from mloop.monitoring._quality import quality_report

EVIL = "<script>alert(1)</script>"


# Stand-ins with exactly the fields the renderer reads from DriftReport / ColumnDrift /
# ColumnHistogram, so the renderer is tested on its own contract.
@dataclass
class Hist:
    edges: np.ndarray | None
    categories: list[str] | None
    reference: np.ndarray
    current: np.ndarray
    reference_missing: int = 0
    current_missing: int = 0


@dataclass
class Col:
    name: str
    kind: str
    method: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    status: str
    message: str | None
    histogram: Hist | None


@dataclass
class Report:
    columns: dict[str, Col]

    @property
    def n_drifted(self) -> int:
        return sum(c.drifted for c in self.columns.values())

    @property
    def share_drifted(self) -> float:
        return self.n_drifted / len(self.columns)

    @property
    def drifted(self) -> bool:
        return self.share_drifted >= 0.5

    def to_dict(self) -> dict[str, Any]:
        return {}


def make_report(n_columns: int = 100, *, seed: int = 0, n_categories: int = 8) -> Report:
    rng = np.random.default_rng(seed)
    cols: dict[str, Col] = {}
    for i in range(n_columns):
        name = EVIL if i == 1 else f"feature_{i:03d}"
        drifted = i % 5 == 0
        if i % 4 == 3:  # categorical; one with 1000 categories
            k = 1000 if i == 3 else n_categories
            cats = [f"<b>cat</b>_{j}" for j in range(k)]
            ref = rng.multinomial(50_000, np.ones(k) / k)
            cur = rng.multinomial(40_000, rng.dirichlet(np.ones(k)) if drifted else np.ones(k) / k)
            hist = Hist(None, cats, ref, cur)
            kind, method = "categorical", "jensen_shannon"
        else:
            edges = np.r_[-np.inf, np.linspace(-2, 2, 19), np.inf]
            ref = rng.multinomial(50_000, np.ones(20) / 20)
            cur = rng.multinomial(
                40_000, rng.dirichlet(np.ones(20)) if drifted else np.ones(20) / 20
            )
            hist = Hist(
                edges, None, ref, cur, reference_missing=100, current_missing=3000 * drifted
            )
            kind, method = "numeric", "wasserstein"
        stat = 0.3 if drifted else 0.02
        cols[name] = Col(
            name, kind, method, stat, None, 0.1, drifted, 50_000, 40_000,
            "drift" if drifted else "ok", None, hist,
        )  # fmt: skip
    cols["ks_col"] = Col(
        "ks_col", "numeric", "ks", 0.2, 1e-9, 0.05, True, 900, 800, "drift", None,
        cols["feature_000"].histogram,
    )  # fmt: skip
    cols["gone"] = Col(
        "gone", "numeric", "wasserstein", None, None, 0.1, False, 50_000, 0,
        "missing_column", "column missing from the current data", None,
    )  # fmt: skip
    cols["tiny"] = Col(
        "tiny", "numeric", "wasserstein", None, None, 0.1, False, 50_000, 3,
        "insufficient_data", "3 current values; at least 30 needed", None,
    )  # fmt: skip
    return Report(cols)


def test_escapes_every_user_string() -> None:
    page = render_drift_report(make_report(8))
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>cat</b>" not in page and "&lt;b&gt;cat&lt;/b&gt;" in page
    # exactly one script element: ours
    assert len(re.findall(r"<script[\s>]", page)) == 1


def test_offline_and_small_for_100_columns() -> None:
    page = render_drift_report(make_report(100))
    size = len(page.encode("utf-8"))
    assert size < 2_000_000, size
    # no external resources of any kind
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    # one chart per column with a histogram
    assert page.count('<svg class="chart"') == 101


def test_large_category_count_is_capped() -> None:
    page = render_drift_report(make_report(4))
    # 1000 categories -> 29 named bars + "971 more"
    assert "971 more" in page


def test_combined_report_renders_all_sections() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    perf = performance_report(y, y, rng.random(500), segments=np.where(y == 1, "a", "b"))
    quality = quality_report({"x": [1.0, 2.0, 3.0]}, {"x": [1.0, 2.0, 9.0]})
    page = render_report(drift=make_report(4), quality=quality, performance=perf, title=EVIL)
    assert "Column drift" in page and "Data quality" in page and "Model performance" in page
    assert "By segment" in page and EVIL not in page


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def test_renders_filters_and_sorts_in_chromium(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "drift.html"
    path.write_text(render_drift_report(make_report(100)), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    dialogs: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")

    assert errors == [] and dialogs == []
    assert requests == [path.as_uri()]  # nothing but the file itself
    rows = page.locator("#drift-table tbody tr")
    assert rows.count() == 103
    assert page.locator("#drift-table svg.chart").count() == 101
    assert page.locator("#drift-table svg.chart rect.cur").count() > 1000
    # drifted columns come first and are marked
    assert page.locator("#drift-table tbody tr").first.get_attribute("data-status") == "drift"
    n_drift = page.locator("#drift-table tr.st-drift").count()
    assert n_drift == 21
    # the hostile column name shows as text
    assert page.get_by_text(EVIL, exact=True).count() == 1

    shown = page.locator("#drift .shown")
    page.fill("#drift .q", "feature_01")
    assert shown.text_content() == "10"  # feature_010 .. feature_019
    assert page.locator("#drift-table tbody tr:visible").count() == 10
    page.fill("#drift .q", "")
    page.select_option("#drift select.status", "drift")
    assert shown.text_content() == str(n_drift)
    assert page.locator("#drift-table tbody tr:visible").count() == n_drift
    page.select_option("#drift select.status", "all")

    page.click("#drift-table th[data-sort=name]")
    names = page.eval_on_selector_all("#drift-table tbody tr", "rs => rs.map(r => r.dataset.name)")
    assert names == sorted(names, key=str.lower, reverse=True) or names == sorted(
        names, reverse=True
    )
    page.click("#drift-table th[data-sort=name]")
    names_asc = page.eval_on_selector_all(
        "#drift-table tbody tr", "rs => rs.map(r => r.dataset.name)"
    )
    assert names_asc == names[::-1]
    # a chart has a tooltip per bin
    assert "reference" in page.locator("#drift-table svg.chart g.bin title").first.text_content()
    assert errors == []
    page.close()


def test_real_drift_report_of_100_columns_is_small_and_renders(
    browser: Any, tmp_path: Path
) -> None:
    from mloop import monitoring as mon

    rng = np.random.default_rng(0)
    n = 20_000
    ref: dict[str, Any] = {}
    cur: dict[str, Any] = {}
    for i in range(100):
        name = EVIL if i == 0 else f"col_{i}"
        if i % 5 == 4:
            cats = np.array([f"c{j}" for j in range(1000 if i == 4 else 12)])
            ref[name] = rng.choice(cats, n)
            cur[name] = rng.choice(cats, n)
        else:
            ref[name] = rng.normal(size=n)
            cur[name] = rng.normal(loc=0.5 * (i % 3 == 0), size=n)
    report = mon.drift_report(ref, cur)
    path = report.to_html(tmp_path / "drift.html")
    size = path.stat().st_size
    assert size < 2_000_000, size
    text = path.read_text(encoding="utf-8")
    assert EVIL not in text
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    assert errors == []
    assert page.locator("#drift-table svg.chart").count() == 100
    assert page.locator("#drift-table tr.st-drift").count() == report.n_drifted > 0
    page.close()


ATTR = 'x" onmouseover="alert(3)'
IMG = "<img src=x onerror=alert(2)>"


class _Markup(HTMLParser):
    """Every element and attribute the browser would build from the page, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_hostile_names_are_escaped_everywhere_in_a_real_report() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    ref = {
        EVIL: rng.normal(size=n),
        ATTR: rng.normal(size=n),
        "plan": rng.choice(["a", IMG], n),
    }
    cur = {
        EVIL: rng.normal(loc=1.0, size=n),
        ATTR: rng.normal(size=n),
        "plan": rng.choice(["a", IMG, EVIL], n),  # a new, hostile category
    }
    y = rng.integers(0, 2, n)
    page = render_report(
        drift=drift_report(ref, cur),
        quality=quality_report(ref, cur),
        performance=performance_report(y, y, rng.random(n), segments=np.where(y, EVIL, ATTR)),
        title=f"model {EVIL}",
        subtitle=f"dataset {ATTR} {IMG}",
    )
    for hostile in (EVIL, ATTR, IMG):
        assert hostile not in page
    parsed = _Markup()
    parsed.feed(page)
    parsed.close()
    # the browser builds our one script, no image and no event handler from these names
    assert parsed.tags.count("script") == 1 and "img" not in parsed.tags
    assert not [name for name, _ in parsed.attrs if name.startswith("on")]
    # ... and shows them as the text they are: column cells, filter keys, segments, title
    values = [v for _, v in parsed.attrs]
    assert values.count(EVIL) >= 2 and values.count(ATTR) >= 2  # drift and quality rows
    text = "".join(parsed.text)
    assert text.count(EVIL) >= 4 and f"model {EVIL}" in text and f"dataset {ATTR} {IMG}" in text
    # every occurrence of the payload is inside its escaped form
    assert page.count("alert(1)") == page.count("&lt;script&gt;alert(1)&lt;/script&gt;") > 0


def test_report_is_offline_with_no_url_at_all() -> None:
    page = render_report(
        drift=make_report(20), quality=quality_report({"x": [1.0, 2.0]}, {"x": [1.0, 5.0]})
    )
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""\b(src|href|action|srcset)\s*=""", page)
    assert "@import" not in page and "url(" not in page


def test_templates_are_package_data_and_always_autoescape() -> None:
    from importlib.resources import files

    import jinja2

    from mloop.monitoring._templates import environment

    env = environment()
    names = env.list_templates()
    assert {"report.html.j2", "report.css", "report.js"} <= set(names)
    folder = files("mloop.monitoring").joinpath("templates")
    assert all(folder.joinpath(name).is_file() for name in names)
    assert all(env.autoescape(name) for name in [*names, None])  # type: ignore[operator]
    assert env.from_string("<p title='{{ x }}'>{{ x }}</p>").render(x=ATTR) == (
        "<p title='x&#34; onmouseover=&#34;alert(3)'>x&#34; onmouseover=&#34;alert(3)</p>"
    )
    with pytest.raises(jinja2.UndefinedError):  # a misspelt variable fails, never renders blank
        env.get_template("report.html.j2").render(title="t")
