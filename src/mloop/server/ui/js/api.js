// The REST API v1, as the pages use it. A token (for servers started with --auth) is kept for
// the browser session and sent as a bearer token; a 401 asks for one.

export class ApiError extends Error {
  constructor(status, doc) {
    super(doc && doc.message ? doc.message : `HTTP ${status}`);
    this.status = status;
    this.code = doc && doc.error_code;
    this.details = (doc && doc.details) || {};
  }
}

// What a page says when it cannot be shown for a reason the user can fix (not a bug: shown, not logged).
export class PageError extends Error {}

const TOKEN_KEY = "mloop-token";

function headers() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export function hasToken() { return Boolean(sessionStorage.getItem(TOKEN_KEY)); }

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export async function call(method, path, { query, body, signal } = {}) {
  let url = `/api/v1${path}`;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) q.set(k, v);
    const s = q.toString();
    if (s) url += `?${s}`;
  }
  const init = { method, headers: headers(), signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const res = await fetch(url, init);
  if (res.status === 204) return null;
  const text = await res.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { doc = { message: text }; }
  if (!res.ok) throw new ApiError(res.status, doc);
  return doc;
}

export async function blobUrl(sha256) {
  const res = await fetch(`/api/v1/blobs/${sha256}`, { headers: headers() });
  if (!res.ok) throw new ApiError(res.status, null);
  return URL.createObjectURL(await res.blob());
}

const enc = encodeURIComponent;
export const api = {
  projects: () => call("GET", "/projects", { query: { include_deleted: "false" } }),
  project: (id) => call("GET", `/projects/${enc(id)}`),
  table: (pid) => call("GET", `/ui/projects/${enc(pid)}/table`),
  match: (pid, filter, signal) => call("GET", `/ui/projects/${enc(pid)}/match`, { query: { filter }, signal }),
  run: (id) => call("GET", `/runs/${enc(id)}`),
  metric: (id, key, opts = {}) => call("GET", `/ui/runs/${enc(id)}/metric`, { query: { key, ...opts } }),
  artifacts: (id, prefix = "") => call("GET", `/runs/${enc(id)}/artifacts`, { query: { prefix } }),
  preview: (id, path) => call("GET", `/ui/runs/${enc(id)}/preview`, { query: { path } }),
  dataset: (sha) => call("GET", `/datasets/${enc(sha)}`),
  runModels: (id) => call("GET", `/ui/runs/${enc(id)}/models`),
  raw: (method, path, opts) => call(method, path, opts),
};
