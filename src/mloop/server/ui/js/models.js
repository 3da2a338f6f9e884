// Models: #/models (the list), #/models/<name> (versions, aliases and their audit trail, a
// version's lineage and check reports, promotion and rollback), #/models/<name>/diff/<a>/<b>.
import { api, ApiError } from "./api.js";
import { h, fmtNum, fmtTime, emptyState, table } from "./util.js";

const enc = encodeURIComponent;
const call = (method, path, opts) => api.raw(method, path, opts);

export async function modelsPage(setCrumbs) {
  setCrumbs({ text: "Models" });
  const { models } = await call("GET", "/ui/models");
  const head = h("h1", {}, "Models");
  if (!models.length) {
    return h("section", {}, head, emptyState("No registered models yet. Register one with mloop.log_model(..., registered_model_name=...) and it shows here."));
  }
  return h("section", {}, head,
    table(["Name", "Latest version", "Aliases", "Updated", "Description"], models.map((m) => [
      h("a", { href: `#/models/${enc(m.name)}` }, m.name),
      m.latest_version === null ? h("span", { class: "muted" }, "none") : `v${m.latest_version}`,
      aliasChips(m.aliases),
      fmtTime(m.updated_ms),
      m.description || "",
    ]), { class: "kv models", id: "models" }));
}

function aliasChips(aliases) {
  return Object.entries(aliases || {}).sort().map(([a, v]) => h("span", { class: "chip alias" }, `${a} → v${v}`));
}

function checkBadge(check) {
  if (!check) return h("span", { class: "muted" }, "no report");
  const cls = check.status === "pass" ? "st-finished" : "st-failed";
  return h("span", { title: check.current_policy ? `report ${check.report_id}` : "written under another policy: it does not count for promotion" },
    h("span", { class: `status ${cls}` }, check.status), check.current_policy ? "" : h("span", { class: "muted" }, " (old policy)"));
}

function metricsCell(metrics) {
  const keys = Object.keys(metrics || {}).sort();
  return h("span", { class: "mono" }, keys.map((k) => `${k}=${fmtNum(metrics[k])}`).join("  "));
}

