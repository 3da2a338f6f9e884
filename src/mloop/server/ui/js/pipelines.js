// Pipelines: #/pipelines (every pipeline), #/pipelines/<name> (its runs: status, trigger and reason,
// duration) and #/pipeline-runs/<id>: the step DAG (SVG; edges where a step's input is another's
// output, by content hash), each step's details on click, and the trigger firing that started it.
import { call } from "./api.js";
import { h, emptyState, fmtTime, fmtDuration, table } from "./util.js";
import { monitorHref } from "./monitoring.js";

const enc = encodeURIComponent;
const SVG = "http://www.w3.org/2000/svg";
const short = (sha) => (sha ? `${sha.slice(0, 12)}…` : "");
const duration = (a, b) => (b - a < 1000 ? `${Math.max(0, b - a)} ms` : fmtDuration(a, b));
const status = (s) => h("span", { class: `status st-${s}` }, s);

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export async function pipelinesPage(setCrumbs) {
  setCrumbs({ text: "Pipelines" });
  const pipelines = await call("GET", "/pipelines", { query: { limit: 1000 } });
  const head = h("h1", {}, "Pipelines");
  if (!pipelines.length) {
    return h("section", {}, head, emptyState("No pipeline has run yet. Run one (mloop pipelines run module:function) and it shows here."));
  }
  return h("section", {}, head, table(["Pipeline", "Code", "Created", "Updated"], pipelines.map((p) => [
    h("a", { href: `#/pipelines/${enc(p.name)}` }, p.name), h("span", { class: "mono" }, p.code_ref),
    fmtTime(p.created_ms), fmtTime(p.updated_ms)]), { class: "kv pipelines" }));
}

export async function pipelineRunsPage(name, setCrumbs) {
  setCrumbs({ text: "Pipelines", href: "#/pipelines" }, { text: name });
  const [pipeline, runs] = await Promise.all([
    call("GET", `/pipelines/${enc(name)}`),
    call("GET", "/pipeline-runs", { query: { pipeline: name, limit: 500 } }),
  ]);
  const head = h("div", { class: "title-row" }, h("h1", {}, name), h("span", { class: "mono muted" }, pipeline.code_ref),
    h("span", { class: "count" }, `${runs.length}${runs.length === 500 ? "+" : ""} runs`));
  if (!runs.length) return h("section", {}, head, emptyState("This pipeline has no run."));
  return h("section", {}, head, table(["Run", "Status", "Trigger", "Reason", "Started", "Duration", "By"], runs.map((r) => [
    h("a", { class: "mono", href: `#/pipeline-runs/${r.id}` }, r.id.slice(0, 8)), status(r.status),
    h("span", { class: "chip" }, r.trigger), h("span", { class: "reason" }, r.reason || ""),
    fmtTime(r.start_ms), r.end_ms ? duration(r.start_ms, r.end_ms) : "running", r.actor || ""]), { class: "kv pipeline-runs" }));
}

// Edges by content: a step's input whose hash is another step's output. Layers by longest path.
export function layoutDag(steps) {
  const producer = new Map();
  steps.forEach((s) => Object.values(s.outputs || {}).forEach((sha) => { if (!producer.has(sha)) producer.set(sha, s.name); }));
  const edges = [];
  const seen = new Set();
  for (const s of steps) {
    for (const [arg, sha] of Object.entries(s.inputs || {})) {
      const from = producer.get(sha);
      if (from && from !== s.name && !seen.has(`${from}>${s.name}`)) { seen.add(`${from}>${s.name}`); edges.push({ from, to: s.name, arg }); }
    }
  }
  const layer = new Map(steps.map((s) => [s.name, 0]));
  for (let pass = 0; pass < steps.length; pass++) {  // longest path (the graph is acyclic)
    let moved = false;
    for (const e of edges) if (layer.get(e.to) < layer.get(e.from) + 1) { layer.set(e.to, layer.get(e.from) + 1); moved = true; }
    if (!moved) break;
  }
  const byLayer = [];
  steps.forEach((s) => { const l = layer.get(s.name); (byLayer[l] = byLayer[l] || []).push(s.name); });
  const pos = new Map();
  byLayer.forEach((names, l) => names.forEach((n, i) => pos.set(n, { col: l, row: i })));
  return { edges, pos, cols: byLayer.length, rows: Math.max(1, ...byLayer.map((x) => (x || []).length)) };
}

