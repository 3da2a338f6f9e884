// The run page's Media section: per key, images and figures with a slider over their steps, tables
// sortable by a click on a column, histograms as a steps x bins heatmap with one step's bars.
import { call, api, blobUrl } from "./api.js";
import { h, fmtNum, fmtBytes, emptyState } from "./util.js";

const urls = new Map(); // sha256 -> object URL (a slider moved back and forth fetches each once)

function blob(sha) {
  if (!urls.has(sha)) urls.set(sha, blobUrl(sha));
  return urls.get(sha);
}

function slider(items, onStep, id) {
  const label = h("span", { class: "media-step mono" });
  const input = h("input", { type: "range", min: 0, max: items.length - 1, value: items.length - 1,
    step: 1, class: "media-slider", "data-key": id, "aria-label": `${id} step` });
  const pick = () => {
    const i = Number(input.value);
    label.textContent = `step ${items[i].step}` + (items.length > 1 ? `  (${i + 1} of ${items.length})` : "");
    onStep(items[i], i);
  };
  input.addEventListener("input", pick);
  const el = h("div", { class: "media-controls" }, items.length > 1 ? input : null, label);
  return { el, pick };
}

let plotlyLoad = null; // one <script> for plotly.js, from the server's own plotly install
function plotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoad) {
    plotlyLoad = new Promise((resolve, reject) => {
      const s = h("script", { src: "/ui/vendor/plotly.min.js" });
      s.onload = () => resolve(window.Plotly);
      s.onerror = () => { plotlyLoad = null; reject(new Error("plotly.js is not installed where this server runs (pip install plotly there)")); };
      document.head.append(s);
    });
  }
  return plotlyLoad;
}

async function drawPlotly(frame, url, item) {
  const fig = await (await fetch(url)).json();
  const P = await plotly();
  const div = h("div", { class: "media-plotly", "data-step": item.step });
  frame.replaceChildren(div);
  await P.newPlot(div, fig.data || [], { ...(fig.layout || {}), autosize: true },
    { responsive: true, displaylogo: false });
}

function imageCard(group) {
  const img = h("img", { class: "media-image", alt: group.key, "data-key": group.key });
  img.addEventListener("load", () => {
    // Small images (thumbnails, MNIST digits) are scaled up by a whole factor, pixels kept sharp.
    const k = Math.max(1, Math.min(Math.floor(480 / img.naturalWidth), Math.ceil(192 / img.naturalWidth)));
    img.style.width = `${img.naturalWidth * k}px`;
  });
  const note = h("span", { class: "muted" });
  const frame = h("div", { class: "media-frame" }, img);
  let want = null;
  const show = async (item) => {
    want = item;
    img.dataset.step = item.step;
    img.dataset.sha256 = item.sha256 || "";
    const m = item.meta || {};
    note.textContent = [m.width && `${m.width}×${m.height}`, m.traces !== undefined && `${m.traces} trace${m.traces === 1 ? "" : "s"}`,
      m.source, fmtBytes(item.size)].filter(Boolean).join(" · ");
    if (!item.sha256) { frame.replaceChildren(h("div", { class: "error-box" }, `${item.path}: its file is missing.`)); return; }
    try {
      const url = await blob(item.sha256);
      if (want !== item) return; // the slider moved on meanwhile
      if (m.source === "plotly") { await drawPlotly(frame, url, item); return; }
      img.src = url;
      frame.replaceChildren(img);
    } catch (err) {
      frame.replaceChildren(h("div", { class: "error-box" }, `${item.path}: ${err.message}`));
    }
  };
  const s = slider(group.items, show, group.key);
  s.pick();
  return h("div", { class: `media-card media-${group.kind}`, "data-key": group.key },
    h("h3", {}, group.key, " ", h("span", { class: "muted" }, group.kind)), frame, s.el, note);
}

function sortableTable(columns, rows) {
  let by = -1;
  let dir = 1;
  const body = h("tbody");
  const heads = columns.map((c, i) => h("th", { class: "sortable", "data-col": c, onclick: () => {
    dir = by === i ? -dir : 1;
    by = i;
    heads.forEach((th, j) => { th.dataset.sort = j === by ? (dir > 0 ? "asc" : "desc") : ""; });
    fill();
  } }, c));
  const cmp = (a, b) => {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1; // empty cells last, either way
    if (b === null || b === undefined) return -1;
    if (typeof a === "number" && typeof b === "number") return (a - b) * dir;
    return String(a).localeCompare(String(b), undefined, { numeric: true }) * dir;
  };
  const fill = () => {
    const order = by < 0 ? rows : [...rows].sort((a, b) => cmp(a[by], b[by]));
    body.replaceChildren(...order.map((r) => h("tr", {}, r.map((c) => h("td", {}, typeof c === "number" ? fmtNum(c) : c ?? "")))));
  };
  fill();
  return h("table", { class: "kv data-table media-table" }, h("thead", {}, h("tr", {}, heads)), body);
}

