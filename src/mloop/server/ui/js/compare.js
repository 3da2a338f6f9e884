// Two or more runs side by side: overlaid metric charts, the params and metrics that differ,
// and parallel coordinates over the numeric params and metrics.
import { api, PageError } from "./api.js";
import { h, fmtNum, color, emptyState } from "./util.js";
import { overlayChart } from "./charts.js";

const num = (v) => (typeof v === "string" ? Number(v) : v);

function diffTable(runs, kind, id) {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r[kind] || {})))].filter((k) => !k.startsWith("system/")).sort();
  if (!keys.length) return emptyState(`No ${kind}.`);
  const value = (r, k) => {
    const v = (r[kind] || {})[k];
    if (v === undefined) return null;
    return kind === "metrics" ? num(v.last) : v;
  };
  const onlyDiff = h("input", { type: "checkbox", checked: true, class: "only-diff" });
  const body = h("tbody");
  const paint = () => {
    body.replaceChildren(...keys.flatMap((k) => {
      const vals = runs.map((r) => value(r, k));
      const differs = new Set(vals.map((v) => (v === null ? "\u0000" : String(v)))).size > 1;
      if (onlyDiff.checked && !differs) return [];
      let best = -1, worst = -1;
      if (kind === "metrics") {
        const finite = vals.map((v, i) => [v, i]).filter(([v]) => typeof v === "number" && Number.isFinite(v));
        if (finite.length > 1) {
          finite.sort((a, b) => a[0] - b[0]);
          best = finite[finite.length - 1][1]; worst = finite[0][1];
        }
      }
      return [h("tr", { class: differs ? "differs" : "", "data-key": k }, h("th", {}, k), vals.map((v, i) => h("td", {
        class: `${i === best ? "hi" : ""}${i === worst ? " lo" : ""}`,
      }, v === null ? h("span", { class: "muted" }, "—") : kind === "metrics" ? fmtNum(v) : v)))];
    }));
    if (!body.children.length) body.append(h("tr", {}, h("td", { colspan: runs.length + 1, class: "muted" }, "No differences.")));
  };
  onlyDiff.onchange = paint;
  paint();
  return h("div", {}, h("label", { class: "muted" }, onlyDiff, " only differences"),
    h("div", { class: "scroll-x" }, h("table", { class: "kv diff", id },
      h("thead", {}, h("tr", {}, h("th", {}, kind === "metrics" ? "Metric (last)" : "Param"),
        runs.map((r, i) => h("th", {}, h("span", { class: "swatch", style: { background: color(i) } }), h("a", { href: `#/runs/${r.id}` }, r.name))))),
      body)));
}

// Axes: every param and metric that is numeric in all runs that have it (strings become
// categorical axes when there are few distinct values).
function axes(runs) {
  const out = [];
  const keys = (kind) => [...new Set(runs.flatMap((r) => Object.keys(r[kind] || {})))].sort();
  for (const kind of ["params", "metrics"]) {
    for (const k of keys(kind)) {
      if (kind === "metrics" && k.startsWith("system/")) continue;
      const vals = runs.map((r) => { const v = (r[kind] || {})[k]; return v === undefined ? null : kind === "metrics" ? num(v.last) : v; });
      const present = vals.filter((v) => v !== null);
      const nums = present.map(Number);
      if (new Set(present.map(String)).size < 2) continue; // the same everywhere: says nothing
      if (present.length && nums.every(Number.isFinite)) {
        out.push({ label: k, kind, values: vals.map((v) => (v === null ? null : Number(v))), numeric: true });
      } else {
        const cats = [...new Set(present.map(String))].sort();
        if (cats.length > 1 && cats.length <= 12) out.push({ label: k, kind, values: vals.map((v) => (v === null ? null : String(v))), cats });
      }
    }
  }
  return out.slice(0, 12);
}