export async function modelPage(name, setCrumbs, selected) {
  setCrumbs({ text: "Models", href: "#/models" }, { text: name });
  const page = await call("GET", `/ui/models/${enc(name)}`);
  const versions = page.versions;
  const picked = new Set();
  const compareBtn = h("button", { id: "compare-versions", disabled: true, onclick: () => {
    const [a, b] = [...picked].sort((x, y) => x - y);
    location.hash = `#/models/${enc(name)}/diff/${a}/${b}`;
  } }, "Compare 2 versions");
  const detail = h("div", { id: "version-detail" });
  const select = (v) => {
    document.querySelectorAll("#versions tr.active").forEach((r) => r.classList.remove("active"));
    const row = document.querySelector(`#versions tr[data-version="${v}"]`);
    if (row) row.classList.add("active");
    versionDetail(name, v, detail).catch((err) => detail.replaceChildren(errorBox(err)));
  };
  const rows = versions.map((v) => h("tr", { "data-version": v.version, class: v.deleted ? "deleted" : "" },
    h("td", {}, h("input", { type: "checkbox", "aria-label": `pick v${v.version}`, onchange: (e) => {
      if (e.target.checked) picked.add(v.version); else picked.delete(v.version);
      compareBtn.disabled = picked.size !== 2;
    } })),
    h("td", {}, h("a", { href: "javascript:void 0", onclick: () => select(v.version) }, `v${v.version}`), v.deleted ? h("span", { class: "muted" }, " (deleted)") : ""),
    h("td", {}, v.source_run_id ? h("a", { href: `#/runs/${v.source_run_id}`, class: "mono" }, v.source_run_id.slice(0, 8)) : h("span", { class: "muted" }, "none")),
    h("td", {}, v.flavor),
    h("td", {}, fmtTime(v.created_ms)),
    h("td", {}, metricsCell(v.metrics)),
    h("td", { class: "check" }, checkBadge(v.check)),
    h("td", {}, v.aliases.map((a) => h("span", { class: "chip alias" }, a)))));
  const versionsTable = versions.length
    ? h("table", { class: "kv", id: "versions" },
      h("thead", {}, h("tr", {}, ["", "Version", "Source run", "Flavor", "Created", "Metrics", "Check", "Aliases"].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows))
    : emptyState("No versions yet.");
  const el = h("section", {},
    h("div", { class: "title-row" }, h("h1", {}, name), h("span", { class: "muted" }, page.model.description || "")),
    h("h2", {}, "Versions"), h("div", { class: "toolbar" }, compareBtn, h("span", { class: "muted" }, "Tick two versions to compare them; click a version for its lineage and checks.")),
    versionsTable,
    detail,
    h("div", { class: "cols two" },
      h("div", {}, h("h2", {}, "Aliases"), aliasesTable(name, page, versions)),
      h("div", {}, h("h2", {}, "Audit trail"), auditTable(page.events))));
  const first = selected || (versions.find((v) => !v.deleted) || {}).version;
  return { el, mounted: () => { if (first) select(first); } };
}

function errorBox(err) {
  return h("div", { class: "error-box" }, h("strong", {}, "Error: "), err.message || String(err));
}

function aliasesTable(name, page, versions) {
  const live = versions.filter((v) => !v.deleted).map((v) => v.version);
  const out = h("div", { class: "action-result", id: "action-result", role: "status" });
  const reason = h("input", { type: "text", id: "reason", placeholder: "reason (recorded in the audit trail)", size: 40 });
  const alias = h("input", { type: "text", id: "promote-alias", value: "champion", size: 12 });
  const version = h("select", { id: "promote-version" }, live.map((v) => h("option", { value: v }, `v${v}`)));
  const act = async (what, path, body) => {
    if (!reason.value.trim()) { out.replaceChildren(h("span", { class: "bad" }, "Give a reason: it is recorded with the move.")); return; }
    out.replaceChildren(h("span", { class: "muted" }, `${what}…`));
    try {
      const r = await call("POST", path, { body: { ...body, reason: reason.value.trim() } });
      out.replaceChildren(h("span", { class: "ok" }, `${r.model}@${r.alias} → v${r.version} (was ${r.previous_version === null ? "unset" : `v${r.previous_version}`})`));
      setTimeout(() => window.dispatchEvent(new HashChangeEvent("hashchange")), 600);
    } catch (err) {
      const refused = err instanceof ApiError ? `${what} refused (${err.status}${err.code ? ` ${err.code}` : ""}): ` : `${what} failed: `;
      out.replaceChildren(h("span", { class: "bad", id: "refusal" }, refused + err.message));
    }
  };
  const promoteBtn = h("button", { id: "promote", disabled: !live.length, onclick: () => act("Promotion", `/ui/models/${enc(name)}/promote`, { version: Number(version.value), alias: alias.value.trim() }) }, "Promote");
  const rows = page.aliases.map((a) => h("tr", { "data-alias": a.alias },
    h("td", {}, h("span", { class: "chip alias" }, a.alias), a.protected ? h("span", { class: "muted", title: "moves only with a reason" }, " protected") : ""),
    h("td", {}, `v${a.version}`),
    h("td", {}, fmtTime(a.updated_ms)), h("td", {}, a.updated_by || ""),
    h("td", {}, h("button", { class: "small rollback", onclick: () => act("Rollback", `/ui/models/${enc(name)}/aliases/${enc(a.alias)}/rollback`, {}) }, "Roll back"))));
  return h("div", {},
    page.aliases.length ? h("table", { class: "kv", id: "aliases" },
      h("thead", {}, h("tr", {}, ["Alias", "Version", "Moved", "By", ""].map((c) => h("th", {}, c)))), h("tbody", {}, rows))
      : emptyState("No aliases."),
    h("div", { class: "card actions" },
      h("div", { class: "toolbar" }, "Move", alias, "to", version, promoteBtn),
      reason,
      h("p", { class: "muted small" }, "Promotion goes through the gate: the version needs a passing check report under the server's policy. Admin tokens only."),
      out));
}

function auditTable(events) {
  const moves = events.filter((e) => e.alias);
  if (!moves.length) return emptyState("No alias has moved yet.");
  const v = (x) => (x === null || x === undefined ? "—" : typeof x === "object" ? JSON.stringify(x) : `v${x}`);
  return table(["When", "Event", "Alias", "From", "To", "Who", "Reason", "Report"], moves.map((e) => [
    fmtTime(e.ts_ms), e.type, e.alias, v(e.before), v(e.after), e.actor || "", e.reason || "",
    e.report_id ? h("span", { class: "mono", title: e.report_id }, e.report_id.slice(0, 8)) : "",
  ]), { id: "audit" });
}

async function versionDetail(name, version, slot) {
  slot.replaceChildren(h("p", { class: "muted" }, `Loading v${version}…`));
  const [lineage, reports] = await Promise.all([
    call("GET", `/ui/models/${enc(name)}/versions/${version}/lineage`),
    call("GET", "/check-reports", { query: { model: name, version, limit: 20 } }),
  ]);
  slot.replaceChildren(h("div", { class: "cols two" },
    h("div", {}, h("h2", {}, `Lineage of v${version}`), lineageGraph(lineage)),
    h("div", {}, h("h2", {}, `Check reports of v${version}`), reportsList(reports))));
}

// version -> source run -> datasets, and the pipeline step that registered it, as a small SVG
export function lineageGraph(lin) {
  const NS = "http://www.w3.org/2000/svg";
  const node = (x, y, w, title, sub, href, cls) => {
    const g = document.createElementNS(NS, "g");
    g.setAttribute("class", `lin-node ${cls}`);
    const rect = document.createElementNS(NS, "rect");
    Object.entries({ x, y, width: w, height: 44, rx: 6 }).forEach(([k, v]) => rect.setAttribute(k, v));
    const t1 = document.createElementNS(NS, "text");
    Object.entries({ x: x + 10, y: y + 18 }).forEach(([k, v]) => t1.setAttribute(k, v));
    t1.textContent = title;
    const t2 = document.createElementNS(NS, "text");
    Object.entries({ x: x + 10, y: y + 35, class: "sub" }).forEach(([k, v]) => t2.setAttribute(k, v));
    t2.textContent = sub;
    g.append(rect, t1, t2);
    if (!href) return g;
    const a = document.createElementNS(NS, "a");
    a.setAttribute("href", href);
    a.append(g);
    return a;
  };
  const edge = (x1, y1, x2, y2) => {
    const p = document.createElementNS(NS, "path");
    const mx = (x1 + x2) / 2;
    p.setAttribute("d", `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`);
    p.setAttribute("class", "lin-edge");
    return p;
  };
  const W = 170, GAP = 40, datasets = lin.datasets || [];
  const rowsN = Math.max(1, datasets.length, lin.pipeline ? 2 : 1);
  const height = rowsN * 56 + 8;
  const svg = document.createElementNS(NS, "svg");
  const cols = 2 + (datasets.length ? 1 : 0);
  svg.setAttribute("width", cols * (W + GAP));
  svg.setAttribute("height", height);
  svg.setAttribute("id", "lineage");
  const mid = (height - 44) / 2;
  svg.append(node(4, mid, W, `${lin.model} v${lin.version}`, lin.flavor, null, "version"));
  const runX = 4 + W + GAP;
  const runY = lin.pipeline ? 4 : mid;
  svg.append(edge(4 + W, mid + 22, runX, runY + 22));
  svg.append(lin.run
    ? node(runX, runY, W, `run ${lin.run.name || lin.run.run_id.slice(0, 8)}`, `${lin.run.project} · ${lin.run.status}`, `#/runs/${lin.run.run_id}`, "run")
    : node(runX, runY, W, "no source run", "registered from files", null, "none"));
  if (lin.pipeline) {
    const py = runY + 56;
    svg.append(edge(4 + W, mid + 22, runX, py + 22));
    svg.append(node(runX, py, W, `pipeline ${lin.pipeline.pipeline || ""}`, `run ${lin.pipeline.run_id} · step ${lin.pipeline.step || "?"}`, null, "pipeline"));
  }
  const dsX = runX + W + GAP;
  datasets.forEach((d, i) => {
    const y = 4 + i * 56;
    svg.append(edge(runX + W, runY + 22, dsX, y + 22));
    svg.append(node(dsX, y, W, `dataset ${d.name || ""}`, `${String(d.sha256 || "").slice(0, 12)} ${d.role || ""}`, null, "dataset"));
  });
  return h("div", { class: "lineage" }, svg,
    lin.git && lin.git.commit ? h("p", { class: "muted small" }, "code: ", h("span", { class: "mono" }, lin.git.commit.slice(0, 12)), lin.git.branch ? ` on ${lin.git.branch}` : "") : "");
}

function reportsList(reports) {
  if (!reports.length) return emptyState("No check report for this version. Run mloop check --candidate models:/<name>/<version>.");
  return h("div", { id: "reports" }, reports.map((r) => h("details", { class: "report", open: r === reports[0] },
    h("summary", {}, h("span", { class: `status ${r.status === "pass" ? "st-finished" : "st-failed"}` }, r.status), ` ${r.kind} · ${fmtTime(r.created_ms)} · vs ${r.baseline_uri || "no baseline"} · `,
      h("span", { class: "mono" }, r.id.slice(0, 8)), r.actor ? ` · by ${r.actor}` : ""),
    table(["Check", "Verdict", "Summary", "Numbers"], r.checks.map((c) => [
      h("span", { class: "mono" }, c.name),
      h("span", { class: `verdict v-${c.status}` }, c.status),
      c.summary,
      h("span", { class: "mono" }, Object.entries(c.numbers || {}).map(([k, v]) => `${k}=${fmtNum(v)}`).join("  ")),
    ]), { class: "kv checks" }))));
}

export async function versionDiffPage(name, a, b, setCrumbs) {
  setCrumbs({ text: "Models", href: "#/models" }, { text: name, href: `#/models/${enc(name)}` }, { text: `v${a} vs v${b}` });
  const d = await call("GET", `/ui/models/${enc(name)}/diff`, { query: { a, b } });
  const pairRows = (obj, fmt = (x) => (x === null || x === undefined ? "—" : String(x))) =>
    Object.entries(obj).map(([k, [x, y]]) => [h("span", { class: "mono" }, k), fmt(x), fmt(y)]);
  const same = (x) => emptyState(`Same ${x} in both versions.`);
  const params = Object.keys(d.params).length ? table(["Param", `v${a}`, `v${b}`], pairRows(d.params), { class: "kv diff", id: "diff-params" }) : same("params");
  const metrics = Object.keys(d.metrics).length
    ? table(["Metric", `v${a}`, `v${b}`, "Δ"], Object.entries(d.metrics).map(([k, [x, y, dd]]) => [h("span", { class: "mono" }, k), fmtNum(x), fmtNum(y),
      h("span", { class: dd > 0 ? "ok" : dd < 0 ? "bad" : "" }, dd === null ? "—" : (dd > 0 ? "+" : "") + fmtNum(dd))]), { class: "kv diff", id: "diff-metrics" })
    : same("metrics");
  const datasets = Object.keys(d.datasets).length ? table(["Dataset", `v${a}`, `v${b}`], pairRows(d.datasets, (x) => (x ? x.slice(0, 12) : "—")), { class: "kv diff", id: "diff-datasets" }) : same("datasets");
  const sig = (s) => h("pre", { class: "mono sig" }, s ? JSON.stringify(s, null, 1) : "none");
  return h("section", {}, h("h1", {}, `${name}: v${a} vs v${b}`),
    h("p", {}, `flavor ${d.flavor[0]} / ${d.flavor[1]} · commit ${(d.git_commit[0] || "—").slice(0, 10)} / ${(d.git_commit[1] || "—").slice(0, 10)}`),
    h("div", { class: "cols two" },
      h("div", {}, h("h2", {}, "Params that differ"), params),
      h("div", {}, h("h2", {}, "Metrics that differ"), metrics)),
    h("h2", {}, "Datasets"), datasets,
    h("h2", {}, d.signature_equal ? "Signature (identical)" : "Signature (differs)"),
    h("div", { class: "cols two", id: "diff-signature" }, sig(d.signature[0]), sig(d.signature[1])));
}
