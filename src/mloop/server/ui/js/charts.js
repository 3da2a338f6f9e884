// Metric charts on uPlot (vendored). The server downsamples (min/max per bucket) to about the
// chart's width in points; a drag-zoom asks for the visible step range again, at full detail
// where it has fewer points than that.
import { api } from "./api.js";
import { h, color, fmtNum } from "./util.js";

export const perf = (window.__mloopPerf = window.__mloopPerf || {});

const axisFmt = (u, vals) => vals.map((v) => fmtNum(v));

function baseOpts(title, width, height, series) {
  return {
    title, width, height,
    scales: { x: { time: false } },
    series: [{ label: "step", value: (u, v) => (v == null ? "" : fmtNum(v)) }, ...series],
    axes: [
      { label: "step", values: axisFmt, size: 40 },
      { values: axisFmt, size: 60 },
    ],
    legend: { live: true },
    cursor: { drag: { x: true, y: false, setScale: true } },
  };
}

function points(doc) { return doc.step.length; }

// One run, one metric. Resolves once the first render is done.
export async function metricChart(runId, key, { width = 560, height = 240 } = {}) {
  const t0 = performance.now();
  const maxPoints = Math.max(200, Math.round(width * 2));
  const doc = await api.metric(runId, key, { max_points: maxPoints });
  const note = h("div", { class: "chart-note" });
  const box = h("div", { class: "chart", "data-key": key });
  const reset = h("button", { class: "small", hidden: true }, "Reset zoom");
  const wrap = h("div", { class: "chart-card" }, box, h("div", { class: "chart-foot" }, note, reset));
  const describe = (d) => {
    note.textContent = `${d.total.toLocaleString()} points` +
      (d.downsampled ? ` · ${points(d).toLocaleString()} shown (min/max of ${d.in_range.toLocaleString()})` : "");
  };
  describe(doc);
  const opts = baseOpts(key, width, height, [{ label: key, stroke: color(0), width: 1.25, spanGaps: false,
    value: (u, v) => (v == null ? "" : fmtNum(v)) }]);
  let fetching = 0;
  opts.hooks = {
    setSelect: [(u) => {
      if (u.select.width < 4) return;
      const lo = Math.floor(u.posToVal(u.select.left, "x"));
      const hi = Math.ceil(u.posToVal(u.select.left + u.select.width, "x"));
      zoomTo(u, lo, hi);
    }],
  };
  const full = [doc.step, doc.value];
  const u = new uPlot(opts, full, box);
  async function zoomTo(plot, lo, hi) {
    const ticket = ++fetching;
    const d = await api.metric(runId, key, { max_points: maxPoints, min_step: lo, max_step: hi });
    if (ticket !== fetching) return;
    plot.setData([d.step, d.value], false);
    plot.setScale("x", { min: lo, max: hi });
    describe(d);
    reset.hidden = false;
    wrap.dispatchEvent(new CustomEvent("mloop:zoomed", { bubbles: true, detail: d }));
  }
  reset.onclick = () => { fetching++; u.setData(full, true); describe(doc); reset.hidden = true; };
  perf.lastChartMs = performance.now() - t0;
  wrap.dataset.points = String(doc.total);
  return { el: wrap, plot: u, ms: perf.lastChartMs };
}

// Several runs, one metric, overlaid (steps aligned by uPlot.join).
export async function overlayChart(runs, key, { width = 560, height = 260 } = {}) {
  const docs = await Promise.all(runs.map((r) => api.metric(r.id, key, { max_points: Math.round(width * 2) })
    .catch(() => null)));
  const present = runs.map((r, i) => ({ r, i, d: docs[i] })).filter((x) => x.d && x.d.step.length);
  const data = uPlot.join(present.map((x) => [x.d.step, x.d.value]));
  const series = present.map((x) => ({ label: x.r.name, stroke: color(x.i), width: 1.25, spanGaps: true,
    value: (u, v) => (v == null ? "" : fmtNum(v)) }));
  const box = h("div", { class: "chart", "data-key": key });
  const card = h("div", { class: "chart-card" }, box);
  const u = new uPlot(baseOpts(key, width, height, series), data, box);
  return { el: card, plot: u };
}