export function parallelCoordinates(runs, { width = 1100, height = 340 } = {}) {
  const ax = axes(runs);
  if (ax.length < 2) return emptyState("Parallel coordinates need two or more params or metrics.");
  const dpr = window.devicePixelRatio || 1;
  const canvas = h("canvas", { id: "parcoords", width: width * dpr, height: height * dpr, style: { width: `${width}px`, height: `${height}px` } });
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  const top = 36, bottom = height - 28, left = 60, right = width - 60;
  const x = (j) => left + (ax.length === 1 ? 0 : (j * (right - left)) / (ax.length - 1));
  const scale = ax.map((a) => {
    if (a.numeric) {
      const vs = a.values.filter((v) => v !== null);
      let lo = Math.min(...vs), hi = Math.max(...vs);
      if (lo === hi) { lo -= 1; hi += 1; }
      return { y: (v) => bottom - ((v - lo) / (hi - lo)) * (bottom - top), lo, hi };
    }
    const n = a.cats.length;
    return { y: (v) => bottom - (a.cats.indexOf(v) / Math.max(1, n - 1)) * (bottom - top) };
  });
  ctx.font = "12px system-ui, sans-serif";
  ctx.textAlign = "center";
  ax.forEach((a, j) => {
    ctx.strokeStyle = "#94a3b8"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(x(j), top); ctx.lineTo(x(j), bottom); ctx.stroke();
  });
  // Labels go on top of the lines, each with a white halo, so a line crossing one leaves it readable.
  const label = (text, lx, ly, fill) => {
    ctx.lineWidth = 3; ctx.strokeStyle = "#fff"; ctx.lineJoin = "round";
    ctx.strokeText(text, lx, ly);
    ctx.fillStyle = fill; ctx.fillText(text, lx, ly);
  };
  const labels = () => ax.forEach((a, j) => {
    label((a.kind === "params" ? "p " : "m ") + (a.label.length > 18 ? a.label.slice(0, 17) + "…" : a.label), x(j), top - 18, "#0f172a");
    if (a.numeric) {
      label(fmtNum(scale[j].hi), x(j), top - 4, "#475569");
      label(fmtNum(scale[j].lo), x(j), bottom + 16, "#475569");
    } else {
      ctx.textAlign = "left";
      a.cats.forEach((c) => label(c.length > 12 ? c.slice(0, 11) + "…" : c, x(j) + 6, scale[j].y(c) + 4, "#475569"));
      ctx.textAlign = "center";
    }
  });
  runs.forEach((r, i) => {
    ctx.strokeStyle = color(i); ctx.lineWidth = 2; ctx.globalAlpha = 0.85;
    ctx.beginPath();
    let pen = false;
    ax.forEach((a, j) => {
      const v = a.values[i];
      if (v === null) { pen = false; return; }
      const y = scale[j].y(v);
      if (pen) ctx.lineTo(x(j), y); else ctx.moveTo(x(j), y);
      pen = true;
    });
    ctx.stroke();
  });
  ctx.globalAlpha = 1;
  labels();
  canvas.dataset.axes = String(ax.length);
  canvas.dataset.lines = String(runs.length);
  return canvas;
}

export async function comparePage(ids, setCrumbs) {
  const unique = [...new Set(ids.filter(Boolean))];
  if (unique.length < 2) throw new PageError("Compare needs two or more runs: select them in a runs table.");
  // Every run is asked for; the page names each one that cannot be shown, in the URL's order.
  const got = await Promise.allSettled(unique.map((id) => api.run(id)));
  const failed = got.filter((g) => g.status === "rejected").map((g) => g.reason);
  if (failed.length) {
    failed[0].message = failed.map((e) => e.message).join(" ");
    throw failed[0];
  }
  const runs = got.map((g) => g.value);
  const project = await api.project(runs[0].project_id);
  setCrumbs({ text: "Projects", href: "#/" }, { text: project.name, href: `#/projects/${project.id}` }, { text: `Compare ${runs.length} runs` });
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics || {})))].filter((k) => !k.startsWith("system/")).sort();
  const grid = h("div", { class: "chart-grid", id: "overlay-charts" });
  const w = document.getElementById("main").clientWidth || 1200;
  const width = Math.max(320, Math.min(620, Math.floor((w - 48) / 2)));
  const charts = await Promise.all(keys.slice(0, 24).map((k) => overlayChart(runs, k, { width })));
  grid.append(...charts.map((c) => c.el));
  const legend = h("div", { class: "legend" }, runs.map((r, i) => h("span", { class: "legend-item" },
    h("span", { class: "swatch", style: { background: color(i) } }), h("a", { href: `#/runs/${r.id}` }, r.name))));
  const el = h("div", { class: "compare-page" },
    h("div", { class: "title-row" }, h("h1", {}, `Compare ${runs.length} runs`), legend),
    h("section", {}, h("h2", {}, "Parallel coordinates"), h("div", { class: "scroll-x" }, parallelCoordinates(runs, { width: Math.max(600, w - 40) }))),
    h("div", { class: "cols two" },
      h("section", {}, h("h2", {}, "Params"), diffTable(runs, "params", "param-diff")),
      h("section", {}, h("h2", {}, "Metrics"), diffTable(runs, "metrics", "metric-diff"))),
    h("section", {}, h("h2", {}, "Charts"), keys.length ? grid : emptyState("No metrics logged.")));
  return { el };
}