function tableCard(group, runId) {
  const pane = h("div", { class: "scroll-x" });
  let want = null;
  const show = async (item) => {
    want = item;
    pane.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const p = await api.preview(runId, item.path);
      if (want !== item) return;
      if (p.kind !== "table") { pane.replaceChildren(emptyState(`No table preview${p.reason ? `: ${p.reason}` : ""}.`)); return; }
      pane.replaceChildren(sortableTable(p.columns, p.rows),
        h("p", { class: "muted" }, `First ${p.rows.length} rows` + (p.total_rows != null ? ` of ${p.total_rows.toLocaleString()}` : "") + " · click a column to sort"));
    } catch (err) {
      pane.replaceChildren(h("div", { class: "error-box" }, `${item.path}: ${err.message}`));
    }
  };
  const s = slider(group.items, show, group.key);
  s.pick();
  return h("div", { class: "media-card media-table-card", "data-key": group.key },
    h("h3", {}, group.key, " ", h("span", { class: "muted" }, "table")), s.el, pane);
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function heatmap(items, lo, hi, cols) {
  // Rows are steps (oldest at the top), columns equal bins over every step's range; each step's
  // bins spread their counts over the columns they overlap (as densities), each row shaded
  // relative to its densest column.
  const rowH = Math.max(2, Math.min(14, Math.floor(240 / items.length)));
  const canvas = h("canvas", { class: "media-heatmap", width: cols * 4, height: rowH * items.length });
  const ctx = canvas.getContext("2d");
  const span = hi - lo || 1;
  items.forEach((item, r) => {
    const { edges, counts } = item.meta;
    const row = new Float64Array(cols);
    counts.forEach((c, i) => {
      const a = ((edges[i] - lo) / span) * cols;
      const b = ((edges[i + 1] - lo) / span) * cols;
      const width = Math.max(b - a, 1e-9);
      for (let col = Math.max(0, Math.floor(a)); col < Math.min(cols, Math.ceil(b)); col++) {
        row[col] += (c * (Math.min(b, col + 1) - Math.max(a, col))) / width;
      }
    });
    const top = Math.max(...row) || 1;
    row.forEach((v, c) => {
      const t = v / top;
      ctx.fillStyle = `rgba(37, 99, 235, ${t === 0 ? 0.04 : 0.15 + 0.85 * t})`;
      ctx.fillRect(c * 4, r * rowH, 4, rowH);
    });
  });
  return canvas;
}

function bars(item, width, height) {
  const { edges, counts } = item.meta;
  const top = Math.max(...counts) || 1;
  const w = width / counts.length;
  const el = svg("svg", { class: "media-bars", width, height, viewBox: `0 0 ${width} ${height}`, "data-step": item.step });
  counts.forEach((c, i) => {
    const bh = (c / top) * (height - 2);
    const rect = svg("rect", { x: (i * w).toFixed(2), y: (height - bh).toFixed(2), width: Math.max(1, w - 1).toFixed(2),
      height: bh.toFixed(2), "data-count": c });
    const tip = svg("title", {});
    tip.textContent = `[${fmtNum(edges[i])}, ${fmtNum(edges[i + 1])}): ${c}`;
    rect.append(tip);
    el.append(rect);
  });
  return el;
}

function histogramCard(group) {
  const items = group.items;
  const lo = Math.min(...items.map((i) => i.meta.edges[0]));
  const hi = Math.max(...items.map((i) => i.meta.edges[i.meta.edges.length - 1]));
  const slot = h("div", { class: "media-bars-slot" });
  const range = h("div", { class: "media-axis muted" });
  const show = (item) => {
    const e = item.meta.edges;
    slot.replaceChildren(bars(item, 360, 120));
    range.textContent = `${fmtNum(e[0])} … ${fmtNum(e[e.length - 1])} · ${item.meta.total.toLocaleString()} values` +
      (item.meta.nonfinite ? ` (+${item.meta.nonfinite} NaN/inf)` : "");
  };
  const s = slider(items, show, group.key);
  s.pick();
  return h("div", { class: "media-card media-histogram", "data-key": group.key },
    h("h3", {}, group.key, " ", h("span", { class: "muted" }, "histogram")),
    items.length > 1 ? h("div", {}, h("div", { class: "muted media-note" }, `steps ${items[0].step} → ${items[items.length - 1].step} (rows) over ${fmtNum(lo)} … ${fmtNum(hi)}` +
      (group.logged_steps ? ` · ${items.length} of ${group.logged_steps.toLocaleString()} steps shown` : "")),
      heatmap(items, lo, hi, 90)) : null,
    slot, range, s.el);
}

export function mediaSection(run) {
  const body = h("div", { class: "media-grid", id: "media" }, h("p", { class: "muted" }, "Loading media…"));
  const section = h("section", {}, h("h2", {}, "Media"), body);
  call("GET", `/ui/runs/${encodeURIComponent(run.id)}/media`).then((doc) => {
    if (!doc.keys.length) { body.replaceChildren(emptyState("No images, figures, tables or histograms logged.")); return; }
    body.replaceChildren(...doc.keys.map((g) => {
      if (g.kind === "table") return tableCard(g, run.id);
      if (g.kind === "histogram") return histogramCard(g);
      return imageCard(g);
    }));
  }).catch((err) => body.replaceChildren(h("div", { class: "error-box" }, `Media: ${err.message}`)));
  return section;
}
