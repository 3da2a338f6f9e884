// The loop timeline: #/timeline (pick a model) and #/timeline/<model>: everything that happened to a
// model, from the event log, on one time axis with a lane per kind (windows, alerts, retrains,
// candidates, checks, promotions, refusals, rollbacks, serving). Pages of the log are read newest
// first ("Older" fetches the next page), so a busy model never loads its whole history.
import { call } from "./api.js";
import { h, emptyState, fmtTime } from "./util.js";
import { monitorHref } from "./monitoring.js";

const enc = encodeURIComponent;
const SVG = "http://www.w3.org/2000/svg";
const PAGE = 500;

export const LANES = [
  ["windows", "Monitor windows", "#64748b", ["monitor_result"]],
  ["alerts", "Alerts", "#dc2626", ["monitor_alert"]],
  ["retrains", "Retrains", "#7c3aed", ["trigger_fired", "pipeline_run_started", "pipeline_run_finished"]],
  ["candidates", "Candidates", "#0891b2", ["model_created", "version_registered"]],
  ["checks", "Checks", "#16a34a", ["report_attached"]],
  ["promotions", "Promotions", "#2563eb", ["alias_set", "alias_deleted"]],
  ["refusals", "Refusals", "#d97706", ["promotion_refused", "training_blocked"]],
  ["rollbacks", "Rollbacks", "#be123c", ["alias_rollback", "deployment_rollback"]],
  ["serving", "Serving", "#0f766e", ["serving_swapped", "serving_swap_failed", "deployment_created", "deployment_updated", "deployment_deleted"]],
];
const LANE_OF = new Map(LANES.flatMap(([id, , , types]) => types.map((t) => [t, id])));

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// What an event says and where it leads.
export function describe(e, model) {
  const p = e.payload || {};
  const sub = e.subject.slice(e.subject.indexOf("/") + 1);
  const modelHref = `#/models/${enc(model)}`;
  switch (e.type) {
    case "monitor_result": return { text: `${p.monitor} window ${p.window_index}: ${p.n_rows} rows${p.n_alerts ? `, ${p.n_alerts} alert(s)` : ""}`, href: monitorHref(p.monitor, p.window_index), bad: p.n_alerts > 0 };
    case "monitor_alert": return { text: `${p.monitor} window ${p.window_index}: ${p.message || p.name}`, href: monitorHref(p.monitor, p.window_index), bad: true };
    case "trigger_fired": return { text: `${p.trigger} fired (${p.kind}): ${p.reason || ""}`, href: `#/pipeline-runs/${p.run_id}` };
    case "pipeline_run_started": return { text: `${sub} run ${String(p.run_id).slice(0, 8)} started (${p.trigger}${p.reason ? `: ${p.reason}` : ""})`, href: `#/pipeline-runs/${p.run_id}` };
    case "pipeline_run_finished": return { text: `${sub} run ${String(p.run_id).slice(0, 8)} ${p.status}${p.error ? `: ${p.error}` : ""}`, href: `#/pipeline-runs/${p.run_id}`, bad: p.status === "failed" };
    case "model_created": return { text: `model ${p.model} created`, href: modelHref };
    case "version_registered": return { text: `candidate v${p.version} registered`, href: modelHref };
    case "report_attached": return { text: `check of v${p.version}: ${(p.after || {}).status}${(p.after || {}).baseline_version ? ` vs v${p.after.baseline_version}` : ""}`, href: modelHref, bad: (p.after || {}).status === "fail" };
    case "alias_set": return { text: `${p.alias} -> v${p.version}${p.before ? ` (was v${p.before})` : ""}${p.reason ? `: ${p.reason}` : ""}`, href: modelHref };
    case "alias_deleted": return { text: `${p.alias} removed`, href: modelHref };
    case "alias_rollback": return { text: `${p.alias} rolled back to v${p.version}${p.reason ? `: ${p.reason}` : ""}`, href: modelHref, bad: true };
    case "promotion_refused": return { text: `v${p.version} not promoted: ${p.reason || ""}`, href: modelHref, bad: true };
    case "training_blocked": return { text: `training blocked: ${p.reason || ""}`, href: modelHref, bad: true };
    case "serving_swapped": return { text: `serving ${p.from || "–"} -> ${p.to}`, href: p.deployment ? `#/deployments/${enc(p.deployment)}` : modelHref };
    case "serving_swap_failed": return { text: `swap to ${p.to || "?"} failed: ${p.error || ""}`, href: modelHref, bad: true };
    default: return { text: `${e.type.replaceAll("_", " ")} ${sub}`, href: e.subject.startsWith("deployments/") ? `#/deployments/${enc(sub)}` : modelHref, bad: e.type === "deployment_rollback" };
  }
}

