// One run: its attributes, params, tags, metric charts (system metrics apart), artifacts with
// previews, datasets and lineage.
import { api, blobUrl } from "./api.js";
import { h, fmtNum, fmtTime, fmtDuration, fmtBytes, emptyState, table } from "./util.js";
import { metricChart } from "./charts.js";
import { mediaSection } from "./media.js";

function kvTable(obj, id) {
  const keys = Object.keys(obj || {}).sort();
  if (!keys.length) return emptyState("None.");
  return table(["Key", "Value"], keys.map((k) => [k, h("span", { class: "mono" }, obj[k])]), { id });
}

function chartWidth() {
  const w = document.getElementById("main").clientWidth || 1200;
  return Math.max(320, Math.min(620, Math.floor((w - 48) / 2)));
}

async function chartsSection(run, keys, title, id) {
  const grid = h("div", { class: "chart-grid", id });
  const section = h("section", {}, h("h2", {}, title), keys.length ? grid : emptyState("No metrics logged."));
  const width = chartWidth();
  for (const key of keys) {
    const slot = h("div", { class: "chart-slot" }, h("p", { class: "muted" }, `Loading ${key}…`));
    grid.append(slot);
    metricChart(run.id, key, { width }).then((c) => slot.replaceWith(c.el))
      .catch((err) => slot.replaceChildren(h("div", { class: "error-box" }, `${key}: ${err.message}`)));
  }
  return section;
}

function artifactsSection(run) {
  const list = h("div", { class: "artifact-list", id: "artifacts" });
  const pane = h("div", { class: "preview", id: "preview" }, h("p", { class: "muted" }, "Select a file to preview it."));
  const path = h("div", { class: "artifact-path" });
  let entries = [];
  const show = (prefix) => {
    const folders = new Map();
    const files = [];
    for (const e of entries) {
      if (!e.path.startsWith(prefix)) continue;
      const rest = e.path.slice(prefix.length);
      const slash = rest.indexOf("/");
      if (slash >= 0) {
        const f = rest.slice(0, slash);
        const agg = folders.get(f) || { n: 0, size: 0 };
        agg.n++; agg.size += e.size;
        folders.set(f, agg);
      } else files.push(e);
    }
    path.replaceChildren(h("a", { href: "javascript:void 0", onclick: () => show("") }, "artifacts"),
      ...prefix.split("/").filter(Boolean).map((p, i, all) => [" / ", h("a", { href: "javascript:void 0",
        onclick: () => show(all.slice(0, i + 1).join("/") + "/") }, p)]).flat());
    list.replaceChildren(
      ...[...folders.entries()].sort().map(([f, agg]) => h("div", { class: "artifact folder", onclick: () => show(`${prefix}${f}/`) },
        h("span", {}, h("span", { class: "folder-mark" }, "▸ "), `${f}/`), h("span", { class: "muted" }, `${agg.n.toLocaleString()} ${agg.n === 1 ? "file" : "files"} · ${fmtBytes(agg.size)}`))),
      ...files.sort((a, b) => a.path.localeCompare(b.path)).map((e) => h("div", { class: "artifact file", "data-path": e.path,
        onclick: (ev) => { list.querySelectorAll(".active").forEach((x) => x.classList.remove("active")); ev.currentTarget.classList.add("active"); openPreview(e); } },
        h("span", {}, e.path.slice(prefix.length)), h("span", { class: "muted" }, fmtBytes(e.size)))));
  };
  async function openPreview(e) {
    pane.replaceChildren(h("p", { class: "muted" }, `Loading ${e.path}…`));
    try {
      const p = await api.preview(run.id, e.path);
      const head = h("div", { class: "preview-head" }, h("strong", {}, p.path), ` · ${fmtBytes(p.size)} · `,
        h("a", { href: "javascript:void 0", onclick: async () => { const url = await blobUrl(p.sha256);
          const a = h("a", { href: url, download: p.path.split("/").pop() }); a.click(); } }, "download"));
      let body;
      if (p.kind === "image") {
        body = h("img", { class: "preview-image", alt: p.path, src: await blobUrl(p.sha256) });
      } else if (p.kind === "table") {
        body = h("div", { class: "scroll-x" }, table(p.columns, p.rows.map((r) => r.map((c) => (typeof c === "number" ? fmtNum(c) : c ?? ""))), { class: "kv data-table" }),
          h("p", { class: "muted" }, `First ${p.rows.length} rows` + (p.total_rows != null ? ` of ${p.total_rows.toLocaleString()}` : "")));
      } else if (p.kind === "text") {
        body = h("pre", { class: "preview-text" }, p.text + (p.truncated ? "\n…" : ""));
      } else {
        body = emptyState(`No preview for this file${p.reason ? `: ${p.reason}` : ""}.`);
      }
      pane.replaceChildren(head, body);
    } catch (err) {
      pane.replaceChildren(h("div", { class: "error-box" }, err.message));
    }
  }
  const section = h("section", {}, h("h2", {}, "Artifacts"), path,
    h("div", { class: "artifacts" }, list, pane));
  api.artifacts(run.id).then((es) => {
    entries = es;
    if (!es.length) { section.replaceChildren(h("h2", {}, "Artifacts"), emptyState("No artifacts logged.")); return; }
    show("");
  }).catch((err) => list.replaceChildren(h("div", { class: "error-box" }, err.message)));
  return section;
}