function dag(steps, onPick) {
  const W = 190, H = 64, GX = 70, GY = 24;
  const { edges, pos, cols, rows } = layoutDag(steps);
  const x = (n) => 10 + pos.get(n).col * (W + GX);
  const y = (n) => 10 + pos.get(n).row * (H + GY);
  const width = 20 + cols * W + (cols - 1) * GX, height = 20 + rows * H + (rows - 1) * GY;
  const root = svg("svg", { class: "dag", width, height, viewBox: `0 0 ${width} ${height}` },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
      svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#94a3b8" }))));
  for (const e of edges) {
    const x1 = x(e.from) + W, y1 = y(e.from) + H / 2, x2 = x(e.to), y2 = y(e.to) + H / 2, mx = (x1 + x2) / 2;
    root.append(svg("path", { class: "dag-edge", d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2 - 2} ${y2}`, "marker-end": "url(#arrow)",
      "data-from": e.from, "data-to": e.to }, svg("title", {}, `${e.from} → ${e.to} (${e.arg})`)));
  }
  for (const s of steps) {
    const dur = s.end_ms && s.start_ms ? `${Math.max(0, s.end_ms - s.start_ms)} ms` : "";
    const g = svg("g", { class: `dag-node st-${s.status}${s.cache_hit ? " cache-hit" : ""}`, transform: `translate(${x(s.name)},${y(s.name)})`,
      "data-step": s.name, "data-status": s.status, "data-cache-hit": String(!!s.cache_hit), tabindex: "0" },
      svg("rect", { width: W, height: H, rx: 8 }),
      svg("text", { x: 10, y: 20, class: "dag-name" }, s.name.length > 24 ? `${s.name.slice(0, 23)}…` : s.name),
      svg("text", { x: 10, y: 38, class: "dag-meta" }, `${s.status}${s.cache_hit ? " · cache hit" : ""}`),
      svg("text", { x: 10, y: 54, class: "dag-meta" }, `attempts ${s.attempts}${dur ? ` · ${dur}` : ""}`),
      s.cache_hit ? svg("text", { x: W - 26, y: 20, class: "dag-badge" }, "⚡") : null,
      svg("title", {}, `${s.step}\n${s.status}${s.error ? `\n${s.error}` : ""}`));
    g.addEventListener("click", () => onPick(s, g));
    g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") onPick(s, g); });
    root.append(g);
  }
  return root;
}

function hashes(map, formats = {}) {
  const entries = Object.entries(map || {});
  if (!entries.length) return h("span", { class: "muted" }, "none");
  return h("table", { class: "kv hashes" }, h("tbody", {}, entries.map(([k, v]) => h("tr", {},
    h("td", {}, k), h("td", { class: "mono", title: v }, short(v)), formats[k] ? h("td", { class: "muted" }, formats[k]) : null))));
}

function stepDetails(s) {
  const rows = [
    ["Step", h("span", { class: "mono" }, s.step)], ["Status", status(s.status)],
    ["Cache", s.cache_hit ? "hit" : "miss"], ["Cache note", s.cache_note || ""], ["Cache key", h("span", { class: "mono" }, short(s.cache_key))],
    ["Attempts", String(s.attempts)], ["Started", fmtTime(s.start_ms)], ["Duration", s.end_ms ? `${s.end_ms - s.start_ms} ms` : ""],
    ["Tracking run", s.tracking_run_id ? h("a", { href: `#/runs/${s.tracking_run_id}` }, s.tracking_run_id) : ""],
    ["Models", (s.models || []).length ? s.models.map((m) => h("span", { class: "chip" }, m)) : ""],
  ];
  return h("div", { class: "step-details card", "data-step": s.name },
    h("h2", {}, s.name),
    s.error ? h("pre", { class: "error-box step-error" }, s.error) : null,
    h("table", { class: "kv attrs" }, h("tbody", {}, rows.filter((r) => r[1] !== "").map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v))))),
    h("h2", {}, "Inputs"), hashes(s.inputs), h("h2", {}, "Outputs"), hashes(s.outputs, s.output_formats));
}

