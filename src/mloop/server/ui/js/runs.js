// A project's runs: one columnar answer from the server, sorted, grouped and shown client-side;
// filters run on the server (the search language has one parser) and come back as ids.
import { api, ApiError } from "./api.js";
import { h, fmtNum, fmtTime, emptyState } from "./util.js";
import { VirtualTable } from "./vtable.js";

export const perf = (window.__mloopPerf = window.__mloopPerf || {});

function numeric(col) {
  // a column's values as numbers (NaN where not a number): params are strings, often numbers
  const out = new Float64Array(col.length);
  let numbers = 0, present = 0;
  for (let i = 0; i < col.length; i++) {
    const v = col[i];
    if (v === null || v === undefined || v === "") { out[i] = NaN; continue; }
    present++;
    const x = typeof v === "number" ? v : Number(v);
    out[i] = x;
    if (!Number.isNaN(x)) numbers++;
  }
  return { values: out, isNumeric: present > 0 && numbers === present };
}

function columnValues(t, id) {
  const [kind, key] = splitId(id);
  if (kind === "attr") return t[key];
  return t[kind][key] || [];
}

function splitId(id) {
  const dot = id.indexOf(".");
  return [id.slice(0, dot), id.slice(dot + 1)];
}

export async function runsPage(projectId, setCrumbs) {
  const t0 = performance.now();
  const [project, t] = await Promise.all([api.project(projectId), api.table(projectId)]);
  setCrumbs({ text: "Projects", href: "#/" }, { text: project.name });
  const n = t.count;
  const state = loadState(projectId, t);
  const numericCache = new Map();
  const selected = new Set();
  let order = null; // Int32Array of row indices in display order
  let mask = null; // Uint8Array: 1 where the filter matches (null: no filter)
  const collapsed = new Set();
  const rowOf = new Map(t.id.map((id, i) => [id, i]));

  const numericOf = (id) => {
    let c = numericCache.get(id);
    if (!c) { c = numeric(columnValues(t, id)); numericCache.set(id, c); }
    return c;
  };

  const count = h("span", { class: "count" });
  const filterInput = h("input", { id: "filter", type: "search", class: "filter", spellcheck: "false",
    placeholder: "Filter: metrics.acc > 0.9 and params.opt = 'adam'", value: state.filter });
  const filterError = h("div", { id: "filter-error", class: "filter-error", hidden: true });
  const groupSelect = h("select", { id: "group-by", title: "Group rows by a param or tag" });
  const compareBtn = h("button", { id: "compare", disabled: true, onclick: () => {
    location.hash = `#/compare/${[...selected].join(",")}`; } }, "Compare");
  const pickerBtn = h("button", { id: "columns-button", onclick: () => picker.hidden = !picker.hidden }, "Columns");
  const picker = h("div", { id: "column-picker", class: "picker", hidden: true });

  function pickerPanel() {
    const groups = [["params", "Params"], ["metrics", "Metrics"], ["tags", "Tags"]];
    picker.replaceChildren(...groups.map(([kind, label]) => {
      const keys = Object.keys(t[kind]).sort();
      return h("fieldset", {}, h("legend", {}, `${label} (${keys.length})`),
        keys.length ? keys.map((k) => {
          const id = `${kind}.${k}`;
          const box = h("input", { type: "checkbox", "data-col": id, checked: state.columns.includes(id),
            onchange: () => {
              state.columns = box.checked ? [...state.columns, id] : state.columns.filter((c) => c !== id);
              saveState(projectId, state);
              vt.setColumns(columns());
            } });
          return h("label", {}, box, ` ${k}`);
        }) : h("span", { class: "muted" }, "none"));
    }));
  }

  function groupOptions() {
    groupSelect.replaceChildren(h("option", { value: "" }, "No grouping"),
      ...["params", "tags"].flatMap((kind) => Object.keys(t[kind]).sort().map((k) =>
        h("option", { value: `${kind}.${k}`, selected: state.group === `${kind}.${k}` }, `${kind}.${k}`))));
  }

  const check = (i) => h("input", { type: "checkbox", class: "sel", checked: selected.has(t.id[i]),
    onchange: (e) => {
      if (e.target.checked) selected.add(t.id[i]); else selected.delete(t.id[i]);
      compareBtn.disabled = selected.size < 2;
      compareBtn.textContent = selected.size ? `Compare (${selected.size})` : "Compare";
    } });

  // A numeric param shows 5 significant digits (0.089950 for "0.08995038652406293"); the text
  // as logged is its tooltip.
  function paramNum(v) {
    if (v === null || v === undefined || v === "") return "";
    const x = Number(v);
    const shown = Number.isFinite(x) ? fmtNum(x) : String(v);
    return shown === String(v) ? shown : h("span", { title: String(v) }, shown);
  }

  function columns() {
    const cols = [
      { id: "select", label: "", width: 34, cell: check },
      { id: "attr.name", label: "Run", width: 200, sortable: true,
        cell: (i) => h("a", { href: `#/runs/${t.id[i]}` }, t.name[i]) },
      { id: "attr.status", label: "Status", width: 90, sortable: true,
        cell: (i) => h("span", { class: `status st-${t.status[i]}` }, t.status[i]) },
      { id: "attr.start_ms", label: "Started", width: 180, sortable: true, cell: (i) => fmtTime(t.start_ms[i]) },
    ];
    for (const id of state.columns) {
      const [kind, key] = splitId(id);
      const col = (t[kind] || {})[key];
      if (!col) continue;
      const isNum = kind === "metrics" || numericOf(id).isNumeric;
      cols.push({ id, label: key, title: id, width: Math.min(220, Math.max(100, key.length * 8 + 30)),
        sortable: true, numeric: isNum,
        header: () => h("span", {}, h("span", { class: `kind k-${kind}` }, kind[0]), ` ${key}`,
          vt && vt.sort && vt.sort.id === id ? (vt.sort.desc ? " ▼" : " ▲") : ""),
        cell: kind === "metrics" ? (i) => fmtNum(col[i]) : isNum ? (i) => paramNum(col[i]) : (i) => (col[i] ?? "") });
    }
    return cols;
  }

  function computeOrder() {
    const idx = new Int32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    if (!state.sort) return idx;
    const { id, desc } = state.sort;
    const sign = desc ? -1 : 1;
    const num = id === "attr.start_ms" ? { values: Float64Array.from(t.start_ms), isNumeric: true }
      : id.startsWith("attr.") ? { isNumeric: false } : numericOf(id);
    if (num.isNumeric) {
      const v = num.values;
      // missing values last, whatever the direction
      idx.sort((a, b) => {
        const x = v[a], y = v[b];
        const nx = Number.isNaN(x), ny = Number.isNaN(y);
        if (nx || ny) return nx === ny ? 0 : nx ? 1 : -1;
        return x === y ? 0 : (x < y ? -sign : sign);
      });
    } else {
      const col = columnValues(t, id);
      const coll = new Intl.Collator(undefined, { numeric: true });
      idx.sort((a, b) => {
        const x = col[a], y = col[b];
        if (x == null || y == null) return x == y ? 0 : x == null ? 1 : -1;
        return sign * coll.compare(String(x), String(y));
      });
    }
    return idx;
  }

  function items() {
    const visible = [];
    for (let k = 0; k < n; k++) {
      const i = order[k];
      if (!mask || mask[i]) visible.push(i);
    }
    count.textContent = `${visible.length.toLocaleString()} of ${n.toLocaleString()} runs` +
      (t.truncated ? " (the newest only)" : "");
    if (!state.group) return visible;
    const col = columnValues(t, state.group);
    const groups = new Map();
    for (const i of visible) {
      const key = col[i] == null ? "(none)" : String(col[i]);
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push(i);
    }
    const keys = [...groups.keys()].sort(new Intl.Collator(undefined, { numeric: true }).compare);
    const out = [];
    const [, gkey] = splitId(state.group);
    for (const key of keys) {
      const rows = groups.get(key);
      out.push({ key, label: `${gkey} = ${key}`, count: rows.length, collapsed: collapsed.has(key) });
      if (!collapsed.has(key)) for (const i of rows) out.push(i);
    }
    return out;
  }

  function render(what) {
    const t1 = performance.now();
    if (what === "sort" || !order) order = computeOrder();
    vt.sort = state.sort;
    vt.renderHead();
    vt.setItems(items());
    const ms = performance.now() - t1;
    document.dispatchEvent(new CustomEvent("mloop:table", { detail: { what, ms } }));
    return ms;
  }

  const vt = new VirtualTable({
    columns: [],
    onSort: (id) => {
      const t1 = performance.now();
      state.sort = state.sort && state.sort.id === id ? { id, desc: !state.sort.desc } : { id, desc: id.startsWith("metrics.") || id === "attr.start_ms" };
      saveState(projectId, state);
      vt.columns = columns();
      render("sort");
      perf.sortMs = performance.now() - t1;
    },
    onGroupToggle: (key) => {
      if (collapsed.has(key)) collapsed.delete(key); else collapsed.add(key);
      render("group");
    },
  });

  let inflight = null;
  async function applyFilter() {
    const text = filterInput.value.trim();
    const t1 = performance.now();
    if (inflight) inflight.abort();
    state.filter = text;
    saveState(projectId, state);
    if (!text) {
      mask = null;
      filterError.hidden = true;
      filterInput.classList.remove("bad");
      render("filter");
      perf.filterMs = performance.now() - t1;
      return;
    }
    inflight = new AbortController();
    try {
      const { ids } = await api.match(projectId, text, inflight.signal);
      mask = new Uint8Array(n);
      for (const id of ids) { const i = rowOf.get(id); if (i !== undefined) mask[i] = 1; }
      filterError.hidden = true;
      filterInput.classList.remove("bad");
      render("filter");
      perf.filterMs = performance.now() - t1;
    } catch (err) {
      if (err.name === "AbortError") return;
      if (!(err instanceof ApiError)) throw err;
      showFilterError(err, text);
      perf.filterMs = performance.now() - t1;
      document.dispatchEvent(new CustomEvent("mloop:table", { detail: { what: "filter-error" } }));
    }
  }

  function showFilterError(err, text) {
    filterInput.classList.add("bad");
    const pos = err.details && Number.isInteger(err.details.position) ? err.details.position : null;
    const parts = [h("div", { class: "msg" }, err.message)];
    if (pos !== null) {
      parts.push(h("pre", { class: "caret-line" }, text + "\n" + " ".repeat(Math.min(pos, text.length)) + "^"));
    }
    filterError.replaceChildren(...parts);
    if (pos !== null) filterError.dataset.position = String(pos); else delete filterError.dataset.position;
    filterError.hidden = false;
  }

  let timer = null;
  filterInput.addEventListener("keydown", (e) => { if (e.key === "Enter") { clearTimeout(timer); applyFilter(); } });
  filterInput.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(applyFilter, 400); });
  groupSelect.addEventListener("change", () => { state.group = groupSelect.value || null; collapsed.clear(); saveState(projectId, state); render("group"); });

  pickerPanel();
  groupOptions();
  vt.columns = columns();

  const el = h("section", { class: "runs-page" },
    h("div", { class: "title-row" }, h("h1", {}, project.name), count),
    h("div", { class: "toolbar" }, filterInput, pickerBtn, h("label", {}, "Group by ", groupSelect), compareBtn),
    filterError, picker,
    n ? vt.el : emptyState("No runs in this project yet."));

  return {
    el,
    mounted: async () => {
      render("load");
      if (state.filter) await applyFilter();
      perf.tableReadyMs = performance.now() - t0;
      perf.tableReadyNavMs = performance.now(); // since the navigation started
      document.dispatchEvent(new CustomEvent("mloop:table", { detail: { what: "ready", ms: perf.tableReadyMs } }));
    },
    cleanup: () => { clearTimeout(timer); if (inflight) inflight.abort(); vt.destroy(); },
  };
}

function loadState(projectId, t) {
  let saved = {};
  try { saved = JSON.parse(localStorage.getItem(`mloop-runs-${projectId}`) || "{}"); } catch { saved = {}; }
  const metrics = Object.keys(t.metrics).sort().filter((k) => !k.startsWith("system/"));
  const params = Object.keys(t.params).sort();
  const defaults = [...params.slice(0, 4).map((k) => `params.${k}`), ...metrics.slice(0, 4).map((k) => `metrics.${k}`)];
  return {
    columns: Array.isArray(saved.columns) ? saved.columns : defaults,
    sort: saved.sort || null,
    group: saved.group || null,
    filter: typeof saved.filter === "string" ? saved.filter : "",
  };
}

function saveState(projectId, state) {
  try { localStorage.setItem(`mloop-runs-${projectId}`, JSON.stringify(state)); } catch { /* private mode */ }
}