function chart(events, model) {
  const lanes = LANES.filter(([id]) => events.some((e) => LANE_OF.get(e.type) === id));
  const LH = 30, LEFT = 130, W = Math.max(700, Math.min(1400, window.innerWidth - 80)), top = 8;
  const height = top + lanes.length * LH + 28;
  let t0 = Math.min(...events.map((e) => e.ts_ms)), t1 = Math.max(...events.map((e) => e.ts_ms));
  if (t1 - t0 < 1000) { const mid = (t0 + t1) / 2; t0 = mid - 30_000; t1 = mid + 30_000; }  // all in one second: a minute around it
  const span = t1 - t0;
  const x = (t) => LEFT + 10 + ((t - t0) / span) * (W - LEFT - 30);
  const root = svg("svg", { class: "timeline", width: W, height, viewBox: `0 0 ${W} ${height}` });
  lanes.forEach(([id, label, col], i) => {
    const y = top + i * LH;
    root.append(svg("rect", { x: 0, y, width: W, height: LH, class: i % 2 ? "lane odd" : "lane" }),
      svg("text", { x: 8, y: y + LH / 2 + 4, class: "lane-label" }, label));
  });
  for (const e of events) {
    const lane = LANE_OF.get(e.type);
    const i = lanes.findIndex(([id]) => id === lane);
    if (i < 0) continue;
    const d = describe(e, model);
    const col = d.bad ? "#dc2626" : lanes[i][2];
    const cy = top + i * LH + LH / 2, cx = x(e.ts_ms);
    const mark = e.type === "monitor_result"
      ? svg("rect", { x: cx - 3, y: cy - 8, width: 6, height: 16, rx: 2, fill: col, opacity: d.bad ? 1 : 0.55 })
      : svg("circle", { cx, cy, r: 6, fill: col, stroke: "#fff", "stroke-width": 1.5 });
    root.append(svg("a", { href: d.href, class: "tl-mark", "data-event": String(e.id), "data-type": e.type }, mark,
      svg("title", {}, `${fmtTime(e.ts_ms)} · ${e.type}\n${d.text}`)));
  }
  const axisY = top + lanes.length * LH + 16;
  let previous = null;
  for (let k = 0; k <= 4; k++) {
    const t = t0 + (span * k) / 4;
    if (fmtTime(t) === previous) continue;  // no label twice
    previous = fmtTime(t);
    root.append(svg("text", { x: x(t), y: axisY, class: "axis-label", "text-anchor": k === 0 ? "start" : k === 4 ? "end" : "middle" }, fmtTime(t)));
  }
  return root;
}

export async function timelineIndexPage(setCrumbs) {
  setCrumbs({ text: "Timeline" });
  const models = await call("GET", "/ui/models");
  const list = Array.isArray(models) ? models : models.models || [];
  const head = h("h1", {}, "Loop timeline");
  if (!list.length) return h("section", {}, head, emptyState("No registered model yet: a timeline follows one model through the loop."));
  return h("section", {}, head, h("p", { class: "muted" }, "Pick a model: its windows, alerts, retrains, checks, promotions and swaps on one axis."),
    h("ul", { class: "model-list" }, list.map((m) => h("li", {}, h("a", { href: `#/timeline/${enc(m.name)}` }, m.name)))));
}

export async function timelinePage(model, setCrumbs) {
  setCrumbs({ text: "Timeline", href: "#/timeline" }, { text: model });
  const first = await call("GET", `/ui/models/${enc(model)}/timeline`, { query: { limit: PAGE } });
  let events = first.events;
  let next = first.next_before_id;
  const chartBox = h("div", { class: "tl-chart" });
  const listBody = h("tbody", {});
  const count = h("span", { class: "count" });
  const older = h("button", { id: "tl-older", onclick: loadOlder }, "Older events");
  const laneFilter = h("select", { id: "tl-lane", onchange: render }, h("option", { value: "" }, "every lane"),
    LANES.map(([id, label]) => h("option", { value: id }, label)));
  function render() {
    const lane = laneFilter.value;
    const shown = lane ? events.filter((e) => LANE_OF.get(e.type) === lane) : events;
    count.textContent = `${events.length} events${next ? " (older ones not loaded)" : ""} · ${first.subjects.join(", ")}`;
    older.hidden = !next;
    chartBox.replaceChildren(shown.length ? chart(shown, model) : emptyState("Nothing in this lane."));
    listBody.replaceChildren(...shown.map((e) => {
      const d = describe(e, model);
      const laneId = LANE_OF.get(e.type);
      const lane = LANES.find(([id]) => id === laneId);
      return h("tr", { "data-type": e.type, "data-event": String(e.id), class: d.bad ? "bad" : "" },
        h("td", {}, fmtTime(e.ts_ms)),
        h("td", {}, h("span", { class: "swatch", style: { background: lane ? lane[2] : "#999" } }), lane ? lane[1] : e.type),
        h("td", {}, h("a", { href: d.href }, d.text)),
        h("td", { class: "muted" }, e.actor || ""));
    }));
  }
  async function loadOlder() {
    older.disabled = true;
    try {
      const doc = await call("GET", `/ui/models/${enc(model)}/timeline`, { query: { limit: PAGE, before_id: next } });
      events = events.concat(doc.events);
      next = doc.next_before_id;
      render();
    } catch (err) {
      older.replaceWith(h("div", { class: "error-box" }, `Older events could not be read: ${err.message}`));
    } finally {
      older.disabled = false;
    }
  }
  const el = h("section", { class: "timeline-page" },
    h("div", { class: "title-row" }, h("h1", {}, `${model}: the loop`), count),
    events.length ? h("div", {}, h("div", { class: "toolbar" }, laneFilter, older), chartBox,
      h("table", { class: "kv tl-list" }, h("thead", {}, h("tr", {}, ["When", "Lane", "What", "By"].map((c) => h("th", {}, c)))), listBody))
      : emptyState("Nothing happened to this model yet."));
  if (events.length) render();
  return el;
}
