// Every call the pages make to the server. With `modelyard server --auth` the API needs a
// session: the user pastes a token once (signin.js), the server checks it and sets it as
// an HttpOnly, SameSite=Strict cookie (no script of the page can read it). Every request
// carries the X-Modelyard-CSRF header, without which the server refuses a change made
// with the cookie (and which tells it to send no Basic challenge, so the browser opens
// no password prompt of its own). Nothing is sent anywhere but this origin.

export const CSRF_HEADER = "X-Modelyard-CSRF";

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export function url(path, query = {}) {
  const out = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query)) {
    if (value === null || value === undefined || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) out.searchParams.append(key, item);
  }
  return out;
}

// as: "json" (default), "text", "blob" or "response". bearer: a token to send once (signing in).
export async function request(method, path, { query, body, as = "json", bearer } = {}) {
  const headers = { Accept: as === "json" ? "application/json" : "*/*", [CSRF_HEADER]: "1" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: "no-cache", credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url(path, query), init);
  if (!response.ok) throw await apiError(response);
  if (as === "response") return response;
  if (as === "text") return response.text();
  if (as === "blob") return response.blob();
  return response.status === 204 ? null : response.json();
}

async function apiError(response) {
  let code = "", message = `${response.status} ${response.statusText}`, field;
  try {
    const body = await response.json();
    code = body.error_code || "";
    message = body.message || message;
    field = body.field;
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(response.status, code, message, field);
}

export const api = {
  get: (path, query, options = {}) => request("GET", path, { query, ...options }),
  post: (path, body, options = {}) => request("POST", path, { body, ...options }),
  delete: (path, options = {}) => request("DELETE", path, options),
};

// Who is signed in ({auth, user, role}), asked once per page load and after signing in or
// out; pages show the buttons of the role (the server checks it anyway).
let who = null;
export function session(refresh = false) {
  if (refresh || !who) who = api.get("/api/v1/session");
  return who;
}

const RANK = { viewer: 0, editor: 1, approver: 2, admin: 3 };
export function atLeast(role, needed) {
  return (RANK[role] ?? -1) >= RANK[needed];
}

// An MLflow REST run ({info, data: {metrics: [...], params: [...], tags: [...]}}) in the
// native API's flat shape ({run_id, name, ..., metrics: {key: {value, step}}, params: {}}).
// The runs table reads MLflow's runs/search: the server keeps its answers rendered.
export function flatRun({ info, data = {} }) {
  const pairs = (items) => Object.fromEntries((items || []).map((x) => [x.key, x.value]));
  return {
    ...info,
    name: info.run_name,
    metrics: Object.fromEntries((data.metrics || []).map((m) => [m.key, { value: m.value, step: m.step, timestamp: m.timestamp }])),
    params: pairs(data.params),
    tags: pairs(data.tags),
  };
}

// A run's artifact as the server serves it for the UI (never executed as a page).
export function artifact(runId, path, as) {
  return api.get(`/api/v1/runs/${encodeURIComponent(runId)}/artifact-content`, { path }, { as });
}