async function findFiring(run) {
  const key = run.params && run.params.trigger && run.params.trigger.key;
  if (key) return call("GET", "/trigger-firings/by-key", { query: { key } });
  if (run.trigger === "manual" || run.trigger === "resume") return null;
  const firings = await call("GET", "/trigger-firings", { query: { limit: 1000 } });
  return firings.find((f) => f.run_id === run.id) || null;
}

function firingCard(run, f) {
  if (!f) {
    return h("div", { class: "card firing" }, h("h2", {}, "Trigger"), h("p", {}, h("span", { class: "chip" }, run.trigger), " ", run.reason || ""),
      run.resumed_from ? h("p", {}, "Resumes ", h("a", { href: `#/pipeline-runs/${run.resumed_from}` }, run.resumed_from)) : null);
  }
  const d = f.details || {};
  const rows = [["Kind", h("span", { class: "chip" }, f.kind)], ["Trigger", f.trigger], ["Status", status(f.status)], ["Reason", f.reason],
    ["Fired", fmtTime(f.created_ms)], ["By", f.actor || ""]];
  if (d.monitor) rows.push(["Monitor", h("a", { href: monitorHref(d.monitor, d.window_index) }, `${d.monitor}, window ${d.window_index}`)]);
  if (d.window_start) rows.push(["Window", `${d.window_start} … ${d.window_end}`]);
  if ((d.columns || []).length) rows.push(["Columns", d.columns.map((c) => h("span", { class: "chip" }, c))]);
  for (const a of d.alerts || []) rows.push(["Alert", h("span", { class: "mono" }, `${a.metric} = ${a.value} (${a.op} ${a.threshold})`)]);
  if (d.path) rows.push(["Path", d.path]);
  if (f.error) rows.push(["Error", f.error]);
  return h("div", { class: "card firing", "data-kind": f.kind }, h("h2", {}, "Triggered by"),
    h("table", { class: "kv attrs" }, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v))))));
}

export async function pipelineRunPage(id, setCrumbs) {
  const [run, steps] = await Promise.all([call("GET", `/pipeline-runs/${enc(id)}`), call("GET", `/pipeline-runs/${enc(id)}/steps`)]);
  setCrumbs({ text: "Pipelines", href: "#/pipelines" }, { text: run.pipeline, href: `#/pipelines/${enc(run.pipeline)}` }, { text: id.slice(0, 8) });
  let firing = null, firingError = null;
  try { firing = await findFiring(run); } catch (err) { firingError = err; }
  const details = h("div", { class: "step-panel" }, h("p", { class: "muted" }, "Click a step for its inputs, outputs and error."));
  const pick = (s, g) => {
    document.querySelectorAll(".dag-node.picked").forEach((n) => n.classList.remove("picked"));
    g.classList.add("picked");
    details.replaceChildren(stepDetails(s));
  };
  const counts = {};
  steps.forEach((s) => { counts[s.status] = (counts[s.status] || 0) + 1; });
  const cached = steps.filter((s) => s.cache_hit).length;
  const meta = [["Status", status(run.status)], ["Trigger", h("span", { class: "chip" }, run.trigger)], ["Reason", run.reason || ""],
    ["Started", fmtTime(run.start_ms)], ["Duration", run.end_ms ? duration(run.start_ms, run.end_ms) : "running"],
    ["Code", h("span", { class: "mono" }, run.code_ref)],
    ["Tracking run", run.tracking_run_id ? h("a", { href: `#/runs/${run.tracking_run_id}` }, run.tracking_run_id) : ""],
    ["By", run.actor || ""], ["Error", run.error || ""]].filter((r) => r[1] !== "");
  const el = h("section", { class: "pipeline-run" },
    h("div", { class: "title-row" }, h("h1", {}, `${run.pipeline} · run ${id.slice(0, 8)}`),
      h("span", { class: "count" }, `${steps.length} steps · ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ")} · ${cached} cache hits`)),
    run.error ? h("div", { class: "error-box" }, run.error) : null,
    h("div", { class: "cols two" },
      h("table", { class: "kv attrs" }, h("tbody", {}, meta.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v))))),
      firingError ? h("div", { class: "error-box" }, `The trigger firing could not be read: ${firingError.message}`) : firingCard(run, firing)),
    h("h2", {}, "Steps"),
    steps.length ? h("div", { class: "dag-wrap" }, dag(steps, pick)) : emptyState(run.status === "running" ? "No step has finished yet." : "This run recorded no step."),
    details);
  return el;
}
