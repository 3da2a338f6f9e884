// The router: #/ (projects), #/projects/<id> (runs), #/runs/<id> (a run), #/compare/<id>,<id>...
import { api, ApiError, PageError, hasToken, setToken } from "./api.js";
import { h, emptyState, fmtTime } from "./util.js";
import { runsPage } from "./runs.js";
import { runPage } from "./run.js";
import { comparePage } from "./compare.js";
import { modelsPage, modelPage, versionDiffPage } from "./models.js";
import { deploymentsPage, deploymentPage } from "./deployments.js";
import { monitorsPage, monitorPage } from "./monitoring.js";
import { pipelinesPage, pipelineRunsPage, pipelineRunPage } from "./pipelines.js";
import { timelineIndexPage, timelinePage } from "./timeline.js";

const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
let cleanup = null;

export function setCrumbs(...items) {
  crumbs.replaceChildren(...items.flatMap((it, i) => [...(i ? [h("span", { class: "sep" }, "/")] : []),
    it.href ? h("a", { href: it.href }, it.text) : h("span", {}, it.text)]));
}

function showError(err) {
  if (err instanceof ApiError && err.status === 401) {
    // A token that was sent and refused is forgotten, and the server's reason shown with the form.
    const refused = hasToken() ? err.message : null;
    setToken(null);
    const input = h("input", { type: "password", id: "token", placeholder: "mloop token", size: 40 });
    const form = h("form", { class: "card token", onsubmit: (e) => { e.preventDefault(); setToken(input.value.trim()); route(); } },
      h("h2", {}, "This server needs a token"),
      h("p", {}, "Paste a token from ", h("code", {}, "mloop token create"), " (kept for this browser session)."),
      refused ? h("div", { class: "error-box", id: "token-refused" }, h("strong", {}, "Refused: "), refused) : null,
      input, " ", h("button", { type: "submit" }, "Sign in"));
    main.replaceChildren(form);
    return;
  }
  main.replaceChildren(h("div", { class: "error-box" }, h("strong", {}, "Error: "), err.message || String(err)));
  if (!(err instanceof ApiError) && !(err instanceof PageError)) console.error(err);
}

async function projectsPage() {
  setCrumbs({ text: "Projects" });
  const projects = await api.projects();
  if (!projects.length) {
    return h("section", {}, h("h1", {}, "Projects"),
      emptyState("No projects yet. Track a run (mloop.start_run(project=...)) and it shows here."));
  }
  projects.sort((a, b) => a.name.localeCompare(b.name));
  return h("section", {}, h("h1", {}, "Projects"),
    h("table", { class: "kv projects" },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Id"), h("th", {}, "Created"), h("th", {}, "Tags"))),
      h("tbody", {}, projects.map((p) => h("tr", {},
        h("td", {}, h("a", { href: `#/projects/${p.id}` }, p.name)),
        h("td", { class: "mono" }, p.id),
        h("td", {}, fmtTime(p.created_ms || p.creation_ms)),
        h("td", {}, Object.entries(p.tags || {}).map(([k, v]) => h("span", { class: "chip" }, `${k}=${v}`))))))));
}

async function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  setCrumbs({ text: "Projects", href: "#/" });
  try {
    let page;
    if (parts[0] === "projects" && parts[1]) page = await runsPage(parts[1], setCrumbs);
    else if (parts[0] === "runs" && parts[1]) page = await runPage(parts[1], setCrumbs);
    else if (parts[0] === "compare" && parts[1]) page = await comparePage(parts[1].split(","), setCrumbs);
    else if (parts[0] === "models" && parts[1] && parts[2] === "diff") page = await versionDiffPage(parts[1], parts[3], parts[4], setCrumbs);
    else if (parts[0] === "models" && parts[1]) page = await modelPage(parts[1], setCrumbs, parts[2] === "v" ? Number(parts[3]) : undefined);
    else if (parts[0] === "models") page = await modelsPage(setCrumbs);
    else if (parts[0] === "deployments" && parts[1]) page = await deploymentPage(parts[1], setCrumbs);
    else if (parts[0] === "deployments") page = await deploymentsPage(setCrumbs);
    else if (parts[0] === "monitors" && parts[1]) page = await monitorPage(parts[1], setCrumbs, parts[2]);
    else if (parts[0] === "monitors") page = { el: await monitorsPage(setCrumbs) };
    else if (parts[0] === "pipelines" && parts[1]) page = await pipelineRunsPage(parts[1], setCrumbs);
    else if (parts[0] === "pipelines") page = await pipelinesPage(setCrumbs);
    else if (parts[0] === "pipeline-runs" && parts[1]) page = await pipelineRunPage(parts[1], setCrumbs);
    else if (parts[0] === "timeline" && parts[1]) page = await timelinePage(parts[1], setCrumbs);
    else if (parts[0] === "timeline") page = await timelineIndexPage(setCrumbs);
    else page = { el: await projectsPage() };
    if (page instanceof Node) page = { el: page };
    main.replaceChildren(page.el);
    if (page.mounted) page.mounted();
    cleanup = page.cleanup || null;
  } catch (err) {
    showError(err);
  }
}

window.addEventListener("hashchange", route);
route();
