// Monitoring: #/monitors (every monitor, its newest window) and #/monitors/<name>[/<window>]: the
// per-feature drift heatmap over windows, realized and estimated (CBPE) performance over windows,
// the alerts, and the HTML report of the chosen window in a sandboxed frame.
import { call } from "./api.js";
import { h, emptyState, fmtNum, fmtTime, color } from "./util.js";

const enc = encodeURIComponent;
export const monitorHref = (name, w) => `#/monitors/${enc(name)}${w === undefined || w === null ? "" : `/${w}`}`;

export async function monitorsPage(setCrumbs) {
  setCrumbs({ text: "Monitors" });
  const monitors = await call("GET", "/monitors", { query: { limit: 1000 } });
  const head = h("h1", {}, "Monitors");
  if (!monitors.length) {
    return h("section", {}, head, emptyState(
      "No monitor has stored a window yet. A Monitor(..., store=...) or an InferenceMonitor records one per window."));
  }
  const rows = monitors.map((m) => {
    const drift = (m.result || {}).drift;
    const perf = ((m.result || {}).performance || {}).metrics || {};
    const est = ((m.result || {}).estimated_performance || {}).metrics || {};
    return h("tr", { "data-monitor": m.monitor },
      h("td", {}, h("a", { href: monitorHref(m.monitor) }, m.monitor)),
      h("td", { class: "num" }, m.window_index + 1),
      h("td", {}, `${m.window_start ?? ""} … ${m.window_end ?? ""}`),
      h("td", { class: "num" }, m.n_rows),
      h("td", {}, drift ? h("span", { class: `status ${drift.drifted ? "st-failed" : drift.n_drifted ? "st-killed" : "st-finished"}` },
        `${drift.n_drifted ?? 0}/${drift.n_columns ?? 0} drifted`) : h("span", { class: "muted" }, "–")),
      h("td", { class: "num" }, fmtNum(perf.accuracy ?? null)),
      h("td", { class: "num" }, fmtNum(est.accuracy ?? null)),
      h("td", {}, fmtTime(m.created_ms)));
  });
  return h("section", {}, head,
    h("table", { class: "kv monitors" },
      h("thead", {}, h("tr", {}, ["Monitor", "Windows", "Newest window", "Rows", "Drift", "Accuracy",
        "Estimated accuracy", "Recorded"].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows)));
}

// Green (far below the threshold) to amber (at it) to red (twice it or more).
export function severityColor(sev) {
  if (sev === null || sev === undefined) return "#e2e8f0";
  const t = Math.max(0, Math.min(sev, 2)) / 2;
  const mix = (a, b, f) => Math.round(a + (b - a) * f);
  const [from, to, f] = t < 0.5 ? [[220, 252, 231], [254, 240, 138], t * 2] : [[254, 240, 138], [248, 113, 113], (t - 0.5) * 2];
  return `rgb(${mix(from[0], to[0], f)},${mix(from[1], to[1], f)},${mix(from[2], to[2], f)})`;
}

function heatmap(doc, onPick) {
  const ws = doc.windows;
  if (!doc.columns.length) return emptyState("This monitor checks no feature drift (no drift report in its windows).");
  const headRow = h("tr", {}, h("th", { class: "hm-corner" }, "feature \\ window"),
    ws.map((w, i) => h("th", { class: "hm-w", "data-window": String(w.index), title: `${w.start ?? ""} … ${w.end ?? ""}`, onclick: () => onPick(i) }, w.index)));
  const share = h("tr", { class: "hm-share" }, h("th", {}, "share drifted"),
    ws.map((w) => h("td", { class: "num" }, w.share_drifted === null ? "" : `${Math.round(w.share_drifted * 100)}%`)));
  const rows = doc.columns.map((c) => h("tr", {},
    h("th", { class: "hm-col", title: `${c.method ?? ""} · threshold ${fmtNum(c.threshold)}` }, c.name),
    ws.map((w, i) => {
      const stat = c.p_value[i] !== null ? c.p_value[i] : c.statistic[i];
      const drifted = c.drifted[i];
      const title = `${c.name} · window ${w.index}\n${c.method ?? ""}: ${c.p_value[i] !== null ? `p = ${fmtNum(c.p_value[i])}` : `statistic ${fmtNum(c.statistic[i])}`}` +
        ` (threshold ${fmtNum(c.threshold)})\n${c.status[i] ?? "not checked"}`;
      return h("td", {
        class: `hm-cell${drifted ? " drifted" : ""}`, title,
        "data-col": c.name, "data-window": String(w.index), "data-drifted": drifted === null ? "" : String(drifted),
        "data-stat": stat === null ? "" : String(stat),
        style: { background: severityColor(c.severity[i]) }, onclick: () => onPick(i),
      }, stat === null ? "" : fmtNum(Number(stat.toPrecision(2))));
    })));
  return h("div", { class: "hm-wrap" }, h("table", { class: "heatmap" }, h("thead", {}, headRow), h("tbody", {}, share, rows)),
    h("div", { class: "hm-legend muted" }, "colour: the score against its threshold (green far below, amber at it, red twice it); ",
      h("span", { class: "hm-swatch drifted" }, "outlined"), " = drifted. Click a window for its report."));
}

function metricCharts(doc) {
  const keys = [...new Set([...Object.keys(doc.performance), ...Object.keys(doc.estimated)])];
  if (!keys.length) return [emptyState("No performance in these windows (no labels joined and no CBPE estimate).")];
  const x = doc.windows.map((w) => w.index);
  const order = ["accuracy", "f1", "roc_auc", "precision", "recall"];
  keys.sort((a, b) => ((order.indexOf(a) + 1) || 99) - ((order.indexOf(b) + 1) || 99) || a.localeCompare(b));
  return keys.slice(0, 6).map((key) => {
    const series = [], data = [x];
    if (doc.performance[key]) { series.push({ label: "realized", stroke: color(0), width: 1.5, points: { show: true } }); data.push(doc.performance[key]); }
    if (doc.estimated[key]) { series.push({ label: "CBPE estimate", stroke: color(3), width: 1.5, dash: [6, 4], points: { show: true } }); data.push(doc.estimated[key]); }
    const box = h("div", { class: "chart", "data-key": key });
    const card = h("div", { class: "chart-card" }, box);
    const fmt = (u, vals) => vals.map((v) => fmtNum(v));
    card._plot = () => new uPlot({
      title: key, width: 420, height: 200, scales: { x: { time: false } },
      series: [{ label: "window" }, ...series.map((s) => ({ ...s, spanGaps: true, value: (u, v) => (v == null ? "" : fmtNum(v)) }))],
      axes: [{ label: "window", values: fmt, size: 40 }, { values: fmt, size: 56 }],
    }, data, box);
    return card;
  });
}

export async function monitorPage(name, setCrumbs, selected) {
  setCrumbs({ text: "Monitors", href: "#/monitors" }, { text: name });
  const doc = await call("GET", "/ui/monitor-summary", { query: { monitor: name, max_windows: 500 } });
  const ws = doc.windows;
  let pick = ws.length - 1;
  if (selected !== undefined && selected !== "") {
    const i = ws.findIndex((w) => String(w.index) === String(selected));
    if (i >= 0) pick = i;
  }
  const frame = h("iframe", { class: "report-frame", sandbox: "allow-scripts", title: "drift report" });
  const reportHead = h("div", { class: "report-head" });
  const select = h("select", { id: "report-window", onchange: () => show(Number(select.value)) },
    ws.map((w, i) => h("option", { value: String(i) }, `window ${w.index} (${w.start ?? ""} … ${w.end ?? ""})`)));
  let ticket = 0;
  async function show(i) {
    pick = i;
    select.value = String(i);
    const w = ws[i];
    const mine = ++ticket;
    reportHead.replaceChildren(h("span", { class: "muted" }, `Loading the report of window ${w.index}…`));
    history.replaceState(null, "", monitorHref(name, w.index));
    document.querySelectorAll(".heatmap .sel").forEach((el) => el.classList.remove("sel"));
    document.querySelectorAll(`.heatmap [data-window="${w.index}"]`).forEach((el) => el.classList.add("sel"));
    try {
      const r = await call("GET", "/ui/monitor-report", { query: { monitor: name, result_id: w.result_id } });
      if (mine !== ticket) return;
      frame.srcdoc = r.html;
      frame.dataset.window = String(r.window_index);
      reportHead.replaceChildren(h("strong", {}, `Window ${w.index}`), ` · ${w.n_rows} rows · recorded ${fmtTime(w.created_ms)}`);
    } catch (err) {
      if (mine !== ticket) return;
      frame.removeAttribute("srcdoc");
      reportHead.replaceChildren(h("div", { class: "error-box" }, `The report could not be shown: ${err.message}`));
    }
  }
  const alerts = doc.alerts.length
    ? h("table", { class: "kv alerts" },
      h("thead", {}, h("tr", {}, ["Window", "Rule", "Value", "Threshold", "Severity", "Message", "Fired"].map((c) => h("th", {}, c)))),
      h("tbody", {}, doc.alerts.slice().reverse().map((a) => h("tr", { "data-window": String(a.window_index) },
        h("td", {}, h("a", { href: monitorHref(name, a.window_index) }, a.window_index)),
        h("td", { class: "mono" }, a.rule ?? a.name), h("td", { class: "num" }, fmtNum(a.value)),
        h("td", { class: "num" }, fmtNum(a.threshold)), h("td", {}, a.severity), h("td", {}, a.message),
        h("td", {}, fmtTime(a.created_ms))))))
    : emptyState("No alert fired.");
  const charts = metricCharts(doc);
  const el = h("section", { class: "monitor-page" },
    h("div", { class: "title-row" }, h("h1", {}, name),
      h("span", { class: "count" }, (doc.older ? `newest ${ws.length} windows shown` : `${ws.length} windows`) +
        ` · ${doc.columns.length} features · ${doc.alerts.length} alerts`)),
    h("h2", {}, "Drift per feature"), heatmap(doc, show),
    h("h2", {}, "Performance over windows"), h("div", { class: "chart-grid" }, charts),
    h("h2", {}, "Alerts"), alerts,
    h("h2", {}, "Report of a window"), h("div", { class: "toolbar" }, select, reportHead), frame);
  return {
    el,
    mounted: () => { charts.forEach((c) => c._plot && c._plot()); if (ws.length) show(pick); },
  };
}
