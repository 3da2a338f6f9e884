// Deployments: #/deployments (the list), #/deployments/<name> (traffic split, the versions its
// URIs resolve to now, requests over time from the inference log, revisions and events).
import { api } from "./api.js";
import { h, fmtTime, fmtNum, color, emptyState, table } from "./util.js";

const enc = encodeURIComponent;

function split(d) {
  const main = 100 - (d.canary ? d.canary_percent : 0);
  return h("span", { class: "split" },
    h("span", { class: "split-bar" },
      h("span", { class: "split-main", style: { width: `${main}%` } }),
      d.canary ? h("span", { class: "split-canary", style: { width: `${d.canary_percent}%` } }) : ""),
    ` ${fmtNum(main)}% main` + (d.canary ? ` · ${fmtNum(d.canary_percent)}% canary` : "") + (d.shadow ? " · shadow" : ""));
}

export async function deploymentsPage(setCrumbs) {
  setCrumbs({ text: "Deployments" });
  const deps = await api.raw("GET", "/deployments");
  const head = h("h1", {}, "Deployments");
  if (!deps.length) return h("section", {}, head, emptyState("No deployments yet. Create one with mloop deploy create <name> --model models:/<name>@champion."));
  deps.sort((a, b) => a.name.localeCompare(b.name));
  return h("section", {}, head, table(["Name", "Model", "Canary", "Shadow", "Traffic", "Revision", "Updated"], deps.map((d) => [
    h("a", { href: `#/deployments/${enc(d.name)}` }, d.name),
    h("span", { class: "mono" }, d.model),
    d.canary ? h("span", { class: "mono" }, d.canary) : h("span", { class: "muted" }, "—"),
    d.shadow ? h("span", { class: "mono" }, d.shadow) : h("span", { class: "muted" }, "—"),
    split(d), `r${d.revision}`, fmtTime(d.updated_ms),
  ]), { class: "kv", id: "deployments" }));
}

function trafficChart(t) {
  const total = t.requests.reduce((a, b) => a + b, 0);
  if (!total) return emptyState("No request logged in this period (the inference log is empty here: is log_sample 0, or no traffic?).");
  const keys = Object.keys(t.by_version);
  const xs = t.t.map((ms) => ms / 1000);
  const data = [xs, t.requests, ...keys.map((k) => t.by_version[k])];
  const series = [{}, { label: "all", stroke: "#0f172a", width: 1.5 },
    ...keys.map((k, i) => ({ label: k, stroke: color(i), width: 1.25 }))];
  const box = h("div", { class: "chart", id: "traffic-chart" });
  const w = Math.max(480, Math.min(1100, (document.getElementById("main").clientWidth || 1200) - 48));
  new uPlot({ title: `logged requests per ${Math.round(t.bucket_ms / 60000)} min`, width: w, height: 220, series,
    axes: [{}, { values: (u, vals) => vals.map((v) => fmtNum(v)), size: 60 }] }, data, box);
  return h("div", { class: "chart-card" }, box,
    h("div", { class: "chart-foot" }, h("span", { id: "traffic-total" }, `${Math.round(total).toLocaleString()} requests logged`)));
}

function lineChart(id, title, t, series, height = 200) {
  const box = h("div", { class: "chart", id });
  const w = Math.max(360, Math.min(640, Math.floor(((document.getElementById("main").clientWidth || 1200) - 64) / 2)));
  new uPlot({ title, width: w, height, series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.25, spanGaps: false }))],
    axes: [{}, { values: (u, vals) => vals.map((v) => fmtNum(v)), size: 60 }] }, [t.map((ms) => ms / 1000), ...series.map((s) => s.values)], box);
  return box;
}

// latency percentiles and errors per bucket, from the per-minute aggregates servers record
function servingCharts(sv) {
  const total = sv.requests.reduce((a, b) => a + b, 0);
  if (!total) return emptyState("No answers recorded in this period (a deployment's servers record them each minute while they serve).");
  const errors = sv.errors.reduce((a, b) => a + b, 0);
  const minutes = Math.round(sv.bucket_ms / 60000);
  return h("div", { class: "chart-card" },
    h("div", { class: "chart-row" },
      lineChart("latency-chart", `latency (ms) per ${minutes} min`, sv.t, [
        { label: "p50", values: sv.latency_p50_ms, color: color(0) },
        { label: "p95", values: sv.latency_p95_ms, color: color(3) },
        { label: "p99", values: sv.latency_p99_ms, color: color(1) }]),
      lineChart("errors-chart", `errors per ${minutes} min`, sv.t, [
        { label: "errors", values: sv.errors.map((e, i) => (sv.requests[i] ? e : null)), color: color(1) }])),
    h("div", { class: "chart-foot" }, h("span", { id: "serving-total" },
      `${total.toLocaleString()} answers, ${errors.toLocaleString()} errors (${fmtNum((100 * errors) / total)}%) from ${sv.replicas.length} server process${sv.replicas.length === 1 ? "" : "es"}`)));
}