async function datasetsSection(run) {
  const inputs = run.inputs || [];
  const rows = await Promise.all(inputs.map(async (inp) => {
    let ds = null;
    try { ds = await api.dataset(inp.dataset_sha256); } catch { ds = null; }
    const schema = ds && ds.schema ? Object.entries(ds.schema).map(([c, t]) => `${c}: ${t}`).join(", ") : "";
    return [inp.name, inp.context, h("span", { class: "mono", title: inp.dataset_sha256 }, inp.dataset_sha256.slice(0, 12)),
      ds ? (ds.row_count ?? ds.num_rows ?? "").toLocaleString() : "", h("span", { class: "schema" }, schema),
      ds ? (ds.source_uri || "") : ""];
  }));
  return h("section", {}, h("h2", {}, "Datasets"), inputs.length
    ? table(["Name", "Context", "sha256", "Rows", "Schema", "Source"], rows, { id: "datasets" })
    : emptyState("No dataset inputs logged."));
}

// Lineage: where the run came from (its parent, its datasets above) and what came of it (the
// model versions registered from it, with their aliases).
async function lineageSection(run) {
  const section = h("section", { id: "run-lineage" }, h("h2", {}, "Lineage"));
  const parent = h("p", { class: "lineage-parent" }, "Parent run: ", run.parent_run_id
    ? h("a", { href: `#/runs/${run.parent_run_id}` }, h("span", { class: "mono" }, run.parent_run_id.slice(0, 12)))
    : h("span", { class: "muted" }, "none (a top-level run)"));
  section.append(parent);
  try {
    const doc = await api.runModels(run.id);
    section.append(doc.versions.length
      ? table(["Model version", "Aliases", "Flavor", "Registered", "By"], doc.versions.map((v) => [
        h("a", { href: `#/models/${encodeURIComponent(v.name)}/v/${v.version}` }, `${v.name} v${v.version}`),
        h("span", {}, v.aliases.map((a) => h("span", { class: "chip" }, `@${a}`))),
        v.flavor, fmtTime(v.created_ms), v.created_by || ""]), { id: "run-models" })
      : emptyState("No model version was registered from this run."));
  } catch (err) {
    section.append(h("div", { class: "error-box" }, err.message));
  }
  return section;
}

export async function runPage(runId, setCrumbs) {
  const run = await api.run(runId);
  const project = await api.project(run.project_id);
  setCrumbs({ text: "Projects", href: "#/" }, { text: project.name, href: `#/projects/${project.id}` }, { text: run.name });
  const keys = Object.keys(run.metrics || {}).sort();
  const user = keys.filter((k) => !k.startsWith("system/"));
  const system = keys.filter((k) => k.startsWith("system/"));
  const attrs = [
    ["Id", h("span", { class: "mono" }, run.id)], ["Status", h("span", { class: `status st-${run.status}` }, run.status)],
    ["Started", fmtTime(run.start_ms)], ["Duration", fmtDuration(run.start_ms, run.end_ms)],
    ["User", run.user || ""], ["Host", run.host || ""],
    ["Git commit", run.git_commit ? h("span", { class: "mono" }, run.git_commit.slice(0, 12) + (run.git_dirty ? " (dirty)" : "")) : ""],
    ...(run.parent_run_id ? [["Parent run", h("a", { href: `#/runs/${run.parent_run_id}` }, run.parent_run_id.slice(0, 12))]] : []),
  ];
  const summary = keys.length ? table(["Metric", "Last", "Min", "Max", "Step"], keys.map((k) => {
    const m = run.metrics[k];
    return [k, fmtNum(num(m.last)), fmtNum(num(m.min)), fmtNum(num(m.max)), m.step];
  }), { id: "metric-summary" }) : emptyState("No metrics logged.");
  const el = h("div", { class: "run-page" },
    h("div", { class: "title-row" }, h("h1", {}, run.name)),
    h("div", { class: "cols" },
      h("section", {}, h("h2", {}, "Run"), table(["", ""], attrs, { class: "kv attrs" })),
      h("section", {}, h("h2", {}, "Params"), kvTable(run.params, "params")),
      h("section", {}, h("h2", {}, "Tags"), kvTable(run.tags, "tags"))),
    h("section", {}, h("h2", {}, "Metrics"), summary),
    await chartsSection(run, user, "Charts", "charts"),
    system.length ? await chartsSection(run, system, "System metrics", "system-charts") : null,
    mediaSection(run),
    artifactsSection(run),
    await datasetsSection(run),
    await lineageSection(run));
  return { el };
}

function num(v) { return typeof v === "string" ? Number(v) : v; }