function eventSummary(e) {
  const p = e.payload || {};
  if (e.type === "serving_swapped") return `${p.slot}: ${p.from || "—"} → ${p.to} (loaded in ${p.load_ms} ms)`;
  if (e.type === "serving_swap_failed") return `kept ${p.kept}: ${p.error}`;
  // a change names the fields it changed (and a rollback the revision it restored): show those
  const keys = p.changed ? p.changed : Object.keys(p).filter((k) => !["deployment", "pid", "name", "revision", "config", "sticky_key"].includes(k) && p[k] !== null);
  const what = keys.map((k) => `${k}=${typeof p[k] === "object" ? JSON.stringify(p[k]) : p[k]}`).join(" ");
  return [p.revision ? `r${p.revision}` : "", what, p.reason ? `· ${p.reason}` : ""].filter(Boolean).join(" ");
}

const WINDOWS = [[1, "1 h"], [6, "6 h"], [24, "24 h"], [168, "7 days"], [720, "30 days"]];

export async function deploymentPage(name, setCrumbs) {
  setCrumbs({ text: "Deployments", href: "#/deployments" }, { text: name });
  const page = await api.raw("GET", `/ui/deployments/${enc(name)}`);
  const chartSlot = h("div", { id: "traffic" }, trafficChart(page.traffic));
  const servingSlot = h("div", { id: "serving" }, servingCharts(page.serving));
  const windowPick = h("select", { id: "traffic-window", onchange: async () => {
    try {
      const again = await api.raw("GET", `/ui/deployments/${enc(name)}`, { query: { hours: windowPick.value } });
      chartSlot.replaceChildren(trafficChart(again.traffic));
      servingSlot.replaceChildren(servingCharts(again.serving));
    } catch (err) {
      chartSlot.replaceChildren(h("div", { class: "error-box" }, err.message));
    }
  } }, WINDOWS.map(([v, label]) => h("option", { value: v, selected: v === 24 }, label)));
  const d = page.deployment;
  const live = h("table", { class: "kv", id: "resolved" },
    h("thead", {}, h("tr", {}, ["Slot", "URI", "Version now", "Share"].map((c) => h("th", {}, c)))),
    h("tbody", {}, page.resolved.map((r) => {
      const [model] = r.uri.replace("models:/", "").split(/[/@]/);
      const share = r.slot === "main" ? `${fmtNum(100 - (d.canary ? d.canary_percent : 0))}%` : r.slot === "canary" ? `${fmtNum(d.canary_percent)}%` : "mirrored, not answered";
      return h("tr", { "data-slot": r.slot }, h("td", {}, r.slot), h("td", { class: "mono" }, r.uri),
        h("td", {}, r.version === null ? h("span", { class: "bad" }, r.error || "unresolved")
          : h("a", { href: `#/models/${enc(model)}/v/${r.version}` }, `v${r.version}`)),
        h("td", {}, share));
    })));
  const revisions = page.revisions.slice().reverse();
  return h("section", {},
    h("div", { class: "title-row" }, h("h1", {}, name), split(d), h("span", { class: "muted" }, `revision ${d.revision} · updated ${fmtTime(d.updated_ms)}` + (d.updated_by ? ` by ${d.updated_by}` : ""))),
    h("div", { class: "cols two" },
      h("div", {}, h("h2", {}, "Live versions"), live,
        d.sticky_key ? h("p", { class: "muted" }, `sticky on ${d.sticky_key}`) : ""),
      h("div", {}, h("h2", {}, "Serve options"), Object.keys(d.config || {}).length
        ? table(["Option", "Value"], Object.entries(d.config).map(([k, v]) => [k, h("span", { class: "mono" }, JSON.stringify(v))]))
        : emptyState("Defaults."))),
    h("h2", {}, "Over the last ", windowPick),
    h("h3", {}, "Latency and errors"),
    servingSlot,
    h("h3", {}, "Requests logged, per model version"),
    h("p", { class: "muted small" }, "From the inference log (the sampled requests the servers logged)."),
    chartSlot,
    h("div", { class: "cols two" },
      h("div", {}, h("h2", {}, "Revisions"), table(["Rev", "When", "Who", "Reason", "Spec"], revisions.map((r) => [
        `r${r.revision}`, fmtTime(r.created_ms), r.actor || "", r.reason || "",
        h("span", { class: "mono small" }, ["model", "canary", "canary_percent", "shadow"].filter((k) => r.spec[k]).map((k) => `${k}=${r.spec[k]}`).join(" ")),
      ]), { id: "revisions" })),
      h("div", {}, h("h2", {}, "Events"), page.events.length
        ? table(["When", "Event", "Who", "What"], page.events.map((e) => [fmtTime(e.ts_ms), e.type, e.actor || "", h("span", { class: "small" }, eventSummary(e))]), { id: "dep-events" })
        : emptyState("No events."))));
}
